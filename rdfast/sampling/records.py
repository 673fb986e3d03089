"""The estimates of an annealing run at its recorded transitions (DESIGN §2).

At a recorded transition k, per item n over its M chains i (``record`` op of the backend):

    log Ẑ_k(n) = logsumexp_i log w_k^i − log M     (stochastic lower bound of log Z_βk)
    D̂_k(n)     = Σ_i softmax_i(log w_k)^i · d(x_n, f(z_k^i))
    R̂_k(n)     = −log Ẑ_k(n) − β_k · D̂_k(n)
    ESS_k(n)   = 1 / Σ_i (w̃_k^i)²,   and the acceptance rate since the previous record.
"""
from __future__ import annotations

import torch

FIELDS = ("log_z", "distortion", "rate", "ess", "accept_rate")  # [R, N] each


class Recorder:
    """The estimates of N items at R recorded transitions, filled in order by ``record``."""

    def __init__(self, n_records: int, n_items: int, n_chains: int, device):
        f64 = dict(dtype=torch.float64, device=device)
        self.n_chains = n_chains
        self.values = {name: torch.full((n_records, n_items), float("nan"), **f64) for name in FIELDS}
        self.r = 0  # records made
        self.prev_k = 0  # the transition of the last record
        self.prev_accepted = torch.zeros(n_items, **f64)  # [N] accepted proposals by then

    def record(self, ops, k: int, beta_k: float, logw: torch.Tensor, d: torch.Tensor, n_accept: torch.Tensor) -> None:
        """Record the estimates after transition k at β_k from the chains' log w, d and acceptance counts."""
        v, r, M = self.values, self.r, self.n_chains
        ops.record(logw, d, M, v["log_z"][r], v["distortion"][r], v["ess"][r])
        v["rate"][r] = -v["log_z"][r] - beta_k * v["distortion"][r]
        accepted = n_accept.view(-1, M).sum(1).double()
        if k > self.prev_k:
            v["accept_rate"][r] = (accepted - self.prev_accepted) / (M * (k - self.prev_k))
        self.r, self.prev_k, self.prev_accepted = r + 1, k, accepted

    def to_dict(self) -> dict:
        return {**self.values, "r": self.r, "prev_k": self.prev_k, "prev_accepted": self.prev_accepted}

    def load(self, saved: dict) -> None:
        self.values = {name: saved[name] for name in FIELDS}
        self.r, self.prev_k, self.prev_accepted = saved["r"], saved["prev_k"], saved["prev_accepted"]
