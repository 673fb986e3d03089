// CPU launchers of the six fused ops (OpenMP over rows); dtype is rdfast::DType.
#pragma once

#include "op_args.h"

namespace rdfast::cpu {

void distortion(int dtype, const DistortionArgs& a);
void leapfrog_begin(int dtype, const LeapfrogBeginArgs& a);
void leapfrog_step(int dtype, const LeapfrogArgs& a);
void leapfrog_end(int dtype, const LeapfrogArgs& a);
void metropolis(int dtype, const MetropolisArgs& a);
void record(const RecordArgs& a);

}  // namespace rdfast::cpu
