// Instance norm with a fused activation: input checks and the parts shared by the CPU and CUDA
// kernels (instance_norm_cpu.cpp, instance_norm_cuda.cu).
//
// Both ops take the affine part per (n, c) plane: scale and shift of shape (N, C), any strides
// (the Python layer passes weight.expand(N, C) for the plain op and the blended style rows for the
// conditional one), so one kernel family serves both and autograd of that expand / blend gives
// the weight, bias, gamma, beta and mixing-weight gradients.
//
//   forward   mean, rstd = stats of x[n, c] over H*W (biased variance);
//             y = act((x - mean) * (rstd * scale) + shift)
//   backward  g = dy * act'(pre);  grad_shift = sum g;  grad_scale = sum g * xhat;
//             dx = scale * rstd * (g - mean(g) - xhat * mean(g * xhat))
//
// Written as (x - mean) * alpha + shift rather than x * alpha + (shift - mean * alpha): at H*W = 1
// the first gives exactly shift (the "the output is the bias, activated").
#pragma once

#include <ATen/ATen.h>
#include <c10/macros/Macros.h>
#include <c10/util/string_view.h>

#include <string>
#include <tuple>

#include "common/checks.h"

namespace genfast::instance_norm {

enum class Act { kNone, kRelu, kLeakyRelu };

inline Act parse_activation(c10::string_view s, const char* op) {
  if (s == "none") return Act::kNone;
  if (s == "relu") return Act::kRelu;
  if (s == "leaky_relu") return Act::kLeakyRelu;
  TORCH_CHECK(false, "genfast.", op, ": expected activation to be one of 'none', 'relu', 'leaky_relu', got '",
              std::string(s.data(), s.size()), "'");
}

// float32 statistics for float32/float16/bfloat16 input, float64 for float64.
inline at::ScalarType acc_type(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

inline void check_x(const at::Tensor& x, const char* op) {
  check_dim(x, 4, op, "x", "(N, C, H, W)");
  check_floating(x, op, "x");
}

// (N, C) per-plane parameters; an undefined tensor stands for "absent" where allowed.
inline void check_per_plane(const c10::optional<at::Tensor>& t, const at::Tensor& x, const char* op,
                            const char* name) {
  if (!t.has_value() || !t->defined()) return;
  TORCH_CHECK(t->dim() == 2 && t->size(0) == x.size(0) && t->size(1) == x.size(1), "genfast.", op,
              ": expected ", name, " of shape (", x.size(0), ", ", x.size(1), ") to match x of shape ",
              x.sizes(), ", got ", t->sizes());
  check_floating(*t, op, name);
  check_same_device(x, "x", *t, name, op);
}

inline void check_eps(double eps, const char* op) {
  TORCH_CHECK(eps >= 0 && std::isfinite(eps), "genfast.", op, ": expected eps to be a finite number >= 0, got ",
              eps);
}

// The per-plane parameter as a contiguous (N, C) tensor of the accumulation type, or undefined.
inline at::Tensor per_plane_acc(const c10::optional<at::Tensor>& t, at::ScalarType acc) {
  if (!t.has_value() || !t->defined()) return at::Tensor();
  return t->to(acc).contiguous();
}

// The inputs of instance_norm, checked the same way on every device; returns the activation.
inline Act check_forward_inputs(const at::Tensor& x, const c10::optional<at::Tensor>& scale,
                                const c10::optional<at::Tensor>& shift, double eps, c10::string_view activation,
                                const char* op) {
  check_x(x, op);
  check_per_plane(scale, x, op, "scale");
  check_per_plane(shift, x, op, "shift");
  check_eps(eps, op);
  return parse_activation(activation, op);
}

// The inputs of instance_norm_backward, checked the same way on every device.
inline void check_backward_inputs(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& mean,
                                  const at::Tensor& rstd, const c10::optional<at::Tensor>& scale,
                                  const c10::optional<at::Tensor>& shift, const char* op) {
  check_x(x, op);
  TORCH_CHECK(grad.sizes() == x.sizes(), "genfast.", op, ": expected grad of shape ", x.sizes(),
              " (the shape of x), got ", grad.sizes());
  check_floating(grad, op, "grad");
  check_same_device(x, "x", grad, "grad", op);
  check_per_plane(mean, x, op, "mean");
  check_per_plane(rstd, x, op, "rstd");
  check_per_plane(scale, x, op, "scale");
  check_per_plane(shift, x, op, "shift");
}

// The inputs of instance_norm_double_backward: those of the backward, plus the cotangents of its
// three outputs (gg_x like x, gg_scale and gg_shift (N, C); each may be absent, meaning zero).
inline void check_double_backward_inputs(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& mean,
                                         const at::Tensor& rstd, const c10::optional<at::Tensor>& scale,
                                         const c10::optional<at::Tensor>& shift,
                                         const c10::optional<at::Tensor>& gg_x,
                                         const c10::optional<at::Tensor>& gg_scale,
                                         const c10::optional<at::Tensor>& gg_shift, const char* op) {
  check_backward_inputs(grad, x, mean, rstd, scale, shift, op);
  if (gg_x.has_value() && gg_x->defined()) {
    TORCH_CHECK(gg_x->sizes() == x.sizes(), "genfast.", op, ": expected gg_x of shape ", x.sizes(),
                " (the shape of x), got ", gg_x->sizes());
    check_floating(*gg_x, op, "gg_x");
    check_same_device(x, "x", *gg_x, "gg_x", op);
  }
  check_per_plane(gg_scale, x, op, "gg_scale");
  check_per_plane(gg_shift, x, op, "gg_shift");
}

// The per-plane constants of the double backward (math in genfast/reference/instance_norm.py,
// instance_norm_double_backward), from the five sums of one plane taken against hi (the mean's
// leading part, x - mean = d - lo with d = x - hi):
//   S1 = sum g', Sd = sum g' d, U1 = sum u, Ud = sum u d, UG = sum u g'   (g' = act'(pre) * grad)
// so that, per element,
//   d_grad = act'(pre) * (cu * u + f1 * d + f0)
//   d_x    = hg * g' + hu * u + e1 * d + e0
// and d_scale = r * Q for the plane.
struct DoubleBackwardPlane {
  double cu, f1, f0, hg, hu, e1, e0, d_scale;
};

C10_HOST_DEVICE inline DoubleBackwardPlane double_backward_plane(double S1, double Sd, double U1, double Ud, double UG, double M,
                                                 double lo, double r, double a, double gg_scale, double gg_shift) {
  DoubleBackwardPlane c{};
  if (M == 1) {  // x_hat = 0 and every centred term cancels exactly: d_grad = act' * gg_shift, d_x = 0
    c.f0 = gg_shift;
    return c;
  }
  const double S2 = r * (Sd - lo * S1), U2 = r * (Ud - lo * U1);  // sum g' x_hat, sum u x_hat
  const double ar = a * r;
  const double Q = UG - (S1 * U1 + S2 * U2) / M;
  const double cx = gg_scale - ar * U2 / M;  // d_grad / act' = ar u + cx x_hat + c0
  const double c0 = gg_shift - ar * U1 / M;
  const double ku = -ar * S2 / M;             // G = cx g' + ku u (dL/dx_hat at fixed r)
  const double mean_G = (cx * S1 + ku * U1) / M, mean_Gx = (cx * S2 + ku * U2) / M;
  const double kx = -r * mean_Gx - a * Q * r * r / M;  // d_x = r G - r mean_G + kx x_hat
  c.cu = ar;
  c.f1 = cx * r;
  c.f0 = c0 - cx * r * lo;
  c.hg = r * cx;
  c.hu = r * ku;
  c.e1 = kx * r;
  c.e0 = -r * mean_G - kx * r * lo;
  c.d_scale = r * Q;
  return c;
}

// What both devices' double backward run on: NCHW-contiguous tensors of the accumulation type
// (copied only where the inputs are not; absent optional inputs stay undefined), the op's outputs
// (d_grad like grad, d_x like x, d_scale (N, C) zero-filled) and the buffers the kernels write (the
// outputs themselves when they already are NCHW of the accumulation type). finish() copies the
// buffers into the outputs where they differ.
struct DoubleBackwardArgs {
  Act act;
  at::ScalarType acc;
  int64_t N, C, HW;
  at::Tensor d_grad, d_x, d_scale;
  at::Tensor grad, x, u, mean, rstd, scale, shift, gg_scale, gg_shift;
  at::Tensor dg, dx;

  bool empty() const { return N * C * HW == 0; }
  std::tuple<at::Tensor, at::Tensor, at::Tensor> finish() {
    if (dg.defined() && !dg.is_same(d_grad)) d_grad.copy_(dg);
    if (dx.defined() && !dx.is_same(d_x)) d_x.copy_(dx);
    return {d_grad, d_x, d_scale};
  }
};

inline DoubleBackwardArgs prepare_double_backward(const at::Tensor& grad, const at::Tensor& x,
                                                  const at::Tensor& mean, const at::Tensor& rstd,
                                                  const c10::optional<at::Tensor>& scale,
                                                  const c10::optional<at::Tensor>& shift,
                                                  const c10::optional<at::Tensor>& gg_x,
                                                  const c10::optional<at::Tensor>& gg_scale,
                                                  const c10::optional<at::Tensor>& gg_shift,
                                                  c10::string_view activation, const char* op) {
  check_double_backward_inputs(grad, x, mean, rstd, scale, shift, gg_x, gg_scale, gg_shift, op);
  DoubleBackwardArgs a;
  a.act = parse_activation(activation, op);
  a.acc = acc_type(x.scalar_type());
  a.N = x.size(0);
  a.C = x.size(1);
  a.HW = x.size(2) * x.size(3);
  a.d_grad = at::empty_like(grad);
  a.d_x = at::empty_like(x);
  a.d_scale = at::zeros({a.N, a.C}, x.options().dtype(a.acc));
  if (a.empty()) return a;
  a.x = x.to(a.acc).contiguous();
  a.grad = grad.to(a.acc).contiguous();
  if (gg_x.has_value() && gg_x->defined()) a.u = gg_x->to(a.acc).contiguous();
  a.mean = mean.to(at::kDouble).contiguous();
  a.rstd = rstd.to(a.acc).contiguous();
  a.scale = per_plane_acc(scale, a.acc);
  a.shift = per_plane_acc(shift, a.acc);
  a.gg_scale = per_plane_acc(gg_scale, a.acc);
  a.gg_shift = per_plane_acc(gg_shift, a.acc);
  const auto direct = [&](const at::Tensor& t) { return t.scalar_type() == a.acc && t.is_contiguous(); };
  a.dg = direct(a.d_grad) ? a.d_grad : at::empty_like(a.x);
  a.dx = direct(a.d_x) ? a.d_x : at::empty_like(a.x);
  return a;
}

// The forward's per-plane statistics, (N, C): mean in float64 and rstd in the accumulation type.
// With no positions (H*W = 0) they are NaN, as a mean over nothing is; the caller returns early then.
inline std::pair<at::Tensor, at::Tensor> new_stats(const at::Tensor& x, bool nothing_to_normalise) {
  auto mean = at::empty({x.size(0), x.size(1)}, x.options().dtype(at::kDouble));
  auto rstd = at::empty({x.size(0), x.size(1)}, x.options().dtype(acc_type(x.scalar_type())));
  if (nothing_to_normalise) {
    mean.fill_(NAN);
    rstd.fill_(NAN);
  }
  return {mean, rstd};
}

// The backward's gradients of the per-plane scale and shift, (N, C) in the accumulation type,
// zero-filled: the kernels add into them (and an empty x leaves them zero).
inline std::pair<at::Tensor, at::Tensor> new_affine_grads(const at::Tensor& x) {
  const auto options = x.options().dtype(acc_type(x.scalar_type()));
  return {at::zeros({x.size(0), x.size(1)}, options), at::zeros({x.size(0), x.size(1)}, options)};
}

}  // namespace genfast::instance_norm
