// A whole MLP evaluation in one call (rdfast/fastpath/mlp.py): d(z) and ∇_z d(z) for a trunk
// of dense layers and one head with a fused output kernel, the matrix products by the BLAS
// gemm that torch itself uses (its address found by rdfast.fastpath.cpu_kernels), the rest by
// the kernels of cpu_mlp.h. Same steps as MLPEvaluator's torch-op path, without a Python call,
// a dispatcher or a cold interpreter between them:
//
//   h_l = φ_l(h_{l−1} W_lᵀ + b_l)            gemm, then mlp_bias_act       (trunk, h_0 = z)
//   a = h_n Wᵀ;  d, δ = mlp_output(a)        gemm, then the output kernel  (the head)
//   δ_{l} = (δ_{l+1} W_{l+1}) ⊙ φ_l'         gemm, then mlp_act_backward
//   ∇_z d = δ_1 W_1                          gemm into g
#pragma once

#include <cstdint>
#include <vector>

#include "cpu_mlp.h"

namespace rdfast::cpu {

#define RDFAST_MLP_LAYER_ARGS(F) \
  F(const void*, weight)          /* [out, in] T, row-major (nn.Linear's layout) */ \
  F(int64_t, in) \
  F(int64_t, out) \
  F(void*, h)                     /* [rows, out] T: the trunk layer's output; unused for the head */ \
  F(void*, delta)                 /* [rows, out] T: δ of the trunk layer; the head's a, then δ */ \
  F(int, act)                     /* MlpActivation of a trunk layer */ \
  F(double, param) \
  F(const void*, bias)            /* [out] T of a trunk layer (the head's is the output kernel's) */

struct MlpLayerArgs { RDFAST_MLP_LAYER_ARGS(RDFAST_FIELD) };

class MlpProgram {
 public:
  // layers: the trunk, then the head; output: the head's output kernel (its a is the head's delta).
  MlpProgram(int dtype, uintptr_t gemm, int64_t rows, std::vector<MlpLayerArgs> layers, MlpOutputArgs output);
  // d [rows] double, ∇_z d into g [rows, K] T at z [rows, K] T (contiguous; addresses).
  void run(uintptr_t z, uintptr_t g, uintptr_t d);

 private:
  template <class T>
  void run_typed(const T* z, T* g, double* d);

  int dtype_;
  const void* gemm_;
  int64_t rows_;
  std::vector<MlpLayerArgs> layers_;
  MlpOutputArgs output_;
};

}  // namespace rdfast::cpu
