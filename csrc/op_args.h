// Arguments of the six fused ops, shared by the CPU and CUDA launchers.
//
// Pointers are raw (T* is float or double by the dtype code); per-row scalars are double,
// counters int64. Shapes: N items, M chains per item, B = N·M rows, K latent, P data.
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

enum DType : int { kFloat32 = 0, kFloat64 = 1 };
enum Kind : int { kGaussianNll = 0, kBernoulliNll = 1, kSquaredError = 2 };  // protocol.KINDS
enum LogvarMode : int { kLogvarNone = 0, kLogvarScalar = 1, kLogvarPerPixel = 2, kLogvarPerRow = 3 };

struct DistortionArgs {
  int kind;
  int logvar_mode;
  const void* x;        // [N, P] T
  const void* xhat;     // [B, P] T
  const void* logvar;   // none | [1] | [P] | [B, P] T
  double* d;            // [B]
  void* grad_xhat;      // [B, P] T
  void* grad_logvar;    // [B, P] T (per-row logvar only)
  int64_t n_items;      // N
  int64_t n_chains;     // M
  int64_t size;         // P
};

struct LeapfrogBeginArgs {
  const void* z0;              // [B, K] T
  const void* g0;              // [B, K] T
  const double* d0;            // [B]
  void* p;                     // [B, K] T, fresh momenta on entry
  void* z;                     // [B, K] T, out
  double* logw;                // [B]
  double* h0;                  // [B], out
  Scalar<double> beta;
  Scalar<double> dbeta;
  const double* eps;           // [B]
  const double* prior_energy;  // [B] or null (standard normal)
  const void* prior_grad;      // [B, K] T or null (standard normal)
  int64_t rows;                // B
  int64_t dim;                 // K
};

// leapfrog_step (full kick and drift) and leapfrog_end (half kick).
struct LeapfrogArgs {
  void* z;                 // [B, K] T
  const void* g;           // [B, K] T
  void* p;                 // [B, K] T
  Scalar<double> beta;
  const double* eps;       // [B]
  const void* prior_grad;  // [B, K] T or null
  int64_t rows;
  int64_t dim;
};

struct MetropolisArgs {
  void* z0;                    // [B, K] T, current state, updated
  void* g0;                    // [B, K] T
  double* d0;                  // [B]
  const void* z;               // [B, K] T, proposal
  const void* g;               // [B, K] T
  const double* d;             // [B]
  const void* p;               // [B, K] T, final momenta
  const double* h0;            // [B]
  const double* u;             // [B] uniforms
  Scalar<double> beta;
  double* eps;                 // [B]
  double* accept_stat;         // [B]
  int64_t* n_accept;           // [B]
  int64_t* n_diverge;          // [B]
  int adapt;                   // rdfast::Adapt
  double target;
  Scalar<int64_t> t;           // transitions so far, this one included
  const double* prior_energy;  // [B] at the proposal, or null
  int64_t rows;
  int64_t dim;
};

struct RecordArgs {
  const double* logw;  // [B]
  const double* d;     // [B]
  double* log_z;       // [N]
  double* dist;        // [N]
  double* ess;         // [N]
  int64_t n_items;
  int64_t n_chains;
};

}  // namespace rdfast
