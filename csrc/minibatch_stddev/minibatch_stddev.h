// Minibatch standard deviation (Karras et al. 2018; StyleGAN2's MinibatchStdLayer): checks and the
// index geometry shared by the CPU and CUDA kernels.
//
// x: (N, C, H, W). G = min(group_size, N) samples per group, n = N / G groups; sample i is in group
// i mod n (x.reshape(G, n, ...)). C splits into F = num_channels groups of c = C / F channels. For
// group m and channel group f, over the K = c*H*W elements j of that slab:
//   mu_j = mean_g x[g, m, f, j],  s_j = sqrt(mean_g (x - mu_j)^2 + eps),  stat[m, f] = mean_j s_j
// and stat[m, f] becomes channel C + f, constant over H x W, of every sample of group m.
// Backward: dx = dy[:, :C] + gstat[m, f] * (x - mu_j) / (K * G * s_j), gstat[m, f] = sum over the G
// samples of group m and over H x W of dy[:, C + f].
// The output (and dy) is (N, C + F, H, W) in x's layout: its first C channels sit at the same offsets
// within a pixel or plane as x's, so one walk over a slab addresses x, out and dy alike.
#pragma once

#include <ATen/core/Tensor.h>

#include "common/checks.h"

namespace genfast::minibatch_stddev {

struct Geometry {
  int64_t N, C, HW, G, n, F, c;
  // strides of x (and of dy's first C channels) in elements; for a (m, f) slab the elements are
  // visited as outer x inner with inner the unit-stride dimension
  int64_t sN, outer, inner, s_outer, f_offset;
  // out and dy: sample stride, the stride between pixels of the walk (0 for NCHW, where a slab is
  // one run), and where channel C + f, pixel p sits: f_chan * (C + f) + p_pix * p
  int64_t oN, o_outer, o_chan, o_pix;
};

// channels_last iff x is laid out that way (and not also plain contiguous): the kernels then read
// and write NHWC in place; any other layout is made contiguous first.
inline at::MemoryFormat layout_of(const at::Tensor& x) {
  return (!x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast)) ? at::MemoryFormat::ChannelsLast
                                                                                  : at::MemoryFormat::Contiguous;
}

inline Geometry check_and_measure(const at::Tensor& x, int64_t group_size, int64_t num_channels, double eps,
                                  const char* op) {
  check_dim(x, 4, op, "x", "(N, C, H, W)");
  check_floating(x, op, "x");
  TORCH_CHECK(group_size >= 1, "genfast.", op, ": expected group_size >= 1, got ", group_size);
  TORCH_CHECK(num_channels >= 1, "genfast.", op, ": expected num_channels >= 1, got ", num_channels);
  TORCH_CHECK(eps >= 0, "genfast.", op, ": expected eps >= 0, got ", eps);
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  TORCH_CHECK(C % num_channels == 0, "genfast.", op, ": expected the channel count C = ", C,
              " of x to be divisible by num_channels = ", num_channels);
  const int64_t G = std::min(group_size, N);
  TORCH_CHECK(N == 0 || N % G == 0, "genfast.", op, ": expected the batch size N = ", N,
              " of x to be divisible by the group size min(group_size, N) = ", G);
  Geometry g{};
  g.N = N;
  g.C = C;
  g.HW = H * W;
  g.G = G;
  g.n = G > 0 ? N / G : 0;
  g.F = num_channels;
  g.c = C / num_channels;
  if (layout_of(x) == at::MemoryFormat::ChannelsLast) {
    g.sN = C * g.HW;
    g.outer = g.HW;
    g.s_outer = C;
    g.inner = g.c;
    g.f_offset = g.c;  // channel group f starts f*c elements into a pixel
    g.o_outer = C + g.F;
    g.o_chan = 1;
    g.o_pix = C + g.F;
  } else {
    // a channel group of an NCHW sample is one contiguous run of c*H*W elements
    g.sN = C * g.HW;
    g.outer = 1;
    g.s_outer = 0;
    g.inner = g.c * g.HW;
    g.f_offset = g.c * g.HW;
    g.o_outer = 0;
    g.o_chan = g.HW;
    g.o_pix = 1;
  }
  g.oN = (C + g.F) * g.HW;
  return g;
}

inline void check_grad_out(const at::Tensor& grad_out, const at::Tensor& x, const Geometry& g) {
  TORCH_CHECK(grad_out.dim() == 4 && grad_out.size(0) == g.N && grad_out.size(1) == g.C + g.F &&
                  grad_out.size(2) == x.size(2) && grad_out.size(3) == x.size(3),
              "genfast.minibatch_stddev_backward: expected grad_out of shape (", g.N, ", ", g.C + g.F, ", ",
              x.size(2), ", ", x.size(3), "), got ", grad_out.sizes());
  check_same_device(x, "x", grad_out, "grad_out", "minibatch_stddev_backward");
}

}  // namespace genfast::minibatch_stddev
