"""Scale-out with torch.distributed on the CPU (gloo): 1, 2 and 3 worker processes, launched the
way torchrun launches them (RANK, WORLD_SIZE, MASTER_ADDR/PORT on 127.0.0.1), return exactly
what one process returns for all items, also with uneven shards and ranks without items.

Results are compared bit for bit (torch.equal): random numbers are keyed by global item index,
the fused ops treat rows independently, and the decoder (``RowwiseLinear``) does too, so no
tolerance is needed. (A BLAS decoder such as nn.Linear may round a row differently in a shard of
a few rows: then ranks agree to rounding, see docs/distributed.md.) The file runs itself as the worker:
``python tests/runtime/test_distributed.py OUT_DIR`` with torchrun's environment variables.
"""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import rdfast
from rdfast.runtime.distributed import shard_range
from rdfast.testing import linear_problem

ROOT = Path(__file__).resolve().parents[1]
SCHED = rdfast.schedules.sigmoid(12, 4.0)
SMALL = dict(n_chains=3, leapfrog_steps=2, backend="torch")
WORKER_TIMEOUT_S = 120


def problem(n_items):
    return linear_problem(2, 5, n_items, logvar=-0.5, seed=2, rowwise=True)


def run_ais(n_items, seed=7, **kw):
    pr = problem(n_items)
    return rdfast.ais(pr.decoder, pr.x, SCHED, logvar=pr.logvar, record=4, seed=seed, **{**SMALL, **kw})


def run_curve(**kw):
    pr = problem(5)
    return rdfast.rd_curve(pr.decoder, pr.x, 4.0, 12, logvar=pr.logvar, record=4, seed=3, **SMALL, **kw)


def run_bdmc(**kw):
    pr = problem(1)
    return rdfast.bdmc(pr.decoder, [0.5, 2.0], 2, steps=8, logvar=pr.logvar, seed=5, **SMALL, **kw)


def error_of(fn):
    """(type name, message) of the exception ``fn()`` raises, or None."""
    try:
        fn()
    except Exception as exc:
        return type(exc).__name__, str(exc)
    return None


def worker(out: str) -> None:
    """One rank: run every scenario and save the results to OUT/rank{r}.pt."""
    torch.set_num_threads(1)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    res = {"ais5": run_ais(5, distributed=True)}  # initialises the process group from the environment
    res["ais2"] = run_ais(2)  # distributed=None: uses the process group
    res["rank0"] = run_ais(5, distributed="rank0")
    res["local"] = run_ais(5, distributed=False)
    torch.manual_seed(100 + rank)  # seed=None: every rank draws a different seed; rank 0's is used
    res["seedless"] = run_ais(5, seed=None)
    res["curve"] = run_curve()
    res["curve_rank0"] = run_curve(distributed="rank0")
    res["bdmc"] = run_bdmc()
    res["bdmc_rank0"] = run_bdmc(distributed="rank0")
    base = Path(out)
    res["ckpt"] = run_ais(5, checkpoint=base / "ais", checkpoint_every=4)
    res["ckpt_resumed"] = run_ais(5, resume=base / "ais")
    res["curve_ckpt"] = run_curve(checkpoint=base / "curve")
    res["curve_resumed"] = run_curve(resume=base / "curve")
    res["bdmc_ckpt"] = run_bdmc(checkpoint=base / "bdmc")
    res["bdmc_resumed"] = run_bdmc(resume=base / "bdmc")
    res["exists"] = [error_of(lambda: run_ais(5, checkpoint=base / "ais")),
                     error_of(lambda: run_bdmc(checkpoint=base / "bdmc"))]
    res["other_world"] = error_of(lambda: run_ais(5, resume=base / "old"))
    res["failure"] = error_of(lambda: run_ais(5, n_chains=0 if rank == world - 1 else 3))
    torch.save(res, base / f"rank{rank}.pt")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(world: int, out: Path) -> list:
    """Start ``world`` workers as torchrun would on one machine; the saved results, by rank."""
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE=str(world),
               LOCAL_WORLD_SIZE=str(world), OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    if sys.platform.startswith("linux"):
        env["GLOO_SOCKET_IFNAME"] = "lo"  # keep gloo on the loopback interface
    procs = [subprocess.Popen([sys.executable, __file__, str(out)], env=dict(env, RANK=str(r), LOCAL_RANK=str(r)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in range(world)]
    try:
        logs = [p.communicate(timeout=WORKER_TIMEOUT_S)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for r, (p, log) in enumerate(zip(procs, logs)):
        assert p.returncode == 0, f"rank {r} of {world} exited with {p.returncode}:\n{log}"
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(world)]


@pytest.fixture(scope="module", params=[1, 2, 3], ids=lambda w: f"{w}ranks")
def ranks(request, tmp_path_factory):
    """(world size, [results of each rank]) from one launch of that many workers."""
    world = request.param
    out = tmp_path_factory.mktemp(f"world{world}")
    (out / "old.rank0of7").write_bytes(b"")  # a checkpoint left by a run on 7 ranks
    return world, out, launch(world, out)


@pytest.fixture(scope="module")
def single():
    """The same scenarios in this process, without a process group."""
    return {"ais5": run_ais(5), "ais2": run_ais(2), "curve": run_curve(), "bdmc": run_bdmc()}


def without_seconds(config: dict) -> dict:
    return {k: without_seconds(v) if isinstance(v, dict) else v for k, v in config.items() if k != "seconds"}


def assert_same(a, b):
    """Every tensor (and the step sizes) equal bit for bit, configurations equal but for timings."""
    assert type(a) is type(b)
    for name, value in vars(a).items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, getattr(b, name)), name
    if isinstance(a, rdfast.AISResult):
        assert torch.equal(a.tuning.log_eps, b.tuning.log_eps)
        assert torch.equal(a.tuning.beta_bounds, b.tuning.beta_bounds)
    assert without_seconds(a.config) == without_seconds(b.config)


@pytest.mark.parametrize("n_items", [1, 2, 5, 7])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shards_are_contiguous_and_cover_the_items(n_items, world):
    ranges = [shard_range(n_items, r, world) for r in range(world)]
    assert ranges[0][0] == 0 and ranges[-1][1] == n_items
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    sizes = [stop - start for start, stop in ranges]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] - sizes[-1] <= 1


def test_ais_on_every_rank_equals_one_process(ranks, single):
    """5 items: shards 5 / 3+2 / 2+2+1; 2 items over 3 ranks leaves rank 2 without items."""
    _, _, results = ranks
    for res in results:
        assert_same(res["ais5"], single["ais5"])
        assert_same(res["ais2"], single["ais2"])


def test_rank0_option_returns_the_result_on_rank_0_only(ranks, single):
    _, _, results = ranks
    assert_same(results[0]["rank0"], single["ais5"])
    assert_same(results[0]["curve_rank0"], single["curve"])
    assert_same(results[0]["bdmc_rank0"], single["bdmc"])
    for res in results[1:]:
        assert res["rank0"] is None and res["curve_rank0"] is None and res["bdmc_rank0"] is None


def test_distributed_false_runs_all_items_on_each_rank(ranks, single):
    _, _, results = ranks
    for res in results:
        assert_same(res["local"], single["ais5"])


def test_seed_none_uses_rank_0s_seed_everywhere(ranks):
    _, _, results = ranks
    for res in results[1:]:
        assert_same(res["seedless"], results[0]["seedless"])


def test_rd_curve_and_bdmc_equal_one_process(ranks, single):
    _, _, results = ranks
    for res in results:
        assert_same(res["curve"], single["curve"])
        assert_same(res["bdmc"], single["bdmc"])


def test_checkpoints_are_per_rank_and_resume(ranks, single):
    world, out, results = ranks
    names = {p.name for p in out.iterdir()}
    assert {f"ais.rank{r}of{world}" for r in range(world)} <= names
    assert {f"curve.{run}.rank{r}of{world}" for r in range(world) for run in ("tune", "final")} <= names
    assert {f"bdmc.b1.rev.rank{r}of{world}" for r in range(min(world, 2))} <= names
    assert not any(name.startswith("bdmc.") and name.endswith(f"rank2of{world}") for name in names)  # 2 items
    for res in results:
        assert_same(res["ckpt"], single["ais5"])
        assert_same(res["ckpt_resumed"], single["ais5"])
        assert_same(res["curve_ckpt"], single["curve"])
        assert_same(res["curve_resumed"], single["curve"])
        assert_same(res["bdmc_ckpt"], single["bdmc"])
        assert_same(res["bdmc_resumed"], single["bdmc"])


def test_a_new_checkpoint_over_existing_rank_files_is_refused(ranks):
    _, out, results = ranks
    for rank, res in enumerate(results):
        (kind, message), (bdmc_kind, bdmc_message) = res["exists"]
        assert kind == ("ValueError" if rank < 5 else "RuntimeError")  # a rank without items: told
        assert bdmc_kind == "ValueError"  # BDMC's files are checked on every rank before any run
        for text in (message, bdmc_message):
            assert "checkpoint:" in text and "already exists" in text
        assert f"resume={str(out / 'ais')!r}" in message and f"resume={str(out / 'bdmc')!r}" in bdmc_message


def test_resume_with_another_number_of_ranks_is_refused(ranks):
    _, _, results = ranks
    for res in results:
        kind, message = res["other_world"]
        assert kind == "ValueError" and message.startswith("resume:") and "7 ranks" in message


def test_a_failing_rank_makes_every_rank_raise(ranks):
    world, _, results = ranks
    *others, last = [res["failure"] for res in results]
    assert last[0] == "ValueError" and "n_chains" in last[1]
    for kind, message in others:
        assert kind == "RuntimeError" and f"rank {world - 1} of {world} failed" in message and "n_chains" in message


def test_bad_distributed_values_are_refused(monkeypatch):
    with pytest.raises(ValueError, match="distributed: expected None, True, False or 'rank0'"):
        run_ais(2, distributed="yes")
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="distributed: no process group is initialised"):
        run_ais(2, distributed=True)


if __name__ == "__main__":
    worker(sys.argv[1])
