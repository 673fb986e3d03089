"""The public AIS API: cost per transition, reproducibility, two rounds, save/load, variants, bad input."""

import numpy as np
import pytest
import torch

import rdfast
from rdfast.testing import linear_problem

SCHED = rdfast.schedules.sigmoid(30, 4.0)


def small(dtype=torch.float64, n_items=3, rowwise=False):
    return linear_problem(2, 5, n_items, logvar=-0.5, dtype=dtype, seed=2, rowwise=rowwise)


def run(pr, **kw):
    args = dict(logvar=pr.logvar, n_chains=4, leapfrog_steps=3, record=5, seed=11, backend="torch")
    args.update(kw)
    return rdfast.ais(pr.decoder, pr.x, kw.pop("schedule", SCHED), **{k: v for k, v in args.items() if k != "schedule"})


class _CountingVJP(torch.autograd.Function):
    backward_calls = 0

    @staticmethod
    def forward(ctx, h):
        return h.clone()

    @staticmethod
    def backward(ctx, grad):
        _CountingVJP.backward_calls += 1
        return grad


class CountingDecoder(torch.nn.Module):
    def __init__(self, linear):
        super().__init__()
        self.linear, self.forward_calls, self.latent_dim = linear, 0, linear.in_features

    def forward(self, z):
        if not isinstance(z, torch.fx.Proxy):  # rdfast.fastpath.capture traces it once, symbolically
            self.forward_calls += 1
        return _CountingVJP.apply(self.linear(z))


def test_transition_costs_exactly_L_forwards_and_L_vjps():
    pr = small()
    dec = CountingDecoder(pr.decoder)
    _CountingVJP.backward_calls = 0
    T, L = SCHED.numel() - 1, 4
    rdfast.ais(dec, pr.x, SCHED, logvar=pr.logvar, n_chains=3, leapfrog_steps=L, record=7, seed=0, backend="torch")
    assert dec.forward_calls == 1 + T * L  # one evaluation of the initial states, then L per transition
    assert _CountingVJP.backward_calls == 1 + T * L


def test_same_seed_bit_identical_and_different_seeds_differ():
    pr = small()
    a, b, c = run(pr), run(pr), run(pr, seed=12)
    for name in ("log_z", "distortion", "rate", "ess", "z", "log_w"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.log_z, c.log_z)


def test_generator_seeds_reproducibly():
    pr = small()
    a = run(pr, seed=None, generator=torch.Generator().manual_seed(5))
    b = run(pr, seed=None, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.log_z, b.log_z) and a.config["seed"] == b.config["seed"]


@pytest.mark.parametrize("tuned", [False, True], ids=["published", "tuned"])
def test_batch_size_does_not_change_the_result(tuned):
    """Batches of items give the same bits with a decoder that evaluates rows independently: also
    with the tuned settings (the metric, jitter, the step-size rule), whose tuning (and so round
    2's schedule) is the same too."""
    pr = small(n_items=5, rowwise=True)
    kw = dict(metric="diagonal", jitter=0.5, adapt="prob", step_size="auto") if tuned else {}
    whole, parts = run(pr, **kw), run(pr, batch_size=2, **kw)
    for name in ("log_z", "distortion", "rate", "ess", "z", "log_w", "divergences", "acceptance"):
        assert torch.equal(getattr(whole, name), getattr(parts, name)), name
    for name in ("log_eps", "var_d", "curvature"):
        value = getattr(whole.tuning, name)
        assert (value is None and tuned is False) or torch.equal(value, getattr(parts.tuning, name)), name


@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_batch_size_changes_blas_decoders_only_by_rounding(dtype, rtol):
    """With nn.Linear (MKL, which rounds a product of a few rows differently) on the fast path,
    batches agree with one pass to rounding: the random streams and the per-chain maths do not
    depend on the batch."""
    pr = small(dtype=dtype, n_items=5)
    whole, parts = run(pr, backend="cpu"), run(pr, backend="cpu", batch_size=2)
    for name in ("log_z", "distortion", "rate", "z", "log_w"):
        assert torch.allclose(getattr(whole, name), getattr(parts, name), rtol=rtol, atol=rtol), name


def test_shapes_and_fields():
    pr = small()
    r = run(pr)
    R, N, M = 5, 3, 4
    assert r.beta.shape == (R,) and r.steps.tolist() == [6, 12, 18, 24, 30]
    for name in ("log_z", "distortion", "rate", "ess", "accept_rate"):
        assert getattr(r, name).shape == (R, N) and getattr(r, name).dtype == torch.float64
    assert r.z.shape == (N, M, 2) and r.log_w.shape == (N, M)
    assert torch.allclose(r.rate, -r.log_z - r.beta[:, None] * r.distortion)
    assert ((r.ess >= 1 - 1e-9) & (r.ess <= M + 1e-9)).all()
    assert r.tuning.log_eps.shape == (30, N) and r.tuning.beta_bounds.shape == (31,)
    assert r.mean_rate.shape == (R,) and "acceptance" in r.summary()


def test_record_explicit_steps_including_zero():
    pr = small()
    r = run(pr, record=[0, 30, 7])
    assert r.steps.tolist() == [0, 7, 30]
    assert torch.all(r.log_z[0] == 0) and torch.all(r.rate[0].abs() < 1e-12)


PUBLISHED = dict(adapt="ema", metric="identity", jitter=0.0, step_size=0.01, tuned_schedule=False)


def test_two_rounds_replay_the_frozen_tuning():
    """rd_curve's round 2 is round 1's tuning replayed with a fresh seed: on round 1's schedule, or
    (the default) on the schedule tuned in round 1, with the tuned metric (metric "auto": dense for
    the standard normal prior) and jitter."""
    pr = small()
    tuning = run(pr, adapt="ema")
    replay = run(pr, tuning=tuning, seed=99)
    torch.testing.assert_close(replay.tuning.log_eps, tuning.tuning.log_eps, rtol=0, atol=1e-12)
    assert replay.config["replayed_tuning"] and replay.config["adapt"] is None
    args = dict(seed=11, logvar=pr.logvar, n_chains=4, leapfrog_steps=3, record=[6, 12, 18, 24, 30], backend="torch")
    curve = rdfast.rd_curve(pr.decoder, pr.x, 4.0, 30, schedule=SCHED, **args, **PUBLISHED)
    manual = run(pr, tuning=tuning, seed=rdfast.sampling.curve.second_round_seed(11))
    assert torch.equal(curve.log_z, manual.log_z)
    assert curve.config["tuning"]["seed"] == 11
    tuned = rdfast.rd_curve(pr.decoder, pr.x, 4.0, 30, **args)
    first = run(pr, schedule=rdfast.schedules.sigmoid(30, 4.0), adapt="prob", step_size="auto", metric="dense",
                jitter=0.5)
    second = run(pr, schedule=rdfast.schedules.thermodynamic(first.tuning, 30), tuning=first, metric="dense",
                 jitter=0.5, step_size="auto", seed=rdfast.sampling.curve.second_round_seed(11))
    assert torch.equal(tuned.log_z, second.log_z) and torch.equal(tuned.beta, second.beta)


def test_curve_points_spread_along_the_measured_curve():
    """An int ``record`` of rd_curve: transitions where the arc length of the curve round 1 measured
    (D and R interpolated at round 2's β's, each scaled to its range) crosses j/n of the whole."""
    from rdfast.sampling.curve import curve_points

    path = torch.linspace(0.0, 4.0, 101, dtype=torch.float64)
    beta = torch.tensor([0.0, 1.0, 2.0, 4.0], dtype=torch.float64)
    # all the change between β = 0 and 1 (the first 25 transitions): every point lands there but T
    steps = curve_points(beta, torch.tensor([5.0, 1.0, 1.0, 1.0]), torch.tensor([0.0, 3.0, 3.0, 3.0]), path, 5)
    assert steps.tolist() == [5, 10, 15, 20, 100]
    # noise against the direction of the curve (D rising, R falling) adds no length
    noisy = curve_points(beta, torch.tensor([5.0, 1.0, 1.2, 1.0]), torch.tensor([0.0, 3.0, 2.5, 3.0]), path, 5)
    assert torch.equal(noisy, steps)
    flat = curve_points(beta, torch.ones(4), torch.zeros(4), path, 4)
    assert torch.equal(flat, torch.tensor([25, 50, 75, 100]))
    # a jump too steep for the path's resolution: still n distinct transitions
    steep = curve_points(beta, torch.tensor([5.0, 1.0, 1.0, 1.0]), torch.zeros(4), path[:6] / 5, 5)
    assert steep.tolist() == [1, 2, 3, 4, 5]
    merge = rdfast.sampling.curve.merge_forced
    assert merge([10, 20, 30, 40, 50], [21, 50]) == [10, 21, 30, 40, 50]  # 20 lies within half a spacing of 21
    assert merge([10, 20, 30, 40, 50], [25]) == [10, 20, 25, 30, 40, 50]  # halfway: a point of its own
    late = curve_points(beta, torch.tensor([1.0, 1.0, 1.0, 0.0]), torch.zeros(4), path, 50)  # all change at the end
    assert late[-1] == 100 and (late[1:] > late[:-1]).all() and late.numel() == 50


def test_step_sizes_adapt_toward_target():
    pr = small()
    sched = rdfast.schedules.linear(300, 200.0)
    r = run(pr, schedule=sched, leapfrog_steps=2, record=1)
    assert (r.tuning.step_sizes[-1] > 0.02).all()  # grew from 0.01: acceptance was above target
    assert (r.tuning.step_sizes[-1] < 0.5).all()  # but not to the clamp: it adapted to the posterior
    cum = run(pr, schedule=sched, leapfrog_steps=2, record=1, adapt="cumulative")
    assert not torch.equal(cum.tuning.log_eps, r.tuning.log_eps)


def test_save_load_round_trip(tmp_path):
    r = run(small())
    path = tmp_path / "run.npz"
    r.save(path)
    back = rdfast.AISResult.load(path)
    for name in ("beta", "steps", "log_z", "distortion", "rate", "ess", "z", "log_w", "divergences"):
        assert torch.equal(getattr(r, name), getattr(back, name))
    for name in ("beta_bounds", "log_eps", "var_d"):
        assert torch.equal(getattr(back.tuning, name), getattr(r.tuning, name))
    assert back.tuning.curvature is None and back.config == r.config
    diagonal = run(small(), metric="diagonal")
    diagonal.save(path)
    again = rdfast.AISResult.load(path).tuning
    assert torch.equal(again.curvature, diagonal.tuning.curvature)
    assert torch.equal(again.prior_precision, diagonal.tuning.prior_precision)
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not an rdfast AIS result"):
        rdfast.AISResult.load(tmp_path / "other.npz")


def test_plot_returns_axes(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    ax = run(small()).plot(per_item=True, log_rate=True, label="linear")
    ax.figure.savefig(tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 0


def test_custom_distortion_equals_builtin():
    pr = small()
    builtin = run(pr, distortion="squared_error", logvar=None)
    custom = run(pr, distortion=lambda x, xh: ((x - xh) ** 2).sum(1), logvar=None)
    torch.testing.assert_close(builtin.log_z, custom.log_z, rtol=1e-10, atol=1e-10)


def test_decoder_logvar_output_equals_fixed_logvar():
    pr = small()

    class MeanLogvar(torch.nn.Module):
        latent_dim = 2

        def forward(self, z):
            mean = pr.decoder(z)
            return mean, torch.full_like(mean, pr.logvar) + 0 * mean

    fixed = run(pr)
    pair = rdfast.ais(MeanLogvar(), pr.x, SCHED, n_chains=4, leapfrog_steps=3, record=5, seed=11, backend="torch")
    torch.testing.assert_close(fixed.log_z, pair.log_z, rtol=1e-10, atol=1e-10)


def test_per_pixel_logvar_matches_closed_form_shape():
    pr = small()
    r = run(pr, logvar=torch.full((5,), pr.logvar, dtype=torch.float64))
    torch.testing.assert_close(r.log_z, run(pr).log_z, rtol=1e-10, atol=1e-10)


def test_one_component_mixture_prior_equals_standard_normal():
    pr = small()
    mix = rdfast.GaussianMixture([1.0], torch.zeros(1, 2), torch.ones(1, 2))
    torch.testing.assert_close(run(pr).log_z, run(pr, prior=mix).log_z, rtol=1e-9, atol=1e-9)


def test_bernoulli_and_float32():
    pr = small(dtype=torch.float32)
    xb = (torch.rand(3, 5, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    r = rdfast.ais(pr.decoder, xb, SCHED, distortion="bernoulli_nll", n_chains=4, leapfrog_steps=3, seed=0,
                   backend="torch")
    assert torch.isfinite(r.log_z).all() and r.z.dtype == torch.float32 and r.log_w.dtype == torch.float64


def test_nan_region_is_rejected_and_counted():
    pr = small()

    class Holey(torch.nn.Module):
        latent_dim = 2

        def forward(self, z):
            out = pr.decoder(z)
            return torch.where((z[:, :1] > 2.0), torch.full_like(out, float("nan")), out)

    with pytest.warns(RuntimeWarning, match="non-finite"):
        r = rdfast.ais(Holey(), pr.x, rdfast.schedules.linear(60, 1.0), logvar=pr.logvar, n_chains=8,
                       leapfrog_steps=3, seed=3, backend="torch", step_size=0.5, adapt=None)
    assert int(r.divergences.sum()) > 0
    assert torch.isfinite(r.log_z).all() and torch.isfinite(r.distortion).all()
    assert (r.z[..., 0] <= 2.0).all()


def _bad_cases():
    pr = small()
    dec, x = pr.decoder, pr.x
    ok = dict(logvar=-0.5, backend="torch")
    return [
        (dict(decoder=dec, x=x.numpy(), schedule=SCHED, **ok), TypeError, "x:"),
        (dict(decoder=dec, x=x[0], schedule=SCHED, **ok), ValueError, "x:"),
        (dict(decoder=dec, x=x.int(), schedule=SCHED, **ok), TypeError, "x:"),
        (dict(decoder=dec, x=x.clone().fill_(float("nan")), schedule=SCHED, **ok), ValueError, "x:"),
        (dict(decoder=dec, x=x[:0], schedule=SCHED, **ok), ValueError, "x:"),
        (dict(decoder=dec, x=x[:, :4], schedule=SCHED, **ok), ValueError, "decoder: output"),
        (dict(decoder=dec, x=x.float(), schedule=SCHED, **ok), ValueError, "decoder: failed on latents"),
        (dict(decoder=dec, x=x, schedule=[0.0, 2.0, 1.0], **ok), ValueError, "schedule"),
        (dict(decoder=dec, x=x, schedule=[0.0, float("nan")], **ok), ValueError, "schedule"),
        (dict(decoder=dec, x=x, schedule=[-1.0, 1.0], **ok), ValueError, "schedule"),
        (dict(decoder=dec, x=x, schedule=SCHED, n_chains=0, **ok), ValueError, "n_chains"),
        (dict(decoder=dec, x=x, schedule=SCHED, leapfrog_steps=0, **ok), ValueError, "leapfrog_steps"),
        (dict(decoder=dec, x=x, schedule=SCHED, step_size=-0.1, **ok), ValueError, "step_size"),
        (dict(decoder=dec, x=x, schedule=SCHED, target_accept=1.0, **ok), ValueError, "target_accept"),
        (dict(decoder=dec, x=x, schedule=SCHED, adapt="fast", **ok), ValueError, "adapt"),
        (dict(decoder=dec, x=x, schedule=SCHED, distortion="l1", **ok), ValueError, "distortion"),
        (dict(decoder=dec, x=x, schedule=SCHED, backend="torch"), ValueError, "logvar"),
        (dict(decoder=dec, x=x, schedule=SCHED, logvar=torch.zeros(3), backend="torch"), ValueError, "logvar"),
        (dict(decoder=dec, x=x, schedule=SCHED, record=0, **ok), ValueError, "record"),
        (dict(decoder=dec, x=x, schedule=SCHED, record=[31], **ok), ValueError, "record"),
        (dict(decoder=dec, x=x, schedule=SCHED, seed=-1, **ok), ValueError, "seed"),
        (dict(decoder=dec, x=x, schedule=SCHED, backend="nope", logvar=-0.5), ValueError, "backend"),
        (dict(decoder=dec, x=x, schedule=SCHED, batch_size=0, **ok), ValueError, "batch_size"),
        (dict(decoder=dec, x=x, schedule=SCHED, tuning="x", **ok), TypeError, "tuning"),
        (dict(decoder=dec, x=x, schedule=SCHED, metric="full", **ok), ValueError, "metric"),
        (dict(decoder=dec, x=x, schedule=SCHED, jitter=1.0, **ok), ValueError, "jitter"),
        (dict(decoder=dec, x=x, schedule=SCHED, jitter=-0.1, **ok), ValueError, "jitter"),
        (dict(decoder=dec, x=x, schedule=SCHED, step_size="big", **ok), ValueError, "step_size"),
        (dict(decoder=lambda z: z, x=x, schedule=SCHED, **ok), ValueError, "latent_dim"),
        (dict(decoder=dec, x=x, schedule=SCHED, prior=object(), **ok), TypeError, "prior"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_cases())))
def test_bad_input_names_the_argument(case):
    kwargs, exc, match = _bad_cases()[case]
    with pytest.raises(exc, match=match):
        rdfast.ais(kwargs.pop("decoder"), kwargs.pop("x"), kwargs.pop("schedule"), **kwargs)


def test_mismatched_tuning_rejected():
    """A tuning is a function of β: it replays on any path within its β range (other lengths
    too), never beyond it, never for other items, never a metric it does not have."""
    pr = small()
    tuned = run(pr)
    run(pr, tuning=tuned, schedule=rdfast.schedules.linear(10, 1.0))  # fewer transitions, a smaller range: fine
    with pytest.raises(ValueError, match=r"tuning: tuned for beta in \[0, 4\]"):
        run(pr, tuning=tuned, schedule=rdfast.schedules.linear(10, 8.0))
    with pytest.raises(ValueError, match="tuning: tuned for 3 data items"):
        run(small(n_items=2), tuning=tuned)
    with pytest.raises(ValueError, match="metric: 'diagonal' replays a tuned metric"):
        run(pr, tuning=tuned, metric="diagonal")
    with pytest.raises(ValueError, match="adapt"):
        run(pr, tuning=tuned, adapt="ema")
    diagonal = run(pr, metric="diagonal").tuning
    bad = {"negative curvature": dict(curvature=-diagonal.curvature - 1),
           "non-finite curvature": dict(curvature=diagonal.curvature * float("nan")),
           "curvature of another latent size": dict(curvature=diagonal.curvature[..., :1]),
           "zero prior precision": dict(prior_precision=diagonal.prior_precision * 0),
           "non-finite step sizes": dict(log_eps=diagonal.log_eps + float("inf")),
           "non-monotone beta": dict(beta_bounds=diagonal.beta_bounds.flip(0).roll(3))}
    for case, change in bad.items():
        with pytest.raises(ValueError, match="tuning: "):
            run(pr, tuning=rdfast.Tuning(**{**diagonal.to_dict(), **change}), metric="diagonal")


def test_absurd_sizes_refused_up_front():
    pr = small()
    with pytest.raises(ValueError, match="GiB"):
        run(pr, n_chains=10 ** 12)
