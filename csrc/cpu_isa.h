// Kernels compiled once per x86 instruction set from one header, the best one for this CPU
// picked at run time. A kernel source defines RDFAST_ISA_KERNELS as its kernel header's name
// and includes cpu_isa_kernels.h, which puts the header's functions in namespaces avx512, avx2
// (GCC on x86-64 only) and baseline; RDFAST_ISA_CALL(fn, args...) returns the best one's call.
#pragma once

namespace rdfast::cpu {

enum class Isa { kBaseline, kAvx2, kAvx512 };

inline Isa best_isa() {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  static const Isa isa = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                                 __builtin_cpu_supports("avx512vl")
                             ? Isa::kAvx512
                             : (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? Isa::kAvx2
                                                                                                 : Isa::kBaseline);
  return isa;
#else
  return Isa::kBaseline;
#endif
}

}  // namespace rdfast::cpu

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RDFAST_ISA_CALL(fn, ...)                                       \
  switch (best_isa()) {                                                \
    case Isa::kAvx512: return avx512::fn(__VA_ARGS__);                 \
    case Isa::kAvx2: return avx2::fn(__VA_ARGS__);                     \
    default: return baseline::fn(__VA_ARGS__);                         \
  }
#else
#define RDFAST_ISA_CALL(fn, ...) return baseline::fn(__VA_ARGS__);
#endif
