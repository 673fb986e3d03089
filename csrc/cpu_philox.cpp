// Philox-4x32-10 counter words and uniforms on the CPU, one counter per iteration (csrc/philox.h).
#include <cstdint>

#include "cpu_parallel.h"
#include "cpu_philox.h"

namespace rdfast::cpu {

void philox_words(const PhiloxArgs& a) {
  const int64_t count = a.n_items * a.n_chains * a.n_blocks;
  const uint32_t c3 = philox_c3(a);
#pragma omp parallel for schedule(static) if (count >= kParallelMinElements)
  for (int64_t i = 0; i < count; ++i) philox_element(a, c3, i, count);
}

void philox_uniforms(const UniformArgs& a) {
  const int64_t M = a.n_chains, B = a.n_items * M;
  const uint32_t c3 = philox_c3(a);
  const uint32_t k0 = static_cast<uint32_t>(a.seed), k1 = static_cast<uint32_t>(a.seed >> 32);
#pragma omp parallel for schedule(static) if (B >= kParallelMinElements)
  for (int64_t r = 0; r < B; ++r) {
    uint32_t w0 = 0, w1 = static_cast<uint32_t>(r % M), w2 = static_cast<uint32_t>(a.items[r / M]), w3 = c3;
    philox4x32_10(w0, w1, w2, w3, k0, k1);
    a.first[r] = unit_53(w0, w1);
    if (a.second) a.second[r] = unit_53(w2, w3);
  }
}

}  // namespace rdfast::cpu
