// Autograd of the stem convolution ops, registered in C++ (as for instance_norm and
// minibatch_stddev) rather than with torch.library.register_autograd in Python, for two reasons:
// the Python wrapper costs ~0.15 ms per node, and a C++ node's needs_input_grad asks the running
// backward pass which inputs it wants. In a gradient penalty's first pass (autograd.grad(D(x), x,
// create_graph=True)) the weights' gradient is not wanted, and a Python node, which knows only
// what required grad at forward time, would compute it anyway.
//
// The derivatives (math: stem_conv2d.h). With m the slopes' source (slopes_of, else the output
// when the activation is fused) and dz = dy * a'(m):
//   stem_conv2d            dx = backward_input(dy, m, W),  (dW, db) = backward_weight(dy, m, x)
//   backward_input         (the adjoint of the linearised conv(., W)) given ggx:
//                          d(dy) = stem_conv2d(ggx, W, slopes_of = m),  dW = backward_weight(dy, m, ggx).dW
//   backward_weight        (bilinear in dy and x) given (ggW, ggb):
//                          d(dy) = stem_conv2d(x, ggW, ggb, slopes_of = m),  dx = backward_input(dy, m, ggW)
// m only picks slopes (piecewise constant): it gets no gradient. Each derivative calls the ops
// through the dispatcher with autograd on, so under create_graph it records its own node: every
// order of derivative runs on the native kernels.

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <string>
#include <vector>

namespace genfast::stem_conv2d {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using OptTensor = c10::optional<at::Tensor>;
using Pair = std::tuple<at::Tensor, at::Tensor>;

at::Tensor call_forward(const at::Tensor& x, const at::Tensor& weight, const OptTensor& bias,
                        const OptTensor& slopes_of, at::IntArrayRef stride, at::IntArrayRef padding,
                        c10::string_view activation, double slope) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("genfast::stem_conv2d", "")
                             .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const OptTensor&,
                                               const OptTensor&, at::IntArrayRef, at::IntArrayRef, c10::string_view,
                                               double)>();
  return op.call(x, weight, bias, slopes_of, stride, padding, activation, slope);
}

at::Tensor call_backward_input(const at::Tensor& grad, const OptTensor& out, const at::Tensor& weight,
                               at::IntArrayRef input_hw, at::IntArrayRef stride, at::IntArrayRef padding,
                               c10::string_view activation, double slope) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("genfast::stem_conv2d_backward_input", "")
                             .typed<at::Tensor(const at::Tensor&, const OptTensor&, const at::Tensor&,
                                               at::IntArrayRef, at::IntArrayRef, at::IntArrayRef, c10::string_view,
                                               double)>();
  return op.call(grad, out, weight, input_hw, stride, padding, activation, slope);
}

Pair call_backward_weight(const at::Tensor& grad, const OptTensor& out, const at::Tensor& x,
                          at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding,
                          c10::string_view activation, double slope) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("genfast::stem_conv2d_backward_weight", "")
                             .typed<Pair(const at::Tensor&, const OptTensor&, const at::Tensor&, at::IntArrayRef,
                                         at::IntArrayRef, at::IntArrayRef, c10::string_view, double)>();
  return op.call(grad, out, x, kernel_size, stride, padding, activation, slope);
}

inline OptTensor opt(const at::Tensor& t) { return t.defined() ? OptTensor(t) : OptTensor(); }

// The slopes' source as the derivatives pass it on: detached, so that no graph edge leads back to
// it (it gets no gradient, and an edge would make the engine run its node on a zero gradient).
inline OptTensor slopes(const at::Tensor& m) { return m.defined() ? OptTensor(m.detach()) : OptTensor(); }

// The geometry and activation every node keeps, and the arguments it passes on.
struct Args {
  std::vector<int64_t> stride, padding;
  std::string activation;
  double slope;

  void save(AutogradContext* ctx) const {
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["padding"] = padding;
    ctx->saved_data["activation"] = activation;
    ctx->saved_data["slope"] = slope;
  }
  static Args load(AutogradContext* ctx) {
    return {ctx->saved_data["stride"].toIntVector(), ctx->saved_data["padding"].toIntVector(),
            ctx->saved_data["activation"].toStringRef(), ctx->saved_data["slope"].toDouble()};
  }
};

Args args_of(at::IntArrayRef stride, at::IntArrayRef padding, c10::string_view activation, double slope) {
  return {stride.vec(), padding.vec(), std::string(activation.data(), activation.size()), slope};
}

// (needs_input_grad counts the tensor inputs that are present: an absent optional has no edge)

class StemConv2dBackwardInputFunction : public torch::autograd::Function<StemConv2dBackwardInputFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& grad, const OptTensor& out,
                            const at::Tensor& weight, at::IntArrayRef input_hw, at::IntArrayRef stride,
                            at::IntArrayRef padding, c10::string_view activation, double slope) {
    ctx->save_for_backward({grad, out.value_or(at::Tensor()), weight});
    args_of(stride, padding, activation, slope).save(ctx);
    at::AutoDispatchBelowADInplaceOrView below;
    return call_backward_input(grad, out, weight, input_hw, stride, padding, activation, slope);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list result(8);
    const at::Tensor& gg = grads[0];
    if (!gg.defined()) return result;
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &grad = saved[0], &out = saved[1], &weight = saved[2];
    const Args a = Args::load(ctx);
    if (ctx->needs_input_grad(0)) {
      result[0] = call_forward(gg, weight, {}, slopes(out), a.stride, a.padding, a.activation, a.slope);
    }
    if (ctx->needs_input_grad(out.defined() ? 2 : 1)) {
      result[2] = std::get<0>(call_backward_weight(grad, slopes(out), gg, {weight.size(2), weight.size(3)}, a.stride,
                                                   a.padding, a.activation, a.slope));
    }
    return result;
  }
};

class StemConv2dBackwardWeightFunction : public torch::autograd::Function<StemConv2dBackwardWeightFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& grad, const OptTensor& out,
                               const at::Tensor& x, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                               at::IntArrayRef padding, c10::string_view activation, double slope) {
    ctx->save_for_backward({grad, out.value_or(at::Tensor()), x});
    args_of(stride, padding, activation, slope).save(ctx);
    ctx->saved_data["kernel_size"] = kernel_size.vec();
    at::AutoDispatchBelowADInplaceOrView below;
    auto [gw, gb] = call_backward_weight(grad, out, x, kernel_size, stride, padding, activation, slope);
    return {gw, gb};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list result(8);
    at::Tensor gg_weight = grads[0];
    const at::Tensor& gg_bias = grads[1];
    if (!gg_weight.defined() && !gg_bias.defined()) return result;
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &grad = saved[0], &out = saved[1], &x = saved[2];
    const Args a = Args::load(ctx);
    if (!gg_weight.defined()) {
      const auto k = ctx->saved_data["kernel_size"].toIntVector();
      gg_weight = at::zeros({grad.size(1), x.size(1), k[0], k[1]}, x.options());
    }
    if (ctx->needs_input_grad(0)) {
      result[0] = call_forward(x, gg_weight, opt(gg_bias), slopes(out), a.stride, a.padding, a.activation, a.slope);
    }
    if (ctx->needs_input_grad(out.defined() ? 2 : 1)) {
      result[2] = call_backward_input(grad, slopes(out), gg_weight, {x.size(2), x.size(3)}, a.stride, a.padding,
                                      a.activation, a.slope);
    }
    return result;
  }
};

class StemConv2dFunction : public torch::autograd::Function<StemConv2dFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const OptTensor& bias, const OptTensor& slopes_of, at::IntArrayRef stride,
                            at::IntArrayRef padding, c10::string_view activation, double slope) {
    at::Tensor y;
    {
      at::AutoDispatchBelowADInplaceOrView below;
      y = call_forward(x, weight, bias, slopes_of, stride, padding, activation, slope);
    }
    const bool fused = activation != "none";
    ctx->save_for_backward({x, weight, fused ? (slopes_of.has_value() ? *slopes_of : y) : at::Tensor()});
    args_of(stride, padding, activation, slope).save(ctx);
    ctx->saved_data["has_bias"] = bias.has_value() && bias->defined();
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list result(8);
    const at::Tensor& gy = grads[0];
    if (!gy.defined()) return result;
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &weight = saved[1], &m = saved[2];
    const Args a = Args::load(ctx);
    const bool has_bias = ctx->saved_data["has_bias"].toBool();
    if (ctx->needs_input_grad(0)) {
      result[0] = call_backward_input(gy, slopes(m), weight, {x.size(2), x.size(3)}, a.stride, a.padding, a.activation,
                                      a.slope);
    }
    const bool want_w = ctx->needs_input_grad(1), want_b = has_bias && ctx->needs_input_grad(2);
    if (want_w || want_b) {
      auto [gw, gb] = call_backward_weight(gy, slopes(m), x, {weight.size(2), weight.size(3)}, a.stride, a.padding,
                                           a.activation, a.slope);
      if (want_w) result[1] = gw;
      if (want_b) result[2] = gb;
    }
    return result;  // slopes_of only picks slopes: no gradient
  }
};

at::Tensor stem_conv2d_autograd(const at::Tensor& x, const at::Tensor& weight, const OptTensor& bias,
                                const OptTensor& slopes_of, at::IntArrayRef stride, at::IntArrayRef padding,
                                c10::string_view activation, double slope) {
  return StemConv2dFunction::apply(x, weight, bias, slopes_of, stride, padding, activation, slope);
}

at::Tensor stem_conv2d_backward_input_autograd(const at::Tensor& grad, const OptTensor& out, const at::Tensor& weight,
                                               at::IntArrayRef input_hw, at::IntArrayRef stride,
                                               at::IntArrayRef padding, c10::string_view activation, double slope) {
  return StemConv2dBackwardInputFunction::apply(grad, out, weight, input_hw, stride, padding, activation, slope);
}

Pair stem_conv2d_backward_weight_autograd(const at::Tensor& grad, const OptTensor& out, const at::Tensor& x,
                                          at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding,
                                          c10::string_view activation, double slope) {
  auto r = StemConv2dBackwardWeightFunction::apply(grad, out, x, kernel_size, stride, padding, activation, slope);
  return {r[0], r[1]};
}

}  // namespace

TORCH_LIBRARY_IMPL(genfast, Autograd, m) {
  m.impl("stem_conv2d", &stem_conv2d_autograd);
  m.impl("stem_conv2d_backward_input", &stem_conv2d_backward_input_autograd);
  m.impl("stem_conv2d_backward_weight", &stem_conv2d_backward_weight_autograd);
}

}  // namespace genfast::stem_conv2d
