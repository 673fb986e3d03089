"""The Triton backend beyond the op-by-op conformance suite (tests/backends/test_conformance.py):
one whole AIS run against the torch reference, the kernels lowered for a GPU, and a fallback.

Without a CUDA device the kernels run on CPU tensors through the Triton interpreter, which
needs TRITON_INTERPRET=1 whenever a function is decorated with ``triton.jit``; tests/conftest.py
imports them so. If triton had been imported without it before, the Triton tests skip and
``test_module_in_fresh_process`` runs them in a new process.
"""
import importlib
import os
import subprocess
import sys

import pytest
import torch

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
DTYPES = [torch.float32, torch.float64]

# the interpreter evaluates tiles with numpy, which warns where the maths means ±inf or NaN
pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.gpu
def test_whole_run_matches_torch(triton_interpreter, dtype):
    """rdfast.ais on the triton backend equals the same run on the torch reference."""
    import rdfast
    from rdfast import backends
    from rdfast.testing import linear_problem

    assert backends.runs("triton", torch.device(DEVICE))
    problem = linear_problem(3, 7, n_items=3, logvar=-0.5, dtype=dtype, seed=1)
    x = problem.x.to(DEVICE)
    problem.decoder.to(DEVICE)
    schedule = rdfast.schedules.sigmoid(12, 5.0)
    runs = {name: rdfast.ais(problem.decoder, x, schedule, logvar=problem.logvar, n_chains=4,
                             leapfrog_steps=3, record=4, seed=0, backend=name)
            for name in ("torch", "triton")}
    a, b = runs["torch"], runs["triton"]
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    for field in ("log_z", "distortion", "rate", "ess", "z", "log_w"):
        torch.testing.assert_close(getattr(b, field), getattr(a, field), rtol=tol, atol=tol, msg=field)
    torch.testing.assert_close(b.tuning.log_eps, a.tuning.log_eps, rtol=0, atol=0)
    assert torch.equal(b.divergences, a.divergences) and torch.equal(b.acceptance, a.acceptance)


COMPILE_FOR_SM90 = """
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from rdfast.kernels import distortion, leapfrog, metropolis, record

ROW_F64 = {"d", "d0", "logw", "h0", "eps", "u", "accepted", "accept_prob", "prior_energy", "log_z", "dist", "ess",
           "beta_at", "dbeta_at"}
INT64 = {"n_accept", "n_diverge"}
KERNELS = [  # (kernel, dtype T, constexprs): each kernel once, float64 where the lowering differs most
    (distortion.distortion_kernel, "fp32", dict(KIND=0, LOGVAR=2, BLOCK_ROWS=16, BLOCK_COLS=128)),
    (distortion.distortion_kernel, "fp64", dict(KIND=1, LOGVAR=0, BLOCK_ROWS=16, BLOCK_COLS=128)),
    (leapfrog.leapfrog_begin_kernel, "fp64", dict(METRIC=0, HAS_PRIOR_ENERGY=False, HAS_PRIOR_GRAD=True, BETA_AT=True,
                                                  DBETA_AT=True, BLOCK_ROWS=64, BLOCK_COLS=32)),
    (leapfrog.leapfrog_kick_kernel, "fp32", dict(LAST=False, METRIC=1, HAS_PRIOR_GRAD=False, BETA_AT=False,
                                                 BLOCK_ROWS=64, BLOCK_COLS=32)),
    (leapfrog.leapfrog_kick_kernel, "fp64", dict(LAST=True, METRIC=0, HAS_PRIOR_GRAD=True, BETA_AT=True,
                                                 BLOCK_ROWS=64, BLOCK_COLS=32)),
    (metropolis.metropolis_kernel, "fp64", dict(METRIC=0, HAS_PRIOR_ENERGY=False, BETA_AT=True, BLOCK_ROWS=64,
                                                BLOCK_COLS=32)),
    (metropolis.metropolis_kernel, "fp32", dict(METRIC=1, HAS_PRIOR_ENERGY=True, BETA_AT=False, BLOCK_ROWS=64,
                                                BLOCK_COLS=32)),
    (record.record_kernel, "fp64", dict(BLOCK_ITEMS=128, BLOCK_CHAINS=16)),
]


def signature(kernel, dtype, constexprs):
    sig = {}
    for param in kernel.params:
        name = param.name
        if name in constexprs:
            sig[name] = "constexpr"
        elif name.endswith("_ptr"):
            base = name[:-4]
            sig[name] = "*i64" if base in INT64 else "*fp64" if base in ROW_F64 else "*" + dtype
        else:
            sig[name] = param.annotation_type or "i32"
    return sig


for kernel, dtype, constexprs in KERNELS:
    src = ASTSource(fn=kernel, signature=signature(kernel, dtype, constexprs), constexprs=constexprs)
    triton.compile(src, target=GPUTarget("cuda", 90, 32))
print("compiled")
"""


@pytest.mark.skipif(DEVICE == "cuda", reason="the op tests above already run the compiled kernels")
def test_kernels_compile_for_cuda(tmp_path):
    """Without a GPU the tests above run the interpreter: check that the GPU compiler lowers every kernel."""
    pytest.importorskip("triton")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(TRITON_CACHE_DIR=str(tmp_path), TRITON_DEFAULT_FP_FUSION="1")
    # cwd: a scratch folder, so the installed package is imported, not the source tree
    done = subprocess.run([sys.executable, "-c", COMPILE_FOR_SM90], env=env, capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    if done.returncode and "ptxas" in done.stderr and "not found" in done.stderr.lower():
        pytest.skip("no CUDA assembler (ptxas) shipped with this Triton")
    assert done.returncode == 0 and "compiled" in done.stdout, done.stderr[-3000:]


def test_module_in_fresh_process(tmp_path):
    """Fallback when triton was imported (without the interpreter) before the tests ran."""
    backend = importlib.import_module("rdfast.backends.triton")
    if backend.IMPORT_ERROR or DEVICE == "cuda" or backend.interpreted():
        pytest.skip("the Triton tests ran in this process")
    tests = os.path.dirname(__file__)
    env = dict(os.environ, TRITON_INTERPRET="1")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
                           os.path.join(tests, "test_conformance.py"), "-k", "not in_fresh_process and not compile_for_cuda"],
                          env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-5000:]


def test_triton_before_3_4_is_refused(monkeypatch):
    """Triton before 3.4 passes float64 scalars (β, Δβ) to kernels as float32."""
    from rdfast import backends

    backend = importlib.import_module("rdfast.backends.triton")
    if backend.IMPORT_ERROR:
        pytest.skip(backend.IMPORT_ERROR)
    monkeypatch.setattr(backend.triton, "__version__", "3.3.1")
    assert backend.unavailable_reason().startswith("triton 3.3.1 passes float64 scalars to kernels as float32")
    assert not backends.available()["triton"]["available"]
    assert backend.describe().startswith("3.3.1 (triton 3.3.1 passes")
    monkeypatch.setattr(backend.triton, "__version__", "3.4.0+git1234")
    assert "passes float64" not in backend.unavailable_reason()


def test_each_launch_runs_under_a_guard_of_the_arrays_device(device_guards):
    """Triton launches on the current CUDA device: a launch for arrays on cuda:1 makes it current,
    whichever device was (stand-ins for torch's device guard and for a kernel)."""
    backend = importlib.import_module("rdfast.backends.triton")
    launched_on = []

    class Kernel:
        def __getitem__(self, grid):
            return lambda *args, **constexprs: launched_on.append(device_guards[-1] if device_guards else None)

    backend._launch(Kernel(), (1,), (), {}, torch.device("cuda", 1))()
    backend._launch(Kernel(), (1,), (), {}, torch.device("cpu"))()
    assert launched_on == [torch.device("cuda", 1), None]
