"""Checkpoint/resume: a run killed with SIGKILL resumes to the bit-identical result; bad files are refused."""
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

import rdfast
from rdfast.testing import linear_problem

ARGS = dict(logvar=-0.5, n_chains=4, leapfrog_steps=3, record=6, seed=3, backend="torch", batch_size=3)
STEPS = 300

SCRIPT = textwrap.dedent(f"""
    import sys, time, torch, rdfast
    from rdfast.testing import linear_problem
    torch.set_num_threads(1)
    pr = linear_problem(2, 5, 5, logvar=-0.5, seed=2)
    def slow(z):
        time.sleep(0.002)
        return pr.decoder(z)
    slow.latent_dim = 2
    rdfast.ais(slow, pr.x, rdfast.schedules.sigmoid({STEPS}, 4.0), checkpoint=sys.argv[1], checkpoint_every=10, **{ARGS!r})
""")


def problem():
    pr = linear_problem(2, 5, 5, logvar=-0.5, seed=2)

    def slow(z):  # same function name as in the subprocess: part of the fingerprint
        return pr.decoder(z)
    slow.latent_dim = 2
    return pr, slow


def test_sigkill_then_resume_is_bit_identical(tmp_path):
    torch.set_num_threads(1)
    path = tmp_path / "run.ckpt"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(path)], stderr=subprocess.PIPE, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait for a checkpoint taken inside the second chunk
        if path.exists():
            state = torch.load(path, weights_only=True)
            if state["offset"] == 3 and state["state"] is not None and state["state"]["k"] > 20:
                break
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = torch.load(path, weights_only=True)
    assert len(saved["parts"]) == 1 and 0 < saved["state"]["k"] < STEPS  # killed mid-run
    pr, slow = problem()
    sched = rdfast.schedules.sigmoid(STEPS, 4.0)
    resumed = rdfast.ais(slow, pr.x, sched, resume=path, **ARGS)
    whole = rdfast.ais(slow, pr.x, sched, **ARGS)
    for name in ("log_z", "distortion", "rate", "ess", "accept_rate", "z", "log_w", "divergences", "acceptance"):
        assert torch.equal(getattr(resumed, name), getattr(whole, name)), name
    assert torch.equal(resumed.tuning.log_eps, whole.tuning.log_eps)


def _checkpointed(tmp_path):
    pr, slow = problem()
    path = tmp_path / "c.ckpt"
    rdfast.ais(slow, pr.x, rdfast.schedules.sigmoid(20, 4.0), checkpoint=path, checkpoint_every=5, **ARGS)
    return pr, slow, path


def test_mismatched_checkpoint_refused_and_untouched(tmp_path):
    pr, slow, path = _checkpointed(tmp_path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="different arguments"):
        rdfast.ais(slow, pr.x, rdfast.schedules.sigmoid(20, 4.0), resume=path, **{**ARGS, "seed": 4})
    with pytest.raises(ValueError, match="different arguments"):
        rdfast.ais(slow, pr.x + 0.1, rdfast.schedules.sigmoid(20, 4.0), resume=path, **ARGS)
    assert path.read_bytes() == before


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign"])
def test_corrupted_checkpoint_refused_and_untouched(tmp_path, damage):
    pr, slow, path = _checkpointed(tmp_path)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint" * 10)
    else:
        torch.save({"hello": torch.zeros(2)}, path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="resume:"):
        rdfast.ais(slow, pr.x, rdfast.schedules.sigmoid(20, 4.0), resume=path, **ARGS)
    assert path.read_bytes() == before


def test_a_trained_model_file_is_not_a_checkpoint(tmp_path):
    """Trained models (rdfast.apps.train) have their own format tag: passed as resume=, refused by name."""
    from rdfast.apps.models import VAEDecoder
    from rdfast.apps.train import save_checkpoint

    pr, slow = problem()
    path = tmp_path / "model.pt"
    save_checkpoint(path, VAEDecoder(2, 5, hidden=4, depth=1), {"kind": "vae"})
    before = path.read_bytes()
    with pytest.raises(ValueError, match="resume: .* is not an rdfast checkpoint"):
        rdfast.ais(slow, pr.x, rdfast.schedules.sigmoid(20, 4.0), resume=path, **ARGS)
    assert path.read_bytes() == before


def test_existing_checkpoint_not_overwritten_without_resume(tmp_path):
    pr, slow, path = _checkpointed(tmp_path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="already exists"):
        rdfast.ais(slow, pr.x, rdfast.schedules.sigmoid(20, 4.0), checkpoint=path, **ARGS)
    assert path.read_bytes() == before


def test_resume_of_finished_run_returns_the_result(tmp_path):
    pr, slow, path = _checkpointed(tmp_path)
    again = rdfast.ais(slow, pr.x, rdfast.schedules.sigmoid(20, 4.0), resume=path, **ARGS)
    whole = rdfast.ais(slow, pr.x, rdfast.schedules.sigmoid(20, 4.0), **ARGS)
    assert torch.equal(again.log_z, whole.log_z)


def test_checkpoint_every_validated(tmp_path):
    pr, slow = problem()
    with pytest.raises(ValueError, match="checkpoint_every"):
        rdfast.ais(slow, pr.x, rdfast.schedules.sigmoid(20, 4.0), checkpoint=tmp_path / "x", checkpoint_every=0, **ARGS)


def test_rd_curve_and_bdmc_resume(tmp_path):
    pr, slow = problem()
    kw = dict(logvar=-0.5, n_chains=3, leapfrog_steps=2, seed=1, backend="torch")
    first = rdfast.rd_curve(slow, pr.x, 2.0, 12, checkpoint=tmp_path / "rd", **kw)
    assert (tmp_path / "rd.tune").exists() and (tmp_path / "rd.final").exists()
    (tmp_path / "rd.final").unlink()  # as if killed before round 2 saved anything
    again = rdfast.rd_curve(slow, pr.x, 2.0, 12, resume=tmp_path / "rd", **kw)
    assert torch.equal(first.log_z, again.log_z)
    b1 = rdfast.bdmc(pr.decoder, [1.0], 3, steps=6, checkpoint=tmp_path / "bd", **kw)
    b2 = rdfast.bdmc(pr.decoder, [1.0], 3, steps=6, resume=tmp_path / "bd", **kw)
    assert torch.equal(b1.lower, b2.lower) and torch.equal(b1.upper, b2.upper)


class Crash(Exception):
    pass


@pytest.mark.parametrize("tuned_round", ["round 1", "round 2"])
def test_tuned_runs_resume_bit_identical(tmp_path, tuned_round):
    """With the tuned settings (diagonal metric estimated or replayed, jitter, the 'prob' rule) a run
    stopped mid-way resumes to the uninterrupted result: the metric model and the tuner are saved too."""
    pr = linear_problem(3, 6, 4, logvar=-0.5, seed=4)
    calls = {"left": None}

    def decoder(z):  # one name for every run: part of the fingerprint
        if calls["left"] is not None:
            calls["left"] -= 1
            if calls["left"] < 0:
                raise Crash
        return pr.decoder(z)
    decoder.latent_dim = 3
    sched = rdfast.schedules.sigmoid(60, 8.0)
    args = dict(logvar=-0.5, n_chains=4, leapfrog_steps=3, record=5, seed=2, backend="cpu", metric="diagonal",
                jitter=0.5, step_size="auto")
    if tuned_round == "round 2":
        first = rdfast.ais(decoder, pr.x, sched, adapt="prob", **args)
        sched, args = rdfast.schedules.thermodynamic(first.tuning, 60), dict(args, tuning=first, seed=3)
    else:
        args["adapt"] = "prob"
    whole = rdfast.ais(decoder, pr.x, sched, **args)
    path = tmp_path / "c.ckpt"
    calls["left"] = 1 + 3 * 37  # dies during transition 38, after the checkpoint at transition 35
    with pytest.raises(Crash):
        rdfast.ais(decoder, pr.x, sched, checkpoint=path, checkpoint_every=7, **args)
    assert torch.load(path, weights_only=True)["state"]["k"] == 35
    calls["left"] = None
    resumed = rdfast.ais(decoder, pr.x, sched, resume=path, **args)
    for name in ("log_z", "distortion", "z", "log_w", "acceptance"):
        assert torch.equal(getattr(resumed, name), getattr(whole, name)), name
    for name in ("log_eps", "var_d", "curvature"):
        assert torch.equal(getattr(resumed.tuning, name), getattr(whole.tuning, name)), name
