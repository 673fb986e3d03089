// Philox-4x32-10 counter words on the CPU, one counter per iteration (csrc/philox.h).
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

}  // namespace rdfast::cpu
