// ATen's own backward kernels for the LibTorch fast path (crate netaug-kernels, libtorch.rs).
// tch 0.22 does not bind convolution_backward or native_batch_norm_backward; these two
// C functions do, on tch's tensor handles (at::Tensor*). They return 0 on success, or 1
// with the exception's message copied into `err`.
#include <ATen/ATen.h>

#include <cstdio>
#include <exception>

typedef at::Tensor *tensor;

static tensor boxed(const at::Tensor &t, bool wanted) {
  return wanted ? new at::Tensor(t) : nullptr;
}

extern "C" int netaug_conv2d_backward(tensor grad, tensor input, tensor weight,
                                      int64_t stride, int64_t padding, int64_t groups,
                                      int want_input, int want_weight, tensor *grad_input,
                                      tensor *grad_weight, char *err, size_t err_len) {
  try {
    auto r = at::convolution_backward(*grad, *input, *weight, std::nullopt, {stride, stride},
                                      {padding, padding}, {1, 1}, false, {0, 0}, groups,
                                      {want_input != 0, want_weight != 0, false});
    *grad_input = boxed(std::get<0>(r), want_input != 0);
    *grad_weight = boxed(std::get<1>(r), want_weight != 0);
    return 0;
  } catch (const std::exception &e) {
    std::snprintf(err, err_len, "%s", e.what());
    return 1;
  }
}

extern "C" int netaug_batch_norm_backward(tensor grad, tensor input, tensor weight,
                                          tensor save_mean, tensor save_invstd, double eps,
                                          int want_input, int want_weight, int want_bias,
                                          tensor *grad_input, tensor *grad_weight,
                                          tensor *grad_bias, char *err, size_t err_len) {
  try {
    auto r = at::native_batch_norm_backward(
        *grad, *input, *weight, std::nullopt, std::nullopt, *save_mean, *save_invstd, true,
        eps, {want_input != 0, want_weight != 0, want_bias != 0});
    *grad_input = boxed(std::get<0>(r), want_input != 0);
    *grad_weight = boxed(std::get<1>(r), want_weight != 0);
    *grad_bias = boxed(std::get<2>(r), want_bias != 0);
    return 0;
  } catch (const std::exception &e) {
    std::snprintf(err, err_len, "%s", e.what());
    return 1;
  }
}
