// CUDA launchers of the fused ops, one per entry of op_args.h's op lists: device pointers,
// enqueued on a cudaStream_t given as an integer (0: the legacy default stream). No CUDA
// header is needed to call them.
#pragma once

#include <cstdint>
#include <string>

#include "op_args.h"
#include "philox.h"

namespace rdfast::cuda {

#define RDFAST_DECLARE_TYPED(op, Args) void op(int dtype, const Args& a, uintptr_t stream);
#define RDFAST_DECLARE_UNTYPED(op, Args) void op(const Args& a, uintptr_t stream);
RDFAST_TYPED_OPS(RDFAST_DECLARE_TYPED)
RDFAST_UNTYPED_OPS(RDFAST_DECLARE_UNTYPED)
#undef RDFAST_DECLARE_TYPED
#undef RDFAST_DECLARE_UNTYPED
void philox_words(const PhiloxArgs& a, uintptr_t stream);  // rdfast.sampling.rng's words, keyed by step

int device_count();          // 0 without a driver or device, never an error
std::string device_status();  // "" when a device is usable, else the runtime's reason
int driver_version();        // the driver's CUDA version as 1000 * major + 10 * minor; 0 without a driver

}  // namespace rdfast::cuda
