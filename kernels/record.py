"""Per-item AIS estimates from the M contiguous chains of each item (all float64).

  log Ẑ = logsumexp_m log w − log M;  w̃ = softmax_m log w
  D̂ = Σ_m w̃ d  (chains of zero weight add 0, even where d is not finite);  ESS = 1 / Σ_m w̃²
logsumexp shifts by the largest log w, or by 0 where that is ±∞ (as torch.logsumexp does).
"""
import math

import triton
import triton.language as tl

from .numerics import INF, as_float64, is_infinite
from .tiles import column_tile, row_block


@triton.jit
def record_kernel(
    logw_ptr, d_ptr, log_z_ptr, dist_ptr, ess_ptr,
    n_items, n_chains, log_chains: tl.float64,
    BLOCK_ITEMS: tl.constexpr, BLOCK_CHAINS: tl.constexpr,
):
    """log Ẑ, D̂ and ESS [N] for BLOCK_ITEMS items, looping over their chains in blocks."""
    items, item_ok, item_start = row_block(n_items, n_chains, BLOCK_ITEMS)  # [I], [I], [I, 1]

    top = tl.full([BLOCK_ITEMS], -INF, dtype=tl.float64)
    for start in range(0, n_chains, BLOCK_CHAINS):
        _, mask, at = column_tile(item_ok, item_start, start, n_chains, BLOCK_CHAINS)  # [I, C]
        logw = tl.load(logw_ptr + at, mask=mask, other=-INF)
        top = tl.maximum(top, tl.max(logw, axis=1))
    shift = tl.where(is_infinite(top), 0.0, top)

    total = tl.zeros([BLOCK_ITEMS], dtype=tl.float64)
    for start in range(0, n_chains, BLOCK_CHAINS):
        _, mask, at = column_tile(item_ok, item_start, start, n_chains, BLOCK_CHAINS)
        logw = tl.load(logw_ptr + at, mask=mask, other=-INF)
        total += tl.sum(tl.where(mask, tl.exp(logw - shift[:, None]), 0.0), axis=1)
    lse = tl.log(total) + shift  # [I]

    dist = tl.zeros([BLOCK_ITEMS], dtype=tl.float64)
    sum_sq = tl.zeros([BLOCK_ITEMS], dtype=tl.float64)
    for start in range(0, n_chains, BLOCK_CHAINS):
        _, mask, at = column_tile(item_ok, item_start, start, n_chains, BLOCK_CHAINS)
        logw = tl.load(logw_ptr + at, mask=mask, other=-INF)
        d = tl.load(d_ptr + at, mask=mask, other=0.0)
        w = tl.exp(logw - lse[:, None])  # [I, C]
        dist += tl.sum(tl.where(mask & (w > 0.0), w * d, 0.0), axis=1)
        sum_sq += tl.sum(tl.where(mask, w * w, 0.0), axis=1)

    tl.store(log_z_ptr + items, lse - as_float64(log_chains), mask=item_ok)
    tl.store(dist_ptr + items, dist, mask=item_ok)
    tl.store(ess_ptr + items, 1.0 / sum_sq, mask=item_ok)


# ---- launch: the arguments of the kernel above (``rdfast.backends.triton.prepare``) ----------

def prepare_record(kw, bound, tiles):
    """(kernel, grid, arguments, constexprs) of record: one program per BLOCK_ITEMS items."""
    N, M = bound.sizes["N"], kw["n_chains"]
    block_items, block_chains = tiles.blocks(N, M)
    args = (kw["logw"], kw["d"], kw["log_z"], kw["dist"], kw["ess"], N, M, math.log(M))
    return record_kernel, (tiles.cdiv(N, block_items),), args, dict(
        BLOCK_ITEMS=block_items, BLOCK_CHAINS=block_chains)
