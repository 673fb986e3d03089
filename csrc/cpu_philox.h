// Philox-4x32-10 counter words on the CPU (rdfast/backends/native.py); the maths is csrc/philox.h.
#pragma once

#include "philox.h"

namespace rdfast::cpu {

void philox_words(const PhiloxArgs& a);

}  // namespace rdfast::cpu
