"""Checks of user input shared by the public API: each error names the argument at fault."""
from __future__ import annotations

import math

import torch


def check_int(name: str, value, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return value


def check_positive_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    return float(value)


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
        if isinstance(dim, int):
            return dim
    if isinstance(decoder, torch.nn.Module):
        for module in decoder.modules():
            if isinstance(module, torch.nn.Linear):
                return module.in_features
    raise ValueError("latent_dim: cannot infer the latent size from the decoder; pass latent_dim=K")


def resolve_seed(seed, generator) -> int:
    """An int seed in [0, 2^62): ``seed`` itself, drawn from ``generator``, or from torch's global RNG."""
    if seed is not None and generator is not None:
        raise ValueError("seed: pass either seed or generator, not both")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed: expected a nonnegative int, got {seed!r}")
        return seed % (1 << 62)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator, got {type(generator).__name__}")
    return int(torch.randint(0, 1 << 62, (1,), generator=generator))


def free_memory_bytes(device: torch.device) -> int:
    """Memory free for new tensors on ``device`` (CUDA: the driver's count; CPU: available RAM)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    import os

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
