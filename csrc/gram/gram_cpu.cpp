// CPU kernels of the Gram matrix and the Gram style loss.
//
// Forward:  G = scale * F F^T, upper triangle only (the tiles that touch it), then mirrored.
//           F (C x L) is packed, KC columns at a time, into panels of 16 rows laid out k-major,
//           which serve both as the B operand (16-wide vectors) and, through row pointers, as the
//           broadcast A operand. L is split across threads; each has its own partial G.
// Backward: dF = S F with S = scale * (dG + dG^T) already formed (C x C): one product, F read
//           once in 16-column panels, dF written once.
// float16 / bfloat16 are converted while packing and accumulate in float32; float64 takes a
// plain loop with float64 accumulation (it exists for gradcheck, not for speed).

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <type_traits>
#if defined(CPU_CAPABILITY_AVX2)
#include <immintrin.h>
#endif
#include <cmath>
#include <cstring>
#include <vector>

#include "common/cpu_gemm.h"
#include "common/cpu_output_cache.h"
#include "gram/gram.h"

namespace genfast::gram {
namespace {

using cpu::kMR;
using cpu::kNR;

// Columns of F packed per pass: the panels (C x kKC floats) stay in L2.
constexpr int64_t kKC = 256;

struct Strided {  // F[n] as a (C x L) matrix with arbitrary strides
  int64_t sc, sl;
};

// Transposes 16 contiguous float rows, 8 columns at a time, into dst[k * 16 + j]; returns how many
// columns it did (a multiple of 8). A pair of 8x8 register transposes per 8 columns instead of
// 128 scalar moves.
inline int64_t pack_16_rows_avx2(const float* const* src, int64_t kc, float* dst) {
#if defined(CPU_CAPABILITY_AVX2)
  const int64_t k8 = kc / 8 * 8;
  for (int64_t k = 0; k < k8; k += 8) {
    for (int half = 0; half < 2; ++half) {
      __m256 r[8], t[8];
      for (int j = 0; j < 8; ++j) r[j] = _mm256_loadu_ps(src[half * 8 + j] + k);
      t[0] = _mm256_unpacklo_ps(r[0], r[1]);
      t[1] = _mm256_unpackhi_ps(r[0], r[1]);
      t[2] = _mm256_unpacklo_ps(r[2], r[3]);
      t[3] = _mm256_unpackhi_ps(r[2], r[3]);
      t[4] = _mm256_unpacklo_ps(r[4], r[5]);
      t[5] = _mm256_unpackhi_ps(r[4], r[5]);
      t[6] = _mm256_unpacklo_ps(r[6], r[7]);
      t[7] = _mm256_unpackhi_ps(r[6], r[7]);
      r[0] = _mm256_shuffle_ps(t[0], t[2], _MM_SHUFFLE(1, 0, 1, 0));
      r[1] = _mm256_shuffle_ps(t[0], t[2], _MM_SHUFFLE(3, 2, 3, 2));
      r[2] = _mm256_shuffle_ps(t[1], t[3], _MM_SHUFFLE(1, 0, 1, 0));
      r[3] = _mm256_shuffle_ps(t[1], t[3], _MM_SHUFFLE(3, 2, 3, 2));
      r[4] = _mm256_shuffle_ps(t[4], t[6], _MM_SHUFFLE(1, 0, 1, 0));
      r[5] = _mm256_shuffle_ps(t[4], t[6], _MM_SHUFFLE(3, 2, 3, 2));
      r[6] = _mm256_shuffle_ps(t[5], t[7], _MM_SHUFFLE(1, 0, 1, 0));
      r[7] = _mm256_shuffle_ps(t[5], t[7], _MM_SHUFFLE(3, 2, 3, 2));
      // column c of the 8x8 block, rows half*8 .. half*8+7
      const int order[8] = {0, 1, 2, 3, 0, 1, 2, 3};
      for (int c = 0; c < 8; ++c) {
        const int lo = order[c], sel = c < 4 ? 0x20 : 0x31;
        const __m256 v = sel == 0x20 ? _mm256_permute2f128_ps(r[lo], r[lo + 4], 0x20)
                                     : _mm256_permute2f128_ps(r[lo], r[lo + 4], 0x31);
        _mm256_storeu_ps(dst + (k + c) * kNR + half * 8, v);
      }
    }
  }
  return k8;
#else
  (void)src; (void)kc; (void)dst;
  return 0;
#endif
}

// pack[(b * kc + k) * kNR + j] = F[b * kNR + j, l0 + k], zero past row C.
// k outer, j inner: 16 sequential read streams, one contiguous write stream.
template <typename scalar_t>
void pack_row_panels(const scalar_t* f, Strided s, int64_t C, int64_t l0, int64_t kc, float* pack) {
  const int64_t nb = (C + kNR - 1) / kNR;
  for (int64_t b = 0; b < nb; ++b) {
    float* dst = pack + b * kc * kNR;
    const int64_t rows = std::min<int64_t>(kNR, C - b * kNR);
    const scalar_t* src[kNR];
    for (int64_t j = 0; j < rows; ++j) src[j] = f + (b * kNR + j) * s.sc + l0 * s.sl;
    if constexpr (std::is_same_v<scalar_t, float>) {
      if (rows == kNR && s.sl == 1) {
        const int64_t k8 = pack_16_rows_avx2(src, kc, dst);
        for (int64_t k = k8; k < kc; ++k) {
          for (int j = 0; j < kNR; ++j) dst[k * kNR + j] = src[j][k];
        }
        continue;
      }
    }
    if (rows == kNR && s.sl == 1) {
      for (int64_t k = 0; k < kc; ++k) {
#pragma GCC unroll 16
        for (int j = 0; j < kNR; ++j) dst[k * kNR + j] = static_cast<float>(src[j][k]);
      }
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        int64_t j = 0;
        for (; j < rows; ++j) dst[k * kNR + j] = static_cast<float>(src[j][k * s.sl]);
        for (; j < kNR; ++j) dst[k * kNR + j] = 0.f;
      }
    }
  }
}

// g (C x C, row-major) += F[:, l0:l1] F[:, l0:l1]^T on every tile that touches the upper triangle.
template <typename scalar_t>
void gram_accumulate(const scalar_t* f, Strided s, int64_t C, int64_t l0, int64_t l1, float* g,
                     std::vector<float>& pack) {
  const int64_t nb = (C + kNR - 1) / kNR;
  alignas(64) float acc[kMR * kNR];
  for (int64_t k0 = l0; k0 < l1; k0 += kKC) {
    const int64_t kc = std::min(kKC, l1 - k0);
    pack_row_panels(f, s, C, k0, kc, pack.data());
    for (int64_t jb = 0; jb < nb; ++jb) {
      const float* bp = pack.data() + jb * kc * kNR;
      const int64_t j0 = jb * kNR, j1 = std::min(C, j0 + kNR);
      for (int64_t i0 = 0; i0 < j1; i0 += kMR) {
        const int mr = static_cast<int>(std::min<int64_t>(kMR, C - i0));
        const float* a[kMR] = {};
        for (int r = 0; r < mr; ++r) {
          const int64_t i = i0 + r;
          a[r] = pack.data() + (i / kNR) * kc * kNR + (i % kNR);
        }
        cpu::micro_kernel(mr, kc, a, kNR, bp, acc);
        for (int r = 0; r < mr; ++r) {
          float* grow = g + (i0 + r) * C;
          for (int64_t j = j0; j < j1; ++j) grow[j] += acc[r * kNR + (j - j0)];
        }
      }
    }
  }
}

template <typename in_t, typename out_t>
void gram_fast(const at::Tensor& f, double scale, at::Tensor& out) {
  const int64_t N = f.size(0), C = f.size(1), L = f.size(2);
  const Strided s{f.stride(1), f.stride(2)};
  const int64_t sn = f.stride(0);
  const in_t* fp = f.const_data_ptr<in_t>();
  // Split L so every thread has work even at N = 1; each chunk owns a partial C x C sum.
  const int64_t threads = at::get_num_threads();
  const int64_t per_sample =
      std::max<int64_t>(1, std::min<int64_t>((threads + N - 1) / N, (L + kKC - 1) / kKC));
  const int64_t step = (L + per_sample - 1) / per_sample;
  std::vector<float> partial(static_cast<size_t>(N * per_sample * C * C), 0.f);
  at::parallel_for(0, N * per_sample, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> pack(static_cast<size_t>(((C + kNR - 1) / kNR) * kNR * kKC));
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n = t / per_sample, part = t % per_sample;
      const int64_t l0 = part * step, l1 = std::min(L, l0 + step);
      if (l0 < l1) gram_accumulate(fp + n * sn, s, C, l0, l1, partial.data() + t * C * C, pack);
    }
  });
  // Sum the partials over the upper triangle, scale, mirror.
  out_t* o = out.mutable_data_ptr<out_t>();
  const float fscale = static_cast<float>(scale);
  at::parallel_for(0, N * C, 16, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n = t / C, i = t % C;
      for (int64_t j = i; j < C; ++j) {
        float v = 0.f;
        for (int64_t p = 0; p < per_sample; ++p) v += partial[((n * per_sample + p) * C + i) * C + j];
        o[(n * C + i) * C + j] = static_cast<out_t>(v * fscale);
        o[(n * C + j) * C + i] = static_cast<out_t>(v * fscale);
      }
    }
  });
}

void gram_double(const at::Tensor& f, double scale, at::Tensor& out) {
  const auto fa = f.accessor<const double, 3>();
  auto oa = out.accessor<double, 3>();
  const int64_t N = f.size(0), C = f.size(1), L = f.size(2);
  at::parallel_for(0, N * C, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n = t / C, i = t % C;
      for (int64_t j = i; j < C; ++j) {
        double v = 0;
        for (int64_t l = 0; l < L; ++l) v += fa[n][i][l] * fa[n][j][l];
        oa[n][i][j] = v * scale;
        oa[n][j][i] = v * scale;
      }
    }
  });
}

at::Tensor gram_out_dtype(const at::Tensor& f, double scale, at::ScalarType out_dtype) {
  check_features(f, "gram_matrix");
  TORCH_CHECK(std::isfinite(scale), "genfast.gram_matrix: expected a finite scale, got ", scale);
  auto out = at::empty({f.size(0), f.size(1), f.size(1)}, f.options().dtype(out_dtype));
  if (out.numel() == 0) return out;
  if (f.size(2) == 0) return out.zero_();
  if (f.scalar_type() == at::kDouble) {
    gram_double(f, scale, out);
    return out;
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, f.scalar_type(), "genfast::gram_matrix", [&] {
    using in_t = scalar_t;
    if (out_dtype == at::kFloat) {
      gram_fast<in_t, float>(f, scale, out);
    } else {
      gram_fast<in_t, in_t>(f, scale, out);
    }
  });
  return out;
}

// The public op: G in the features' dtype.
at::Tensor gram_matrix_cpu(const at::Tensor& f, double scale) {
  return gram_out_dtype(f, scale, f.scalar_type());
}

// G in the accumulation type (the style loss keeps it for the backward).
at::Tensor gram_acc_cpu(const at::Tensor& f, double scale) {
  return gram_out_dtype(f, scale, acc_type(f.scalar_type()));
}

// ---------------------------------------------------------------------------------------------
// dF[n] = S[n] F[n]. A task owns kNC columns of one sample: they are packed once (C x kNC,
// k-major in 16-wide panels, L2-resident) and every 6-row panel of S (read in place) runs against
// all of them, so S streams through the cache once per kNC columns rather than once per 16.

// Columns per task. Tried: 512 for C = 64 (longer row segments) was slower, as were
// non-temporal stores of dF.
constexpr int64_t kNC = 128;

template <typename scalar_t>
void sym_apply_fast(const at::Tensor& S, const at::Tensor& f, at::Tensor& out) {
  const int64_t N = f.size(0), C = f.size(1), L = f.size(2);
  const Strided s{f.stride(1), f.stride(2)};
  const Strided so{out.stride(1), out.stride(2)};
  const int64_t sn = f.stride(0), son = out.stride(0);
  const scalar_t* fp = f.const_data_ptr<scalar_t>();
  scalar_t* op = out.mutable_data_ptr<scalar_t>();
  const float* sp = S.const_data_ptr<float>();
  const int64_t tasks_per_sample = (L + kNC - 1) / kNC;
  at::parallel_for(0, N * tasks_per_sample, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> pack(static_cast<size_t>(C * kNC));
    std::vector<float> stage(static_cast<size_t>(C * kNC));
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n = t / tasks_per_sample;
      const int64_t c0 = (t % tasks_per_sample) * kNC;
      const int64_t nc = std::min(kNC, L - c0);
      const int64_t panels = (nc + kNR - 1) / kNR;
      const scalar_t* fn = fp + n * sn;
      scalar_t* on = op + n * son;
      const float* sn_ = sp + n * C * C;
      // pack[(p * C + k) * 16 + j] = F[k, c0 + p * 16 + j]
      for (int64_t k = 0; k < C; ++k) {
        const scalar_t* src = fn + k * s.sc + c0 * s.sl;
        for (int64_t p = 0; p < panels; ++p) {
          float* dst = pack.data() + (p * C + k) * kNR;
          const int64_t j_end = std::min<int64_t>(kNR, nc - p * kNR);
          int64_t j = 0;
          if (std::is_same_v<scalar_t, float> && s.sl == 1 && j_end == kNR) {
            std::memcpy(dst, src + p * kNR, kNR * sizeof(float));
            continue;
          }
          if (s.sl == 1) {
            for (; j < j_end; ++j) dst[j] = static_cast<float>(src[p * kNR + j]);
          } else {
            for (; j < j_end; ++j) dst[j] = static_cast<float>(src[(p * kNR + j) * s.sl]);
          }
          for (; j < kNR; ++j) dst[j] = 0.f;
        }
      }
      // dF[:, c0:c0+nc] is staged in `stage` (C x kNC, L2-resident) and written out row by row:
      // storing 16-float pieces straight into rows a whole L apart thrashes the cache sets
      // (rows 2^k floats apart alias), which measured ~1.7x slower.
      for (int64_t i0 = 0; i0 < C; i0 += kMR) {
        const int mr = static_cast<int>(std::min<int64_t>(kMR, C - i0));
        const float* a[kMR] = {};
        for (int r = 0; r < mr; ++r) a[r] = sn_ + (i0 + r) * C;
        for (int64_t p = 0; p < panels; ++p) {
          cpu::micro_kernel(mr, C, a, 1, pack.data() + p * C * kNR, stage.data() + i0 * kNC + p * kNR, kNC);
        }
      }
      for (int64_t i = 0; i < C; ++i) {
        const float* srow = stage.data() + i * kNC;
        scalar_t* dst = on + i * so.sc + c0 * so.sl;
        if (std::is_same_v<scalar_t, float> && so.sl == 1) {
          std::memcpy(dst, srow, nc * sizeof(float));
        } else if (so.sl == 1) {
          for (int64_t j = 0; j < nc; ++j) dst[j] = static_cast<scalar_t>(srow[j]);
        } else {
          for (int64_t j = 0; j < nc; ++j) dst[j * so.sl] = static_cast<scalar_t>(srow[j]);
        }
      }
    }
  });
}

void sym_apply_double(const at::Tensor& S, const at::Tensor& f, at::Tensor& out) {
  const auto fa = f.accessor<const double, 3>();
  const auto sa = S.accessor<const double, 3>();
  auto oa = out.accessor<double, 3>();
  const int64_t N = f.size(0), C = f.size(1), L = f.size(2);
  at::parallel_for(0, N * C, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n = t / C, i = t % C;
      for (int64_t l = 0; l < L; ++l) {
        double v = 0;
        for (int64_t k = 0; k < C; ++k) v += sa[n][i][k] * fa[n][k][l];
        oa[n][i][l] = v;
      }
    }
  });
}

// The output keeps the features' memory layout (a channels_last map gives a channels_last grad).
at::Tensor sym_apply_cpu(const at::Tensor& S, const at::Tensor& f) {
  // same strides as a dense F (a channels_last map gives a channels_last grad), else contiguous
  at::Tensor out = cpu::empty_like_cached(f);
  if (out.numel() == 0) return out;
  if (f.scalar_type() == at::kDouble) {
    sym_apply_double(S, f, out);
    return out;
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, f.scalar_type(), "genfast::gram_matrix_backward",
                                  [&] { sym_apply_fast<scalar_t>(S, f, out); });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(genfast, CPU, m) {
  DeviceKernels<gram_matrix_cpu, gram_acc_cpu, sym_apply_cpu>::register_in(m);
}

}  // namespace genfast::gram
