// Stem convolution: a 2-D convolution (dilation 1, one group, zero padding) for inputs with few
// channels, the first layer of an image discriminator (1 channel for Fashion-MNIST, 3 for RGB),
// with its activation fused (none, relu or leaky_relu: a(z) = z for z > 0, slope * z otherwise,
// slope 0 for relu). Checks and geometry shared by the CPU and CUDA kernels.
//
//   forward          y[n, o, l]  = a(b[o] + sum_k W[o, k] * patch(x[n])[k, l])
//                    or, given `slopes_of` (an earlier output), the same sum times a'(slopes_of)
//                    instead of a(.): the layer linearised at that output, what the double
//                    backward needs
//   backward_input   dx[n]       = col2im(W^T dz[n])                       (patch's adjoint)
//   backward_weight  dW[o, k]    = sum_n sum_l dz[n, o, l] * patch(x[n])[k, l],  db[o] = sum dz[n, o, l]
//
// with dz = dy * a'(out) (out: the forward's output; a'(out) = 1 where out > 0, else slope, which for
// slope >= 0 is a'(z)), k = (c, kh, kw) over the C_in * KH * KW taps, l = (oh, ow) over the output
// pixels and patch(x)[k, l] = x[c, oh * sh + kh - ph, ow * sw + kw - pw] (0 outside x). At fixed
// slopes the three are linear in each argument, so each one's derivative is another of the three
// (genfast/ops/stem_conv2d.py): every order of derivative runs on these kernels.
//
// Why it exists: with C_in = 1 or 3 the patch matrix is short (K = 16 or 48 rows) and oneDNN's
// convolution, which torch uses on the CPU, runs it several times below the FLOP rate it reaches
// on wide layers; the WGAN-GP penalty needs this layer's input gradient on every critic step. The
// fused activation saves the passes over the layer's output, the largest tensor of the critic.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/ArrayRef.h>
#include <c10/util/string_view.h>

#include <string>

#include "common/checks.h"

namespace genfast::stem_conv2d {

// The activation as its slope below zero; `fused` false for "none".
struct Act {
  bool fused;
  double slope;  // float kernels round it once; the float64 path keeps it exact
};

inline Act parse_activation(c10::string_view s, double negative_slope, const char* op) {
  if (s == "none") return {false, 1.0};
  if (s == "relu") return {true, 0.0};
  TORCH_CHECK(s == "leaky_relu", "genfast.", op, ": expected activation to be one of 'none', 'relu', 'leaky_relu', got '",
              std::string(s.data(), s.size()), "'");
  TORCH_CHECK(negative_slope >= 0, "genfast.", op, ": expected negative_slope >= 0 (the backward reads the "
              "slope from the output's sign), got ", negative_slope);
  return {true, negative_slope};
}

// `name` (an output of the forward, for its slopes), when given with a fused activation, must be
// shaped like the output and sit beside `like`.
inline void check_slopes(const c10::optional<at::Tensor>& t, c10::IntArrayRef shape, const at::Tensor& like,
                         const char* like_name, const Act& act, const char* op, const char* name) {
  if (!act.fused || !t.has_value()) return;
  TORCH_CHECK(t->sizes() == shape, "genfast.", op, ": expected ", name, " of shape ", shape, ", got ", t->sizes());
  check_floating(*t, op, name);
  check_same_device(like, like_name, *t, name, op);
}

struct Geometry {
  int64_t N, C, H, W;    // input
  int64_t O, KH, KW;     // weight (O, C, KH, KW)
  int64_t sh, sw, ph, pw;
  int64_t Ho, Wo;        // output
  int64_t K() const { return C * KH * KW; }
  int64_t L() const { return Ho * Wo; }
};

inline std::pair<int64_t, int64_t> pair_of(c10::IntArrayRef v, const char* op, const char* name, int64_t min) {
  TORCH_CHECK(v.size() == 2, "genfast.", op, ": expected ", name, " to be two integers (h, w), got ", v);
  TORCH_CHECK(v[0] >= min && v[1] >= min, "genfast.", op, ": expected ", name, " >= ", min, ", got ", v);
  return {v[0], v[1]};
}

// Fills in everything from the sizes; Ho and Wo must come out >= 1.
inline Geometry measure(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t KH, int64_t KW,
                        c10::IntArrayRef stride, c10::IntArrayRef padding, const char* op) {
  Geometry g{};
  g.N = N, g.C = C, g.H = H, g.W = W, g.O = O, g.KH = KH, g.KW = KW;
  std::tie(g.sh, g.sw) = pair_of(stride, op, "stride", 1);
  std::tie(g.ph, g.pw) = pair_of(padding, op, "padding", 0);
  TORCH_CHECK(KH >= 1 && KW >= 1, "genfast.", op, ": expected a kernel of at least 1 x 1, got ", KH, " x ", KW);
  g.Ho = (H + 2 * g.ph - KH) / g.sh + 1;
  g.Wo = (W + 2 * g.pw - KW) / g.sw + 1;
  TORCH_CHECK(H + 2 * g.ph >= KH && W + 2 * g.pw >= KW, "genfast.", op, ": the padded input (", H + 2 * g.ph,
              " x ", W + 2 * g.pw, ") is smaller than the kernel (", KH, " x ", KW, ")");
  return g;
}

inline void check_pair(const at::Tensor& a, const char* a_name, const at::Tensor& b, const char* b_name,
                       const char* op) {
  check_floating(b, op, b_name);
  check_same_device(a, a_name, b, b_name, op);
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), "genfast.", op, ": expected ", b_name, " to have ", a_name,
              "'s dtype (", a.scalar_type(), "), got ", b.scalar_type());
}

inline std::pair<Geometry, Act> check_forward(const at::Tensor& x, const at::Tensor& weight,
                                              const c10::optional<at::Tensor>& bias,
                                              const c10::optional<at::Tensor>& slopes_of, c10::IntArrayRef stride,
                                              c10::IntArrayRef padding, c10::string_view activation,
                                              double negative_slope) {
  const char* op = "stem_conv2d";
  const auto act = parse_activation(activation, negative_slope, op);
  check_dim(x, 4, op, "x", "(N, C, H, W)");
  check_floating(x, op, "x");
  check_dim(weight, 4, op, "weight", "(O, C, KH, KW)");
  check_pair(x, "x", weight, "weight", op);
  TORCH_CHECK(weight.size(1) == x.size(1), "genfast.", op, ": expected weight of shape (O, ", x.size(1),
              ", KH, KW) to match x with C = ", x.size(1), ", got ", weight.sizes());
  if (bias.has_value()) {
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == weight.size(0), "genfast.", op, ": expected bias of shape (",
                weight.size(0), ",), got ", bias->sizes());
    check_pair(x, "x", *bias, "bias", op);
  }
  const auto g = measure(x.size(0), x.size(1), x.size(2), x.size(3), weight.size(0), weight.size(2), weight.size(3),
                         stride, padding, op);
  check_slopes(slopes_of, {g.N, g.O, g.Ho, g.Wo}, x, "x", act, op, "slopes_of");
  return {g, act};
}

// The backward ops' grad_out (and its checks before the geometry is known) ...
inline void check_grad_out(const at::Tensor& grad_out, const char* op) {
  check_dim(grad_out, 4, op, "grad_out", "(N, O, Ho, Wo)");
  check_floating(grad_out, op, "grad_out");
}

// ... and after: its shape, and `out` (the forward's output), which they read the slopes from when
// the activation is fused.
inline void check_grad_and_slopes(const at::Tensor& grad_out, const c10::optional<at::Tensor>& out, const Geometry& g,
                                  const Act& act, const char* op) {
  TORCH_CHECK(grad_out.size(0) == g.N && grad_out.size(1) == g.O && grad_out.size(2) == g.Ho && grad_out.size(3) == g.Wo,
              "genfast.", op, ": expected grad_out of shape (", g.N, ", ", g.O, ", ", g.Ho, ", ", g.Wo, "), got ",
              grad_out.sizes());
  TORCH_CHECK(!act.fused || out.has_value(), "genfast.", op, ": expected out (the forward's output) with a fused activation");
  check_slopes(out, grad_out.sizes(), grad_out, "grad_out", act, op, "out");
}

inline std::pair<Geometry, Act> check_backward_input(const at::Tensor& grad_out, const c10::optional<at::Tensor>& out,
                                                     const at::Tensor& weight, c10::IntArrayRef input_hw,
                                                     c10::IntArrayRef stride, c10::IntArrayRef padding,
                                                     c10::string_view activation, double negative_slope) {
  const char* op = "stem_conv2d_backward_input";
  const auto act = parse_activation(activation, negative_slope, op);
  check_grad_out(grad_out, op);
  check_dim(weight, 4, op, "weight", "(O, C, KH, KW)");
  check_pair(grad_out, "grad_out", weight, "weight", op);
  const auto hw = pair_of(input_hw, op, "input_hw", 1);
  const auto g = measure(grad_out.size(0), weight.size(1), hw.first, hw.second, weight.size(0), weight.size(2),
                         weight.size(3), stride, padding, op);
  check_grad_and_slopes(grad_out, out, g, act, op);
  return {g, act};
}

inline std::pair<Geometry, Act> check_backward_weight(const at::Tensor& grad_out, const c10::optional<at::Tensor>& out,
                                                      const at::Tensor& x, c10::IntArrayRef kernel_size,
                                                      c10::IntArrayRef stride, c10::IntArrayRef padding,
                                                      c10::string_view activation, double negative_slope) {
  const char* op = "stem_conv2d_backward_weight";
  const auto act = parse_activation(activation, negative_slope, op);
  check_grad_out(grad_out, op);
  check_dim(x, 4, op, "x", "(N, C, H, W)");
  check_pair(grad_out, "grad_out", x, "x", op);
  const auto k = pair_of(kernel_size, op, "kernel_size", 1);
  const auto g = measure(x.size(0), x.size(1), x.size(2), x.size(3), grad_out.size(1), k.first, k.second, stride,
                         padding, op);
  check_grad_and_slopes(grad_out, out, g, act, op);
  return {g, act};
}

// a'(out): 1 where out > 0, else the slope (the float64 path's dz and slopes, and the CUDA side's)
inline at::Tensor slope_factor(const at::Tensor& out, const Act& act) {
  return at::where(out > 0, at::ones_like(out), at::full_like(out, act.slope));
}

// dz = dy * a'(out) with ATen ops (out: the forward's output; dy unchanged without an activation)
inline at::Tensor masked_grad(const at::Tensor& grad_out, const c10::optional<at::Tensor>& out, const Act& act) {
  return act.fused ? grad_out * slope_factor(*out, act).to(grad_out.scalar_type()) : grad_out;
}

}  // namespace genfast::stem_conv2d
