// Autograd of the instance norm ops, registered in C++ (as csrc/minibatch_stddev/ does) rather than
// with torch.library.register_autograd in Python.
//
// Why: a WGAN-GP critic step at 28 x 28 runs these ops ~18 times (forward on real, fake and the
// interpolates, their backwards, the penalty's double backward) on planes of 16-49 values, where the
// kernels take ~0.5 ms and the Python wrapper of register_autograd (an autograd.Function per call,
// pytree flattening, setup_context) added 0.3-0.7 ms per call. Here the forward, the backward nodes
// and the engine's calls into them stay in C++; the fake kernels stay in Python (genfast/ops/).
//
//   instance_norm            -> InstanceNormFunction: saves x, mean, rstd, scale, shift; its backward
//                               calls instance_norm_backward through the dispatcher (with autograd on,
//                               so under create_graph it records the node below)
//   instance_norm_backward   -> InstanceNormBackwardFunction: its backward is the VJP of the backward
//                               formula in closed form: the native instance_norm_double_backward, or,
//                               when a graph of it is being recorded (a third derivative), the same
//                               formula in differentiable ATen ops (closed_form_double_backward below,
//                               the twin of genfast/reference/instance_norm.py's
//                               instance_norm_double_backward, which recomputes mean and rstd from x).

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <string>
#include <tuple>

#include "instance_norm/instance_norm.h"

namespace genfast::instance_norm {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using OptTensor = c10::optional<at::Tensor>;
using Triple = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

Triple call_forward(const at::Tensor& x, const OptTensor& scale, const OptTensor& shift, double eps,
                    c10::string_view activation, double slope) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("genfast::instance_norm", "")
          .typed<Triple(const at::Tensor&, const OptTensor&, const OptTensor&, double, c10::string_view, double)>();
  return op.call(x, scale, shift, eps, activation, slope);
}

Triple call_backward(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& mean, const at::Tensor& rstd,
                     const OptTensor& scale, const OptTensor& shift, double eps, c10::string_view activation,
                     double slope) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("genfast::instance_norm_backward", "")
                             .typed<Triple(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                           const OptTensor&, const OptTensor&, double, c10::string_view, double)>();
  return op.call(grad, x, mean, rstd, scale, shift, eps, activation, slope);
}

Triple call_double_backward(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& mean,
                            const at::Tensor& rstd, const OptTensor& scale, const OptTensor& shift,
                            const OptTensor& gg_x, const OptTensor& gg_scale, const OptTensor& gg_shift,
                            c10::string_view activation, double slope) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("genfast::instance_norm_double_backward", "")
          .typed<Triple(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const OptTensor&,
                        const OptTensor&, const OptTensor&, const OptTensor&, const OptTensor&, c10::string_view,
                        double)>();
  return op.call(grad, x, mean, rstd, scale, shift, gg_x, gg_scale, gg_shift, activation, slope);
}

inline OptTensor opt(const at::Tensor& t) { return t.defined() ? OptTensor(t) : OptTensor(); }

// (N, C) -> (N, C, 1, 1) in the accumulation type, or a scalar `fill` when absent.
at::Tensor per_plane(const at::Tensor& t, at::ScalarType acc, const at::Tensor& like, double fill) {
  if (!t.defined()) return at::full({}, fill, like.options().dtype(acc));
  return t.to(acc).unsqueeze(-1).unsqueeze(-1);
}

// The backward's VJP in differentiable ATen ops (math: genfast/reference/instance_norm.py,
// instance_norm_double_backward; statistics recomputed from x so that their dependence on x is in
// the graph). Returns (d_grad, d_x, d_scale).
Triple closed_form_double_backward(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& scale,
                                   const at::Tensor& shift, const at::Tensor& u_in, const at::Tensor& gg_scale,
                                   const at::Tensor& gg_shift, double eps, Act act, double slope) {
  const auto acc = acc_type(x.scalar_type());
  const std::vector<int64_t> dims{2, 3};
  const double m = static_cast<double>(x.size(2) * x.size(3));
  const at::Tensor xf = x.to(acc);
  const at::Tensor d = xf - xf.mean(dims, /*keepdim=*/true);
  const at::Tensor r = at::rsqrt(d.square().mean(dims, true) + eps);
  const at::Tensor xhat = d * r;
  const at::Tensor a = per_plane(scale, acc, x, 1.0);
  at::Tensor g = grad.to(acc), s;
  if (act != Act::kNone) {
    const at::Tensor pre = xhat * a + per_plane(shift, acc, x, 0.0);
    const double low = act == Act::kRelu ? 0.0 : slope;
    s = at::where(pre > 0, at::full({}, 1.0, xf.options()), at::full({}, low, xf.options()));
    g = g * s;
  }
  const at::Tensor alpha = per_plane(gg_scale, acc, x, 0.0), beta = per_plane(gg_shift, acc, x, 0.0);
  const at::Tensor s1 = g.sum(dims, true), s2 = (g * xhat).sum(dims, true);
  at::Tensor d_grad, q, G;
  if (!u_in.defined()) {
    d_grad = alpha * xhat + beta;
    q = at::zeros_like(s1);
    G = alpha * g;
  } else {
    const at::Tensor u = u_in.to(acc);
    const at::Tensor u1 = u.sum(dims, true), u2 = (u * xhat).sum(dims, true);
    const at::Tensor ar = a * r;
    d_grad = ar * (u - u1 / m - xhat * (u2 / m)) + alpha * xhat + beta;
    q = (u * g).sum(dims, true) - (s1 * u1 + s2 * u2) / m;
    G = alpha * g - (ar / m) * (g * u2 + u * s2);
  }
  if (s.defined()) d_grad = d_grad * s;
  const at::Tensor mean_G = G.mean(dims, true), mean_Gx = (G * xhat).mean(dims, true);
  const at::Tensor d_x = r * (G - mean_G - xhat * mean_Gx) - (a * q) * (r * r / m) * xhat;
  const at::Tensor d_scale = (r * q).squeeze(-1).squeeze(-1);
  return {d_grad.to(grad.scalar_type()), d_x.to(x.scalar_type()), d_scale};
}

void save_args(AutogradContext* ctx, double eps, c10::string_view activation, double slope) {
  ctx->saved_data["eps"] = eps;
  ctx->saved_data["activation"] = std::string(activation.data(), activation.size());
  ctx->saved_data["slope"] = slope;
}

class InstanceNormBackwardFunction : public torch::autograd::Function<InstanceNormBackwardFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& grad, const at::Tensor& x,
                               const at::Tensor& mean, const at::Tensor& rstd, const OptTensor& scale,
                               const OptTensor& shift, double eps, c10::string_view activation, double slope) {
    ctx->save_for_backward({grad, x, mean, rstd, scale.value_or(at::Tensor()), shift.value_or(at::Tensor())});
    save_args(ctx, eps, activation, slope);
    at::AutoDispatchBelowADInplaceOrView below;
    auto [gx, gscale, gshift] = call_backward(grad, x, mean, rstd, scale, shift, eps, activation, slope);
    return {gx, gscale, gshift};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &grad = saved[0], &x = saved[1], &mean = saved[2], &rstd = saved[3], &scale = saved[4],
                     &shift = saved[5];
    const std::string activation = ctx->saved_data["activation"].toStringRef();
    const double eps = ctx->saved_data["eps"].toDouble(), slope = ctx->saved_data["slope"].toDouble();
    variable_list out(9);
    if (!grads[0].defined() && !grads[1].defined() && !grads[2].defined()) return out;
    bool higher = false;  // is a graph of this step being recorded (create_graph): a third derivative
    if (at::GradMode::is_enabled()) {
      for (const at::Tensor* t : std::initializer_list<const at::Tensor*>{&grad, &x, &scale, &shift, &grads[0], &grads[1], &grads[2]})
        higher = higher || (t->defined() && t->requires_grad());
    }
    at::Tensor d_grad, d_x, d_scale;
    if (higher) {
      std::tie(d_grad, d_x, d_scale) =
          closed_form_double_backward(grad, x, scale, shift, grads[0], grads[1], grads[2], eps,
                                      parse_activation(activation, "instance_norm_backward"), slope);
    } else {
      std::tie(d_grad, d_x, d_scale) = call_double_backward(grad, x, mean, rstd, opt(scale), opt(shift),
                                                            opt(grads[0]), opt(grads[1]), opt(grads[2]),
                                                            activation, slope);
    }
    // (needs_input_grad counts tensor inputs only: an absent scale has no edge)
    if (ctx->needs_input_grad(0)) out[0] = d_grad;
    if (ctx->needs_input_grad(1)) out[1] = d_x;
    if (scale.defined() && ctx->needs_input_grad(4)) out[4] = d_scale.to(scale.scalar_type());
    return out;  // mean and rstd: non-differentiable outputs of the forward; shift: no derivative
  }
};

class InstanceNormFunction : public torch::autograd::Function<InstanceNormFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const OptTensor& scale,
                               const OptTensor& shift, double eps, c10::string_view activation, double slope) {
    at::Tensor y, mean, rstd;
    {
      at::AutoDispatchBelowADInplaceOrView below;
      std::tie(y, mean, rstd) = call_forward(x, scale, shift, eps, activation, slope);
    }
    ctx->save_for_backward({x, mean, rstd, scale.value_or(at::Tensor()), shift.value_or(at::Tensor())});
    save_args(ctx, eps, activation, slope);
    ctx->mark_non_differentiable({mean, rstd});
    return {y, mean, rstd};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list out(6);
    if (!grads[0].defined()) return out;
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &mean = saved[1], &rstd = saved[2], &scale = saved[3], &shift = saved[4];
    // through the dispatcher with autograd on: under create_graph the backward records its own node
    auto [gx, gscale, gshift] =
        call_backward(grads[0], x, mean, rstd, opt(scale), opt(shift), ctx->saved_data["eps"].toDouble(),
                      ctx->saved_data["activation"].toStringRef(), ctx->saved_data["slope"].toDouble());
    // (needs_input_grad counts tensor inputs only: an absent scale has no edge, so shift's is 1 then)
    if (ctx->needs_input_grad(0)) out[0] = gx;
    if (scale.defined() && ctx->needs_input_grad(1)) out[1] = gscale.to(scale.scalar_type());
    if (shift.defined() && ctx->needs_input_grad(scale.defined() ? 2 : 1)) out[2] = gshift.to(shift.scalar_type());
    return out;
  }
};

Triple instance_norm_autograd(const at::Tensor& x, const OptTensor& scale, const OptTensor& shift, double eps,
                              c10::string_view activation, double slope) {
  auto r = InstanceNormFunction::apply(x, scale, shift, eps, activation, slope);
  return {r[0], r[1], r[2]};
}

Triple instance_norm_backward_autograd(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& mean,
                                       const at::Tensor& rstd, const OptTensor& scale, const OptTensor& shift,
                                       double eps, c10::string_view activation, double slope) {
  auto r = InstanceNormBackwardFunction::apply(grad, x, mean, rstd, scale, shift, eps, activation, slope);
  return {r[0], r[1], r[2]};
}

}  // namespace

TORCH_LIBRARY_IMPL(genfast, Autograd, m) {
  m.impl("instance_norm", &instance_norm_autograd);
  m.impl("instance_norm_backward", &instance_norm_backward_autograd);
}

}  // namespace genfast::instance_norm
