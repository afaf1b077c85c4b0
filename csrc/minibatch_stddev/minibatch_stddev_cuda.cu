// CUDA kernels of the minibatch standard deviation layer: the same math as minibatch_stddev_cpu.cpp.
//
// Forward: one kernel. A block per (group m, channel group f) copies its slab of x into the output
// while it sums the group mean, reduces s_j over the slab in a fixed order (deterministic, no
// atomics), then writes the statistic into channel C + f of the group's G samples.
// Backward: one kernel. A block per (chunk of the slab, m, f) first reduces gstat[m, f] from dy's
// appended channel (G * H * W values, recomputed by each chunk's block instead of a second launch),
// then one thread per slab element recomputes mu_j and s_j over the G samples and writes the
// gradient of all G of them. float16/bfloat16 accumulate in float32.

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>

#include "minibatch_stddev/minibatch_stddev.h"

namespace genfast::minibatch_stddev {
namespace {

constexpr int kThreads = 256;

// mu and the variance at offset `off` over the G samples of group m; with `out`, the first pass
// also copies the values to offset out_off of the output.
template <typename scalar_t, typename acc_t>
__device__ inline void moments(const scalar_t* __restrict__ x, const Geometry& g, int64_t m, int64_t off, acc_t& mu,
                               acc_t& var, scalar_t* __restrict__ out = nullptr, int64_t out_off = 0) {
  mu = 0;
  for (int64_t s = 0; s < g.G; ++s) {
    const scalar_t v = x[(s * g.n + m) * g.sN + off];
    if (out != nullptr) out[(s * g.n + m) * g.oN + out_off] = v;
    mu += static_cast<acc_t>(v);
  }
  mu /= static_cast<acc_t>(g.G);
  var = 0;
  for (int64_t s = 0; s < g.G; ++s) {
    const acc_t d = static_cast<acc_t>(x[(s * g.n + m) * g.sN + off]) - mu;
    var += d * d;
  }
  var /= static_cast<acc_t>(g.G);
}

// The sum of every thread's `value` over the block (kThreads threads), in a fixed order.
template <typename acc_t>
__device__ inline acc_t block_sum(acc_t value) {
  __shared__ acc_t partial[kThreads];
  partial[threadIdx.x] = value;
  __syncthreads();
  for (int width = kThreads / 2; width > 0; width /= 2) {
    if (threadIdx.x < width) partial[threadIdx.x] += partial[threadIdx.x + width];
    __syncthreads();
  }
  const acc_t total = partial[0];
  __syncthreads();  // partial may be reused by a later call
  return total;
}

template <typename scalar_t, typename acc_t>
__global__ void forward_kernel(const scalar_t* __restrict__ x, scalar_t* __restrict__ out, Geometry g, acc_t eps) {
  const int64_t mf = blockIdx.x, m = mf / g.F, f = mf % g.F;
  const int64_t K = g.outer * g.inner;
  acc_t sum = 0;
  for (int64_t j = threadIdx.x; j < K; j += blockDim.x) {
    const int64_t o = j / g.inner, i = j % g.inner;
    acc_t mu, var;
    moments(x, g, m, f * g.f_offset + o * g.s_outer + i, mu, var, out, f * g.f_offset + o * g.o_outer + i);
    sum += sqrt(var + eps);
  }
  // a mean over no elements (C = 0) is NaN, as on the CPU and in the reference
  const scalar_t stat = static_cast<scalar_t>(block_sum(sum) / static_cast<acc_t>(K));
  for (int64_t t = threadIdx.x; t < g.G * g.HW; t += blockDim.x) {
    const int64_t sample = (t / g.HW) * g.n + m, p = t % g.HW;
    out[sample * g.oN + (g.C + f) * g.o_chan + p * g.o_pix] = stat;
  }
}

// grid: (chunks of the slab, n * F)
template <typename scalar_t, typename acc_t>
__global__ void backward_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ dy,
                                scalar_t* __restrict__ dx, Geometry g, acc_t eps) {
  const int64_t mf = blockIdx.y, m = mf / g.F, f = mf % g.F;
  acc_t gsum = 0;
  for (int64_t t = threadIdx.x; t < g.G * g.HW; t += blockDim.x) {
    const int64_t sample = (t / g.HW) * g.n + m, p = t % g.HW;
    gsum += static_cast<acc_t>(dy[sample * g.oN + (g.C + f) * g.o_chan + p * g.o_pix]);
  }
  const int64_t K = g.outer * g.inner;
  const acc_t gs = block_sum(gsum) / static_cast<acc_t>(K * g.G);
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < K; j += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = j / g.inner, i = j % g.inner;
    const int64_t off = f * g.f_offset + o * g.s_outer + i;
    const int64_t dy_off = f * g.f_offset + o * g.o_outer + i;
    acc_t mu, var;
    moments(x, g, m, off, mu, var);
    const acc_t coef = gs / sqrt(var + eps);
    for (int64_t s = 0; s < g.G; ++s) {
      const int64_t sample = s * g.n + m;
      const acc_t xv = static_cast<acc_t>(x[sample * g.sN + off]);
      dx[sample * g.sN + off] = static_cast<scalar_t>(static_cast<acc_t>(dy[sample * g.oN + dy_off]) + coef * (xv - mu));
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
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "genfast::minibatch_stddev", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    forward_kernel<scalar_t, acc_t><<<static_cast<unsigned>(g.n * g.F), kThreads, 0, stream>>>(
        x.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), g, static_cast<acc_t>(eps));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

at::Tensor minibatch_stddev_backward_cuda(const at::Tensor& grad_out, const at::Tensor& x_in, int64_t group_size,
                                          int64_t num_channels, double eps) {
  const Geometry g = check_and_measure(x_in, group_size, num_channels, eps, "minibatch_stddev_backward");
  check_grad_out(grad_out, x_in, g);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const auto fmt = layout_of(x_in);
  const at::Tensor x = x_in.contiguous(fmt);
  const at::Tensor dy = grad_out.to(x.scalar_type()).contiguous(fmt);
  at::Tensor dx = at::empty(x.sizes(), x.options().memory_format(fmt));
  if (dx.numel() == 0) return dx;
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "genfast::minibatch_stddev_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const int64_t K = g.c * g.HW;
    // enough chunks of the slab for about 64K threads in all; gridDim.y is limited to 65535
    const int64_t chunks = std::clamp<int64_t>(65536 / std::max<int64_t>(g.n * g.F, 1) / kThreads, 1,
                                               std::max<int64_t>((K + kThreads - 1) / kThreads, 1));
    TORCH_CHECK(g.n * g.F <= 65535, "genfast.minibatch_stddev_backward: at most 65535 (group, channel group) ",
                "pairs on CUDA, got ", g.n * g.F);
    backward_kernel<scalar_t, acc_t><<<dim3(static_cast<unsigned>(chunks), static_cast<unsigned>(g.n * g.F)),
                                       kThreads, 0, stream>>>(
        x.const_data_ptr<scalar_t>(), dy.const_data_ptr<scalar_t>(), dx.mutable_data_ptr<scalar_t>(), g,
        static_cast<acc_t>(eps));
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
