// A register-blocked float GEMM micro-kernel for the CPU kernels (GotoBLAS shape: an MR x NR
// tile of C held in registers, A broadcast one element at a time, B read as NR-wide vectors).
// With AVX2 Vectorized<float> is 8 wide, NR = 16 and MR = 6: 12 accumulators + 2 B vectors
// + 1 broadcast = 15 of the 16 ymm registers.
#pragma once

#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include <cstdint>

namespace genfast::cpu {

using Vec = at::vec::Vectorized<float>;
constexpr int kNR = 2 * Vec::size();
constexpr int kMR = 5;

// acc[r * ldc + j] = sum_k a[r][k * a_stride] * b[k * kNR + j]   for r < MR, j < kNR.
// `a` holds MR row pointers so the rows may live in different packed panels. mr <= kMR.
template <int MR>
inline void micro_kernel(int64_t K, const float* const* a, int64_t a_stride, const float* b,
                         float* acc, int64_t ldc = kNR) {
  Vec c0[MR], c1[MR];
  const float* ap[MR];
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) {
    c0[r] = Vec(0.f);
    c1[r] = Vec(0.f);
    ap[r] = a[r];
  }
  for (int64_t k = 0; k < K; ++k) {
    const Vec b0 = Vec::loadu(b);
    const Vec b1 = Vec::loadu(b + Vec::size());
    b += kNR;
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const Vec ar(*ap[r]);
      ap[r] += a_stride;
      c0[r] = at::vec::fmadd(ar, b0, c0[r]);
      c1[r] = at::vec::fmadd(ar, b1, c1[r]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) {
    c0[r].store(acc + r * ldc);
    c1[r].store(acc + r * ldc + Vec::size());
  }
}

inline void micro_kernel(int mr, int64_t K, const float* const* a, int64_t a_stride,
                         const float* b, float* acc, int64_t ldc = kNR) {
  static_assert(kMR >= 1 && kMR <= 6, "micro_kernel dispatch covers MR = 1..6");
  switch (mr) {
    case 6:
      if constexpr (kMR >= 6) micro_kernel<6>(K, a, a_stride, b, acc, ldc);
      break;
    case 5: micro_kernel<5>(K, a, a_stride, b, acc, ldc); break;
    case 4: micro_kernel<4>(K, a, a_stride, b, acc, ldc); break;
    case 3: micro_kernel<3>(K, a, a_stride, b, acc, ldc); break;
    case 2: micro_kernel<2>(K, a, a_stride, b, acc, ldc); break;
    default: micro_kernel<1>(K, a, a_stride, b, acc, ldc); break;
  }
}

}  // namespace genfast::cpu
