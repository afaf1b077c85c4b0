// Gram matrix and Gram-matrix style loss: input checks and the device-independent part of the
// style loss. The device kernels (gram_cpu.cpp, gram_cuda.cu) provide two primitives:
//
//   gram(F, scale)        G[n] = scale * F[n] F[n]^T     F: (N, C, L) any strides; G: (N, C, C)
//                         in the accumulation type (float32; float64 for float64 input)
//   sym_apply(S, F)       S[n] F[n]                      S: (N, C, C) contiguous, acc type;
//                         result in F's dtype, (N, C, L)
//
// and the style loss is built from them: loss = weight * reduce(sum((G - T)^2)), and
// dloss/dF = scale * k * (D + D^T) F with D = G - T and k = dloss/dG / D, one product over F.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/string_view.h>
#include <torch/library.h>

#include "common/checks.h"

namespace genfast::gram {

enum class Reduction { kMean, kSum, kFrobenius };

inline Reduction parse_reduction(c10::string_view s, const char* op) {
  if (s == "mse") return Reduction::kMean;
  if (s == "sum") return Reduction::kSum;
  if (s == "frobenius") return Reduction::kFrobenius;
  TORCH_CHECK(false, "genfast.", op, ": expected reduction to be one of 'mse', 'sum', 'frobenius', got '",
              std::string(s.data(), s.size()), "'");
}

inline at::ScalarType acc_type(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

inline void check_features(const at::Tensor& f, const char* op) {
  check_dim(f, 3, op, "features", "(N, C, L)");
  check_floating(f, op, "features");
}

inline void check_square(const at::Tensor& g, const at::Tensor& f, const char* op, const char* name,
                         bool allow_broadcast) {
  const int64_t n = f.size(0), c = f.size(1);
  TORCH_CHECK(g.dim() == 3 && g.size(1) == c && g.size(2) == c &&
                  (g.size(0) == n || (allow_broadcast && g.size(0) == 1)),
              "genfast.", op, ": expected ", name, " of shape (", allow_broadcast ? "1 or " : "", n,
              ", ", c, ", ", c, ") to match features of shape ", f.sizes(), ", got ", g.sizes());
  check_floating(g, op, name);
  check_same_device(f, "features", g, name, op);
}

using GramFn = at::Tensor (*)(const at::Tensor& f, double scale);
using SymApplyFn = at::Tensor (*)(const at::Tensor& s, const at::Tensor& f);

// dF = scale * (dG + dG^T) F
inline at::Tensor gram_backward(const at::Tensor& grad, const at::Tensor& f, double scale,
                                SymApplyFn sym_apply) {
  check_features(f, "gram_matrix_backward");
  check_square(grad, f, "gram_matrix_backward", "grad", /*allow_broadcast=*/false);
  const auto g = grad.to(acc_type(f.scalar_type()));
  const auto s = ((g + g.transpose(1, 2)) * scale).contiguous();
  return sym_apply(s, f);
}

inline at::Tensor squared_error_sum(const at::Tensor& gram, const at::Tensor& target) {
  const auto d = gram - target.to(gram.scalar_type());
  return (d * d).sum();
}

// Returns (loss, gram): gram (acc type) is saved for the backward.
inline std::tuple<at::Tensor, at::Tensor> style_loss_forward(const at::Tensor& f, const at::Tensor& target,
                                                             double scale, c10::string_view reduction,
                                                             double weight, GramFn gram) {
  check_features(f, "style_loss");
  check_square(target, f, "style_loss", "target", /*allow_broadcast=*/true);
  const auto red = parse_reduction(reduction, "style_loss");
  auto g = gram(f, scale);
  auto sq = squared_error_sum(g, target);
  at::Tensor loss;
  switch (red) {
    case Reduction::kMean: loss = sq / static_cast<double>(g.numel()); break;
    case Reduction::kSum: loss = sq; break;
    case Reduction::kFrobenius: loss = sq.sqrt(); break;
  }
  return {loss * weight, g};
}

inline at::Tensor style_loss_backward(const at::Tensor& grad, const at::Tensor& f, const at::Tensor& gram,
                                      const at::Tensor& target, double scale, c10::string_view reduction,
                                      double weight, SymApplyFn sym_apply) {
  check_features(f, "style_loss_backward");
  check_square(gram, f, "style_loss_backward", "gram", /*allow_broadcast=*/false);
  check_square(target, f, "style_loss_backward", "target", /*allow_broadcast=*/true);
  const auto red = parse_reduction(reduction, "style_loss_backward");
  const auto acc = gram.scalar_type();
  const auto d = gram - target.to(acc);
  // k = dloss/dG / D, a 0-dim tensor: no host synchronisation on CUDA.
  at::Tensor k;
  switch (red) {
    case Reduction::kMean: k = at::scalar_tensor(2.0 * weight / static_cast<double>(d.numel()), d.options()); break;
    case Reduction::kSum: k = at::scalar_tensor(2.0 * weight, d.options()); break;
    case Reduction::kFrobenius: {
      const auto norm = (d * d).sum().sqrt();
      // the subgradient 0 where the loss is exactly 0
      k = at::where(norm > 0, weight / norm, at::zeros_like(norm));
      break;
    }
  }
  const auto s = ((d + d.transpose(1, 2)) * (grad.to(acc) * k * scale)).contiguous();
  return sym_apply(s, f);
}

// The four registered ops of one device, from its three primitives:
//   TORCH_LIBRARY_IMPL(genfast, CPU, m) { DeviceKernels<gram_cpu, gram_acc_cpu, sym_apply_cpu>::register_in(m); }
template <GramFn kGram, GramFn kGramAcc, SymApplyFn kSymApply>
struct DeviceKernels {
  static at::Tensor gram_matrix(const at::Tensor& f, double scale) { return kGram(f, scale); }

  static at::Tensor gram_matrix_backward(const at::Tensor& grad, const at::Tensor& f, double scale) {
    return gram_backward(grad, f, scale, kSymApply);
  }

  static std::tuple<at::Tensor, at::Tensor> style_loss(const at::Tensor& f, const at::Tensor& target, double scale,
                                                       c10::string_view reduction, double weight) {
    return style_loss_forward(f, target, scale, reduction, weight, kGramAcc);
  }

  static at::Tensor style_loss_backward_op(const at::Tensor& grad, const at::Tensor& f, const at::Tensor& gram,
                                           const at::Tensor& target, double scale, c10::string_view reduction,
                                           double weight) {
    return style_loss_backward(grad, f, gram, target, scale, reduction, weight, kSymApply);
  }

  static void register_in(torch::Library& m) {
    m.impl("gram_matrix", &gram_matrix);
    m.impl("gram_matrix_backward", &gram_matrix_backward);
    m.impl("style_loss", &style_loss);
    m.impl("style_loss_backward", &style_loss_backward_op);
  }
};

}  // namespace genfast::gram
