// CUDA device queries that never fail: a machine without a driver or GPU reports 0 devices.
#include <cuda_runtime.h>

#include "cuda_ops.h"

namespace rdfast::cuda {

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear it, so that the next launch does not report it
    return 0;
  }
  return count;
}

std::string device_status() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return cudaGetErrorString(err);
  }
  return count > 0 ? "" : "the CUDA runtime sees 0 devices";
}

int driver_version() {
  int version = 0;  // stays 0 without a driver
  if (cudaDriverGetVersion(&version) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return version;
}

}  // namespace rdfast::cuda
