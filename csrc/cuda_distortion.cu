// CUDA kernel of the distortion op: one warp per row, lanes stride over the P numbers.
#include <type_traits>

#include "cuda_launch.cuh"
#include "cuda_ops.h"
#include "dispatch.h"

namespace rdfast::cuda {
namespace {

template <class T, int kKind, int kLogvar>
__global__ void distortion_kernel(DistortionArgs a) {
  const int64_t M = a.n_chains, P = a.size, B = a.n_items * M;
  const int64_t r = warp_row();
  if (r >= B) return;
  const T* logvar = static_cast<const T*>(a.logvar);
  const T* xr = static_cast<const T*>(a.x) + (r / M) * P;
  const T* hr = static_cast<const T*>(a.xhat) + r * P;
  const T* vr = kLogvar == kLogvarPerRow ? logvar + r * P : logvar;
  T* gr = static_cast<T*>(a.grad_xhat) + r * P;
  T* gvr = kLogvar == kLogvarPerRow ? static_cast<T*>(a.grad_logvar) + r * P : nullptr;
  double sum = 0.0;
  for (int64_t j = lane(); j < P; j += kWarp) sum += distortion_element<T, kKind, kLogvar>(xr, hr, vr, gr, gvr, j);
  sum = warp_sum(sum);
  if (lane() == 0) a.d[r] = distortion_row<kKind>(sum, P);
}

template <class T, int kKind, int kLogvar>
void launch(const DistortionArgs& a, cudaStream_t stream) {
  distortion_kernel<T, kKind, kLogvar>
      <<<blocks_for_rows(a.n_items * a.n_chains), kThreadsPerBlock, 0, stream>>>(a);
}

template <class T>
void launch_typed(const DistortionArgs& a, cudaStream_t stream) {
  switch (a.kind) {
    case kGaussianNll:
      switch (a.logvar_mode) {
        case kLogvarNone: return launch<T, kGaussianNll, kLogvarNone>(a, stream);
        case kLogvarScalar: return launch<T, kGaussianNll, kLogvarScalar>(a, stream);
        case kLogvarPerPixel: return launch<T, kGaussianNll, kLogvarPerPixel>(a, stream);
        case kLogvarPerRow: return launch<T, kGaussianNll, kLogvarPerRow>(a, stream);
        default: throw std::invalid_argument("logvar_mode must be 0..3, got " + std::to_string(a.logvar_mode));
      }
    case kBernoulliNll: return launch<T, kBernoulliNll, kLogvarNone>(a, stream);
    case kSquaredError: return launch<T, kSquaredError, kLogvarNone>(a, stream);
    default: throw std::invalid_argument("kind code must be 0..2, got " + std::to_string(a.kind));
  }
}

}  // namespace

void distortion(int dtype, const DistortionArgs& a, uintptr_t stream) {
  if (a.n_items * a.n_chains == 0) return;
  dispatch_dtype(dtype, [&](auto tag) { launch_typed<std::remove_pointer_t<decltype(tag)>>(a, as_stream(stream)); });
  check_launch("distortion");
}

}  // namespace rdfast::cuda
