// Run-time codes to compile-time kernel parameters: the dtype T, the distortion (kind and
// log-variance layout) and the metric layout. A new enumerator gets its case here, once, for
// the CPU and CUDA kernels alike.
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

template <Kind kKind, LogvarLayout kLogvar>
struct DistortionTag {
  static constexpr Kind kind = kKind;
  static constexpr LogvarLayout logvar = kLogvar;
};

// fn(DistortionTag<kind, layout>{}) for the pairs the kernels compile: gaussian_nll with every
// log-variance layout, the other kinds without one (their layout code is ignored).
template <class Fn>
decltype(auto) dispatch_distortion(int kind, int logvar_layout, Fn&& fn) {
  switch (static_cast<Kind>(kind)) {
    case Kind::GAUSSIAN_NLL:
      switch (static_cast<LogvarLayout>(logvar_layout)) {
        case LogvarLayout::NONE: return fn(DistortionTag<Kind::GAUSSIAN_NLL, LogvarLayout::NONE>{});
        case LogvarLayout::SCALAR: return fn(DistortionTag<Kind::GAUSSIAN_NLL, LogvarLayout::SCALAR>{});
        case LogvarLayout::PER_PIXEL: return fn(DistortionTag<Kind::GAUSSIAN_NLL, LogvarLayout::PER_PIXEL>{});
        case LogvarLayout::PER_ROW: return fn(DistortionTag<Kind::GAUSSIAN_NLL, LogvarLayout::PER_ROW>{});
      }
      throw std::invalid_argument("logvar_layout code must be 0..3, got " + std::to_string(logvar_layout));
    case Kind::BERNOULLI_NLL: return fn(DistortionTag<Kind::BERNOULLI_NLL, LogvarLayout::NONE>{});
    case Kind::SQUARED_ERROR: return fn(DistortionTag<Kind::SQUARED_ERROR, LogvarLayout::NONE>{});
  }
  throw std::invalid_argument("kind code must be 0..2, got " + std::to_string(kind));
}

// fn(std::integral_constant<MetricLayout, layout>{}).
template <class Fn>
decltype(auto) dispatch_metric(int metric, Fn&& fn) {
  switch (static_cast<MetricLayout>(metric)) {
    case MetricLayout::IDENTITY: return fn(std::integral_constant<MetricLayout, MetricLayout::IDENTITY>{});
  }
  throw std::invalid_argument("metric layout code must be 0, got " + std::to_string(metric));
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
