// Standard normals from the keyed Philox streams on the CPU (cpu_philox.h), compiled per
// instruction set (cpu_isa.h); the maths is csrc/cpu_normal_kernels.h.
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "cpu_isa.h"
#include "cpu_parallel.h"
#include "cpu_philox.h"
#include "dispatch.h"
#include "vecmath_f64.h"

namespace rdfast::cpu {

#define RDFAST_ISA_KERNELS "cpu_normal_kernels.h"
#include "cpu_isa_kernels.h"
#undef RDFAST_ISA_KERNELS

void philox_normals(int dtype, const NormalArgs& a) { RDFAST_ISA_CALL(normals, dtype, a) }

}  // namespace rdfast::cpu
