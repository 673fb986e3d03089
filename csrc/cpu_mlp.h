// Fused CPU kernels of the MLP fast path (rdfast/fastpath/mlp.py, rdfast/fastpath/cpu_kernels.py).
//
// mlp_bias_act:  h = φ(a + b) in place over a [rows, width] (after a bias-free matmul).
// mlp_act_backward: δ ← δ ⊙ φ'(a) in place over δ [rows, width], φ' from the output h = φ(a)
//                (the formulas of torch's *_backward with the result).
// mlp_output:    the output layer and the distortion in one pass: h = φ(a + b), x̂ = s·h + c,
//                d [B] and δ = ∂d/∂(a + b) = ∂d/∂x̂ · s · φ'(h) [B, P] (φ' from the output
//                h: 1, 1 − h², h(1 − h)), for every built-in distortion with a fixed log-variance.
// Kinds and log-variance layouts are rdfast::Kind and rdfast::LogvarLayout (op_args.h).
#pragma once

#include <cstdint>

#include "op_args.h"

namespace rdfast::cpu {

#define RDFAST_ENUM_MLP_ACTIVATION(E) E(IDENTITY, 0) E(TANH, 1) E(SIGMOID, 2) E(RELU, 3) E(LEAKY_RELU, 4) E(ELU, 5)
#define RDFAST_ENUMERATOR(name, value) name = value,
enum class MlpActivation : int { RDFAST_ENUM_MLP_ACTIVATION(RDFAST_ENUMERATOR) };
#undef RDFAST_ENUMERATOR

#define RDFAST_BIAS_ACT_ARGS(F) \
  F(int, act)                     /* MlpActivation */ \
  F(double, param)                /* leaky ReLU: negative slope; ELU: α */ \
  F(void*, a)                     /* [rows, width] T, pre-activation without bias in, activation out */ \
  F(const void*, bias)            /* [width] T (zeros for a layer without bias) */ \
  F(int64_t, rows) \
  F(int64_t, width)

#define RDFAST_ACT_BACKWARD_ARGS(F) \
  F(int, act)                     /* MlpActivation */ \
  F(double, param)                /* leaky ReLU: negative slope; ELU: α */ \
  F(void*, delta)                 /* [rows, width] T, ∂d/∂h in, ∂d/∂a out */ \
  F(const void*, h)               /* [rows, width] T, the activation's output */ \
  F(int64_t, rows) \
  F(int64_t, width)

#define RDFAST_MLP_OUTPUT_ARGS(F) \
  F(int, kind)                    /* rdfast::Kind */ \
  F(int, act)                     /* MlpActivation: IDENTITY, TANH or SIGMOID */ \
  F(int, logvar_layout)           /* rdfast::LogvarLayout: none, scalar or per-pixel (gaussian_nll), none otherwise */ \
  F(double, scale)                /* s of x̂ = s·φ(a + b) + c */ \
  F(double, shift)                /* c */ \
  F(void*, a)                     /* [B, P] T, pre-activation without bias in, δ = ∂d/∂(a + b) out */ \
  F(const void*, bias)            /* [P] T (zeros for a layer without bias) */ \
  F(const void*, x)               /* [N, P] T, row r reads item r / M */ \
  F(const void*, logvar)          /* [1] | [P] T */ \
  F(double*, d)                   /* [B] */ \
  F(int64_t, n_items)             /* N */ \
  F(int64_t, n_chains)            /* M */ \
  F(int64_t, size)                /* P */

struct BiasActArgs { RDFAST_BIAS_ACT_ARGS(RDFAST_FIELD) };
struct ActBackwardArgs { RDFAST_ACT_BACKWARD_ARGS(RDFAST_FIELD) };
struct MlpOutputArgs { RDFAST_MLP_OUTPUT_ARGS(RDFAST_FIELD) };

void mlp_bias_act(int dtype, const BiasActArgs& a);
void mlp_act_backward(int dtype, const ActBackwardArgs& a);
void mlp_output(int dtype, const MlpOutputArgs& a);

}  // namespace rdfast::cpu
