"""Elementwise helpers shared by the kernels, built from core Triton ops only (no libdevice),
so that they also run under the Triton interpreter (``TRITON_INTERPRET=1``)."""
import triton
import triton.language as tl

INF = tl.constexpr(float("inf"))


@triton.jit
def as_float64(x):
    """A float64 scalar from a kernel scalar argument (a plain Python number in the interpreter).

    Adding to a float64 zero keeps a float64 argument exact; ``tl.cast`` of a Python float would
    round it through float32 first."""
    return tl.zeros([], dtype=tl.float64) + x


@triton.jit
def scalar_f64(value, at_ptr, AT: tl.constexpr):
    """A float64 scalar argument: ``value``, or with AT the number stored at ``at_ptr`` (β, Δβ or
    t of a device-resident loop, read when the kernel runs)."""
    if AT:
        out = tl.load(at_ptr).to(tl.float64)
    else:
        out = as_float64(value)
    return out


@triton.jit
def is_finite(x):
    """|x| < ∞: false for ±∞ and for NaN (an ordered comparison)."""
    return tl.abs(x) < INF


@triton.jit
def is_infinite(x):
    """|x| = ∞ (false for NaN)."""
    return tl.abs(x) == INF


SOFTPLUS_THRESHOLD = tl.constexpr(20.0)  # torch.nn.functional.softplus: x above it gives x itself


@triton.jit
def softplus(x):
    """log(1 + eˣ) = max(x, 0) + log(1 + e^{−|x|}) (no overflow for any x), and x above the
    threshold, as the reference."""
    smooth = tl.maximum(x, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(x)))
    return tl.where(x > SOFTPLUS_THRESHOLD, x, smooth)


@triton.jit
def sigmoid(x):
    """σ(x) = 1 / (1 + e^{−x}); e^{−x} = ∞ gives exactly 0."""
    return 1.0 / (1.0 + tl.exp(-x))
