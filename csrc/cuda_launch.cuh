// Launch helpers shared by the CUDA kernels: warp-per-row geometry, warp reductions, errors.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "rdfast_rowmath.h"

namespace rdfast::cuda {

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 8;
constexpr int kThreadsPerBlock = kWarp * kWarpsPerBlock;
constexpr unsigned kFullMask = 0xffffffffu;

inline cudaStream_t as_stream(uintptr_t stream) { return reinterpret_cast<cudaStream_t>(stream); }

// Blocks for one warp per row over `rows` rows.
inline unsigned blocks_for_rows(int64_t rows) {
  return static_cast<unsigned>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock);
}

// Blocks for one thread per element over `count` elements.
inline unsigned blocks_for_elements(int64_t count) {
  return static_cast<unsigned>((count + kThreadsPerBlock - 1) / kThreadsPerBlock);
}

// The row of this warp (one warp per row) and the lane within it.
__device__ __forceinline__ int64_t warp_row() {
  return static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
}
__device__ __forceinline__ int lane() { return threadIdx.x % kWarp; }

// Sum over the warp; every lane gets the result.
__device__ __forceinline__ double warp_sum(double v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

// NaN-propagating maximum over the warp; every lane gets the result.
__device__ __forceinline__ double warp_max(double v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v = nan_max(v, __shfl_xor_sync(kFullMask, v, offset));
  return v;
}

// Throws with the op's name if the last launch failed.
inline void check_launch(const char* op) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw std::runtime_error(std::string("rdfast CUDA ") + op + ": " + cudaGetErrorString(err));
}

}  // namespace rdfast::cuda
