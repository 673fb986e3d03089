// pybind11 module rdfast._C_cuda: the CUDA launchers of the fused ops and the device queries,
// built per the RDFAST_CUDA option (cmake/RdfastCuda.cmake) apart from rdfast._C, so that a
// failing CUDA compiler leaves the CPU extension intact.
//
// A launcher takes the argument struct of rdfast._C (imported first, which registers the structs)
// and a cudaStream_t as an integer: _C_cuda.<op>(dtype, args, stream). `architectures` records the
// CUDA architectures the kernels were compiled for (CMake's form, comma-separated: "80-real" GPU
// code, "90-virtual" PTX, "86" both) and `nvcc_version` the compiler's version.
#include <pybind11/pybind11.h>

#include "cuda_ops.h"

namespace py = pybind11;

PYBIND11_MODULE(_C_cuda, m) {
  m.doc() = "rdfast CUDA kernels: the fused AIS/HMC ops on device pointers (see rdfast.backends.cuda)";
  py::module_::import("rdfast._C");  // registers the argument structs the launchers take
  m.attr("architectures") = RDFAST_CUDA_ARCHITECTURES;
  m.attr("nvcc_version") = RDFAST_NVCC_VERSION;

  const auto gil = py::call_guard<py::gil_scoped_release>();
#define RDFAST_DEF_CUDA(op, Args) m.def(#op, &rdfast::cuda::op, gil);
  RDFAST_TYPED_OPS(RDFAST_DEF_CUDA)
  RDFAST_UNTYPED_OPS(RDFAST_DEF_CUDA)
  m.def("philox_words", &rdfast::cuda::philox_words, gil);  // rdfast.sampling.rng's words
  m.def("device_count", &rdfast::cuda::device_count, "Number of CUDA devices; 0 (never an error) without a driver or device.");
  m.def("device_status", &rdfast::cuda::device_status, "\"\" when a CUDA device is usable, else the CUDA runtime's reason.");
  m.def("driver_version", &rdfast::cuda::driver_version,
        "The driver's CUDA version as 1000 * major + 10 * minor; 0 without a driver.");
}
