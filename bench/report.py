"""Turn pytest-benchmark's JSON (bench/test_transition.py) into BENCHMARKS.md and a PNG plot.

    .venv/bin/python bench/report.py RESULTS.json [OUT.md]

Per configuration and provider: time per AIS transition (round time / block; min, median,
max over all rounds of all repeats), achieved GFLOP/s of the decoder's matmul work (L
forwards + L input-gradient backwards, at the median time), and ratios taken repeat by
repeat (the median round of each provider in the same repeat), summarised as
min / median / max over repeats. The profile entries become tables of the top functions.
"""
from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

COMMAND = (".venv/bin/pytest bench/ --benchmark-only --benchmark-json=bench/results.json && "
           ".venv/bin/python bench/report.py bench/results.json")
ORDER = ("rdfast-cpu", "rdfast-torch", "published", "floor-autograd", "floor-mm")
TARGETS = {  # configuration: (max × floor-mm, min speed-up over published)
    "mid": (1.2, 2.2),
    "tiny": (1.5, 5.0),
}


def load(path):
    """(per-config {provider: {repeat: [seconds per transition of each round]}}, profiles, meta)."""
    data = json.loads(Path(path).read_text())
    times, profiles, info = defaultdict(lambda: defaultdict(dict)), [], {}
    for b in data["benchmarks"]:
        e = b["extra_info"]
        if e.get("gpu"):  # bench/test_gpu.py: bench/gpu_report.py
            continue
        if "profile" in e:
            profiles.append(e)
            continue
        times[e["config"]][e["provider"]][e["repeat"]] = [t / e["block"] for t in b["stats"]["data"]]
        info.setdefault(e["config"], dict(e, loads=[]))["loads"].append(e["load"])
    return times, profiles, info, data


def _spread(values, fmt="{:.2f}"):
    return " / ".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def ratios(per_repeat_a, per_repeat_b):
    """[median(a) / median(b)] for each repeat both have."""
    common = sorted(set(per_repeat_a) & set(per_repeat_b))
    return [statistics.median(per_repeat_a[r]) / statistics.median(per_repeat_b[r]) for r in common]


def config_table(name, providers, info):
    flops = info["flops_per_transition"]
    lines = [f"### {name}: decoder {'→'.join(map(str, info['sizes']))}, B = {info['rows']} rows "
             f"({flops / 1e9:.2f} GFLOP of decoder matmuls per transition)", "",
             "| provider | ms / transition (min / median / max) | GFLOP/s | × floor-mm | × floor-autograd "
             "| speed-up over published |", "|---|---|---:|---|---|---|"]
    for p in ORDER:
        if p not in providers:
            continue
        all_rounds = [t for rounds in providers[p].values() for t in rounds]
        median = statistics.median(all_rounds)
        cells = [p, _spread([1e3 * t for t in all_rounds]), f"{flops / median / 1e9:.1f}"]
        for floor in ("floor-mm", "floor-autograd"):
            cells.append(_spread(ratios(providers[p], providers[floor])) if floor in providers else "–")
        cells.append(_spread(ratios(providers["published"], providers[p])) if "published" in providers else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def target_lines(times):
    lines = ["## Targets", "", "Medians over repeats of the repeat-by-repeat ratios (rdfast backend `cpu`).", ""]
    for name, (max_floor, min_speedup) in TARGETS.items():
        providers = times.get(name, {})
        if "rdfast-cpu" not in providers:
            why = "rdfast backend `cpu` unavailable" if providers else "not in this run"
            lines.append(f"- {name}: not measured ({why})")
            continue
        floor = statistics.median(ratios(providers["rdfast-cpu"], providers["floor-mm"]))
        speedup = statistics.median(ratios(providers["published"], providers["rdfast-cpu"]))
        verdict_floor = "met" if floor <= max_floor else f"missed by {100 * (floor / max_floor - 1):.0f}%"
        verdict_speed = "met" if speedup >= min_speedup else f"missed by {100 * (1 - speedup / min_speedup):.0f}%"
        lines.append(f"- {name}: {floor:.2f}× floor-mm (target ≤ {max_floor}×: {verdict_floor}); "
                     f"{speedup:.2f}× faster than published (target ≥ {min_speedup}×: {verdict_speed})")
    return lines


def plot(times, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(times)
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        providers = [p for p in ORDER if p in times[name]]
        values = [ratios(times[name][p], times[name]["floor-mm"]) for p in providers]
        med = [statistics.median(v) for v in values]
        err = [[m - min(v) for m, v in zip(med, values)], [max(v) - m for m, v in zip(med, values)]]
        ax.bar(range(len(providers)), med, yerr=err, capsize=3,
               color=["tab:green", "tab:olive", "tab:red", "tab:gray", "black"][:len(providers)])
        ax.set_xticks(range(len(providers)), providers, rotation=60, ha="right", fontsize=8)
        ax.axhline(1.0, color="black", lw=0.5)
        ax.set_title(name)
    axes[0][0].set_ylabel("time per transition ÷ floor-mm")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(json_path, out="BENCHMARKS.md"):
    times, profiles, info, data = load(json_path)
    out = Path(out)
    png = out.with_suffix(".png")
    plot(times, png)
    first = next(iter(info.values()))
    machine = data.get("machine_info", {})
    lines = ["# rdfast benchmarks: time per AIS transition", "",
             f"Regenerate (from the repository root): `{COMMAND}`", "",
             f"Measured {data.get('datetime', '?')} on {machine.get('cpu', {}).get('brand_raw', '?')} "
             f"with {first['threads']} thread(s) (`RDFAST_BENCH_THREADS`), 1-minute load average "
             f"{min(l for e in info.values() for l in e['loads']):.2f}–{max(l for e in info.values() for l in e['loads']):.2f} "
             "during the runs; Gaussian NLL σ² = 0.03, L = 10, float32. "
             "Each repeat runs every provider of a configuration in turn (one warm-up block, then rounds of "
             "one block each); ratios are taken within a repeat and given as min / median / max over repeats. "
             "GFLOP/s counts the matmul FLOPs of L forwards + L input-gradient backwards at the median time "
             "(for `published` the useful work only; it does L + 5 forwards and L + 1 backwards).", "",
             "Providers: `rdfast-cpu` / `rdfast-torch`: `rdfast.ais` with that backend (the whole call, set-up "
             "included, amortised over the block; both take the MLP fast path of rdfast/fastpath/mlp.py, `cpu` with the "
             "compiled fused kernels and Philox, `torch` with torch ops only); `published`: bench/published.py, "
             "the published loop's cost structure without its per-step gc/file writes; `floor-autograd`: "
             "L × (decoder forward + autograd input-gradient VJP); `floor-mm`: L × the decoder's matrix products "
             "alone (torch.mm into preallocated outputs; the input-gradient product in its faster orientation). "
             "The published row's `× floor-mm` bounds the speed-up any implementation can reach over it.", "",
             f"![ratios]({png.name})", "",
             "GPU throughput (transitions and chain-gradient evaluations per second, against the FLOP "
             "roofline) comes from bench/test_gpu.py and bench/gpu_report.py, as GPU_BENCHMARKS.md, on a "
             "machine with a CUDA device (`bash bench/gpu_check.sh`).", ""]
    lines += target_lines(times) + [""]
    for name in times:
        lines += config_table(name, times[name], info[name]) + [""]
    if profiles:
        lines += ["## Where the time goes (cProfile, own time per function, one block)", ""]
        for e in profiles:
            lines += [f"### {e['config']}, {e['provider']} ({e['block']} transitions)", "", e["profile"], ""]
    out.write_text("\n".join(lines))


if __name__ == "__main__":
    main(*sys.argv[1:])
