"""Figures of a results.json (written by ``rdfast demo`` / ``rdfast run``): RD curves, BDMC gaps,
reconstruction grids. Every function writes one PNG and returns its path (``of_results``: all of a
results.json's, their names)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _distortion_axis(ax, values) -> None:
    """A log distortion axis where every distortion is positive (the curve spans decades), with
    plain-number labels at 1, 2 and 5 × 10^k and none on minor ticks (so labels never collide);
    a linear one otherwise (a Gaussian NLL can be negative)."""
    from matplotlib import ticker

    if len(values) and min(values) > 0:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())


def rd_curves(results: dict, path, band: bool = True) -> Path:
    """Rate against distortion for every model (mean over items; ``band``: ± its standard error
    where results.json has one), linear and log rate."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    distortions = []
    for name, res in results["models"].items():
        curve = res["curve"]
        distortions += curve["distortion"]
        for ax in axes:
            line = ax.plot(curve["distortion"], curve["rate"], marker=".", markersize=3, label=name)[0]
            if band and curve.get("rate_se") and None not in curve["rate_se"]:
                rate, se = np.asarray(curve["rate"]), np.asarray(curve["rate_se"])
                ax.fill_between(curve["distortion"], rate - se, rate + se, color=line.get_color(), alpha=0.2,
                                linewidth=0)
    for ax, scale in zip(axes, ("linear", "log")):
        ax.set_xlabel(f"distortion ({results.get('distortion', 'squared_error')}, per item)")
        ax.set_ylabel("rate (nats)")
        ax.set_yscale(scale)
        _distortion_axis(ax, distortions)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    axes[0].set_title("AIS rate-distortion curves (± standard error)" if band else "AIS rate-distortion curves")
    axes[1].set_title("log-scale rate")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def bdmc_gaps(results: dict, path) -> Path:
    """Per model with BDMC: its RD curve with the BDMC gap annotated at each β (the paper's Fig. 9)."""
    plt = _pyplot()
    names = [n for n, r in results["models"].items() if r.get("bdmc")]
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(5 * max(len(names), 1), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        res = results["models"][name]
        curve, bd = res["curve"], res["bdmc"]
        beta = np.asarray(curve["beta"])
        ax.plot(curve["distortion"], curve["rate"], marker=".", markersize=3)
        d = np.asarray(curve["distortion"])
        middle = np.sqrt(d.min() * d.max()) if d.min() > 0 else 0.5 * (d.min() + d.max())
        for b, g, se in zip(bd["beta"], bd["gap"], bd.get("gap_se") or [None] * len(bd["gap"])):
            r = int(np.argmin(np.abs(beta - b)))
            gap = f"{g:.2f}" + ("" if se is None else f" ± {se:.2f}")
            right = d[r] > middle  # label to the upper left there, else to the right
            ax.annotate(f"β={b:g}: gap {gap} nats", (d[r], curve["rate"][r]), textcoords="offset points",
                        xytext=(-6, 16) if right else (14, -3), ha="right" if right else "left", va="center",
                        fontsize=8, arrowprops=dict(arrowstyle="-", color="0.5"))
        ax.margins(y=0.08)
        _distortion_axis(ax, curve["distortion"])
        ax.set_xlabel("distortion")
        ax.set_ylabel("rate (nats)")
        ax.set_title(f"{name}: BDMC gaps (simulated data)")
        ax.grid(alpha=0.3)
    if not names:
        axes[0][0].text(0.5, 0.5, "no BDMC results", ha="center")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def of_results(results: dict, out: Path) -> list[str]:
    """rd_curves.png and, if a model has BDMC bounds, bdmc.png in ``out``; their names."""
    rd_curves(results, out / "rd_curves.png")
    if not any(model.get("bdmc") for model in results["models"].values()):
        return ["rd_curves.png"]
    bdmc_gaps(results, out / "bdmc.png")
    return ["rd_curves.png", "bdmc.png"]


def reconstructions(originals: np.ndarray, columns: dict, image_shape, path) -> Path:
    """Grid: one row per item; the original, then each named column of reconstructions.

    originals [n, P]; columns {title: [n, P]} in [0, 1].
    """
    plt = _pyplot()
    titles = ["data", *columns]
    images = [originals, *columns.values()]
    n = originals.shape[0]
    fig, axes = plt.subplots(n, len(titles), figsize=(1.1 * len(titles), 1.1 * n + 0.6), squeeze=False)
    for j, (title, block) in enumerate(zip(titles, images)):
        axes[0][j].set_title(title, fontsize=6)
        for i in range(n):
            axes[i][j].imshow(np.clip(block[i].reshape(image_shape), 0, 1), cmap="gray", vmin=0, vmax=1)
            axes[i][j].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
