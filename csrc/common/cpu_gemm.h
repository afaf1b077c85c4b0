// A register-blocked float GEMM micro-kernel for the CPU kernels (GotoBLAS shape: an MR x NR
// tile of C held in registers, A broadcast one element at a time, B read as NR-wide vectors).
// With AVX2 Vectorized<float> is 8 wide, NR = 16 and MR = 5: 10 accumulators + 2 B vectors
// + 1 broadcast = 13 of the 16 ymm registers.
#pragma once

#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include <cstdint>

namespace genfast::cpu {

using Vec = at::vec::Vectorized<float>;
constexpr int kNR = 2 * Vec::size();
constexpr int kMR = 5;

// The general form: row r of the tile starts at init[r] (0 when init is null), accumulates
// sum_k a[r][k * a_stride] * b[k * b_stride + j] for j < kNR, and leaves through finish(r, c0, c1)
// (c0: columns 0..7, c1: columns 8..15), which stores it wherever the caller wants. `a` holds MR
// row pointers so the rows may live in different packed panels.
template <int MR, typename Finish>
inline void micro_kernel_with(int64_t K, const float* const* a, int64_t a_stride, const float* b, int64_t b_stride,
                              const float* init, Finish&& finish) {
  Vec c0[MR], c1[MR];
  const float* ap[MR];
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) {
    c0[r] = Vec(init != nullptr ? init[r] : 0.f);
    c1[r] = c0[r];
    ap[r] = a[r];
  }
  // one shared offset into A's rows: the row pointers stay fixed, so when the compiler keeps some
  // of them on the stack the loop only reloads them (per-row increments there would chain a store
  // and a load through memory every k, which measured ~1.3x slower)
  for (int64_t k = 0, ka = 0; k < K; ++k, ka += a_stride) {
    const Vec b0 = Vec::loadu(b);
    const Vec b1 = Vec::loadu(b + Vec::size());
    b += b_stride;
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const Vec ar(ap[r][ka]);
      c0[r] = at::vec::fmadd(ar, b0, c0[r]);
      c1[r] = at::vec::fmadd(ar, b1, c1[r]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) finish(r, c0[r], c1[r]);
}

// micro_kernel_with for a run-time mr <= kMR.
template <typename Finish>
inline void micro_kernel_with(int mr, int64_t K, const float* const* a, int64_t a_stride, const float* b,
                              int64_t b_stride, const float* init, Finish&& finish) {
  static_assert(kMR >= 1 && kMR <= 6, "micro_kernel dispatch covers MR = 1..6");
  switch (mr) {
    case 6:
      if constexpr (kMR >= 6) micro_kernel_with<6>(K, a, a_stride, b, b_stride, init, finish);
      break;
    case 5: micro_kernel_with<5>(K, a, a_stride, b, b_stride, init, finish); break;
    case 4: micro_kernel_with<4>(K, a, a_stride, b, b_stride, init, finish); break;
    case 3: micro_kernel_with<3>(K, a, a_stride, b, b_stride, init, finish); break;
    case 2: micro_kernel_with<2>(K, a, a_stride, b, b_stride, init, finish); break;
    default: micro_kernel_with<1>(K, a, a_stride, b, b_stride, init, finish); break;
  }
}

// acc[r * ldc + j] = sum_k a[r][k * a_stride] * b[k * kNR + j]   for r < mr, j < kNR (B packed in
// kNR-wide panels).
inline void micro_kernel(int mr, int64_t K, const float* const* a, int64_t a_stride, const float* b, float* acc,
                         int64_t ldc = kNR) {
  micro_kernel_with(mr, K, a, a_stride, b, kNR, nullptr, [=](int r, Vec c0, Vec c1) {
    c0.store(acc + r * ldc);
    c1.store(acc + r * ldc + Vec::size());
  });
}

}  // namespace genfast::cpu
