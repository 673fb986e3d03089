// pybind11 module rdfast._C: the argument structs of the fused ops, with one named property per
// field, and their launchers.
//
// Python fills a struct by field name (rdfast/backends/native.py) and calls
// _C.cpu.<op>(dtype, args), or rdfast._C_cuda.<op>(dtype, args, stream) where the CUDA module
// is built (csrc/cuda_bindings.cpp: it takes these structs). A pointer field takes an address
// (a Python int, 0 for an absent optional array); a scalar field (β, Δβ, the Philox step) takes
// (value, address), a non-zero address being read by the kernel. `enums` exports the codes of
// op_args.h by name. Nothing here knows torch or numpy: any buffer with an address works.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <type_traits>
#include <utility>

#include "cpu_mlp.h"
#include "cpu_mlp_program.h"
#include "cpu_ops.h"
#include "cpu_philox.h"
#include "op_args.h"
#include "philox.h"

namespace py = pybind11;

namespace {

template <class V>
struct IsScalar : std::false_type {};
template <class V>
struct IsScalar<rdfast::Scalar<V>> : std::true_type {};

// One property of struct Args: pointers as addresses, scalars as (value, address), others as is.
template <class Args, class Field>
void def_field(py::class_<Args>& cls, const char* name, Field Args::*member) {
  if constexpr (std::is_pointer_v<Field>) {
    cls.def_property(
        name, [member](const Args& a) { return reinterpret_cast<uintptr_t>(a.*member); },
        [member](Args& a, uintptr_t address) { a.*member = reinterpret_cast<Field>(address); });
  } else if constexpr (IsScalar<Field>::value) {
    using V = decltype(Field::value);
    cls.def_property(
        name, [member](const Args& a) { return std::make_pair((a.*member).value, reinterpret_cast<uintptr_t>((a.*member).at)); },
        [member](Args& a, std::pair<V, uintptr_t> v) { a.*member = {v.first, reinterpret_cast<const V*>(v.second)}; });
  } else {
    cls.def_readwrite(name, member);
  }
}

#define RDFAST_DEF_FIELD(type, name) def_field(cls, #name, &Struct::name);
#define RDFAST_BIND_STRUCT(module, Name, Type, FIELDS)     \
  {                                                        \
    using Struct = Type;                                   \
    py::class_<Struct> cls(module, Name);                  \
    cls.def(py::init([] { return Struct{}; }));            \
    FIELDS(RDFAST_DEF_FIELD)                               \
  }

#define RDFAST_ENUM_ENTRY(name, value) entries[#name] = value;
#define RDFAST_EXPORT_ENUM(target, Name, LIST) \
  {                                            \
    py::dict entries;                          \
    LIST(RDFAST_ENUM_ENTRY)                    \
    target[Name] = entries;                    \
  }

// m.<name>(dtype, args) runs launch(dtype, args) without the GIL; untyped ops omit dtype.
template <class Args>
void def_cpu(py::module_& m, const char* name, void (*launch)(int, const Args&)) {
  m.def(name, launch, py::call_guard<py::gil_scoped_release>());
}
template <class Args>
void def_cpu(py::module_& m, const char* name, void (*launch)(const Args&)) {
  m.def(name, launch, py::call_guard<py::gil_scoped_release>());
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "rdfast compiled kernels: the fused AIS/HMC ops on raw pointers (see rdfast.backends.native)";

#define RDFAST_BIND_OP_STRUCT(Name, FIELDS) RDFAST_BIND_STRUCT(m, #Name, rdfast::Name, FIELDS)
  RDFAST_STRUCTS(RDFAST_BIND_OP_STRUCT)
  RDFAST_BIND_STRUCT(m, "PhiloxArgs", rdfast::PhiloxArgs, RDFAST_PHILOX_ARGS)
  RDFAST_BIND_STRUCT(m, "NormalArgs", rdfast::NormalArgs, RDFAST_NORMAL_ARGS)
  RDFAST_BIND_STRUCT(m, "UniformArgs", rdfast::UniformArgs, RDFAST_UNIFORM_ARGS)
  RDFAST_BIND_STRUCT(m, "BiasActArgs", rdfast::cpu::BiasActArgs, RDFAST_BIAS_ACT_ARGS)
  RDFAST_BIND_STRUCT(m, "ActBackwardArgs", rdfast::cpu::ActBackwardArgs, RDFAST_ACT_BACKWARD_ARGS)
  RDFAST_BIND_STRUCT(m, "MlpOutputArgs", rdfast::cpu::MlpOutputArgs, RDFAST_MLP_OUTPUT_ARGS)
  RDFAST_BIND_STRUCT(m, "MlpLayerArgs", rdfast::cpu::MlpLayerArgs, RDFAST_MLP_LAYER_ARGS)

  py::dict enums;
  RDFAST_EXPORT_ENUM(enums, "DType", RDFAST_ENUM_DTYPE)
  RDFAST_EXPORT_ENUM(enums, "Kind", RDFAST_ENUM_KIND)
  RDFAST_EXPORT_ENUM(enums, "LogvarLayout", RDFAST_ENUM_LOGVAR_LAYOUT)
  RDFAST_EXPORT_ENUM(enums, "MetricLayout", RDFAST_ENUM_METRIC_LAYOUT)
  RDFAST_EXPORT_ENUM(enums, "MlpActivation", RDFAST_ENUM_MLP_ACTIVATION)
  m.attr("enums") = enums;

  py::module_ cpu = m.def_submodule("cpu", "OpenMP kernels on host memory");
#define RDFAST_DEF_CPU(op, Args) def_cpu(cpu, #op, rdfast::cpu::op);
  RDFAST_TYPED_OPS(RDFAST_DEF_CPU)
  RDFAST_UNTYPED_OPS(RDFAST_DEF_CPU)
  def_cpu(cpu, "philox_words", rdfast::cpu::philox_words);  // rdfast.sampling.rng's words
  def_cpu(cpu, "philox_normals", rdfast::cpu::philox_normals);  // and its normals
  def_cpu(cpu, "philox_uniforms", rdfast::cpu::philox_uniforms);  // and uniforms
  def_cpu(cpu, "mlp_bias_act", rdfast::cpu::mlp_bias_act);  // the MLP fast path (rdfast.fastpath)
  def_cpu(cpu, "mlp_act_backward", rdfast::cpu::mlp_act_backward);
  def_cpu(cpu, "mlp_output", rdfast::cpu::mlp_output);
  py::class_<rdfast::cpu::MlpProgram>(cpu, "MlpProgram")  // (dtype, gemm address, rows, [MlpLayerArgs], MlpOutputArgs)
      .def(py::init<int, uintptr_t, int64_t, std::vector<rdfast::cpu::MlpLayerArgs>, rdfast::cpu::MlpOutputArgs>())
      .def("run", &rdfast::cpu::MlpProgram::run, py::call_guard<py::gil_scoped_release>());  // (z, g, d) addresses
}
