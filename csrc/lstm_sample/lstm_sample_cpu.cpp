// Character-LSTM sampling on the CPU: the whole generation loop in one call.
//
// Per step, for B rows: layer 0's input projection is a row of a table computed once per call
// (embedding @ W_ih0^T + b_ih0: the vocabulary is small), so layer 0 costs one GEMM with W_hh0; every
// later layer is one GEMM of [x | h] with [W_ih | W_hh]^T; then the gate nonlinearities and the cell
// update in one vectorised pass that also writes h where the next layer reads it; then the projection
// GEMM and the draw (genfast/reference/lstm_sample.py's rule, csrc/lstm_sample/lstm_sample.h). No
// Python, no autograd, no allocation inside the loop.
//
// Two implementations of that step: run_fused_loop (one OpenMP team for the whole generation, each
// thread owning a slice of hidden units; used whenever the hidden size is a whole number of SIMD
// vectors) and run (ATen GEMMs per step; every other size).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <algorithm>
#include <omp.h>

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

// ---------------------------------------------------------------------------------------------
// The fused loop: one parallel region for the whole generation.
//
// At B = 1 a step is three matrix-vector products (3 MB of float32 weights at hidden 256: ~37 us of
// L3 traffic on this machine) plus a little vector work; four GEMM calls, two parallel_for and the
// draw per step cost more than that in dispatch, thread wake-ups and GEMV inefficiency. At larger B
// the per-layer GEMMs are compute-bound, and a thread that keeps its weight slice and streams every
// row through it does as well as ATen's GEMM without the per-call overhead (measured faster at
// B = 1 ... 256, hidden 256 and 512). Here one OpenMP team runs every step: each thread owns a fixed slice of hidden units in every layer, with that slice's
// rows of the weights packed contiguously (block of W units x 4 gates x K inputs), so a thread reads
// only its own weights (which stay in its caches across steps), computes its units' gates in
// registers, and applies the cell update right there. Threads meet at a barrier after each layer
// (the next layer reads every unit's h), after the projection, and after the draw.
// Same arithmetic as the GEMM path (float accumulation, different summation order).

template <typename scalar_t>
using VecT = at::vec::Vectorized<scalar_t>;

// acc[r][j][g] = sum_k x_r[k] * packed_j[k][g][:] for RB rows and NB unit blocks; the input of row r
// is xa[r] (Ka values) followed by xb[r] (Kb values), matching the packed K order.
template <typename scalar_t, int RB, int NB>
inline void block_gates(const scalar_t* const* packed, int64_t Ka, int64_t Kb, const scalar_t* const* xa,
                        const scalar_t* const* xb, VecT<scalar_t> (&acc)[RB][NB][4]) {
  using Vec = VecT<scalar_t>;
  constexpr int64_t W = Vec::size();
  const scalar_t* p[NB];
  for (int j = 0; j < NB; ++j) p[j] = packed[j];
  for (int r = 0; r < RB; ++r)
    for (int j = 0; j < NB; ++j)
      for (int g = 0; g < 4; ++g) acc[r][j][g] = Vec(scalar_t(0));
  auto run_k = [&](const scalar_t* const* x, int64_t K) {
    for (int64_t k = 0; k < K; ++k) {
      Vec w[NB][4];
      for (int j = 0; j < NB; ++j) {
        for (int g = 0; g < 4; ++g) w[j][g] = Vec::loadu(p[j] + g * W);
        p[j] += 4 * W;
      }
      for (int r = 0; r < RB; ++r) {
        const Vec xr(x[r][k]);
        for (int j = 0; j < NB; ++j)
          for (int g = 0; g < 4; ++g) acc[r][j][g] = at::vec::fmadd(xr, w[j][g], acc[r][j][g]);
      }
    }
  };
  run_k(xa, Ka);
  if (Kb > 0) run_k(xb, Kb);
}

template <typename scalar_t>
struct FusedLoop {
  using Vec = VecT<scalar_t>;
  static constexpr int64_t W = Vec::size();
  int64_t B, H, L, V, blocks;
  std::vector<at::Tensor> packed;  // per layer: (blocks, K, 4, W)
  std::vector<at::Tensor> bias;    // per layer: b_ih + b_hh (4H); layer 0 only b_hh (b_ih is in the table)
  at::Tensor table;                // (V, 4H) embedding @ W_ih0^T + b_ih0
  at::Tensor proj, proj_bias;      // (V, H), (V)
  at::Tensor hbuf;                 // (L, 2, B, H) double-buffered h
  at::Tensor logits;               // (B, V)

  static at::Tensor pack(const at::Tensor& w, int64_t H) {  // w (4H, K) -> (H/W, K, 4, W)
    const int64_t K = w.size(1);
    return w.view({4, H / W, W, K}).permute({1, 3, 0, 2}).contiguous();
  }

  // The gates of `nb` blocks starting at block `blk` for rows [r0, r0 + rb), then the cell update.
  template <int RB, int NB>
  void blocks_update(int64_t l, int64_t blk, int64_t r0, const scalar_t* const* xa, const scalar_t* const* xb,
                     int64_t Kb, const int64_t* feed, scalar_t* c, scalar_t* h_new) const {
    const int64_t K = H + Kb;
    const scalar_t* base = packed[l].data_ptr<scalar_t>();
    const scalar_t* pk[NB];
    for (int j = 0; j < NB; ++j) pk[j] = base + (blk + j) * K * 4 * W;
    Vec acc[RB][NB][4];
    block_gates<scalar_t, RB, NB>(pk, H, Kb, xa, xb, acc);
    const scalar_t* bs = bias[l].data_ptr<scalar_t>();
    const scalar_t* tb = table.data_ptr<scalar_t>();
    const Vec one(scalar_t(1));
    for (int r = 0; r < RB; ++r) {
      const int64_t b = r0 + r;
      const scalar_t* t = l == 0 ? tb + feed[b] * 4 * H : nullptr;
      for (int j = 0; j < NB; ++j) {
        const int64_t u = (blk + j) * W;
        Vec g4[4];
        for (int g = 0; g < 4; ++g) {
          g4[g] = acc[r][j][g] + Vec::loadu(bs + g * H + u);
          if (t != nullptr) g4[g] = g4[g] + Vec::loadu(t + g * H + u);
        }
        const Vec i = one / (one + g4[0].neg().exp());
        const Vec f = one / (one + g4[1].neg().exp());
        const Vec o = one / (one + g4[3].neg().exp());
        scalar_t* cb = c + (l * B + b) * H + u;
        const Vec cn = f * Vec::loadu(cb) + i * g4[2].tanh();
        cn.store(cb);
        (o * cn.tanh()).store(h_new + b * H + u);
      }
    }
  }

  // This thread's share of layer l: unit blocks [blk0, blk1) for every row.
  void layer(int64_t l, int64_t blk0, int64_t blk1, const scalar_t* in_new, const scalar_t* h_prev,
             scalar_t* h_new, const int64_t* feed, scalar_t* c) const {
    const int64_t Kb = l == 0 ? 0 : H;
    // layer 0: x = h_0(prev); later layers: x = [h_{l-1}(this step) | h_l(prev)]
    const scalar_t* a0 = l == 0 ? h_prev : in_new;
    const scalar_t* b0 = l == 0 ? nullptr : h_prev;
    auto rows = [&](int64_t r0, int64_t rb, const scalar_t** xa, const scalar_t** xb) {
      for (int64_t r = 0; r < rb; ++r) {
        xa[r] = a0 + (r0 + r) * H;
        xb[r] = b0 != nullptr ? b0 + (r0 + r) * H : nullptr;
      }
    };
    const scalar_t* xa[3];
    const scalar_t* xb[3];
    if (B == 1) {  // one row: three blocks at a time (12 accumulators)
      rows(0, 1, xa, xb);
      int64_t blk = blk0;
      for (; blk + 3 <= blk1; blk += 3) blocks_update<1, 3>(l, blk, 0, xa, xb, Kb, feed, c, h_new);
      for (; blk < blk1; ++blk) blocks_update<1, 1>(l, blk, 0, xa, xb, Kb, feed, c, h_new);
      return;
    }
    // several rows: one block at a time for every group of (up to) three rows, so the block's weights
    // come from memory once and from L1/L2 for the other groups
    for (int64_t blk = blk0; blk < blk1; ++blk) {
      for (int64_t r0 = 0; r0 < B; r0 += 3) {
        const int64_t rb = std::min<int64_t>(3, B - r0);
        rows(r0, rb, xa, xb);
        if (rb == 3) blocks_update<3, 1>(l, blk, r0, xa, xb, Kb, feed, c, h_new);
        else if (rb == 2) blocks_update<2, 1>(l, blk, r0, xa, xb, Kb, feed, c, h_new);
        else blocks_update<1, 1>(l, blk, r0, xa, xb, Kb, feed, c, h_new);
      }
    }
  }
};

// The fused loop needs whole vectors of hidden units; other sizes (and calls from inside a parallel
// region, where a nested team would not get threads) take the GEMM path below.
template <typename scalar_t>
bool fused_loop_applies(const Sizes& s) {
  constexpr int64_t W = VecT<scalar_t>::size();
  return s.hidden % W == 0 && !at::in_parallel_region();
}

template <typename scalar_t>
void run_fused_loop(const at::Tensor& embedding, at::TensorList w_ih, at::TensorList w_hh, at::TensorList b_ih,
                     at::TensorList b_hh, const at::Tensor& proj_weight, const at::Tensor& proj_bias,
                     const at::Tensor& prime, const at::Tensor& temperature, const at::Tensor& uniforms,
                     int64_t top_k, double top_p, const Sizes& s, at::Tensor& tokens, at::Tensor& h_out,
                     at::Tensor& c_out) {
  using Vec = VecT<scalar_t>;
  constexpr int64_t W = Vec::size();
  FusedLoop<scalar_t> sb;
  sb.B = s.batch, sb.H = s.hidden, sb.L = s.layers, sb.V = s.vocab;
  sb.blocks = s.hidden / W;
  const int64_t B = sb.B, H = sb.H, L = sb.L, V = sb.V;
  sb.table = at::addmm(b_ih[0], embedding, w_ih[0].t()).contiguous();
  for (int64_t l = 0; l < L; ++l) {
    sb.packed.push_back(FusedLoop<scalar_t>::pack(l == 0 ? w_hh[0] : at::cat({w_ih[l], w_hh[l]}, 1), H));
    sb.bias.push_back(l == 0 ? b_hh[0].contiguous() : (b_ih[l] + b_hh[l]).contiguous());
  }
  sb.proj = proj_weight;
  sb.proj_bias = proj_bias;
  sb.hbuf = at::empty({L, 2, B, H}, embedding.options());
  sb.hbuf.select(1, 0).copy_(h_out);
  sb.logits = at::empty({B, V}, embedding.options());
  std::vector<int64_t> feed(B);
  scalar_t* hb = sb.hbuf.template data_ptr<scalar_t>();
  scalar_t* c = c_out.data_ptr<scalar_t>();
  scalar_t* lg = sb.logits.template data_ptr<scalar_t>();
  const scalar_t* pw = sb.proj.template data_ptr<scalar_t>();
  const scalar_t* pb = sb.proj_bias.template data_ptr<scalar_t>();
  const int64_t* prime_p = prime.data_ptr<int64_t>();
  int64_t* out_p = tokens.data_ptr<int64_t>();
  const scalar_t* temp_p = temperature.data_ptr<scalar_t>();
  const double* u_p = uniforms.data_ptr<double>();
  const int64_t total = s.prime_len + std::max<int64_t>(s.steps - 1, 0);  // LSTM steps to run
  auto h_at = [&](int64_t l, int64_t parity) { return hb + (l * 2 + parity) * B * H; };
  const int nthreads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), sb.blocks)));

#pragma omp parallel num_threads(nthreads)
  {
    const int64_t T = omp_get_num_threads(), tid = omp_get_thread_num();
    const int64_t blk0 = sb.blocks * tid / T, blk1 = sb.blocks * (tid + 1) / T;
    const int64_t bv0 = B * V * tid / T, bv1 = B * V * (tid + 1) / T;
    std::vector<scalar_t> prob(V);
    std::vector<int32_t> order(V);
    for (int64_t t = 0; t < total; ++t) {
      // the token fed at step t: the prime, then the previous draw
      if (t < s.prime_len) {
#pragma omp single
        for (int64_t b = 0; b < B; ++b) feed[b] = prime_p[b * s.prime_len + t];
      }  // (implicit barrier after single)
      const int64_t cur = (t + 1) & 1, prev = t & 1;
      for (int64_t l = 0; l < L; ++l) {
        sb.layer(l, blk0, blk1, l > 0 ? h_at(l - 1, cur) : nullptr, h_at(l, prev), h_at(l, cur), feed.data(), c);
#pragma omp barrier
      }
      // projection: this thread's share of the B x V logits
      const scalar_t* top = h_at(L - 1, cur);
      for (int64_t i = bv0; i < bv1; ++i) {
        const int64_t b = i / V, v = i % V;
        lg[i] = pb[v] + at::vec::map2_reduce_all<scalar_t>([](Vec x, Vec y) { return x * y; },
                                                           [](Vec x, Vec y) { return x + y; }, top + b * H,
                                                           pw + v * H, H);
      }
#pragma omp barrier
      const int64_t d = t - s.prime_len + 1;  // the draw after step t (steps after the prime)
      if (d >= 0 && d < s.steps) {
        for (int64_t b = tid; b < B; b += T) {
          const int64_t token = draw_row<scalar_t, scalar_t>(lg + b * V, V, temp_p[b], u_p[d * B + b], top_k, top_p,
                                                             prob.data(), order.data());
          out_p[b * s.steps + d] = token;
          feed[b] = token;
        }
#pragma omp barrier
      }
    }
  }
  // the state after the last LSTM step (prime_len >= 1, so there is one)
  const int64_t last = total & 1;
  for (int64_t l = 0; l < L; ++l) h_out[l].view({B, H}).copy_(sb.hbuf[l][last]);
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
    if (fused_loop_applies<scalar_t>(s)) {
      run_fused_loop<scalar_t>(embedding.contiguous(), wi, wh, bi, bh, proj_weight.contiguous(),
                               proj_bias.contiguous(), prime.contiguous(), temperature.contiguous(),
                               uniforms.contiguous(), top_k, top_p, s, tokens, h_out, c_out);
      return;
    }
    run<scalar_t>(embedding.contiguous(), wi, wh, bi, bh, proj_weight.contiguous(), proj_bias.contiguous(),
                  prime.contiguous(), temperature.contiguous(), uniforms.contiguous(), top_k, top_p, s, tokens, h_out,
                  c_out);
  });
  return {tokens, h_out, c_out};
}

}  // namespace

TORCH_LIBRARY_IMPL(genfast, CPU, m) { m.impl("lstm_sample", &lstm_sample_cpu); }

}  // namespace genfast::lstm_sample
