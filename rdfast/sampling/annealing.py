"""The AIS driver: annealed importance sampling with HMC transitions for N items × M chains.

Per chain, along a path β_0, β_1, …, β_T (forward: 0 = β_0 ≤ … ≤ β_T; BDMC's reverse
chains walk it backwards from an exact posterior sample):

    log w_k = log w_{k−1} − (β_k − β_{k−1}) · d(x, f(z_{k−1}))     (weight first, old state)
    z_k     ~ HMC_k(· | z_{k−1})                                    (leaves f_βk invariant)

with f_β(z) = p(z) exp(−β d(x, f(z))). The pieces: the HMC kernel and typed chain state
(``rdfast.sampling.hmc``) built from a metric (``metrics``), a step-size rule outside the kernel
(``adapt``), the estimates at recorded transitions (``records``), round 1's tuned parameters
and their replay in round 2 (``tuning``), and the plan of host-free segments (``rdfast.runtime.plan``) run by the device
loop (``rdfast.runtime.device_loop``). Random numbers come from streams keyed by (seed, global
item, chain, step), so batching does not change results and a resumed run continues exactly.
"""
from __future__ import annotations

import math
import time
import warnings

import torch

from .. import backends
from ..fastpath import make_evaluator
from ..runtime.checkpoint import Checkpointer, fingerprint
from ..runtime.device_loop import DeviceClock, TransitionRunner, graphs_wanted, remember_uncapturable
from ..runtime.distributed import checked_on_every_rank, map_items
from ..runtime.plan import segments
from ..runtime.progress import Progress
from ..runtime.validation import check_memory, check_record
from . import adapt as adaptation
from . import metrics, priors, rng
from .config import DEFAULT_ADAPT, HMCConfig, Problem, RunConfig
from .hmc import HMC, ChainState
from .records import FIELDS, Recorder
from .rotation import BasisEstimator, Rotation
from .result import AISResult
from .schedules import validate as validate_schedule
from .tuning import Replay, Tuner, Tuning, basis_refresh_knots, knot_boundaries

DIVERGENCE_WARN_FRACTION = 0.01
STUCK_MIN_PROPOSALS = 20  # per item: all rejected by chance at acceptance 0.5 with odds 1e-6


def record_steps(record, n_transitions: int) -> torch.Tensor:
    """Transition indices to record: ``record`` evenly spaced ones ending at T, or explicit ones
    (``rdfast.runtime.validation.check_record``)."""
    T, record = n_transitions, check_record(record)
    if isinstance(record, int):
        R = min(record, T)
        return torch.unique(torch.round(torch.linspace(T / R, T, R, dtype=torch.float64)).to(torch.int64))
    steps = torch.tensor(record, dtype=torch.int64)
    if (steps < 0).any() or (steps > T).any():
        raise ValueError(f"record: step indices must lie in [0, {T}] (the schedule has {T} transitions)")
    return torch.unique(steps)


def ais(decoder, x, schedule, *, distortion="gaussian_nll", logvar=None, prior=None, latent_dim=None, encoder=None,
        n_chains=16, leapfrog_steps=10, step_size=0.01, target_accept=0.65, adapt=DEFAULT_ADAPT,
        tuning=None, metric="identity", jitter=0.0, record=100, seed=None, generator=None, backend="auto",
        batch_size=None, progress=False, checkpoint=None, checkpoint_every=600.0, resume=None, distributed=None,
        cuda_graphs=None) -> AISResult | None:
    """Run AIS from the prior (β = 0) along ``schedule`` for every item of ``x``.

    decoder: callable z [rows, K] -> x̂ [rows, *x.shape[1:]] (or (mean, logvar) for
        gaussian_nll without ``logvar``); x: [N, *event] float32/float64 data;
    schedule: 1-D nondecreasing sequence starting at 0 (see ``rdfast.schedules``);
    distortion: "gaussian_nll" | "bernoulli_nll" | "squared_error" | fn(x, x_hat) -> [rows];
    prior: None (standard normal) or an object with log_prob and from_noise/sample;
    encoder: None, or x -> (mean, logvar) [N, K] of a diagonal Gaussian q(z|x): the chains start
        from q and anneal along q^{1−β} (p e^{−d})^β (``rdfast.sampling.paths.EncoderPath``); with
        d = −log p(x|z), log Ẑ at β = 1 is the log-likelihood (only there: an RD curve runs from
        the prior);
    step_size: the initial ε, or "auto" (found on the prior at β = 0);
    adapt: "ema" (default), "cumulative", "prob" or None (frozen: the default when a ``tuning``
        is replayed); see ``rdfast.sampling.adapt``. Adapting during the run breaks E[Ẑ] = Z: the
        two-round protocol (``rd_curve``) tunes in round 1 and replays;
    tuning: a ``Tuning`` (or a tuning run's AISResult): step sizes (and a diagonal metric) as
        functions of β, fixed before the run, so E[Ẑ] = Z holds (``rdfast.sampling.tuning``);
    metric: "identity", "diagonal" (per item, M⁻¹(β) = 1/(λ0 + β h); h estimated from the
        chains while annealing, or replayed from ``tuning``; ``rdfast.sampling.metrics``) or
        "dense" (the diagonal one in a per-item basis Q tuned from the chains' gradients, i.e.
        M⁻¹ = Q diag(m) Qᵀ; standard normal prior only; ``rdfast.sampling.rotation``) or "auto"
        ("dense" with the standard normal prior and no encoder, else "diagonal");
    jitter: j in [0, 1): each transition of each chain uses ε·U(1 − j, 1 + j);
    record: number of evenly spaced transitions to record (the last included) or indices;
    seed / generator: make the run reproducible; the random numbers of item n depend only on
        (seed, n), so ``batch_size`` (items per pass) changes at most the decoder's own rounding (none for a
        decoder that evaluates rows independently; see docs/distributed.md);
    checkpoint: path of a new file (in a folder that exists) to which the whole state is written
        atomically every ``checkpoint_every`` seconds (a float) or transitions (an int), at the end,
        and on SIGTERM or Ctrl-C, before the process stops; one run at a time writes it;
    resume: path of such a file: continue that run (same arguments, data, decoder, prior and
        distortion) to the result an uninterrupted run gives.
    distributed: None (shard the items over the ranks of an initialised torch.distributed
        process group, if any), True (also initialise one from torchrun's environment), "rank0"
        (as True, but ranks other than 0 return None) or False (all items here); every rank passes
        all of x, on its own device; each rank checkpoints to ``<path>.rank{r}of{W}``. See
        ``rdfast.runtime.distributed`` and docs/distributed.md.
    cuda_graphs: None (on CUDA with torch >= 2.12, capture blocks of transitions as CUDA graphs
        and replay them; if the decoder cannot be captured, warn, run eagerly and do not try
        again with that decoder), True (capture or fail) or False (eager). The result is the
        same; ``result.config["cuda_graphs"]`` says which ran.
    Returns an ``AISResult`` (the same as one process over all items gives).
    """
    def check():
        path = validate_schedule(schedule)
        if encoder is not None and float(path[-1]) > 1.0:
            raise ValueError(f"schedule: the encoder's path q^(1-beta) (p e^-d)^beta ends at beta = 1, this schedule "
                             f"at {float(path[-1])}")
        return (Problem.of(decoder, x, distortion, logvar, prior, latent_dim, encoder), path,
                HMCConfig.of(n_chains, leapfrog_steps, step_size, target_accept, adapt, tuning, metric, jitter),
                RunConfig.of(record, seed, generator, backend, batch_size, progress, checkpoint, checkpoint_every,
                             resume, cuda_graphs))

    return anneal_items(distributed, *checked_on_every_rank(distributed, device_of(x), check))


def device_of(x) -> torch.device:
    """The device of data ``x`` (the CPU for what is not a tensor: its check will say so)."""
    return x.device if isinstance(x, torch.Tensor) else torch.device("cpu")


def anneal_items(distributed, problem: Problem, path: torch.Tensor, hmc: HMCConfig, run: RunConfig, initial=None):
    """``anneal`` over all items of the problem, sharded over the ranks when ``distributed`` asks
    for it (``rdfast.runtime.distributed.map_items``); a replayed tuning and initial states go with
    their items. Returns the AISResult of all items (None on ranks other than 0 with "rank0")."""
    hmc = hmc.resolved(problem)
    hmc.check_against(path, problem)

    def run_items(start, stop, *, seed, show_progress, checkpoint=None, resume=None):
        shard = run.replace(seed=seed, progress=run.progress and show_progress, checkpoint=checkpoint, resume=resume)
        return anneal(problem.items(start, stop), path, hmc.items(start, stop), shard, item_offset=start,
                      initial=None if initial is None else initial[start:stop])

    return map_items(distributed, problem.x.device, problem.x.shape[0], run_items, seed=run.seed,
                     checkpoint=run.checkpoint, resume=run.resume, assemble=AISResult.concat)


def anneal(problem: Problem, path: torch.Tensor, hmc: HMCConfig, run: RunConfig, *, initial=None,
           item_offset: int = 0) -> AISResult:
    """AIS along a validated path ``path`` [T + 1] (float64) for all items of ``problem``, here.

    ``initial`` [N, K] or [N, M, K]: start the chains of item n at initial[n] (every chain) or
    initial[n, m] instead of sampling the prior (BDMC's reverse chains run a path from β* to 0).
    ``item_offset``: the global index of the first item, which keys its random streams.
    """
    started = time.monotonic()
    x, K, M = problem.x, problem.latent_dim, hmc.n_chains
    N, T = x.shape[0], path.numel() - 1
    hmc = hmc.resolved(problem)
    hmc.check_against(path, problem)
    if initial is not None and tuple(initial.shape) not in ((N, K), (N, M, K)):
        raise ValueError(f"initial: expected shape {(N, K)} or {(N, M, K)}, got {tuple(initial.shape)}")
    chunk = N if run.batch_size is None else run.batch_size
    be = backends.get(run.backend, x.device)
    check_memory(min(chunk, N) * M, K, x[0].numel(), x.element_size(), x.device)
    rec = record_steps(run.record, T)
    prior_precision = metrics.prior_precision(problem.prior, K)  # [K] λ0
    step_size = hmc.step_size if hmc.step_size != "auto" else _initial_step_size(problem, hmc, prior_precision)
    config = dict(n_items=N, n_chains=M, leapfrog_steps=hmc.leapfrog_steps, n_transitions=T, latent_dim=K,
                  distortion=problem.distortion.name, adapt=hmc.adapt, target_accept=hmc.target_accept,
                  step_size=step_size, metric=hmc.metric, jitter=hmc.jitter, replayed_tuning=hmc.tuning is not None,
                  seed=run.seed, backend=be.name, dtype=str(x.dtype).replace("torch.", ""), device=x.device.type,
                  beta_max=float(path.max()), item_offset=item_offset)
    ckpt = Checkpointer(run.checkpoint, run.checkpoint_every, run.resume, x.device, lambda: fingerprint(
        config, betas=path, x=x, rec=rec, decoder=problem.decoder, distortion=problem.distortion,
        prior=problem.prior, encoder=problem.encoder, q=(problem.q_mean, problem.q_logvar), initial=initial,
        tuning=None if hmc.tuning is None else hmc.tuning.to_dict(), batch_size=chunk))
    ckpt.started = started
    with ckpt, Progress(T * math.ceil(N / chunk), run.label or "ais", run.progress) as progress:
        parts = ckpt.completed_parts()
        annealer = Annealer(problem, path, hmc, run, be, rec, ckpt, progress, step_size, prior_precision)
        for i in range(len(parts) * chunk, N, chunk):
            stop = min(i + chunk, N)
            progress.set(T * (i // chunk))
            parts.append(annealer.run(i, stop, item_offset, None if initial is None else initial[i:stop],
                                      ckpt.resume_state(item_offset + i), parts))
            ckpt.save(parts, None, None, annealer.seconds())
            ckpt.stop_if_asked()
    tuning = hmc.tuning or Tuning.concat([Tuning.from_dict(p["tuning"]) for p in parts])
    out = {name: torch.cat([p[name] for p in parts], dim=1 if name in FIELDS else 0) for name in parts[0]
           if name != "tuning"}
    result = AISResult(beta=path[rec], steps=rec, tuning=tuning, **out,
                       config=dict(config, cuda_graphs=annealer.graphs_used), seconds=annealer.seconds())
    _warn_on_faults(result)
    return result


def _warn_on_faults(result: AISResult) -> None:
    proposals = result.n_chains * int(result.config["n_transitions"])
    frac = result.divergences.double() / max(proposals, 1)
    if (frac > DIVERGENCE_WARN_FRACTION).any():
        worst = int(torch.argmax(frac))
        warnings.warn(f"ais: {int(result.divergences.sum())} proposals had a non-finite energy and were rejected "
                      f"(item {worst}: {100 * frac[worst].item():.1f}% of its proposals); see result.divergences",
                      RuntimeWarning, stacklevel=4)
    bad = ~torch.isfinite(result.log_z[-1])
    if bad.any():
        warnings.warn(f"ais: {int(bad.sum())} items have a non-finite final log Z estimate", RuntimeWarning, stacklevel=4)
    since = int(result.steps[-2]) if len(result.steps) > 1 else 0
    stuck = result.accept_rate[-1] == 0  # [N]: no proposal accepted since the previous record
    if stuck.any() and result.n_chains * (int(result.steps[-1]) - since) >= STUCK_MIN_PROPOSALS:
        warnings.warn(f"ais: acceptance ended at 0 for {int(stuck.sum())} of {result.n_items} items (no proposal "
                      f"accepted between transitions {since} and {int(result.steps[-1])}): their chains stood still; "
                      "lower step_size, or check that the decoder's gradient is right; see result.accept_rate",
                      RuntimeWarning, stacklevel=4)


def initial_states(path, keys: rng.Keys, latent_dim: int, dtype, initial=None) -> torch.Tensor:
    """z [B, K] of the chains: ``initial`` per item or per chain, else the path's base draws (the
    prior's, or the encoder's q)."""
    items, M, K = keys.items, keys.n_chains, latent_dim
    if initial is not None:
        z = initial.to(device=items.device, dtype=dtype)
        z = z.repeat_interleave(M, 0) if z.dim() == 2 else z.reshape(-1, K)
    else:
        z = path.initial_states(keys, K, dtype)
    if not isinstance(z, torch.Tensor) or z.shape != (items.numel() * M, K):
        raise ValueError(f"prior: samples must have shape [{items.numel() * M}, {K}], got {getattr(z, 'shape', None)}")
    return z.to(device=items.device, dtype=dtype).contiguous()


class Annealer:
    """The settings of one ``anneal`` call shared by its batches of items; ``run`` anneals one."""

    def __init__(self, problem, path, hmc: HMCConfig, run: RunConfig, backend, rec, ckpt, progress, step_size,
                 prior_precision):
        self.problem, self.path, self.hmc, self.run_config, self.backend = problem, path, hmc, run, backend
        self.rec, self.ckpt, self.progress = rec, ckpt, progress
        self.step_size, self.prior_precision = step_size, prior_precision
        self.T = path.numel() - 1
        self.beta_list = path.tolist()
        self.cuda_graphs = graphs_wanted(run.cuda_graphs, problem.x.device, problem.decoder)
        self.graphs_used = False

    def seconds(self) -> float:
        return self.ckpt.previous_seconds + time.monotonic() - self.ckpt.started

    def _fresh(self, kernel: HMC, keys, x, initial, recorder, rotation) -> tuple:
        """The chains' state at β = 0 (checked finite; in u = Qᵀz with a ``rotation``), the rule's
        state, k = 0 (recorded if asked)."""
        z = initial_states(kernel.path, keys, self.problem.latent_dim, x.dtype, initial)
        if rotation is not None:
            z = rotation.to_u(z)
        try:
            state = kernel.init(z, self.step_size)
        except RuntimeError as exc:
            raise ValueError(f"decoder: failed on latents z of shape {tuple(z.shape)}, dtype {z.dtype}, device "
                             f"{z.device} (z takes the dtype and device of x): {exc}") from exc
        if not torch.isfinite(state.d).all() or not torch.isfinite(state.g).all():
            n_bad = int((~(torch.isfinite(state.d) & torch.isfinite(state.g).all(1))).sum())
            raise ValueError(f"decoder: non-finite distortion or gradient at {n_bad} initial states; "
                             "check the decoder, the data and logvar")
        rule = self.hmc.rule()
        if 0 in set(self.rec.tolist()):
            recorder.record(self.backend, 0, self.beta_list[0], state.logw, state.d, state.n_accept)
        return state, {} if rule is None else rule.init(state.eps, self.hmc.n_chains), 0

    def run(self, lo: int, hi: int, offset: int, initial, saved, parts) -> dict:
        """Anneal items lo..hi−1 of the problem (global indices offset + lo ..) along the path; returns
        their part of the result."""
        problem, hmc, be, T = self.problem, self.hmc, self.backend, self.T
        x = problem.x[lo:hi]
        n, M, K, dev = x.shape[0], hmc.n_chains, problem.latent_dim, x.device
        keys = rng.Keys(self.run_config.seed, torch.arange(offset + lo, offset + hi, device=dev), M)
        path = problem.path(lo, hi, M, self.prior_precision)
        model = metrics.PrecisionModel(path, n, M, K, x.dtype, dev) if hmc.metric != "identity" else None
        evaluate = make_evaluator(problem.decoder, x, M, problem.distortion, be)
        tuning = None if hmc.tuning is None else hmc.tuning.select(slice(lo, hi))
        rotation = None
        if hmc.metric == "dense":  # the chains move in u = Qᵀz: identity in round 1 until tuned, round 1's Q in round 2
            basis = torch.eye(K, dtype=torch.float64, device=dev).repeat(n, 1, 1) if tuning is None \
                else tuning.rotation.to(device=dev, dtype=torch.float64)
            rotation = Rotation(basis, M, x.dtype)
            evaluate = rotation.evaluator(evaluate)
        kernel = HMC(evaluate, be, metrics.IdentityMetric() if model is None else model.metric, hmc.leapfrog_steps,
                     path, keys, hmc.jitter)
        rule = hmc.rule()
        recorder = Recorder(self.rec.numel(), n, M, dev)
        estimator, refresh = None, set()
        if tuning is None:  # round 1: watch and tune
            tuner, replay = Tuner(self.path, knot_boundaries(T), n, M, dev, model, rotation), None
            bounds = tuner.boundaries
            if rotation is not None:
                estimator, refresh = BasisEstimator(n, M, K, dev), basis_refresh_knots(bounds.numel() - 1)
        else:  # round 2: replay the frozen tuning along this path
            tuner, replay = None, Replay(tuning, self.path, M, dev)
            bounds = replay.bounds
        if saved is None:
            state, rule_state, k = self._fresh(kernel, keys, x, initial, recorder, rotation)
        else:
            state, rule_state, k = ChainState.from_dict(saved["chains"]), saved["rule"], saved["k"]
            recorder.load(saved["records"])
            if tuner is not None:
                tuner.load(saved["tuner"])
            if model is not None:
                model.load(saved["metric"])
            if estimator is not None:
                estimator.load(saved["basis"])
                rotation.load(saved["rotation"])
        clock = DeviceClock(self.path, k, dev)
        transition = kernel.transition(state, clock)
        grad_z = None if estimator is None else torch.empty_like(state.g)  # [B, K]

        def body():
            if tuner is not None:
                tuner.observe(state, clock.beta - clock.dbeta)  # the state targets the previous β
            if estimator is not None:
                estimator.observe(rotation.to_z(state.g, grad_z))
            if model is not None:
                model.refresh(clock.beta)
            transition.step()
            if rule is not None:
                rule.update(rule_state, state.eps, transition.info, clock.k)

        runner = TransitionRunner(body, clock, self.cuda_graphs)
        self.progress.update(k)
        for seg in segments(k, T, self.rec.tolist(), bounds.tolist(), self.ckpt.every_transitions):
            if replay is not None and seg.opens_knot is not None:
                replay.start(seg.opens_knot, state, model)
            runner.run(seg.length)
            if tuner is not None and seg.closes_knot is not None:
                tuner.close(seg.closes_knot)
                if seg.closes_knot in refresh:  # a better basis: rotate the chains (and what is tuned) into it
                    tuner.rotate(rotation.change_to(estimator.basis(), state.z, state.g), seg.closes_knot)
            if seg.record:
                recorder.record(be, seg.end, self.beta_list[seg.end], state.logw, state.d, state.n_accept)
            self.progress.update(seg.length)
            if seg.end < T and (seg.checkpoint or self.ckpt.due_by_time() or self.ckpt.asked_to_stop):
                self.ckpt.save(parts, offset + lo, dict(
                    k=seg.end, chains=state.to_dict(), rule=rule_state, records=recorder.to_dict(),
                    tuner=None if tuner is None else tuner.to_dict(), metric=None if model is None else model.to_dict(),
                    basis=None if estimator is None else estimator.to_dict(),
                    rotation=None if estimator is None else rotation.basis),
                    self.seconds())
                self.ckpt.stop_if_asked()
        self.graphs_used = self.graphs_used or runner.captured
        if runner.capture_failed:  # the decoder cannot be captured: later batches and runs go eagerly at once
            self.cuda_graphs = False
            remember_uncapturable(problem.decoder)
        out = {name: value.cpu() for name, value in recorder.values.items()}
        out.update(acceptance=(state.n_accept.view(n, M).sum(1).double() / (M * max(T, 1))).cpu(),
                   divergences=state.n_diverge.view(n, M).sum(1).cpu(),
                   z=(state.z if rotation is None else rotation.to_z(state.z)).view(n, M, K).cpu(),
                   log_w=state.logw.view(n, M).cpu())
        if tuner is not None:
            out["tuning"] = tuner.tuning().to_dict()
        return out


def _initial_step_size(problem: Problem, hmc: HMCConfig, prior_precision: torch.Tensor) -> float:
    """ε at β = 0 (``adapt.initial_step_size``) on the prior, or on the encoder path's base q, which
    the diagonal metric M⁻¹(0) = σ_q² makes a standard normal (without the metric: at q's median scale)."""
    K, L, target = problem.latent_dim, hmc.leapfrog_steps, hmc.target_accept
    if problem.encoder is None:
        return adaptation.initial_step_size(problem.prior, K, L, target,
                                            1.0 / prior_precision if hmc.metric != "identity" else None)
    unit = adaptation.initial_step_size(priors.StandardNormal(K), K, L, target)
    return unit if hmc.metric != "identity" else unit * float(torch.exp(0.5 * problem.q_logvar).median())
