// CUDA kernels of the Gram matrix and the Gram style loss: the same math as gram_cpu.cpp.
//
// Forward:  32x32 output tiles on and above the diagonal only; L is split across blocks
//           (split-K) into per-split partial sums, summed in a fixed order by a finalize kernel
//           that scales and mirrors (deterministic: no atomics).
// Backward: dF = S F, a shared-memory tiled product; F read once per 32-row band of S.
// float16 / bfloat16 load as float and accumulate in float32; float64 accumulates in float64.

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
// c10's stream and guard headers only: ATen/cuda/CUDAContext.h pulls in cuBLAS/cuSPARSE headers
// that a compiler-only CUDA toolkit does not ship.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>

#include "gram/gram.h"

namespace genfast::gram {
namespace {

constexpr int kTile = 32;      // output tile edge
constexpr int kThreads = 16;   // threads per tile edge: each thread owns a 2x2 block of the tile

struct Strides3 {
  int64_t n, c, l;
};

// partial[split][n][i][j] for the upper-triangle tiles; blockIdx.x enumerates those tiles.
template <typename scalar_t, typename acc_t>
__global__ void gram_partial_kernel(const scalar_t* __restrict__ f, Strides3 s, int64_t C, int64_t L,
                                    int64_t l_per_split, int tiles_per_row, acc_t* __restrict__ partial) {
  // map the linear tile index to (ti, tj) with ti <= tj
  int t = blockIdx.x, ti = 0;
  int row_len = tiles_per_row;
  while (t >= row_len) {
    t -= row_len;
    ++ti;
    --row_len;
  }
  const int tj = ti + t;
  const int64_t n = blockIdx.y, split = blockIdx.z;
  const int64_t l_begin = split * l_per_split, l_end = min(L, l_begin + l_per_split);

  __shared__ acc_t fi[kTile][kTile + 1];
  __shared__ acc_t fj[kTile][kTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  acc_t acc[2][2] = {{0, 0}, {0, 0}};
  const scalar_t* fn = f + n * s.n;

  for (int64_t l0 = l_begin; l0 < l_end; l0 += kTile) {
    for (int e = ty * kThreads + tx; e < kTile * kTile; e += kThreads * kThreads) {
      const int r = e / kTile, k = e % kTile;
      const int64_t l = l0 + k;
      const int64_t ri = int64_t(ti) * kTile + r, rj = int64_t(tj) * kTile + r;
      fi[r][k] = (ri < C && l < l_end) ? static_cast<acc_t>(fn[ri * s.c + l * s.l]) : acc_t(0);
      fj[r][k] = (rj < C && l < l_end) ? static_cast<acc_t>(fn[rj * s.c + l * s.l]) : acc_t(0);
    }
    __syncthreads();
#pragma unroll 8
    for (int k = 0; k < kTile; ++k) {
      const acc_t a0 = fi[ty][k], a1 = fi[ty + kThreads][k];
      const acc_t b0 = fj[tx][k], b1 = fj[tx + kThreads][k];
      acc[0][0] += a0 * b0;
      acc[0][1] += a0 * b1;
      acc[1][0] += a1 * b0;
      acc[1][1] += a1 * b1;
    }
    __syncthreads();
  }
  acc_t* out = partial + (split * gridDim.y + n) * C * C;
  for (int a = 0; a < 2; ++a) {
    for (int b = 0; b < 2; ++b) {
      const int64_t i = int64_t(ti) * kTile + ty + a * kThreads;
      const int64_t j = int64_t(tj) * kTile + tx + b * kThreads;
      if (i < C && j < C && i <= j) out[i * C + j] = acc[a][b];
    }
  }
}

template <typename acc_t, typename out_t>
__global__ void gram_finalize_kernel(const acc_t* __restrict__ partial, int64_t splits, int64_t N, int64_t C,
                                     acc_t scale, out_t* __restrict__ out) {
  const int64_t total = N * C * C;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = e / (C * C), i = (e / C) % C, j = e % C;
    const int64_t lo = min(i, j), hi = max(i, j);
    acc_t v = 0;
    for (int64_t p = 0; p < splits; ++p) v += partial[((p * N + n) * C + lo) * C + hi];
    out[e] = static_cast<out_t>(v * scale);
  }
}

at::Tensor gram_out_dtype_cuda(const at::Tensor& f, double scale, at::ScalarType out_dtype) {
  check_features(f, "gram_matrix");
  const c10::cuda::CUDAGuard guard(f.device());
  const int64_t N = f.size(0), C = f.size(1), L = f.size(2);
  auto out = at::empty({N, C, C}, f.options().dtype(out_dtype));
  if (out.numel() == 0) return out;
  if (L == 0) return out.zero_();
  TORCH_CHECK(N <= 65535, "genfast.gram_matrix: expected at most 65535 samples on CUDA, got N = ", N);
  const int tiles_per_row = static_cast<int>((C + kTile - 1) / kTile);
  const int64_t tiles = int64_t(tiles_per_row) * (tiles_per_row + 1) / 2;
  TORCH_CHECK(tiles <= INT32_MAX, "genfast.gram_matrix: C = ", C, " is too large for the CUDA kernel");
  // enough blocks to fill a large GPU, at least 256 columns of L per block
  const int64_t want = std::max<int64_t>(1, 1024 / std::max<int64_t>(1, N * tiles));
  const int64_t splits = std::min<int64_t>({want, (L + 255) / 256, 64});
  const int64_t l_per_split = (L + splits - 1) / splits;
  const Strides3 s{f.stride(0), f.stride(1), f.stride(2)};
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, f.scalar_type(), "genfast::gram_matrix", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    auto partial = at::empty({splits, N, C, C}, f.options().dtype(c10::CppTypeToScalarType<acc_t>::value));
    const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(N), static_cast<unsigned>(splits));
    const dim3 block(kThreads, kThreads);
    gram_partial_kernel<scalar_t, acc_t><<<grid, block, 0, stream>>>(
        f.const_data_ptr<scalar_t>(), s, C, L, l_per_split, tiles_per_row, partial.mutable_data_ptr<acc_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    const int64_t total = N * C * C;
    const int fin_blocks = static_cast<int>(std::min<int64_t>((total + 255) / 256, 4096));
    if (out_dtype == f.scalar_type()) {
      gram_finalize_kernel<acc_t, scalar_t><<<fin_blocks, 256, 0, stream>>>(
          partial.const_data_ptr<acc_t>(), splits, N, C, static_cast<acc_t>(scale), out.mutable_data_ptr<scalar_t>());
    } else {
      gram_finalize_kernel<acc_t, acc_t><<<fin_blocks, 256, 0, stream>>>(
          partial.const_data_ptr<acc_t>(), splits, N, C, static_cast<acc_t>(scale), out.mutable_data_ptr<acc_t>());
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

at::Tensor gram_matrix_cuda(const at::Tensor& f, double scale) {
  return gram_out_dtype_cuda(f, scale, f.scalar_type());
}

at::Tensor gram_acc_cuda(const at::Tensor& f, double scale) {
  return gram_out_dtype_cuda(f, scale, acc_type(f.scalar_type()));
}

// out[n, i, l] = sum_k S[n, i, k] F[n, k, l]
template <typename scalar_t, typename acc_t>
__global__ void sym_apply_kernel(const acc_t* __restrict__ S, const scalar_t* __restrict__ f, Strides3 s,
                                 scalar_t* __restrict__ out, Strides3 so, int64_t C, int64_t L) {
  __shared__ acc_t st[kTile][kTile + 1];
  __shared__ acc_t ft[kTile][kTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t n = blockIdx.z;
  const int64_t i0 = int64_t(blockIdx.y) * kTile, l0 = int64_t(blockIdx.x) * kTile;
  const acc_t* sn = S + n * C * C;
  const scalar_t* fn = f + n * s.n;
  acc_t acc[2][2] = {{0, 0}, {0, 0}};
  for (int64_t k0 = 0; k0 < C; k0 += kTile) {
    for (int e = ty * kThreads + tx; e < kTile * kTile; e += kThreads * kThreads) {
      const int r = e / kTile, c = e % kTile;
      st[r][c] = (i0 + r < C && k0 + c < C) ? sn[(i0 + r) * C + k0 + c] : acc_t(0);
      ft[r][c] = (k0 + r < C && l0 + c < L) ? static_cast<acc_t>(fn[(k0 + r) * s.c + (l0 + c) * s.l]) : acc_t(0);
    }
    __syncthreads();
#pragma unroll 8
    for (int k = 0; k < kTile; ++k) {
      const acc_t a0 = st[ty][k], a1 = st[ty + kThreads][k];
      const acc_t b0 = ft[k][tx], b1 = ft[k][tx + kThreads];
      acc[0][0] += a0 * b0;
      acc[0][1] += a0 * b1;
      acc[1][0] += a1 * b0;
      acc[1][1] += a1 * b1;
    }
    __syncthreads();
  }
  scalar_t* on = out + n * so.n;
  for (int a = 0; a < 2; ++a) {
    for (int b = 0; b < 2; ++b) {
      const int64_t i = i0 + ty + a * kThreads, l = l0 + tx + b * kThreads;
      if (i < C && l < L) on[i * so.c + l * so.l] = static_cast<scalar_t>(acc[a][b]);
    }
  }
}

at::Tensor sym_apply_cuda(const at::Tensor& S, const at::Tensor& f) {
  const c10::cuda::CUDAGuard guard(f.device());
  // same strides as a dense F (a channels_last map gives a channels_last grad), else contiguous
  at::Tensor out = at::empty_like(f);
  if (out.numel() == 0) return out;
  const int64_t N = f.size(0), C = f.size(1), L = f.size(2);
  TORCH_CHECK(N <= 65535 && (C + kTile - 1) / kTile <= 65535,
              "genfast.gram_matrix_backward: features of shape ", f.sizes(), " are too large for the CUDA kernel");
  const Strides3 s{f.stride(0), f.stride(1), f.stride(2)};
  const Strides3 so{out.stride(0), out.stride(1), out.stride(2)};
  const dim3 grid(static_cast<unsigned>((L + kTile - 1) / kTile), static_cast<unsigned>((C + kTile - 1) / kTile),
                  static_cast<unsigned>(N));
  const dim3 block(kThreads, kThreads);
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, f.scalar_type(), "genfast::gram_matrix_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto sc = S.to(c10::CppTypeToScalarType<acc_t>::value).contiguous();
    sym_apply_kernel<scalar_t, acc_t><<<grid, block, 0, stream>>>(
        sc.const_data_ptr<acc_t>(), f.const_data_ptr<scalar_t>(), s, out.mutable_data_ptr<scalar_t>(), so, C, L);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(genfast, CUDA, m) {
  DeviceKernels<gram_matrix_cuda, gram_acc_cuda, sym_apply_cuda>::register_in(m);
}

}  // namespace genfast::gram
