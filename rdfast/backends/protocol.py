"""The backend protocol: the fused, in-place per-chain operations every backend implements.

A backend is a module (or object) with the attribute ``name`` and six functions. All work
in place on flat arrays of ``B = N*M`` rows ordered data-major (row ``r = n*M + m``, the
``M`` chains of item ``n`` contiguous); data ``x [N, P]`` is read as ``x[r // M]`` and never
tiled. ``T`` (float32 or float64) is the dtype of ``x``, decoder outputs, ``z``, ``p`` and
gradients; per-row scalars are float64; counters are int64. Random numbers are inputs.

``distortion(kind, x, xhat, logvar, d, grad_xhat, grad_logvar, n_chains)``
    d [B] and ∂d/∂x̂ [B, P] (and ∂d/∂v [B, P] when logvar is per row [B, P]) for kind in
    ``KINDS``; logvar is [1], [P] (broadcast) or [B, P] for gaussian_nll, ignored otherwise.
``leapfrog_begin(z0, g0, d0, p, z, logw, h0, beta, dbeta, eps, prior_energy=None, prior_grad=None)``
    logw −= Δβ·d0; h0 = U(z0) + ½‖p‖²; p −= ½ε∇U(z0); z = z0 + εp.
``leapfrog_step(z, g, p, beta, eps, prior_grad=None)``
    p −= ε∇U(z); z += εp.
``leapfrog_end(z, g, p, beta, eps, prior_grad=None)``
    p −= ½ε∇U(z).
``metropolis(z0, g0, d0, z, g, d, p, h0, u, beta, eps, accept_stat, n_accept, n_diverge, adapt, target, t, prior_energy=None)``
    accept iff H1 finite and log u < h0 − H1; select (z, g, d) into (z0, g0, d0); update the
    statistics; adapt ε. (A non-finite gradient at the proposal makes the final momentum, and
    so H1, non-finite: such a proposal is a divergence too.)
``record(logw, d, n_chains, log_z, dist, ess)``
    per item log Ẑ, D̂ and ESS [N] from log w and d (an item whose log-weights are all −inf
    gets log Ẑ = −inf, which the driver reports; the driver never produces one).

Potential ``U(z) = E(z) + β d(z)`` with prior energy ``E = ½‖z‖²`` and ``∇E = z`` fused for
the standard normal; other priors pass ``prior_energy`` [B] (−log p) and ``prior_grad``
[B, K] (−∇log p). ``∇U = ∇E + β g`` where ``g = ∇_z d`` is cached per row.
``rdfast.backends.reference`` is the normative reference of each op.

Scalars: ``beta`` and ``dbeta`` are Python floats or 0-d float64 tensors on the arrays'
device, ``t`` an int or a 0-d int64 tensor there. A tensor is read by the kernel when it runs,
so a call never waits on the host and a CUDA graph that captured it follows the tensor's
current value (``rdfast.clock``'s device-resident loop). ``target`` is a Python float.
"""
import math

KINDS = ("gaussian_nll", "bernoulli_nll", "squared_error")
DTYPE_CODES = {"float32": 0, "float64": 1}  # the compiled launchers' dtype argument

ADAPT_NONE = 0        # step sizes frozen (second round)
ADAPT_EMA = 1         # statistic: exponential moving average of accepts, decay EMA_DECAY
ADAPT_CUMULATIVE = 2  # statistic: acceptance rate since the start of the run (published code)
ADAPT_CODES = {None: ADAPT_NONE, "ema": ADAPT_EMA, "cumulative": ADAPT_CUMULATIVE}

EMA_DECAY = 0.9
EPS_GROW = 1.02
EPS_SHRINK = 0.98
EPS_MIN = 1e-4
EPS_MAX = 0.5
LOG_2PI = math.log(2.0 * math.pi)

OPS = ("distortion", "leapfrog_begin", "leapfrog_step", "leapfrog_end", "metropolis", "record")
