// CUDA kernels of the fused instance norm: the same math as instance_norm_cpu.cpp.
//
// One block per (n, c) plane of a contiguous x; the block's threads stride over the plane:
//   forward   pass 1 sum (x - pivot) -> mean (float64, split hi + lo as on the CPU);
//             pass 2 sum (x - hi)^2 and sum (x - hi) -> biased variance;
//             pass 3 y = act((x - hi) * alpha + (shift - lo * alpha))
//   backward  pass 1 sum g, sum g * (x - hi); pass 2 dx
//   double backward  pass 1 five sums (g', g' d, u, u d, u g'); pass 2 d_grad and d_x (constants:
//             instance_norm.h, double_backward_plane); float16/bfloat16 are converted to float first
// Passes 2 and 3 re-read the plane, mostly from L2. float16/bfloat16 load as float and accumulate
// in float32; float64 accumulates in float64.
// channels_last and other layouts are made contiguous first and the result copied back into the
// input's layout (a dedicated NHWC kernel would avoid the two copies; the CPU has one).

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
// c10's stream and guard headers only: ATen/cuda/CUDAContext.h pulls in cuBLAS/cuSPARSE headers
// that a compiler-only CUDA toolkit does not ship.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "instance_norm/instance_norm.h"

namespace genfast::instance_norm {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

// Sums a and b over the block; every thread gets the totals.
template <typename acc_t>
__device__ void block_sum2(acc_t& a, acc_t& b) {
  __shared__ acc_t sa[kWarps], sb[kWarps];
  for (int off = 16; off > 0; off >>= 1) {
    a += __shfl_down_sync(0xffffffffu, a, off);
    b += __shfl_down_sync(0xffffffffu, b, off);
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();  // the shared slots may still be read by a previous call
  if (lane == 0) {
    sa[warp] = a;
    sb[warp] = b;
  }
  __syncthreads();
  a = 0;
  b = 0;
  for (int w = 0; w < kWarps; ++w) {  // fixed order: deterministic
    a += sa[w];
    b += sb[w];
  }
}

// Sums v[0..K) over the block; every thread gets the totals.
template <int K, typename acc_t>
__device__ void block_sum(acc_t (&v)[K]) {
  __shared__ acc_t part[K][kWarps];
  for (int off = 16; off > 0; off >>= 1) {
#pragma unroll
    for (int k = 0; k < K; ++k) v[k] += __shfl_down_sync(0xffffffffu, v[k], off);
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();
  if (lane == 0) {
#pragma unroll
    for (int k = 0; k < K; ++k) part[k][warp] = v[k];
  }
  __syncthreads();
#pragma unroll
  for (int k = 0; k < K; ++k) {
    v[k] = 0;
    for (int w = 0; w < kWarps; ++w) v[k] += part[k][w];  // fixed order: deterministic
  }
}

template <Act A, typename acc_t>
__device__ __forceinline__ acc_t activate(acc_t v, acc_t slope) {
  if constexpr (A == Act::kRelu) {
    return v > acc_t(0) ? v : (v != v ? v : acc_t(0));
  } else if constexpr (A == Act::kLeakyRelu) {
    return v > acc_t(0) ? v : v * slope;
  } else {
    return v;
  }
}

template <Act A, typename acc_t>
__device__ __forceinline__ acc_t act_grad(acc_t gy, acc_t pre, acc_t slope) {
  if constexpr (A == Act::kRelu) {
    return pre > acc_t(0) ? gy : acc_t(0);
  } else if constexpr (A == Act::kLeakyRelu) {
    return pre > acc_t(0) ? gy : gy * slope;
  } else {
    return gy;
  }
}

template <Act A, typename scalar_t, typename acc_t>
__global__ void forward_kernel(const scalar_t* __restrict__ x, scalar_t* __restrict__ y, int64_t M,
                               const acc_t* __restrict__ scale, const acc_t* __restrict__ shift, double eps,
                               acc_t slope, double* __restrict__ mean, acc_t* __restrict__ rstd) {
  const int64_t p = blockIdx.x;
  const scalar_t* xp = x + p * M;
  scalar_t* yp = y + p * M;
  const acc_t pivot = static_cast<acc_t>(xp[0]);
  acc_t s = 0, unused = 0;
  for (int64_t i = threadIdx.x; i < M; i += kThreads) s += static_cast<acc_t>(xp[i]) - pivot;
  block_sum2(s, unused);
  const double m = static_cast<double>(pivot) + static_cast<double>(s) / static_cast<double>(M);
  const acc_t hi = static_cast<acc_t>(m), lo = static_cast<acc_t>(m - static_cast<double>(hi));
  acc_t sq = 0, lin = 0;
  for (int64_t i = threadIdx.x; i < M; i += kThreads) {
    const acc_t d = static_cast<acc_t>(xp[i]) - hi;
    sq += d * d;
    lin += d;
  }
  block_sum2(sq, lin);
  const double var = fmax(0.0, (static_cast<double>(sq) - static_cast<double>(lin) * lin / M) / M);
  const acc_t r = static_cast<acc_t>(1.0 / sqrt(var + eps));
  if (threadIdx.x == 0) {
    mean[p] = m;
    rstd[p] = r;
  }
  const acc_t alpha = (scale ? scale[p] : acc_t(1)) * r;
  const acc_t b = (shift ? shift[p] : acc_t(0)) - lo * alpha;
  for (int64_t i = threadIdx.x; i < M; i += kThreads)
    yp[i] = static_cast<scalar_t>(activate<A>((static_cast<acc_t>(xp[i]) - hi) * alpha + b, slope));
}

template <Act A, typename scalar_t, typename acc_t>
__global__ void backward_kernel(const scalar_t* __restrict__ gy, const scalar_t* __restrict__ x,
                                scalar_t* __restrict__ gx, int64_t M, const double* __restrict__ mean,
                                const acc_t* __restrict__ rstd, const acc_t* __restrict__ scale,
                                const acc_t* __restrict__ shift, acc_t slope, acc_t* __restrict__ gscale,
                                acc_t* __restrict__ gshift) {
  const int64_t p = blockIdx.x;
  const scalar_t* xp = x + p * M;
  const scalar_t* gp = gy + p * M;
  scalar_t* dp = gx + p * M;
  const double m = mean[p];
  const acc_t hi = static_cast<acc_t>(m), lo = static_cast<acc_t>(m - static_cast<double>(hi));
  const acc_t r = rstd[p], alpha = (scale ? scale[p] : acc_t(1)) * r;
  const acc_t b = (shift ? shift[p] : acc_t(0)) - lo * alpha;
  acc_t sg = 0, sd = 0;
  for (int64_t i = threadIdx.x; i < M; i += kThreads) {
    const acc_t d = static_cast<acc_t>(xp[i]) - hi;
    const acc_t g = act_grad<A>(static_cast<acc_t>(gp[i]), d * alpha + b, slope);
    sg += g;
    sd += g * d;
  }
  block_sum2(sg, sd);
  const double sum_g = sg, sum_gxhat = (static_cast<double>(sd) - static_cast<double>(lo) * sum_g) * r;
  if (threadIdx.x == 0) {
    gshift[p] = static_cast<acc_t>(sum_g);
    gscale[p] = static_cast<acc_t>(sum_gxhat);
  }
  const double q2 = -static_cast<double>(alpha) * r * sum_gxhat / M;
  const acc_t k2 = static_cast<acc_t>(q2);
  const acc_t k1 = static_cast<acc_t>(-static_cast<double>(alpha) * sum_g / M - lo * q2);
  for (int64_t i = threadIdx.x; i < M; i += kThreads) {
    const acc_t d = static_cast<acc_t>(xp[i]) - hi;
    const acc_t g = act_grad<A>(static_cast<acc_t>(gp[i]), d * alpha + b, slope);
    dp[i] = static_cast<scalar_t>(alpha * g + d * k2 + k1);
  }
}

// The backward's VJP on one plane per block, in the compute type T (float or double); u, gg_scale
// and gg_shift may be null (zero).
template <Act A, typename T>
__global__ void double_backward_kernel(const T* __restrict__ gy, const T* __restrict__ x, const T* __restrict__ u,
                                       T* __restrict__ dgrad, T* __restrict__ dx, int64_t M,
                                       const double* __restrict__ mean, const T* __restrict__ rstd,
                                       const T* __restrict__ scale, const T* __restrict__ shift,
                                       const T* __restrict__ gg_scale, const T* __restrict__ gg_shift, T slope,
                                       T* __restrict__ d_scale) {
  const int64_t p = blockIdx.x, o = p * M;
  const double m = mean[p];
  const T hi = static_cast<T>(m), lo = static_cast<T>(m - static_cast<double>(hi));
  const T r = rstd[p], a = scale ? scale[p] : T(1), alpha = a * r;
  const T b = (shift ? shift[p] : T(0)) - lo * alpha;
  T s[5] = {0, 0, 0, 0, 0};
  for (int64_t i = threadIdx.x; i < M; i += kThreads) {
    const T d = x[o + i] - hi;
    const T g = act_grad<A>(gy[o + i], d * alpha + b, slope);
    s[0] += g;
    s[1] += g * d;
    if (u) {
      const T uu = u[o + i];
      s[2] += uu;
      s[3] += uu * d;
      s[4] += uu * g;
    }
  }
  block_sum<5>(s);
  const DoubleBackwardPlane c = double_backward_plane(s[0], s[1], s[2], s[3], s[4], static_cast<double>(M), lo, r,
                                                      a, gg_scale ? gg_scale[p] : 0.0, gg_shift ? gg_shift[p] : 0.0);
  if (threadIdx.x == 0) d_scale[p] = static_cast<T>(c.d_scale);
  const T cu = c.cu, f1 = c.f1, f0 = c.f0, hg = c.hg, hu = c.hu, e1 = c.e1, e0 = c.e0;
  for (int64_t i = threadIdx.x; i < M; i += kThreads) {
    const T d = x[o + i] - hi;
    const T pre = d * alpha + b;
    const T g = act_grad<A>(gy[o + i], pre, slope);
    const T uu = u ? u[o + i] : T(0);
    dgrad[o + i] = act_grad<A>(cu * uu + f1 * d + f0, pre, slope);
    dx[o + i] = hg * g + hu * uu + e1 * d + e0;
  }
}

template <typename F>
void dispatch_act(Act act, F&& f) {
  switch (act) {
    case Act::kNone: f(std::integral_constant<Act, Act::kNone>{}); break;
    case Act::kRelu: f(std::integral_constant<Act, Act::kRelu>{}); break;
    case Act::kLeakyRelu: f(std::integral_constant<Act, Act::kLeakyRelu>{}); break;
  }
}

template <typename acc_t>
const acc_t* ptr_or_null(const at::Tensor& t) {
  return t.defined() ? t.const_data_ptr<acc_t>() : nullptr;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> instance_norm_cuda(const at::Tensor& x,
                                                                  const c10::optional<at::Tensor>& scale,
                                                                  const c10::optional<at::Tensor>& shift, double eps,
                                                                  c10::string_view activation, double negative_slope) {
  const char* op = "instance_norm";
  const Act act = check_forward_inputs(x, scale, shift, eps, activation, op);
  const c10::cuda::CUDAGuard guard(x.device());
  const auto acc = acc_type(x.scalar_type());
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  auto out = at::empty_like(x);
  // N = 0 or C = 0: nothing to do; H*W = 0: no statistics (NaN)
  at::Tensor mean, rstd;  // (no structured binding: C++17 lambdas cannot capture one)
  std::tie(mean, rstd) = new_stats(x, out.numel() == 0);
  if (out.numel() == 0) return {out, mean, rstd};
  TORCH_CHECK(N * C <= INT32_MAX, "genfast.instance_norm: N * C = ", N * C, " planes is too many for the CUDA kernel");
  const auto xc = x.contiguous();
  at::Tensor y = out.is_contiguous() ? out : at::empty_like(xc);
  const auto sc = per_plane_acc(scale, acc), sh = per_plane_acc(shift, acc);
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "genfast::instance_norm", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    dispatch_act(act, [&](auto a) {
      constexpr Act A = decltype(a)::value;
      forward_kernel<A, scalar_t, acc_t><<<static_cast<unsigned>(N * C), kThreads, 0, stream>>>(
          xc.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(), HW, ptr_or_null<acc_t>(sc),
          ptr_or_null<acc_t>(sh), eps, static_cast<acc_t>(negative_slope), mean.mutable_data_ptr<double>(),
          rstd.mutable_data_ptr<acc_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  if (!y.is_same(out)) out.copy_(y);
  return {out, mean, rstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> instance_norm_backward_cuda(
    const at::Tensor& grad, const at::Tensor& x, const at::Tensor& mean, const at::Tensor& rstd,
    const c10::optional<at::Tensor>& scale, const c10::optional<at::Tensor>& shift, double eps,
    c10::string_view activation, double negative_slope) {
  const char* op = "instance_norm_backward";
  check_backward_inputs(grad, x, mean, rstd, scale, shift, op);
  const Act act = parse_activation(activation, op);
  const c10::cuda::CUDAGuard guard(x.device());
  const auto acc = acc_type(x.scalar_type());
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  auto gx = at::empty_like(x);
  at::Tensor gscale, gshift;
  std::tie(gscale, gshift) = new_affine_grads(x);
  if (gx.numel() == 0) return {gx, gscale, gshift};
  TORCH_CHECK(N * C <= INT32_MAX, "genfast.instance_norm_backward: N * C = ", N * C,
              " planes is too many for the CUDA kernel");
  const auto xc = x.contiguous();
  const auto gc = grad.to(x.scalar_type()).contiguous();
  at::Tensor dx = gx.is_contiguous() ? gx : at::empty_like(xc);
  const auto mc = mean.to(at::kDouble).contiguous();
  const auto rc = rstd.to(acc).contiguous();
  const auto sc = per_plane_acc(scale, acc), sh = per_plane_acc(shift, acc);
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "genfast::instance_norm_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    dispatch_act(act, [&](auto a) {
      constexpr Act A = decltype(a)::value;
      backward_kernel<A, scalar_t, acc_t><<<static_cast<unsigned>(N * C), kThreads, 0, stream>>>(
          gc.const_data_ptr<scalar_t>(), xc.const_data_ptr<scalar_t>(), dx.mutable_data_ptr<scalar_t>(), HW,
          mc.const_data_ptr<double>(), rc.const_data_ptr<acc_t>(), ptr_or_null<acc_t>(sc), ptr_or_null<acc_t>(sh),
          static_cast<acc_t>(negative_slope), gscale.mutable_data_ptr<acc_t>(), gshift.mutable_data_ptr<acc_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  if (!dx.is_same(gx)) gx.copy_(dx);
  return {gx, gscale, gshift};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> instance_norm_double_backward_cuda(
    const at::Tensor& grad, const at::Tensor& x, const at::Tensor& mean, const at::Tensor& rstd,
    const c10::optional<at::Tensor>& scale, const c10::optional<at::Tensor>& shift,
    const c10::optional<at::Tensor>& gg_x, const c10::optional<at::Tensor>& gg_scale,
    const c10::optional<at::Tensor>& gg_shift, c10::string_view activation, double negative_slope) {
  const c10::cuda::CUDAGuard guard(x.device());
  auto a = prepare_double_backward(grad, x, mean, rstd, scale, shift, gg_x, gg_scale, gg_shift, activation,
                                   "instance_norm_double_backward");
  if (a.empty()) return a.finish();
  TORCH_CHECK(a.N * a.C <= INT32_MAX, "genfast.instance_norm_double_backward: N * C = ", a.N * a.C,
              " planes is too many for the CUDA kernel");
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(a.acc, "genfast::instance_norm_double_backward", [&] {
    using T = scalar_t;
    dispatch_act(a.act, [&](auto act) {
      constexpr Act A = decltype(act)::value;
      double_backward_kernel<A, T><<<static_cast<unsigned>(a.N * a.C), kThreads, 0, stream>>>(
          a.grad.const_data_ptr<T>(), a.x.const_data_ptr<T>(), ptr_or_null<T>(a.u), a.dg.mutable_data_ptr<T>(),
          a.dx.mutable_data_ptr<T>(), a.HW, a.mean.const_data_ptr<double>(), a.rstd.const_data_ptr<T>(),
          ptr_or_null<T>(a.scale), ptr_or_null<T>(a.shift), ptr_or_null<T>(a.gg_scale), ptr_or_null<T>(a.gg_shift),
          static_cast<T>(negative_slope), a.d_scale.mutable_data_ptr<T>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return a.finish();
}

}  // namespace

TORCH_LIBRARY_IMPL(genfast, CUDA, m) {
  m.impl("instance_norm", &instance_norm_cuda);
  m.impl("instance_norm_backward", &instance_norm_backward_cuda);
  m.impl("instance_norm_double_backward", &instance_norm_double_backward_cuda);
}

}  // namespace genfast::instance_norm
