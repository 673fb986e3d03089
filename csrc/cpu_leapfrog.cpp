// CPU kernels of leapfrog_begin, leapfrog_step and leapfrog_end (one row per iteration).
#include "cpu_ops.h"
#include "cpu_parallel.h"
#include "dispatch.h"
#include "rdfast_rowmath.h"

namespace rdfast::cpu {
namespace {

// logw −= Δβ·d0;  h0 = E(z0) + β d0 + K(p);  p −= ½ε∇U(z0);  z = z0 + ε M⁻¹p.
template <class T, MetricLayout kMetric, bool kPriorGrad>
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
    const RowMetric<T, kMetric> metric(a, r);
    const T eps = static_cast<T>(a.eps[r]);
    const T half = T(0.5) * eps;
    const int64_t o = r * K;
    double sum_sq_z = 0.0, kinetic = 0.0;
#pragma omp simd reduction(+ : sum_sq_z, kinetic)
    for (int64_t j = 0; j < K; ++j) {
      const T zj = z0[o + j], pj = p[o + j];
      sum_sq_z += static_cast<double>(zj) * static_cast<double>(zj);
      kinetic += metric.kinetic_term(j, pj);
      const T pn = kick(pj, kPriorGrad ? pg[o + j] : zj, g0[o + j], beta, half);
      p[o + j] = pn;
      z[o + j] = zj + eps * metric.velocity(j, pn);
    }
    const double energy = a.prior_energy ? a.prior_energy[r] : 0.5 * sum_sq_z;
    a.logw[r] -= dbeta * a.d0[r];
    a.h0[r] = hamiltonian(energy, beta64, a.d0[r], kinetic);
  }
}

// p −= step·∇U(z), then (full step only) z += ε M⁻¹p; step = ε or ½ε.
template <class T, MetricLayout kMetric, bool kPriorGrad, bool kFull>
void kick_rows(const LeapfrogArgs& a) {
  T* z = static_cast<T*>(a.z);
  const T* g = static_cast<const T*>(a.g);
  const T* pg = static_cast<const T*>(a.prior_grad);
  T* p = static_cast<T*>(a.p);
  const int64_t B = a.rows, K = a.dim;
  const T beta = static_cast<T>(a.beta.get());

#pragma omp parallel for schedule(static) if (B * K >= kParallelMinElements)
  for (int64_t r = 0; r < B; ++r) {
    const RowMetric<T, kMetric> metric(a, r);
    const T eps = static_cast<T>(a.eps[r]);
    const T step = kFull ? eps : T(0.5) * eps;
    const int64_t o = r * K;
#pragma omp simd
    for (int64_t j = 0; j < K; ++j) {
      const T zj = z[o + j];
      const T pn = kick(p[o + j], kPriorGrad ? pg[o + j] : zj, g[o + j], beta, step);
      p[o + j] = pn;
      if constexpr (kFull) z[o + j] = zj + eps * metric.velocity(j, pn);
    }
  }
}

}  // namespace

void leapfrog_begin(int dtype, const LeapfrogBeginArgs& a) {
  dispatch_leapfrog(dtype, a, [&](auto tag, auto metric, auto prior) {
    begin_rows<std::remove_pointer_t<decltype(tag)>, metric.value, prior.value>(a);
  });
}

void leapfrog_step(int dtype, const LeapfrogArgs& a) {
  dispatch_leapfrog(dtype, a, [&](auto tag, auto metric, auto prior) {
    kick_rows<std::remove_pointer_t<decltype(tag)>, metric.value, prior.value, true>(a);
  });
}

void leapfrog_end(int dtype, const LeapfrogArgs& a) {
  dispatch_leapfrog(dtype, a, [&](auto tag, auto metric, auto prior) {
    kick_rows<std::remove_pointer_t<decltype(tag)>, metric.value, prior.value, false>(a);
  });
}

}  // namespace rdfast::cpu
