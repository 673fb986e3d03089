"""Hostile input across the API, rdfast.ops and the CLI: each case is refused before any work with an
error of the expected type that names the argument (the option, on the command line), or gives the
right result; nothing that existed is overwritten."""
import json
import math
import os
import re
import textwrap
import time
import warnings

import numpy as np
import pytest
import torch

import rdfast
import rdfast.ops as ops
from rdfast.apps import cli
from rdfast.testing import linear_problem

PR = linear_problem(2, 5, 3, logvar=-0.5, seed=2)
SCHED = rdfast.schedules.sigmoid(6, 2.0)
SMALL = dict(logvar=-0.5, n_chains=2, leapfrog_steps=2, seed=1, backend="torch")
UNWRITABLE = "/proc/rdfast-hostile"  # /proc takes no new files, not even from root


def ais(decoder=PR.decoder, x=PR.x, schedule=SCHED, **kw):
    return rdfast.ais(decoder, x, schedule, **{**SMALL, "record": 3, **kw})


def curve(**kw):
    return rdfast.rd_curve(PR.decoder, PR.x, 2.0, 6, **{**SMALL, "record": 3, **kw})


def bdmc(**kw):
    return rdfast.bdmc(PR.decoder, **{"betas": [1.0], "n_data": 2, "steps": 4, **SMALL, **kw})


def counting(decoder, calls):
    """``decoder`` as a plain function that counts its calls (none may happen before a refusal)."""
    def counted(z):
        calls.append(1)
        return decoder(z)
    counted.latent_dim = 2
    return counted


def checkpointed(tmp, name="c.ckpt", **kw):
    path = tmp / name
    ais(checkpoint=path, **kw)
    return path


def plain(scale):
    """A function decoder whose code is the same for every scale: only its closure differs."""
    W = PR.decoder.weight * scale

    def decoder(z):
        return z @ W.T
    decoder.latent_dim = 2
    return decoder


def decoder_a(z):
    return PR.decoder(z)


def decoder_b(z):
    return PR.decoder(z) * 1.0001


decoder_a.latent_dim = decoder_b.latent_dim = 2
decoder_b.__name__ = decoder_b.__qualname__ = "decoder_a"  # the same name, other code


def l1(x, xhat):
    return (x - xhat).abs().sum(-1)


def l1_other(x, xhat):
    return (x - xhat).abs().sum(-1) * 2.0


l1_other.__name__ = l1_other.__qualname__ = "l1"


def mixture(shift):
    return rdfast.GaussianMixture([0.5, 0.5], [[shift, 0.0], [-shift, 0.0]], [1.0, 1.0])


class ReadOnlyDLPack:
    """An array that exports itself read-only through DLPack 1.0 (as NumPy does for a read-only array)."""

    def __init__(self, array):
        self.array = array

    def __dlpack__(self, **kwargs):
        return self.array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()


def read_only(shape):
    a = np.zeros(shape)
    a.flags.writeable = False
    return a


def record_args(**change):
    """A valid ``rdfast.ops.record`` call of 2 items x 2 chains, with ``change``."""
    args = dict(logw=np.zeros(4), d=np.ones(4), n_chains=2, log_z=np.zeros(2), dist=np.zeros(2), ess=np.zeros(2))
    return {**args, **change}


def begin_args(**change):
    """A valid ``rdfast.ops.leapfrog_begin`` call of 4 rows, 2 latents, with ``change``."""
    z = np.zeros((4, 2))
    args = dict(z0=z, g0=z.copy(), d0=np.zeros(4), p=z.copy(), z=z.copy(), logw=np.zeros(4), h0=np.zeros(4),
                beta=0.5, dbeta=0.1, eps=np.full(4, 0.1))
    return {**args, **change}


# (id, call(tmp_path), exception type, pattern the message must match: it names the argument)
REFUSED = [
    # record=
    ("record-float", lambda t: ais(record=2.5), TypeError, "^record:"),
    ("record-bool", lambda t: ais(record=True), TypeError, "^record:"),
    ("record-float-index", lambda t: ais(record=[1.5, 3]), TypeError, "^record:.*1.5"),
    ("record-bool-index", lambda t: ais(record=[True, 2]), TypeError, "^record:.*True"),
    ("record-0d-array", lambda t: ais(record=np.array(3)), TypeError, "^record: a 0-d array"),
    ("record-string", lambda t: ais(record="3"), TypeError, "^record:"),
    ("record-empty", lambda t: ais(record=[]), ValueError, "^record:.*empty"),
    ("record-beyond-T", lambda t: ais(record=[7]), ValueError, r"^record:.*\[0, 6\]"),
    ("record-zero", lambda t: ais(record=0), ValueError, "^record:"),
    ("rd_curve-record-before-round-1", lambda t: curve(record=2.5), TypeError, "^record:"),
    # counts, seeds, step sizes
    ("seed-2**70", lambda t: ais(seed=2 ** 70), ValueError, r"^seed: expected an int in \[0, 2\*\*62\)"),
    ("seed-2**62", lambda t: ais(seed=2 ** 62), ValueError, "^seed:"),
    ("seed-negative", lambda t: ais(seed=-1), ValueError, "^seed:"),
    ("seed-float", lambda t: ais(seed=1.0), ValueError, "^seed:"),
    ("n_chains-float", lambda t: ais(n_chains=2.0), ValueError, "^n_chains:"),
    ("n_chains-bool", lambda t: ais(n_chains=True), ValueError, "^n_chains:"),
    ("leapfrog_steps-numpy-float", lambda t: ais(leapfrog_steps=np.float64(3)), ValueError, "^leapfrog_steps:"),
    ("step_size-nan", lambda t: ais(step_size=math.nan), ValueError, "^step_size:"),
    ("jitter-numpy-1.5", lambda t: ais(jitter=np.float32(1.5)), ValueError, "^jitter:"),
    ("checkpoint_every-inf", lambda t: ais(checkpoint=t / "c", checkpoint_every=math.inf), ValueError,
     "^checkpoint_every:"),
    ("sigmoid-float-steps", lambda t: rdfast.schedules.sigmoid(5.0, 2.0), ValueError, "^n_steps:"),
    ("latent_dim-zero", lambda t: ais(latent_dim=0), ValueError, "^latent_dim:"),
    # decoders, distortions, data
    ("logvar-string", lambda t: ais(logvar="0"), TypeError, "^logvar:"),
    ("logvar-bool", lambda t: ais(logvar=True), TypeError, "^logvar:"),
    ("logvar-ragged", lambda t: ais(logvar=[[0.0], [0.0, 1.0]]), TypeError, "^logvar:"),
    ("decoder-int", lambda t: ais(decoder=42), TypeError, "^decoder:"),
    ("decoder-detached", lambda t: ais(decoder=lambda z: PR.decoder(z).detach(), latent_dim=2), ValueError,
     "^decoder: its output does not depend on z"),
    ("custom-distortion-detached", lambda t: ais(distortion=lambda x, xh: l1(x, xh).detach(), logvar=None),
     ValueError, "^distortion:"),
    ("output-layout", lambda t: ais(decoder=lambda z: torch.zeros(z.shape[0], 3, 4, 2, dtype=z.dtype) + z.sum(),
                                    x=torch.zeros(3, 4, 2, 3, dtype=torch.float64), latent_dim=2), ValueError,
     r"^decoder: output has shape \(6, 3, 4, 2\)"),
    ("bernoulli-x-above-1", lambda t: ais(x=PR.x.abs() + 1, distortion="bernoulli_nll", logvar=None), ValueError,
     r"^x: bernoulli_nll needs data in \[0, 1\]"),
    ("bernoulli-x-negative", lambda t: rdfast.log_likelihood(PR.decoder, -PR.x.abs(), 4, distortion="bernoulli_nll",
                                                             backend="torch"), ValueError, "^x: bernoulli_nll"),
    ("prior-wrong-dim", lambda t: ais(prior=rdfast.GaussianMixture([1.0], [[0.0, 0.0, 0.0]], [1.0]), latent_dim=2),
     ValueError, "^prior:"),
    ("bdmc-float16", lambda t: bdmc(dtype=torch.float16), TypeError, "^dtype:"),
    ("bdmc-device", lambda t: bdmc(device="tpu9"), ValueError, "^device:"),
    ("bdmc-decoder-int", lambda t: rdfast.bdmc(42, [1.0], 2, steps=4, latent_dim=2, logvar=-0.5), TypeError,
     "^decoder:"),
    ("rd_curve-beta_max-vs-schedule", lambda t: rdfast.rd_curve(PR.decoder, PR.x, 3.0, 6, schedule=SCHED, **SMALL),
     ValueError, "^beta_max:"),
    ("rd_curve-steps-vs-schedule", lambda t: rdfast.rd_curve(PR.decoder, PR.x, steps=7, schedule=SCHED, **SMALL),
     ValueError, "^steps:"),
    ("rd_curve-steps-float", lambda t: rdfast.rd_curve(PR.decoder, PR.x, 2.0, 4.5, **SMALL), ValueError, "^steps:"),
    ("rd_curve-through-string", lambda t: curve(through=["a"]), TypeError, "^through:"),
    ("log_likelihood-steps-float", lambda t: rdfast.log_likelihood(PR.decoder, PR.x, 4.0, **SMALL), ValueError,
     "^steps:"),
    ("bdmc-betas-none", lambda t: bdmc(betas=None), TypeError, "^betas:"),
    ("bdmc-betas-strings", lambda t: rdfast.bdmc(PR.decoder, ["a"], 2, steps=4, **SMALL), TypeError, "^betas:"),
    # checkpoint and resume paths
    ("checkpoint-folder", lambda t: ais(checkpoint=t), ValueError, "^checkpoint: .* is a folder"),
    ("checkpoint-missing-folder", lambda t: ais(checkpoint=t / "no" / "c.ckpt"), ValueError,
     "^checkpoint: the folder .* does not exist"),
    ("checkpoint-unwritable-folder", lambda t: ais(checkpoint=UNWRITABLE), ValueError,
     "^checkpoint: cannot write files in /proc"),
    ("checkpoint-int", lambda t: ais(checkpoint=42), TypeError, "^checkpoint: expected a file path"),
    ("checkpoint-bytes", lambda t: ais(checkpoint=b"c.ckpt"), TypeError, "^checkpoint:"),
    ("resume-missing", lambda t: ais(resume=t / "missing.ckpt"), ValueError, "^resume: no checkpoint at"),
    ("resume-folder", lambda t: ais(resume=t), ValueError, "^resume: .* is a folder"),
    ("rd_curve-resume-missing", lambda t: curve(resume=t / "missing"), ValueError,
     r"^resume: no checkpoint of this call at .*missing \(it keeps one file per run"),
    ("bdmc-resume-missing", lambda t: bdmc(resume=t / "missing"), ValueError, "^resume: no checkpoint of this call"),
    ("rd_curve-checkpoint-missing-folder", lambda t: curve(checkpoint=t / "no" / "c"), ValueError,
     "^checkpoint: the folder .* does not exist"),
    # rdfast.ops
    ("ops-beta-nan", lambda t: ops.leapfrog_begin(**begin_args(beta=math.nan)), ValueError, "beta must be finite"),
    ("ops-dbeta-inf", lambda t: ops.leapfrog_begin(**begin_args(dbeta=np.inf)), ValueError, "dbeta must be finite"),
    ("ops-beta-0d-nan", lambda t: ops.leapfrog_begin(**begin_args(beta=np.array(np.nan))), ValueError,
     "beta must be finite"),
    ("ops-beta-string", lambda t: ops.leapfrog_begin(**begin_args(beta="1")), TypeError, "beta"),
    ("ops-beta-bool", lambda t: ops.leapfrog_begin(**begin_args(beta=True)), TypeError, "beta"),
    ("ops-read-only-dlpack-output", lambda t: ops.record(**record_args(log_z=ReadOnlyDLPack(read_only(2)))),
     ValueError, "log_z is an output .* read-only"),
    ("ops-read-only-numpy-output", lambda t: ops.record(**record_args(ess=read_only(2))), ValueError,
     "ess is an output"),
    ("ops-n_chains-zero", lambda t: ops.record(**record_args(n_chains=0)), ValueError, "n_chains"),
    ("ops-n_chains-not-dividing", lambda t: ops.record(**record_args(n_chains=3)), ValueError, "rows"),
    ("ops-kind-unknown", lambda t: ops.distortion("l1", np.zeros((1, 3)), np.zeros((2, 3)), None, np.zeros(2),
                                                  np.zeros((2, 3)), None, 2), ValueError, "distortion: kind"),
    ("ops-inv_mass-negative", lambda t: ops.leapfrog_begin(**begin_args(inv_mass=-np.ones((2, 2)))), ValueError,
     "inv_mass must be positive"),
    ("ops-wrong-dtype", lambda t: ops.record(**record_args(d=np.ones(4, dtype=np.float32))), TypeError, "d must be"),
]


@pytest.mark.parametrize("call, exc, pattern", [case[1:] for case in REFUSED], ids=[case[0] for case in REFUSED])
def test_refused_naming_the_argument(tmp_path, call, exc, pattern):
    before = sorted(os.listdir(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(exc, match=pattern):
            call(tmp_path)
    assert sorted(os.listdir(tmp_path)) == before  # nothing written


def test_refusals_come_before_any_decoder_call(tmp_path):
    calls = []
    decoder = counting(PR.decoder, calls)
    started = time.monotonic()
    for kwargs, pattern in [(dict(record=2.5), "record"), (dict(checkpoint=tmp_path / "no" / "c"), "checkpoint"),
                            (dict(resume=tmp_path / "missing"), "resume"), (dict(seed=2 ** 70), "seed")]:
        with pytest.raises((TypeError, ValueError), match=f"^{pattern}:"):
            rdfast.rd_curve(decoder, PR.x, 2.0, 10 ** 5, **{**SMALL, **kwargs})
    assert not calls and time.monotonic() - started < 1.0


# ---- resumes that would mix runs ----------------------------------------------------------------

MIXED = [  # (id, first run's keyword arguments, the resuming call's)
    ("prior-left-out", dict(prior=mixture(1.0)), dict()),
    ("prior-added", dict(), dict(prior=mixture(1.0))),
    ("prior-other-means", dict(prior=mixture(1.0)), dict(prior=mixture(2.0))),
    ("function-same-name-other-code", dict(decoder=decoder_a), dict(decoder=decoder_b)),
    ("function-other-closure-value", dict(decoder=plain(1.0)), dict(decoder=plain(1.5))),
    ("distortion-same-name-other-code", dict(distortion=l1, logvar=None), dict(distortion=l1_other, logvar=None)),
    ("module-other-weights", dict(decoder=linear_problem(2, 5, 3, seed=2).decoder),
     dict(decoder=linear_problem(2, 5, 3, seed=9).decoder)),
    ("module-other-activation", dict(decoder=torch.nn.Sequential(PR.decoder, torch.nn.Tanh())),
     dict(decoder=torch.nn.Sequential(PR.decoder, torch.nn.Sigmoid()))),
]


@pytest.mark.parametrize("first, again", [case[1:] for case in MIXED], ids=[case[0] for case in MIXED])
def test_a_resume_that_would_mix_runs_is_refused_and_the_file_kept(tmp_path, first, again):
    path = checkpointed(tmp_path, **first)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="^resume: .* was written by a run with different"):
        ais(resume=path, **again)
    assert path.read_bytes() == before
    assert torch.equal(ais(resume=path, **first).log_z, ais(**first).log_z)  # the right call resumes it


# ---- accepted, with the right result ------------------------------------------------------------

def test_numpy_scalars_are_numbers():
    assert torch.equal(ais(n_chains=np.int64(2), seed=np.int64(1), leapfrog_steps=np.int32(2), record=np.int64(3),
                           step_size=np.float64(0.05), target_accept=np.float32(0.5), jitter=np.float64(0.1)).log_z,
                       ais(n_chains=2, seed=1, leapfrog_steps=2, record=3, step_size=0.05, target_accept=0.5,
                           jitter=0.1).log_z)
    assert torch.equal(rdfast.schedules.sigmoid(np.int64(6), np.float32(2.0)), SCHED)


def test_a_numpy_record_count_is_a_count_not_an_index():
    res = ais(record=np.int64(3))
    assert res.steps.tolist() == [2, 4, 6] and res.beta[-1].item() == 2.0
    assert res.summary().startswith("AIS: 3 items x 2 chains, 6 transitions")


def test_checkpoint_every_as_a_numpy_int_counts_transitions(tmp_path):
    path = tmp_path / "c.ckpt"
    ais(checkpoint=path, checkpoint_every=np.int64(2), batch_size=3)
    assert torch.load(path, weights_only=True)["seconds"] > 0


def test_an_existing_checkpoint_is_never_overwritten(tmp_path):
    path = checkpointed(tmp_path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match=f"^checkpoint: .* already exists; pass resume={str(path)!r}"):
        ais(checkpoint=path)
    (tmp_path / "c.tune").write_bytes(before)
    with pytest.raises(ValueError, match=f"^checkpoint: .*/c.tune already exists .* pass resume={re.escape(repr(str(tmp_path / 'c')))}"):
        curve(checkpoint=tmp_path / "c")
    assert path.read_bytes() == before == (tmp_path / "c.tune").read_bytes()


def test_resume_advice_followed_resumes(tmp_path):
    base = tmp_path / "cl.ckpt"
    first = curve(checkpoint=base)
    with pytest.raises(ValueError, match=f"pass resume={str(base)!r}") as refused:
        curve(checkpoint=base)
    assert ".tune'" not in str(refused.value)
    assert torch.equal(curve(resume=base).log_z, first.log_z)
    with pytest.raises(ValueError, match=f"is the file of one of its runs: pass resume={str(base)!r}"):
        curve(resume=f"{base}.tune")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cl.ckpt.final", "cl.ckpt.tune"]


def test_a_frozen_constant_logvar_output_works():
    """(mean, logvar) with logvar a learned parameter that rdfast run freezes (issue 17, item 7)."""
    class MeanAndLogvar(torch.nn.Module):
        latent_dim = 2

        def __init__(self):
            super().__init__()
            self.mean, self.logvar = PR.decoder, torch.nn.Parameter(torch.full((5,), -0.5, dtype=torch.float64))

        def forward(self, z):
            return self.mean(z), self.logvar.expand(z.shape[0], -1)
    decoder = MeanAndLogvar().requires_grad_(False)
    assert torch.allclose(ais(decoder=decoder, logvar=None).log_z, ais(logvar=-0.5).log_z, rtol=1e-12, atol=1e-12)


def test_a_decoder_with_0d_buffers_checkpoints_and_resumes(tmp_path):
    decoder = torch.nn.Sequential(PR.decoder, torch.nn.BatchNorm1d(5, dtype=torch.float64)).eval()  # a 0-d counter
    path = checkpointed(tmp_path, decoder=decoder)
    assert torch.equal(ais(decoder=decoder, resume=path).log_z, ais(decoder=decoder).log_z)


def test_outputs_of_the_same_layout_are_accepted():
    flat = ais(decoder=lambda z: PR.decoder(z), latent_dim=2)
    image = ais(decoder=lambda z: PR.decoder(z).reshape(-1, 5, 1), x=PR.x.reshape(3, 1, 5), latent_dim=2)
    assert torch.equal(flat.log_z, image.log_z)


def test_warnings_for_training_mode_and_zero_acceptance():
    with pytest.warns(RuntimeWarning, match=r"decoder: 1 \(Dropout\) is in training mode.*decoder.eval\(\)"):
        ais(decoder=torch.nn.Sequential(PR.decoder, torch.nn.Dropout(0.1)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ais(decoder=torch.nn.Sequential(PR.decoder, torch.nn.Dropout(0.1)).eval())
        ais(decoder=torch.nn.Sequential(PR.decoder, torch.nn.Tanh()))  # training mode, but no effect
    with pytest.warns(RuntimeWarning, match="acceptance ended at 0 for 3 of 3 items"):
        ais(step_size=50.0, adapt=None, n_chains=4, record=1)


def test_ops_read_only_inputs_through_dlpack_are_fine():
    logw = ReadOnlyDLPack(read_only(4))
    log_z = np.full(2, 7.0)
    ops.record(**record_args(logw=logw, log_z=log_z))
    assert np.allclose(log_z, 0.0)


def test_progress_bars_say_which_round_they_belong_to(monkeypatch):
    from rdfast.sampling import annealing

    labels = []

    class Recorded(annealing.Progress):
        def __init__(self, total, label, enabled, unit="step"):
            labels.append(label)
            super().__init__(total, label, False, unit)
    monkeypatch.setattr(annealing, "Progress", Recorded)
    curve(progress=True)
    rdfast.log_likelihood(PR.decoder, PR.x, 4, **SMALL, progress="vae")
    assert labels == ["RD curve · round 1/2", "RD curve · round 2/2", "vae · round 1/2", "vae · round 2/2"]


def test_a_gaussian_nll_figure_has_a_linear_axis_for_negative_distortions(tmp_path):
    from rdfast.apps import figures

    results = {"distortion": "gaussian_nll", "models": {"m": {"curve": {
        "beta": [0.5, 1.0, 2.0], "rate": [0.1, 1.0, 2.0], "distortion": [3.0, -1.0, -4.0]}}}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns when it cannot log-scale the data
        figures.rd_curves(results, tmp_path / "rd.png")
    assert (tmp_path / "rd.png").stat().st_size > 5000


# ---- the command line (in this process: the messages are what the command prints) --------------

def run_cli(*argv):
    """``rdfast argv``: its exit message (SystemExit) or 0."""
    try:
        return cli.main([str(a) for a in argv])
    except SystemExit as exc:
        return str(exc.code)


MODULES = {
    "raises_on_import": "raise RuntimeError('no GPU here')",
    "needs_arguments": textwrap.dedent("""
        import torch
        class Decoder(torch.nn.Module):
            def __init__(self, width):
                super().__init__()
    """),
    "plain_function": "def decoder(z):\n    return z.sum(1, keepdim=True).expand(-1, 6)\n",
    "mean_logvar": textwrap.dedent("""
        import torch
        torch.manual_seed(0)
        class Decoder(torch.nn.Module):
            latent_dim = 2
            def __init__(self):
                super().__init__()
                self.net = torch.nn.Linear(2, 6)
                self.logvar = torch.nn.Parameter(torch.full((6,), -1.0))
            def forward(self, z):
                return self.net(z), self.logvar.expand(z.shape[0], -1)
        decoder = Decoder()
    """),
}
RUN = ["run", "--data", "data.npz", "--steps", 4, "--chains", 2, "--leapfrog", 1, "--record", 2, "--beta-max", 2,
       "--device", "cpu", "--quiet"]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A folder with the user modules (named after the test, so that no import is cached) and 6 items."""
    monkeypatch.chdir(tmp_path)
    tag = str(abs(hash(tmp_path)))
    for name, source in MODULES.items():
        (tmp_path / f"{name}{tag}.py").write_text(source)
    np.savez(tmp_path / "data.npz", x=np.random.default_rng(0).random((6, 6)).astype(np.float32))
    np.savez(tmp_path / "wide.npz", x=2 * np.random.default_rng(0).random((6, 6)).astype(np.float32))
    np.savez(tmp_path / "results.npz", x=np.arange(300.0))
    return tmp_path, tag


CLI_REFUSED = [  # (id, argv with {m} for the module suffix, pattern of the message)
    ("decoder-raises-on-import", [*RUN, "--decoder", "raises_on_import{m}:decoder"],
     "--decoder: importing 'raises_on_import.*' raised RuntimeError: no GPU here"),
    ("decoder-needs-arguments", [*RUN, "--decoder", "needs_arguments{m}:Decoder"],
     r"--decoder: .*Decoder is a class and Decoder\(\) raised TypeError"),
    ("latent-dim-as-a-flag", [*RUN, "--decoder", "plain_function{m}:decoder"], "pass --latent-dim K"),
    ("plot-a-folder", ["plot", "."], r"plot: \. is a folder; expected the path of a results.json"),
    ("plot-an-npz", ["plot", "results.npz"], "plot: results.npz is not an rdfast results.json"),
    ("out-is-a-file", [*RUN, "--decoder", "plain_function{m}:decoder", "--out", "data.npz"],
     "--out: data.npz is a file"),
    ("out-unwritable", [*RUN, "--decoder", "plain_function{m}:decoder", "--out", UNWRITABLE], "--out: cannot write"),
    ("items-beyond-the-data", [*RUN, "--decoder", "plain_function{m}:decoder", "--latent-dim", 2, "--items", 1000],
     "--items: 1000 asked for, but data.npz holds 6 items; pass --items 6 or fewer"),
    ("resume-missing", [*RUN, "--decoder", "plain_function{m}:decoder", "--latent-dim", 2, "--resume", "missing.ckpt"],
     "--resume: no checkpoint of this call at missing.ckpt"),
    ("seed-too-large", [*RUN, "--decoder", "plain_function{m}:decoder", "--latent-dim", 2, "--seed", 2 ** 70],
     r"--seed: expected an int in \[0, 2\*\*62\)"),
    ("checkpoint-missing-folder", [*RUN, "--decoder", "plain_function{m}:decoder", "--latent-dim", 2,
                                   "--checkpoint", "no/c.ckpt"], "--checkpoint: the folder .* does not exist"),
    ("checkpoint-a-folder", [*RUN, "--decoder", "plain_function{m}:decoder", "--latent-dim", 2, "--single-round",
                             "--checkpoint", "."], r"--checkpoint: \. is a folder"),
    ("bernoulli-data-outside", [*RUN, "--decoder", "plain_function{m}:decoder", "--latent-dim", 2, "--distortion",
                                "bernoulli_nll", "--data", "wide.npz"], r"--data: bernoulli_nll needs data in \[0, 1\]"),
    ("logvar-without-gaussian", [*RUN, "--decoder", "plain_function{m}:decoder", "--latent-dim", 2, "--logvar", 0],
     "--logvar: only used with --distortion gaussian_nll, not 'squared_error'"),
]


@pytest.mark.parametrize("argv, pattern", [case[1:] for case in CLI_REFUSED], ids=[case[0] for case in CLI_REFUSED])
def test_the_command_line_refuses_with_its_options(workdir, argv, pattern):
    tmp, tag = workdir
    message = run_cli(*[a.format(m=tag) if isinstance(a, str) else a for a in argv])
    assert isinstance(message, str) and message.startswith("rdfast: "), message
    assert not re.search(r"\b[a-z_]{2,}=", message), f"Python syntax in {message!r}"
    assert re.search(pattern, message), message
    assert not (tmp / "rdfast_out" / "results.json").exists()


def test_the_command_line_run_resumes_as_it_advises_and_never_overwrites(workdir, capsys):
    tmp, tag = workdir
    argv = [*RUN, "--decoder", f"mean_logvar{tag}:decoder", "--distortion", "gaussian_nll", "--checkpoint", "cl.ckpt"]
    assert run_cli(*argv, "--out", "a") == 0  # a (mean, logvar) decoder whose .logvar is frozen (item 7)
    printed = capsys.readouterr().out
    assert "bdmc.png" not in printed and not (tmp / "a" / "bdmc.png").exists()
    results = json.loads((tmp / "a" / "results.json").read_text())
    assert results["settings"] | {"chains": 2, "steps": 4, "seed": 0, "leapfrog": 1, "schedule": "sigmoid"} \
        == results["settings"]
    message = run_cli(*argv, "--out", "b")
    assert f"pass --resume {tmp / 'cl.ckpt'} to continue" in message or "pass --resume cl.ckpt" in message, message
    assert not (tmp / "b" / "results.json").exists()
    before = (tmp / "a" / "results.json").read_bytes()
    assert "--out: a already holds result.npz, results.json" in run_cli(*argv[:-2], "--resume", "cl.ckpt", "--out", "a")
    assert (tmp / "a" / "results.json").read_bytes() == before
    assert run_cli(*argv[:-2], "--resume", "cl.ckpt", "--out", "b") == 0  # the advice, followed
    again = json.loads((tmp / "b" / "results.json").read_text())
    for name in ("rate", "distortion", "log_z", "beta"):
        assert again["models"]["model"]["curve"][name] == results["models"]["model"]["curve"][name]
    message = run_cli(*argv[:-2], "--resume", "cl.ckpt.tune", "--out", "c")
    assert "is the file of one of its runs: pass --resume cl.ckpt" in message, message
    assert sorted(p.name for p in tmp.glob("cl.ckpt*")) == ["cl.ckpt.final", "cl.ckpt.tune"]
