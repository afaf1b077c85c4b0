// Tabular reinforcement learning engines: the counter-based random numbers they share with their
// Python twin (genfast/reference/rl.py), which must stay word for word the same function.
#pragma once

#include <cstdint>

namespace genfast::rl {

// Philox4x64-10 (Salmon et al., SC'11; numpy.random.Philox): four 64-bit words from a counter of four
// words and a key of two. The engines key it with (seed, stream) and count (game, ply, 0, 0).
struct Words {
  uint64_t w[4];
};

constexpr uint64_t kPhiloxM0 = 0xD2E7470EE14C6C93ULL, kPhiloxM1 = 0xCA5A826395121157ULL;
constexpr uint64_t kPhiloxW0 = 0x9E3779B97F4A7C15ULL, kPhiloxW1 = 0xBB67AE8584CAA73BULL;
constexpr uint64_t kTicTacToeStream = 1, kFlippersStream = 2;

inline Words philox4x64(uint64_t c0, uint64_t c1, uint64_t c2, uint64_t c3, uint64_t k0, uint64_t k1) {
  for (int r = 0; r < 10; ++r) {
    if (r) {
      k0 += kPhiloxW0;
      k1 += kPhiloxW1;
    }
    const unsigned __int128 p0 = static_cast<unsigned __int128>(kPhiloxM0) * c0;
    const unsigned __int128 p1 = static_cast<unsigned __int128>(kPhiloxM1) * c2;
    const uint64_t n0 = static_cast<uint64_t>(p1 >> 64) ^ c1 ^ k0;
    const uint64_t n2 = static_cast<uint64_t>(p0 >> 64) ^ c3 ^ k1;
    c1 = static_cast<uint64_t>(p1);
    c3 = static_cast<uint64_t>(p0);
    c0 = n0;
    c2 = n2;
  }
  return {{c0, c1, c2, c3}};
}

inline Words draws(uint64_t seed, uint64_t stream, int64_t game, int64_t ply) {
  return philox4x64(static_cast<uint64_t>(game), static_cast<uint64_t>(ply), 0, 0, seed, stream);
}

// a double in [0, 1) from the top 53 bits
inline double uniform(uint64_t r) { return static_cast<double>(r >> 11) * 0x1.0p-53; }

// an integer in [0, n) from the top 32 bits
inline int below(uint64_t r, int n) { return static_cast<int>(((r >> 32) * static_cast<uint64_t>(n)) >> 32); }

}  // namespace genfast::rl
