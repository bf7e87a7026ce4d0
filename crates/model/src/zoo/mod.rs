//! The paper's networks by name, with the official stage widths, expand ratios, kernel
//! sizes and rounding rules (mit-han-lab/tinyml `netaug/models/base/*.py`; ResNet50 as
//! torchvision).

pub mod spec;

pub use spec::{BlockKind, BlockSpec, DsSpec, HeadConvSpec, NetSpec, SeSpec, StemSpec};

use crate::divisible::{make_divisible, round_half_even};
use crate::error::ModelError;
use crate::layers::Act;

/// Names (patterns) of the zoo, for help texts and errors.
pub const KNOWN_MODELS: &[&str] = &[
    "tinymbv2",
    "mbv2-<w>",
    "proxylessnas-<w>",
    "mcunet",
    "mbv3-<w>",
    "resnet50",
];

/// The description of zoo net `name` with `classes` outputs for `in_channels`-channel
/// images.
pub fn spec(name: &str, classes: usize, in_channels: usize) -> Result<NetSpec, ModelError> {
    if classes == 0 {
        return Err(ModelError::BadArgument {
            what: "classes",
            value: classes,
            reason: "must be at least 1",
        });
    }
    if !(1..=4).contains(&in_channels) {
        return Err(ModelError::BadArgument {
            what: "input channels",
            value: in_channels,
            reason: "must be 1 to 4",
        });
    }
    let mut spec = match name {
        "tinymbv2" => tiny_mbv2(),
        "mcunet" => mcunet(),
        "resnet50" => resnet50(),
        _ => {
            let (family, w) = split_width(name)?;
            match family {
                "mbv2" => mbv2(w),
                "proxylessnas" => proxylessnas(w),
                "mbv3" => mbv3(w),
                _ => return Err(unknown(name)),
            }
        }
    };
    spec.name = name.to_string();
    spec.classes = classes;
    spec.in_channels = in_channels;
    Ok(spec)
}

/// The paper's ImageNet NetAug factor lists for a model: (`aug_expand_list`,
/// `aug_width_mult_list`).
pub fn paper_factors(name: &str) -> (Vec<f64>, Vec<f64>) {
    let expand = vec![1.0, 1.6, 2.2, 2.8];
    let width = if name.starts_with("mbv3") {
        vec![1.0, 2.0, 3.0]
    } else if name == "mcunet" {
        vec![1.0, 1.6, 2.2]
    } else {
        vec![1.0, 1.8, 2.6]
    };
    (expand, width)
}

fn unknown(name: &str) -> ModelError {
    ModelError::UnknownModel {
        name: name.to_string(),
        known: KNOWN_MODELS.join(", "),
    }
}

fn split_width(name: &str) -> Result<(&str, f64), ModelError> {
    let (family, w) = name.split_once('-').ok_or_else(|| unknown(name))?;
    if !matches!(family, "mbv2" | "proxylessnas" | "mbv3") {
        return Err(unknown(name));
    }
    let bad = || ModelError::BadWidth {
        name: name.to_string(),
        value: w.to_string(),
    };
    let width: f64 = w.parse().map_err(|_| bad())?;
    if !(width > 0.0 && width <= 4.0) {
        return Err(bad());
    }
    Ok((family, width))
}

fn base(name: &str, stem: StemSpec) -> NetSpec {
    NetSpec {
        name: name.to_string(),
        in_channels: 3,
        classes: 1000,
        stem,
        first: None,
        blocks: Vec::new(),
        head_conv: None,
        post_pool_conv: None,
    }
}

fn mobile_stem(out: usize, act: Act) -> StemSpec {
    StemSpec {
        out,
        kernel: 3,
        stride: 2,
        act,
        max_pool: false,
    }
}

fn mbconv(in_ch: usize, mid: usize, out: usize, kernel: usize, stride: usize) -> BlockSpec {
    BlockSpec {
        kind: BlockKind::MbConv,
        in_ch,
        mid,
        out,
        kernel,
        stride,
        act: Act::Relu6,
        se: None,
        identity: false,
    }
}

/// One stage of inverted blocks: `(expand ratio, kernel)` per block, the first strided;
/// an identity shortcut wherever the shape is unchanged (as the official code).
fn push_stage(
    blocks: &mut Vec<BlockSpec>,
    in_ch: &mut usize,
    out: usize,
    stride: usize,
    layers: &[(f64, usize)],
    divisor: usize,
) {
    for (i, &(e, k)) in layers.iter().enumerate() {
        let s = if i == 0 { stride } else { 1 };
        let mid = make_divisible(round_half_even(e * *in_ch as f64) as f64, divisor);
        let mut b = mbconv(*in_ch, mid, out, k, s);
        b.identity = s == 1 && *in_ch == out && i != 0;
        blocks.push(b);
        *in_ch = out;
    }
}

/// MobileNetV2-style nets (MBV2, ProxylessNAS, MCUNet): stem, DS block, stages, head block.
struct Mobile<'a> {
    stage_widths: [usize; 7],
    /// Per stage: (expand ratio, kernel) per block, and the stage's stride.
    stages: &'a [(&'a [(f64, usize)], usize)],
    head_kernel: usize,
}

fn mobile(name: &str, cfg: Mobile<'_>, head_out: usize, head_mid: Option<usize>) -> NetSpec {
    let w = cfg.stage_widths;
    let mut spec = base(name, mobile_stem(w[0], Act::Relu6));
    spec.first = Some(DsSpec {
        out: w[1],
        kernel: 3,
        act: Act::Relu6,
        identity: false,
    });
    let mut in_ch = w[1];
    for (&(layers, stride), &out) in cfg.stages.iter().zip(&w[2..]) {
        push_stage(&mut spec.blocks, &mut in_ch, out, stride, layers, 8);
    }
    // The head's inverted block: expand 6 without rounding, unless given.
    let mid = head_mid.unwrap_or(in_ch * 6);
    spec.blocks
        .push(mbconv(in_ch, mid, head_out, cfg.head_kernel, 1));
    spec
}

fn repeat(e: f64, k: usize, n: usize) -> Vec<(f64, usize)> {
    vec![(e, k); n]
}

fn mbv2_like(name: &str, w: f64, head_final: Option<usize>) -> NetSpec {
    let div = |c: f64| make_divisible(c * w, 8);
    let widths = [32.0, 16.0, 24.0, 32.0, 64.0, 96.0, 160.0].map(div);
    let head = [div(320.0), div(1280.0).max(1280)];
    let (s1, s2, s3, s4, s5) = (
        repeat(6.0, 3, 2),
        repeat(6.0, 3, 3),
        repeat(6.0, 3, 4),
        repeat(6.0, 3, 3),
        repeat(6.0, 3, 3),
    );
    let stages: [(&[(f64, usize)], usize); 5] = [(&s1, 2), (&s2, 2), (&s3, 2), (&s4, 1), (&s5, 2)];
    let mut spec = mobile(
        name,
        Mobile {
            stage_widths: widths,
            stages: &stages,
            head_kernel: 3,
        },
        head[0],
        None,
    );
    spec.head_conv = Some(HeadConvSpec {
        out: head_final.unwrap_or(head[1]),
        act: Act::Relu6,
    });
    spec
}

/// MobileNetV2 at width `w` (divisor 8, final conv at least 1280).
fn mbv2(w: f64) -> NetSpec {
    mbv2_like("mbv2", w, None)
}

/// MobileNetV2-Tiny: MBV2 w0.35 whose final conv is 448 wide.
fn tiny_mbv2() -> NetSpec {
    mbv2_like("tinymbv2", 0.35, Some(448))
}

/// ProxylessNAS-Mobile at width `w`.
fn proxylessnas(w: f64) -> NetSpec {
    let div = |c: f64| make_divisible(c * w, 8);
    let widths = [32.0, 16.0, 32.0, 40.0, 80.0, 96.0, 192.0].map(div);
    let head = [div(320.0), div(1280.0).max(1280)];
    let stages: [(&[(f64, usize)], usize); 5] = [
        (&[(3.0, 5), (3.0, 3)], 2),
        (&[(3.0, 7), (3.0, 3), (3.0, 5), (3.0, 5)], 2),
        (&[(6.0, 7), (3.0, 5), (3.0, 5), (3.0, 5)], 2),
        (&[(6.0, 5), (3.0, 5), (3.0, 5), (3.0, 5)], 1),
        (&[(6.0, 7), (6.0, 7), (3.0, 7), (3.0, 7)], 2),
    ];
    let mut spec = mobile(
        "proxylessnas",
        Mobile {
            stage_widths: widths,
            stages: &stages,
            head_kernel: 7,
        },
        head[0],
        None,
    );
    spec.head_conv = Some(HeadConvSpec {
        out: head[1],
        act: Act::Relu6,
    });
    spec
}

/// MCUNet (the 320KB ImageNet model of the paper); no width multiplier.
fn mcunet() -> NetSpec {
    let stages: [(&[(f64, usize)], usize); 5] = [
        (&[(3.0, 7), (5.0, 3), (5.0, 7), (4.0, 5)], 2),
        (&[(5.0, 5), (5.0, 5), (5.0, 5)], 2),
        (&[(5.0, 3), (6.0, 7), (4.0, 5)], 2),
        (&[(5.0, 5), (5.0, 7), (5.0, 3)], 1),
        (&[(6.0, 3), (5.0, 7), (4.0, 3)], 2),
    ];
    mobile(
        "mcunet",
        Mobile {
            stage_widths: [16, 8, 16, 24, 40, 48, 96],
            stages: &stages,
            head_kernel: 7,
        },
        160,
        Some(480),
    )
}

/// MobileNetV3-Large at width `w` (h-swish, SE).
fn mbv3(w: f64) -> NetSpec {
    let div = |c: f64| make_divisible(c * w, 8);
    let widths = [16.0, 24.0, 40.0, 80.0, 112.0, 160.0].map(div);
    let head = [div(960.0), div(1280.0).max(1280)];
    // (hidden widths, kernel, stride, act, SE)
    let stages: [(&[f64], usize, usize, Act, bool); 5] = [
        (&[64.0, 72.0], 3, 2, Act::Relu, false),
        (&[72.0, 120.0, 120.0], 5, 2, Act::Relu, true),
        (&[240.0, 200.0, 184.0, 184.0], 3, 2, Act::HSwish, false),
        (&[480.0, 672.0], 3, 1, Act::HSwish, true),
        (&[672.0, 960.0, 960.0], 5, 2, Act::HSwish, true),
    ];
    let mut spec = base("mbv3", mobile_stem(widths[0], Act::HSwish));
    spec.first = Some(DsSpec {
        out: widths[0],
        kernel: 3,
        act: Act::Relu,
        identity: true,
    });
    let mut in_ch = widths[0];
    for (&(mids, k, stride, act, se), &out) in stages.iter().zip(&widths[1..]) {
        for (i, &m) in mids.iter().enumerate() {
            let s = if i == 0 { stride } else { 1 };
            let mid = make_divisible(round_half_even(m * w) as f64, 8);
            let mut b = mbconv(in_ch, mid, out, k, s);
            b.act = act;
            b.identity = s == 1 && in_ch == out && i != 0;
            b.se = se.then(|| SeSpec {
                hidden: make_divisible(mid as f64 / 4.0, 8).max(16),
                act: Act::Relu,
            });
            spec.blocks.push(b);
            in_ch = out;
        }
    }
    spec.head_conv = Some(HeadConvSpec {
        out: head[0],
        act: Act::HSwish,
    });
    spec.post_pool_conv = Some(HeadConvSpec {
        out: head[1],
        act: Act::HSwish,
    });
    spec
}

/// ResNet50 (torchvision layout: 7x7 stem, max pool, bottlenecks [3, 4, 6, 3]).
fn resnet50() -> NetSpec {
    let mut spec = base(
        "resnet50",
        StemSpec {
            out: 64,
            kernel: 7,
            stride: 2,
            act: Act::Relu,
            max_pool: true,
        },
    );
    let mut in_ch = 64;
    for (planes, n, stride) in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)] {
        for i in 0..n {
            let s = if i == 0 { stride } else { 1 };
            let out = planes * 4;
            spec.blocks.push(BlockSpec {
                kind: BlockKind::Bottleneck,
                in_ch,
                mid: planes,
                out,
                kernel: 3,
                stride: s,
                act: Act::Relu,
                se: None,
                identity: s == 1 && in_ch == out,
            });
            in_ch = out;
        }
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unknown_names_are_refused() {
        assert!(spec("mbv2-0.35", 1000, 3).is_ok());
        assert!(spec("proxylessnas-1.0", 10, 1).is_ok());
        assert!(matches!(
            spec("vgg16", 1000, 3),
            Err(ModelError::UnknownModel { .. })
        ));
        assert!(matches!(
            spec("mbv2-abc", 1000, 3),
            Err(ModelError::BadWidth { .. })
        ));
        assert!(matches!(
            spec("mbv2-0", 1000, 3),
            Err(ModelError::BadWidth { .. })
        ));
        assert!(spec("mcunet", 0, 3).is_err());
    }

    #[test]
    fn tiny_mbv2_head_is_56_112_448() {
        let s = spec("tinymbv2", 1000, 3).unwrap();
        let head = s.blocks.last().unwrap();
        assert_eq!((head.in_ch, head.mid, head.out), (56, 336, 112));
        assert_eq!(s.head_conv.as_ref().unwrap().out, 448);
        assert_eq!(s.feature_width(), 448);
    }
}
