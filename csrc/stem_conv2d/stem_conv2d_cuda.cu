// CUDA side of the stem convolution: cuDNN's convolution through ATen, behind the same checks as
// the CPU kernels. The stem op exists for the CPU, where oneDNN runs convolutions of 1-3 input
// channels far below its rate on wide layers; on CUDA cuDNN has no such gap to close, so this
// file does not add a kernel of its own. It gives the op (and its backward ops, which the double
// backward of a gradient penalty calls) the same schema on both devices.

#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "stem_conv2d/stem_conv2d.h"

namespace genfast::stem_conv2d {
namespace {

at::Tensor stem_conv2d_cuda(const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
                            const c10::optional<at::Tensor>& slopes_of, c10::IntArrayRef stride,
                            c10::IntArrayRef padding, c10::string_view activation, double negative_slope) {
  const auto checked = check_forward(x, weight, bias, slopes_of, stride, padding, activation, negative_slope);
  const Act act = checked.second;
  const c10::cuda::CUDAGuard guard(x.device());
  auto y = at::convolution(x, weight, bias, stride, padding, {1, 1}, false, {0, 0}, 1);
  if (!act.fused) return y;
  return y * slope_factor(slopes_of.has_value() ? *slopes_of : y, act).to(y.scalar_type());
}

at::Tensor stem_conv2d_backward_input_cuda(const at::Tensor& grad_out, const c10::optional<at::Tensor>& out,
                                           const at::Tensor& weight, c10::IntArrayRef input_hw,
                                           c10::IntArrayRef stride, c10::IntArrayRef padding,
                                           c10::string_view activation, double negative_slope) {
  const auto checked = check_backward_input(grad_out, out, weight, input_hw, stride, padding, activation,
                                            negative_slope);
  const Geometry& g = checked.first;
  const c10::cuda::CUDAGuard guard(grad_out.device());
  const auto dz = masked_grad(grad_out, out, checked.second);
  // the transposed convolution, with the output padding that restores the input's size
  const int64_t oph = g.H - ((g.Ho - 1) * g.sh - 2 * g.ph + g.KH);
  const int64_t opw = g.W - ((g.Wo - 1) * g.sw - 2 * g.pw + g.KW);
  return at::convolution(dz, weight, c10::nullopt, stride, padding, {1, 1}, true, {oph, opw}, 1);
}

std::tuple<at::Tensor, at::Tensor> stem_conv2d_backward_weight_cuda(
    const at::Tensor& grad_out, const c10::optional<at::Tensor>& out, const at::Tensor& x,
    c10::IntArrayRef kernel_size, c10::IntArrayRef stride, c10::IntArrayRef padding, c10::string_view activation,
    double negative_slope) {
  const auto checked = check_backward_weight(grad_out, out, x, kernel_size, stride, padding, activation,
                                             negative_slope);
  const Geometry& g = checked.first;
  const c10::cuda::CUDAGuard guard(x.device());
  const auto dz = masked_grad(grad_out, out, checked.second);
  // convolution_backward reads only the weight's shape
  const auto shape = at::empty({g.O, g.C, g.KH, g.KW}, x.options());
  auto grads = at::convolution_backward(dz, x, shape, std::vector<int64_t>{g.O}, stride, padding, {1, 1}, false,
                                        {0, 0}, 1, {false, true, true});
  return {std::get<1>(grads), std::get<2>(grads)};
}

}  // namespace

TORCH_LIBRARY_IMPL(genfast, CUDA, m) {
  m.impl("stem_conv2d", &stem_conv2d_cuda);
  m.impl("stem_conv2d_backward_input", &stem_conv2d_backward_input_cuda);
  m.impl("stem_conv2d_backward_weight", &stem_conv2d_backward_weight_cuda);
}

}  // namespace genfast::stem_conv2d
