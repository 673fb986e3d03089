// MlpProgram (cpu_mlp_program.h): the MLP evaluation in one call.
#include "cpu_mlp_program.h"

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>

#include "dispatch.h"

namespace rdfast::cpu {

namespace {

// Fortran BLAS ?gemm (LP64), the trailing lengths of the two character arguments included for
// BLAS built with gfortran's calling convention (others ignore them).
template <class T>
using Gemm = void (*)(const char*, const char*, const int*, const int*, const int*, const T*, const T*,
                      const int*, const T*, const int*, const T*, T*, const int*, std::size_t, std::size_t);

// Row-major C [rows, n] = A [rows, k] · op(B), op(B) = Bᵀ for B [n, k] (transposed) or B [k, n]: in
// BLAS's column-major view Cᵀ = op(B)ᵀ Aᵀ.
template <class T>
void row_major_gemm(const void* gemm, const T* a, const T* b, T* c, int64_t rows, int64_t k, int64_t n,
                    bool b_transposed) {
  const int m_ = static_cast<int>(n), n_ = static_cast<int>(rows), k_ = static_cast<int>(k);
  const int ldb = static_cast<int>(b_transposed ? k : n), lda = k_, ldc = m_;
  const T one = T(1), zero = T(0);
  reinterpret_cast<Gemm<T>>(const_cast<void*>(gemm))(b_transposed ? "T" : "N", "N", &m_, &n_, &k_, &one, b, &ldb,
                                                     a, &lda, &zero, c, &ldc, 1, 1);
}

}  // namespace

MlpProgram::MlpProgram(int dtype, uintptr_t gemm, int64_t rows, std::vector<MlpLayerArgs> layers,
                       MlpOutputArgs output)
    : dtype_(dtype), gemm_(reinterpret_cast<const void*>(gemm)), rows_(rows), layers_(std::move(layers)),
      output_(output) {
  if (!gemm_) throw std::invalid_argument("MlpProgram: gemm address is 0");
  if (layers_.empty()) throw std::invalid_argument("MlpProgram: needs at least the head");
  if (output_.a != layers_.back().delta) throw std::invalid_argument("MlpProgram: output.a must be the head's delta");
  dispatch_dtype(dtype, [](auto) {});  // a bad code throws here, not at run
}

void MlpProgram::run(uintptr_t z, uintptr_t g, uintptr_t d) {
  dispatch_dtype(dtype_, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    run_typed<T>(reinterpret_cast<const T*>(z), reinterpret_cast<T*>(g), reinterpret_cast<double*>(d));
  });
}

template <class T>
void MlpProgram::run_typed(const T* z, T* g, double* d) {
  const int64_t n = static_cast<int64_t>(layers_.size()), R = rows_;
  const T* h = z;
  for (int64_t l = 0; l + 1 < n; ++l) {  // trunk: h_l = φ(h W_lᵀ + b)
    const MlpLayerArgs& L = layers_[l];
    row_major_gemm<T>(gemm_, h, static_cast<const T*>(L.weight), static_cast<T*>(L.h), R, L.in, L.out, true);
    mlp_bias_act(dtype_, BiasActArgs{L.act, L.param, L.h, L.bias, R, L.out});
    h = static_cast<const T*>(L.h);
  }
  const MlpLayerArgs& head = layers_.back();
  row_major_gemm<T>(gemm_, h, static_cast<const T*>(head.weight), static_cast<T*>(head.delta), R, head.in, head.out,
                    true);
  MlpOutputArgs output = output_;
  output.d = d;
  mlp_output(dtype_, output);
  for (int64_t l = n - 1; l >= 1; --l) {  // δ_{l−1} = (δ_l W_l) ⊙ φ'
    const MlpLayerArgs& L = layers_[l];
    const MlpLayerArgs& below = layers_[l - 1];
    row_major_gemm<T>(gemm_, static_cast<const T*>(L.delta), static_cast<const T*>(L.weight),
                      static_cast<T*>(below.delta), R, L.out, L.in, false);
    mlp_act_backward(dtype_, ActBackwardArgs{below.act, below.param, below.delta, below.h, R, below.out});
  }
  const MlpLayerArgs& first = layers_.front();  // ∇_z d = δ_1 W_1
  row_major_gemm<T>(gemm_, static_cast<const T*>(first.delta), static_cast<const T*>(first.weight), g, R, first.out,
                    first.in, false);
}

}  // namespace rdfast::cpu
