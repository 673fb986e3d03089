"""AISResult: the estimates of one AIS run, with diagnostics, save/load and a plot."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from ..runtime.atomic import write_atomic
from ..runtime.validation import check_int
from .tuning import Tuning

_PER_RECORD = ("log_z", "distortion", "rate", "ess", "accept_rate")  # [R, N]
_PER_ITEM = ("acceptance", "divergences", "z", "log_w")  # [N, ...]
_ARRAYS = ("beta", "steps", *_PER_RECORD, *_PER_ITEM)


@dataclass
class AISResult:
    """Per-item AIS estimates at the recorded transitions (R records, N items, M chains).

    beta [R], steps [R] (transition index k of each record);
    log_z, distortion, rate, ess, accept_rate [R, N] float64 where
      log_z = log Ẑ_k (stochastic lower bound of log Z_βk), distortion = D̂_k,
      rate = −log Ẑ_k − β_k D̂_k, ess = 1/Σ w̃², accept_rate = acceptance since the previous record;
    acceptance [N] (over the run), divergences [N] (non-finite proposals, rejected);
    z [N, M, K] final states, log_w [N, M] final log-weights;
    tuning: the step sizes (and metric, and the targets' speed along β) this run used or tuned,
      as functions of β (pass to ``tuning=`` to replay them frozen).
    """

    beta: torch.Tensor
    steps: torch.Tensor
    log_z: torch.Tensor
    distortion: torch.Tensor
    rate: torch.Tensor
    ess: torch.Tensor
    accept_rate: torch.Tensor
    acceptance: torch.Tensor
    divergences: torch.Tensor
    z: torch.Tensor
    log_w: torch.Tensor
    tuning: Optional[Tuning]
    config: dict = field(default_factory=dict)
    seconds: float = float("nan")

    @property
    def n_items(self) -> int:
        return self.log_z.shape[1]

    @property
    def n_chains(self) -> int:
        return self.log_w.shape[1]

    @property
    def mean_rate(self) -> torch.Tensor:
        """Rate averaged over items [R]."""
        return self.rate.mean(1)

    @property
    def mean_distortion(self) -> torch.Tensor:
        """Distortion averaged over items [R]."""
        return self.distortion.mean(1)

    @property
    def mean_log_z(self) -> torch.Tensor:
        """log Ẑ averaged over items [R] (at β = 1 with an NLL distortion: the log-likelihood)."""
        return self.log_z.mean(1)

    def stderr(self, name: str) -> torch.Tensor:
        """Standard error over items of the mean of ``name`` ("rate", "distortion", "log_z") [R]
        (it includes each item's Monte Carlo error; NaN for one item)."""
        values = getattr(self, name)
        if values.shape[1] < 2:
            return torch.full((values.shape[0],), float("nan"), dtype=values.dtype)
        return values.std(1) / values.shape[1] ** 0.5

    @classmethod
    def concat(cls, parts: list) -> "AISResult":
        """One result from the results of consecutive item shards (in item order)."""
        first = parts[0]
        return cls(beta=first.beta, steps=first.steps,
                   **{name: torch.cat([getattr(p, name) for p in parts], 1) for name in _PER_RECORD},
                   **{name: torch.cat([getattr(p, name) for p in parts], 0) for name in _PER_ITEM},
                   tuning=Tuning.concat([p.tuning for p in parts]),
                   config={**first.config, "n_items": sum(p.n_items for p in parts)},
                   seconds=max(p.seconds for p in parts))

    def summary(self, max_rows: Optional[int] = None) -> str:
        """A table of the recorded β's: distortion, rate and log Ẑ as mean ± standard error over items
        (``max_rows`` ≥ 2: at most that many records, evenly chosen, the first and the last included)."""
        max_rows = None if max_rows is None else check_int("max_rows", max_rows, minimum=2)
        lines = [f"AIS: {self.n_items} items x {self.n_chains} chains, {int(self.steps[-1])} transitions, "
                 f"acceptance {self.acceptance.mean().item():.3f}, divergences {int(self.divergences.sum())} "
                 "(mean ± standard error over items)",
                 f"{'beta':>12} {'distortion':>22} {'rate':>22} {'log Z':>22} {'ESS':>8}"]
        se = {name: self.stderr(name) for name in ("distortion", "rate", "log_z")}
        rows = range(len(self.beta))
        if max_rows is not None and len(rows) > max_rows:
            rows = sorted({round(i * (len(rows) - 1) / (max_rows - 1)) for i in range(max_rows)})
        for r in rows:
            cells = [f"{m:.6g} ± {e:.2g}" for m, e in ((self.mean_distortion[r], se["distortion"][r]),
                                                         (self.mean_rate[r], se["rate"][r]),
                                                         (self.mean_log_z[r], se["log_z"][r]))]
            lines.append(f"{self.beta[r].item():12.5g} {cells[0]:>22} {cells[1]:>22} {cells[2]:>22} "
                         f"{self.ess[r].mean().item():8.2f}")
        return "\n".join(lines)

    def save(self, path) -> None:
        """Write an .npz file atomically (temporary file in the same folder, then rename)."""
        arrays = {name: getattr(self, name).detach().cpu().numpy() for name in _ARRAYS}
        if self.tuning is not None:
            arrays.update(self.tuning.to_arrays("tuning_"))
        arrays["meta"] = np.array(json.dumps({"config": self.config, "seconds": self.seconds}))
        save_npz_atomic(path, arrays)

    @classmethod
    def load(cls, path) -> "AISResult":
        with np.load(path, allow_pickle=False) as data:
            missing = [name for name in (*_ARRAYS, "meta") if name not in data]
            if missing:
                raise ValueError(f"path: {path} is not an rdfast AIS result (missing {missing})")
            kwargs = {name: torch.from_numpy(data[name]) for name in _ARRAYS}
            tuning = Tuning.from_arrays(data, "tuning_")
            meta = json.loads(str(data["meta"]))
        return cls(**kwargs, tuning=tuning, config=meta["config"], seconds=meta["seconds"])

    def plot(self, ax=None, log_rate: bool = False, per_item: bool = False, label: Optional[str] = None,
             band: bool = False):
        """Rate against distortion (mean over items; ``per_item`` adds each item's curve, ``band``
        a ± standard error band of the rate)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 4))
        if per_item:
            ax.plot(self.distortion.numpy(), self.rate.numpy(), color="0.8", linewidth=0.5)
        lines = ax.plot(self.mean_distortion.numpy(), self.mean_rate.numpy(), marker=".", label=label)
        if band:
            rate, se = self.mean_rate.numpy(), self.stderr("rate").numpy()
            ax.fill_between(self.mean_distortion.numpy(), rate - se, rate + se, color=lines[0].get_color(), alpha=0.2)
        ax.set_xlabel("distortion")
        ax.set_ylabel("rate (nats)")
        if log_rate:
            ax.set_yscale("log")
        if label is not None:
            ax.legend()
        return ax


def save_npz_atomic(path, arrays: dict) -> None:
    """np.savez ``arrays`` to ``path`` atomically."""
    write_atomic(path, lambda f: np.savez(f, **arrays))

