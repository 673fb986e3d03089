// Kernel templates of the distortion op (cpu_distortion.cpp) and the per-row maths that the MLP
// output kernel shares (cpu_mlp_kernels.h), included once per instruction set (cpu_isa.h),
// hence no include guard.
//
// A row runs in two passes over the L1-resident row: pass 1, in T at full vector width, writes
// ∂d/∂x̂ (and ∂d/∂v) and the T part of every element's d-term into a row buffer; pass 2 sums
// those in double, as the reference sums (rdfast_rowmath.h has the element maths).

// The d-term sum of a row from its values [P]: Σ_j value_j, plus Σ_j v_j for gaussian_nll
// (v: [P] for per-pixel and per-row log-variance, [1] for a scalar one), in double.
template <class T, Kind kKind, LogvarLayout kLogvar>
inline double row_sum(const T* values, const T* v, int64_t P) {
  constexpr bool kVector = kLogvar == LogvarLayout::PER_PIXEL || kLogvar == LogvarLayout::PER_ROW;
  double sum = 0.0;
  if constexpr (kKind == Kind::GAUSSIAN_NLL && kVector) {
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < P; ++j) sum += static_cast<double>(values[j]) + static_cast<double>(v[j]);
  } else {
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < P; ++j) sum += static_cast<double>(values[j]);
    if constexpr (kKind == Kind::GAUSSIAN_NLL && kLogvar == LogvarLayout::SCALAR) {
      sum += static_cast<double>(P) * static_cast<double>(v[0]);
    }
  }
  return sum;
}

// e^{−v} of a fixed log-variance, once per launch: [P] per pixel, [1] scalar or none (e^0 = 1).
template <class T, LogvarLayout kLogvar>
std::vector<T> fixed_precision(const T* v, int64_t P) {
  if constexpr (kLogvar == LogvarLayout::PER_PIXEL) {
    std::vector<T> prec(P);
    for (int64_t j = 0; j < P; ++j) prec[j] = exp_of(-v[j]);
    return prec;
  } else {
    return {kLogvar == LogvarLayout::SCALAR ? exp_of(-v[0]) : T(1)};
  }
}

// Elements from which a row-parallel loop of ``kind`` runs on several threads.
template <Kind kKind, LogvarLayout kLogvar>
constexpr int64_t parallel_threshold() {
  return kKind == Kind::BERNOULLI_NLL || kLogvar == LogvarLayout::PER_ROW ? kParallelMinTranscendental
                                                                            : kParallelMinElements;
}

// d [B] and ∂d/∂x̂ [B, P] (∂d/∂v [B, P] for per-row log-variance) of x [N, P], x̂ [B, P].
template <class T, Kind kKind, LogvarLayout kLogvar>
void distortion_rows(const DistortionArgs& a) {
  const T* x = static_cast<const T*>(a.x);
  const T* xhat = static_cast<const T*>(a.xhat);
  const T* logvar = static_cast<const T*>(a.logvar);
  T* grad = static_cast<T*>(a.grad_xhat);
  T* grad_v = static_cast<T*>(a.grad_logvar);
  const int64_t M = a.n_chains, P = a.size, B = a.n_items * M;
  constexpr bool kPerRow = kLogvar == LogvarLayout::PER_ROW;
  constexpr bool kPerPixel = kLogvar == LogvarLayout::PER_PIXEL;
  const std::vector<T> prec = fixed_precision<T, kLogvar>(logvar, P);  // unused for per-row

#pragma omp parallel if (B * P >= parallel_threshold<kKind, kLogvar>())
  {
    std::vector<T> values(P);  // one row's d-term parts
#pragma omp for schedule(static)
    for (int64_t r = 0; r < B; ++r) {
      const T* xr = x + (r / M) * P;
      const T* hr = xhat + r * P;
      const T* vr = kPerRow ? logvar + r * P : logvar;
      T* gr = grad + r * P;
      if constexpr (kPerRow) {
        T* gvr = grad_v + r * P;
#pragma omp simd
        for (int64_t j = 0; j < P; ++j) {
          const T sq = gaussian_value(xr[j], hr[j], exp_of(-vr[j]), &gr[j]);
          values[j] = sq;
          gvr[j] = gaussian_grad_logvar(sq);
        }
      } else {
#pragma omp simd
        for (int64_t j = 0; j < P; ++j) {
          values[j] = element_value<T, kKind>(xr[j], hr[j], prec[kPerPixel ? j : 0], &gr[j]);
        }
      }
      a.d[r] = distortion_row<kKind>(row_sum<T, kKind, kLogvar>(values.data(), vr, P), P);
    }
  }
}

inline void distortion(int dtype, const DistortionArgs& a) {
  dispatch_dtype(dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    dispatch_distortion(a.kind, a.logvar_layout, [&](auto d) { distortion_rows<T, d.kind, d.logvar>(a); });
  });
}
