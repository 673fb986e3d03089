// CUDA kernel of the Metropolis step: one warp per row; every lane knows the decision and
// copies its share of the accepted row (whole-row selection, never a blend).
#include "cuda_launch.cuh"
#include "cuda_ops.h"
#include "dispatch.h"

namespace rdfast::cuda {
namespace {

template <class T, MetricLayout kMetric>
__global__ void metropolis_kernel(MetropolisArgs a) {
  const int64_t r = warp_row();
  if (r >= a.rows) return;
  const RowMetric<T, kMetric> metric(a, r);
  const int64_t K = a.dim, o = r * K;
  const T* z = static_cast<const T*>(a.z) + o;
  const T* g = static_cast<const T*>(a.g) + o;
  const T* p = static_cast<const T*>(a.p) + o;
  double sum_sq_z = 0.0, kinetic = 0.0;
  for (int64_t j = lane(); j < K; j += kWarp) {
    sum_sq_z += static_cast<double>(z[j]) * static_cast<double>(z[j]);
    kinetic += metric.kinetic_term(j, p[j]);
  }
  sum_sq_z = warp_sum(sum_sq_z);
  kinetic = warp_sum(kinetic);
  const double energy = a.prior_energy ? a.prior_energy[r] : 0.5 * sum_sq_z;
  const double h1 = hamiltonian(energy, a.beta.get(), a.d[r], kinetic);
  const bool accepted = accepts(a.h0[r], h1, a.u[r]);
  if (accepted) {
    T* z0 = static_cast<T*>(a.z0) + o;
    T* g0 = static_cast<T*>(a.g0) + o;
    for (int64_t j = lane(); j < K; j += kWarp) {
      z0[j] = z[j];
      g0[j] = g[j];
    }
  }
  if (lane() == 0) finish_row(a, r, h1, accepted);
}

}  // namespace

void metropolis(int dtype, const MetropolisArgs& a, uintptr_t stream) {
  if (a.rows == 0) return;
  dispatch_dtype(dtype, [&](auto tag) {
    dispatch_metric(a.metric, [&](auto metric) {
      metropolis_kernel<std::remove_pointer_t<decltype(tag)>, metric.value>
          <<<blocks_for_rows(a.rows), kThreadsPerBlock, 0, as_stream(stream)>>>(a);
    });
  });
  check_launch("metropolis");
}

}  // namespace rdfast::cuda
