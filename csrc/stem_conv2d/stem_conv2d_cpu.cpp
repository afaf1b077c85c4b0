// CPU kernels of the stem convolution (math in stem_conv2d.h).
//
// float32: each product is one GEMM with a short side, run on the register-blocked micro-kernel of
// common/cpu_gemm.h, with the patch matrix packed straight from x (no im2col tensor):
//   forward          per sample: Y (O x L) = W (O x K) . P (K x L), P packed row-major for a chunk
//                    of output rows at a time, each tile starting from the bias
//   backward_input   per sample: D^T (L x K) = dY^T (L x O) . W (O x K), then D added into dx (col2im)
//   backward_weight  dW (O x K) = sum over samples of dY (O x L) . P^T (L x K), P^T packed in
//                    16-column panels of K
// The activation is applied where the output is still in registers or cache: on each forward tile
// before it is stored, and on dy (dz = dy * a'(out)) as it is read for a product, with the bias
// gradient summed there too. The forward and backward_input split samples across threads;
// backward_weight sums fixed groups of samples into partials and adds them in group order, so
// every sum has a fixed order and the result does not depend on the number of threads. float16 / bfloat16 are computed in float32 and rounded once at the end;
// float64 (gradcheck) takes plain loops.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "common/cpu_gemm.h"
#include "common/cpu_output_cache.h"
#include "stem_conv2d/stem_conv2d.h"

namespace genfast::stem_conv2d {
namespace {

using cpu::kMR;
using cpu::kNR;
using cpu::Vec;

inline int64_t panels(int64_t n) { return (n + kNR - 1) / kNR; }

// Output pixel l -> the input row / column of its tap (kh, kw) before adding kh, kw.
struct PixelOrigins {
  std::vector<int64_t> ih, iw;
  explicit PixelOrigins(const Geometry& g) : ih(g.L()), iw(g.L()) {
    for (int64_t l = 0; l < g.L(); ++l) {
      ih[l] = (l / g.Wo) * g.sh - g.ph;
      iw[l] = (l % g.Wo) * g.sw - g.pw;
    }
  }
};

// ---- float32 ------------------------------------------------------------------------------

// dst = dy * a'(out) over n values; returns their sum (in a fixed order).
inline float mask_grad(const float* dy, const float* out, float slope, float* dst, int64_t n) {
  const Vec vs(slope), zero(0.f), one(1.f);
  Vec acc(0.f);
  int64_t i = 0;
  for (; i + Vec::size() <= n; i += Vec::size()) {
    const Vec v = Vec::loadu(dy + i) * Vec::blendv(vs, one, Vec::loadu(out + i) > zero);
    v.store(dst + i);
    acc = acc + v;
  }
  float total = at::vec::vec_reduce_all([](Vec a, Vec b) { return a + b; }, acc);
  for (; i < n; ++i) {
    dst[i] = out[i] > 0.f ? dy[i] : dy[i] * slope;
    total += dst[i];
  }
  return total;
}

inline float row_sum(const float* v, int64_t n) {
  Vec acc(0.f);
  int64_t i = 0;
  for (; i + Vec::size() <= n; i += Vec::size()) acc = acc + Vec::loadu(v + i);
  float total = at::vec::vec_reduce_all([](Vec a, Vec b) { return a + b; }, acc);
  for (; i < n; ++i) total += v[i];
  return total;
}

// One sample of x, zero-padded and split by stride phase, so that every tap's row of outputs reads
// a contiguous run: phase (a, b) holds xpad[c, i * sh + a, j * sw + b] at [((c * sh + a) * sw + b) *
// Hq + i) * Wq + j], and tap (c, kh, kw) of output row oh is the run starting at phase
// (kh % sh, kw % sw), row oh + kh / sh, column kw / sw, Wo long.
struct Phases {
  int64_t Hq, Wq;
  std::vector<float> v;
  explicit Phases(const Geometry& g)
      : Hq(g.Ho + (g.KH - 1) / g.sh), Wq(g.Wo + (g.KW - 1) / g.sw), v(g.C * g.sh * g.sw * Hq * Wq, 0.f) {}

  // Only x's own pixels are written: the padding positions are the same for every sample and keep
  // the constructor's zeros.
  void fill(const float* xs, const Geometry& g) {
    for (int64_t c = 0; c < g.C; ++c) {
      for (int64_t ih = 0; ih < g.H; ++ih) {
        const int64_t a = (ih + g.ph) % g.sh, i = (ih + g.ph) / g.sh;
        if (i >= Hq) continue;
        const float* xrow = xs + (c * g.H + ih) * g.W;
        for (int64_t b = 0; b < g.sw; ++b) {
          float* dst = v.data() + (((c * g.sh + a) * g.sw + b) * Hq + i) * Wq;
          for (int64_t j = (g.pw - b + g.sw - 1) / g.sw, iw = j * g.sw + b - g.pw; j < Wq && iw < g.W; ++j, iw += g.sw) {
            dst[j] = xrow[iw];
          }
        }
      }
    }
  }

  // The run of tap k = (c, kh, kw) for output row oh.
  const float* run(const Geometry& g, int64_t c, int64_t kh, int64_t kw, int64_t oh) const {
    return v.data() + (((c * g.sh + kh % g.sh) * g.sw + kw % g.sw) * Hq + oh + kh / g.sh) * Wq + kw / g.sw;
  }
};

// fn(k, oh, run): every tap k = (c, kh, kw) and output row oh in [oh0, oh1) with its Wo input values.
template <typename Fn>
inline void for_each_run(const Phases& ph, const Geometry& g, int64_t oh0, int64_t oh1, Fn&& fn) {
  int64_t k = 0;
  for (int64_t c = 0; c < g.C; ++c) {
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      for (int64_t kw = 0; kw < g.KW; ++kw, ++k) {
        for (int64_t oh = oh0; oh < oh1; ++oh) fn(k, oh, ph.run(g, c, kh, kw, oh));
      }
    }
  }
}

// Output rows [oh0, oh1) of one sample's patch matrix P (K x L), row-major with leading dimension
// ld: out[k * ld + (oh - oh0) * Wo + ow] = patch[k, oh * Wo + ow].
inline void pack_patch(const Phases& ph, const Geometry& g, int64_t oh0, int64_t oh1, int64_t ld, float* out) {
  const int64_t n = g.Wo;
  for_each_run(ph, g, oh0, oh1, [&](int64_t k, int64_t oh, const float* src) {
    float* dst = out + k * ld + (oh - oh0) * n;
    if (n < Vec::size()) {
      std::copy(src, src + n, dst);
      return;
    }
    int64_t i = 0;
    for (; i + Vec::size() <= n; i += Vec::size()) Vec::loadu(src + i).store(dst + i);
    if (i < n) Vec::loadu(src + n - Vec::size()).store(dst + n - Vec::size());  // the tail, overlapping
  });
}

// P^T (L x K) of one sample in 16-column panels of K: out[q * panel_stride + l * 16 + j] =
// patch[16 q + j, l]. The columns past K are not written (the caller zeroes them once).
inline void pack_patch_rows(const Phases& ph, const Geometry& g, int64_t panel_stride, float* out) {
  for_each_run(ph, g, 0, g.Ho, [&](int64_t k, int64_t oh, const float* src) {
    float* dst = out + (k / kNR) * panel_stride + oh * g.Wo * kNR + k % kNR;
    for (int64_t ow = 0; ow < g.Wo; ++ow) dst[ow * kNR] = src[ow];
  });
}

// What a forward tile's rows go through on their way out of the registers.
enum class Finish { kNone, kActivation, kSlopes };

// One row of a forward tile: the activation (kActivation), or the factor a'(slopes) of the given
// slopes row (kSlopes), applied to columns 0..7 (c0) and 8..15 (c1); then the first n <= 16 columns
// stored (n is a compile-time 16 for the full tiles, which are nearly all of them).
template <Finish F, bool kFull>
inline void finish_forward(Vec c0, Vec c1, float* dst, const float* slopes, int64_t n, Vec vs) {
  const Vec zero(0.f), one(1.f);
  const int n0 = kFull ? Vec::size() : static_cast<int>(std::min<int64_t>(n, Vec::size()));
  const int n1 = kFull ? Vec::size() : static_cast<int>(n - n0);
  if constexpr (F == Finish::kSlopes) {
    c0 = c0 * Vec::blendv(vs, one, (kFull ? Vec::loadu(slopes) : Vec::loadu(slopes, n0)) > zero);
    if (n1 > 0) c1 = c1 * Vec::blendv(vs, one, (kFull ? Vec::loadu(slopes + Vec::size()) : Vec::loadu(slopes + Vec::size(), n1)) > zero);
  } else if constexpr (F == Finish::kActivation) {
    c0 = Vec::blendv(c0 * vs, c0, c0 > zero);
    c1 = Vec::blendv(c1 * vs, c1, c1 > zero);
  }
  if (kFull) {
    c0.store(dst);
    c1.store(dst + Vec::size());
    return;
  }
  c0.store(dst, n0);
  if (n1 > 0) c1.store(dst + Vec::size(), n1);
}

// The patch matrix of a chunk of output rows is kept within this size, so that it stays in cache
// while every block of output channels runs over it.
constexpr int64_t kPatchBytes = 64 * 1024;

template <Finish F>
void forward_float(const float* x, const float* w, const float* bias, const float* slopes, float* y, float slope,
                   const Geometry& g) {
  // Per sample and chunk of output rows: pack P (K x chunk columns), then Y[o0 : o0 + 5, cols] =
  // W[o0 : o0 + 5, :] . P tile by tile, each tile starting from the bias and stored through its
  // activation straight into y.
  const int64_t K = g.K(), L = g.L(), Ho = g.Ho, Wo = g.Wo, O = g.O;
  const int64_t rows = std::clamp<int64_t>(kPatchBytes / (K * Wo * static_cast<int64_t>(sizeof(float))), 1, Ho);
  const int64_t ld = panels(rows * Wo) * kNR;   // (the last tile reads up to 15 columns past the chunk)
  at::parallel_for(0, g.N, 1, [=, &g](int64_t n0, int64_t n1) {
    Phases ph(g);
    std::vector<float> patch_buf(K * ld + kNR, 0.f);   // 64-byte aligned below: no tile load splits a cache line
    float* const patch = patch_buf.data() + (kNR - reinterpret_cast<uintptr_t>(patch_buf.data()) / sizeof(float) % kNR) % kNR;
    const Vec vs(slope);
    for (int64_t n = n0; n < n1; ++n) {
      ph.fill(x + n * g.C * g.H * g.W, g);
      for (int64_t oh0 = 0; oh0 < Ho; oh0 += rows) {
        const int64_t oh1 = std::min(Ho, oh0 + rows), cols = (oh1 - oh0) * Wo;
        pack_patch(ph, g, oh0, oh1, ld, patch);
        for (int64_t o0 = 0; o0 < O; o0 += kMR) {
          const int mr = static_cast<int>(std::min<int64_t>(kMR, O - o0));
          const float* a[kMR];
          for (int r = 0; r < mr; ++r) a[r] = w + (o0 + r) * K;
          const float* init = bias != nullptr ? bias + o0 : nullptr;
          for (int64_t p = 0; p < cols; p += kNR) {
            const int64_t off = (n * O + o0) * L + oh0 * Wo + p, n_cols = std::min<int64_t>(kNR, cols - p);
            float* yt = y + off;
            const float* st = F == Finish::kSlopes ? slopes + off : nullptr;
            if (n_cols == kNR) {
              cpu::micro_kernel_with(mr, K, a, 1, patch + p, ld, init, [=](int r, Vec c0, Vec c1) {
                finish_forward<F, true>(c0, c1, yt + r * L, F == Finish::kSlopes ? st + r * L : nullptr, kNR, vs);
              });
            } else {
              cpu::micro_kernel_with(mr, K, a, 1, patch + p, ld, init, [=](int r, Vec c0, Vec c1) {
                finish_forward<F, false>(c0, c1, yt + r * L, F == Finish::kSlopes ? st + r * L : nullptr, n_cols, vs);
              });
            }
          }
        }
      }
    }
  });
}

// W (O x K) in 16-column panels of K: out[(q * O + o) * 16 + j] = W[o, 16 q + j], 0 past K.
std::vector<float> pack_weight_columns(const float* w, const Geometry& g) {
  const int64_t K = g.K(), Q = panels(K);
  std::vector<float> out(Q * g.O * kNR, 0.f);
  for (int64_t o = 0; o < g.O; ++o) {
    for (int64_t k = 0; k < K; ++k) out[((k / kNR) * g.O + o) * kNR + k % kNR] = w[o * K + k];
  }
  return out;
}

void backward_input_float(const float* gy, const float* out, const float* w, float* gx, const Act& act,
                          const Geometry& g) {
  // D^T (L x K) = dZ^T (L x O) . W (O x K) per sample: rows of dZ^T are columns of dZ (stride L),
  // W's panels are packed once; then each row l of D^T is added into dx at pixel l's taps.
  const int64_t K = g.K(), L = g.L(), Q = panels(K), HW = g.H * g.W;
  const PixelOrigins po(g);
  const auto wp = pack_weight_columns(w, g);
  std::vector<int64_t> tap_c(K), tap_h(K), tap_w(K);
  for (int64_t k = 0; k < K; ++k) {
    tap_c[k] = k / (g.KH * g.KW), tap_h[k] = (k / g.KW) % g.KH, tap_w[k] = k % g.KW;
  }
  at::parallel_for(0, g.N, 1, [&](int64_t n0, int64_t n1) {
    float acc[kMR * kNR];
    std::vector<float> dz(act.fused ? g.O * L : 0);
    for (int64_t n = n0; n < n1; ++n) {
      const float* gzn = gy + n * g.O * L;
      if (act.fused) {
        mask_grad(gzn, out + n * g.O * L, static_cast<float>(act.slope), dz.data(), g.O * L);
        gzn = dz.data();
      }
      float* gxn = gx + n * g.C * HW;
      std::fill(gxn, gxn + g.C * HW, 0.f);
      for (int64_t l0 = 0; l0 < L; l0 += kMR) {
        const int mr = static_cast<int>(std::min<int64_t>(kMR, L - l0));
        const float* a[kMR];
        for (int r = 0; r < mr; ++r) a[r] = gzn + l0 + r;
        for (int64_t q = 0; q < Q; ++q) {
          cpu::micro_kernel(mr, g.O, a, L, wp.data() + q * g.O * kNR, acc);
          const int64_t jn = std::min<int64_t>(kNR, K - q * kNR);
          for (int r = 0; r < mr; ++r) {
            const int64_t ih0 = po.ih[l0 + r], iw0 = po.iw[l0 + r];
            for (int64_t j = 0; j < jn; ++j) {
              const int64_t k = q * kNR + j, ih = ih0 + tap_h[k], iw = iw0 + tap_w[k];
              if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) gxn[(tap_c[k] * g.H + ih) * g.W + iw] += acc[r * kNR + j];
            }
          }
        }
      }
    }
  });
}

void backward_weight_float(const float* gy, const float* out, const float* x, float* gw, float* gb, const Act& act,
                           const Geometry& g) {
  // Samples go in fixed groups of kGroup, each group a task that packs one sample's P^T at a time
  // (in cache) and multiplies it with every row block of dZ into the group's partial dW and db;
  // the partials are then added in group order. The groups do not depend on the thread count, so
  // neither does the result.
  constexpr int64_t kGroup = 4;
  const int64_t K = g.K(), L = g.L(), Q = panels(K), OK = g.O * K;
  const int64_t groups = (g.N + kGroup - 1) / kGroup;
  std::vector<float> partial(groups * (OK + g.O), 0.f);   // per group: dW (O x K) then db (O)
  at::parallel_for(0, groups, 1, [&](int64_t t0, int64_t t1) {
    Phases ph(g);
    std::vector<float> packed(Q * L * kNR, 0.f);
    std::vector<float> dz(act.fused ? kMR * L : 0);
    float acc[kMR * kNR];
    for (int64_t t = t0; t < t1; ++t) {
      float* pw = partial.data() + t * (OK + g.O);
      float* pb = pw + OK;
      for (int64_t n = t * kGroup; n < std::min(g.N, (t + 1) * kGroup); ++n) {
        ph.fill(x + n * g.C * g.H * g.W, g);
        pack_patch_rows(ph, g, L * kNR, packed.data());
        for (int64_t o0 = 0; o0 < g.O; o0 += kMR) {
          const int mr = static_cast<int>(std::min<int64_t>(kMR, g.O - o0));
          const float* a[kMR];
          for (int r = 0; r < mr; ++r) {
            const int64_t off = (n * g.O + o0 + r) * L;
            if (act.fused) {
              pb[o0 + r] += mask_grad(gy + off, out + off, static_cast<float>(act.slope), dz.data() + r * L, L);
              a[r] = dz.data() + r * L;
            } else {
              pb[o0 + r] += row_sum(gy + off, L);
              a[r] = gy + off;
            }
          }
          for (int64_t q = 0; q < Q; ++q) {
            cpu::micro_kernel(mr, L, a, 1, packed.data() + q * L * kNR, acc);
            const int64_t jn = std::min<int64_t>(kNR, K - q * kNR);
            for (int r = 0; r < mr; ++r) {
              float* dst = pw + (o0 + r) * K + q * kNR;
              for (int64_t j = 0; j < jn; ++j) dst[j] += acc[r * kNR + j];
            }
          }
        }
      }
    }
  });
  std::fill(gw, gw + OK, 0.f);
  std::fill(gb, gb + g.O, 0.f);
  for (int64_t t = 0; t < groups; ++t) {
    const float* pw = partial.data() + t * (OK + g.O);
    for (int64_t i = 0; i < OK; ++i) gw[i] += pw[i];
    for (int64_t o = 0; o < g.O; ++o) gb[o] += pw[OK + o];
  }
}

// ---- float64: plain loops, the same sums (the activation and its slopes applied with ATen) -----

template <typename T>
inline T tap(const T* xs, const Geometry& g, const PixelOrigins& po, int64_t k, int64_t l) {
  const int64_t c = k / (g.KH * g.KW), kh = (k / g.KW) % g.KH, kw = k % g.KW;
  const int64_t ih = po.ih[l] + kh, iw = po.iw[l] + kw;
  return (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) ? xs[(c * g.H + ih) * g.W + iw] : T(0);
}

void forward_double(const double* x, const double* w, const double* bias, double* y, const Geometry& g) {
  const int64_t K = g.K(), L = g.L();
  const PixelOrigins po(g);
  at::parallel_for(0, g.N, 1, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const double* xs = x + n * g.C * g.H * g.W;
      for (int64_t o = 0; o < g.O; ++o) {
        for (int64_t l = 0; l < L; ++l) {
          double s = 0;
          for (int64_t k = 0; k < K; ++k) s += w[o * K + k] * tap(xs, g, po, k, l);
          y[(n * g.O + o) * L + l] = s + (bias != nullptr ? bias[o] : 0.0);
        }
      }
    }
  });
}

void backward_input_double(const double* gy, const double* w, double* gx, const Geometry& g) {
  const int64_t K = g.K(), L = g.L(), HW = g.H * g.W;
  const PixelOrigins po(g);
  at::parallel_for(0, g.N, 1, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      double* gxn = gx + n * g.C * HW;
      std::fill(gxn, gxn + g.C * HW, 0.0);
      for (int64_t k = 0; k < K; ++k) {
        const int64_t c = k / (g.KH * g.KW), kh = (k / g.KW) % g.KH, kw = k % g.KW;
        for (int64_t l = 0; l < L; ++l) {
          const int64_t ih = po.ih[l] + kh, iw = po.iw[l] + kw;
          if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
          double s = 0;
          for (int64_t o = 0; o < g.O; ++o) s += w[o * K + k] * gy[(n * g.O + o) * L + l];
          gxn[(c * g.H + ih) * g.W + iw] += s;
        }
      }
    }
  });
}

void backward_weight_double(const double* gy, const double* x, double* gw, const Geometry& g) {
  const int64_t K = g.K(), L = g.L();
  const PixelOrigins po(g);
  at::parallel_for(0, g.O, 1, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      for (int64_t k = 0; k < K; ++k) {
        double s = 0;
        for (int64_t n = 0; n < g.N; ++n) {
          const double* xs = x + n * g.C * g.H * g.W;
          for (int64_t l = 0; l < L; ++l) s += gy[(n * g.O + o) * L + l] * tap(xs, g, po, k, l);
        }
        gw[o * K + k] = s;
      }
    }
  });
}

// ---- entry points ------------------------------------------------------------------------------

// float16 / bfloat16 run in float32
inline at::Tensor compute(const at::Tensor& t) {
  const auto s = t.scalar_type();
  return (s == at::kHalf || s == at::kBFloat16 ? t.to(at::kFloat) : t).contiguous();
}

inline const float* ptr_or_null(const at::Tensor& t) { return t.defined() ? t.data_ptr<float>() : nullptr; }

at::Tensor stem_conv2d_cpu(const at::Tensor& x_in, const at::Tensor& weight_in, const c10::optional<at::Tensor>& bias_in,
                           const c10::optional<at::Tensor>& slopes_in, c10::IntArrayRef stride, c10::IntArrayRef padding,
                           c10::string_view activation, double negative_slope) {
  const auto [g, act] = check_forward(x_in, weight_in, bias_in, slopes_in, stride, padding, activation, negative_slope);
  const auto x = compute(x_in), w = compute(weight_in);
  const auto b = bias_in.has_value() ? compute(*bias_in) : at::Tensor();
  const auto slopes = act.fused && slopes_in.has_value() ? compute(*slopes_in).to(x.scalar_type()) : at::Tensor();
  if (g.N * g.O * g.Ho * g.Wo == 0) return at::empty({g.N, g.O, g.Ho, g.Wo}, x_in.options());
  if (x.scalar_type() == at::kDouble) {
    auto y = at::empty({g.N, g.O, g.Ho, g.Wo}, x.options());
    forward_double(x.data_ptr<double>(), w.data_ptr<double>(), b.defined() ? b.data_ptr<double>() : nullptr,
                   y.data_ptr<double>(), g);
    if (slopes.defined()) {
      y.mul_(slope_factor(slopes, act));
    } else if (act.fused) {
      y.mul_(slope_factor(y, act));
    }
    return y;
  }
  // the output (3 MB for a batch of 64 grey 28 x 28 images) recurs every step: from the cache of
  // mapped blocks, not fresh pages that fault on first write
  auto y = cpu::empty_scratch({g.N, g.O, g.Ho, g.Wo}, at::kFloat);
  auto* const kernel = slopes.defined() ? &forward_float<Finish::kSlopes>
                       : act.fused        ? &forward_float<Finish::kActivation>
                                          : &forward_float<Finish::kNone>;
  kernel(x.data_ptr<float>(), w.data_ptr<float>(), ptr_or_null(b), ptr_or_null(slopes), y.data_ptr<float>(),
         static_cast<float>(act.slope), g);
  return y.to(x_in.scalar_type());
}

at::Tensor stem_conv2d_backward_input_cpu(const at::Tensor& grad_in, const c10::optional<at::Tensor>& out_in,
                                          const at::Tensor& weight_in, c10::IntArrayRef input_hw,
                                          c10::IntArrayRef stride, c10::IntArrayRef padding,
                                          c10::string_view activation, double negative_slope) {
  const auto [g, act] = check_backward_input(grad_in, out_in, weight_in, input_hw, stride, padding, activation,
                                             negative_slope);
  auto gy = compute(grad_in);
  const auto w = compute(weight_in);
  const auto out = act.fused ? compute(*out_in).to(gy.scalar_type()) : at::Tensor();
  if (g.N * g.C * g.H * g.W == 0 || g.O == 0) return at::zeros({g.N, g.C, g.H, g.W}, grad_in.options());
  auto gx = at::empty({g.N, g.C, g.H, g.W}, gy.options());  // (the kernels zero each sample, in cache)
  if (gy.scalar_type() == at::kDouble) {
    gy = masked_grad(gy, out, act);
    backward_input_double(gy.data_ptr<double>(), w.data_ptr<double>(), gx.data_ptr<double>(), g);
    return gx;
  }
  backward_input_float(gy.data_ptr<float>(), ptr_or_null(out), w.data_ptr<float>(), gx.data_ptr<float>(), act, g);
  return gx.to(grad_in.scalar_type());
}

std::tuple<at::Tensor, at::Tensor> stem_conv2d_backward_weight_cpu(
    const at::Tensor& grad_in, const c10::optional<at::Tensor>& out_in, const at::Tensor& x_in,
    c10::IntArrayRef kernel_size, c10::IntArrayRef stride, c10::IntArrayRef padding, c10::string_view activation,
    double negative_slope) {
  const auto [g, act] = check_backward_weight(grad_in, out_in, x_in, kernel_size, stride, padding, activation,
                                              negative_slope);
  auto gy = compute(grad_in);
  const auto x = compute(x_in);
  const auto out = act.fused ? compute(*out_in).to(gy.scalar_type()) : at::Tensor();
  if (g.O * g.C * g.KH * g.KW == 0 || g.N == 0) {
    return {at::zeros({g.O, g.C, g.KH, g.KW}, grad_in.options()), at::zeros({g.O}, grad_in.options())};
  }
  auto gw = at::empty({g.O, g.C, g.KH, g.KW}, gy.options());  // (the kernels write every element)
  if (gy.scalar_type() == at::kDouble) {
    gy = masked_grad(gy, out, act);
    backward_weight_double(gy.data_ptr<double>(), x.data_ptr<double>(), gw.data_ptr<double>(), g);
    return {gw, gy.sum({0, 2, 3})};
  }
  auto gb = at::empty({g.O}, gy.options());
  const auto dtype = grad_in.scalar_type();
  backward_weight_float(gy.data_ptr<float>(), ptr_or_null(out), x.data_ptr<float>(), gw.data_ptr<float>(),
                        gb.data_ptr<float>(), act, g);
  return {gw.to(dtype), gb.to(dtype)};
}

}  // namespace

TORCH_LIBRARY_IMPL(genfast, CPU, m) {
  m.impl("stem_conv2d", &stem_conv2d_cpu);
  m.impl("stem_conv2d_backward_input", &stem_conv2d_backward_input_cpu);
  m.impl("stem_conv2d_backward_weight", &stem_conv2d_backward_weight_cpu);
}

}  // namespace genfast::stem_conv2d
