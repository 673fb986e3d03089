// CUDA launchers of the six fused ops: device pointers, enqueued on a cudaStream_t given as
// an integer (0: the legacy default stream). No CUDA header is needed to call them.
#pragma once

#include <cstdint>
#include <string>

#include "op_args.h"
#include "philox.h"

namespace rdfast::cuda {

void distortion(int dtype, const DistortionArgs& a, uintptr_t stream);
void leapfrog_begin(int dtype, const LeapfrogBeginArgs& a, uintptr_t stream);
void leapfrog_step(int dtype, const LeapfrogArgs& a, uintptr_t stream);
void leapfrog_end(int dtype, const LeapfrogArgs& a, uintptr_t stream);
void metropolis(int dtype, const MetropolisArgs& a, uintptr_t stream);
void record(const RecordArgs& a, uintptr_t stream);
void philox_words(const PhiloxArgs& a, uintptr_t stream);  // rdfast.rng's words, keyed by step

int device_count();          // 0 without a driver or device, never an error
std::string device_status();  // "" when a device is usable, else the runtime's reason

}  // namespace rdfast::cuda
