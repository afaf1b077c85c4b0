// Character-LSTM sampling: what the CPU and CUDA kernels share.
//
// The per-row draw (temperature softmax, top-k, top-p, inverse CDF on a given uniform) is written once
// here, for host and device, and follows genfast/reference/lstm_sample.py step by step so that with
// the same uniforms both draw the same token. Cumulative sums run in double like ATen's CPU cumsum,
// whose accumulator for float is double.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/irange.h>

#include <cmath>
#include <cstdint>
#include <vector>

#if !defined(__CUDACC__)
#include "common/cpu_vec_math.h"
#endif

#ifdef __CUDACC__
#define GENFAST_HD __host__ __device__
#else
#define GENFAST_HD
#endif

namespace genfast::lstm_sample {

GENFAST_HD inline float exp_(float x) { return expf(x); }
GENFAST_HD inline double exp_(double x) { return exp(x); }
GENFAST_HD inline float tiny_(float) { return 1.17549435e-38f; }
GENFAST_HD inline double tiny_(double) { return 2.2250738585072014e-308; }

// p[i] = exp(p[i] - m) for i < v, m the maximum (so every argument is <= 0).
template <typename T>
GENFAST_HD inline void exp_shifted(T* p, int64_t v, T m) {
  for (int64_t i = 0; i < v; ++i) p[i] = exp_(p[i] - m);
}

#if !defined(__CUDACC__) && defined(CPU_CAPABILITY_AVX2)
// float on the CPU: 8 at a time with the cell update's inline exp (common/cpu_vec_math.h, < 1.01 ulp;
// libm's scalar expf was ~0.3 us of a ~20 us step at B = 1). Arguments below -87.3, where that exp
// stops (expf's results there are denormals, under 1.2e-38), give 0. A tail shorter than a vector
// goes through the same code in a padded copy, so an entry's value does not depend on its position.
inline void exp_shifted(float* p, int64_t v, float m) {
  const __m256 mv = _mm256_set1_ps(m), lo = _mm256_set1_ps(cpu::vmath::kExpMinArg);
  auto one = [&](const float* in, float* out) {
    const __m256 x = _mm256_sub_ps(_mm256_loadu_ps(in), mv);
    _mm256_storeu_ps(out, _mm256_and_ps(cpu::vmath::exp_ps(x), _mm256_cmp_ps(x, lo, _CMP_GE_OQ)));
  };
  int64_t i = 0;
  for (; i + 8 <= v; i += 8) one(p + i, p + i);
  if (i < v) {
    float tail[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t k = i; k < v; ++k) tail[k - i] = p[k];
    one(tail, tail);
    for (int64_t k = i; k < v; ++k) p[k] = tail[k - i];
  }
}
#endif

// First index of the maximum (torch.argmax's tie rule).
template <typename T>
GENFAST_HD int64_t argmax_row(const T* x, int64_t v) {
  int64_t best = 0;
  for (int64_t i = 1; i < v; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

// One row: logits (V) -> token. `p` (V values) and `order` (V ints) are scratch.
template <typename acc_t, typename scalar_t>
GENFAST_HD int64_t draw_row(const scalar_t* logits, int64_t v, scalar_t temperature, double u, int64_t top_k,
                            double top_p, acc_t* p, int32_t* order) {
  if (temperature == scalar_t(0)) return argmax_row(logits, v);
  acc_t t = static_cast<acc_t>(temperature);
  if (t < tiny_(t)) t = tiny_(t);
  for (int64_t i = 0; i < v; ++i) p[i] = static_cast<acc_t>(logits[i]) / t;
  acc_t m = p[argmax_row(p, v)];
  exp_shifted(p, v, m);

  const bool by_k = top_k > 0 && top_k < v;
  const bool by_p = top_p < 1.0;
  if (by_k || by_p) {
    // decreasing probability, ties by lower index (a stable insertion sort; V is a vocabulary of
    // characters, tens to a few hundred)
    for (int64_t i = 0; i < v; ++i) {
      int64_t j = i;
      while (j > 0 && p[order[j - 1]] < p[i]) {
        order[j] = order[j - 1];
        --j;
      }
      order[j] = static_cast<int32_t>(i);
    }
    int64_t kept = by_k ? top_k : v;
    if (by_p) {
      double running = 0.0;
      acc_t total = 0;
      for (int64_t r = 0; r < kept; ++r) {
        running += static_cast<double>(p[order[r]]);
      }
      total = static_cast<acc_t>(running);
      const acc_t threshold = static_cast<acc_t>(top_p) * total;
      running = 0.0;
      int64_t r = 0;
      for (; r < kept; ++r) {
        const acc_t kept_p = p[order[r]];
        running += static_cast<double>(kept_p);
        const acc_t before = static_cast<acc_t>(running) - kept_p;
        if (!(before < threshold)) break;
      }
      kept = r;
    }
    for (int64_t r = kept; r < v; ++r) p[order[r]] = acc_t(0);
  }

  // inverse CDF in vocabulary order; the cumulative sum is rounded to acc_t at every element, as a
  // stored cumsum is
  double running = 0.0;
  for (int64_t i = 0; i < v; ++i) running += static_cast<double>(p[i]);
  const acc_t threshold = static_cast<acc_t>(u) * static_cast<acc_t>(running);
  running = 0.0;
  int64_t token = 0;
  for (; token < v; ++token) {
    running += static_cast<double>(p[token]);
    if (static_cast<acc_t>(running) > threshold) break;
  }
  if (token >= v) token = v - 1;
  if (!(p[token] > acc_t(0))) token = argmax_row(p, v);
  return token;
}

struct Sizes {
  int64_t batch, prime_len, steps, layers, hidden, vocab, embed;
};

// Checks shared by the CPU and CUDA entry points; errors name the argument.
inline Sizes check_inputs(const at::Tensor& embedding, at::TensorList w_ih, at::TensorList w_hh, at::TensorList b_ih,
                          at::TensorList b_hh, const at::Tensor& proj_weight, const at::Tensor& proj_bias,
                          const at::Tensor& prime, const at::Tensor& h0, const at::Tensor& c0,
                          const at::Tensor& temperature, const at::Tensor& uniforms, int64_t top_k, double top_p) {
  TORCH_CHECK(embedding.dim() == 2, "lstm_sample: expected embedding of shape (V, E), got ", embedding.sizes());
  TORCH_CHECK(embedding.scalar_type() == at::kFloat || embedding.scalar_type() == at::kDouble,
              "lstm_sample: expected embedding float32 or float64, got ", embedding.scalar_type());
  TORCH_CHECK(prime.dim() == 2 && prime.scalar_type() == at::kLong,
              "lstm_sample: expected prime to be int64 of shape (B, P), got ", prime.scalar_type(), " ", prime.sizes());
  TORCH_CHECK(prime.size(1) >= 1, "lstm_sample: expected prime with at least one token per row, got ", prime.sizes());
  const int64_t layers = static_cast<int64_t>(w_ih.size());
  TORCH_CHECK(layers >= 1 && w_hh.size() == w_ih.size() && b_ih.size() == w_ih.size() && b_hh.size() == w_ih.size(),
              "lstm_sample: expected w_ih, w_hh, b_ih, b_hh to hold one tensor per layer (at least one), got ",
              w_ih.size(), ", ", w_hh.size(), ", ", b_ih.size(), ", ", b_hh.size());
  Sizes s{prime.size(0), prime.size(1), uniforms.size(0), layers, w_hh[0].size(1), embedding.size(0), embedding.size(1)};
  const auto dtype = embedding.scalar_type();
  int64_t in = s.embed;
  for (int64_t l = 0; l < layers; ++l) {
    TORCH_CHECK(w_ih[l].sizes() == at::IntArrayRef({4 * s.hidden, in}), "lstm_sample: expected w_ih[", l,
                "] of shape (", 4 * s.hidden, ", ", in, "), got ", w_ih[l].sizes());
    TORCH_CHECK(w_hh[l].sizes() == at::IntArrayRef({4 * s.hidden, s.hidden}), "lstm_sample: expected w_hh[", l,
                "] of shape (", 4 * s.hidden, ", ", s.hidden, "), got ", w_hh[l].sizes());
    TORCH_CHECK(b_ih[l].sizes() == at::IntArrayRef({4 * s.hidden}) && b_hh[l].sizes() == at::IntArrayRef({4 * s.hidden}),
                "lstm_sample: expected b_ih[", l, "] and b_hh[", l, "] of shape (", 4 * s.hidden, ",)");
    for (const at::Tensor* t : {&w_ih[l], &w_hh[l], &b_ih[l], &b_hh[l]}) {
      TORCH_CHECK(t->scalar_type() == dtype && t->device() == embedding.device(),
                  "lstm_sample: expected every LSTM weight of layer ", l, " to be ", dtype, " on ", embedding.device());
    }
    in = s.hidden;
  }
  TORCH_CHECK(proj_weight.sizes() == at::IntArrayRef({s.vocab, s.hidden}) && proj_weight.scalar_type() == dtype,
              "lstm_sample: expected proj_weight of shape (", s.vocab, ", ", s.hidden, ") and ", dtype, ", got ",
              proj_weight.sizes(), " ", proj_weight.scalar_type());
  TORCH_CHECK(proj_bias.sizes() == at::IntArrayRef({s.vocab}) && proj_bias.scalar_type() == dtype,
              "lstm_sample: expected proj_bias of shape (", s.vocab, ",) and ", dtype);
  for (const at::Tensor* t : {&h0, &c0}) {
    TORCH_CHECK(t->sizes() == at::IntArrayRef({layers, s.batch, s.hidden}) && t->scalar_type() == dtype,
                "lstm_sample: expected h0 and c0 of shape (", layers, ", ", s.batch, ", ", s.hidden, ") and ", dtype,
                ", got ", t->sizes(), " ", t->scalar_type());
  }
  TORCH_CHECK(temperature.sizes() == at::IntArrayRef({s.batch}) && temperature.scalar_type() == dtype,
              "lstm_sample: expected temperature of shape (", s.batch, ",) and ", dtype, ", got ",
              temperature.sizes(), " ", temperature.scalar_type());
  TORCH_CHECK(uniforms.dim() == 2 && uniforms.size(1) == s.batch && uniforms.scalar_type() == at::kDouble,
              "lstm_sample: expected uniforms float64 of shape (steps, ", s.batch, "), got ", uniforms.scalar_type(),
              " ", uniforms.sizes());
  TORCH_CHECK(top_k >= 0, "lstm_sample: expected top_k >= 0, got ", top_k);
  TORCH_CHECK(top_p > 0.0 && top_p <= 1.0, "lstm_sample: expected top_p in (0, 1], got ", top_p);
  for (const at::Tensor* t : {&prime, &proj_weight, &proj_bias, &h0, &c0, &temperature, &uniforms}) {
    TORCH_CHECK(t->device() == embedding.device(), "lstm_sample: expected every input on ", embedding.device(),
                ", got one on ", t->device());
  }
  return s;
}

// What both entry points return and read: the tokens (B, steps) and the state they update in place,
// copies of h0 and c0.
struct Outputs {
  at::Tensor tokens, h, c;
};

inline Outputs new_outputs(const Sizes& s, const at::Tensor& prime, const at::Tensor& h0, const at::Tensor& c0) {
  return {at::empty({s.batch, s.steps}, prime.options()), h0.contiguous().clone(), c0.contiguous().clone()};
}

// The per-layer weights as contiguous tensors, in the order the kernels index them.
struct LayerWeights {
  std::vector<at::Tensor> w_ih, w_hh, b_ih, b_hh;
};

inline LayerWeights contiguous_layers(at::TensorList w_ih, at::TensorList w_hh, at::TensorList b_ih,
                                      at::TensorList b_hh) {
  LayerWeights w;
  for (size_t l = 0; l < w_ih.size(); ++l) {
    w.w_ih.push_back(w_ih[l].contiguous());
    w.w_hh.push_back(w_hh[l].contiguous());
    w.b_ih.push_back(b_ih[l].contiguous());
    w.b_hh.push_back(b_hh[l].contiguous());
  }
  return w;
}

}  // namespace genfast::lstm_sample
