// Calls a kernel template with T = float or double chosen by a rdfast::DType code.
#pragma once

#include <stdexcept>
#include <string>

#include "op_args.h"

namespace rdfast {

// fn is a generic lambda taking a T* tag, e.g. [&](auto tag) { run<decltype(*tag)>(); }.
template <class Fn>
void dispatch_dtype(int dtype, Fn&& fn) {
  if (dtype == kFloat32) {
    fn(static_cast<float*>(nullptr));
  } else if (dtype == kFloat64) {
    fn(static_cast<double*>(nullptr));
  } else {
    throw std::invalid_argument("dtype code must be 0 (float32) or 1 (float64), got " + std::to_string(dtype));
  }
}

}  // namespace rdfast
