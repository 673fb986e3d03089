"""What is timed: a callable per (configuration, provider) that runs one block of transitions.

Providers:
    rdfast-cpu, rdfast-torch   rdfast.ais over ``block`` transitions with that backend (the
                               whole public call: decoder capture, set-up, one initial
                               evaluation, the loop), on the decoder as the configuration writes it
    published                  bench.published.PublishedAIS: ``block`` transitions
    floor-autograd             per transition L × (decoder forward + autograd input-gradient VJP)
    floor-mm                   per transition L × the decoder's matrix products alone (forward
                               h W_lᵀ and backward δ W_l for every layer), torch.mm into
                               preallocated outputs; the input-gradient product δ_1 W_1 in
                               its faster orientation on this machine, δ_1 W_1 or (W_1ᵀ δ_1ᵀ)
                               (timed once at set-up; rdfast computes δ_1 W_1); dense decoders only
"""
from __future__ import annotations

import time

import torch

import rdfast
from configs import DTYPE
from published import PublishedAIS

PROVIDERS = ("rdfast-cpu", "rdfast-torch", "published", "floor-autograd", "floor-mm")


def available(provider: str) -> bool:
    if provider.startswith("rdfast-"):
        return rdfast.backends.available()[provider.split("-")[1]]["available"]
    return True


def applies(cfg, provider: str) -> bool:
    """Whether ``provider`` measures something for ``cfg`` (floor-mm: dense layers only)."""
    return provider != "floor-mm" or cfg.mlp_like


def _rdfast(cfg, backend, device, cuda_graphs):
    decoder, x = cfg.decoder(device), cfg.data(device)
    schedule = rdfast.schedules.sigmoid(cfg.block, beta_max=1.0)

    def run():
        result = rdfast.ais(decoder, x, schedule, distortion=cfg.distortion, logvar=cfg.logvar,
                            latent_dim=cfg.latent_dim, n_chains=cfg.n_chains, leapfrog_steps=cfg.leapfrog_steps,
                            record=1, seed=0, backend=backend, cuda_graphs=cuda_graphs)
        assert result.config["cuda_graphs"] is bool(cuda_graphs)
    return run


def _published(cfg, device):
    ais = PublishedAIS(cfg.decoder(device), cfg.data(device), cfg.latent_dim, cfg.n_chains, cfg.distortion, cfg.logvar,
                       cfg.leapfrog_steps)
    betas = torch.linspace(0.0, 1.0, cfg.block + 1).tolist()
    return lambda: ais.run(betas)


def _floor_autograd(cfg, device):
    decoder = cfg.decoder(device)
    z = torch.randn(cfg.rows, cfg.latent_dim, dtype=DTYPE, device=device)  # [B, K]
    grad_out = torch.randn_like(decoder(z))  # [B, *event]

    def run():
        for _ in range(cfg.block * cfg.leapfrog_steps):
            zr = z.detach().requires_grad_()
            torch.autograd.grad(decoder(zr), zr, grad_out)
    return run


def _faster(*runs):
    """The fastest of ``runs`` (callables), by the median of 5 timings of 20 calls after a warm-up."""
    def seconds(run):
        run()
        times = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(20):
                run()
            times.append(time.perf_counter() - start)
        return sorted(times)[2]
    return min(runs, key=seconds)


def _floor_mm(cfg, device):
    weights = [m.weight for m in cfg.sequential(device) if isinstance(m, torch.nn.Linear)]  # [out, in]
    like = dict(dtype=weights[0].dtype, device=device)
    acts = [torch.randn(cfg.rows, w, **like) for w in cfg.sizes]  # [B, width] per layer
    deltas = [torch.empty_like(a) for a in acts]  # deltas[0]: ∇_z d [B, K]
    grad_t = torch.empty(cfg.sizes[0], cfg.rows, **like)  # [K, B]
    first = acts[1] if len(weights) == 1 else deltas[1]  # δ_1 [B, sizes[1]]
    input_grad = _faster(lambda: torch.mm(first, weights[0], out=deltas[0]),
                         lambda: torch.mm(weights[0].t(), first.t(), out=grad_t))

    def run():
        for _ in range(cfg.block * cfg.leapfrog_steps):
            for l, W in enumerate(weights):
                torch.mm(acts[l], W.t(), out=acts[l + 1])
            for l in range(len(weights), 1, -1):
                torch.mm(acts[l] if l == len(weights) else deltas[l], weights[l - 1], out=deltas[l - 1])
            input_grad()
    return run


def make(cfg, provider: str, device: str = "cpu"):
    """A callable running ``cfg.block`` transitions of ``provider`` on ``device`` (on a GPU it
    waits for the device to finish). ``rdfast-<backend>`` replays CUDA graphs on a GPU,
    ``rdfast-<backend>-eager`` does not."""
    if provider.startswith("rdfast-"):
        backend = provider.split("-")[1]
        run = _rdfast(cfg, backend, device, device == "cuda" and not provider.endswith("-eager"))
    else:
        run = {"published": _published, "floor-autograd": _floor_autograd, "floor-mm": _floor_mm}[provider](cfg, device)
    if device != "cuda":
        return run

    def run_and_wait():
        run()
        torch.cuda.synchronize()
    return run_and_wait
