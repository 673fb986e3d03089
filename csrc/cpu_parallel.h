// OpenMP thresholds shared by the CPU kernels, counted in elements of a row-parallel loop: below
// them a parallel region (waking and joining the threads: about a microsecond on warm threads)
// costs more than it saves. A memory-bound element (a load, a store, a few flops) takes about
// 0.3 ns on one core; an element with an exp, log or tanh a few times that. Both thresholds are
// reached at a few hundred rows: 200 rows of K = 50 latents, 3 rows of P = 784 pixels.
#pragma once

#include <cstdint>

namespace rdfast::cpu {

constexpr int64_t kParallelMinElements = int64_t{1} << 13;        // 8,192: about 2.5 µs on one core
constexpr int64_t kParallelMinTranscendental = int64_t{1} << 11;  // 2,048: exp, log, tanh per element

}  // namespace rdfast::cpu
