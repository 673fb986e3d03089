// Run-time codes to compile-time kernel parameters: the dtype T and the metric layout (the
// distortion's kind and log-variance layout: rdfast_rowmath.h, beside the terms). A new
// enumerator gets its case here, once, for the CPU and CUDA kernels alike.
#pragma once

#include <stdexcept>
#include <string>
#include <type_traits>

#include "op_args.h"

namespace rdfast {

// fn is a generic lambda taking a T* tag, e.g. [&](auto tag) { run<std::remove_pointer_t<decltype(tag)>>(); }.
template <class Fn>
decltype(auto) dispatch_dtype(int dtype, Fn&& fn) {
  switch (static_cast<DType>(dtype)) {
    case DType::FLOAT32: return fn(static_cast<float*>(nullptr));
    case DType::FLOAT64: return fn(static_cast<double*>(nullptr));
  }
  throw std::invalid_argument("dtype code must be 0 (float32) or 1 (float64), got " + std::to_string(dtype));
}

// fn(std::integral_constant<MetricLayout, layout>{}).
template <class Fn>
decltype(auto) dispatch_metric(int metric, Fn&& fn) {
  switch (static_cast<MetricLayout>(metric)) {
    case MetricLayout::IDENTITY: return fn(std::integral_constant<MetricLayout, MetricLayout::IDENTITY>{});
    case MetricLayout::DIAGONAL: return fn(std::integral_constant<MetricLayout, MetricLayout::DIAGONAL>{});
  }
  throw std::invalid_argument("metric layout code must be 0 or 1, got " + std::to_string(metric));
}

// fn(T* tag, metric layout tag, prior-gradient flag) for a leapfrog op's dtype, metric and
// prior (the standard normal's gradient z is fused; another prior passes its gradient).
template <class Args, class Fn>
void dispatch_leapfrog(int dtype, const Args& a, Fn&& fn) {
  dispatch_dtype(dtype, [&](auto tag) {
    dispatch_metric(a.metric, [&](auto metric) {
      if (a.prior_grad) {
        fn(tag, metric, std::true_type{});
      } else {
        fn(tag, metric, std::false_type{});
      }
    });
  });
}

}  // namespace rdfast
