"""AIS against the closed form on a linear decoder: errors of log Z, D and R at the last β for growing step counts.

Run: python bench/oracle_errors.py  (prints the table in docs/accuracy.md)
"""
import torch, rdfast
from rdfast.testing import linear_problem
torch.set_num_threads(1)
pr = linear_problem(2, 6, 16, logvar=-1.0, seed=1)
print("config | steps | log Z err (SE) | D err (SE) | R err (SE)  [at the last beta; mean over 16 items, 32 chains, L=5]")
for dist, bmax in (("gaussian_nll", 1.0), ("gaussian_nll", 20.0), ("squared_error", 5.0)):
    kw = {"logvar": -1.0} if dist == "gaussian_nll" else {}
    for T in (100, 400, 1600):
        r = rdfast.ais(pr.decoder, pr.x, rdfast.schedules.sigmoid(T, bmax), distortion=dist, n_chains=32, leapfrog_steps=5, record=1, seed=0, **kw)
        ex = rdfast.analytic.linear_gaussian(pr.W, pr.b, pr.x, r.beta, distortion=dist, logvar=-1.0)
        cells = []
        for f in ("log_z", "distortion", "rate"):
            dl = (getattr(r, f) - getattr(ex, f))[-1]
            cells.append(f"{dl.mean().item():+.3f} ({dl.std().item()/4:.3f})")
        print(f"{dist} beta_max={bmax} | {T} | " + " | ".join(cells))
