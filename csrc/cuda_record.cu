// CUDA kernel of record: one warp per item reduces its M chains (logsumexp, weighted
// distortion, ESS).
#include <cmath>

#include "cuda_launch.cuh"
#include "cuda_ops.h"

namespace rdfast::cuda {
namespace {

__global__ void record_kernel(RecordArgs a) {
  const int64_t n = warp_row();
  if (n >= a.n_items) return;
  const int64_t M = a.n_chains;
  const double* lw = a.logw + n * M;  // [M]
  const double* d = a.d + n * M;      // [M]
  double max_lw = -INFINITY;
  for (int64_t i = lane(); i < M; i += kWarp) max_lw = nan_max(max_lw, lw[i]);
  const double shift = logsumexp_shift(warp_max(max_lw));
  double sum_exp = 0.0;
  for (int64_t i = lane(); i < M; i += kWarp) sum_exp += exp(lw[i] - shift);
  const double lse = log(warp_sum(sum_exp)) + shift;
  double sum_wd = 0.0, sum_w2 = 0.0;
  for (int64_t i = lane(); i < M; i += kWarp) {
    const double w = exp(lw[i] - lse);
    sum_wd += weighted_distortion(w, d[i]);
    sum_w2 += w * w;
  }
  sum_wd = warp_sum(sum_wd);
  sum_w2 = warp_sum(sum_w2);
  if (lane() == 0) {
    a.log_z[n] = lse - log(static_cast<double>(M));
    a.dist[n] = sum_wd;
    a.ess[n] = 1.0 / sum_w2;
  }
}

}  // namespace

void record(const RecordArgs& a, uintptr_t stream) {
  if (a.n_items == 0) return;
  record_kernel<<<blocks_for_rows(a.n_items), kThreadsPerBlock, 0, as_stream(stream)>>>(a);
  check_launch("record");
}

}  // namespace rdfast::cuda
