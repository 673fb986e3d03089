// CPU kernel of the distortion op: d [B] and ∂d/∂x̂ [B, P] (and ∂d/∂v) in one pass per row.
#include <stdexcept>
#include <string>

#include "cpu_ops.h"
#include "cpu_parallel.h"
#include "dispatch.h"
#include "rdfast_rowmath.h"

namespace rdfast::cpu {
namespace {

template <class T, int kKind, int kLogvar>
void distortion_rows(const DistortionArgs& a) {
  const T* x = static_cast<const T*>(a.x);          // [N, P]
  const T* xhat = static_cast<const T*>(a.xhat);    // [B, P]
  const T* logvar = static_cast<const T*>(a.logvar);
  T* grad = static_cast<T*>(a.grad_xhat);           // [B, P]
  T* grad_v = static_cast<T*>(a.grad_logvar);       // [B, P] (per-row logvar)
  const int64_t M = a.n_chains, P = a.size, B = a.n_items * M;

#pragma omp parallel for schedule(static) if (B * P >= kParallelMinElements)
  for (int64_t r = 0; r < B; ++r) {
    const T* xr = x + (r / M) * P;
    const T* hr = xhat + r * P;
    const T* vr = kLogvar == kLogvarPerRow ? logvar + r * P : logvar;
    T* gr = grad + r * P;
    T* gvr = kLogvar == kLogvarPerRow ? grad_v + r * P : nullptr;
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < P; ++j) sum += distortion_element<T, kKind, kLogvar>(xr, hr, vr, gr, gvr, j);
    a.d[r] = distortion_row<kKind>(sum, P);
  }
}

template <class T>
void distortion_typed(const DistortionArgs& a) {
  switch (a.kind) {
    case kGaussianNll:
      switch (a.logvar_mode) {
        case kLogvarNone: return distortion_rows<T, kGaussianNll, kLogvarNone>(a);
        case kLogvarScalar: return distortion_rows<T, kGaussianNll, kLogvarScalar>(a);
        case kLogvarPerPixel: return distortion_rows<T, kGaussianNll, kLogvarPerPixel>(a);
        case kLogvarPerRow: return distortion_rows<T, kGaussianNll, kLogvarPerRow>(a);
        default: throw std::invalid_argument("logvar_mode must be 0..3, got " + std::to_string(a.logvar_mode));
      }
    case kBernoulliNll: return distortion_rows<T, kBernoulliNll, kLogvarNone>(a);
    case kSquaredError: return distortion_rows<T, kSquaredError, kLogvarNone>(a);
    default: throw std::invalid_argument("kind code must be 0..2, got " + std::to_string(a.kind));
  }
}

}  // namespace

void distortion(int dtype, const DistortionArgs& a) {
  dispatch_dtype(dtype, [&](auto tag) { distortion_typed<std::remove_pointer_t<decltype(tag)>>(a); });
}

}  // namespace rdfast::cpu
