// CPU kernel of the distortion op: d [B] and ∂d/∂x̂ [B, P] (and ∂d/∂v) in one pass per row.
#include "cpu_ops.h"
#include "cpu_parallel.h"
#include "dispatch.h"
#include "rdfast_rowmath.h"

namespace rdfast::cpu {
namespace {

template <class T, Kind kKind, LogvarLayout kLogvar>
void distortion_rows(const DistortionArgs& a) {
  const T* x = static_cast<const T*>(a.x);          // [N, P]
  const T* xhat = static_cast<const T*>(a.xhat);    // [B, P]
  const T* logvar = static_cast<const T*>(a.logvar);
  T* grad = static_cast<T*>(a.grad_xhat);           // [B, P]
  T* grad_v = static_cast<T*>(a.grad_logvar);       // [B, P] (per-row logvar)
  const int64_t M = a.n_chains, P = a.size, B = a.n_items * M;
  constexpr bool kPerRow = kLogvar == LogvarLayout::PER_ROW;

#pragma omp parallel for schedule(static) if (B * P >= kParallelMinElements)
  for (int64_t r = 0; r < B; ++r) {
    const T* xr = x + (r / M) * P;
    const T* hr = xhat + r * P;
    const T* vr = kPerRow ? logvar + r * P : logvar;
    T* gr = grad + r * P;
    T* gvr = kPerRow ? grad_v + r * P : nullptr;
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < P; ++j) sum += distortion_element<T, kKind, kLogvar>(xr, hr, vr, gr, gvr, j);
    a.d[r] = distortion_row<kKind>(sum, P);
  }
}

}  // namespace

void distortion(int dtype, const DistortionArgs& a) {
  dispatch_dtype(dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    dispatch_distortion(a.kind, a.logvar_layout, [&](auto d) { distortion_rows<T, d.kind, d.logvar>(a); });
  });
}

}  // namespace rdfast::cpu
