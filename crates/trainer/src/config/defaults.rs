//! The default of each optional config key: one function per key, named by serde.

pub(super) fn default_min_crop() -> f64 {
    0.5
}
pub(super) fn default_score_threshold() -> f32 {
    0.005
}
pub(super) fn default_nms_iou() -> f32 {
    0.45
}
pub(super) fn default_max_detections() -> usize {
    100
}
pub(super) fn default_min_scale() -> f64 {
    0.08
}
pub(super) fn default_log_every() -> usize {
    20
}
pub(super) fn default_replicas() -> usize {
    1
}
// One replica is left out of saved configs, so that runs written before replicas existed
// keep their run ids.
pub(super) fn is_one(n: &usize) -> bool {
    *n == 1
}
pub(super) fn default_temperature() -> f64 {
    1.0
}
pub(super) fn default_kd_weight() -> f64 {
    0.5
}
pub(super) fn default_ra_ops() -> usize {
    2
}
pub(super) fn default_ra_magnitude() -> usize {
    9
}
pub(super) fn default_warmup() -> usize {
    5
}
pub(super) fn default_lr() -> f64 {
    0.025
}
pub(super) fn default_wd() -> f64 {
    4e-5
}
pub(super) fn default_smoothing() -> f64 {
    0.1
}
pub(super) fn default_alpha() -> f64 {
    1.0
}
pub(super) fn default_true() -> bool {
    true
}
pub(super) fn default_recal() -> usize {
    16_000
}
