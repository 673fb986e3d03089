// Fused CPU kernels of the MLP fast path (rdfast/mlp.py, rdfast/cpu_kernels.py).
//
// mlp_bias_act:  h = φ(a + b) in place over a [rows, width] (after a bias-free matmul).
// mlp_output:    the output layer and the distortion in one pass: x̂ = φ(a + b), d [B] and
//                δ = ∂d/∂a = ∂d/∂x̂ ⊙ φ'(x̂) [B, P] (φ' from the output: 1, 1 − x̂², x̂(1 − x̂)).
// Kinds and logvar modes are rdfast::Kind and rdfast::LogvarMode (op_args.h).
#pragma once

#include <cstdint>

namespace rdfast::cpu {

enum MlpActivation : int { kActIdentity = 0, kActTanh = 1, kActSigmoid = 2, kActRelu = 3, kActLeakyRelu = 4 };

struct BiasActArgs {
  int act;            // MlpActivation
  double slope;       // leaky ReLU negative slope
  void* a;            // [rows, width] T, pre-activation without bias in, activation out
  const void* bias;   // [width] T (zeros for a layer without bias)
  int64_t rows;
  int64_t width;
};

struct MlpOutputArgs {
  int kind;           // rdfast::Kind: gaussian_nll or squared_error
  int act;            // kActIdentity, kActTanh or kActSigmoid
  int logvar_mode;    // rdfast::LogvarMode: scalar or per-pixel (gaussian_nll), none otherwise
  void* a;            // [B, P] T, pre-activation without bias in, δ = ∂d/∂(a + b) out
  const void* bias;   // [P] T (zeros for a layer without bias)
  const void* x;      // [N, P] T, row r reads item r / M
  const void* logvar; // [1] | [P] T
  double* d;          // [B]
  int64_t n_items;    // N
  int64_t n_chains;   // M
  int64_t size;       // P
};

void mlp_bias_act(int dtype, const BiasActArgs& a);
void mlp_output(int dtype, const MlpOutputArgs& a);

}  // namespace rdfast::cpu
