// Character-LSTM sampling on CUDA: the same loop as lstm_sample_cpu.cpp, launched on the current
// stream with no host synchronisation per step.
//
// Per step: the GEMMs go through ATen (at::addmm_out, cuBLAS underneath; this file includes only c10's
// CUDA headers), the gate nonlinearities and cell update are one kernel over B x H, and the draw is one
// kernel with a thread per row running the shared draw_row (lstm_sample.h) with its scratch in global
// memory. The sampled tokens stay on the device and feed the next step's table lookup.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "lstm_sample/lstm_sample.h"

namespace genfast::lstm_sample {
namespace {

constexpr int kThreads = 256;

template <typename T>
__device__ inline T sigmoid_d(T x) {
  return T(1) / (T(1) + exp_(-x));
}
__device__ inline float tanh_d(float x) { return tanhf(x); }
__device__ inline double tanh_d(double x) { return tanh(x); }

template <typename scalar_t>
__global__ void cell_kernel(const scalar_t* __restrict__ gates, const scalar_t* __restrict__ table,
                            const int64_t* __restrict__ tokens, scalar_t* __restrict__ c, scalar_t* __restrict__ h_out,
                            int64_t h_stride, scalar_t* __restrict__ h_out2, int64_t h2_stride, int64_t batch,
                            int64_t hidden) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= batch * hidden) return;
  const int64_t b = idx / hidden, j = idx % hidden;
  const scalar_t* g = gates + b * 4 * hidden;
  scalar_t gi = g[j], gf = g[hidden + j], gg = g[2 * hidden + j], go = g[3 * hidden + j];
  if (table != nullptr) {
    const scalar_t* t = table + tokens[b] * 4 * hidden;
    gi += t[j];
    gf += t[hidden + j];
    gg += t[2 * hidden + j];
    go += t[3 * hidden + j];
  }
  const scalar_t cn = sigmoid_d(gf) * c[b * hidden + j] + sigmoid_d(gi) * tanh_d(gg);
  c[b * hidden + j] = cn;
  const scalar_t hn = sigmoid_d(go) * tanh_d(cn);
  h_out[b * h_stride + j] = hn;
  if (h_out2 != nullptr) h_out2[b * h2_stride + j] = hn;
}

template <typename scalar_t>
__global__ void draw_kernel(const scalar_t* __restrict__ logits, int64_t batch, int64_t vocab,
                            const scalar_t* __restrict__ temperature, const double* __restrict__ uniforms, int64_t top_k,
                            double top_p, scalar_t* __restrict__ scratch_p, int32_t* __restrict__ scratch_order,
                            int64_t* __restrict__ out, int64_t out_stride, int64_t* __restrict__ feed) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= batch) return;
  const int64_t token = draw_row<scalar_t, scalar_t>(logits + b * vocab, vocab, temperature[b], uniforms[b], top_k,
                                                     top_p, scratch_p + b * vocab, scratch_order + b * vocab);
  out[b * out_stride] = token;
  feed[b] = token;
}

unsigned blocks_for(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

template <typename scalar_t>
void run(const at::Tensor& embedding, at::TensorList w_ih, at::TensorList w_hh, at::TensorList b_ih,
         at::TensorList b_hh, const at::Tensor& proj_weight, const at::Tensor& proj_bias, const at::Tensor& prime,
         const at::Tensor& temperature, const at::Tensor& uniforms, int64_t top_k, double top_p, const Sizes& s,
         at::Tensor& tokens, at::Tensor& h_out, at::Tensor& c_out) {
  const int64_t B = s.batch, H = s.hidden, L = s.layers, V = s.vocab;
  const auto opts = embedding.options();
  auto stream = c10::cuda::getCurrentCUDAStream();

  const at::Tensor table = at::addmm(b_ih[0], embedding, w_ih[0].t()).contiguous();
  const at::Tensor w_hh0_t = w_hh[0].t().contiguous();
  std::vector<at::Tensor> w_cat_t(L), bias(L), xh(L);
  for (int64_t l = 1; l < L; ++l) {
    w_cat_t[l] = at::cat({w_ih[l], w_hh[l]}, 1).t().contiguous();
    bias[l] = (b_ih[l] + b_hh[l]).contiguous();
    xh[l] = at::empty({B, 2 * H}, opts);
    xh[l].narrow(1, H, H).copy_(h_out[l]);
  }
  at::Tensor h0 = h_out[0].clone();
  const at::Tensor proj_t = proj_weight.t().contiguous();
  at::Tensor gates = at::empty({B, 4 * H}, opts);
  at::Tensor logits = at::empty({B, V}, opts);
  at::Tensor feed = at::empty({B}, prime.options());
  at::Tensor scratch_p = at::empty({B, V}, opts);
  at::Tensor scratch_order = at::empty({B, V}, prime.options().dtype(at::kInt));

  auto step = [&]() {
    at::addmm_out(gates, b_hh[0], h0, w_hh0_t);
    scalar_t* next = L > 1 ? xh[1].data_ptr<scalar_t>() : nullptr;
    cell_kernel<scalar_t><<<blocks_for(B * H), kThreads, 0, stream>>>(
        gates.data_ptr<scalar_t>(), table.data_ptr<scalar_t>(), feed.data_ptr<int64_t>(), c_out.data_ptr<scalar_t>(),
        h0.data_ptr<scalar_t>(), H, next, 2 * H, B, H);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    for (int64_t l = 1; l < L; ++l) {
      at::addmm_out(gates, bias[l], xh[l], w_cat_t[l]);
      scalar_t* up = l + 1 < L ? xh[l + 1].data_ptr<scalar_t>() : nullptr;
      cell_kernel<scalar_t><<<blocks_for(B * H), kThreads, 0, stream>>>(
          gates.data_ptr<scalar_t>(), nullptr, nullptr, c_out.data_ptr<scalar_t>() + l * B * H,
          xh[l].data_ptr<scalar_t>() + H, 2 * H, up, 2 * H, B, H);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    const at::Tensor top = L > 1 ? xh[L - 1].narrow(1, H, H) : h0;
    at::addmm_out(logits, proj_bias, top, proj_t);
  };

  for (int64_t t = 0; t < s.prime_len; ++t) {
    feed.copy_(prime.select(1, t), /*non_blocking=*/true);
    step();
  }
  for (int64_t t = 0; t < s.steps; ++t) {
    draw_kernel<scalar_t><<<blocks_for(B), kThreads, 0, stream>>>(
        logits.data_ptr<scalar_t>(), B, V, temperature.data_ptr<scalar_t>(), uniforms.data_ptr<double>() + t * B,
        top_k, top_p, scratch_p.data_ptr<scalar_t>(), scratch_order.data_ptr<int32_t>(),
        tokens.data_ptr<int64_t>() + t, s.steps, feed.data_ptr<int64_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    if (t + 1 < s.steps) step();
  }
  h_out[0].copy_(h0);
  for (int64_t l = 1; l < L; ++l) h_out[l].copy_(xh[l].narrow(1, H, H));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> lstm_sample_cuda(
    const at::Tensor& embedding, at::TensorList w_ih, at::TensorList w_hh, at::TensorList b_ih, at::TensorList b_hh,
    const at::Tensor& proj_weight, const at::Tensor& proj_bias, const at::Tensor& prime, const at::Tensor& h0,
    const at::Tensor& c0, const at::Tensor& temperature, const at::Tensor& uniforms, int64_t top_k, double top_p) {
  const Sizes s = check_inputs(embedding, w_ih, w_hh, b_ih, b_hh, proj_weight, proj_bias, prime, h0, c0, temperature,
                               uniforms, top_k, top_p);
  const c10::cuda::CUDAGuard guard(embedding.device());
  // token ids are checked by the Python API (one synchronisation per call, not per step)
  Outputs out = new_outputs(s, prime, h0, c0);
  at::Tensor &tokens = out.tokens, &h_out = out.h, &c_out = out.c;
  if (s.batch == 0) return {tokens, h_out, c_out};
  const LayerWeights w = contiguous_layers(w_ih, w_hh, b_ih, b_hh);
  const std::vector<at::Tensor> &wi = w.w_ih, &wh = w.w_hh, &bi = w.b_ih, &bh = w.b_hh;
  AT_DISPATCH_FLOATING_TYPES(embedding.scalar_type(), "lstm_sample_cuda", [&] {
    run<scalar_t>(embedding.contiguous(), wi, wh, bi, bh, proj_weight.contiguous(), proj_bias.contiguous(),
                  prime.contiguous(), temperature.contiguous(), uniforms.contiguous(), top_k, top_p, s, tokens, h_out,
                  c_out);
  });
  return {tokens, h_out, c_out};
}

}  // namespace

TORCH_LIBRARY_IMPL(genfast, CUDA, m) { m.impl("lstm_sample", &lstm_sample_cuda); }

}  // namespace genfast::lstm_sample
