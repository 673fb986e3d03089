// CUDA kernel of the distortion op: one warp per row, lanes stride over the P numbers.
#include "cuda_launch.cuh"
#include "cuda_ops.h"
#include "dispatch.h"

namespace rdfast::cuda {
namespace {

template <class T, Kind kKind, LogvarLayout kLogvar>
__global__ void distortion_kernel(DistortionArgs a) {
  const int64_t M = a.n_chains, P = a.size, B = a.n_items * M;
  const int64_t r = warp_row();
  if (r >= B) return;
  constexpr bool kPerRow = kLogvar == LogvarLayout::PER_ROW;
  const T* logvar = static_cast<const T*>(a.logvar);
  const T* xr = static_cast<const T*>(a.x) + (r / M) * P;
  const T* hr = static_cast<const T*>(a.xhat) + r * P;
  const T* vr = kPerRow ? logvar + r * P : logvar;
  T* gr = static_cast<T*>(a.grad_xhat) + r * P;
  T* gvr = kPerRow ? static_cast<T*>(a.grad_logvar) + r * P : nullptr;
  double sum = 0.0;
  for (int64_t j = lane(); j < P; j += kWarp) sum += distortion_element<T, kKind, kLogvar>(xr, hr, vr, gr, gvr, j);
  sum = warp_sum(sum);
  if (lane() == 0) a.d[r] = distortion_row<kKind>(sum, P);
}

}  // namespace

void distortion(int dtype, const DistortionArgs& a, uintptr_t stream) {
  if (a.n_items * a.n_chains == 0) return;
  const unsigned blocks = blocks_for_rows(a.n_items * a.n_chains);
  dispatch_dtype(dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    dispatch_distortion(a.kind, a.logvar_layout, [&](auto d) {
      distortion_kernel<T, d.kind, d.logvar><<<blocks, kThreadsPerBlock, 0, as_stream(stream)>>>(a);
    });
  });
  check_launch("distortion");
}

}  // namespace rdfast::cuda
