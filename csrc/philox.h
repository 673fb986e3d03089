// Philox-4x32-10 (Salmon et al., SC'11), the integer core of rdfast.sampling.rng, for the CPU
// and CUDA kernels alike.
//
// Counter (c0, c1, c2, c3) = (block, chain, item & 0xFFFFFFFF, step · 4 + stream), key =
// the seed's two 32-bit halves. Each round: (hi0, lo0) = M0 · c0, (hi1, lo1) = M1 · c2 as
// 64-bit products, c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0), then the key is bumped.
// The words are bit-identical everywhere; their floating-point transforms are rdfast.sampling.rng's
// torch ops, except the CPU normals kernel's Box–Muller (cpu_normal_kernels.h), within 4e-15.
#pragma once

#include <cstdint>

#include "op_args.h"

namespace rdfast {

#define RDFAST_PHILOX_KEY_ARGS(F) \
  F(uint64_t, seed)               /* key: low and high 32 bits */ \
  F(const int64_t*, items)        /* [N] global item indices (counter word 2: their low 32 bits) */ \
  F(int64_t, n_items)             /* N */ \
  F(int64_t, n_chains)            /* M (counter word 1 runs over chains) */ \
  F(int64_t, n_blocks)            /* counter word 0 runs over 0 .. n_blocks − 1 */ \
  F(Scalar<int64_t>, step)        /* counter word 3 is step · 4 + stream (low 32 bits) */ \
  F(int, stream)                  /* 0 .. 3 */

#define RDFAST_PHILOX_ARGS(F) \
  RDFAST_PHILOX_KEY_ARGS(F) \
  F(int64_t*, words)              /* [4, N, M, n_blocks] out: the four uint32 words as int64 */

// Standard normals of the first dim of the 4·n_blocks Box–Muller values per row (CPU only).
#define RDFAST_NORMAL_ARGS(F) \
  RDFAST_PHILOX_KEY_ARGS(F) \
  F(int64_t, dim)                 /* K ≤ 4 · n_blocks */ \
  F(void*, out)                   /* [N·M, K] T out */

// Uniforms of counter block 0 (n_blocks is 1) per row, from words (0, 1) and (2, 3) (CPU only).
#define RDFAST_UNIFORM_ARGS(F) \
  RDFAST_PHILOX_KEY_ARGS(F) \
  F(double*, first)               /* [N·M] out: from words 0 and 1 */ \
  F(double*, second)              /* [N·M] out, optional: from words 2 and 3 */

struct PhiloxArgs { RDFAST_PHILOX_ARGS(RDFAST_FIELD) };
struct NormalArgs { RDFAST_NORMAL_ARGS(RDFAST_FIELD) };
struct UniformArgs { RDFAST_UNIFORM_ARGS(RDFAST_FIELD) };

// A uint32 word -> (w + ½)·2⁻³² in (0, 1), exact in double, as rdfast.sampling.rng._unit_open.
RDFAST_HD double unit_open(uint32_t w) { return (static_cast<double>(w) + 0.5) * (1.0 / 4294967296.0); }

// Two uint32 words -> a uniform in (0, 1) with 53 random bits (27 + 26), exactly as
// rdfast.sampling.rng._unit_53: every step is exact in double.
RDFAST_HD double unit_53(uint32_t high, uint32_t low) {
  const uint64_t bits = (static_cast<uint64_t>(high >> 5) << 26) + (low >> 6);
  return (static_cast<double>(bits) + 0.5) * (1.0 / 9007199254740992.0);
}

// Philox-4x32-10 of counter (c0, c1, c2, c3) under key (k0, k1), in place.
RDFAST_HD void philox4x32_10(uint32_t& c0, uint32_t& c1, uint32_t& c2, uint32_t& c3, uint32_t k0, uint32_t k1) {
  constexpr uint64_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
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
}

// The four words of counter element i of [N, M, n_blocks] (c3 already computed), into out[4].
RDFAST_HD void philox_element(const PhiloxArgs& a, uint32_t c3, int64_t i, int64_t count) {
  const int64_t M = a.n_chains, NB = a.n_blocks;
  uint32_t c0 = static_cast<uint32_t>(i % NB), c1 = static_cast<uint32_t>((i / NB) % M);
  uint32_t c2 = static_cast<uint32_t>(a.items[i / (NB * M)]);
  philox4x32_10(c0, c1, c2, c3, static_cast<uint32_t>(a.seed), static_cast<uint32_t>(a.seed >> 32));
  a.words[i] = c0;
  a.words[i + count] = c1;
  a.words[i + 2 * count] = c2;
  a.words[i + 3 * count] = c3;
}

// Counter word 3 of a launch: step · 4 + stream, modulo 2^32.
template <class Args>
RDFAST_HD uint32_t philox_c3(const Args& a) {
  return static_cast<uint32_t>(static_cast<uint64_t>(a.step.get()) * 4u + static_cast<uint64_t>(a.stream));
}

}  // namespace rdfast
