// CPU kernel of the Metropolis step: energies, accept, whole-row selection, counters.
#include <cstring>

#include "cpu_ops.h"
#include "cpu_parallel.h"
#include "dispatch.h"
#include "rdfast_rowmath.h"

namespace rdfast::cpu {
namespace {

template <class T, MetricLayout kMetric>
void metropolis_rows(const MetropolisArgs& a) {
  T* z0 = static_cast<T*>(a.z0);
  T* g0 = static_cast<T*>(a.g0);
  const T* z = static_cast<const T*>(a.z);
  const T* g = static_cast<const T*>(a.g);
  const T* p = static_cast<const T*>(a.p);
  const int64_t B = a.rows, K = a.dim;
  const double beta = a.beta.get();

#pragma omp parallel for schedule(static) if (B * K >= kParallelMinElements)
  for (int64_t r = 0; r < B; ++r) {
    const RowMetric<T, kMetric> metric(a, r);
    const int64_t o = r * K;
    double sum_sq_z = 0.0, kinetic = 0.0;
#pragma omp simd reduction(+ : sum_sq_z, kinetic)
    for (int64_t j = 0; j < K; ++j) {
      sum_sq_z += static_cast<double>(z[o + j]) * static_cast<double>(z[o + j]);
      kinetic += metric.kinetic_term(j, p[o + j]);
    }
    const double energy = a.prior_energy ? a.prior_energy[r] : 0.5 * sum_sq_z;
    const double h1 = hamiltonian(energy, beta, a.d[r], kinetic);
    const bool accepted = accepts(a.h0[r], h1, a.u[r]);
    if (accepted) {
      std::memcpy(z0 + o, z + o, static_cast<size_t>(K) * sizeof(T));
      std::memcpy(g0 + o, g + o, static_cast<size_t>(K) * sizeof(T));
    }
    finish_row(a, r, h1, accepted);
  }
}

}  // namespace

void metropolis(int dtype, const MetropolisArgs& a) {
  dispatch_dtype(dtype, [&](auto tag) {
    dispatch_metric(a.metric, [&](auto metric) {
      metropolis_rows<std::remove_pointer_t<decltype(tag)>, metric.value>(a);
    });
  });
}

}  // namespace rdfast::cpu
