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
    ``n_chains`` rows: ``to_z(u)``, ``to_u(z)`` for [B, K] row states in ``dtype``, rows
    data-major. Q and Qᵀ in ``dtype`` are buffers rewritten in place when the basis changes, so
    a captured CUDA graph of the row products reads the current basis."""

    def __init__(self, basis: torch.Tensor, n_chains: int, dtype: torch.dtype):
        self.basis, self.n_chains = basis, n_chains  # [N, K, K]
        self._q = basis.to(dtype, copy=True)  # [N, K, K] rows → Qᵀ·row
        self._qt = basis.transpose(1, 2).to(dtype).contiguous()  # [N, K, K] rows → Q·row

    def _apply(self, right: torch.Tensor, rows: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """out [B, K]: row r of item n times ``right`` [N, K, K] (rows viewed [N, M, K])."""
        N, K, _ = right.shape
        torch.bmm(rows.view(N, self.n_chains, K), right, out=out.view(N, self.n_chains, K))
        return out

    def to_z(self, u: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """z = Q u per row [B, K]."""
        return self._apply(self._qt, u, torch.empty_like(u) if out is None else out)

    def to_u(self, z: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """u = Qᵀ z per row [B, K]."""
        return self._apply(self._q, z, torch.empty_like(z) if out is None else out)

    def evaluator(self, evaluate):
        """``evaluate(z, d, g)`` in z-coordinates as an evaluator in u-coordinates: d(Qu) and
        Qᵀ ∇_z d(Qu), through two [B, K] buffers."""
        N, K, _ = self.basis.shape
        z, gz = (torch.empty(N * self.n_chains, K, dtype=self._q.dtype, device=self._q.device) for _ in range(2))

        def evaluate_u(u: torch.Tensor, d: torch.Tensor, g: torch.Tensor) -> None:
            self.to_z(u, z)
            evaluate(z, d, gz)
            self.to_u(gz, g)

        return evaluate_u

    def load(self, basis: torch.Tensor) -> None:
        """Take ``basis`` [N, K, K] (a checkpoint's)."""
        self._set(basis)

    def change_to(self, basis: torch.Tensor, *rows: torch.Tensor) -> torch.Tensor:
        """Switch to ``basis`` [N, K, K], rewriting each of ``rows`` [B, K] (u-coordinates) in it in
        place; returns R = Q_newᵀ Q_old [N, K, K], which maps old coordinates to new."""
        change = torch.bmm(basis.transpose(1, 2), self.basis)  # [N, K, K]
        for t in rows:
            t.copy_(self._apply(change.transpose(1, 2).to(t.dtype), t, torch.empty_like(t)))
        self._set(basis)
        return change

    def _set(self, basis: torch.Tensor) -> None:
        self.basis.copy_(basis)
        self._q.copy_(basis)
        self._qt.copy_(basis.transpose(1, 2))


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

    def observe(self, grad_z: torch.Tensor) -> None:
        """Add the chains' ∇_z d [B, K] (torch ops on the device: capturable)."""
        N, K = self.covariance.shape[:2]
        g = grad_z.double().view(N, self.n_chains, K)  # [N, M, K]
        centred = g - g.mean(1, keepdim=True)
        self.covariance.mul_(self.DECAY).add_(torch.bmm(centred.transpose(1, 2), centred),
                                              alpha=(1.0 - self.DECAY) / self.n_chains)

    def basis(self) -> torch.Tensor:
        """Eigenvectors of each item's C [N, K, K] (columns)."""
        return torch.linalg.eigh(self.covariance)[1]

    def to_dict(self) -> dict:
        return {"covariance": self.covariance}

    def load(self, saved: dict) -> None:
        self.covariance.copy_(saved["covariance"])
