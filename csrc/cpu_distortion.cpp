// CPU kernel of the distortion op: d [B] and ∂d/∂x̂ [B, P] (and ∂d/∂v) in one launch, rows in
// parallel; the kernels are compiled per instruction set (cpu_isa.h).
#include <cstdint>
#include <type_traits>
#include <vector>

#include "cpu_isa.h"
#include "cpu_ops.h"
#include "cpu_parallel.h"
#include "dispatch.h"
#include "rdfast_rowmath.h"

namespace rdfast::cpu {

#define RDFAST_ISA_KERNELS "cpu_distortion_kernels.h"
#include "cpu_isa_kernels.h"
#undef RDFAST_ISA_KERNELS

void distortion(int dtype, const DistortionArgs& a) { RDFAST_ISA_CALL(distortion, dtype, a) }

}  // namespace rdfast::cpu
