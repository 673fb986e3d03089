// CPU kernels of leapfrog_begin, leapfrog_step and leapfrog_end (one row per iteration).
#include <type_traits>

#include "cpu_ops.h"
#include "cpu_parallel.h"
#include "dispatch.h"
#include "rdfast_rowmath.h"

namespace rdfast::cpu {
namespace {

// logw −= Δβ·d0;  h0 = U(z0) + ½‖p‖²;  p −= ½ε∇U(z0);  z = z0 + εp.
template <class T, bool kPriorGrad>
void begin_rows(const LeapfrogBeginArgs& a) {
  const T* z0 = static_cast<const T*>(a.z0);
  const T* g0 = static_cast<const T*>(a.g0);
  const T* pg = static_cast<const T*>(a.prior_grad);
  T* p = static_cast<T*>(a.p);
  T* z = static_cast<T*>(a.z);
  const int64_t B = a.rows, K = a.dim;
  const double beta64 = a.beta.get(), dbeta = a.dbeta.get();
  const T beta = static_cast<T>(beta64);

#pragma omp parallel for schedule(static) if (B * K >= kParallelMinElements)
  for (int64_t r = 0; r < B; ++r) {
    const T eps = static_cast<T>(a.eps[r]);
    const T half = T(0.5) * eps;
    const int64_t o = r * K;
    double sum_sq_z = 0.0, sum_sq_p = 0.0;
#pragma omp simd reduction(+ : sum_sq_z, sum_sq_p)
    for (int64_t j = 0; j < K; ++j) {
      const T zj = z0[o + j], pj = p[o + j];
      sum_sq_z += static_cast<double>(zj) * static_cast<double>(zj);
      sum_sq_p += static_cast<double>(pj) * static_cast<double>(pj);
      const T pn = kick(pj, kPriorGrad ? pg[o + j] : zj, g0[o + j], beta, half);
      p[o + j] = pn;
      z[o + j] = zj + eps * pn;
    }
    const double energy = a.prior_energy ? a.prior_energy[r] : 0.5 * sum_sq_z;
    a.logw[r] -= dbeta * a.d0[r];
    a.h0[r] = hamiltonian(energy, beta64, a.d0[r], sum_sq_p);
  }
}

// p −= step·∇U(z), then (full step only) z += εp; step = ε or ½ε.
template <class T, bool kPriorGrad, bool kFull>
void kick_rows(const LeapfrogArgs& a) {
  T* z = static_cast<T*>(a.z);
  const T* g = static_cast<const T*>(a.g);
  const T* pg = static_cast<const T*>(a.prior_grad);
  T* p = static_cast<T*>(a.p);
  const int64_t B = a.rows, K = a.dim;
  const T beta = static_cast<T>(a.beta.get());

#pragma omp parallel for schedule(static) if (B * K >= kParallelMinElements)
  for (int64_t r = 0; r < B; ++r) {
    const T eps = static_cast<T>(a.eps[r]);
    const T step = kFull ? eps : T(0.5) * eps;
    const int64_t o = r * K;
#pragma omp simd
    for (int64_t j = 0; j < K; ++j) {
      const T zj = z[o + j];
      const T pn = kick(p[o + j], kPriorGrad ? pg[o + j] : zj, g[o + j], beta, step);
      p[o + j] = pn;
      if constexpr (kFull) z[o + j] = zj + eps * pn;
    }
  }
}

template <class T, bool kFull>
void kick_typed(const LeapfrogArgs& a) {
  if (a.prior_grad) {
    kick_rows<T, true, kFull>(a);
  } else {
    kick_rows<T, false, kFull>(a);
  }
}

}  // namespace

void leapfrog_begin(int dtype, const LeapfrogBeginArgs& a) {
  dispatch_dtype(dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    if (a.prior_grad) {
      begin_rows<T, true>(a);
    } else {
      begin_rows<T, false>(a);
    }
  });
}

void leapfrog_step(int dtype, const LeapfrogArgs& a) {
  dispatch_dtype(dtype, [&](auto tag) { kick_typed<std::remove_pointer_t<decltype(tag)>, true>(a); });
}

void leapfrog_end(int dtype, const LeapfrogArgs& a) {
  dispatch_dtype(dtype, [&](auto tag) { kick_typed<std::remove_pointer_t<decltype(tag)>, false>(a); });
}

}  // namespace rdfast::cpu
