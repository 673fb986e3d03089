// CPU kernel of record: per item log Ẑ, D̂ and ESS from the log-weights of its M chains.
#include <cmath>
#include <limits>

#include "cpu_ops.h"
#include "cpu_parallel.h"
#include "rdfast_rowmath.h"

namespace rdfast::cpu {

void record(const RecordArgs& a) {
  const int64_t N = a.n_items, M = a.n_chains;
  const double log_m = std::log(static_cast<double>(M));

#pragma omp parallel for schedule(static) if (N * M >= kParallelMinElements)
  for (int64_t n = 0; n < N; ++n) {
    const double* lw = a.logw + n * M;  // [M]
    const double* d = a.d + n * M;      // [M]
    double max_lw = -std::numeric_limits<double>::infinity();
    for (int64_t i = 0; i < M; ++i) max_lw = nan_max(max_lw, lw[i]);
    const double shift = logsumexp_shift(max_lw);
    double sum_exp = 0.0;
#pragma omp simd reduction(+ : sum_exp)
    for (int64_t i = 0; i < M; ++i) sum_exp += std::exp(lw[i] - shift);
    const double lse = std::log(sum_exp) + shift;
    double sum_wd = 0.0, sum_w2 = 0.0;
#pragma omp simd reduction(+ : sum_wd, sum_w2)
    for (int64_t i = 0; i < M; ++i) {
      const double w = std::exp(lw[i] - lse);
      sum_wd += weighted_distortion(w, d[i]);
      sum_w2 += w * w;
    }
    a.log_z[n] = lse - log_m;
    a.dist[n] = sum_wd;
    a.ess[n] = 1.0 / sum_w2;
  }
}

}  // namespace rdfast::cpu
