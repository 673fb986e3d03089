"""Checkpoint/resume: a run killed with SIGKILL, stopped by SIGTERM or Ctrl-C resumes to the bit-identical
result; one writer per file; bad files and paths are refused before any work."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

import rdfast
from rdfast.sampling import annealing
from rdfast.testing import linear_problem

ARGS = dict(logvar=-0.5, n_chains=4, leapfrog_steps=3, record=6, seed=3, backend="torch", batch_size=3)
STEPS = 300

# a run in another process, slowed down by a wrapper of its evaluator (outside the fingerprint):
# argv = checkpoint path, checkpoint_every (transitions)
SCRIPT = textwrap.dedent(f"""
    import sys, time, torch, rdfast
    from rdfast.sampling import annealing
    from rdfast.testing import linear_problem
    torch.set_num_threads(1)
    make = annealing.make_evaluator
    def slow_evaluator(*args):
        evaluate = make(*args)
        def slowly(z, d, g):
            time.sleep(0.002)
            evaluate(z, d, g)
        return slowly
    annealing.make_evaluator = slow_evaluator
    pr = linear_problem(2, 5, 5, logvar=-0.5, seed=2, rowwise=True)
    rdfast.ais(pr.decoder, pr.x, rdfast.schedules.sigmoid({STEPS}, 4.0), checkpoint=sys.argv[1],
               checkpoint_every=int(sys.argv[2]), **{ARGS!r})
    print("finished")
""")


def problem():
    return linear_problem(2, 5, 5, logvar=-0.5, seed=2, rowwise=True)


def start(path, every):
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(path), str(every)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=path.parent)


def wait_for(proc, ready, what):
    deadline = time.monotonic() + 120
    while not ready():
        assert proc.poll() is None, f"ended before {what}: {proc.stderr.read().decode()}"
        assert time.monotonic() < deadline, f"no {what} in 120 s"
        time.sleep(0.02)


def saved_state(path):
    try:
        return torch.load(path, weights_only=True)
    except (FileNotFoundError, RuntimeError, EOFError):  # not written yet, or replaced while read
        return None


def assert_same(resumed, whole):
    for name in ("log_z", "distortion", "rate", "ess", "accept_rate", "z", "log_w", "divergences", "acceptance"):
        assert torch.equal(getattr(resumed, name), getattr(whole, name)), name
    assert torch.equal(resumed.tuning.log_eps, whole.tuning.log_eps)


def uninterrupted():
    pr = problem()
    return rdfast.ais(pr.decoder, pr.x, rdfast.schedules.sigmoid(STEPS, 4.0), **ARGS)


def resumed(path):
    pr = problem()
    return rdfast.ais(pr.decoder, pr.x, rdfast.schedules.sigmoid(STEPS, 4.0), resume=path, **ARGS)


def test_sigkill_then_resume_is_bit_identical_and_leaves_nothing_behind(tmp_path):
    torch.set_num_threads(1)
    path = tmp_path / "run.ckpt"
    proc = start(path, 10)

    def in_second_chunk():
        state = saved_state(path)
        return state is not None and state["offset"] == 3 and state["state"] is not None and state["state"]["k"] > 20
    wait_for(proc, in_second_chunk, "checkpoint inside the second chunk")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = torch.load(path, weights_only=True)
    assert len(saved["parts"]) == 1 and 0 < saved["state"]["k"] < STEPS  # killed mid-run
    (tmp_path / ".run.ckpt.tmp-0123456789ab").write_bytes(b"half a save")  # as a kill inside a save leaves
    assert_same(resumed(path), uninterrupted())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.ckpt"]  # the orphan and the lock are gone


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_saves_then_stops_as_usual_and_the_run_resumes_bit_identical(tmp_path, signum):
    """No checkpoint is due (checkpoint_every is beyond the run): only the signal makes the save."""
    torch.set_num_threads(1)
    path = tmp_path / "run.ckpt"
    proc = start(path, 10 ** 6)
    wait_for(proc, lambda: saved_state(path) is not None, "save of the first chunk")  # chunk 1 of 2 done
    time.sleep(0.2)  # well inside chunk 2 (about 2 s long)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    if signum == signal.SIGTERM:
        assert proc.returncode == -signal.SIGTERM  # ended by the signal, as without rdfast's handler
    else:
        assert proc.returncode != 0 and b"KeyboardInterrupt" in err, err.decode()
    saved = torch.load(path, weights_only=True)
    assert saved["offset"] == 3 and 0 < saved["state"]["k"] < STEPS  # saved mid-way through chunk 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.ckpt"]
    assert_same(resumed(path), uninterrupted())


def test_ctrl_c_in_this_process_saves_raises_and_restores_the_handlers(tmp_path, monkeypatch):
    pr = problem()
    calls = {"n": 0}
    make = annealing.make_evaluator

    def interrupting(*args):
        evaluate = make(*args)

        def evaluate_and_press_ctrl_c(z, d, g):
            calls["n"] += 1
            if calls["n"] == 100:
                signal.raise_signal(signal.SIGINT)
            evaluate(z, d, g)
        return evaluate_and_press_ctrl_c
    monkeypatch.setattr(annealing, "make_evaluator", interrupting)
    handler = signal.getsignal(signal.SIGINT)
    path = tmp_path / "c.ckpt"
    sched = rdfast.schedules.sigmoid(60, 4.0)
    with pytest.raises(KeyboardInterrupt):
        rdfast.ais(pr.decoder, pr.x, sched, checkpoint=path, checkpoint_every=10 ** 6, **ARGS)
    assert signal.getsignal(signal.SIGINT) is handler
    k = torch.load(path, weights_only=True)["state"]["k"]
    assert 100 // 3 <= k < 60  # the save comes at the end of the segment the signal came in
    monkeypatch.setattr(annealing, "make_evaluator", make)
    again = rdfast.ais(pr.decoder, pr.x, sched, resume=path, **ARGS)
    assert torch.equal(again.log_z, rdfast.ais(pr.decoder, pr.x, sched, **ARGS).log_z)


def test_a_second_writer_is_refused_before_it_works_and_the_first_is_untouched(tmp_path):
    path = tmp_path / "run.ckpt"
    proc = start(path, 10 ** 6)
    wait_for(proc, lambda: (tmp_path / ".run.ckpt.lock").exists(), "lock")
    pr = problem()
    calls = []
    for kwargs in (dict(checkpoint=path), dict(resume=path)):
        with pytest.raises(ValueError, match=r"(checkpoint|resume): .*run.ckpt is being written by another run "
                                             rf"\(process {proc.pid}\)"):
            rdfast.ais(lambda z: calls.append(z) or pr.decoder(z), pr.x, rdfast.schedules.sigmoid(STEPS, 4.0),
                       latent_dim=2, **kwargs, **ARGS)
    assert not calls
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0 and b"finished" in out, err.decode()
    assert_same(resumed(path), uninterrupted())  # the file holds the first writer's whole run


def test_a_checkpoint_in_a_missing_folder_fails_at_once(tmp_path):
    pr = problem()
    calls = []

    def decoder(z):
        calls.append(z)
        return pr.decoder(z)
    started = time.monotonic()
    with pytest.raises(ValueError, match="checkpoint: the folder .*missing does not exist"):
        rdfast.ais(decoder, pr.x, rdfast.schedules.sigmoid(10 ** 5, 4.0), checkpoint=tmp_path / "missing" / "c.ckpt",
                   latent_dim=2, **ARGS)
    assert time.monotonic() - started < 1.0 and not calls
    with pytest.raises(ValueError, match="checkpoint: .*missing does not exist"):
        rdfast.rd_curve(decoder, pr.x, 4.0, 10 ** 5, checkpoint=tmp_path / "missing" / "c", latent_dim=2, logvar=-0.5)
    assert time.monotonic() - started < 1.0 and not calls


def test_files_respect_the_umask(tmp_path):
    pr = problem()
    old = os.umask(0o027)
    try:
        result = rdfast.ais(pr.decoder, pr.x, rdfast.schedules.sigmoid(8, 4.0), checkpoint=tmp_path / "c.ckpt", **ARGS)
        result.save(tmp_path / "r.npz")
    finally:
        os.umask(old)
    for name in ("c.ckpt", "r.npz"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o640, name


def _checkpointed(tmp_path):
    pr = problem()
    path = tmp_path / "c.ckpt"
    rdfast.ais(pr.decoder, pr.x, rdfast.schedules.sigmoid(20, 4.0), checkpoint=path, checkpoint_every=5, **ARGS)
    return pr, path


def test_mismatched_checkpoint_refused_and_untouched(tmp_path):
    pr, path = _checkpointed(tmp_path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="different arguments"):
        rdfast.ais(pr.decoder, pr.x, rdfast.schedules.sigmoid(20, 4.0), resume=path, **{**ARGS, "seed": 4})
    with pytest.raises(ValueError, match="different arguments"):
        rdfast.ais(pr.decoder, pr.x + 0.1, rdfast.schedules.sigmoid(20, 4.0), resume=path, **ARGS)
    assert path.read_bytes() == before


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign"])
def test_corrupted_checkpoint_refused_and_untouched(tmp_path, damage):
    pr, path = _checkpointed(tmp_path)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint" * 10)
    else:
        torch.save({"hello": torch.zeros(2)}, path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="resume:"):
        rdfast.ais(pr.decoder, pr.x, rdfast.schedules.sigmoid(20, 4.0), resume=path, **ARGS)
    assert path.read_bytes() == before


def test_a_trained_model_file_is_not_a_checkpoint(tmp_path):
    """Trained models (rdfast.apps.train) have their own format tag: passed as resume=, refused by name."""
    from rdfast.apps.models import VAEDecoder
    from rdfast.apps.train import save_checkpoint

    pr = problem()
    path = tmp_path / "model.pt"
    save_checkpoint(path, VAEDecoder(2, 5, hidden=4, depth=1), {"kind": "vae"})
    before = path.read_bytes()
    with pytest.raises(ValueError, match="resume: .* is not an rdfast checkpoint"):
        rdfast.ais(pr.decoder, pr.x, rdfast.schedules.sigmoid(20, 4.0), resume=path, **ARGS)
    assert path.read_bytes() == before


def test_existing_checkpoint_not_overwritten_without_resume(tmp_path):
    pr, path = _checkpointed(tmp_path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="already exists"):
        rdfast.ais(pr.decoder, pr.x, rdfast.schedules.sigmoid(20, 4.0), checkpoint=path, **ARGS)
    assert path.read_bytes() == before


def test_resume_of_finished_run_returns_the_result(tmp_path):
    pr, path = _checkpointed(tmp_path)
    again = rdfast.ais(pr.decoder, pr.x, rdfast.schedules.sigmoid(20, 4.0), resume=path, **ARGS)
    whole = rdfast.ais(pr.decoder, pr.x, rdfast.schedules.sigmoid(20, 4.0), **ARGS)
    assert torch.equal(again.log_z, whole.log_z)


def test_checkpoint_every_validated(tmp_path):
    pr = problem()
    with pytest.raises(ValueError, match="checkpoint_every"):
        rdfast.ais(pr.decoder, pr.x, rdfast.schedules.sigmoid(20, 4.0), checkpoint=tmp_path / "x", checkpoint_every=0, **ARGS)


def test_rd_curve_and_bdmc_resume(tmp_path):
    pr = problem()
    kw = dict(logvar=-0.5, n_chains=3, leapfrog_steps=2, seed=1, backend="torch")
    first = rdfast.rd_curve(pr.decoder, pr.x, 2.0, 12, checkpoint=tmp_path / "rd", **kw)
    assert (tmp_path / "rd.tune").exists() and (tmp_path / "rd.final").exists()
    (tmp_path / "rd.final").unlink()  # as if killed before round 2 saved anything
    again = rdfast.rd_curve(pr.decoder, pr.x, 2.0, 12, resume=tmp_path / "rd", **kw)
    assert torch.equal(first.log_z, again.log_z)
    b1 = rdfast.bdmc(pr.decoder, [1.0], 3, steps=6, checkpoint=tmp_path / "bd", **kw)
    b2 = rdfast.bdmc(pr.decoder, [1.0], 3, steps=6, resume=tmp_path / "bd", **kw)
    assert torch.equal(b1.lower, b2.lower) and torch.equal(b1.upper, b2.upper)


class Crash(Exception):
    pass


@pytest.mark.parametrize("metric", ["diagonal", "dense"])
@pytest.mark.parametrize("tuned_round", ["round 1", "round 2"])
def test_tuned_runs_resume_bit_identical(tmp_path, tuned_round, metric, monkeypatch, tuned_run):
    """With the tuned settings (a diagonal or dense metric estimated or replayed, jitter, the 'prob'
    rule) a run stopped mid-way resumes to the uninterrupted result: the metric model, the dense
    metric's basis (refreshed at knot 31 of round 1) and the tuner are saved too."""
    pr = linear_problem(3, 6, 4, logvar=-0.5, seed=4)
    sched, args = tuned_run(pr, 60, metric, tuned_round)
    whole = rdfast.ais(pr.decoder, pr.x, sched, **args)
    path = tmp_path / "c.ckpt"
    make, calls = annealing.make_evaluator, {"left": 1 + 3 * 37}  # dies in transition 38, after the save at 35

    def crashing(*a):
        evaluate = make(*a)

        def evaluate_or_crash(z, d, g):
            calls["left"] -= 1
            if calls["left"] < 0:
                raise Crash
            evaluate(z, d, g)
        return evaluate_or_crash
    monkeypatch.setattr(annealing, "make_evaluator", crashing)
    with pytest.raises(Crash):
        rdfast.ais(pr.decoder, pr.x, sched, checkpoint=path, checkpoint_every=7, **args)
    assert torch.load(path, weights_only=True)["state"]["k"] == 35
    monkeypatch.setattr(annealing, "make_evaluator", make)
    resumed = rdfast.ais(pr.decoder, pr.x, sched, resume=path, **args)
    for name in ("log_z", "distortion", "z", "log_w", "acceptance"):
        assert torch.equal(getattr(resumed, name), getattr(whole, name)), name
    for name in ("log_eps", "var_d", "curvature") + (("rotation",) if metric == "dense" else ()):
        assert torch.equal(getattr(resumed.tuning, name), getattr(whole.tuning, name)), name
