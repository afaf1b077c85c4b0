// CPU kernels of the fused instance norm (math in instance_norm.h).
//
// One task per (n, c) plane of a contiguous x (at::parallel_for over N*C planes). A plane is read
// from memory once; the later passes find it in L2/L3 (256 KB at 256x256 float32):
//   forward   pass 1 sum -> mean (kept in float64); pass 2 sum (x - mean)^2 (two-pass: exact for
//             large means);
//             pass 3 y = act((x - mean) * alpha + shift)
//   backward  pass 1 sum g and sum g * (x - mean); pass 2 dx
//   double backward (the backward's own VJP, for gradient penalties): pass 1 five sums (g', g' d,
//             u, u d, u g'); pass 2 d_grad and d_x (constants: instance_norm.h, double_backward_plane).
//             It runs on NCHW planes of the accumulation type: other layouts and float16/bfloat16
//             are converted whole first.
// Sums run in float32 vectors over chunks of kChunk elements and the chunk sums add up in double,
// so a 512x512 plane loses no more than a 4096-element float sum does.
// float16/bfloat16 planes are converted into a per-thread float32 buffer and run the float32 path;
// float64 runs the same code in float64 (it exists for gradcheck).
//
// channels_last x (N, H, W, C in memory) has its own kernels (the nhwc_* functions below): a task
// owns a block of pixel rows of one sample and keeps per-channel partial sums as C-wide vectors,
// so the memory is streamed in order instead of gathering planes with a stride of C.
// Other layouts are made contiguous first.

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/cpu_output_cache.h"
#include "instance_norm/instance_norm.h"

namespace genfast::instance_norm {
namespace {

template <typename T>
using Vec = at::vec::Vectorized<T>;

constexpr int64_t kChunk = 4096;

template <typename T>
T hsum(const Vec<T>& v) {
  return at::vec::vec_reduce_all<T>([](Vec<T>& a, Vec<T>& b) { return a + b; }, v);
}

template <Act A, typename T>
inline Vec<T> activate(const Vec<T>& v, const Vec<T>& slope) {
  if constexpr (A == Act::kRelu) {
    return at::vec::maximum(v, Vec<T>(T(0)));
  } else if constexpr (A == Act::kLeakyRelu) {
    return Vec<T>::blendv(v * slope, v, v > Vec<T>(T(0)));
  } else {
    return v;
  }
}

template <Act A, typename T>
inline T activate(T v, T slope) {
  if constexpr (A == Act::kRelu) {
    return std::isnan(v) ? v : std::max(v, T(0));
  } else if constexpr (A == Act::kLeakyRelu) {
    return v > T(0) ? v : v * slope;
  } else {
    return v;
  }
}

// dy * act'(pre): the backward of the activation from the pre-activation value.
template <Act A, typename T>
inline Vec<T> act_grad(const Vec<T>& gy, const Vec<T>& pre, const Vec<T>& slope) {
  if constexpr (A == Act::kRelu) {
    return Vec<T>::blendv(Vec<T>(T(0)), gy, pre > Vec<T>(T(0)));
  } else if constexpr (A == Act::kLeakyRelu) {
    return Vec<T>::blendv(gy * slope, gy, pre > Vec<T>(T(0)));
  } else {
    return gy;
  }
}

template <Act A, typename T>
inline T act_grad(T gy, T pre, T slope) {
  if constexpr (A == Act::kRelu) {
    return pre > T(0) ? gy : T(0);
  } else if constexpr (A == Act::kLeakyRelu) {
    return pre > T(0) ? gy : gy * slope;
  } else {
    return gy;
  }
}

// ---------------------------------------------------------------------------------------------
// One contiguous plane of M elements.

// sum (x - pivot): summing deviations from a value of the plane keeps the float32 partial sums
// small when the mean is large (1e4 +- 1 would otherwise round every partial sum to ~0.1).
template <typename T>
double plane_sum(const T* x, int64_t M, T pivot) {
  using V = Vec<T>;
  constexpr int64_t W = V::size();
  const V vp(pivot);
  double total = 0;
  for (int64_t c0 = 0; c0 < M; c0 += kChunk) {
    const int64_t c1 = std::min(M, c0 + kChunk);
    V a0(T(0)), a1(T(0)), a2(T(0)), a3(T(0));
    int64_t i = c0;
    for (; i + 4 * W <= c1; i += 4 * W) {
      a0 = a0 + (V::loadu(x + i) - vp);
      a1 = a1 + (V::loadu(x + i + W) - vp);
      a2 = a2 + (V::loadu(x + i + 2 * W) - vp);
      a3 = a3 + (V::loadu(x + i + 3 * W) - vp);
    }
    for (; i + W <= c1; i += W) a0 = a0 + (V::loadu(x + i) - vp);
    T s = hsum<T>((a0 + a1) + (a2 + a3));
    for (; i < c1; ++i) s += x[i] - pivot;
    total += s;
  }
  return total;
}

// sum (x - m)^2 - (sum (x - m))^2 / M: the second term corrects for the rounding of m.
template <typename T>
double plane_sq_dev(const T* x, int64_t M, T m) {
  using V = Vec<T>;
  constexpr int64_t W = V::size();
  const V vm(m);
  double sq = 0, lin = 0;
  for (int64_t c0 = 0; c0 < M; c0 += kChunk) {
    const int64_t c1 = std::min(M, c0 + kChunk);
    V q0(T(0)), q1(T(0)), l0(T(0)), l1(T(0));
    int64_t i = c0;
    for (; i + 2 * W <= c1; i += 2 * W) {
      const V d0 = V::loadu(x + i) - vm, d1 = V::loadu(x + i + W) - vm;
      q0 = at::vec::fmadd(d0, d0, q0);
      q1 = at::vec::fmadd(d1, d1, q1);
      l0 = l0 + d0;
      l1 = l1 + d1;
    }
    for (; i + W <= c1; i += W) {
      const V d = V::loadu(x + i) - vm;
      q0 = at::vec::fmadd(d, d, q0);
      l0 = l0 + d;
    }
    T q = hsum<T>(q0 + q1), l = hsum<T>(l0 + l1);
    for (; i < c1; ++i) {
      const T d = x[i] - m;
      q += d * d;
      l += d;
    }
    sq += q;
    lin += l;
  }
  return std::max(0.0, sq - lin * lin / static_cast<double>(M));
}

// The statistics in three steps (forward_group runs each step for several planes before the next).
template <typename T>
double plane_mean(const T* x, int64_t M) {
  return static_cast<double>(x[0]) + plane_sum(x, M, x[0]) / static_cast<double>(M);
}

template <typename T>
double plane_var(const T* x, int64_t M, double mean) {
  return plane_sq_dev(x, M, static_cast<T>(mean)) / static_cast<double>(M);
}

template <typename T>
T rstd_of(double var, double eps) {
  return static_cast<T>(1.0 / std::sqrt(var + eps));
}

template <typename T>
void plane_stats(const T* x, int64_t M, double eps, double& mean, T& rstd) {
  mean = plane_mean(x, M);
  rstd = rstd_of<T>(plane_var(x, M, mean), eps);
}

// The mean as hi + lo in the compute type. With a large mean (1e4 +- 1 in float32) a float mean
// alone is off by up to half an ulp of 1e4, 5e-4 standard deviations in every output; so the
// kernels subtract hi (exact for values near it) and fold lo into the per-plane constants.
template <typename T>
struct SplitMean {
  T hi, lo;
  explicit SplitMean(double m) : hi(static_cast<T>(m)), lo(static_cast<T>(m - static_cast<double>(hi))) {}
};

template <Act A, typename T>
void plane_write(const T* x, T* y, int64_t M, T m, T alpha, T b, T slope) {
  using V = Vec<T>;
  constexpr int64_t W = V::size();
  const V vm(m), va(alpha), vb(b), vs(slope);
  int64_t i = 0;
  for (; i + W <= M; i += W) activate<A>(at::vec::fmadd(V::loadu(x + i) - vm, va, vb), vs).store(y + i);
  for (; i < M; ++i) y[i] = activate<A>(std::fma(x[i] - m, alpha, b), slope);
}

// Returns sum g and sum g * (x - m) with g = dy * act'(pre).
template <Act A, typename T>
void plane_grad_sums(const T* x, const T* gy, int64_t M, T m, T alpha, T b, T slope, double& sum_g,
                     double& sum_gd) {
  using V = Vec<T>;
  constexpr int64_t W = V::size();
  const V vm(m), va(alpha), vb(b), vs(slope);
  sum_g = sum_gd = 0;
  for (int64_t c0 = 0; c0 < M; c0 += kChunk) {
    const int64_t c1 = std::min(M, c0 + kChunk);
    V g0(T(0)), g1(T(0)), d0(T(0)), d1(T(0));
    int64_t i = c0;
    for (; i + 2 * W <= c1; i += 2 * W) {
      const V xa = V::loadu(x + i) - vm, xb = V::loadu(x + i + W) - vm;
      const V ga = act_grad<A>(V::loadu(gy + i), at::vec::fmadd(xa, va, vb), vs);
      const V gb = act_grad<A>(V::loadu(gy + i + W), at::vec::fmadd(xb, va, vb), vs);
      g0 = g0 + ga;
      g1 = g1 + gb;
      d0 = at::vec::fmadd(ga, xa, d0);
      d1 = at::vec::fmadd(gb, xb, d1);
    }
    for (; i + W <= c1; i += W) {
      const V xa = V::loadu(x + i) - vm;
      const V ga = act_grad<A>(V::loadu(gy + i), at::vec::fmadd(xa, va, vb), vs);
      g0 = g0 + ga;
      d0 = at::vec::fmadd(ga, xa, d0);
    }
    T sg = hsum<T>(g0 + g1), sd = hsum<T>(d0 + d1);
    for (; i < c1; ++i) {
      const T d = x[i] - m;
      const T g = act_grad<A>(gy[i], std::fma(d, alpha, b), slope);
      sg += g;
      sd += g * d;
    }
    sum_g += sg;
    sum_gd += sd;
  }
}

// dx = alpha * g + (x - m) * k2 + k1   (gx may alias gy)
template <Act A, typename T>
void plane_grad_x(const T* x, const T* gy, T* gx, int64_t M, T m, T alpha, T b, T slope, T k1, T k2) {
  using V = Vec<T>;
  constexpr int64_t W = V::size();
  const V vm(m), va(alpha), vb(b), vs(slope), vk1(k1), vk2(k2);
  int64_t i = 0;
  for (; i + W <= M; i += W) {
    const V d = V::loadu(x + i) - vm;
    const V g = act_grad<A>(V::loadu(gy + i), at::vec::fmadd(d, va, vb), vs);
    at::vec::fmadd(va, g, at::vec::fmadd(d, vk2, vk1)).store(gx + i);
  }
  for (; i < M; ++i) {
    const T d = x[i] - m;
    const T g = act_grad<A>(gy[i], std::fma(d, alpha, b), slope);
    gx[i] = std::fma(alpha, g, std::fma(d, k2, k1));
  }
}

// The double backward's five sums of one plane (instance_norm.h, double_backward_plane):
// out = {sum g', sum g' d, sum u, sum u d, sum u g'} with d = x - m, g' = act'(pre) * gy. Without
// u (HasU false: no gg_x) the last three are 0.
template <Act A, bool HasU, typename T>
void plane_dd_sums(const T* x, const T* gy, const T* u, int64_t M, T m, T alpha, T b, T slope, double* out) {
  using V = Vec<T>;
  constexpr int64_t W = V::size();
  const V vm(m), va(alpha), vb(b), vs(slope);
  for (int k = 0; k < 5; ++k) out[k] = 0;
  for (int64_t c0 = 0; c0 < M; c0 += kChunk) {
    const int64_t c1 = std::min(M, c0 + kChunk);
    V s1(T(0)), sd(T(0)), u1(T(0)), ud(T(0)), ug(T(0));
    int64_t i = c0;
    for (; i + W <= c1; i += W) {
      const V d = V::loadu(x + i) - vm;
      const V g = act_grad<A>(V::loadu(gy + i), at::vec::fmadd(d, va, vb), vs);
      s1 = s1 + g;
      sd = at::vec::fmadd(g, d, sd);
      if constexpr (HasU) {
        const V uu = V::loadu(u + i);
        u1 = u1 + uu;
        ud = at::vec::fmadd(uu, d, ud);
        ug = at::vec::fmadd(uu, g, ug);
      }
    }
    T t[5] = {hsum<T>(s1), hsum<T>(sd), hsum<T>(u1), hsum<T>(ud), hsum<T>(ug)};
    for (; i < c1; ++i) {
      const T d = x[i] - m;
      const T g = act_grad<A>(gy[i], std::fma(d, alpha, b), slope);
      t[0] += g;
      t[1] += g * d;
      if constexpr (HasU) {
        t[2] += u[i];
        t[3] += u[i] * d;
        t[4] += u[i] * g;
      }
    }
    for (int k = 0; k < 5; ++k) out[k] += t[k];
  }
}

// d_grad = act'(pre) * (cu u + f1 d + f0);  d_x = hg g' + hu u + e1 d + e0
template <Act A, bool HasU, typename T>
void plane_dd_write(const T* x, const T* gy, const T* u, T* dgrad, T* dx, int64_t M, T m, T alpha, T b, T slope,
                    const DoubleBackwardPlane& c) {
  using V = Vec<T>;
  constexpr int64_t W = V::size();
  const T cu = T(c.cu), f1 = T(c.f1), f0 = T(c.f0), hg = T(c.hg), hu = T(c.hu), e1 = T(c.e1), e0 = T(c.e0);
  const V vm(m), va(alpha), vb(b), vs(slope), vcu(cu), vf1(f1), vf0(f0), vhg(hg), vhu(hu), ve1(e1), ve0(e0);
  int64_t i = 0;
  for (; i + W <= M; i += W) {
    const V d = V::loadu(x + i) - vm;
    const V pre = at::vec::fmadd(d, va, vb);
    const V g = act_grad<A>(V::loadu(gy + i), pre, vs);
    V lin = at::vec::fmadd(d, vf1, vf0);
    V ox = at::vec::fmadd(vhg, g, at::vec::fmadd(d, ve1, ve0));
    if constexpr (HasU) {
      const V uu = V::loadu(u + i);
      lin = at::vec::fmadd(vcu, uu, lin);
      ox = at::vec::fmadd(vhu, uu, ox);
    }
    act_grad<A>(lin, pre, vs).store(dgrad + i);
    ox.store(dx + i);
  }
  for (; i < M; ++i) {
    const T d = x[i] - m;
    const T pre = std::fma(d, alpha, b);
    const T g = act_grad<A>(gy[i], pre, slope);
    T lin = std::fma(d, f1, f0);
    T ox = std::fma(hg, g, std::fma(d, e1, e0));
    if constexpr (HasU) {
      lin = std::fma(cu, u[i], lin);
      ox = std::fma(hu, u[i], ox);
    }
    dgrad[i] = act_grad<A>(lin, pre, slope);
    dx[i] = ox;
  }
}

// ---------------------------------------------------------------------------------------------
// Planes of a contiguous (N, C, H, W) tensor. `io_t` is the tensor's dtype, `T` the compute type
// (float for float/half/bfloat16, double for double).

template <typename io_t>
using compute_t = std::conditional_t<std::is_same_v<io_t, double>, double, float>;

// Converts a plane to the compute type, or uses it in place when it already is.
template <typename io_t>
const compute_t<io_t>* as_compute(const io_t* p, int64_t M, std::vector<compute_t<io_t>>& buf) {
  if constexpr (std::is_same_v<io_t, compute_t<io_t>>) {
    return p;
  } else {
    buf.resize(static_cast<size_t>(M));
    at::vec::convert(p, buf.data(), M);
    return buf.data();
  }
}

struct Affine {  // per-plane scale and shift, contiguous (N, C) of the compute type, or null
  const void* scale;
  const void* shift;
};

template <typename T>
inline T scale_at(const Affine& a, int64_t p) {
  return a.scale ? static_cast<const T*>(a.scale)[p] : T(1);
}
template <typename T>
inline T shift_at(const Affine& a, int64_t p) {
  return a.shift ? static_cast<const T*>(a.shift)[p] : T(0);
}

// Small planes (a GAN critic's 4x4 and 7x7 maps: 16-49 values) are latency-bound: each plane is a
// chain sum -> mean -> squared deviations -> 1/sqrt -> write, longer than the out-of-order window
// can overlap with the next plane's. So float32/float64 planes of at most kSmallPlane values go
// kGroup at a time, each step of the chain for the whole group before the next (the same operations
// per plane in the same order: bit-identical to one plane at a time).
constexpr int64_t kSmallPlane = 1024;
constexpr int kGroup = 4;

template <Act A, typename T>
void forward_group(const T* x, T* y, int64_t p0, int64_t M, Affine aff, double eps, T slope, double* mean,
                   T* rstd) {
  double m[kGroup], var[kGroup];
  for (int j = 0; j < kGroup; ++j) m[j] = plane_mean(x + (p0 + j) * M, M);
  for (int j = 0; j < kGroup; ++j) var[j] = plane_var(x + (p0 + j) * M, M, m[j]);
  for (int j = 0; j < kGroup; ++j) {
    const int64_t p = p0 + j;
    const T r = rstd_of<T>(var[j], eps);
    mean[p] = m[j];
    rstd[p] = r;
    const SplitMean<T> sm(m[j]);
    const T alpha = scale_at<T>(aff, p) * r;
    plane_write<A>(x + p * M, y + p * M, M, sm.hi, alpha, shift_at<T>(aff, p) - sm.lo * alpha, slope);
  }
}

template <Act A, typename io_t>
void forward_nchw(const io_t* x, io_t* y, int64_t P, int64_t M, Affine aff, double eps, double slope,
                  double* mean, compute_t<io_t>* rstd) {
  using T = compute_t<io_t>;
  at::parallel_for(0, P, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> xbuf, ybuf;
    int64_t p = begin;
    if constexpr (std::is_same_v<io_t, T>) {
      if (M <= kSmallPlane) {
        for (; p + kGroup <= end; p += kGroup) forward_group<A>(x, y, p, M, aff, eps, T(slope), mean, rstd);
      }
    }
    for (; p < end; ++p) {
      const T* xp = as_compute(x + p * M, M, xbuf);
      T r;
      plane_stats(xp, M, eps, mean[p], r);
      rstd[p] = r;
      const SplitMean<T> m(mean[p]);
      const T alpha = scale_at<T>(aff, p) * r;
      const T b = shift_at<T>(aff, p) - m.lo * alpha;
      if constexpr (std::is_same_v<io_t, T>) {
        plane_write<A>(xp, y + p * M, M, m.hi, alpha, b, T(slope));
      } else {
        ybuf.resize(static_cast<size_t>(M));
        plane_write<A>(xp, ybuf.data(), M, m.hi, alpha, b, T(slope));
        at::vec::convert(ybuf.data(), y + p * M, M);
      }
    }
  });
}

// The backward's per-plane constants from its two sums (shared by the grouped and the plain loop).
template <typename T>
struct GradConstants {
  T k1, k2;
};

template <typename T>
GradConstants<T> grad_constants(double sum_g, double sum_gd, const SplitMean<T>& m, T r, T alpha, int64_t M, T* gscale,
                                T* gshift) {
  sum_gd -= static_cast<double>(m.lo) * sum_g;  // the sums used x - hi; x - mean = x - hi - lo
  const double sum_gxhat = sum_gd * r;
  *gshift = static_cast<T>(sum_g);
  *gscale = static_cast<T>(sum_gxhat);
  const double k2 = -static_cast<double>(alpha) * r * sum_gxhat / static_cast<double>(M);
  const double k1 = -static_cast<double>(alpha) * sum_g / static_cast<double>(M) - m.lo * k2;
  return {static_cast<T>(k1), static_cast<T>(k2)};
}

// kGroup small planes at a time (see forward_group).
template <Act A, typename T>
void backward_group(const T* gy, const T* x, T* gx, int64_t p0, int64_t M, const double* mean, const T* rstd,
                    Affine aff, T slope, T* gscale, T* gshift) {
  double sg[kGroup], sd[kGroup];
  T alpha[kGroup], b[kGroup];
  for (int j = 0; j < kGroup; ++j) {
    const int64_t p = p0 + j;
    const SplitMean<T> m(mean[p]);
    alpha[j] = scale_at<T>(aff, p) * rstd[p];
    b[j] = shift_at<T>(aff, p) - m.lo * alpha[j];
    plane_grad_sums<A>(x + p * M, gy + p * M, M, m.hi, alpha[j], b[j], slope, sg[j], sd[j]);
  }
  for (int j = 0; j < kGroup; ++j) {
    const int64_t p = p0 + j;
    const SplitMean<T> m(mean[p]);
    const GradConstants<T> k = grad_constants(sg[j], sd[j], m, rstd[p], alpha[j], M, gscale + p, gshift + p);
    plane_grad_x<A>(x + p * M, gy + p * M, gx + p * M, M, m.hi, alpha[j], b[j], slope, k.k1, k.k2);
  }
}

template <Act A, typename io_t>
void backward_nchw(const io_t* gy, const io_t* x, io_t* gx, int64_t P, int64_t M, const double* mean,
                   const compute_t<io_t>* rstd, Affine aff, double slope, compute_t<io_t>* gscale,
                   compute_t<io_t>* gshift) {
  using T = compute_t<io_t>;
  at::parallel_for(0, P, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> xbuf, gbuf;
    int64_t p = begin;
    if constexpr (std::is_same_v<io_t, T>) {
      if (M <= kSmallPlane) {
        for (; p + kGroup <= end; p += kGroup)
          backward_group<A>(gy, x, gx, p, M, mean, rstd, aff, T(slope), gscale, gshift);
      }
    }
    for (; p < end; ++p) {
      const T* xp = as_compute(x + p * M, M, xbuf);
      const T* gp = as_compute(gy + p * M, M, gbuf);
      const SplitMean<T> m(mean[p]);
      const T r = rstd[p], alpha = scale_at<T>(aff, p) * r;
      const T b = shift_at<T>(aff, p) - m.lo * alpha;
      double sum_g, sum_gd;
      plane_grad_sums<A>(xp, gp, M, m.hi, alpha, b, T(slope), sum_g, sum_gd);
      const GradConstants<T> k = grad_constants(sum_g, sum_gd, m, r, alpha, M, gscale + p, gshift + p);
      if constexpr (std::is_same_v<io_t, T>) {
        plane_grad_x<A>(xp, gp, gx + p * M, M, m.hi, alpha, b, T(slope), k.k1, k.k2);
      } else {
        // gbuf already holds dy in float: overwrite it with dx, then convert out
        plane_grad_x<A>(xp, gp, gbuf.data(), M, m.hi, alpha, b, T(slope), k.k1, k.k2);
        at::vec::convert(gbuf.data(), gx + p * M, M);
      }
    }
  });
}

// The double backward over planes of contiguous tensors of the compute type T.
template <Act A, bool HasU, typename T>
void double_backward_nchw(const T* gy, const T* x, const T* u, T* dgrad, T* dx, int64_t P, int64_t M,
                          const double* mean, const T* rstd, Affine aff, const T* gg_scale, const T* gg_shift,
                          double slope, T* d_scale) {
  at::parallel_for(0, P, 1, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const int64_t o = p * M;
      const T* up = HasU ? u + o : nullptr;
      const SplitMean<T> m(mean[p]);
      const T r = rstd[p], a = scale_at<T>(aff, p), alpha = a * r;
      const T b = shift_at<T>(aff, p) - m.lo * alpha;
      double sums[5];
      plane_dd_sums<A, HasU>(x + o, gy + o, up, M, m.hi, alpha, b, T(slope), sums);
      const DoubleBackwardPlane c =
          double_backward_plane(sums[0], sums[1], sums[2], sums[3], sums[4], static_cast<double>(M), m.lo, r, a,
                                gg_scale ? gg_scale[p] : 0.0, gg_shift ? gg_shift[p] : 0.0);
      d_scale[p] = static_cast<T>(c.d_scale);
      plane_dd_write<A, HasU>(x + o, gy + o, up, dgrad + o, dx + o, M, m.hi, alpha, b, T(slope), c);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// channels_last: x[n] is an (HW, C) row-major matrix.
//   stats: tasks own (n, block of rows); each keeps C-wide partial sums (float32 vectors per
//          row block, double across blocks), reduced in a fixed order (deterministic)
//   write: tasks own (n, block of rows); row r: y[r, :] = act((x[r, :] - mean) * alpha + shift)

constexpr int64_t kRowBlock = 256;

template <typename io_t>
struct NhwcPlan {
  int64_t N, C, HW, blocks;  // blocks of kRowBlock rows per sample
};

// sums[(n * blocks + blk) * C + c] += f over the rows of that block
template <typename io_t, typename F>
void nhwc_block_sums(const io_t* x, const NhwcPlan<io_t>& pl, double* sums, F&& row_fn) {
  using T = compute_t<io_t>;
  at::parallel_for(0, pl.N * pl.blocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> acc(static_cast<size_t>(pl.C)), row;
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n = t / pl.blocks, blk = t % pl.blocks;
      const int64_t r0 = blk * kRowBlock, r1 = std::min(pl.HW, r0 + kRowBlock);
      std::fill(acc.begin(), acc.end(), T(0));
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = as_compute(x + (n * pl.HW + r) * pl.C, pl.C, row);
        row_fn(n, xr, acc.data());
      }
      double* out = sums + t * pl.C;
      for (int64_t c = 0; c < pl.C; ++c) out[c] = acc[c];
    }
  });
}

// per (n, c): the sum over the row blocks, in block order
inline void reduce_blocks(const std::vector<double>& parts, int64_t N, int64_t blocks, int64_t C,
                          std::vector<double>& out) {
  out.assign(static_cast<size_t>(N * C), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t b = 0; b < blocks; ++b)
      for (int64_t c = 0; c < C; ++c) out[n * C + c] += parts[(n * blocks + b) * C + c];
}

template <typename T>
inline void row_add_dev(const T* xr, const T* m, T* acc, int64_t C) {
  using V = Vec<T>;
  int64_t c = 0;
  for (; c + V::size() <= C; c += V::size())
    (V::loadu(acc + c) + (V::loadu(xr + c) - V::loadu(m + c))).store(acc + c);
  for (; c < C; ++c) acc[c] += xr[c] - m[c];
}

template <typename T>
inline void row_add_sq_dev(const T* xr, const T* m, T* acc, int64_t C) {
  using V = Vec<T>;
  int64_t c = 0;
  for (; c + V::size() <= C; c += V::size()) {
    const V d = V::loadu(xr + c) - V::loadu(m + c);
    at::vec::fmadd(d, d, V::loadu(acc + c)).store(acc + c);
  }
  for (; c < C; ++c) {
    const T d = xr[c] - m[c];
    acc[c] += d * d;
  }
}

template <Act A, typename io_t>
void forward_nhwc(const io_t* x, io_t* y, int64_t N, int64_t C, int64_t HW, Affine aff, double eps, double slope,
                  double* mean, compute_t<io_t>* rstd) {
  using T = compute_t<io_t>;
  const NhwcPlan<io_t> pl{N, C, HW, (HW + kRowBlock - 1) / kRowBlock};
  std::vector<double> parts(static_cast<size_t>(N * pl.blocks * C)), tot, tot_lin;
  // sums of deviations from each channel's first pixel (see plane_sum)
  std::vector<T> pivot(static_cast<size_t>(N * C)), row;
  for (int64_t n = 0; n < N; ++n) {
    const T* x0 = as_compute(x + n * HW * C, C, row);
    std::copy(x0, x0 + C, pivot.begin() + n * C);
  }
  nhwc_block_sums(x, pl, parts.data(),
                  [&](int64_t n, const T* xr, T* acc) { row_add_dev(xr, pivot.data() + n * C, acc, C); });
  reduce_blocks(parts, N, pl.blocks, C, tot);
  std::vector<T> mhi(static_cast<size_t>(N * C)), mlo(static_cast<size_t>(N * C));
  for (int64_t p = 0; p < N * C; ++p) {
    mean[p] = static_cast<double>(pivot[p]) + tot[p] / static_cast<double>(HW);
    const SplitMean<T> m(mean[p]);
    mhi[p] = m.hi;
    mlo[p] = m.lo;
  }
  // sum (x - hi) corrects the squared deviations for hi's rounding, as plane_sq_dev does
  nhwc_block_sums(x, pl, parts.data(),
                  [&](int64_t n, const T* xr, T* acc) { row_add_dev(xr, mhi.data() + n * C, acc, C); });
  reduce_blocks(parts, N, pl.blocks, C, tot_lin);
  // Second pass over the sample for the deviations (x[n] is not cache-resident here, but the
  // two-pass variance is what keeps large means exact).
  nhwc_block_sums(x, pl, parts.data(),
                  [&](int64_t n, const T* xr, T* acc) { row_add_sq_dev(xr, mhi.data() + n * C, acc, C); });
  reduce_blocks(parts, N, pl.blocks, C, tot);
  std::vector<T> alpha(static_cast<size_t>(N * C)), shift(static_cast<size_t>(N * C));
  for (int64_t p = 0; p < N * C; ++p) {
    const double sq = std::max(0.0, tot[p] - tot_lin[p] * tot_lin[p] / static_cast<double>(HW));
    rstd[p] = static_cast<T>(1.0 / std::sqrt(sq / static_cast<double>(HW) + eps));
    alpha[p] = scale_at<T>(aff, p) * rstd[p];
    shift[p] = shift_at<T>(aff, p) - mlo[p] * alpha[p];
  }
  using V = Vec<T>;
  const V vs(static_cast<T>(slope));
  const T ts = static_cast<T>(slope);
  at::parallel_for(0, N * pl.blocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> row, out(static_cast<size_t>(C));
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n = t / pl.blocks, r0 = (t % pl.blocks) * kRowBlock, r1 = std::min(HW, r0 + kRowBlock);
      const T *m = mhi.data() + n * C, *a = alpha.data() + n * C, *b = shift.data() + n * C;
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = as_compute(x + (n * HW + r) * C, C, row);
        T* yr = std::is_same_v<io_t, T> ? reinterpret_cast<T*>(y + (n * HW + r) * C) : out.data();
        int64_t c = 0;
        for (; c + V::size() <= C; c += V::size())
          activate<A>(at::vec::fmadd(V::loadu(xr + c) - V::loadu(m + c), V::loadu(a + c), V::loadu(b + c)), vs)
              .store(yr + c);
        for (; c < C; ++c) yr[c] = activate<A>(std::fma(xr[c] - m[c], a[c], b[c]), ts);
        if constexpr (!std::is_same_v<io_t, T>) at::vec::convert(out.data(), y + (n * HW + r) * C, C);
      }
    }
  });
}

template <Act A, typename io_t>
void backward_nhwc(const io_t* gy, const io_t* x, io_t* gx, int64_t N, int64_t C, int64_t HW,
                   const double* mean, const compute_t<io_t>* rstd, Affine aff, double slope,
                   compute_t<io_t>* gscale, compute_t<io_t>* gshift) {
  using T = compute_t<io_t>;
  using V = Vec<T>;
  const int64_t blocks = (HW + kRowBlock - 1) / kRowBlock;
  std::vector<T> alpha(static_cast<size_t>(N * C)), shift(static_cast<size_t>(N * C));
  std::vector<T> mhi(static_cast<size_t>(N * C)), mlo(static_cast<size_t>(N * C));
  for (int64_t p = 0; p < N * C; ++p) {
    const SplitMean<T> m(mean[p]);
    mhi[p] = m.hi;
    mlo[p] = m.lo;
    alpha[p] = scale_at<T>(aff, p) * rstd[p];
    shift[p] = shift_at<T>(aff, p) - m.lo * alpha[p];
  }
  const V vs(static_cast<T>(slope));
  const T ts = static_cast<T>(slope);
  // pass 1: per block, sum g and sum g * (x - mean) per channel
  std::vector<double> parts_g(static_cast<size_t>(N * blocks * C)), parts_gd(parts_g.size());
  at::parallel_for(0, N * blocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> xrow, grow, sg(static_cast<size_t>(C)), sd(static_cast<size_t>(C));
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n = t / blocks, r0 = (t % blocks) * kRowBlock, r1 = std::min(HW, r0 + kRowBlock);
      const T *m = mhi.data() + n * C, *a = alpha.data() + n * C, *b = shift.data() + n * C;
      std::fill(sg.begin(), sg.end(), T(0));
      std::fill(sd.begin(), sd.end(), T(0));
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = as_compute(x + (n * HW + r) * C, C, xrow);
        const T* gr = as_compute(gy + (n * HW + r) * C, C, grow);
        int64_t c = 0;
        for (; c + V::size() <= C; c += V::size()) {
          const V d = V::loadu(xr + c) - V::loadu(m + c);
          const V g = act_grad<A>(V::loadu(gr + c), at::vec::fmadd(d, V::loadu(a + c), V::loadu(b + c)), vs);
          (V::loadu(sg.data() + c) + g).store(sg.data() + c);
          at::vec::fmadd(g, d, V::loadu(sd.data() + c)).store(sd.data() + c);
        }
        for (; c < C; ++c) {
          const T d = xr[c] - m[c];
          const T g = act_grad<A>(gr[c], std::fma(d, a[c], b[c]), ts);
          sg[c] += g;
          sd[c] += g * d;
        }
      }
      for (int64_t c = 0; c < C; ++c) {
        parts_g[t * C + c] = sg[c];
        parts_gd[t * C + c] = sd[c];
      }
    }
  });
  std::vector<double> sum_g, sum_gd;
  reduce_blocks(parts_g, N, blocks, C, sum_g);
  reduce_blocks(parts_gd, N, blocks, C, sum_gd);
  std::vector<T> k1(static_cast<size_t>(N * C)), k2(static_cast<size_t>(N * C));
  for (int64_t p = 0; p < N * C; ++p) {
    const double sum_gxhat = (sum_gd[p] - static_cast<double>(mlo[p]) * sum_g[p]) * rstd[p];
    gshift[p] = static_cast<T>(sum_g[p]);
    gscale[p] = static_cast<T>(sum_gxhat);
    const double q2 = -static_cast<double>(alpha[p]) * rstd[p] * sum_gxhat / static_cast<double>(HW);
    k2[p] = static_cast<T>(q2);
    k1[p] = static_cast<T>(-static_cast<double>(alpha[p]) * sum_g[p] / static_cast<double>(HW) - mlo[p] * q2);
  }
  // pass 2: dx
  at::parallel_for(0, N * blocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> xrow, grow, out(static_cast<size_t>(C));
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n = t / blocks, r0 = (t % blocks) * kRowBlock, r1 = std::min(HW, r0 + kRowBlock);
      const T *m = mhi.data() + n * C, *a = alpha.data() + n * C, *b = shift.data() + n * C;
      const T *q1 = k1.data() + n * C, *q2 = k2.data() + n * C;
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = as_compute(x + (n * HW + r) * C, C, xrow);
        const T* gr = as_compute(gy + (n * HW + r) * C, C, grow);
        T* dr = std::is_same_v<io_t, T> ? reinterpret_cast<T*>(gx + (n * HW + r) * C) : out.data();
        int64_t c = 0;
        for (; c + V::size() <= C; c += V::size()) {
          const V d = V::loadu(xr + c) - V::loadu(m + c);
          const V va = V::loadu(a + c);
          const V g = act_grad<A>(V::loadu(gr + c), at::vec::fmadd(d, va, V::loadu(b + c)), vs);
          at::vec::fmadd(va, g, at::vec::fmadd(d, V::loadu(q2 + c), V::loadu(q1 + c))).store(dr + c);
        }
        for (; c < C; ++c) {
          const T d = xr[c] - m[c];
          const T g = act_grad<A>(gr[c], std::fma(d, a[c], b[c]), ts);
          dr[c] = std::fma(a[c], g, std::fma(d, q2[c], q1[c]));
        }
        if constexpr (!std::is_same_v<io_t, T>) at::vec::convert(out.data(), gx + (n * HW + r) * C, C);
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// The ops.

template <typename F>
void dispatch_act(Act act, F&& f) {
  switch (act) {
    case Act::kNone: f(std::integral_constant<Act, Act::kNone>{}); break;
    case Act::kRelu: f(std::integral_constant<Act, Act::kRelu>{}); break;
    case Act::kLeakyRelu: f(std::integral_constant<Act, Act::kLeakyRelu>{}); break;
  }
}

enum class Layout { kNchw, kNhwc };

// The output takes x's layout (as torch.empty_like does, which the fake kernel uses); the kernel
// runs on an NCHW or NHWC view of the inputs, copying where x is neither.
inline Layout layout_of(const at::Tensor& out) {
  if (out.is_contiguous()) return Layout::kNchw;
  if (out.is_contiguous(at::MemoryFormat::ChannelsLast)) return Layout::kNhwc;
  return Layout::kNchw;  // other layouts: computed contiguous and copied into `out`
}

inline at::Tensor in_layout(const at::Tensor& t, Layout l) {
  return l == Layout::kNhwc ? t.contiguous(at::MemoryFormat::ChannelsLast) : t.contiguous();
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> instance_norm_cpu(const at::Tensor& x,
                                                                 const c10::optional<at::Tensor>& scale,
                                                                 const c10::optional<at::Tensor>& shift, double eps,
                                                                 c10::string_view activation, double negative_slope) {
  const char* op = "instance_norm";
  const Act act = check_forward_inputs(x, scale, shift, eps, activation, op);
  const auto acc = acc_type(x.scalar_type());
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  auto out = cpu::empty_like_cached(x);
  // N = 0 or C = 0: nothing to do; H*W = 0: no statistics (NaN)
  at::Tensor mean, rstd;  // (no structured binding: C++17 lambdas cannot capture one)
  std::tie(mean, rstd) = new_stats(x, out.numel() == 0);
  if (out.numel() == 0) return {out, mean, rstd};
  const Layout layout = layout_of(out);
  const auto xc = in_layout(x, layout);
  at::Tensor y = out.strides() == xc.strides() ? out : at::empty_like(xc);
  const auto sc = per_plane_acc(scale, acc), sh = per_plane_acc(shift, acc);
  const Affine aff{sc.defined() ? sc.const_data_ptr() : nullptr, sh.defined() ? sh.const_data_ptr() : nullptr};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "genfast::instance_norm", [&] {
    using T = compute_t<scalar_t>;
    dispatch_act(act, [&](auto a) {
      constexpr Act A = decltype(a)::value;
      if (layout == Layout::kNhwc) {
        forward_nhwc<A, scalar_t>(xc.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(), N, C, HW, aff,
                                  eps, negative_slope, mean.mutable_data_ptr<double>(), rstd.mutable_data_ptr<T>());
      } else {
        forward_nchw<A, scalar_t>(xc.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(), N * C, HW, aff,
                                  eps, negative_slope, mean.mutable_data_ptr<double>(), rstd.mutable_data_ptr<T>());
      }
    });
  });
  if (!y.is_same(out)) out.copy_(y);
  return {out, mean, rstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> instance_norm_backward_cpu(
    const at::Tensor& grad, const at::Tensor& x, const at::Tensor& mean, const at::Tensor& rstd,
    const c10::optional<at::Tensor>& scale, const c10::optional<at::Tensor>& shift, double eps,
    c10::string_view activation, double negative_slope) {
  const char* op = "instance_norm_backward";
  check_backward_inputs(grad, x, mean, rstd, scale, shift, op);
  const Act act = parse_activation(activation, op);
  const auto acc = acc_type(x.scalar_type());
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  auto gx = cpu::empty_like_cached(x);
  at::Tensor gscale, gshift;
  std::tie(gscale, gshift) = new_affine_grads(x);
  if (gx.numel() == 0) return {gx, gscale, gshift};
  const Layout layout = layout_of(gx);
  const auto xc = in_layout(x, layout);
  const auto gc = in_layout(grad.to(x.scalar_type()), layout);
  at::Tensor dx = gx.strides() == xc.strides() ? gx : at::empty_like(xc);
  const auto mc = mean.to(at::kDouble).contiguous(), rc = rstd.to(acc).contiguous();
  const auto sc = per_plane_acc(scale, acc), sh = per_plane_acc(shift, acc);
  const Affine aff{sc.defined() ? sc.const_data_ptr() : nullptr, sh.defined() ? sh.const_data_ptr() : nullptr};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "genfast::instance_norm_backward", [&] {
    using T = compute_t<scalar_t>;
    dispatch_act(act, [&](auto a) {
      constexpr Act A = decltype(a)::value;
      if (layout == Layout::kNhwc) {
        backward_nhwc<A, scalar_t>(gc.const_data_ptr<scalar_t>(), xc.const_data_ptr<scalar_t>(),
                                   dx.mutable_data_ptr<scalar_t>(), N, C, HW, mc.const_data_ptr<double>(),
                                   rc.const_data_ptr<T>(), aff, negative_slope, gscale.mutable_data_ptr<T>(),
                                   gshift.mutable_data_ptr<T>());
      } else {
        backward_nchw<A, scalar_t>(gc.const_data_ptr<scalar_t>(), xc.const_data_ptr<scalar_t>(),
                                   dx.mutable_data_ptr<scalar_t>(), N * C, HW, mc.const_data_ptr<double>(),
                                   rc.const_data_ptr<T>(), aff, negative_slope, gscale.mutable_data_ptr<T>(),
                                   gshift.mutable_data_ptr<T>());
      }
    });
  });
  if (!dx.is_same(gx)) gx.copy_(dx);
  return {gx, gscale, gshift};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> instance_norm_double_backward_cpu(
    const at::Tensor& grad, const at::Tensor& x, const at::Tensor& mean, const at::Tensor& rstd,
    const c10::optional<at::Tensor>& scale, const c10::optional<at::Tensor>& shift,
    const c10::optional<at::Tensor>& gg_x, const c10::optional<at::Tensor>& gg_scale,
    const c10::optional<at::Tensor>& gg_shift, c10::string_view activation, double negative_slope) {
  auto a = prepare_double_backward(grad, x, mean, rstd, scale, shift, gg_x, gg_scale, gg_shift, activation,
                                   "instance_norm_double_backward");
  if (a.empty()) return a.finish();
  const auto ptr = [](const at::Tensor& t) { return t.defined() ? t.const_data_ptr() : nullptr; };
  const Affine aff{ptr(a.scale), ptr(a.shift)};
  AT_DISPATCH_FLOATING_TYPES(a.acc, "genfast::instance_norm_double_backward", [&] {
    using T = scalar_t;
    dispatch_act(a.act, [&](auto act) {
      constexpr Act A = decltype(act)::value;
      const auto run = [&](auto with_u) {
        constexpr bool HasU = decltype(with_u)::value;
        double_backward_nchw<A, HasU, T>(
            a.grad.const_data_ptr<T>(), a.x.const_data_ptr<T>(), static_cast<const T*>(ptr(a.u)),
            a.dg.mutable_data_ptr<T>(), a.dx.mutable_data_ptr<T>(), a.N * a.C, a.HW, a.mean.const_data_ptr<double>(),
            a.rstd.const_data_ptr<T>(), aff, static_cast<const T*>(ptr(a.gg_scale)),
            static_cast<const T*>(ptr(a.gg_shift)), negative_slope, a.d_scale.mutable_data_ptr<T>());
      };
      if (a.u.defined()) {
        run(std::true_type{});
      } else {
        run(std::false_type{});
      }
    });
  });
  return a.finish();
}

}  // namespace

TORCH_LIBRARY_IMPL(genfast, CPU, m) {
  m.impl("instance_norm", &instance_norm_cpu);
  m.impl("instance_norm_backward", &instance_norm_backward_cpu);
  m.impl("instance_norm_double_backward", &instance_norm_double_backward_cpu);
}

}  // namespace genfast::instance_norm
