// CUDA kernels of the minibatch standard deviation layer: the same math as minibatch_stddev_cpu.cpp.
//
// Forward: one block per (group m, channel group f) reduces s_j over the slab in a fixed order
// (deterministic, no atomics); the output is assembled with two copies on the current stream.
// Backward: one thread per slab element recomputes mu_j and s_j over the G samples and writes the
// gradient of all G of them. float16/bfloat16 accumulate in float32.

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <limits>

#include "minibatch_stddev/minibatch_stddev.h"

namespace genfast::minibatch_stddev {
namespace {

constexpr int kThreads = 256;

template <typename scalar_t, typename acc_t>
__device__ inline void moments(const scalar_t* __restrict__ x, const Geometry& g, int64_t m, int64_t off, acc_t& mu,
                               acc_t& var) {
  mu = 0;
  for (int64_t s = 0; s < g.G; ++s) mu += static_cast<acc_t>(x[(s * g.n + m) * g.sN + off]);
  mu /= static_cast<acc_t>(g.G);
  var = 0;
  for (int64_t s = 0; s < g.G; ++s) {
    const acc_t d = static_cast<acc_t>(x[(s * g.n + m) * g.sN + off]) - mu;
    var += d * d;
  }
  var /= static_cast<acc_t>(g.G);
}

template <typename scalar_t, typename acc_t>
__global__ void stats_kernel(const scalar_t* __restrict__ x, Geometry g, acc_t eps, acc_t* __restrict__ stat) {
  const int64_t mf = blockIdx.x, m = mf / g.F, f = mf % g.F;
  const int64_t K = g.outer * g.inner;
  acc_t sum = 0;
  for (int64_t j = threadIdx.x; j < K; j += blockDim.x) {
    const int64_t off = f * g.f_offset + (j / g.inner) * g.s_outer + (j % g.inner);
    acc_t mu, var;
    moments(x, g, m, off, mu, var);
    sum += sqrt(var + eps);
  }
  __shared__ acc_t partial[kThreads];
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int width = kThreads / 2; width > 0; width /= 2) {
    if (threadIdx.x < width) partial[threadIdx.x] += partial[threadIdx.x + width];
    __syncthreads();
  }
  if (threadIdx.x == 0) stat[mf] = partial[0] / static_cast<acc_t>(K);
}

template <typename scalar_t, typename acc_t>
__global__ void grad_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ dy, scalar_t* __restrict__ dx,
                            Geometry g, int64_t dy_sN, int64_t dy_s_outer, const acc_t* __restrict__ gstat, acc_t eps) {
  const int64_t K = g.outer * g.inner;
  const int64_t total = g.n * g.F * K;
  const acc_t inv_kg = acc_t(1) / static_cast<acc_t>(K * g.G);
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t mf = e / K, j = e % K, m = mf / g.F, f = mf % g.F;
    const int64_t o = j / g.inner, i = j % g.inner;
    const int64_t off = f * g.f_offset + o * g.s_outer + i;
    const int64_t dy_off = f * g.f_offset + o * dy_s_outer + i;
    acc_t mu, var;
    moments(x, g, m, off, mu, var);
    const acc_t coef = gstat[mf] * inv_kg / sqrt(var + eps);
    for (int64_t s = 0; s < g.G; ++s) {
      const int64_t sample = s * g.n + m;
      const acc_t xv = static_cast<acc_t>(x[sample * g.sN + off]);
      dx[sample * g.sN + off] = static_cast<scalar_t>(static_cast<acc_t>(dy[sample * dy_sN + dy_off]) + coef * (xv - mu));
    }
  }
}

at::Tensor minibatch_stddev_cuda(const at::Tensor& x_in, int64_t group_size, int64_t num_channels, double eps) {
  const Geometry g = check_and_measure(x_in, group_size, num_channels, eps, "minibatch_stddev");
  const c10::cuda::CUDAGuard guard(x_in.device());
  const auto fmt = layout_of(x_in);
  const at::Tensor x = x_in.contiguous(fmt);
  at::Tensor out = at::empty({g.N, g.C + g.F, x.size(2), x.size(3)}, x.options().memory_format(fmt));
  if (out.numel() == 0) return out;
  auto stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor stat;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "genfast::minibatch_stddev", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    stat = at::empty({g.n, g.F}, x.options().dtype(c10::CppTypeToScalarType<acc_t>::value));
    if (g.c * g.HW == 0) {
      stat.fill_(std::numeric_limits<double>::quiet_NaN());  // a mean over no elements, as the CPU and reference
      return;
    }
    stats_kernel<scalar_t, acc_t><<<static_cast<unsigned>(g.n * g.F), kThreads, 0, stream>>>(
        x.const_data_ptr<scalar_t>(), g, static_cast<acc_t>(eps), stat.mutable_data_ptr<acc_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  out.narrow(1, 0, g.C).copy_(x);
  out.narrow(1, g.C, g.F)
      .view({g.G, g.n, g.F, x.size(2), x.size(3)})
      .copy_(stat.view({1, g.n, g.F, 1, 1}).expand({g.G, g.n, g.F, x.size(2), x.size(3)}));
  return out;
}

at::Tensor minibatch_stddev_backward_cuda(const at::Tensor& grad_out, const at::Tensor& x_in, int64_t group_size,
                                          int64_t num_channels, double eps) {
  const Geometry g = check_and_measure(x_in, group_size, num_channels, eps, "minibatch_stddev_backward");
  const GradLayout dyl = check_grad_out(grad_out, x_in, g);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const auto fmt = layout_of(x_in);
  const at::Tensor x = x_in.contiguous(fmt);
  const at::Tensor dy = grad_out.to(x.scalar_type()).contiguous(fmt);
  at::Tensor dx = at::empty(x.sizes(), x.options().memory_format(fmt));
  if (dx.numel() == 0) return dx;
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "genfast::minibatch_stddev_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const at::Tensor gstat = dy.narrow(1, g.C, g.F)
                                 .to(c10::CppTypeToScalarType<acc_t>::value)
                                 .sum({2, 3})
                                 .view({g.G, g.n, g.F})
                                 .sum(0)
                                 .contiguous();
    const int64_t total = g.n * g.F * g.c * g.HW;
    const int blocks = static_cast<int>(std::min<int64_t>((total + kThreads - 1) / kThreads, 65535));
    grad_kernel<scalar_t, acc_t><<<blocks, kThreads, 0, stream>>>(
        x.const_data_ptr<scalar_t>(), dy.const_data_ptr<scalar_t>(), dx.mutable_data_ptr<scalar_t>(), g, dyl.sN,
        dyl.s_outer, gstat.const_data_ptr<acc_t>(), static_cast<acc_t>(eps));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return dx;
}

}  // namespace

TORCH_LIBRARY_IMPL(genfast, CUDA, m) {
  m.impl("minibatch_stddev", &minibatch_stddev_cuda);
  m.impl("minibatch_stddev_backward", &minibatch_stddev_backward_cuda);
}

}  // namespace genfast::minibatch_stddev
