// exp, sigmoid and tanh on 8 floats with AVX2 + FMA, inline.
//
// ATen's Vectorized<float>::exp / ::tanh call into SLEEF (u10: within 1 ulp). Calls cannot be
// interleaved, and every call makes the compiler spill the live ymm registers around it; the LSTM
// cell update needs five of them per vector (3 sigmoids, 2 tanh), and there SLEEF's tanh alone
// costs ~75 cycles per vector. These are written out so the compiler can schedule them together.
//
// Accuracy, measured against float64 on every 31st float32 bit pattern (122 M values) and on every
// float32 in a few binades (tests/test_lstm_sample.py checks a sample and the special values):
//   exp_ps      < 1.01 ulp for normal results (max seen 1.006); inputs are clamped to [-87.34, 88.37], so results
//               below FLT_MIN come out as ~1.2e-38 and above 2.4e38 as ~2.4e38 (callers here only
//               feed it into 1 / (1 + e) or 2 / (e + 1), where both ends are exact enough).
//   sigmoid_ps  1 / (1 + exp(-x)): <= 2.45 ulp (torch.sigmoid's own float32 worst case is the same
//               2.45 ulp, at the same point); 1 for x >= 88, ~0 (denormal) for x <= -88.
//   tanh_ps     < 1.1 ulp (max seen 1.09; SLEEF u10: <= 1; MKL, which torch.tanh uses: 0.51); odd, keeps -0,
//               saturates to +-1.
// NaN propagates through all three.
//
// Derivation: exp by Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, exp(r) = 1 + r + r^2 g(r)
// with g a degree-4 polynomial, then the exponent field; tanh by x + x^3 P(x^2) (P degree 8) for
// |x| < 0.9 and 1 - 2 / (exp(2|x|) + 1) above. The polynomial coefficients are weighted
// least-squares fits of the relative error on Chebyshev nodes (numpy, float64), rounded to float.
#pragma once

#if defined(CPU_CAPABILITY_AVX2)
#include <immintrin.h>

namespace genfast::cpu::vmath {

// exp_ps clamps its argument to [kExpMinArg, 88.37]: below, exp(x) < FLT_MIN.
constexpr float kExpMinArg = -87.33654f;

inline __m256 exp_ps(__m256 x) {
  // min/max return the second operand when either is NaN: NaN passes through
  x = _mm256_min_ps(_mm256_set1_ps(88.37f), x);
  x = _mm256_max_ps(_mm256_set1_ps(kExpMinArg), x);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // r = x - n ln2, with ln2 split in a part exact in n * part and the rest
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860677e-06f), r);
  __m256 g = _mm256_set1_ps(0.00137514074f);
  g = _mm256_fmadd_ps(g, r, _mm256_set1_ps(0.00836891588f));
  g = _mm256_fmadd_ps(g, r, _mm256_set1_ps(0.0416695327f));
  g = _mm256_fmadd_ps(g, r, _mm256_set1_ps(0.166665182f));
  g = _mm256_fmadd_ps(g, r, _mm256_set1_ps(0.499999881f));
  const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(g, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
  // 2^n for n in [-126, 127] straight into the exponent field
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

inline __m256 sigmoid_ps(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp_ps(_mm256_xor_ps(x, _mm256_set1_ps(-0.0f)))));
}

inline __m256 tanh_ps(__m256 x) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 ax = _mm256_andnot_ps(sign, x);
  const __m256 s = _mm256_mul_ps(ax, ax);
  __m256 p = _mm256_set1_ps(-5.52731835e-05f);
  p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(0.000359535363f));
  p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-0.00126962841f));
  p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(0.00349513837f));
  p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-0.00883099344f));
  p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(0.0218628757f));
  p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-0.0539674759f));
  p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(0.133333281f));
  p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-0.333333343f));
  const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(ax, s), p, ax);
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 e = exp_ps(_mm256_add_ps(ax, ax));
  const __m256 large = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
  const __m256 t = _mm256_blendv_ps(large, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.9f), _CMP_LT_OQ));
  return _mm256_or_ps(t, _mm256_and_ps(sign, x));
}

}  // namespace genfast::cpu::vmath
#endif
