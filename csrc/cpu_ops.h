// CPU launchers of the fused ops (OpenMP over rows), one per entry of op_args.h's op lists;
// dtype is rdfast::DType.
#pragma once

#include "op_args.h"

namespace rdfast::cpu {

#define RDFAST_DECLARE_TYPED(op, Args) void op(int dtype, const Args& a);
#define RDFAST_DECLARE_UNTYPED(op, Args) void op(const Args& a);
RDFAST_TYPED_OPS(RDFAST_DECLARE_TYPED)
RDFAST_UNTYPED_OPS(RDFAST_DECLARE_UNTYPED)
#undef RDFAST_DECLARE_TYPED
#undef RDFAST_DECLARE_UNTYPED

}  // namespace rdfast::cpu
