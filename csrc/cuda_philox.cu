// Philox-4x32-10 counter words on the GPU, one thread per counter (csrc/philox.h). The step
// may be read from device memory, so the launch can sit in a replayed CUDA graph.
#include "cuda_launch.cuh"
#include "cuda_ops.h"

namespace rdfast::cuda {
namespace {

__global__ void philox_kernel(PhiloxArgs a, int64_t count) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= count) return;
  philox_element(a, philox_c3(a), i, count);
}

}  // namespace

void philox_words(const PhiloxArgs& a, uintptr_t stream) {
  const int64_t count = a.n_items * a.n_chains * a.n_blocks;
  if (count == 0) return;
  philox_kernel<<<blocks_for_elements(count), kThreadsPerBlock, 0, as_stream(stream)>>>(a, count);
  check_launch("philox_words");
}

}  // namespace rdfast::cuda
