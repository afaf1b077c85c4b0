// Character-LSTM sampling on the CPU: the whole generation loop in one call.
//
// Per step, for B rows: layer 0's input projection is a row of a table computed once per call
// (embedding @ W_ih0^T + b_ih0: the vocabulary is small), so layer 0 costs one GEMM with W_hh0; every
// later layer is one GEMM of [x | h] with [W_ih | W_hh]^T; then the gate nonlinearities and the cell
// update in one vectorised pass that also writes h where the next layer reads it; then the projection
// GEMM and the draw (genfast/reference/lstm_sample.py's rule, csrc/lstm_sample/lstm_sample.h). No
// Python, no autograd, no allocation inside the loop.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <algorithm>

#include "lstm_sample/lstm_sample.h"

namespace genfast::lstm_sample {
namespace {

template <typename scalar_t>
inline scalar_t sigmoid_(scalar_t x) {
  return scalar_t(1) / (scalar_t(1) + std::exp(-x));
}

// gates (B, 4H) (+ table rows for layer 0) -> c (B, H) updated, h written to h_out (row stride given).
template <typename scalar_t>
void cell_update(const scalar_t* gates, const scalar_t* table, const int64_t* tokens, scalar_t* c, scalar_t* h_out,
                 int64_t h_stride, scalar_t* h_out2, int64_t h2_stride, int64_t batch, int64_t hidden) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const int64_t width = Vec::size();
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(hidden, 1));
  at::parallel_for(0, batch, grain, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const scalar_t* g = gates + b * 4 * hidden;
      const scalar_t* t = table != nullptr ? table + tokens[b] * 4 * hidden : nullptr;
      scalar_t* cb = c + b * hidden;
      scalar_t* hb = h_out + b * h_stride;
      scalar_t* hb2 = h_out2 != nullptr ? h_out2 + b * h2_stride : nullptr;
      int64_t j = 0;
      const Vec one(scalar_t(1));
      for (; j + width <= hidden; j += width) {
        Vec gi = Vec::loadu(g + j), gf = Vec::loadu(g + hidden + j);
        Vec gg = Vec::loadu(g + 2 * hidden + j), go = Vec::loadu(g + 3 * hidden + j);
        if (t != nullptr) {
          gi = gi + Vec::loadu(t + j);
          gf = gf + Vec::loadu(t + hidden + j);
          gg = gg + Vec::loadu(t + 2 * hidden + j);
          go = go + Vec::loadu(t + 3 * hidden + j);
        }
        const Vec i = one / (one + gi.neg().exp());
        const Vec f = one / (one + gf.neg().exp());
        const Vec o = one / (one + go.neg().exp());
        const Vec cn = f * Vec::loadu(cb + j) + i * gg.tanh();
        cn.store(cb + j);
        const Vec hn = o * cn.tanh();
        hn.store(hb + j);
        if (hb2 != nullptr) hn.store(hb2 + j);
      }
      for (; j < hidden; ++j) {
        scalar_t gi = g[j], gf = g[hidden + j], gg = g[2 * hidden + j], go = g[3 * hidden + j];
        if (t != nullptr) {
          gi += t[j];
          gf += t[hidden + j];
          gg += t[2 * hidden + j];
          go += t[3 * hidden + j];
        }
        const scalar_t cn = sigmoid_(gf) * cb[j] + sigmoid_(gi) * std::tanh(gg);
        cb[j] = cn;
        hb[j] = sigmoid_(go) * std::tanh(cn);
        if (hb2 != nullptr) hb2[j] = hb[j];
      }
    }
  });
}

template <typename scalar_t>
void run(const at::Tensor& embedding, at::TensorList w_ih, at::TensorList w_hh, at::TensorList b_ih,
         at::TensorList b_hh, const at::Tensor& proj_weight, const at::Tensor& proj_bias, const at::Tensor& prime,
         const at::Tensor& temperature, const at::Tensor& uniforms, int64_t top_k, double top_p, const Sizes& s,
         at::Tensor& tokens, at::Tensor& h_out, at::Tensor& c_out) {
  using acc_t = scalar_t;
  const int64_t B = s.batch, H = s.hidden, L = s.layers, V = s.vocab;
  const auto opts = embedding.options();

  // Layer 0's input projection for every token, and the transposed weights, once per call.
  const at::Tensor table = at::addmm(b_ih[0], embedding, w_ih[0].t()).contiguous();  // (V, 4H)
  const at::Tensor w_hh0_t = w_hh[0].t().contiguous();                               // (H, 4H)
  std::vector<at::Tensor> w_cat_t(L), bias(L), xh(L);
  for (int64_t l = 1; l < L; ++l) {
    w_cat_t[l] = at::cat({w_ih[l], w_hh[l]}, 1).t().contiguous();  // (2H, 4H)
    bias[l] = (b_ih[l] + b_hh[l]).contiguous();
    xh[l] = at::empty({B, 2 * H}, opts);  // [h_{l-1} (this step) | h_l (previous step)]
    xh[l].narrow(1, H, H).copy_(h_out[l]);
  }
  at::Tensor h0 = h_out[0].clone();  // layer 0's h, (B, H)
  const at::Tensor proj_t = proj_weight.t().contiguous();  // (H, V)
  at::Tensor gates = at::empty({B, 4 * H}, opts);
  at::Tensor logits = at::empty({B, V}, opts);
  at::Tensor feed = at::empty({B}, prime.options());
  int64_t* feed_p = feed.data_ptr<int64_t>();
  scalar_t* c_p = c_out.data_ptr<scalar_t>();
  const scalar_t* table_p = table.data_ptr<scalar_t>();

  auto step = [&]() {
    at::addmm_out(gates, b_hh[0], h0, w_hh0_t);
    scalar_t* next = L > 1 ? xh[1].data_ptr<scalar_t>() : nullptr;
    cell_update<scalar_t>(gates.data_ptr<scalar_t>(), table_p, feed_p, c_p, h0.data_ptr<scalar_t>(), H, next, 2 * H,
                          B, H);
    for (int64_t l = 1; l < L; ++l) {
      at::addmm_out(gates, bias[l], xh[l], w_cat_t[l]);
      scalar_t* own = xh[l].data_ptr<scalar_t>() + H;
      scalar_t* up = l + 1 < L ? xh[l + 1].data_ptr<scalar_t>() : nullptr;
      cell_update<scalar_t>(gates.data_ptr<scalar_t>(), nullptr, nullptr, c_p + l * B * H, own, 2 * H, up, 2 * H, B, H);
    }
    const at::Tensor top = L > 1 ? xh[L - 1].narrow(1, H, H) : h0;
    at::addmm_out(logits, proj_bias, top, proj_t);
  };

  const int64_t* prime_p = prime.data_ptr<int64_t>();
  const int64_t P = s.prime_len;
  int64_t* out_p = tokens.data_ptr<int64_t>();
  const scalar_t* temp_p = temperature.data_ptr<scalar_t>();
  const double* u_p = uniforms.data_ptr<double>();
  if (s.steps > 0) {
    for (int64_t t = 0; t < P; ++t) {
      for (int64_t b = 0; b < B; ++b) feed_p[b] = prime_p[b * P + t];
      step();
    }
    for (int64_t t = 0; t < s.steps; ++t) {
      const scalar_t* lg = logits.data_ptr<scalar_t>();
      at::parallel_for(0, B, 32, [&](int64_t begin, int64_t end) {
        std::vector<acc_t> p(V);
        std::vector<int32_t> order(V);
        for (int64_t b = begin; b < end; ++b) {
          const int64_t token = draw_row<acc_t, scalar_t>(lg + b * V, V, temp_p[b], u_p[t * B + b], top_k, top_p,
                                                          p.data(), order.data());
          out_p[b * s.steps + t] = token;
          feed_p[b] = token;
        }
      });
      if (t + 1 < s.steps) step();
    }
  } else {
    for (int64_t t = 0; t < P; ++t) {
      for (int64_t b = 0; b < B; ++b) feed_p[b] = prime_p[b * P + t];
      step();
    }
  }
  h_out[0].copy_(h0);
  for (int64_t l = 1; l < L; ++l) h_out[l].copy_(xh[l].narrow(1, H, H));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> lstm_sample_cpu(
    const at::Tensor& embedding, at::TensorList w_ih, at::TensorList w_hh, at::TensorList b_ih, at::TensorList b_hh,
    const at::Tensor& proj_weight, const at::Tensor& proj_bias, const at::Tensor& prime, const at::Tensor& h0,
    const at::Tensor& c0, const at::Tensor& temperature, const at::Tensor& uniforms, int64_t top_k, double top_p) {
  const Sizes s = check_inputs(embedding, w_ih, w_hh, b_ih, b_hh, proj_weight, proj_bias, prime, h0, c0, temperature,
                               uniforms, top_k, top_p);
  if (prime.numel() > 0) {
    const int64_t lo = prime.min().item<int64_t>(), hi = prime.max().item<int64_t>();
    TORCH_CHECK(lo >= 0 && hi < s.vocab, "lstm_sample: expected prime token ids in [0, ", s.vocab, "), got min ", lo,
                ", max ", hi);
  }
  at::Tensor tokens = at::empty({s.batch, s.steps}, prime.options());
  at::Tensor h_out = h0.contiguous().clone();
  at::Tensor c_out = c0.contiguous().clone();
  if (s.batch == 0) return {tokens, h_out, c_out};
  std::vector<at::Tensor> wi, wh, bi, bh;
  for (int64_t l = 0; l < s.layers; ++l) {
    wi.push_back(w_ih[l].contiguous());
    wh.push_back(w_hh[l].contiguous());
    bi.push_back(b_ih[l].contiguous());
    bh.push_back(b_hh[l].contiguous());
  }
  AT_DISPATCH_FLOATING_TYPES(embedding.scalar_type(), "lstm_sample_cpu", [&] {
    run<scalar_t>(embedding.contiguous(), wi, wh, bi, bh, proj_weight.contiguous(), proj_bias.contiguous(),
                  prime.contiguous(), temperature.contiguous(), uniforms.contiguous(), top_k, top_p, s, tokens, h_out,
                  c_out);
  });
  return {tokens, h_out, c_out};
}

}  // namespace

TORCH_LIBRARY_IMPL(genfast, CPU, m) { m.impl("lstm_sample", &lstm_sample_cpu); }

}  // namespace genfast::lstm_sample
