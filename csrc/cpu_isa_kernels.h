// The kernel header named by RDFAST_ISA_KERNELS, included once per instruction set (cpu_isa.h);
// included by a kernel source inside namespace rdfast::cpu, hence no include guard.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx2,fma")
namespace avx512 {
#include RDFAST_ISA_KERNELS
}  // namespace avx512
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
#include RDFAST_ISA_KERNELS
}  // namespace avx2
#pragma GCC pop_options
#endif

namespace baseline {
#include RDFAST_ISA_KERNELS
}  // namespace baseline
