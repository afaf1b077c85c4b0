// CPU kernels of the minibatch standard deviation layer (math in minibatch_stddev.h).
//
// Forward: one pass over x that copies it into the output while summing the group mean and (from
// L1) the variance and the square root, then the statistic is broadcast into the appended
// channels. Backward: gstat from dy's appended channels, then one pass that recomputes mean and
// deviation and writes dx. No ATen ops on the way: at StyleGAN's sizes (1 MB) every extra ATen
// call or temporary is a sizeable fraction of the kernel.
//
// The work is split into (group m, channel group f, run of the outer dimension) tasks so that even
// one group (G = N) keeps both cores busy. Inner loops run along the unit-stride dimension (H*W for
// NCHW, the channels of a pixel for channels_last), written with at::vec::Vectorized: the compiler
// did not vectorise the plain loops (aliasing, and std::sqrt without -fno-math-errno). Statistics
// accumulate in float32 (float64 for float64 input), in a fixed order: the result does not depend
// on the number of threads.

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

// Calls fn(offset_in_x_sample, offset_in_out_sample, len) over the unit-stride runs covering the
// task's range (out: the output in the forward, dy in the backward).
template <typename Fn>
inline void for_each_run(const Geometry& g, const Task& k, Fn&& fn) {
  for (int64_t e = k.e0; e < k.e1;) {
    const int64_t o = e / g.inner, i = e % g.inner;
    const int64_t len = std::min(g.inner - i, k.e1 - e);
    fn(k.f * g.f_offset + o * g.s_outer + i, k.f * g.f_offset + o * g.o_outer + i, len);
    e += len;
  }
}

// float and double inputs take the at::vec path: the G values of a lane are loaded once into a
// register for the mean and again (from L1) for the deviation, without buffers in between
template <typename scalar_t, typename acc_t>
constexpr bool kVectorised = std::is_same_v<scalar_t, acc_t>;

// One run of `len` positions of a slab: x0 points at the run in the group's first sample, the
// others follow `x_step` apart (and out0 / out_step likewise). Copies the values into the output
// and returns sum_i sqrt(var_i + eps).
template <typename scalar_t, typename acc_t>
acc_t forward_run(const scalar_t* __restrict__ x0, scalar_t* __restrict__ out0, int64_t x_step, int64_t out_step,
                  int64_t G, int64_t len, acc_t eps) {
  const acc_t inv_g = acc_t(1) / static_cast<acc_t>(G);
  acc_t total = 0;
  int64_t i = 0;
  if constexpr (kVectorised<scalar_t, acc_t>) {
    using Vec = at::vec::Vectorized<acc_t>;
    const Vec vinv_g(inv_g), veps(eps);
    Vec acc(acc_t(0));
    for (; i + Vec::size() <= len; i += Vec::size()) {
      Vec sum(acc_t(0));
      for (int64_t s = 0; s < G; ++s) {
        const Vec v = Vec::loadu(x0 + s * x_step + i);
        v.store(out0 + s * out_step + i);
        sum = sum + v;
      }
      const Vec mean = sum * vinv_g;
      Vec ss(acc_t(0));
      for (int64_t s = 0; s < G; ++s) {
        const Vec d = Vec::loadu(x0 + s * x_step + i) - mean;
        ss = at::vec::fmadd(d, d, ss);
      }
      acc = acc + at::vec::fmadd(ss, vinv_g, veps).sqrt();
    }
    acc_t lanes[Vec::size()];
    acc.store(lanes);
    for (int l = 0; l < Vec::size(); ++l) total += lanes[l];
  }
  for (; i < len; ++i) {
    acc_t sum = 0;
    for (int64_t s = 0; s < G; ++s) {
      const scalar_t v = x0[s * x_step + i];
      out0[s * out_step + i] = v;
      sum += static_cast<acc_t>(v);
    }
    const acc_t mean = sum * inv_g;
    acc_t ss = 0;
    for (int64_t s = 0; s < G; ++s) {
      const acc_t d = static_cast<acc_t>(x0[s * x_step + i]) - mean;
      ss += d * d;
    }
    total += std::sqrt(ss * inv_g + eps);
  }
  return total;
}

// One run of the backward: dx = dy + gs * (x - mu) / sqrt(var + eps), gs = gstat / (K * G).
template <typename scalar_t, typename acc_t>
void backward_run(const scalar_t* __restrict__ x0, const scalar_t* __restrict__ dy0, scalar_t* __restrict__ dx0,
                  int64_t x_step, int64_t dy_step, int64_t G, int64_t len, acc_t gs, acc_t eps) {
  const acc_t inv_g = acc_t(1) / static_cast<acc_t>(G);
  int64_t i = 0;
  if constexpr (kVectorised<scalar_t, acc_t>) {
    using Vec = at::vec::Vectorized<acc_t>;
    const Vec vinv_g(inv_g), veps(eps), vgs(gs);
    for (; i + Vec::size() <= len; i += Vec::size()) {
      Vec sum(acc_t(0));
      for (int64_t s = 0; s < G; ++s) sum = sum + Vec::loadu(x0 + s * x_step + i);
      const Vec mean = sum * vinv_g;
      Vec ss(acc_t(0));
      for (int64_t s = 0; s < G; ++s) {
        const Vec d = Vec::loadu(x0 + s * x_step + i) - mean;
        ss = at::vec::fmadd(d, d, ss);
      }
      const Vec coef = vgs / at::vec::fmadd(ss, vinv_g, veps).sqrt();
      for (int64_t s = 0; s < G; ++s) {
        const Vec d = Vec::loadu(x0 + s * x_step + i) - mean;
        at::vec::fmadd(coef, d, Vec::loadu(dy0 + s * dy_step + i)).store(dx0 + s * x_step + i);
      }
    }
  }
  for (; i < len; ++i) {
    acc_t sum = 0;
    for (int64_t s = 0; s < G; ++s) sum += static_cast<acc_t>(x0[s * x_step + i]);
    const acc_t mean = sum * inv_g;
    acc_t ss = 0;
    for (int64_t s = 0; s < G; ++s) {
      const acc_t d = static_cast<acc_t>(x0[s * x_step + i]) - mean;
      ss += d * d;
    }
    const acc_t coef = gs / std::sqrt(ss * inv_g + eps);
    for (int64_t s = 0; s < G; ++s) {
      const acc_t d = static_cast<acc_t>(x0[s * x_step + i]) - mean;
      dx0[s * x_step + i] = static_cast<scalar_t>(static_cast<acc_t>(dy0[s * dy_step + i]) + coef * d);
    }
  }
}

template <typename scalar_t, typename acc_t>
void forward_kernel(const scalar_t* x, scalar_t* out, const Geometry& g, double eps) {
  const int64_t chunks = chunks_per_slab(g);
  std::vector<acc_t> partial(static_cast<size_t>(g.n * g.F * chunks), acc_t(0));
  const acc_t e = static_cast<acc_t>(eps);
  at::parallel_for(0, g.n * g.F * chunks, grain_of(g), [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const Task k = task_of(g, t, chunks);
      acc_t sum = 0;
      for_each_run(g, k, [&](int64_t off, int64_t out_off, int64_t len) {
        sum += forward_run<scalar_t, acc_t>(x + k.m * g.sN + off, out + k.m * g.oN + out_off, g.n * g.sN,
                                            g.n * g.oN, g.G, len, e);
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
    for (int64_t t = begin; t < end; ++t) {
      const Task k = task_of(g, t, chunks);
      const acc_t gs = gstat[k.m * g.F + k.f] * inv_kg;
      for_each_run(g, k, [&](int64_t off, int64_t dy_off, int64_t len) {
        backward_run<scalar_t, acc_t>(x + k.m * g.sN + off, dy + k.m * g.oN + dy_off, dx + k.m * g.sN + off,
                                      g.n * g.sN, g.n * g.oN, g.G, len, gs, e);
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
