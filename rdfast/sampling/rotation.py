"""A dense metric as a tuned basis: HMC in rotated coordinates u = Qᵀz with a diagonal metric.

For each item n an orthonormal basis Q_n [K, K] (columns) turns the chains' states into u = Q_nᵀ z.
HMC on u with the diagonal metric m (``metrics.DiagonalMetric``) is HMC on z with the dense
metric M⁻¹ = Q diag(m) Qᵀ: the drift ε Q diag(m) Qᵀ p and the kinetic energy ½ pᵀQ diag(m)Qᵀp
are the same numbers in either coordinates, and |det Q| = 1 leaves every density, weight and
estimate unchanged. The standard normal prior is invariant under rotation, so the fused kernels
run unchanged on u; only the decoder sees z = Q u, and its gradient goes back as Qᵀ∇_z d.

The basis: eigenvectors of the covariance of ∇_z d across each item's chains (a moving average
over transitions, ``BasisEstimator``). For a Gaussian target with precision I + βH (H the
curvature of d), the chains' gradients have covariance H Σ H with Σ = (I + βH)⁻¹, whose
eigenvectors are H's: in them the target's precision is diagonal and the diagonal metric is
exact. Round 1 refreshes the basis now and then and rotates the chains with it; round 2 replays
round 1's last basis for the whole path (``rdfast.sampling.tuning``).
"""
from __future__ import annotations

import torch


class Rotation:
    """Per-item bases Q [N, K, K] (float64, orthonormal columns) shared by each item's
    ``n_chains`` rows: ``to_z(u)``, ``to_u(z)`` for [B, K] row states, rows data-major."""

    def __init__(self, basis: torch.Tensor, n_chains: int):
        self.basis, self.n_chains = basis, n_chains  # [N, K, K]
        self._cast = {}  # dtype -> (Qᵀ, Q) contiguous in that dtype, for the row products

    def _apply(self, right: torch.Tensor, rows: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """out [B, K]: row r of item n times ``right`` [N, K, K] (rows viewed [N, M, K])."""
        N, K, _ = right.shape
        torch.bmm(rows.view(N, self.n_chains, K), right, out=out.view(N, self.n_chains, K))
        return out

    def _right(self, dtype, transposed: bool) -> torch.Tensor:
        """Qᵀ (rows → Q·row) or Q (rows → Qᵀ·row) in ``dtype``, contiguous."""
        if dtype not in self._cast:
            self._cast[dtype] = (self.basis.transpose(1, 2).to(dtype).contiguous(), self.basis.to(dtype).contiguous())
        return self._cast[dtype][0 if transposed else 1]

    def to_z(self, u: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """z = Q u per row [B, K]."""
        return self._apply(self._right(u.dtype, True), u, torch.empty_like(u) if out is None else out)

    def to_u(self, z: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """u = Qᵀ z per row [B, K]."""
        return self._apply(self._right(z.dtype, False), z, torch.empty_like(z) if out is None else out)

    def evaluator(self, evaluate):
        """``evaluate(z, d, g)`` in z-coordinates as an evaluator in u-coordinates: d(Qu) and
        Qᵀ ∇_z d(Qu), through buffers allocated at the first call."""
        buffers = {}

        def evaluate_u(u: torch.Tensor, d: torch.Tensor, g: torch.Tensor) -> None:
            if "z" not in buffers or buffers["z"].shape != u.shape:
                buffers["z"], buffers["g"] = torch.empty_like(u), torch.empty_like(u)
            z, gz = buffers["z"], buffers["g"]
            self.to_z(u, z)
            evaluate(z, d, gz)
            self.to_u(gz, g)

        return evaluate_u

    def load(self, basis: torch.Tensor) -> None:
        """Take ``basis`` [N, K, K] (a checkpoint's)."""
        self.basis.copy_(basis)
        self._cast.clear()

    def change_to(self, basis: torch.Tensor, *rows: torch.Tensor) -> torch.Tensor:
        """Switch to ``basis`` [N, K, K], rewriting each of ``rows`` [B, K] (u-coordinates) in it in
        place; returns R = Q_newᵀ Q_old [N, K, K], which maps old coordinates to new."""
        change = torch.bmm(basis.transpose(1, 2), self.basis)  # [N, K, K]
        for t in rows:
            t.copy_(self._apply(change.transpose(1, 2).to(t.dtype), t, torch.empty_like(t)))
        self.basis.copy_(basis)
        self._cast.clear()
        return change


def rotated_diagonal(change: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """diag(R diag(v) Rᵀ) [..., N, K]: a diagonal v [..., N, K] in old coordinates as the
    diagonal of the same matrix in the new ones (R = ``change`` [N, K, K])."""
    return torch.einsum("njk,...nk->...nj", change.to(values.dtype) ** 2, values)


class BasisEstimator:
    """The moving average over transitions of the covariance of ∇_z d across each item's chains
    (z-coordinates), C [N, K, K] float64; ``basis()`` its eigenvectors [N, K, K]."""

    DECAY = 0.98  # per transition: about 50 transitions of M chains each in the average

    def __init__(self, n_items: int, n_chains: int, latent_dim: int, device):
        self.n_chains = n_chains
        self.covariance = torch.zeros(n_items, latent_dim, latent_dim, dtype=torch.float64, device=device)
        self.weight = torch.zeros((), dtype=torch.float64, device=device)

    def observe(self, grad_z: torch.Tensor) -> None:
        """Add the chains' ∇_z d [B, K] (torch ops on the device: capturable)."""
        N, K = self.covariance.shape[:2]
        g = grad_z.double().view(N, self.n_chains, K)  # [N, M, K]
        centred = g - g.mean(1, keepdim=True)
        self.covariance.mul_(self.DECAY).add_(torch.bmm(centred.transpose(1, 2), centred),
                                              alpha=(1.0 - self.DECAY) / self.n_chains)
        self.weight.mul_(self.DECAY).add_(1.0 - self.DECAY)

    def basis(self) -> torch.Tensor:
        """Eigenvectors of each item's C [N, K, K] (columns)."""
        return torch.linalg.eigh(self.covariance)[1]

    def to_dict(self) -> dict:
        return {"covariance": self.covariance, "weight": self.weight}

    def load(self, saved: dict) -> None:
        self.covariance.copy_(saved["covariance"])
        self.weight.copy_(saved["weight"])
