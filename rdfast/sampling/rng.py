"""Counter-based random numbers keyed by (seed, global item, chain, step, stream).

Every random number of a run is a pure function of its key, so a run's result does not
depend on how items are split into batches or across processes. The generator is
Philox-4x32 with 10 rounds (Salmon et al., SC'11): key = the 64-bit seed, counter =
(block, chain, item, step·4 + stream). Each counter gives four 32-bit words; normals come
from pairs of words by the Box–Muller transform, uniforms from two words (53 bits).

All arithmetic is on int64 tensors holding unsigned 32-bit values, so it runs on any
device without overflow: 32×32-bit products are split into 16-bit halves. The compiled
extension computes the same words in one kernel on the CPU and on CUDA devices, and on the CPU the
normals too, in double with its own log and sin/cos polynomials (csrc/vecmath_f64.h): within
4e-15 of the torch transform, so float32 normals are almost always the same bits, float64 ones
differ in the last bits. Everything else is bit-identical on every device and backend. ``step`` is
an int, or a 0-d int64 tensor on the device of ``items`` (the device-resident loop's clock):
then no value crosses to the host and the call can be captured in a CUDA graph.
"""
from __future__ import annotations

import functools
import math

import torch

from ..backends import native
from ..backends.spec import TORCH_DTYPES

MASK32 = 0xFFFFFFFF
_M0, _M1 = 0xD2511F53, 0xCD9E8D57  # round multipliers
_W0, _W1 = 0x9E3779B9, 0xBB67AE85  # key schedule increments

STREAM_MOMENTUM = 0
STREAM_ACCEPT = 1
STREAM_INIT = 2
STREAM_DATA = 3


def _mulhilo(a: int, b: torch.Tensor):
    """(hi, lo) 32-bit halves of the 64-bit product of constant a and tensor b (< 2^32)."""
    p_lo = (b & 0xFFFF) * a  # < 2^48
    p_hi = (b >> 16) * a  # < 2^48
    s = p_lo + ((p_hi & 0xFFFF) << 16)  # < 2^49
    lo = s & MASK32
    hi = ((s >> 32) + (p_hi >> 16)) & MASK32
    return hi, lo


def philox(seed: int, c0, c1, c2, c3):
    """Four uint32 words (as int64 tensors) for each counter (c0, c1, c2, c3); broadcasts."""
    k0, k1 = seed & MASK32, (seed >> 32) & MASK32
    c0, c1, c2, c3 = torch.broadcast_tensors(c0, c1, c2, c3)
    for _ in range(10):
        hi0, lo0 = _mulhilo(_M0, c0)
        hi1, lo1 = _mulhilo(_M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0, k1 = (k0 + _W0) & MASK32, (k1 + _W1) & MASK32
    return c0, c1, c2, c3


def _counters(items: torch.Tensor, n_chains: int, n_blocks: int, step, stream: int):
    """Counter words for rows (item, chain) × blocks: each [N, M, n_blocks] (broadcast)."""
    dev = items.device
    c0 = torch.arange(n_blocks, dtype=torch.int64, device=dev).view(1, 1, -1)
    c1 = torch.arange(n_chains, dtype=torch.int64, device=dev).view(1, -1, 1)
    c2 = (items.to(torch.int64) & MASK32).view(-1, 1, 1)
    c3 = (torch.as_tensor(step, dtype=torch.int64, device=dev) * 4 + stream) & MASK32
    return c0, c1, c2, c3


@functools.lru_cache(maxsize=None)
def _compiled(device: torch.device) -> bool:
    """Whether the compiled Philox kernel runs on ``device`` (asked once per device: the answer
    must not need a CUDA call inside a graph capture; a GPU the CUDA build has no code for uses
    the torch ops)."""
    if device.type == "cpu":
        return not native.extension_reason()
    from .. import backends

    return device.type == "cuda" and backends.runs("cuda", device)


def _compiled_cpu(items: torch.Tensor, dtype: torch.dtype) -> bool:
    """Whether the compiled CPU kernels draw in ``dtype`` for ``items`` (float32/64 on the CPU)."""
    return items.device.type == "cpu" and dtype in TORCH_DTYPES and _compiled(items.device)


def _words(seed: int, items: torch.Tensor, n_chains: int, n_blocks: int, step, stream: int):
    """The four words, each [N, M, n_blocks], for rows (item, chain) × blocks; compiled where possible."""
    if _compiled(items.device):
        return native.philox_words(seed, items, n_chains, n_blocks, step, stream).unbind(0)
    return philox(seed, *_counters(items, n_chains, n_blocks, step, stream))


def _unit_open(word: torch.Tensor) -> torch.Tensor:
    """uint32 word -> float64 uniform in (0, 1)."""
    return (word.double() + 0.5) * (1.0 / 4294967296.0)


def normal(seed: int, items: torch.Tensor, n_chains: int, dim: int, step, stream: int,
           dtype=torch.float64) -> torch.Tensor:
    """Standard normals [N·M, dim] for rows (items[n], chain m) at ``step`` of ``stream``: on the
    CPU by the compiled kernel where there is one, else ``normal_twin``."""
    if _compiled_cpu(items, dtype):
        return native.philox_normals(seed, items, n_chains, dim, step, stream, dtype)
    return normal_twin(seed, items, n_chains, dim, step, stream, dtype)


def normal_twin(seed: int, items: torch.Tensor, n_chains: int, dim: int, step, stream: int,
                dtype=torch.float64) -> torch.Tensor:
    """``normal`` in torch ops (on the words of ``_words``): the Box–Muller transform of each
    counter's words (w0, w1, w2, w3), u_i = (w_i + ½)·2⁻³², into (r12 cos 2πu1, r12 sin 2πu1,
    r34 cos 2πu3, r34 sin 2πu3) with r12 = √(−2 log u0), r34 = √(−2 log u2), in float64."""
    n_blocks = (dim + 3) // 4
    w0, w1, w2, w3 = _words(seed, items, n_chains, n_blocks, step, stream)
    u1, u2, u3, u4 = (_unit_open(w) for w in (w0, w1, w2, w3))
    r12 = torch.sqrt(-2.0 * torch.log(u1))
    r34 = torch.sqrt(-2.0 * torch.log(u3))
    a12, a34 = (2.0 * math.pi) * u2, (2.0 * math.pi) * u4
    out = torch.stack([r12 * torch.cos(a12), r12 * torch.sin(a12), r34 * torch.cos(a34), r34 * torch.sin(a34)], -1)
    out = out.reshape(items.numel() * n_chains, n_blocks * 4)[:, :dim]  # [B, dim]
    return out.to(dtype).contiguous()


def _unit_53(high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
    """Two uint32 words -> float64 uniform in (0, 1) with 53 random bits (27 + 26)."""
    bits = (high >> 5) * 67108864 + (low >> 6)
    return ((bits.double() + 0.5) * (1.0 / 9007199254740992.0)).reshape(-1)


def uniform(seed: int, items: torch.Tensor, n_chains: int, step, stream: int) -> torch.Tensor:
    """Float64 uniforms in (0, 1), one per row [N·M], with 53 random bits."""
    w0, w1, _, _ = _words(seed, items, n_chains, 1, step, stream)
    return _unit_53(w0, w1)


def uniform_pair(seed: int, items: torch.Tensor, n_chains: int, step, stream: int) -> tuple:
    """Two independent float64 uniforms per row [N·M] from one counter: the first is ``uniform``'s
    (words 0, 1), the second comes from words 2, 3."""
    w0, w1, w2, w3 = _words(seed, items, n_chains, 1, step, stream)
    return _unit_53(w0, w1), _unit_53(w2, w3)


class Keys:
    """The random streams of a batch of rows: chains 0..M−1 of the items with global indices
    ``items`` [N], under ``seed``. Draws at ``step`` of ``stream`` (a 0-d int64 device tensor
    ``step`` keeps the draw on the device)."""

    def __init__(self, seed: int, items: torch.Tensor, n_chains: int):
        self.seed, self.items, self.n_chains = seed, items, n_chains

    def normal(self, step, stream: int, dim: int, dtype=torch.float64) -> torch.Tensor:
        """Standard normals [N·M, dim]."""
        return normal(self.seed, self.items, self.n_chains, dim, step, stream, dtype)

    def uniform(self, step, stream: int) -> torch.Tensor:
        """Uniforms in (0, 1) [N·M], float64."""
        return uniform(self.seed, self.items, self.n_chains, step, stream)

    def uniform_pair(self, step, stream: int) -> tuple:
        """Two independent uniforms in (0, 1) [N·M] each, float64; the first is ``uniform``'s."""
        return uniform_pair(self.seed, self.items, self.n_chains, step, stream)

    def normal_into(self, step, stream: int, out: torch.Tensor):
        """A draw ``launch()`` writing ``normal(step, stream, dim, out.dtype)`` into ``out`` [N·M, dim]
        (contiguous), prepared once: ``step`` an int (fixed) or a 0-d int64 tensor read at each draw."""
        if _compiled_cpu(self.items, out.dtype) and out.device == self.items.device:
            return native.normals_launch(self.seed, self.items, self.n_chains, step, stream, out)
        return lambda: out.copy_(self.normal(step, stream, out.shape[1], out.dtype))

    def uniform_into(self, step, stream: int, first: torch.Tensor, second: torch.Tensor = None):
        """A draw ``launch()`` writing ``uniform`` (and with ``second``, ``uniform_pair``'s second) into
        float64 [N·M] buffers, prepared once as ``normal_into``."""
        if _compiled_cpu(self.items, first.dtype) and first.device == self.items.device:
            return native.uniforms_launch(self.seed, self.items, self.n_chains, step, stream, first, second)
        if second is None:
            return lambda: first.copy_(self.uniform(step, stream))

        def draw():
            u, v = self.uniform_pair(step, stream)
            first.copy_(u)
            second.copy_(v)
        return draw
