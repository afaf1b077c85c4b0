// Character-LSTM sampling on the CPU: the whole generation loop in one call.
//
// Per step, for B rows: layer 0's input projection is a row of a table computed once per call
// (embedding @ W_ih0^T + b_ih0: the vocabulary is small), so layer 0 costs one GEMM with W_hh0; every
// later layer is one GEMM of [x | h] with [W_ih | W_hh]^T; then the gate nonlinearities and the cell
// update in one vectorised pass that also writes h where the next layer reads it; then the projection
// GEMM and the draw (genfast/reference/lstm_sample.py's rule, csrc/lstm_sample/lstm_sample.h). No
// Python, no autograd, no allocation inside the loop.
//
// Three implementations of that loop: run_row_loop and run_col_loop (one OpenMP team for the whole
// generation, each thread owning a slice of hidden units; the first for a few rows, the second for
// more) and run (ATen GEMMs per step; for a few rows when the hidden size is not a whole number of
// SIMD vectors).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <thread>
#include <omp.h>

#include "common/cpu_output_cache.h"
#include "common/cpu_vec_math.h"
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
// The fused loops: one OpenMP team runs the whole generation (every prime and generated step).
//
// Each thread owns a fixed set of hidden units in every layer and computes those units' gates itself
// (a single float accumulator per gate, summed over k in a fixed order, starting from zero: w_hh's
// inputs h_l(prev), then w_ih's h_{l-1}(this step); then + bias, then + layer 0's table row), applies
// the cell update, and the team meets once per layer, since the next layer reads every unit's h. A
// logit is summed the same way in both loops: p_q = the sum over the q-th group of 2W hidden units in
// order from zero, then ((p_0 + p_1) + ...) + bias. So every row's arithmetic is the same whatever the
// thread count, the batch size, or which of the two loops below runs it: a row's tokens and state do
// not depend on the other rows or on the number of threads (both tested).
//
// Two data layouts, picked by batch size:
//  * row loop (B <= kRowLoopMaxBatch): a step is a matrix-vector product per row, bound by reading
//    the weights (3 MB of float32 at hidden 256: more than the two 1 MB L2 caches, so they stream
//    from L3 every step). Each thread's weights, its projection rows included, are packed into ONE
//    contiguous stream in the order a step reads them (pairs of 8-unit blocks interleaved: K x 2
//    blocks x 4 gates x 8), which the hardware prefetchers follow at ~87 GB/s per core here; three
//    separate per-block streams, 32 KB apart, managed ~55. The team's meetings are split barriers:
//    between arriving and waiting, a thread streams the weights whose inputs it already has (see
//    run_row_loop). Every thread draws every row itself from the groups' logit shares (the same
//    inputs and code give the same token).
//  * column loop (larger B): a step is a small GEMM per layer, bound by arithmetic. State is kept
//    transposed, (H, B) with B padded to whole vectors, so a micro-kernel holds three vectors of rows
//    x the 4 gates of one unit in 12 accumulators, loads 3 vectors of inputs and broadcasts 4 weights
//    per k (7 loads per 12 FMAs: FMA-bound, at ~95% of the FMA peak in isolation). Weight rows of
//    one unit are contiguous (K x 4). The projection uses the same kernel over groups of 4
//    vocabulary entries, group of hidden units by group; then the rows' draws are split between the
//    threads.

template <typename scalar_t>
using VecT = at::vec::Vectorized<scalar_t>;

// The micro-kernels are compiled on their own: inlined into the loops, next to the cell update,
// the compiler's register allocation can fall apart (reloading the inputs for every FMA: measured
// 25% slower at B = 256).
#if defined(__GNUC__)
#define GENFAST_NOINLINE __attribute__((noinline))
#else
#define GENFAST_NOINLINE
#endif

constexpr int64_t kRowLoopMaxBatch = 4;

// What both loops read: layer 0's table, the summed biases, the projection; the step's token.
template <typename scalar_t>
struct LoopModel {
  int64_t B, H, L, V, P, steps;
  at::Tensor table;                // (V, 4H): embedding @ W_ih0^T + b_ih0
  std::vector<at::Tensor> bias;    // per layer (4H): b_ih + b_hh; layer 0 only b_hh (b_ih is in the table)
  const int64_t* prime;            // (B, P)
  const scalar_t* temperature;     // (B)
  const double* uniforms;          // (steps, B)
  int64_t top_k;
  double top_p;
  int64_t* tokens;                 // (B, steps) output

  LoopModel(const at::Tensor& embedding, at::TensorList w_ih, at::TensorList b_ih, at::TensorList b_hh,
            const at::Tensor& prime_, const at::Tensor& temperature_, const at::Tensor& uniforms_, int64_t top_k_,
            double top_p_, const Sizes& s, at::Tensor& tokens_)
      : B(s.batch), H(s.hidden), L(s.layers), V(s.vocab), P(s.prime_len), steps(s.steps), top_k(top_k_),
        top_p(top_p_) {
    table = at::addmm(b_ih[0], embedding, w_ih[0].t()).contiguous();
    for (int64_t l = 0; l < L; ++l) bias.push_back(l == 0 ? b_hh[0].contiguous() : (b_ih[l] + b_hh[l]).contiguous());
    prime = prime_.data_ptr<int64_t>();
    temperature = temperature_.data_ptr<scalar_t>();
    uniforms = uniforms_.data_ptr<double>();
    tokens = tokens_.data_ptr<int64_t>();
  }
  int64_t total_steps() const { return P + std::max<int64_t>(steps - 1, 0); }  // LSTM steps to run
  // the draw made after LSTM step t (or -1 during the prime)
  int64_t draw_index(int64_t t) const {
    const int64_t d = t - P + 1;
    return d >= 0 && d < steps ? d : -1;
  }
};

// The LSTM cell on gate pre-activations (i, f, g, o); c updated in place, h returned.
template <typename scalar_t>
inline VecT<scalar_t> cell(const VecT<scalar_t> (&g4)[4], scalar_t* c) {
  using Vec = VecT<scalar_t>;
  const Vec one(scalar_t(1));
  const Vec i = one / (one + g4[0].neg().exp());
  const Vec f = one / (one + g4[1].neg().exp());
  const Vec o = one / (one + g4[3].neg().exp());
  const Vec cn = f * Vec::loadu(c) + i * g4[2].tanh();
  cn.store(c);
  return o * cn.tanh();
}

#if defined(CPU_CAPABILITY_AVX2)
// float: the same cell with inline exp / sigmoid / tanh (common/cpu_vec_math.h), which the compiler
// can interleave; with SLEEF's calls the cell update was ~23% of a step at B = 32 and 256.
template <>
inline VecT<float> cell<float>(const VecT<float> (&g4)[4], float* c) {
  using namespace cpu::vmath;
  const __m256 i = sigmoid_ps(g4[0]), f = sigmoid_ps(g4[1]), o = sigmoid_ps(g4[3]);
  const __m256 cn = _mm256_add_ps(_mm256_mul_ps(f, _mm256_loadu_ps(c)), _mm256_mul_ps(i, tanh_ps(g4[2])));
  _mm256_storeu_ps(c, cn);
  return _mm256_mul_ps(o, tanh_ps(cn));
}
#endif

// N independent cells at once (c[n] updated in place, h[n] stored): the row loop's pairs of blocks,
// the column loop's three vectors of rows or three units.
template <typename scalar_t, int N>
inline void cells(const VecT<scalar_t> (&g)[N][4], scalar_t* const (&c)[N], scalar_t* const (&h)[N]) {
  for (int n = 0; n < N; ++n) cell<scalar_t>(g[n], c[n]).store(h[n]);
}

#if defined(CPU_CAPABILITY_AVX2)
// float: each step of the cells' instructions for all N before the next, so the core overlaps their
// long dependency chains (two at once: ~12% faster than one after the other, measured on its own).
// The arithmetic of each cell is cell<float>'s.
template <int N>
inline void cells_ps(const VecT<float> (&g)[N][4], float* const (&c)[N], float* const (&h)[N]) {
  using namespace cpu::vmath;
  __m256 i[N], f[N], o[N], t[N], cn[N];
  for (int n = 0; n < N; ++n) i[n] = sigmoid_ps(g[n][0]);
  for (int n = 0; n < N; ++n) f[n] = sigmoid_ps(g[n][1]);
  for (int n = 0; n < N; ++n) o[n] = sigmoid_ps(g[n][3]);
  for (int n = 0; n < N; ++n) t[n] = tanh_ps(g[n][2]);
  for (int n = 0; n < N; ++n) {
    cn[n] = _mm256_add_ps(_mm256_mul_ps(f[n], _mm256_loadu_ps(c[n])), _mm256_mul_ps(i[n], t[n]));
    _mm256_storeu_ps(c[n], cn[n]);
  }
  for (int n = 0; n < N; ++n) _mm256_storeu_ps(h[n], _mm256_mul_ps(o[n], tanh_ps(cn[n])));
}
template <>
inline void cells<float, 2>(const VecT<float> (&g)[2][4], float* const (&c)[2], float* const (&h)[2]) {
  cells_ps<2>(g, c, h);
}
template <>
inline void cells<float, 3>(const VecT<float> (&g)[3][4], float* const (&c)[3], float* const (&h)[3]) {
  cells_ps<3>(g, c, h);
}
#endif

// ---- row loop ------------------------------------------------------------------------------------

// A barrier for the row loop's team, split in two: arrive() says "my part of this phase is written"
// and returns a ticket; wait(ticket) returns once every thread has arrived. Between the two a thread
// does work that does not need the others' results (the row loop streams the next weights), so the
// meeting costs next to nothing when the threads are balanced. It spins on one cache line (an OpenMP
// barrier took ~0.55 us here, this ~0.3 us when waited on at once); after a while of spinning it yields
// the core, so an oversubscribed machine does not starve the thread it waits for. Every arrive() must
// be followed by its wait() before the same thread arrives again.
class SplitBarrier {
 public:
  explicit SplitBarrier(int n) : n_(n) {}
  int arrive() {
    const int gen = gen_.load(std::memory_order_relaxed);
    if (count_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
      count_.store(0, std::memory_order_relaxed);
      gen_.store(gen + 1, std::memory_order_release);
    }
    return gen;
  }
  void wait(int ticket) const {
    for (int64_t spins = 0; gen_.load(std::memory_order_acquire) == ticket; ++spins) {
      if (spins < (int64_t(1) << 16)) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      } else {
        std::this_thread::yield();
      }
    }
  }

 private:
  alignas(64) std::atomic<int> count_{0};
  alignas(64) std::atomic<int> gen_{0};
  const int n_;
};

// acc[j][g] = init[j][g] + sum_k x[k] * p[k][j][g][:] over NB interleaved blocks, k = 0..K-1 in order
// (init: the sums over the inputs before these, or none for zero: two calls make the same chain of
// FMAs as one over both inputs).
template <typename scalar_t, int NB>
GENFAST_NOINLINE void row_gates(const scalar_t* p, const scalar_t* x, int64_t K, const VecT<scalar_t>* init,
                                VecT<scalar_t>* out) {
  using Vec = VecT<scalar_t>;
  Vec acc[NB][4];  // local, so that it lives in registers
  constexpr int64_t W = Vec::size();
  for (int j = 0; j < NB; ++j)
    for (int g = 0; g < 4; ++g) acc[j][g] = init != nullptr ? init[j * 4 + g] : Vec(scalar_t(0));
  for (int64_t k = 0; k < K; ++k, p += NB * 4 * W) {
    const Vec xk(x[k]);
    for (int j = 0; j < NB; ++j)
      for (int g = 0; g < 4; ++g) acc[j][g] = at::vec::fmadd(xk, Vec::loadu(p + (j * 4 + g) * W), acc[j][g]);
  }
  for (int j = 0; j < NB; ++j)
    for (int g = 0; g < 4; ++g) out[j * 4 + g] = acc[j][g];
}

// out[v] = sum_u h[u] * pt[u][v] over n units, from zero in order, for NV vectors of v from v0 (pt: (n, Vp)).
template <typename scalar_t, int NV>
inline void row_partial(const scalar_t* pt, int64_t Vp, int64_t v0, const scalar_t* h, int64_t n, scalar_t* out) {
  using Vec = VecT<scalar_t>;
  constexpr int64_t W = Vec::size();
  Vec acc[NV];
  for (int j = 0; j < NV; ++j) acc[j] = Vec(scalar_t(0));
  for (int64_t u = 0; u < n; ++u) {
    const Vec hu(h[u]);
    for (int j = 0; j < NV; ++j) acc[j] = at::vec::fmadd(hu, Vec::loadu(pt + u * Vp + v0 + j * W), acc[j]);
  }
  for (int j = 0; j < NV; ++j) acc[j].store(out + v0 + j * W);
}

template <typename scalar_t>
inline void row_partials(const scalar_t* pt, int64_t Vp, const scalar_t* h, int64_t n, scalar_t* out) {
  constexpr int64_t W = VecT<scalar_t>::size();
  int64_t v0 = 0;
  for (; v0 + 8 * W <= Vp; v0 += 8 * W) row_partial<scalar_t, 8>(pt, Vp, v0, h, n, out);
  if (v0 + 4 * W <= Vp) row_partial<scalar_t, 4>(pt, Vp, v0, h, n, out), v0 += 4 * W;
  if (v0 + 2 * W <= Vp) row_partial<scalar_t, 2>(pt, Vp, v0, h, n, out), v0 += 2 * W;
  if (v0 + W <= Vp) row_partial<scalar_t, 1>(pt, Vp, v0, h, n, out);
}

// A step of the row loop, per thread, with the team meeting once per layer (L = 2 shown):
//
//   layer 0: finish the gates summed at the end of the last step (+ bias + table row of the token
//            fed), cell update -> h_0(t)                                      arrive
//   layer 1: sum W_hh1 h_1(t-1)  (needs only the last step's h)              wait
//            continue the same sums with W_ih1 h_0(t), cell update -> h_1(t),
//            this thread's groups' share of every row's logits               arrive
//   next:    sum W_hh0 h_0(t) for the next step                               wait
//            every thread: the logits from the shares, the draw -> token fed next step
//
// So while the team meets, each thread streams weights it can use already. (With one layer there is
// nothing to stream before h_0(t) is complete: the team waits right after arriving.) Each layer's gates are
// summed over k in the column loop's order, w_hh's inputs first, then w_ih's (see col_units), then
// + bias, + the table row; a logit is ((p_0 + p_1) + ...) + bias over groups of 2W hidden units.
template <typename scalar_t>
void run_row_loop(const LoopModel<scalar_t>& m, at::TensorList w_ih, at::TensorList w_hh,
                  const at::Tensor& proj_weight, const at::Tensor& proj_bias, at::Tensor& h_out, at::Tensor& c_out) {
  using Vec = VecT<scalar_t>;
  constexpr int64_t W = Vec::size();
  const int64_t B = m.B, H = m.H, L = m.L, V = m.V;
  const int64_t blocks = H / W, groups = (blocks + 1) / 2;  // groups of two blocks; the last may hold one
  const int64_t Vp = (V + W - 1) / W * W;
  const int nthreads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), groups)));
  // The packed weights, in parts, in the order a step reads them: for l = 1..L-1 w_hh[l] then
  // w_ih[l], then the projection, then w_hh[0]. A weight part holds one slot per group q: (H, nb, 4, W),
  // [k][j][g][w] = weight[g*H + (2q+j)*W + w][k]; the projection part one slot of the group's rows
  // (nb*W, Vp), [u][v] = proj[v][2qW + u] (zero past V). The scratch block holds each thread's groups
  // together, part after part, so that a thread's step is one contiguous stream. Each thread packs its
  // own slots.
  struct Part {
    const at::Tensor* w;  // nullptr: the projection
    int64_t slot;
  };
  std::vector<Part> parts;
  for (int64_t l = 1; l < L; ++l) {
    parts.push_back({&w_hh[l], 2 * H * 4 * W});
    parts.push_back({&w_ih[l], 2 * H * 4 * W});
  }
  parts.push_back({nullptr, 2 * W * Vp});
  parts.push_back({&w_hh[0], 2 * H * 4 * W});
  // layer l >= 1: w_hh at part 2(l-1), w_ih at 2(l-1) + 1; then the projection's part, then layer 0's
  const int64_t PP = 2 * (L - 1), P0 = PP + 1;
  std::vector<int64_t> before(parts.size() + 1, 0);
  for (size_t i = 0; i < parts.size(); ++i) before[i + 1] = before[i] + parts[i].slot;
  at::Tensor packed = cpu::empty_scratch({groups * before.back()}, h_out.scalar_type());
  scalar_t* const pk = packed.data_ptr<scalar_t>();
  const scalar_t* pw = proj_weight.data_ptr<scalar_t>();
  auto pack_slot = [&](scalar_t* dst, const Part& part, int64_t q) {
    const int64_t nb = 2 * q + 1 < blocks ? 2 : 1;
    if (part.w == nullptr) {
      for (int64_t u = 0; u < nb * W; ++u)
        for (int64_t v = 0; v < Vp; ++v) dst[u * Vp + v] = v < V ? pw[v * H + 2 * q * W + u] : scalar_t(0);
      return;
    }
    const scalar_t* sp = part.w->template data_ptr<scalar_t>();
    for (int64_t j = 0; j < nb; ++j)
      for (int64_t g = 0; g < 4; ++g) {
        const scalar_t* rows = sp + (g * H + (2 * q + j) * W) * H;
        for (int64_t k = 0; k < H; k += W)
          at::vec::transpose_mxn<scalar_t, W, W>(rows + k, H, dst + ((k * nb + j) * 4 + g) * W, nb * 4 * W);
      }
  };
  const at::Tensor pbias = at::constant_pad_nd(proj_bias, {0, Vp - V}).contiguous();
  at::Tensor partial = at::empty({2, groups, B, Vp}, h_out.options());  // per step parity: each group's share
  at::Tensor hbuf = at::empty({L, 2, B, H}, h_out.options());  // double-buffered h
  hbuf.select(1, 0).copy_(h_out);
  scalar_t* hb = hbuf.data_ptr<scalar_t>();
  scalar_t* c = c_out.data_ptr<scalar_t>();
  const scalar_t* pb = pbias.data_ptr<scalar_t>();
  const scalar_t* table = m.table.template data_ptr<scalar_t>();
  auto h_at = [&](int64_t l, int64_t parity) { return hb + (l * 2 + parity) * B * H; };
  const int64_t total = m.total_steps();

  std::unique_ptr<SplitBarrier> barrier;
#pragma omp parallel num_threads(nthreads)
  {
#pragma omp single
    barrier = std::make_unique<SplitBarrier>(omp_get_num_threads());
    const int64_t T = omp_get_num_threads(), tid = omp_get_thread_num();
    const int64_t q0 = groups * tid / T, q1 = groups * (tid + 1) / T, nq = q1 - q0;
    auto slot_at = [&](int64_t part, int64_t q) {
      return pk + q0 * before.back() + nq * before[part] + (q - q0) * parts[part].slot;
    };
    std::vector<scalar_t> logits(Vp), prob(V);
    std::vector<int32_t> order(V);
    std::vector<int64_t> feed(B);  // every thread draws every row, so each keeps its own copy
    // running gate sums, (group, row, 2 blocks x 4 gates): layer 0's for the next step, and a layer's
    // w_hh half for this one
    std::vector<Vec> sums0(nq * B * 8), sums(nq * B * 8);
    for (size_t i = 0; i < parts.size(); ++i)
      for (int64_t q = q0; q < q1; ++q) pack_slot(slot_at(i, q), parts[i], q);

    // sum over one part for every (group, row): out[(q - q0) * B + b] (+= init's)
    auto sum_part = [&](int64_t part, const scalar_t* x, const Vec* init, Vec* out) {
      for (int64_t q = q0; q < q1; ++q)
        for (int64_t b = 0; b < B; ++b) {
          const int64_t i = ((q - q0) * B + b) * 8;
          if (2 * q + 1 < blocks) {
            row_gates<scalar_t, 2>(slot_at(part, q), x + b * H, H, init ? init + i : nullptr, out + i);
          } else {
            row_gates<scalar_t, 1>(slot_at(part, q), x + b * H, H, init ? init + i : nullptr, out + i);
          }
        }
    };
    // gates = sums + bias (+ layer 0's table row), the cell update, h; then this group's logit shares
    auto finish = [&](int64_t l, const Vec* s, scalar_t* h_new, scalar_t* shares) {
      const scalar_t* bs = m.bias[l].template data_ptr<scalar_t>();
      for (int64_t q = q0; q < q1; ++q) {
        const int64_t nb = 2 * q + 1 < blocks ? 2 : 1;
        for (int64_t b = 0; b < B; ++b) {
          const scalar_t* tr = l == 0 ? table + feed[b] * 4 * H : nullptr;
          Vec g4[2][4];
          const int64_t u = 2 * q * W;  // the group's first unit
          for (int64_t j = 0; j < nb; ++j) {
            const Vec* acc = s + ((q - q0) * B + b) * 8 + j * 4;
            for (int g = 0; g < 4; ++g) {
              g4[j][g] = acc[g] + Vec::loadu(bs + g * H + u + j * W);
              if (tr != nullptr) g4[j][g] = g4[j][g] + Vec::loadu(tr + g * H + u + j * W);
            }
          }
          scalar_t* cq = c + (l * B + b) * H + u;
          scalar_t* hq = h_new + b * H + u;
          if (nb == 2) {
            scalar_t* const cs[2] = {cq, cq + W};
            scalar_t* const hs[2] = {hq, hq + W};
            cells<scalar_t, 2>(g4, cs, hs);
          } else {
            cell<scalar_t>(g4[0], cq).store(hq);
          }
          if (shares != nullptr)
            row_partials<scalar_t>(slot_at(PP, q), Vp, h_new + b * H + 2 * q * W, nb * W,
                                   shares + (q * B + b) * Vp);
        }
      }
    };

    sum_part(P0, h_at(0, 0), nullptr, sums0.data());  // layer 0's sums for the first step
    for (int64_t t = 0; t < total; ++t) {
      if (t < m.P)
        for (int64_t b = 0; b < B; ++b) feed[b] = m.prime[b * m.P + t];
      const int64_t cur = (t + 1) & 1, prev = t & 1;
      const int64_t d = m.draw_index(t);
      scalar_t* shares = d >= 0 ? partial.data_ptr<scalar_t>() + (t & 1) * groups * B * Vp : nullptr;
      finish(0, sums0.data(), h_at(0, cur), L == 1 ? shares : nullptr);
      int ticket = barrier->arrive();
      for (int64_t l = 1; l < L; ++l) {
        sum_part(2 * (l - 1), h_at(l, prev), nullptr, sums.data());
        barrier->wait(ticket);
        sum_part(2 * (l - 1) + 1, h_at(l - 1, cur), sums.data(), sums.data());
        finish(l, sums.data(), h_at(l, cur), l == L - 1 ? shares : nullptr);
        ticket = barrier->arrive();
      }
      if (L == 1) barrier->wait(ticket);  // the next step's sums read every thread's h_0(t)
      if (t + 1 < total) sum_part(P0, h_at(0, cur), nullptr, sums0.data());
      if (L > 1) barrier->wait(ticket);
      if (d < 0) continue;
      for (int64_t b = 0; b < B; ++b) {
        // logits = ((p_0 + p_1) + ...) + bias, as the column loop sums them
        for (int64_t v0 = 0; v0 < Vp; v0 += W) {
          Vec sum = Vec::loadu(shares + b * Vp + v0);
          for (int64_t q = 1; q < groups; ++q) sum = sum + Vec::loadu(shares + (q * B + b) * Vp + v0);
          (Vec::loadu(pb + v0) + sum).store(logits.data() + v0);
        }
        const int64_t token = draw_row<scalar_t, scalar_t>(logits.data(), V, m.temperature[b], m.uniforms[d * B + b],
                                                           m.top_k, m.top_p, prob.data(), order.data());
        feed[b] = token;
        if (tid == 0) m.tokens[b * m.steps + d] = token;
      }
    }
  }
  const int64_t last = total & 1;  // the state after the last LSTM step (prime_len >= 1, so there is one)
  for (int64_t l = 0; l < L; ++l) h_out[l].view({B, H}).copy_(hbuf[l][last]);
}

// ---- column loop -----------------------------------------------------------------------------------

// acc[r][g] = sum_k w[k][g] * x[k][r0 + r*W ...] for RV vectors of rows; x is (K, Bp) row-major,
// given as xa (Ka rows) then xb (Kb rows); w is (Ka + Kb, 4).
template <typename scalar_t, int RV>
GENFAST_NOINLINE void col_gates(const scalar_t* w, const scalar_t* xa, int64_t Ka, const scalar_t* xb, int64_t Kb, int64_t Bp,
                      int64_t r0, VecT<scalar_t> (&out)[RV][4]) {
  using Vec = VecT<scalar_t>;
  Vec acc[RV][4];  // local, so that it lives in registers (out may alias the inputs)
  constexpr int64_t W = Vec::size();
  for (int r = 0; r < RV; ++r)
    for (int g = 0; g < 4; ++g) acc[r][g] = Vec(scalar_t(0));
  auto run_k = [&](const scalar_t* x, int64_t K) {
    x += r0;
    for (int64_t k = 0; k < K; ++k, w += 4, x += Bp) {
      Vec xv[RV];
      for (int r = 0; r < RV; ++r) xv[r] = Vec::loadu(x + r * W);
      for (int g = 0; g < 4; ++g) {
        const Vec wg(w[g]);
        for (int r = 0; r < RV; ++r) acc[r][g] = at::vec::fmadd(wg, xv[r], acc[r][g]);
      }
    }
  };
  run_k(xa, Ka);
  if (Kb > 0) run_k(xb, Kb);
  for (int a = 0; a < RV; ++a)
    for (int g = 0; g < 4; ++g) out[a][g] = acc[a][g];
}

// The same for NU units (weights w[n], each (Ka + Kb, 4)) and one vector of rows: acc[n][g].
template <typename scalar_t, int NU>
GENFAST_NOINLINE void col_gates_units(const scalar_t* const* w, const scalar_t* xa, int64_t Ka, const scalar_t* xb, int64_t Kb,
                            int64_t Bp, int64_t r0, VecT<scalar_t> (&out)[NU][4]) {
  using Vec = VecT<scalar_t>;
  Vec acc[NU][4];  // local, so that it lives in registers (out may alias the inputs)
  const scalar_t* p[NU];
  for (int n = 0; n < NU; ++n) p[n] = w[n];
  for (int n = 0; n < NU; ++n)
    for (int g = 0; g < 4; ++g) acc[n][g] = Vec(scalar_t(0));
  auto run_k = [&](const scalar_t* x, int64_t K) {
    x += r0;
    for (int64_t k = 0; k < K; ++k, x += Bp) {
      const Vec xv = Vec::loadu(x);
      for (int n = 0; n < NU; ++n)
        for (int g = 0; g < 4; ++g) acc[n][g] = at::vec::fmadd(Vec(p[n][g]), xv, acc[n][g]);
      for (int n = 0; n < NU; ++n) p[n] += 4;
    }
  };
  run_k(xa, Ka);
  if (Kb > 0) run_k(xb, Kb);
  for (int a = 0; a < NU; ++a)
    for (int g = 0; g < 4; ++g) out[a][g] = acc[a][g];
}

// Every (unit, row vector) of units [u0, u1) of a packed (units, K, 4) weight against a (K, Bp) input
// (xa: Ka rows, then xb: Kb rows): f(us[N], rs[N], acc[N][4]) with the 4 sums of N (unit us[n], rows
// from rs[n]) at a time, N the tile a kernel computed (so f can overlap their cells). Rows go in
// chunks of up to kColChunk vectors, so that a chunk of the input stays in L2 while every unit passes over it; within
// a chunk three vectors at a time (12 accumulators), a leftover pair as two, and a single leftover
// vector takes three units at once, so that every kernel but the pair keeps 12 independent
// accumulators.
constexpr int64_t kColChunk = 9;

template <typename scalar_t, typename F>
inline void col_units(const scalar_t* w, int64_t u0, int64_t u1, const scalar_t* xa, int64_t Ka, const scalar_t* xb,
                      int64_t Kb, int64_t Bp, const F& f) {
  using Vec = VecT<scalar_t>;
  constexpr int64_t W = Vec::size();
  const int64_t K = Ka + Kb;
  for (int64_t c0 = 0; c0 < Bp; c0 += kColChunk * W) {
    const int64_t c1 = std::min(Bp, c0 + kColChunk * W), nvec = (c1 - c0) / W;
    const bool tail = nvec % 3 == 1;  // one vector left after the groups of three
    const int64_t main_end = c1 - (tail ? W : 0);
    for (int64_t u = u0; u < u1; u += 3) {
      const int nu = static_cast<int>(std::min<int64_t>(3, u1 - u));
      for (int n = 0; n < nu; ++n) {
        const scalar_t* wu = w + (u + n) * K * 4;
        int64_t r0 = c0;
        for (; r0 + 3 * W <= main_end; r0 += 3 * W) {
          Vec acc[3][4];
          col_gates<scalar_t, 3>(wu, xa, Ka, xb, Kb, Bp, r0, acc);
          f({u + n, u + n, u + n}, {r0, r0 + W, r0 + 2 * W}, acc);
        }
        if (r0 + 2 * W <= main_end) {
          Vec acc[2][4];
          col_gates<scalar_t, 2>(wu, xa, Ka, xb, Kb, Bp, r0, acc);
          f({u + n, u + n}, {r0, r0 + W}, acc);
        }
      }
      if (!tail) continue;
      const scalar_t* wn[3];
      for (int n = 0; n < 3; ++n) wn[n] = w + std::min<int64_t>(u + n, u1 - 1) * K * 4;
      if (nu == 3) {
        Vec acc[3][4];
        col_gates_units<scalar_t, 3>(wn, xa, Ka, xb, Kb, Bp, main_end, acc);
        f({u, u + 1, u + 2}, {main_end, main_end, main_end}, acc);
      } else if (nu == 2) {
        Vec acc[2][4];
        col_gates_units<scalar_t, 2>(wn, xa, Ka, xb, Kb, Bp, main_end, acc);
        f({u, u + 1}, {main_end, main_end}, acc);
      } else {
        Vec acc[1][4];
        col_gates_units<scalar_t, 1>(wn, xa, Ka, xb, Kb, Bp, main_end, acc);
        f({u}, {main_end}, acc);
      }
    }
  }
}

template <typename scalar_t>
void run_col_loop(const LoopModel<scalar_t>& m, at::TensorList w_ih, at::TensorList w_hh,
                  const at::Tensor& proj_weight, const at::Tensor& proj_bias, at::Tensor& h_out, at::Tensor& c_out) {
  using Vec = VecT<scalar_t>;
  constexpr int64_t W = Vec::size();
  const int64_t B = m.B, H = m.H, L = m.L, V = m.V;
  const int64_t Bp = (B + W - 1) / W * W, Vq = (V + 3) / 4;
  // Every layer's weights in one scratch block, layer l at offset[l]: (H, K, 4) with [u][k][g] =
  // weight[g*H + u][k]; each thread packs the units it computes, inside the parallel region. Layer
  // l's K inputs are h_0(prev) for layer 0 (K = H: w_hh0; w_ih0 is in the table) and [h_l(prev) |
  // h_{l-1}(this step)] after (K = 2H: w_hh, then w_ih), the row loop's order.
  std::vector<int64_t> offset(L + 1, 0);
  for (int64_t l = 0; l < L; ++l) offset[l + 1] = offset[l] + 4 * H * (l == 0 ? H : 2 * H);
  at::Tensor packed = cpu::empty_scratch({offset[L]}, h_out.scalar_type());
  auto pack_unit = [&](int64_t l, int64_t u) {
    const int64_t K = l == 0 ? H : 2 * H;
    scalar_t* dst = packed.data_ptr<scalar_t>() + offset[l] + u * K * 4;
    auto copy = [&](const at::Tensor& src, int64_t k0) {
      const int64_t Ks = src.size(1);
      const scalar_t* sp = src.data_ptr<scalar_t>();
      for (int64_t k = 0; k < Ks; ++k)
        for (int64_t g = 0; g < 4; ++g) dst[(k0 + k) * 4 + g] = sp[(g * H + u) * Ks + k];
    };
    copy(w_hh[l], 0);
    if (l > 0) copy(w_ih[l], H);
  };
  // The projection by groups of 2W hidden units (the row loop's groups): group q, units [us, ue), at
  // Vq * 4 * us: (Vq, ue - us, 4), [qv][u][g] = proj[4qv + g][us + u] (zero past V).
  const int64_t GU = 2 * W, G = (H + GU - 1) / GU;
  at::Tensor pw = at::empty({Vq * 4 * H}, h_out.options());
  {
    scalar_t* dst = pw.data_ptr<scalar_t>();
    const scalar_t* src = proj_weight.data_ptr<scalar_t>();
    for (int64_t q = 0; q < G; ++q) {
      const int64_t us = q * GU, n = std::min(H, us + GU) - us;
      for (int64_t qv = 0; qv < Vq; ++qv)
        for (int64_t u = 0; u < n; ++u)
          for (int64_t g = 0; g < 4; ++g)
            dst[Vq * 4 * us + (qv * n + u) * 4 + g] = 4 * qv + g < V ? src[(4 * qv + g) * H + us + u] : scalar_t(0);
    }
  }
  const at::Tensor pbias = at::constant_pad_nd(proj_bias, {0, 4 * Vq - V}).contiguous();
  const at::Tensor table_t = m.table.t().contiguous();  // (4H, V)
  // transposed state, padded rows zero: h (L, 2, H, Bp) double-buffered, c (L, H, Bp)
  at::Tensor hT = at::zeros({L, 2, H, Bp}, h_out.options());
  at::Tensor cT = at::zeros({L, H, Bp}, c_out.options());
  hT.select(1, 0).narrow(2, 0, B).copy_(h_out.transpose(1, 2));
  cT.narrow(2, 0, B).copy_(c_out.transpose(1, 2));
  at::Tensor logits_t = at::empty({4 * Vq, Bp}, h_out.options());
  // the token each row was fed at this step (padding rows: 0), as gather indices into a row of table_t
  using Index = at::vec::int_same_size_t<scalar_t>;
  std::vector<Index> feed(Bp, 0);
  scalar_t* hb = hT.data_ptr<scalar_t>();
  scalar_t* c = cT.data_ptr<scalar_t>();
  scalar_t* lg = logits_t.data_ptr<scalar_t>();
  const scalar_t* pw_p = pw.data_ptr<scalar_t>();
  const scalar_t* pb = pbias.data_ptr<scalar_t>();
  const scalar_t* tt = table_t.data_ptr<scalar_t>();
  auto h_at = [&](int64_t l, int64_t parity) { return hb + (l * 2 + parity) * H * Bp; };
  const int64_t total = m.total_steps();
  const int nthreads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), H)));

#pragma omp parallel num_threads(nthreads)
  {
    const int64_t T = omp_get_num_threads(), tid = omp_get_thread_num();
    const int64_t u0 = H * tid / T, u1 = H * (tid + 1) / T;
    const int64_t p0 = Vq * tid / T, p1 = Vq * (tid + 1) / T;
    std::vector<scalar_t> row(V), prob(V);
    std::vector<int32_t> order(V);
    for (int64_t l = 0; l < L; ++l)
      for (int64_t u = u0; u < u1; ++u) pack_unit(l, u);
    for (int64_t t = 0; t < total; ++t) {
      if (t < m.P) {
#pragma omp single
        for (int64_t b = 0; b < B; ++b) feed[b] = static_cast<Index>(m.prime[b * m.P + t]);
      }  // (implicit barrier after single)
      const int64_t cur = (t + 1) & 1, prev = t & 1;
      for (int64_t l = 0; l < L; ++l) {
        const int64_t Kb = l == 0 ? 0 : H;
        const scalar_t* bs = m.bias[l].template data_ptr<scalar_t>();
        const scalar_t* xa = h_at(l, prev);  // w_hh's inputs, then (after layer 0) w_ih's
        const scalar_t* xb = l == 0 ? nullptr : h_at(l - 1, cur);
        scalar_t* h_new = h_at(l, cur);
        col_units<scalar_t>(packed.data_ptr<scalar_t>() + offset[l], u0, u1, xa, H, xb, Kb, Bp,
                            [&]<int N>(const int64_t(&us)[N], const int64_t(&rs)[N], const Vec(&acc)[N][4]) {
          Vec g4[N][4];
          scalar_t* cs[N];
          scalar_t* hs[N];
          for (int n = 0; n < N; ++n) {
            const int64_t u = us[n], r = rs[n];
            for (int g = 0; g < 4; ++g) g4[n][g] = acc[n][g] + Vec(bs[g * H + u]);
            if (l == 0) {  // + the table entries of the rows' tokens, gathered from the unit's rows of table_t
              const VecT<Index> tokens = VecT<Index>::loadu(feed.data() + r);
              for (int g = 0; g < 4; ++g)
                g4[n][g] = g4[n][g] + at::vec::gather<sizeof(scalar_t)>(tt + (g * H + u) * V, tokens);
            }
            cs[n] = c + (l * H + u) * Bp + r;
            hs[n] = h_new + u * Bp + r;
          }
          cells<scalar_t, N>(g4, cs, hs);
        });
#pragma omp barrier
      }
      const int64_t d = m.draw_index(t);
      if (d < 0) continue;
      const scalar_t* top = h_at(L - 1, cur);
      // logits = ((p_0 + p_1) + ...) + bias, p_q the sum over group q's units (as the row loop sums them)
      for (int64_t q = 0; q < G; ++q) {
        const int64_t us = q * GU, n = std::min(H, us + GU) - us;
        col_units<scalar_t>(pw_p + Vq * 4 * us, p0, p1, top + us * Bp, n, nullptr, 0, Bp,
                            [&]<int N>(const int64_t(&qvs)[N], const int64_t(&rs)[N], const Vec(&acc)[N][4]) {
          for (int n = 0; n < N; ++n)
            for (int g = 0; g < 4; ++g) {
              const int64_t qv = qvs[n];  // a group of 4 vocabulary entries
              scalar_t* o = lg + (4 * qv + g) * Bp + rs[n];
              Vec sum = q == 0 ? acc[n][g] : Vec::loadu(o) + acc[n][g];
              if (q == G - 1) sum = Vec(pb[4 * qv + g]) + sum;
              sum.store(o);
            }
        });
      }
#pragma omp barrier
      for (int64_t b = tid; b < B; b += T) {
        for (int64_t v = 0; v < V; ++v) row[v] = lg[v * Bp + b];
        const int64_t token = draw_row<scalar_t, scalar_t>(row.data(), V, m.temperature[b], m.uniforms[d * B + b],
                                                           m.top_k, m.top_p, prob.data(), order.data());
        feed[b] = static_cast<Index>(token);
        m.tokens[b * m.steps + d] = token;
      }
#pragma omp barrier
    }
  }
  const int64_t last = total & 1;
  h_out.copy_(hT.select(1, last).narrow(2, 0, B).transpose(1, 2));
  c_out.copy_(cT.narrow(2, 0, B).transpose(1, 2));
}

// The row loop needs whole vectors of hidden units; other sizes there (and calls from inside a
// parallel region, where a nested team would not get threads) take the GEMM path below.
enum class Loop { kRow, kColumn, kGemm };

template <typename scalar_t>
Loop pick_loop(const Sizes& s) {
  if (at::in_parallel_region()) return Loop::kGemm;
  if (s.batch > kRowLoopMaxBatch) return Loop::kColumn;
  return s.hidden % VecT<scalar_t>::size() == 0 ? Loop::kRow : Loop::kGemm;
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
    const auto [min_t, max_t] = at::aminmax(prime);
    const int64_t lo = min_t.item<int64_t>(), hi = max_t.item<int64_t>();
    TORCH_CHECK(lo >= 0 && hi < s.vocab, "lstm_sample: expected prime token ids in [0, ", s.vocab, "), got min ", lo,
                ", max ", hi);
  }
  Outputs out = new_outputs(s, prime, h0, c0);
  at::Tensor &tokens = out.tokens, &h_out = out.h, &c_out = out.c;
  if (s.batch == 0) return {tokens, h_out, c_out};
  const LayerWeights w = contiguous_layers(w_ih, w_hh, b_ih, b_hh);
  const std::vector<at::Tensor> &wi = w.w_ih, &wh = w.w_hh, &bi = w.b_ih, &bh = w.b_hh;
  AT_DISPATCH_FLOATING_TYPES(embedding.scalar_type(), "lstm_sample_cpu", [&] {
    const Loop loop = pick_loop<scalar_t>(s);
    if (loop == Loop::kGemm) {
      run<scalar_t>(embedding.contiguous(), wi, wh, bi, bh, proj_weight.contiguous(), proj_bias.contiguous(),
                    prime.contiguous(), temperature.contiguous(), uniforms.contiguous(), top_k, top_p, s, tokens,
                    h_out, c_out);
      return;
    }
    const at::Tensor prime_c = prime.contiguous(), temperature_c = temperature.contiguous();
    const at::Tensor uniforms_c = uniforms.contiguous();
    const LoopModel<scalar_t> m(embedding.contiguous(), wi, bi, bh, prime_c, temperature_c, uniforms_c, top_k, top_p,
                                s, tokens);
    if (loop == Loop::kRow) {
      run_row_loop<scalar_t>(m, wi, wh, proj_weight.contiguous(), proj_bias.contiguous(), h_out, c_out);
    } else {
      run_col_loop<scalar_t>(m, wi, wh, proj_weight.contiguous(), proj_bias.contiguous(), h_out, c_out);
    }
  });
  return {tokens, h_out, c_out};
}

}  // namespace

TORCH_LIBRARY_IMPL(genfast, CPU, m) { m.impl("lstm_sample", &lstm_sample_cpu); }

}  // namespace genfast::lstm_sample
