"""The AIS driver: annealed importance sampling with HMC transitions for N items × M chains.

Per chain, with schedule 0 = β_0 ≤ … ≤ β_T: z_0 ~ p, log w_0 = 0, and for k = 1..T

    log w_k = log w_{k−1} − (β_k − β_{k−1}) · d(x, f(z_{k−1}))     (weight first, old state)
    z_k     ~ HMC_k(· | z_{k−1})                                    (leaves f_βk invariant)

with f_β(z) = p(z) exp(−β d(x, f(z))). Each chain caches d and ∇_z d of its current state,
so one transition costs exactly L decoder forwards and L vector–Jacobian products. At
recorded transitions the per-item estimates log Ẑ, D̂, R̂ = −log Ẑ − β D̂ and ESS are kept.
The per-chain work is done by a backend (``rdfast.backends``); random numbers are drawn
here from counter-based streams keyed by (seed, item, chain, step).
"""
from __future__ import annotations

import math
import time
import warnings

import torch

from . import backends, priors, rng
from .backends.protocol import ADAPT_CODES, ADAPT_NONE
from .distortions import Evaluator, resolve
from .progress import Progress
from .result import AISResult
from .schedules import validate as validate_schedule
from .stepsizes import StepSizes, as_step_sizes, knot_boundaries
from .validation import check_data, check_int, check_positive_float, infer_latent_dim, resolve_seed

_DEFAULT_ADAPT = object()
DIVERGENCE_WARN_FRACTION = 0.01


def record_steps(record, n_transitions: int) -> torch.Tensor:
    """Transition indices to record: ``record`` evenly spaced ones ending at T, or explicit ones."""
    T = n_transitions
    if isinstance(record, int) and not isinstance(record, bool):
        if record < 1:
            raise ValueError(f"record: expected a positive int or a sequence of step indices, got {record}")
        R = min(record, T)
        return torch.unique(torch.round(torch.linspace(T / R, T, R, dtype=torch.float64)).to(torch.int64))
    try:
        steps = torch.as_tensor(record, dtype=torch.int64).reshape(-1)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError("record: expected a positive int or a sequence of step indices") from exc
    if steps.numel() == 0 or (steps < 0).any() or (steps > T).any():
        raise ValueError(f"record: step indices must lie in [0, {T}] (the schedule has {T} transitions)")
    return torch.unique(steps)


def ais(decoder, x, schedule, *, distortion="gaussian_nll", logvar=None, prior=None, latent_dim=None,
        n_chains=16, leapfrog_steps=10, step_size=0.01, target_accept=0.65, adapt=_DEFAULT_ADAPT,
        step_sizes=None, record=100, seed=None, generator=None, backend="auto", batch_size=None,
        progress=False) -> AISResult:
    """Run AIS from the prior (β = 0) along ``schedule`` for every item of ``x``.

    decoder: callable z [rows, K] -> x̂ [rows, *x.shape[1:]] (or (mean, logvar) for
        gaussian_nll without ``logvar``); x: [N, *event] float32/float64 data;
    schedule: 1-D nondecreasing sequence starting at 0 (see ``rdfast.schedules``);
    distortion: "gaussian_nll" | "bernoulli_nll" | "squared_error" | fn(x, x_hat) -> [rows];
    prior: None (standard normal) or an object with log_prob and from_noise/sample;
    adapt: "ema" (default when tuning), "cumulative" or None (frozen; the default when
        ``step_sizes`` — a StepSizes or a tuning run's AISResult — are replayed);
    record: number of evenly spaced transitions to record (the last included) or indices;
    seed / generator: make the run reproducible; the random numbers of item n depend only on
        (seed, n), so ``batch_size`` (items per pass) does not change the result.
    Returns an ``AISResult``.
    """
    start = time.monotonic()
    x = check_data(x)
    betas = validate_schedule(schedule)
    T = betas.numel() - 1
    M = check_int("n_chains", n_chains)
    L = check_int("leapfrog_steps", leapfrog_steps)
    eps0 = check_positive_float("step_size", step_size)
    if not (isinstance(target_accept, (int, float)) and 0 < target_accept < 1):
        raise ValueError(f"target_accept: expected a number in (0, 1), got {target_accept!r}")
    if step_sizes is not None:
        step_sizes = as_step_sizes(step_sizes)
        step_sizes.check_matches(T, x.shape[0])
        if adapt is _DEFAULT_ADAPT:
            adapt = None
        elif adapt is not None:
            raise ValueError("adapt: replayed step_sizes are frozen; pass adapt=None (or leave it out)")
    elif adapt is _DEFAULT_ADAPT:
        adapt = "ema"
    if adapt not in ADAPT_CODES:
        raise ValueError(f"adapt: expected 'ema', 'cumulative' or None, got {adapt!r}")
    chunk = x.shape[0] if batch_size is None else check_int("batch_size", batch_size)
    dist = resolve(distortion, logvar, x)
    K = infer_latent_dim(decoder, prior, latent_dim)
    prior = priors.check(prior, K)
    be = backends.get(backend, x.device)
    seed = resolve_seed(seed, generator)
    rec = record_steps(record, T)

    run = _Run(decoder=decoder, dist=dist, prior=prior, backend=be, betas=betas, M=M, L=L, K=K,
               eps0=eps0, target=float(target_accept), adapt=ADAPT_CODES[adapt], seed=seed, rec=rec,
               progress=Progress(T * math.ceil(x.shape[0] / chunk), "ais", bool(progress)))
    parts = [run.chunk(x[i:i + chunk], i, None if step_sizes is None else step_sizes.select(slice(i, i + chunk)))
             for i in range(0, x.shape[0], chunk)]
    out = {name: torch.cat([p[name] for p in parts], dim=1 if name in _PER_RECORD else 0) for name in parts[0]}
    log_eps = out.pop("log_eps")
    config = dict(n_items=x.shape[0], n_chains=M, leapfrog_steps=L, n_transitions=T, latent_dim=K,
                  distortion=dist.name, adapt=adapt, target_accept=float(target_accept), step_size=eps0,
                  replayed_step_sizes=step_sizes is not None, seed=seed, backend=be.name,
                  dtype=str(x.dtype).replace("torch.", ""), beta_max=float(betas[-1]))
    result = AISResult(beta=betas[rec], steps=rec, **out,
                       step_sizes=StepSizes(knot_boundaries(T), log_eps.T.contiguous()),
                       config=config, seconds=time.monotonic() - start)
    _warn_on_faults(result)
    return result


_PER_RECORD = ("log_z", "distortion", "rate", "ess", "accept_rate")


def _warn_on_faults(result: AISResult) -> None:
    proposals = result.n_chains * int(result.config["n_transitions"])
    frac = result.divergences.double() / proposals
    if (frac > DIVERGENCE_WARN_FRACTION).any():
        worst = int(torch.argmax(frac))
        warnings.warn(f"ais: {int(result.divergences.sum())} proposals had a non-finite energy and were rejected "
                      f"(item {worst}: {100 * frac[worst].item():.1f}% of its proposals); see result.divergences",
                      RuntimeWarning, stacklevel=3)
    bad = ~torch.isfinite(result.log_z[-1])
    if bad.any():
        warnings.warn(f"ais: {int(bad.sum())} items have a non-finite final log Z estimate", RuntimeWarning, stacklevel=3)


class _Run:
    """Shared settings of one ``ais`` call; ``chunk`` runs the whole schedule for some items."""

    def __init__(self, **kw):
        self.__dict__.update(kw)
        self.beta_list = self.betas.tolist()
        self.rec_set = set(self.rec.tolist())
        self.bounds = knot_boundaries(self.betas.numel() - 1).tolist()

    def _initial_states(self, items, dtype):
        K, M = self.K, self.M
        if hasattr(self.prior, "from_noise"):
            noise = rng.normal(self.seed, items, M, K, 0, rng.STREAM_INIT)
            u = rng.uniform(self.seed, items, M, 0, rng.STREAM_INIT)
            z = self.prior.from_noise(noise, u)
        else:
            with torch.random.fork_rng(devices=[items.device] if items.device.type == "cuda" else []):
                torch.manual_seed(self.seed + int(items[0]))
                z = self.prior.sample(items.numel() * M)
        if not isinstance(z, torch.Tensor) or z.shape != (items.numel() * M, K):
            raise ValueError(f"prior: samples must have shape [{items.numel() * M}, {K}], got {getattr(z, 'shape', None)}")
        return z.to(device=items.device, dtype=dtype).contiguous()

    def chunk(self, x, offset, frozen: StepSizes | None):
        """Run items x [n, *event] (global indices offset..offset+n−1) through the schedule."""
        N, M, L, K, be = x.shape[0], self.M, self.L, self.K, self.backend
        B, dev, dt = N * M, x.device, x.dtype
        f64 = dict(dtype=torch.float64, device=dev)
        items = torch.arange(offset, offset + N, device=dev)
        ev = Evaluator(self.decoder, x, M, self.dist, be)
        custom_prior = not getattr(self.prior, "is_standard_normal", False)

        z = self._initial_states(items, dt)  # [B, K] current states
        d = torch.empty(B, **f64)  # [B] cached d(z)
        try:
            g = ev(z, d)  # [B, K] cached ∇_z d(z)
        except RuntimeError as exc:
            raise ValueError(f"decoder: failed on latents z of shape {tuple(z.shape)}, dtype {z.dtype}, device "
                             f"{z.device} (z takes the dtype and device of x): {exc}") from exc
        if not torch.isfinite(d).all() or not torch.isfinite(g).all():
            n_bad = int((~torch.isfinite(d)).sum() + (~torch.isfinite(g).all(1)).sum())
            raise ValueError(f"decoder: non-finite distortion or gradient at {n_bad} initial prior samples; "
                             "check the decoder, the data and logvar")
        zp, dp = torch.empty_like(z), torch.empty(B, **f64)  # proposal
        logw, h0 = torch.zeros(B, **f64), torch.empty(B, **f64)
        eps = torch.full((B,), self.eps0, **f64)
        acc_stat = torch.full((B,), self.target, **f64)
        n_acc = torch.zeros(B, dtype=torch.int64, device=dev)
        n_div = torch.zeros(B, dtype=torch.int64, device=dev)
        sum_log_eps = torch.zeros(B, **f64)
        log_eps = torch.empty(len(self.bounds) - 1, N, **f64)  # [S, N]
        R = self.rec.numel()
        rec = {name: torch.full((R, N), float("nan"), **f64) for name in _PER_RECORD}
        r, knot, prev_k, prev_acc = 0, 0, 0, torch.zeros(N, **f64)
        pe0 = pg0 = pe1 = pg1 = None

        def record(k):
            nonlocal r, prev_k, prev_acc
            be.record(logw, d, M, rec["log_z"][r], rec["distortion"][r], rec["ess"][r])
            rec["rate"][r] = -rec["log_z"][r] - self.beta_list[k] * rec["distortion"][r]
            acc = n_acc.view(N, M).sum(1).double()
            if k > prev_k:
                rec["accept_rate"][r] = (acc - prev_acc) / (M * (k - prev_k))
            r, prev_k, prev_acc = r + 1, k, acc

        if 0 in self.rec_set:
            record(0)
        for k in range(1, len(self.beta_list)):
            beta, dbeta = self.beta_list[k], self.beta_list[k] - self.beta_list[k - 1]
            if k == self.bounds[knot] and frozen is not None:
                eps.copy_(torch.exp(frozen.log_eps[knot].to(dev)).repeat_interleave(M))
            sum_log_eps.add_(torch.log(eps))
            p = rng.normal(self.seed, items, M, K, k, rng.STREAM_MOMENTUM, dt)  # [B, K]
            if custom_prior:
                pe0, pg0 = priors.energy_and_grad(self.prior, z)
            be.leapfrog_begin(z, g, d, p, zp, logw, h0, beta, dbeta, eps, pe0, pg0)
            for step in range(L):
                gp = ev(zp, dp)
                if custom_prior:
                    pe1, pg1 = priors.energy_and_grad(self.prior, zp)
                if step < L - 1:
                    be.leapfrog_step(zp, gp, p, beta, eps, pg1)
                else:
                    be.leapfrog_end(zp, gp, p, beta, eps, pg1)
            u = rng.uniform(self.seed, items, M, k, rng.STREAM_ACCEPT)
            be.metropolis(z, g, d, zp, gp, dp, p, h0, u, beta, eps, acc_stat, n_acc, n_div,
                          self.adapt, self.target, k, pe1)
            if k == self.bounds[knot + 1] - 1:
                count = self.bounds[knot + 1] - self.bounds[knot]
                log_eps[knot] = sum_log_eps.view(N, M).sum(1) / (M * count)
                sum_log_eps.zero_()
                knot += 1
            if k in self.rec_set:
                record(k)
            self.progress.update()

        total = max(len(self.beta_list) - 1, 1)
        out = {name: t.cpu() for name, t in rec.items()}
        out.update(acceptance=(n_acc.view(N, M).sum(1).double() / (M * total)).cpu(),
                   divergences=n_div.view(N, M).sum(1).cpu(), z=z.view(N, M, K).cpu(),
                   log_w=logw.view(N, M).cpu(), log_eps=log_eps.T.cpu())
        return out
