// CPU kernels of the MLP fast path (cpu_mlp.h), compiled for AVX-512, AVX2 + FMA and the
// baseline instruction set; the best one the CPU supports is picked at run time.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "cpu_mlp.h"
#include "cpu_parallel.h"
#include "dispatch.h"
#include "rdfast_rowmath.h"

namespace rdfast::cpu {

// Elements from which a kernel with exp per element runs in parallel: it costs about ten times
// a memory-bound element (kParallelMinElements), so threads pay off on smaller arrays.
constexpr int64_t kParallelMinActivations = int64_t{1} << 15;

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RDFAST_MLP_ISAS 1
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx2,fma")
namespace avx512 {
#include "cpu_mlp_kernels.h"
}  // namespace avx512
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
#include "cpu_mlp_kernels.h"
}  // namespace avx2
#pragma GCC pop_options
#endif

namespace baseline {
#include "cpu_mlp_kernels.h"
}  // namespace baseline

namespace {

enum Isa { kBaseline, kAvx2, kAvx512 };

Isa best_isa() {
#ifdef RDFAST_MLP_ISAS
  static const Isa isa = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                                 __builtin_cpu_supports("avx512vl")
                             ? kAvx512
                             : (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? kAvx2 : kBaseline);
  return isa;
#else
  return kBaseline;
#endif
}

}  // namespace

void mlp_bias_act(int dtype, const BiasActArgs& a) {
  switch (best_isa()) {
#ifdef RDFAST_MLP_ISAS
    case kAvx512: return avx512::bias_act(dtype, a);
    case kAvx2: return avx2::bias_act(dtype, a);
#endif
    default: return baseline::bias_act(dtype, a);
  }
}

void mlp_output(int dtype, const MlpOutputArgs& a) {
  switch (best_isa()) {
#ifdef RDFAST_MLP_ISAS
    case kAvx512: return avx512::output(dtype, a);
    case kAvx2: return avx2::output(dtype, a);
#endif
    default: return baseline::output(dtype, a);
  }
}

}  // namespace rdfast::cpu
