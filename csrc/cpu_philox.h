// Philox-4x32-10 counter words and the uniforms and standard normals made from them on the CPU
// (rdfast/backends/native.py); the maths is csrc/philox.h and csrc/cpu_normal_kernels.h.
#pragma once

#include "philox.h"

namespace rdfast::cpu {

void philox_words(const PhiloxArgs& a);
void philox_normals(int dtype, const NormalArgs& a);
void philox_uniforms(const UniformArgs& a);

}  // namespace rdfast::cpu
