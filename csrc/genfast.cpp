// Every genfast schema, in one place. Kernels register per device in csrc/<op>/<op>_{cpu,cuda}.*;
// fake (meta) kernels are registered from Python (genfast/ops/<op>.py), and so is autograd, except
// where it is C++ (csrc/<op>/<op>_autograd.cpp: minibatch_stddev, instance_norm, stem_conv2d).
//
// Backward passes are ops of their own, so they dispatch, compile and show up in profiles
// under their names.
//
// An op's CPU and CUDA entry points have the same shape on purpose: the checks and output
// allocation come from the op's header (csrc/<op>/<op>.h, shared), then each launches its own
// device's kernels. `duplicates` lists those pairs of drivers; what they share is in the header.

#include <Python.h>
#include <torch/library.h>

#include "common/cpu_output_cache.h"

#ifndef GENFAST_BUILD_INFO
#define GENFAST_BUILD_INFO "unknown"
#endif

TORCH_LIBRARY(genfast, m) {
  // ---- gram: G = scale * F F^T for F of shape (N, C, L); the style loss on top of it.
  m.def("gram_matrix(Tensor features, float scale) -> Tensor");
  m.def("gram_matrix_backward(Tensor grad, Tensor features, float scale) -> Tensor");
  // Returns (loss, gram): gram is float32 (float64 for float64 features), kept for the backward.
  m.def("style_loss(Tensor features, Tensor target, float scale, str reduction, float weight) -> (Tensor, Tensor)");
  m.def(
      "style_loss_backward(Tensor grad, Tensor features, Tensor gram, Tensor target, float scale, "
      "str reduction, float weight) -> Tensor");

  // ---- minibatch_stddev: StyleGAN2's minibatch standard deviation layer, (N, C, H, W) -> (N, C + F, H, W).
  m.def("minibatch_stddev(Tensor x, int group_size, int num_channels, float eps) -> Tensor");
  // Its autograd (registered in C++, for speed) makes double backward work for R1 / gradient penalties.
  m.def("minibatch_stddev_backward(Tensor grad_out, Tensor x, int group_size, int num_channels, float eps) -> Tensor");

  // ---- instance_norm: per-(n, c) plane normalisation over H*W, then x_hat * scale + shift and an
  // activation ("none", "relu", "leaky_relu"). scale and shift are (N, C) (the public API expands
  // weight/bias or blends style rows into them). Returns (y, mean, rstd), kept for the backward:
  // mean (N, C) float64 (a float32 mean of values near 1e4 would be off by 5e-4 std), rstd (N, C)
  // float32 (float64 for float64 x).
  m.def(
      "instance_norm(Tensor x, Tensor? scale, Tensor? shift, float eps, str activation, "
      "float negative_slope) -> (Tensor, Tensor, Tensor)");
  // Returns (grad_x, grad_scale, grad_shift), the last two (N, C) in rstd's dtype. eps is not used
  // by the kernels; the op's own autograd uses it when it recomputes the statistics from x (the
  // differentiable double backward, for third derivatives).
  m.def(
      "instance_norm_backward(Tensor grad, Tensor x, Tensor mean, Tensor rstd, Tensor? scale, "
      "Tensor? shift, float eps, str activation, float negative_slope) -> (Tensor, Tensor, Tensor)");
  // The backward's VJP (double backward, for gradient penalties): given the cotangents of the
  // backward's three outputs (gg_x like x, gg_scale and gg_shift (N, C); absent = zero), returns
  // (d_grad like grad, d_x like x, d_scale (N, C) in rstd's dtype); shift gets none (it enters only
  // through the activation's piecewise-constant slope). mean and rstd are the forward's.
  m.def(
      "instance_norm_double_backward(Tensor grad, Tensor x, Tensor mean, Tensor rstd, Tensor? scale, "
      "Tensor? shift, Tensor? gg_x, Tensor? gg_scale, Tensor? gg_shift, str activation, float negative_slope) "
      "-> (Tensor, Tensor, Tensor)");

  // ---- stem_conv2d: a convolution (dilation 1, one group, zero padding) for inputs with few channels,
  // the first layer of an image discriminator, with its activation ("none", "relu", "leaky_relu")
  // fused; math in csrc/stem_conv2d/stem_conv2d.h. Given slopes_of (an earlier output), the forward
  // is the layer linearised there: the sum times the activation's slopes at slopes_of. The backward
  // ops read the slopes from out (the forward's output; None with activation "none"). At fixed
  // slopes the three are linear in each argument, and the op's autograd differentiates each one
  // with the others, so gradient penalties run every derivative on these kernels.
  m.def(
      "stem_conv2d(Tensor x, Tensor weight, Tensor? bias, Tensor? slopes_of, int[2] stride, int[2] padding, "
      "str activation, float negative_slope) -> Tensor");
  m.def(
      "stem_conv2d_backward_input(Tensor grad_out, Tensor? out, Tensor weight, int[2] input_hw, int[2] stride, "
      "int[2] padding, str activation, float negative_slope) -> Tensor");
  // Returns (grad_weight, grad_bias).
  m.def(
      "stem_conv2d_backward_weight(Tensor grad_out, Tensor? out, Tensor x, int[2] kernel_size, int[2] stride, "
      "int[2] padding, str activation, float negative_slope) -> (Tensor, Tensor)");

  // ---- lstm_sample: a character LSTM's whole sampling loop. Consumes prime (B, P), then draws
  // uniforms.size(0) tokens per row from softmax(logits / temperature) restricted by top_k (0: off)
  // and top_p (1: off), by inverse CDF on the given uniforms (steps, B) float64; temperature 0 is the
  // argmax. A pure function of its inputs (no generator). Returns (tokens (B, steps), h, c (L, B, H)):
  // the state that produced the last token's distribution.
  m.def(
      "lstm_sample(Tensor embedding, Tensor[] w_ih, Tensor[] w_hh, Tensor[] b_ih, Tensor[] b_hh, "
      "Tensor proj_weight, Tensor proj_bias, Tensor prime, Tensor h0, Tensor c0, Tensor temperature, "
      "Tensor uniforms, int top_k, float top_p) -> (Tensor, Tensor, Tensor)");

  // ---- rl: tabular reinforcement learning, the whole training loop of R independent runs (one table
  // per row) in one call; twin: genfast/reference/rl.py. Random numbers are Philox4x64-10 keyed by
  // (seeds[r], stream) and counted by (game, ply), so any split into calls (first_game) and any number
  // of threads give the same tables. alpha and epsilon are (R, 2) float64 (start, end), linear over
  // total_games. Both return (new tables, stats (R, 3) int64).
  // Tic-tac-toe TD(0) on afterstate values: values (R, S), index_map (19683,) board code -> entry,
  // outcomes (19683,) int8 (0 ongoing, 1 X wins, 2 O wins, 3 draw), opponent "self" | "random" |
  // "table" (greedy on opponent_values (19683,) by code), side "x" | "o" | "alternate". Stats: X wins,
  // O wins, draws.
  m.def(
      "rl_tictactoe_td(Tensor values, Tensor index_map, Tensor outcomes, Tensor seeds, Tensor alpha, "
      "Tensor epsilon, Tensor? opponent_values, str opponent, str side, int first_game, int games, "
      "int total_games) -> (Tensor, Tensor)");
  // Flippers Q-learning: q (R, S), index_map (512, 9) (board, move) -> entry, goals (512,) bool,
  // gamma (R,). Stats: games solved, games cut at max_moves, moves of the solved games.
  m.def(
      "rl_flippers_q(Tensor q, Tensor index_map, Tensor goals, Tensor seeds, Tensor alpha, Tensor epsilon, "
      "Tensor gamma, int first_game, int games, int total_games, int max_moves, float goal_reward, "
      "float move_reward) -> (Tensor, Tensor)");

  // ---- _vec_math: the CPU kernels' inline float32 exp / sigmoid / tanh (fn) elementwise, for the
  // accuracy tests only (common/cpu_vec_math.h).
  m.def("_vec_math(Tensor x, str fn) -> Tensor");
}

namespace {

PyObject* build_info(PyObject*, PyObject*) { return PyUnicode_FromString(GENFAST_BUILD_INFO); }

PyObject* built_with_cuda(PyObject*, PyObject*) {
#ifdef GENFAST_WITH_CUDA
  Py_RETURN_TRUE;
#else
  Py_RETURN_FALSE;
#endif
}

PyObject* empty_cpu_cache(PyObject*, PyObject*) {
  return PyLong_FromSize_t(genfast::cpu::OutputCache::instance().empty());
}

PyObject* cpu_cache_bytes(PyObject*, PyObject*) {
  return PyLong_FromSize_t(genfast::cpu::OutputCache::instance().cached_bytes());
}

PyMethodDef methods[] = {
    {"build_info", build_info, METH_NOARGS, "Flags genfast._C was built with."},
    {"empty_cpu_cache", empty_cpu_cache, METH_NOARGS,
     "Return the cached free CPU output blocks to the system; the number of bytes released."},
    {"cpu_cache_bytes", cpu_cache_bytes, METH_NOARGS, "Bytes of free CPU output blocks held for reuse."},
    {"built_with_cuda", built_with_cuda, METH_NOARGS, "Whether the CUDA kernels were compiled in."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", "genfast native kernels (importing registers the ops)",
                      -1, methods};

}  // namespace

// Importing genfast._C loads this library, which runs the TORCH_LIBRARY registrations above.
PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&module); }
