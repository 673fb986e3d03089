// Philox-4x32-10 counter words on the CPU: the integer core of rdfast.rng (rdfast/cpu_kernels.py).
#pragma once

#include <cstdint>

namespace rdfast::cpu {

struct PhiloxArgs {
  uint64_t seed;         // key: low and high 32 bits
  const int64_t* items;  // [N] global item indices (counter word 2: their low 32 bits)
  int64_t n_items;       // N
  int64_t n_chains;      // M (counter word 1 runs over chains)
  int64_t n_blocks;      // counter word 0 runs over 0 .. n_blocks − 1
  uint32_t c3;           // counter word 3: step · 4 + stream
  int64_t* words;        // [4, N, M, n_blocks] out: the four uint32 words as int64
};

void philox_words(const PhiloxArgs& a);

}  // namespace rdfast::cpu
