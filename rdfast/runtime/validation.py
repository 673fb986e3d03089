"""Checks of user input shared by the public API: each error names the argument at fault."""
from __future__ import annotations

import math
import numbers
import os

import numpy as np
import torch

SEED_LIMIT = 1 << 62  # seeds are keys in [0, 2^62)


def is_int(value) -> bool:
    """An integer number (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_real(value) -> bool:
    """A real number (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_int(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum`` (NumPy integers too); ValueError naming ``name`` otherwise."""
    if not is_int(value) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)


def check_positive_float(name: str, value) -> float:
    """``value`` as a positive finite float (NumPy numbers too); ValueError naming ``name`` otherwise."""
    if not is_real(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    return float(value)


def check_record(record):
    """``record``: a positive int (how many evenly spaced transitions), or a nonempty sequence of int
    transition indices (a tuple); bools, floats and 0-d arrays are refused (TypeError)."""
    if is_int(record):
        return check_int("record", record)
    if isinstance(record, (torch.Tensor, np.ndarray)):
        if record.ndim == 0:
            raise TypeError("record: a 0-d array is ambiguous; pass int(...) for a count of records or "
                            "[k] for the index of one transition")
        record = record.tolist()
    hint = "expected a positive int (a count of records) or a sequence of int transition indices"
    if isinstance(record, (str, bytes, numbers.Number, np.bool_)):
        raise TypeError(f"record: {hint}, got {record!r}")
    try:
        steps = list(record)
    except TypeError:
        raise TypeError(f"record: {hint}, got {type(record).__name__}") from None
    if not steps:
        raise ValueError("record: the sequence of transition indices is empty")
    bad = [v for v in steps if not is_int(v)]
    if bad:
        raise TypeError(f"record: {hint}; the sequence holds {bad[0]!r}")
    return tuple(int(v) for v in steps)


def check_data(x) -> torch.Tensor:
    """x: a float32/float64 tensor [N, *event] with N >= 1 and finite values."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x: expected a torch.Tensor [N, *event], got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(f"x: expected shape [N, *event] with at least 2 dimensions, got {tuple(x.shape)}")
    if x.shape[0] == 0 or x[0].numel() == 0:
        raise ValueError(f"x: is empty (shape {tuple(x.shape)})")
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"x: expected float32 or float64, got {x.dtype} (convert with x.float())")
    if not torch.isfinite(x).all():
        raise ValueError(f"x: contains {int((~torch.isfinite(x)).sum())} NaN or inf values")
    return x.detach()


def infer_latent_dim(decoder, prior, latent_dim) -> int:
    """K from ``latent_dim``, else ``prior.dim``, else ``decoder.latent_dim``, else the first Linear."""
    if latent_dim is not None:
        return check_int("latent_dim", latent_dim)
    for source in (prior, decoder):
        dim = getattr(source, "dim" if source is prior else "latent_dim", None)
        if is_int(dim):
            return int(dim)
    if isinstance(decoder, torch.nn.Module):
        for module in decoder.modules():
            if isinstance(module, torch.nn.Linear):
                return module.in_features
    raise ValueError("latent_dim: cannot infer the latent size from the decoder; pass latent_dim=K")


def resolve_seed(seed, generator) -> int:
    """An int seed in [0, 2^62): ``seed`` itself (NumPy integers too; larger ones are refused, not
    folded onto smaller ones), drawn from ``generator``, or from torch's global RNG."""
    if seed is not None and generator is not None:
        raise ValueError("seed: pass either seed or generator, not both")
    if seed is not None:
        if not is_int(seed) or not 0 <= seed < SEED_LIMIT:
            raise ValueError(f"seed: expected an int in [0, 2**62), got {seed!r}")
        return int(seed)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator, got {type(generator).__name__}")
    return int(torch.randint(0, SEED_LIMIT, (1,), generator=generator))


def free_memory_bytes(device: torch.device) -> int:
    """Memory free for new tensors on ``device`` (CUDA: the driver's count; CPU: available RAM)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: do not refuse


def check_memory(rows: int, latent_dim: int, data_dim: int, itemsize: int, device: torch.device) -> None:
    """Refuse up front a run whose per-chain buffers cannot fit, instead of failing midway.

    Per row: ~6 latent vectors (state, proposal, momentum, gradients) and ~3 data-sized
    vectors (decoder output, its gradient, its autograd copy) of the compute dtype, plus ~12
    float64 scalars. Decoder activations come on top, so this is a lower bound.
    """
    need = rows * ((6 * latent_dim + 3 * data_dim) * itemsize + 12 * 8)
    free = free_memory_bytes(device)
    if need > free:
        raise ValueError(f"batch_size: {rows} rows (items per pass x n_chains) need at least {need / 2**30:.1f} GiB "
                         f"on {device}, but only {free / 2**30:.1f} GiB is free; lower batch_size or n_chains")
