// genfast::_vec_math: the inline float32 exp / sigmoid / tanh of common/cpu_vec_math.h applied to a
// tensor, so that tests can measure their accuracy (tests/test_lstm_sample.py). Not a public op. In a
// build without AVX2 it applies ATen's Vectorized functions, which the kernels then use instead.
#include <ATen/ATen.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <algorithm>
#include <string>

#include "common/cpu_vec_math.h"

namespace genfast::cpu {
namespace {

using Vec = at::vec::Vectorized<float>;

Vec apply_fn(const Vec& x, const std::string& fn) {
#if defined(CPU_CAPABILITY_AVX2)
  if (fn == "exp") return vmath::exp_ps(x);
  if (fn == "sigmoid") return vmath::sigmoid_ps(x);
  return vmath::tanh_ps(x);
#else
  const Vec one(1.0f);
  if (fn == "exp") return x.exp();
  if (fn == "sigmoid") return one / (one + x.neg().exp());
  return x.tanh();
#endif
}

at::Tensor vec_math_cpu(const at::Tensor& x, c10::string_view fn_view) {
  const std::string fn(fn_view);
  TORCH_CHECK(fn == "exp" || fn == "sigmoid" || fn == "tanh", "_vec_math: expected fn exp, sigmoid or tanh, got ",
              fn);
  TORCH_CHECK(x.scalar_type() == at::kFloat, "_vec_math: expected x float32, got ", x.scalar_type());
  const at::Tensor xc = x.contiguous();
  at::Tensor y = at::empty_like(xc);
  const float* xp = xc.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const int64_t n = xc.numel(), W = Vec::size();
  int64_t i = 0;
  for (; i + W <= n; i += W) apply_fn(Vec::loadu(xp + i), fn).store(yp + i);
  if (i < n) apply_fn(Vec::loadu(xp + i, n - i), fn).store(yp + i, n - i);
  return y;
}

}  // namespace

TORCH_LIBRARY_IMPL(genfast, CPU, m) { m.impl("_vec_math", &vec_math_cpu); }

}  // namespace genfast::cpu
