// CUDA kernels of leapfrog_begin (one warp per row: it needs ‖z0‖² and K(p)) and of
// leapfrog_step / leapfrog_end (one thread per element).
#include "cuda_launch.cuh"
#include "cuda_ops.h"
#include "dispatch.h"

namespace rdfast::cuda {
namespace {

// logw −= Δβ·d0;  h0 = E(z0) + β d0 + K(p);  p −= ½ε∇U(z0);  z = z0 + ε M⁻¹p.
template <class T, MetricLayout kMetric, bool kPriorGrad>
__global__ void begin_kernel(LeapfrogBeginArgs a) {
  const int64_t r = warp_row();
  if (r >= a.rows) return;
  const RowMetric<T, kMetric> metric(a, r);
  const int64_t K = a.dim, o = r * K;
  const T* z0 = static_cast<const T*>(a.z0) + o;
  const T* g0 = static_cast<const T*>(a.g0) + o;
  const T* pg = kPriorGrad ? static_cast<const T*>(a.prior_grad) + o : nullptr;
  T* p = static_cast<T*>(a.p) + o;
  T* z = static_cast<T*>(a.z) + o;
  const T beta = static_cast<T>(a.beta.get());
  const T eps = static_cast<T>(a.eps[r]);
  const T half = T(0.5) * eps;
  double sum_sq_z = 0.0, kinetic = 0.0;
  for (int64_t j = lane(); j < K; j += kWarp) {
    const T zj = z0[j], pj = p[j];
    sum_sq_z += static_cast<double>(zj) * static_cast<double>(zj);
    kinetic += metric.kinetic_term(j, pj);
    const T pn = kick(pj, kPriorGrad ? pg[j] : zj, g0[j], beta, half);
    p[j] = pn;
    z[j] = zj + eps * metric.velocity(j, pn);
  }
  sum_sq_z = warp_sum(sum_sq_z);
  kinetic = warp_sum(kinetic);
  if (lane() == 0) {
    const double energy = a.prior_energy ? a.prior_energy[r] : 0.5 * sum_sq_z;
    a.logw[r] -= a.dbeta.get() * a.d0[r];
    a.h0[r] = hamiltonian(energy, a.beta.get(), a.d0[r], kinetic);
  }
}

// p −= step·∇U(z), then (full step only) z += ε M⁻¹p; step = ε or ½ε.
template <class T, MetricLayout kMetric, bool kPriorGrad, bool kFull>
__global__ void kick_kernel(LeapfrogArgs a) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= a.rows * a.dim) return;
  const int64_t r = i / a.dim;
  T* z = static_cast<T*>(a.z);
  T* p = static_cast<T*>(a.p);
  const T beta = static_cast<T>(a.beta.get());
  const T eps = static_cast<T>(a.eps[r]);
  const T step = kFull ? eps : T(0.5) * eps;
  const T zi = z[i];
  const T prior_grad = kPriorGrad ? static_cast<const T*>(a.prior_grad)[i] : zi;
  const T pn = kick(p[i], prior_grad, static_cast<const T*>(a.g)[i], beta, step);
  p[i] = pn;
  if constexpr (kFull) z[i] = zi + eps * RowMetric<T, kMetric>(a, r).velocity(i - r * a.dim, pn);
}

template <bool kFull>
void launch_kick(int dtype, const LeapfrogArgs& a, cudaStream_t stream) {
  if (a.rows * a.dim == 0) return;
  const unsigned blocks = blocks_for_elements(a.rows * a.dim);
  dispatch_leapfrog(dtype, a, [&](auto tag, auto metric, auto prior) {
    kick_kernel<std::remove_pointer_t<decltype(tag)>, metric.value, prior.value, kFull>
        <<<blocks, kThreadsPerBlock, 0, stream>>>(a);
  });
  check_launch(kFull ? "leapfrog_step" : "leapfrog_end");
}

}  // namespace

void leapfrog_begin(int dtype, const LeapfrogBeginArgs& a, uintptr_t stream) {
  if (a.rows == 0) return;
  const unsigned blocks = blocks_for_rows(a.rows);
  dispatch_leapfrog(dtype, a, [&](auto tag, auto metric, auto prior) {
    begin_kernel<std::remove_pointer_t<decltype(tag)>, metric.value, prior.value>
        <<<blocks, kThreadsPerBlock, 0, as_stream(stream)>>>(a);
  });
  check_launch("leapfrog_begin");
}

void leapfrog_step(int dtype, const LeapfrogArgs& a, uintptr_t stream) {
  launch_kick<true>(dtype, a, as_stream(stream));
}

void leapfrog_end(int dtype, const LeapfrogArgs& a, uintptr_t stream) {
  launch_kick<false>(dtype, a, as_stream(stream));
}

}  // namespace rdfast::cuda
