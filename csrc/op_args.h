// Arguments of the fused ops, shared by the CPU and CUDA launchers and the Python bindings.
//
// Each op's arguments are one X-macro list of (type, name) fields: it expands into the struct
// here and into one named Python property per field in bindings.cpp, so a field is declared
// once and Python sets it by name (rdfast/backends/native.py), never by position. Pointers are
// raw addresses (T* is float or double by the dtype code); per-row scalars are double, counters
// int64. Shapes: N items, M chains per item, B = N·M rows, K latent, P data.
//
// The enums mirror rdfast/backends/spec.py (the module exports them; a test compares).
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define RDFAST_HD __host__ __device__ __forceinline__
#else
#define RDFAST_HD inline
#endif

namespace rdfast {

// A scalar argument given by value, or read from memory at launch (`at` non-null: a device
// pointer on the GPU), so that a launch needs no host synchronisation and a CUDA graph of it
// stays valid when the value changes (β, Δβ and the step index of a device-resident loop).
template <class V>
struct Scalar {
  V value;
  const V* at;
  RDFAST_HD V get() const { return at ? *at : value; }
};

// Enumerators as X-macro lists (name, value), exported to Python by name.
#define RDFAST_ENUM_DTYPE(E) E(FLOAT32, 0) E(FLOAT64, 1)
#define RDFAST_ENUM_KIND(E) E(GAUSSIAN_NLL, 0) E(BERNOULLI_NLL, 1) E(SQUARED_ERROR, 2)
#define RDFAST_ENUM_LOGVAR_LAYOUT(E) E(NONE, 0) E(SCALAR, 1) E(PER_PIXEL, 2) E(PER_ROW, 3)
#define RDFAST_ENUM_METRIC_LAYOUT(E) E(IDENTITY, 0) E(DIAGONAL, 1)

#define RDFAST_ENUMERATOR(name, value) name = value,
enum class DType : int { RDFAST_ENUM_DTYPE(RDFAST_ENUMERATOR) };
enum class Kind : int { RDFAST_ENUM_KIND(RDFAST_ENUMERATOR) };
enum class LogvarLayout : int { RDFAST_ENUM_LOGVAR_LAYOUT(RDFAST_ENUMERATOR) };
enum class MetricLayout : int { RDFAST_ENUM_METRIC_LAYOUT(RDFAST_ENUMERATOR) };
#undef RDFAST_ENUMERATOR

#define RDFAST_DISTORTION_ARGS(F) \
  F(int, kind)                    /* rdfast::Kind */ \
  F(int, logvar_layout)           /* rdfast::LogvarLayout */ \
  F(const void*, x)               /* [N, P] T */ \
  F(const void*, xhat)            /* [B, P] T */ \
  F(const void*, logvar)          /* none | [1] | [P] | [B, P] T */ \
  F(double*, d)                   /* [B] */ \
  F(void*, grad_xhat)             /* [B, P] T */ \
  F(void*, grad_logvar)           /* [B, P] T (per-row logvar only) */ \
  F(int64_t, n_items)             /* N */ \
  F(int64_t, n_chains)            /* M */ \
  F(int64_t, size)                /* P */

#define RDFAST_LEAPFROG_BEGIN_ARGS(F) \
  F(const void*, z0)              /* [B, K] T, current state */ \
  F(const void*, g0)              /* [B, K] T, its ∇d */ \
  F(const double*, d0)            /* [B], its d */ \
  F(void*, p)                     /* [B, K] T, fresh momenta in, after the half kick out */ \
  F(void*, z)                     /* [B, K] T, out: after the first drift */ \
  F(double*, logw)                /* [B] */ \
  F(double*, h0)                  /* [B], out */ \
  F(Scalar<double>, beta) \
  F(Scalar<double>, dbeta) \
  F(const double*, eps)           /* [B] */ \
  F(int, metric)                  /* rdfast::MetricLayout */ \
  F(const void*, inv_mass)        /* [N, K] T: the diagonal metric of each item, or null */ \
  F(int64_t, metric_chains)       /* M: row r reads inv_mass[r / M] */ \
  F(const double*, prior_energy)  /* [B] or null (standard normal) */ \
  F(const void*, prior_grad)      /* [B, K] T or null (standard normal) */ \
  F(int64_t, rows)                /* B */ \
  F(int64_t, dim)                 /* K */

// leapfrog_step (full kick and drift) and leapfrog_end (half kick; ignores the metric).
#define RDFAST_LEAPFROG_ARGS(F) \
  F(void*, z)                     /* [B, K] T */ \
  F(const void*, g)               /* [B, K] T */ \
  F(void*, p)                     /* [B, K] T */ \
  F(Scalar<double>, beta) \
  F(const double*, eps)           /* [B] */ \
  F(int, metric)                  /* rdfast::MetricLayout */ \
  F(const void*, inv_mass)        /* [N, K] T: the diagonal metric of each item, or null */ \
  F(int64_t, metric_chains)       /* M: row r reads inv_mass[r / M] */ \
  F(const void*, prior_grad)      /* [B, K] T or null */ \
  F(int64_t, rows) \
  F(int64_t, dim)

#define RDFAST_METROPOLIS_ARGS(F) \
  F(void*, z0)                    /* [B, K] T, current state, updated */ \
  F(void*, g0)                    /* [B, K] T */ \
  F(double*, d0)                  /* [B] */ \
  F(const void*, z)               /* [B, K] T, proposal */ \
  F(const void*, g)               /* [B, K] T */ \
  F(const double*, d)             /* [B] */ \
  F(const void*, p)               /* [B, K] T, final momenta */ \
  F(const double*, h0)            /* [B] */ \
  F(const double*, u)             /* [B] uniforms */ \
  F(Scalar<double>, beta) \
  F(double*, accepted)            /* [B] out: 1 or 0 */ \
  F(double*, accept_prob)         /* [B] out: min(1, e^{H0 − H1}), 0 for a divergence */ \
  F(int64_t*, n_accept)           /* [B] */ \
  F(int64_t*, n_diverge)          /* [B] */ \
  F(int, metric)                  /* rdfast::MetricLayout */ \
  F(const void*, inv_mass)        /* [N, K] T: the diagonal metric of each item, or null */ \
  F(int64_t, metric_chains)       /* M: row r reads inv_mass[r / M] */ \
  F(const double*, prior_energy)  /* [B] at the proposal, or null */ \
  F(int64_t, rows) \
  F(int64_t, dim)

#define RDFAST_RECORD_ARGS(F) \
  F(const double*, logw)          /* [B] */ \
  F(const double*, d)             /* [B] */ \
  F(double*, log_z)               /* [N] */ \
  F(double*, dist)                /* [N] */ \
  F(double*, ess)                 /* [N] */ \
  F(int64_t, n_items) \
  F(int64_t, n_chains)

// The argument structs (name, fields) and the ops (name, struct): the launchers of cpu_ops.h
// and cuda_ops.h and the bindings are declared from these lists. Typed ops take the dtype code.
#define RDFAST_STRUCTS(S)                                \
  S(DistortionArgs, RDFAST_DISTORTION_ARGS)              \
  S(LeapfrogBeginArgs, RDFAST_LEAPFROG_BEGIN_ARGS)       \
  S(LeapfrogArgs, RDFAST_LEAPFROG_ARGS)                  \
  S(MetropolisArgs, RDFAST_METROPOLIS_ARGS)              \
  S(RecordArgs, RDFAST_RECORD_ARGS)
#define RDFAST_TYPED_OPS(X)                \
  X(distortion, DistortionArgs)            \
  X(leapfrog_begin, LeapfrogBeginArgs)     \
  X(leapfrog_step, LeapfrogArgs)           \
  X(leapfrog_end, LeapfrogArgs)            \
  X(metropolis, MetropolisArgs)
#define RDFAST_UNTYPED_OPS(X) X(record, RecordArgs)

#define RDFAST_FIELD(type, name) type name;
#define RDFAST_STRUCT(Name, FIELDS) \
  struct Name {                     \
    FIELDS(RDFAST_FIELD)            \
  };
RDFAST_STRUCTS(RDFAST_STRUCT)

}  // namespace rdfast
