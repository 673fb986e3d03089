// CPU kernels of the MLP fast path (cpu_mlp.h), compiled per instruction set (cpu_isa.h).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "cpu_isa.h"
#include "cpu_mlp.h"
#include "cpu_parallel.h"
#include "dispatch.h"
#include "rdfast_rowmath.h"

namespace rdfast::cpu {

#define RDFAST_ISA_KERNELS "cpu_mlp_kernels.h"
#include "cpu_isa_kernels.h"
#undef RDFAST_ISA_KERNELS

void mlp_bias_act(int dtype, const BiasActArgs& a) { RDFAST_ISA_CALL(bias_act, dtype, a) }

void mlp_act_backward(int dtype, const ActBackwardArgs& a) { RDFAST_ISA_CALL(act_backward, dtype, a) }

void mlp_output(int dtype, const MlpOutputArgs& a) { RDFAST_ISA_CALL(output, dtype, a) }

}  // namespace rdfast::cpu
