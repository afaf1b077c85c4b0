// CPU kernels of the minibatch standard deviation layer (math in minibatch_stddev.h).
//
// Forward: one pass over x that copies it into the output while summing the group mean, a second
// pass over the same block (still in L1) for the variance, then the statistic is broadcast into
// the appended channels. Backward: gstat from dy's appended channels, then one pass that
// recomputes mean and deviation and writes dx. No ATen ops on the way: at these sizes (1 MB) each
// extra ATen call or temporary costs as much as the whole kernel.
//
// The work is split into (group m, channel group f, run of the outer dimension) tasks so that even
// one group (G = N) keeps both cores busy. Inner loops run along the unit-stride dimension (H*W for
// NCHW, the channels of a pixel for channels_last) over a block of up to kBlock elements, with the
// group mean and deviation held in small buffers. The square roots go through at::vec::Vectorized:
// without -fno-math-errno the compiler will not vectorise std::sqrt itself. Statistics accumulate
// in float32 (float64 for float64 input), in a fixed order: the result does not depend on the
// number of threads.

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "minibatch_stddev/minibatch_stddev.h"

namespace genfast::minibatch_stddev {
namespace {

constexpr int64_t kBlock = 256;
constexpr int64_t kTaskElements = 8192;  // elements of one slab per task

// A task is a range [e0, e1) of the flat index e = o * inner + i of one (m, f) slab.
struct Task {
  int64_t m, f, e0, e1;
};

inline int64_t slab_size(const Geometry& g) { return g.outer * g.inner; }

inline int64_t chunks_per_slab(const Geometry& g) {
  return std::max<int64_t>(1, (slab_size(g) + kTaskElements - 1) / kTaskElements);
}

// small inputs stay on one thread (a parallel region costs more than they do)
inline int64_t grain_of(const Geometry& g) {
  return std::max<int64_t>(1, 32768 / std::min(kTaskElements, std::max<int64_t>(slab_size(g), 1)));
}

inline Task task_of(const Geometry& g, int64_t t, int64_t chunks) {
  const int64_t mf = t / chunks, chunk = t % chunks;
  const int64_t per = (slab_size(g) + chunks - 1) / chunks;
  return {mf / g.F, mf % g.F, chunk * per, std::min(slab_size(g), (chunk + 1) * per)};
}

// Calls fn(offset_in_x_sample, offset_in_out_sample, len) over unit-stride runs of at most kBlock
// elements covering the task's range (out: the output in the forward, dy in the backward).
template <typename Fn>
inline void for_each_run(const Geometry& g, const Task& k, Fn&& fn) {
  for (int64_t e = k.e0; e < k.e1;) {
    const int64_t o = e / g.inner, i = e % g.inner;
    const int64_t len = std::min({kBlock, g.inner - i, k.e1 - e});
    fn(k.f * g.f_offset + o * g.s_outer + i, k.f * g.f_offset + o * g.o_outer + i, len);
    e += len;
  }
}

// mu and the variance for `len` positions at offset `off` of the G samples of group m. When `out`
// is given, the pass that sums the mean also copies the values there (at offset out_off).
template <typename scalar_t, typename acc_t>
inline void group_moments(const scalar_t* __restrict__ x, const Geometry& g, int64_t m, int64_t off, int64_t len,
                          acc_t* __restrict__ mu, acc_t* __restrict__ var, scalar_t* __restrict__ out,
                          int64_t out_off) {
  const acc_t inv_g = acc_t(1) / static_cast<acc_t>(g.G);
  for (int64_t i = 0; i < len; ++i) mu[i] = 0;
  for (int64_t s = 0; s < g.G; ++s) {
    const int64_t sample = s * g.n + m;
    const scalar_t* __restrict__ p = x + sample * g.sN + off;
    if (out != nullptr) {
      scalar_t* __restrict__ q = out + sample * g.oN + out_off;
      for (int64_t i = 0; i < len; ++i) {
        mu[i] += static_cast<acc_t>(p[i]);
        q[i] = p[i];
      }
    } else {
      for (int64_t i = 0; i < len; ++i) mu[i] += static_cast<acc_t>(p[i]);
    }
  }
  for (int64_t i = 0; i < len; ++i) mu[i] *= inv_g;
  for (int64_t i = 0; i < len; ++i) var[i] = 0;
  for (int64_t s = 0; s < g.G; ++s) {
    const scalar_t* __restrict__ p = x + (s * g.n + m) * g.sN + off;
    for (int64_t i = 0; i < len; ++i) {
      const acc_t d = static_cast<acc_t>(p[i]) - mu[i];
      var[i] += d * d;
    }
  }
  for (int64_t i = 0; i < len; ++i) var[i] *= inv_g;
}

// sum_i sqrt(var[i] + eps), lanes first, then the lanes and the tail in order
template <typename acc_t>
inline acc_t sum_sqrt(const acc_t* var, int64_t len, acc_t eps) {
  using Vec = at::vec::Vectorized<acc_t>;
  const Vec ve(eps);
  Vec acc(acc_t(0));
  int64_t i = 0;
  for (; i + Vec::size() <= len; i += Vec::size()) acc = acc + (Vec::loadu(var + i) + ve).sqrt();
  acc_t lanes[Vec::size()];
  acc.store(lanes);
  acc_t sum = 0;
  for (int l = 0; l < Vec::size(); ++l) sum += lanes[l];
  for (; i < len; ++i) sum += std::sqrt(var[i] + eps);
  return sum;
}

// var[i] <- scale / sqrt(var[i] + eps)
template <typename acc_t>
inline void scaled_rsqrt(acc_t* var, int64_t len, acc_t scale, acc_t eps) {
  using Vec = at::vec::Vectorized<acc_t>;
  const Vec ve(eps), vs(scale);
  int64_t i = 0;
  for (; i + Vec::size() <= len; i += Vec::size()) (vs / (Vec::loadu(var + i) + ve).sqrt()).store(var + i);
  for (; i < len; ++i) var[i] = scale / std::sqrt(var[i] + eps);
}

template <typename scalar_t, typename acc_t>
void forward_kernel(const scalar_t* x, scalar_t* out, const Geometry& g, double eps) {
  const int64_t chunks = chunks_per_slab(g);
  std::vector<acc_t> partial(static_cast<size_t>(g.n * g.F * chunks), acc_t(0));
  const acc_t e = static_cast<acc_t>(eps);
  at::parallel_for(0, g.n * g.F * chunks, grain_of(g), [&](int64_t begin, int64_t end) {
    acc_t mu[kBlock], var[kBlock];
    for (int64_t t = begin; t < end; ++t) {
      const Task k = task_of(g, t, chunks);
      acc_t sum = 0;
      for_each_run(g, k, [&](int64_t off, int64_t out_off, int64_t len) {
        group_moments(x, g, k.m, off, len, mu, var, out, out_off);
        sum += sum_sqrt(var, len, e);
      });
      partial[t] = sum;
    }
  });
  // stat[m, f] (a mean over no elements when C = 0: NaN, as the reference) into channel C + f of
  // the group's G samples
  const acc_t inv_k = acc_t(1) / static_cast<acc_t>(g.c * g.HW);
  for (int64_t mf = 0; mf < g.n * g.F; ++mf) {
    acc_t s = 0;
    for (int64_t ch = 0; ch < chunks; ++ch) s += partial[mf * chunks + ch];
    const scalar_t stat = static_cast<scalar_t>(s * inv_k);
    const int64_t m = mf / g.F, f = mf % g.F;
    for (int64_t smp = 0; smp < g.G; ++smp) {
      scalar_t* q = out + (smp * g.n + m) * g.oN + (g.C + f) * g.o_chan;
      for (int64_t p = 0; p < g.HW; ++p) q[p * g.o_pix] = stat;
    }
  }
}

at::Tensor minibatch_stddev_cpu(const at::Tensor& x_in, int64_t group_size, int64_t num_channels, double eps) {
  const Geometry g = check_and_measure(x_in, group_size, num_channels, eps, "minibatch_stddev");
  const auto fmt = layout_of(x_in);
  const at::Tensor x = x_in.contiguous(fmt);
  at::Tensor out = at::empty({g.N, g.C + g.F, x.size(2), x.size(3)}, x.options().memory_format(fmt));
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "genfast::minibatch_stddev", [&] {
    using acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
    forward_kernel<scalar_t, acc_t>(x.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), g, eps);
  });
  return out;
}

template <typename scalar_t, typename acc_t>
void backward_kernel(const scalar_t* x, const scalar_t* dy, scalar_t* dx, const Geometry& g, double eps) {
  // gstat[m, f] = sum over the group's samples and H x W of dy[:, C + f]: N * F * H * W reads, a
  // small fraction of the main pass
  std::vector<acc_t> gstat(static_cast<size_t>(g.n * g.F), acc_t(0));
  for (int64_t mf = 0; mf < g.n * g.F; ++mf) {
    const int64_t m = mf / g.F, f = mf % g.F;
    acc_t sum = 0;
    for (int64_t smp = 0; smp < g.G; ++smp) {
      const scalar_t* p = dy + (smp * g.n + m) * g.oN + (g.C + f) * g.o_chan;
      for (int64_t q = 0; q < g.HW; ++q) sum += static_cast<acc_t>(p[q * g.o_pix]);
    }
    gstat[mf] = sum;
  }
  const int64_t chunks = chunks_per_slab(g);
  const acc_t e = static_cast<acc_t>(eps);
  const acc_t inv_kg = acc_t(1) / static_cast<acc_t>(g.c * g.HW * g.G);
  at::parallel_for(0, g.n * g.F * chunks, grain_of(g), [&](int64_t begin, int64_t end) {
    acc_t mu[kBlock], coef[kBlock];
    for (int64_t t = begin; t < end; ++t) {
      const Task k = task_of(g, t, chunks);
      const acc_t gs = gstat[k.m * g.F + k.f] * inv_kg;
      for_each_run(g, k, [&](int64_t off, int64_t dy_off, int64_t len) {
        group_moments<scalar_t, acc_t>(x, g, k.m, off, len, mu, coef, nullptr, 0);
        scaled_rsqrt(coef, len, gs, e);
        for (int64_t s = 0; s < g.G; ++s) {
          const int64_t sample = s * g.n + k.m;
          const scalar_t* __restrict__ xp = x + sample * g.sN + off;
          const scalar_t* __restrict__ dyp = dy + sample * g.oN + dy_off;
          scalar_t* __restrict__ dxp = dx + sample * g.sN + off;
          for (int64_t i = 0; i < len; ++i) {
            dxp[i] = static_cast<scalar_t>(static_cast<acc_t>(dyp[i]) + coef[i] * (static_cast<acc_t>(xp[i]) - mu[i]));
          }
        }
      });
    }
  });
}

at::Tensor minibatch_stddev_backward_cpu(const at::Tensor& grad_out, const at::Tensor& x_in, int64_t group_size,
                                         int64_t num_channels, double eps) {
  const Geometry g = check_and_measure(x_in, group_size, num_channels, eps, "minibatch_stddev_backward");
  check_grad_out(grad_out, x_in, g);
  const auto fmt = layout_of(x_in);
  const at::Tensor x = x_in.contiguous(fmt);
  const at::Tensor dy = grad_out.to(x.scalar_type()).contiguous(fmt);
  at::Tensor dx = at::empty(x.sizes(), x.options().memory_format(fmt));
  if (dx.numel() == 0) return dx;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "genfast::minibatch_stddev_backward",
                                  [&] {
                                    using acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
                                    backward_kernel<scalar_t, acc_t>(x.const_data_ptr<scalar_t>(),
                                                                     dy.const_data_ptr<scalar_t>(),
                                                                     dx.mutable_data_ptr<scalar_t>(), g, eps);
                                  });
  return dx;
}

}  // namespace

TORCH_LIBRARY_IMPL(genfast, CPU, m) {
  m.impl("minibatch_stddev", &minibatch_stddev_cpu);
  m.impl("minibatch_stddev_backward", &minibatch_stddev_backward_cpu);
}

}  // namespace genfast::minibatch_stddev
