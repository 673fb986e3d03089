// Philox-4x32-10 counter words on the CPU: the integer core of rdfast.rng (Salmon et al., SC'11).
//
// Counter (c0, c1, c2, c3) = (block, chain, item & 0xFFFFFFFF, step · 4 + stream), key =
// the seed's two 32-bit halves. Each round: (hi0, lo0) = M0 · c0, (hi1, lo1) = M1 · c2 as
// 64-bit products, c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0), then the key is bumped.
// The floating-point transforms stay in rdfast.rng, so results are bit-identical.
#include <cstdint>

#include "cpu_parallel.h"
#include "cpu_philox.h"

namespace rdfast::cpu {

void philox_words(const PhiloxArgs& a) {
  constexpr uint64_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  const int64_t M = a.n_chains, NB = a.n_blocks, count = a.n_items * M * NB;
  const uint32_t key0 = static_cast<uint32_t>(a.seed), key1 = static_cast<uint32_t>(a.seed >> 32);
  int64_t* out[4] = {a.words, a.words + count, a.words + 2 * count, a.words + 3 * count};

#pragma omp parallel for schedule(static) if (count >= kParallelMinElements)
  for (int64_t i = 0; i < count; ++i) {
    uint32_t c0 = static_cast<uint32_t>(i % NB), c1 = static_cast<uint32_t>((i / NB) % M);
    uint32_t c2 = static_cast<uint32_t>(a.items[i / (NB * M)]), c3 = a.c3;
    uint32_t k0 = key0, k1 = key1;
    for (int round = 0; round < 10; ++round) {
      const uint64_t p0 = kM0 * c0, p1 = kM1 * c2;
      const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
      const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
      c0 = hi1 ^ c1 ^ k0;
      c1 = lo1;
      c2 = hi0 ^ c3 ^ k1;
      c3 = lo0;
      k0 += kW0;
      k1 += kW1;
    }
    out[0][i] = c0;
    out[1][i] = c1;
    out[2][i] = c2;
    out[3][i] = c3;
  }
}

}  // namespace rdfast::cpu
