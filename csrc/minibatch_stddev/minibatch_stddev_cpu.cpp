// CPU kernels of the minibatch standard deviation layer (math in minibatch_stddev.h).
//
// The work is split into (group m, channel group f, run of the outer dimension) tasks so that even
// one group (G = N) keeps both cores busy. Inner loops run along the unit-stride dimension (H*W for
// NCHW, the channels of a pixel for channels_last) over a block of up to kBlock elements, with the
// group mean and deviation held in small buffers so the compiler vectorises them. Statistics
// accumulate in float32 (float64 for float64 input).

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
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

inline Task task_of(const Geometry& g, int64_t t, int64_t chunks) {
  const int64_t mf = t / chunks, chunk = t % chunks;
  const int64_t per = (slab_size(g) + chunks - 1) / chunks;
  return {mf / g.F, mf % g.F, chunk * per, std::min(slab_size(g), (chunk + 1) * per)};
}

// Calls fn(offset_in_sample, offset_in_dy_sample, len) over unit-stride runs of at most kBlock
// elements covering the task's range.
template <typename Fn>
inline void for_each_run(const Geometry& g, const Task& k, int64_t dy_s_outer, Fn&& fn) {
  for (int64_t e = k.e0; e < k.e1;) {
    const int64_t o = e / g.inner, i = e % g.inner;
    const int64_t len = std::min({kBlock, g.inner - i, k.e1 - e});
    fn(k.f * g.f_offset + o * g.s_outer + i, k.f * g.f_offset + o * dy_s_outer + i, len);
    e += len;
  }
}

// mu and s (before the sqrt: variance) for `len` inner positions starting at offset `off`
// (relative to sample (0, m)), over the G samples of the group.
template <typename scalar_t, typename acc_t>
inline void group_moments(const scalar_t* x, const Geometry& g, int64_t m, int64_t off, int64_t len, acc_t* mu,
                          acc_t* var) {
  const acc_t inv_g = acc_t(1) / static_cast<acc_t>(g.G);
  for (int64_t i = 0; i < len; ++i) mu[i] = 0;
  for (int64_t s = 0; s < g.G; ++s) {
    const scalar_t* p = x + (s * g.n + m) * g.sN + off;
    for (int64_t i = 0; i < len; ++i) mu[i] += static_cast<acc_t>(p[i]);
  }
  for (int64_t i = 0; i < len; ++i) mu[i] *= inv_g;
  for (int64_t i = 0; i < len; ++i) var[i] = 0;
  for (int64_t s = 0; s < g.G; ++s) {
    const scalar_t* p = x + (s * g.n + m) * g.sN + off;
    for (int64_t i = 0; i < len; ++i) {
      const acc_t d = static_cast<acc_t>(p[i]) - mu[i];
      var[i] += d * d;
    }
  }
  for (int64_t i = 0; i < len; ++i) var[i] *= inv_g;
}

template <typename scalar_t, typename acc_t>
void compute_stats(const scalar_t* x, const Geometry& g, double eps, acc_t* stat) {
  const int64_t chunks = chunks_per_slab(g);
  std::vector<acc_t> partial(static_cast<size_t>(g.n * g.F * chunks), acc_t(0));
  const acc_t e = static_cast<acc_t>(eps);
  // grain: small inputs stay on one thread (a parallel region costs more than they do)
  const int64_t grain = std::max<int64_t>(1, 32768 / std::min(kTaskElements, std::max<int64_t>(slab_size(g), 1)));
  at::parallel_for(0, g.n * g.F * chunks, grain, [&](int64_t begin, int64_t end) {
    acc_t mu[kBlock], var[kBlock];
    for (int64_t t = begin; t < end; ++t) {
      const Task k = task_of(g, t, chunks);
      acc_t sum = 0;
      for_each_run(g, k, 0, [&](int64_t off, int64_t, int64_t len) {
        group_moments(x, g, k.m, off, len, mu, var);
        for (int64_t i = 0; i < len; ++i) sum += std::sqrt(var[i] + e);
      });
      partial[t] = sum;
    }
  });
  const acc_t inv_k = acc_t(1) / static_cast<acc_t>(g.c * g.HW);
  for (int64_t mf = 0; mf < g.n * g.F; ++mf) {
    acc_t s = 0;
    for (int64_t ch = 0; ch < chunks; ++ch) s += partial[mf * chunks + ch];  // fixed order: deterministic
    stat[mf] = s * inv_k;
  }
}

at::Tensor minibatch_stddev_cpu(const at::Tensor& x_in, int64_t group_size, int64_t num_channels, double eps) {
  const Geometry g = check_and_measure(x_in, group_size, num_channels, eps, "minibatch_stddev");
  const auto fmt = layout_of(x_in);
  const at::Tensor x = x_in.contiguous(fmt);
  at::Tensor out = at::empty({g.N, g.C + g.F, x.size(2), x.size(3)}, x.options().memory_format(fmt));
  if (out.numel() == 0) return out;
  const auto acc = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor stat = at::empty({g.n, g.F}, x.options().dtype(acc));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "genfast::minibatch_stddev", [&] {
    using acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
    compute_stats<scalar_t, acc_t>(x.const_data_ptr<scalar_t>(), g, eps, stat.mutable_data_ptr<acc_t>());
  });
  // out = cat(x, stat broadcast over the G samples of each group and over H x W)
  out.narrow(1, 0, g.C).copy_(x);
  out.narrow(1, g.C, g.F)
      .view({g.G, g.n, g.F, x.size(2), x.size(3)})
      .copy_(stat.view({1, g.n, g.F, 1, 1}).expand({g.G, g.n, g.F, x.size(2), x.size(3)}));
  return out;
}

template <typename scalar_t, typename acc_t>
void compute_grad(const scalar_t* x, const scalar_t* dy, scalar_t* dx, const Geometry& g, int64_t dy_sN,
                  int64_t dy_s_outer, const acc_t* gstat, double eps) {
  const int64_t chunks = chunks_per_slab(g);
  const acc_t e = static_cast<acc_t>(eps);
  const acc_t inv_kg = acc_t(1) / static_cast<acc_t>(g.c * g.HW * g.G);
  const int64_t grain = std::max<int64_t>(1, 32768 / std::min(kTaskElements, std::max<int64_t>(slab_size(g), 1)));
  at::parallel_for(0, g.n * g.F * chunks, grain, [&](int64_t begin, int64_t end) {
    acc_t mu[kBlock], coef[kBlock];
    for (int64_t t = begin; t < end; ++t) {
      const Task k = task_of(g, t, chunks);
      const acc_t gs = gstat[k.m * g.F + k.f] * inv_kg;
      for_each_run(g, k, dy_s_outer, [&](int64_t off, int64_t dy_off, int64_t len) {
        group_moments(x, g, k.m, off, len, mu, coef);
        for (int64_t i = 0; i < len; ++i) coef[i] = gs / std::sqrt(coef[i] + e);
        for (int64_t s = 0; s < g.G; ++s) {
          const int64_t sample = s * g.n + k.m;
          const scalar_t* xp = x + sample * g.sN + off;
          const scalar_t* dyp = dy + sample * dy_sN + dy_off;
          scalar_t* dxp = dx + sample * g.sN + off;
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
  const GradLayout dyl = check_grad_out(grad_out, x_in, g);
  const auto fmt = layout_of(x_in);
  const at::Tensor x = x_in.contiguous(fmt);
  const at::Tensor dy = grad_out.to(x.scalar_type()).contiguous(fmt);
  at::Tensor dx = at::empty(x.sizes(), x.options().memory_format(fmt));
  if (dx.numel() == 0) return dx;
  const auto acc = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  // gstat[m, f] = sum over the group's samples and H x W of dy[:, C + f]
  const at::Tensor gstat =
      dy.narrow(1, g.C, g.F).to(acc).sum({2, 3}).view({g.G, g.n, g.F}).sum(0).contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "genfast::minibatch_stddev_backward",
                                  [&] {
                                    using acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
                                    compute_grad<scalar_t, acc_t>(x.const_data_ptr<scalar_t>(),
                                                                  dy.const_data_ptr<scalar_t>(),
                                                                  dx.mutable_data_ptr<scalar_t>(), g, dyl.sN,
                                                                  dyl.s_outer, gstat.const_data_ptr<acc_t>(), eps);
                                  });
  return dx;
}

}  // namespace

TORCH_LIBRARY_IMPL(genfast, CPU, m) {
  m.impl("minibatch_stddev", &minibatch_stddev_cpu);
  m.impl("minibatch_stddev_backward", &minibatch_stddev_backward_cpu);
}

}  // namespace genfast::minibatch_stddev
