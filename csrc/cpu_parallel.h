// OpenMP threshold shared by the CPU kernels: below it a parallel region costs more than it saves.
#pragma once

#include <cstdint>

namespace rdfast::cpu {

constexpr int64_t kParallelMinElements = int64_t{1} << 18;

}  // namespace rdfast::cpu
