"""The AIS driver: annealed importance sampling with HMC transitions for N items × M chains.

Per chain, along a path β_0, β_1, …, β_T (forward: 0 = β_0 ≤ … ≤ β_T; BDMC's reverse
chains walk it backwards from an exact posterior sample):

    log w_k = log w_{k−1} − (β_k − β_{k−1}) · d(x, f(z_{k−1}))     (weight first, old state)
    z_k     ~ HMC_k(· | z_{k−1})                                    (leaves f_βk invariant)

with f_β(z) = p(z) exp(−β d(x, f(z))). Each chain caches d and ∇_z d of its current state,
so one transition costs exactly L decoder forwards and L vector–Jacobian products. At
recorded transitions the per-item estimates log Ẑ, D̂, R̂ = −log Ẑ − β D̂ and ESS are kept.
The per-chain work is done by a backend (``rdfast.backends``); random numbers are drawn
from counter-based streams keyed by (seed, global item, chain, step), so batching does not
change results and a resumed run continues exactly.
"""
from __future__ import annotations

import bisect
import types
import math
import time
import warnings

import torch

from .. import backends
from . import priors, rng
from . import adapt as adaptation
from ..runtime.checkpoint import Checkpointer, fingerprint
from ..runtime.device_loop import DeviceClock, TransitionRunner, graphs_wanted, remember_uncapturable
from .distortions import make_evaluator, resolve
from ..runtime.distributed import run_ais
from ..runtime.progress import Progress
from .result import AISResult
from .schedules import validate as validate_schedule
from .stepsizes import StepSizes, as_step_sizes, knot_boundaries
from ..runtime.validation import check_data, check_int, check_memory, check_positive_float, infer_latent_dim, resolve_seed

_DEFAULT_ADAPT = object()
DIVERGENCE_WARN_FRACTION = 0.01
SEGMENT_MAX = 64  # transitions between the host's looks at progress and checkpoint time
PER_RECORD = ("log_z", "distortion", "rate", "ess", "accept_rate")


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
        progress=False, checkpoint=None, checkpoint_every=600.0, resume=None, distributed=None,
        cuda_graphs=None) -> AISResult | None:
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
        (seed, n), so ``batch_size`` (items per pass) does not change the result;
    checkpoint: path of a file to which the whole state is written atomically every
        ``checkpoint_every`` seconds (a float) or transitions (an int), and at the end;
    resume: path of such a file: continue that run (same arguments) to the result an
        uninterrupted run gives.
    distributed: None (shard the items over the ranks of an initialised torch.distributed
        process group, if any), True (also initialise one from torchrun's environment), "rank0"
        (as True, but ranks other than 0 return None) or False (all items here); every rank passes
        all of x, on its own device; each rank checkpoints to ``<path>.rank{r}of{W}``. See
        ``rdfast.distributed`` and docs/distributed.md.
    cuda_graphs: None (on CUDA with torch >= 2.12, capture blocks of transitions as CUDA graphs
        and replay them; if the decoder cannot be captured, warn, run eagerly and do not try
        again with that decoder), True (capture or fail) or False (eager). The result is the
        same; ``result.config["cuda_graphs"]`` says which ran.
    Returns an ``AISResult`` (the same as one process over all items gives).
    """
    x = check_data(x)
    betas = validate_schedule(schedule)
    return run_ais(distributed, anneal, decoder, x, betas, distortion=distortion, logvar=logvar, prior=prior,
                   latent_dim=latent_dim, n_chains=n_chains, leapfrog_steps=leapfrog_steps, step_size=step_size,
                   target_accept=target_accept, adapt=adapt, step_sizes=step_sizes, record=record, seed=seed,
                   generator=generator, backend=backend, batch_size=batch_size, progress=progress,
                   checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume, cuda_graphs=cuda_graphs)


def anneal(decoder, x, betas, *, initial=None, item_offset=0, label="ais", distortion="gaussian_nll",
           logvar=None, prior=None, latent_dim=None, n_chains=16, leapfrog_steps=10, step_size=0.01,
           target_accept=0.65, adapt=_DEFAULT_ADAPT, step_sizes=None, record=100, seed=None, generator=None,
           backend="auto", batch_size=None, progress=False, checkpoint=None, checkpoint_every=600.0,
           resume=None, cuda_graphs=None) -> AISResult:
    """AIS along any validated path ``betas`` [T + 1] (float64) for checked data ``x``.

    ``initial`` [N, K] or [N, M, K]: start the chains of item n at initial[n] (every chain) or
    initial[n, m] instead of sampling the prior (BDMC's reverse chains run betas from β* to 0). ``item_offset``: the
    global index of x[0], which keys its random streams. Other arguments as ``ais``.
    """
    start = time.monotonic()
    T = betas.numel() - 1
    M = check_int("n_chains", n_chains)
    L = check_int("leapfrog_steps", leapfrog_steps)
    eps0 = check_positive_float("step_size", step_size)
    if isinstance(target_accept, bool) or not (isinstance(target_accept, (int, float)) and 0 < target_accept < 1):
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
    if cuda_graphs not in (None, True, False):
        raise ValueError(f"cuda_graphs: expected None, True or False, got {cuda_graphs!r}")
    rule = adaptation.make(adapt, float(target_accept))
    chunk = x.shape[0] if batch_size is None else check_int("batch_size", batch_size)
    dist = resolve(distortion, logvar, x)
    K = infer_latent_dim(decoder, prior, latent_dim)
    prior = priors.check(prior, K)
    if initial is not None and tuple(initial.shape) not in ((x.shape[0], K), (x.shape[0], M, K)):
        raise ValueError(f"initial: expected shape {(x.shape[0], K)} or {(x.shape[0], M, K)}, got {tuple(initial.shape)}")
    be = backends.get(backend, x.device)
    check_memory(min(chunk, x.shape[0]) * M, K, x[0].numel(), x.element_size(), x.device)
    seed = resolve_seed(seed, generator)
    rec = record_steps(record, T)
    config = dict(n_items=x.shape[0], n_chains=M, leapfrog_steps=L, n_transitions=T, latent_dim=K,
                  distortion=dist.name, adapt=adapt, target_accept=float(target_accept), step_size=eps0,
                  replayed_step_sizes=step_sizes is not None, seed=seed, backend=be.name,
                  dtype=str(x.dtype).replace("torch.", ""), beta_max=float(betas.max()), item_offset=item_offset)
    ckpt = Checkpointer(checkpoint, checkpoint_every, resume, x.device, lambda: fingerprint(
        config, betas=betas, x=x, rec=rec, decoder=decoder, logvar=dist.logvar, initial=initial,
        step_sizes=None if step_sizes is None else step_sizes.log_eps, batch_size=chunk))

    run = _Run(decoder=decoder, dist=dist, prior=prior, backend=be, betas=betas, M=M, L=L, K=K,
               eps0=eps0, target=float(target_accept), rule=rule, seed=seed, rec=rec, ckpt=ckpt,
               cuda_graphs=graphs_wanted(cuda_graphs, x.device, decoder),
               progress=Progress(T * math.ceil(x.shape[0] / chunk), label, bool(progress)))
    ckpt.started = start
    parts = ckpt.completed_parts()
    for i in range(len(parts) * chunk, x.shape[0], chunk):
        sl = slice(i, i + chunk)
        run.progress.done = T * (i // chunk)
        parts.append(run.chunk(x[sl], item_offset + i, None if step_sizes is None else step_sizes.select(sl),
                               None if initial is None else initial[sl], ckpt.resume_state(item_offset + i), parts))
        ckpt.save(parts, None, None, run.progress_seconds())
    out = {name: torch.cat([p[name] for p in parts], dim=1 if name in PER_RECORD else 0) for name in parts[0]}
    log_eps = out.pop("log_eps")
    result = AISResult(beta=betas[rec], steps=rec, **out, step_sizes=StepSizes(knot_boundaries(T), log_eps.T.contiguous()),
                       config=dict(config, cuda_graphs=run.graphs_used),
                       seconds=ckpt.previous_seconds + time.monotonic() - start)
    _warn_on_faults(result)
    return result


def _warn_on_faults(result: AISResult) -> None:
    proposals = result.n_chains * int(result.config["n_transitions"])
    frac = result.divergences.double() / max(proposals, 1)
    if (frac > DIVERGENCE_WARN_FRACTION).any():
        worst = int(torch.argmax(frac))
        warnings.warn(f"ais: {int(result.divergences.sum())} proposals had a non-finite energy and were rejected "
                      f"(item {worst}: {100 * frac[worst].item():.1f}% of its proposals); see result.divergences",
                      RuntimeWarning, stacklevel=3)
    bad = ~torch.isfinite(result.log_z[-1])
    if bad.any():
        warnings.warn(f"ais: {int(bad.sum())} items have a non-finite final log Z estimate", RuntimeWarning, stacklevel=3)


class _Run:
    """Shared settings of one annealing call; ``chunk`` runs the whole path for some items."""

    def __init__(self, **kw):
        self.__dict__.update(kw)
        self.beta_list = self.betas.tolist()
        self.rec_set = set(self.rec.tolist())
        self.rec_list = sorted(self.rec_set | {self.betas.numel() - 1})  # the last step ends every run
        self.bounds = knot_boundaries(self.betas.numel() - 1).tolist()
        self.graphs_used = False

    def _initial_states(self, items, dtype, initial):
        K, M = self.K, self.M
        if initial is not None:
            z = initial.to(device=items.device, dtype=dtype)
            z = z.repeat_interleave(M, 0) if z.dim() == 2 else z.reshape(-1, K)
        elif hasattr(self.prior, "from_noise"):
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

    def _fresh_state(self, x, items, initial, ev):
        N, M = x.shape[0], self.M
        B, dev = N * M, x.device
        f64 = dict(dtype=torch.float64, device=dev)
        z = self._initial_states(items, x.dtype, initial)  # [B, K] current states
        d = torch.empty(B, **f64)  # [B] cached d(z)
        try:
            g = ev(z, d)  # [B, K] cached ∇_z d(z)
        except RuntimeError as exc:
            raise ValueError(f"decoder: failed on latents z of shape {tuple(z.shape)}, dtype {z.dtype}, device "
                             f"{z.device} (z takes the dtype and device of x): {exc}") from exc
        if not torch.isfinite(d).all() or not torch.isfinite(g).all():
            n_bad = int((~(torch.isfinite(d) & torch.isfinite(g).all(1))).sum())
            raise ValueError(f"decoder: non-finite distortion or gradient at {n_bad} initial states; "
                             "check the decoder, the data and logvar")
        R = self.rec.numel()
        return dict(
            k=0, r=0, knot=0, prev_k=0, z=z, g=g, d=d,
            logw=torch.zeros(B, **f64), eps=torch.full((B,), self.eps0, **f64),
            acc_stat=torch.full((B,), self.target, **f64),
            n_acc=torch.zeros(B, dtype=torch.int64, device=dev), n_div=torch.zeros(B, dtype=torch.int64, device=dev),
            sum_log_eps=torch.zeros(B, **f64), log_eps=torch.empty(len(self.bounds) - 1, N, **f64),  # [S, N]
            prev_acc=torch.zeros(N, **f64), **{name: torch.full((R, N), float("nan"), **f64) for name in PER_RECORD})

    def progress_seconds(self) -> float:
        return self.ckpt.previous_seconds + time.monotonic() - self.ckpt.started

    def chunk(self, x, offset, frozen: StepSizes | None, initial, saved, parts):
        """Run items x [n, *event] (global indices offset..offset+n−1) along the path."""
        N, M, L, K, be = x.shape[0], self.M, self.L, self.K, self.backend
        T = len(self.beta_list) - 1
        dev, dt = x.device, x.dtype
        items = torch.arange(offset, offset + N, device=dev)
        ev = make_evaluator(self.decoder, x, M, self.dist, be)
        custom_prior = not getattr(self.prior, "is_standard_normal", False)
        s = saved if saved is not None else self._fresh_state(x, items, initial, ev)
        z, g, d, logw, eps = s["z"], s["g"], s["d"], s["logw"], s["eps"]
        zp, dp, h0 = torch.empty_like(z), torch.empty_like(d), torch.empty_like(d)  # proposal, H0
        accepted, accept_prob = torch.empty_like(d), torch.empty_like(d)
        info = types.SimpleNamespace(accepted=accepted, accept_prob=accept_prob, n_accept=s["n_acc"])
        frozen_log_eps = None if frozen is None else frozen.log_eps.to(dev)  # [S, N], on the device once

        def transition(k, beta, dbeta):
            """One HMC transition at step k (0-d device tensors k, β_k, Δβ_k): weight, then move."""
            pe0 = pg0 = pe1 = pg1 = None
            s["sum_log_eps"].add_(torch.log(eps))
            p = rng.normal(self.seed, items, M, K, k, rng.STREAM_MOMENTUM, dt)  # [B, K]
            if custom_prior:
                pe0, pg0 = priors.energy_and_grad(self.prior, z)
            be.leapfrog_begin(z, g, d, p, zp, logw, h0, beta, dbeta, eps, prior_energy=pe0, prior_grad=pg0)
            for step in range(L):
                gp = ev(zp, dp)
                if custom_prior:
                    pe1, pg1 = priors.energy_and_grad(self.prior, zp)
                if step < L - 1:
                    be.leapfrog_step(zp, gp, p, beta, eps, prior_grad=pg1)
                else:
                    be.leapfrog_end(zp, gp, p, beta, eps, prior_grad=pg1)
            u = rng.uniform(self.seed, items, M, k, rng.STREAM_ACCEPT)
            be.metropolis(z, g, d, zp, gp, dp, p, h0, u, beta, accepted, accept_prob, s["n_acc"], s["n_div"],
                          prior_energy=pe1)
            if self.rule is not None:
                self.rule.update({"accept_stat": s["acc_stat"]}, eps, info, k)

        def record(k):
            r = s["r"]
            be.record(logw, d, M, s["log_z"][r], s["distortion"][r], s["ess"][r])
            s["rate"][r] = -s["log_z"][r] - self.beta_list[k] * s["distortion"][r]
            acc = s["n_acc"].view(N, M).sum(1).double()
            if k > s["prev_k"]:
                s["accept_rate"][r] = (acc - s["prev_acc"]) / (M * (k - s["prev_k"]))
            s.update(r=r + 1, prev_k=k, prev_acc=acc)

        k = s["k"]
        if k == 0 and 0 in self.rec_set:
            record(0)
        self.progress.update(k)
        runner = TransitionRunner(transition, DeviceClock(self.betas, k, dev), self.cuda_graphs)
        while k < T:
            knot = s["knot"]
            if frozen_log_eps is not None and k + 1 == self.bounds[knot]:
                eps.copy_(torch.exp(frozen_log_eps[knot]).repeat_interleave(M))
            # transitions k+1 .. end need nothing from the host: end is the next record, the end
            # of this step-size knot, a checkpoint due by count or SEGMENT_MAX on, whichever is first
            end = min(self.bounds[knot + 1] - 1, self.rec_list[bisect.bisect_right(self.rec_list, k)],
                      k + self.ckpt.transitions_until_due(), k + SEGMENT_MAX)
            runner.run(end - k)
            if end == self.bounds[knot + 1] - 1:
                count = self.bounds[knot + 1] - self.bounds[knot]
                s["log_eps"][knot] = s["sum_log_eps"].view(N, M).sum(1) / (M * count)
                s["sum_log_eps"].zero_()
                s["knot"] = knot + 1
            s["k"] = end
            if end in self.rec_set:
                record(end)
            self.progress.update(end - k)
            if end < T:
                self.ckpt.maybe_save(parts, offset, s, self.progress_seconds, end - k)
            k = end
        self.graphs_used = self.graphs_used or runner.captured
        if runner.capture_failed:  # the decoder cannot be captured: later batches and runs go eagerly at once
            self.cuda_graphs = False
            remember_uncapturable(self.decoder)

        total = max(T, 1)
        out = {name: s[name].cpu() for name in PER_RECORD}
        out.update(acceptance=(s["n_acc"].view(N, M).sum(1).double() / (M * total)).cpu(),
                   divergences=s["n_div"].view(N, M).sum(1).cpu(), z=z.view(N, M, K).cpu(),
                   log_w=logw.view(N, M).cpu(), log_eps=s["log_eps"].T.cpu())
        return out
