// pybind11 module rdfast._C: launchers of the fused ops on raw pointers (Python ints).
//
// _C.cpu.<op>(dtype, ...) and, when built with CUDA, _C.cuda.<op>(dtype, ..., stream).
// Arguments are positional, in the order of rdfast.backends.torch_backend, with pointers
// (0 for an absent optional array) and sizes; dtype is 0 (float32) or 1 (float64). Each
// scalar β, Δβ, t is a pair (value, address): a non-zero address is read by the kernel.
// Nothing here knows torch or numpy: any buffer with an address works.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "cpu_mlp.h"
#include "cpu_ops.h"
#include "cpu_philox.h"
#include "op_args.h"
#include "philox.h"
#ifdef RDFAST_WITH_CUDA
#include "cuda_ops.h"
#endif

namespace py = pybind11;
using rdfast::DistortionArgs;
using rdfast::LeapfrogArgs;
using rdfast::LeapfrogBeginArgs;
using rdfast::MetropolisArgs;
using rdfast::RecordArgs;

namespace {

template <class P>
P* ptr(uintptr_t address) {
  return reinterpret_cast<P*>(address);
}

// A scalar given by value, or (address non-zero) read by the kernel from that address.
template <class V>
rdfast::Scalar<V> scalar(V value, uintptr_t address) {
  return {value, ptr<const V>(address)};
}

// Builders of the argument structs from the Python ints, field by field.

DistortionArgs distortion_args(int kind, int logvar_mode, uintptr_t x, uintptr_t xhat, uintptr_t logvar,
                               uintptr_t d, uintptr_t grad_xhat, uintptr_t grad_logvar, int64_t n_items,
                               int64_t n_chains, int64_t size) {
  DistortionArgs a{};
  a.kind = kind;
  a.logvar_mode = logvar_mode;
  a.x = ptr<const void>(x);
  a.xhat = ptr<const void>(xhat);
  a.logvar = ptr<const void>(logvar);
  a.d = ptr<double>(d);
  a.grad_xhat = ptr<void>(grad_xhat);
  a.grad_logvar = ptr<void>(grad_logvar);
  a.n_items = n_items;
  a.n_chains = n_chains;
  a.size = size;
  return a;
}

LeapfrogBeginArgs leapfrog_begin_args(uintptr_t z0, uintptr_t g0, uintptr_t d0, uintptr_t p, uintptr_t z,
                                      uintptr_t logw, uintptr_t h0, double beta, uintptr_t beta_at, double dbeta,
                                      uintptr_t dbeta_at, uintptr_t eps,
                                      uintptr_t prior_energy, uintptr_t prior_grad, int64_t rows, int64_t dim) {
  LeapfrogBeginArgs a{};
  a.z0 = ptr<const void>(z0);
  a.g0 = ptr<const void>(g0);
  a.d0 = ptr<const double>(d0);
  a.p = ptr<void>(p);
  a.z = ptr<void>(z);
  a.logw = ptr<double>(logw);
  a.h0 = ptr<double>(h0);
  a.beta = scalar(beta, beta_at);
  a.dbeta = scalar(dbeta, dbeta_at);
  a.eps = ptr<const double>(eps);
  a.prior_energy = ptr<const double>(prior_energy);
  a.prior_grad = ptr<const void>(prior_grad);
  a.rows = rows;
  a.dim = dim;
  return a;
}

LeapfrogArgs leapfrog_args(uintptr_t z, uintptr_t g, uintptr_t p, double beta, uintptr_t beta_at, uintptr_t eps,
                           uintptr_t prior_grad, int64_t rows, int64_t dim) {
  LeapfrogArgs a{};
  a.z = ptr<void>(z);
  a.g = ptr<const void>(g);
  a.p = ptr<void>(p);
  a.beta = scalar(beta, beta_at);
  a.eps = ptr<const double>(eps);
  a.prior_grad = ptr<const void>(prior_grad);
  a.rows = rows;
  a.dim = dim;
  return a;
}

MetropolisArgs metropolis_args(uintptr_t z0, uintptr_t g0, uintptr_t d0, uintptr_t z, uintptr_t g, uintptr_t d,
                               uintptr_t p, uintptr_t h0, uintptr_t u, double beta, uintptr_t beta_at,
                               uintptr_t eps, uintptr_t accept_stat, uintptr_t n_accept, uintptr_t n_diverge,
                               int adapt, double target, int64_t t, uintptr_t t_at, uintptr_t prior_energy,
                               int64_t rows, int64_t dim) {
  MetropolisArgs a{};
  a.z0 = ptr<void>(z0);
  a.g0 = ptr<void>(g0);
  a.d0 = ptr<double>(d0);
  a.z = ptr<const void>(z);
  a.g = ptr<const void>(g);
  a.d = ptr<const double>(d);
  a.p = ptr<const void>(p);
  a.h0 = ptr<const double>(h0);
  a.u = ptr<const double>(u);
  a.beta = scalar(beta, beta_at);
  a.eps = ptr<double>(eps);
  a.accept_stat = ptr<double>(accept_stat);
  a.n_accept = ptr<int64_t>(n_accept);
  a.n_diverge = ptr<int64_t>(n_diverge);
  a.adapt = adapt;
  a.target = target;
  a.t = scalar(t, t_at);
  a.prior_energy = ptr<const double>(prior_energy);
  a.rows = rows;
  a.dim = dim;
  return a;
}

rdfast::PhiloxArgs philox_args(uint64_t seed, uintptr_t items, int64_t n_items, int64_t n_chains,
                               int64_t n_blocks, int64_t step, uintptr_t step_at, int stream, uintptr_t words) {
  return {seed, ptr<const int64_t>(items), n_items, n_chains, n_blocks, scalar(step, step_at), stream,
          ptr<int64_t>(words)};
}

RecordArgs record_args(uintptr_t logw, uintptr_t d, uintptr_t log_z, uintptr_t dist, uintptr_t ess,
                       int64_t n_items, int64_t n_chains) {
  RecordArgs a{};
  a.logw = ptr<const double>(logw);
  a.d = ptr<const double>(d);
  a.log_z = ptr<double>(log_z);
  a.dist = ptr<double>(dist);
  a.ess = ptr<double>(ess);
  a.n_items = n_items;
  a.n_chains = n_chains;
  return a;
}

// m.<name>(dtype, *params): launch(dtype, make(*params)) without the GIL.
template <class Args, class... Params>
void def_cpu(py::module_& m, const char* name, Args (*make)(Params...), void (*launch)(int, const Args&)) {
  m.def(name, [make, launch](int dtype, Params... params) { launch(dtype, make(params...)); },
        py::call_guard<py::gil_scoped_release>());
}

#ifdef RDFAST_WITH_CUDA
// m.<name>(dtype, *params, stream): enqueue launch(dtype, make(*params)) on a cudaStream_t.
template <class Args, class... Params>
void def_cuda(py::module_& m, const char* name, Args (*make)(Params...),
              void (*launch)(int, const Args&, uintptr_t)) {
  m.def(name,
        [make, launch](int dtype, Params... params, uintptr_t stream) { launch(dtype, make(params...), stream); },
        py::call_guard<py::gil_scoped_release>());
}
#endif

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "rdfast compiled kernels: the fused AIS/HMC ops on raw pointers (see rdfast.backends.cpu)";

  py::module_ cpu = m.def_submodule("cpu", "OpenMP kernels on host memory");
  def_cpu(cpu, "distortion", distortion_args, rdfast::cpu::distortion);
  def_cpu(cpu, "leapfrog_begin", leapfrog_begin_args, rdfast::cpu::leapfrog_begin);
  def_cpu(cpu, "leapfrog_step", leapfrog_args, rdfast::cpu::leapfrog_step);
  def_cpu(cpu, "leapfrog_end", leapfrog_args, rdfast::cpu::leapfrog_end);
  def_cpu(cpu, "metropolis", metropolis_args, rdfast::cpu::metropolis);
  cpu.def(
      "record",
      [](uintptr_t logw, uintptr_t d, uintptr_t log_z, uintptr_t dist, uintptr_t ess, int64_t n_items,
         int64_t n_chains) { rdfast::cpu::record(record_args(logw, d, log_z, dist, ess, n_items, n_chains)); },
      py::call_guard<py::gil_scoped_release>());
  // MLP fast path and Philox words (rdfast/cpu_kernels.py).
  cpu.def(
      "mlp_bias_act",
      [](int dtype, int act, double slope, uintptr_t a, uintptr_t bias, int64_t rows, int64_t width) {
        rdfast::cpu::mlp_bias_act(dtype, {act, slope, ptr<void>(a), ptr<const void>(bias), rows, width});
      },
      py::call_guard<py::gil_scoped_release>());
  cpu.def(
      "mlp_output",
      [](int dtype, int kind, int act, int logvar_mode, uintptr_t a, uintptr_t bias, uintptr_t x, uintptr_t logvar,
         uintptr_t d, int64_t n_items, int64_t n_chains, int64_t size) {
        rdfast::cpu::mlp_output(dtype, {kind, act, logvar_mode, ptr<void>(a), ptr<const void>(bias),
                                        ptr<const void>(x), ptr<const void>(logvar), ptr<double>(d), n_items,
                                        n_chains, size});
      },
      py::call_guard<py::gil_scoped_release>());
  cpu.def(
      "philox_words",
      [](uint64_t seed, uintptr_t items, int64_t n_items, int64_t n_chains, int64_t n_blocks, int64_t step,
         uintptr_t step_at, int stream, uintptr_t words) {
        rdfast::cpu::philox_words(
            philox_args(seed, items, n_items, n_chains, n_blocks, step, step_at, stream, words));
      },
      py::call_guard<py::gil_scoped_release>());

#ifdef RDFAST_WITH_CUDA
  m.attr("has_cuda") = true;
  py::module_ cuda = m.def_submodule("cuda", "CUDA kernels on device memory, enqueued on a given stream");
  def_cuda(cuda, "distortion", distortion_args, rdfast::cuda::distortion);
  def_cuda(cuda, "leapfrog_begin", leapfrog_begin_args, rdfast::cuda::leapfrog_begin);
  def_cuda(cuda, "leapfrog_step", leapfrog_args, rdfast::cuda::leapfrog_step);
  def_cuda(cuda, "leapfrog_end", leapfrog_args, rdfast::cuda::leapfrog_end);
  def_cuda(cuda, "metropolis", metropolis_args, rdfast::cuda::metropolis);
  cuda.def(
      "record",
      [](uintptr_t logw, uintptr_t d, uintptr_t log_z, uintptr_t dist, uintptr_t ess, int64_t n_items,
         int64_t n_chains, uintptr_t stream) {
        rdfast::cuda::record(record_args(logw, d, log_z, dist, ess, n_items, n_chains), stream);
      },
      py::call_guard<py::gil_scoped_release>());
  cuda.def(
      "philox_words",
      [](uint64_t seed, uintptr_t items, int64_t n_items, int64_t n_chains, int64_t n_blocks, int64_t step,
         uintptr_t step_at, int stream, uintptr_t words, uintptr_t cuda_stream) {
        rdfast::cuda::philox_words(
            philox_args(seed, items, n_items, n_chains, n_blocks, step, step_at, stream, words), cuda_stream);
      },
      py::call_guard<py::gil_scoped_release>());
  cuda.def("device_count", &rdfast::cuda::device_count,
           "Number of CUDA devices; 0 (never an error) without a driver or device.");
  cuda.def("device_status", &rdfast::cuda::device_status,
           "\"\" when a CUDA device is usable, else the CUDA runtime's reason.");
#else
  m.attr("has_cuda") = false;
#endif
}
