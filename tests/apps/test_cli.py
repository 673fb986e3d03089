"""The command line end to end, in subprocesses (run from a scratch folder so the installed package is used)."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest


def rdfast(*args, cwd, check=True):
    proc = subprocess.run([sys.executable, "-m", "rdfast", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=900, env={**__import__("os").environ, "MPLBACKEND": "Agg"})
    if check and proc.returncode != 0:
        raise AssertionError(f"rdfast {args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, path


def test_help_lists_every_command(tmp_path):
    out = rdfast("--help", cwd=tmp_path).stdout
    for command in ("demo", "run", "loglik", "plot", "backends"):
        assert command in out
    assert "--checkpoint" in rdfast("run", "--help", cwd=tmp_path).stdout


def test_device_cuda_without_a_gpu_is_refused(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    proc = rdfast("run", "--decoder", "json:dumps", "--data", "digits", "--device", "cuda", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "no CUDA device" in proc.stderr, proc.stderr


def test_backends_command(tmp_path):
    """The versions the GPU paths depend on, then every backend with whether it runs here."""
    import torch

    from rdfast.runtime import device_loop

    out = rdfast("backends", cwd=tmp_path).stdout
    lines = {line[:14].strip(): line[14:].strip() for line in out.split("\n\n")[0].splitlines()}
    assert set(lines) >= {"torch", "CUDA kernels", "Triton", "CUDA graphs"}, out
    assert lines["torch"].startswith(f"{torch.__version__} (CUDA {torch.version.cuda or 'none'}")
    by_default = "yes" if device_loop.captures_by_default() else "no"
    assert lines["CUDA graphs"].startswith(f"captured by default: {by_default}")
    assert "torch   on cpu/cuda  available" in out


def test_backends_command_names_gpus_driver_and_graphs(fake_gpus, monkeypatch, capsys):
    """With a stand-in for the CUDA device queries: each GPU with its capability and whether the
    build has code for it, the driver; before torch 2.12 graphs are not captured by default."""
    from rdfast.apps import cli
    from rdfast.runtime import device_loop

    fake_gpus((9, 0), (7, 0))
    monkeypatch.setattr(device_loop, "_torch_version", lambda: (2, 11))
    assert cli.main(["backends"]) == 0
    out = capsys.readouterr().out
    for expected in ("CUDA kernels   built by nvcc 13.0.88", "CUDA driver    13.0",
                     "GPU cuda:0     stand-in GPU 0, sm_90: the CUDA kernels run on it",
                     "GPU cuda:1     stand-in GPU 1, sm_70: compute capability 7.0 (sm_70) has no code in this build",
                     "CUDA graphs    captured by default: no: before torch 2.12 only with cuda_graphs=True",
                     "cuda    on cuda      available"):
        assert expected in out, out


@pytest.mark.slow
def test_demo_quick_end_to_end(tmp_path):
    first = rdfast("demo", "--quick", "--out", tmp_path / "out", cwd=tmp_path)
    assert "--quick checks the code paths only" in first.stdout
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(results["models"]) == {"VAE k=2", "VAE k=10", "GAN k=10", "AAE k=10"}
    for name, res in results["models"].items():
        curve = res["curve"]
        assert len(curve["beta"]) == len(curve["rate"]) == len(curve["distortion"]) > 1
        assert np.isfinite(curve["rate"]).all() and np.isfinite(curve["distortion"]).all()
    assert np.isfinite(results["models"]["VAE k=10"]["log_likelihood"]["mean"])
    assert len(results["models"]["VAE k=10"]["bdmc"]["gap"]) == len(results["settings"]["bdmc_betas"]) == 4
    assert {"seed", "backend", "hmc", "n_chains", "steps", "leapfrog_steps", "schedule"} <= set(results["settings"])
    for name in ("rd_curves.png", "bdmc.png", "reconstructions.png"):
        assert_png(tmp_path / "out" / name)
    # a second run reloads the trained models instead of training again
    again = rdfast("demo", "--quick", "--out", tmp_path / "out", cwd=tmp_path)
    assert "loaded" in again.stdout and "saved" not in again.stdout
    # and plot redraws the figures from the JSON alone
    (tmp_path / "out" / "rd_curves.png").unlink()
    rdfast("plot", tmp_path / "out" / "results.json", cwd=tmp_path)
    assert_png(tmp_path / "out" / "rd_curves.png")


def test_run_on_a_user_decoder_module(tmp_path):
    (tmp_path / "mymodel.py").write_text(textwrap.dedent("""
        import torch
        torch.manual_seed(0)
        decoder = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 12), torch.nn.Sigmoid())
    """))
    np.savez(tmp_path / "data.npz", images=np.random.default_rng(0).random((5, 3, 4)).astype(np.float32))
    rdfast("run", "--decoder", "mymodel:decoder", "--data", tmp_path / "data.npz", "--steps", 20, "--chains", 3,
           "--leapfrog", 2, "--record", 5, "--beta-max", 50, "--bdmc", "1,10", "--bdmc-items", 2, "--bdmc-steps", 5,
           "--out", tmp_path / "out", "--checkpoint", tmp_path / "ck", "--device", "cpu", "--cuda-graphs", "off",
           cwd=tmp_path)
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert len(results["models"]["model"]["curve"]["beta"]) == 5
    assert (tmp_path / "out" / "result.npz").exists() and (tmp_path / "ck.final").exists()
    assert_png(tmp_path / "out" / "bdmc.png")
    # resuming the finished run returns the same curve
    rdfast("run", "--decoder", "mymodel:decoder", "--data", tmp_path / "data.npz", "--steps", 20, "--chains", 3,
           "--leapfrog", 2, "--record", 5, "--beta-max", 50, "--out", tmp_path / "out2", "--resume", tmp_path / "ck",
           cwd=tmp_path)
    again = json.loads((tmp_path / "out2" / "results.json").read_text())
    assert again["models"]["model"]["curve"]["rate"] == results["models"]["model"]["curve"]["rate"]


BERNOULLI_MODEL = """
    import torch
    torch.manual_seed(0)
    decoder = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 12))  # logits
    def encoder(x):  # a crude q(z|x): the same Gaussian for every item
        return torch.zeros(x.shape[0], 2), torch.full((x.shape[0], 2), -1.0)
"""


def test_loglik_writes_per_item_values_and_bounds(tmp_path):
    (tmp_path / "bern.py").write_text(textwrap.dedent(BERNOULLI_MODEL))
    np.savez(tmp_path / "bits.npz", x=(np.random.default_rng(0).random((4, 12)) < 0.5).astype(np.float32))
    proc = rdfast("loglik", "--decoder", "bern:decoder", "--encoder", "bern:encoder", "--data", tmp_path / "bits.npz",
                  "--distortion", "bernoulli_nll", "--steps", 20, "--chains", 3, "--leapfrog", 2, "--bdmc",
                  "--bdmc-items", 2, "--bdmc-steps", 10, "--unit", "bits/dim", "--out", tmp_path / "out",
                  "--device", "cpu", "--quiet", cwd=tmp_path)
    assert "bits/dim" in proc.stdout and "±" in proc.stdout and "from the encoder" in proc.stdout
    entry = json.loads((tmp_path / "out" / "loglik.json").read_text())
    ll = entry["log_likelihood"]
    assert len(ll["per_item"]) == 4 and ll["encoder"] and ll["stderr"] > 0
    assert np.isclose(ll["mean"], np.mean(ll["per_item"]))
    assert entry["bdmc"]["beta"] == [1.0] and entry["bdmc"]["gap_se"][0] is not None
    from rdfast import LogLikelihood
    assert np.allclose(LogLikelihood.load(tmp_path / "out" / "loglik.npz").per_item.numpy(), ll["per_item"])


def test_run_fills_the_log_likelihood_column_on_a_likelihood_curve(tmp_path):
    (tmp_path / "bern.py").write_text(textwrap.dedent(BERNOULLI_MODEL))
    np.savez(tmp_path / "bits.npz", x=(np.random.default_rng(0).random((3, 12)) < 0.5).astype(np.float32))
    for extra in ([], ["--single-round"]):
        out = tmp_path / f"out{len(extra)}"
        proc = rdfast("run", "--decoder", "bern:decoder", "--data", tmp_path / "bits.npz", "--distortion",
                      "bernoulli_nll", "--steps", 30, "--chains", 2, "--leapfrog", 2, "--record", 4, "--beta-max", 20,
                      "--out", out, "--device", "cpu", "--quiet", *extra, cwd=tmp_path)
        model = json.loads((out / "results.json").read_text())["models"]["model"]
        curve, ll = model["curve"], model["log_likelihood"]
        at_one = curve["beta"].index(1.0)  # recorded besides the 4 evenly spaced points
        assert len(curve["beta"]) == 5 and np.isclose(ll["mean"], curve["log_z"][at_one])
        assert f"{ll['mean']:.2f}" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["loglik", "--decoder", "json:dumps", "--data", "digits", "--distortion", "squared_error"], "invalid choice"),
    (["loglik", "--decoder", "json:dumps", "--data", "digits", "--encoder", "nosuchmodule:enc"], "--encoder"),
    (["run", "--decoder", "nosuchmodule:dec", "--data", "digits"], "cannot import"),
    (["run", "--decoder", "missing.pt", "--data", "digits"], "no such file"),
    (["run", "--decoder", "json:dumps", "--data", "nofile.npz"], "--data"),
    (["run", "--decoder", "x", "--data", "digits"], "package.module:attribute"),
    (["run", "--decoder", "json:dumps", "--data", "digits", "--steps", "0"], "positive"),
    (["plot", "nofile.json"], "no such file"),
    (["run", "--decoder", "json:dumps", "--data", "digits", "--device", "tpu:7"], "--device"),
    (["run", "--decoder", "json:dumps", "--data", "digits", "--device", "gpu"], "--device"),
])
def test_bad_input_gives_a_clear_message(tmp_path, args, message):
    proc = rdfast(*args, cwd=tmp_path, check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr
