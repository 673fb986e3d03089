"""The geometry the kernels share: each program takes a block of rows of a row-major [rows, cols]
array and loops over it in tiles of columns."""
import triton
import triton.language as tl


@triton.jit
def row_block(n_rows, n_cols, BLOCK_ROWS: tl.constexpr):
    """This program's rows [R], which of them exist [R], and where each starts [R, 1] (int64)."""
    rows = tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    return rows, rows < n_rows, rows.to(tl.int64)[:, None] * n_cols


@triton.jit
def column_tile(row_ok, row_start, start, n_cols, BLOCK_COLS: tl.constexpr):
    """Columns start .. start + BLOCK_COLS − 1 of the rows: their indices [C], the mask of the
    elements that exist in rows where ``row_ok`` [R] [R, C], and the elements' offsets [R, C]."""
    cols = start + tl.arange(0, BLOCK_COLS)
    return cols, row_ok[:, None] & (cols < n_cols)[None, :], row_start + cols[None, :]
