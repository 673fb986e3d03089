"""Turn pytest-benchmark's JSON (bench/test_transition.py) into BENCHMARKS.md and a PNG plot.

    .venv/bin/python bench/report.py RESULTS.json [RESULTS.json ...] [--out OUT.md]

One JSON file per thread count (bench/cpu_bench.sh writes one at 1 thread and one at all cores).
Per thread count, configuration and provider: time per AIS transition (round time / block; min,
median, max over all rounds of all repeats), achieved GFLOP/s of the decoder's work (L forwards +
L input-gradient backwards, at the median time), and ratios taken repeat by repeat (the median
round of each provider in the same repeat), summarised as min / median / max over repeats. The
targets are checked at every thread count they name; profile entries become tables of the top
functions.
"""
from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

COMMAND = "bash bench/cpu_bench.sh"
ORDER = ("rdfast-cpu", "rdfast-torch", "published", "floor-autograd", "floor-mm")


@dataclass(frozen=True)
class Target:
    """rdfast-cpu against ``versus`` on ``config`` ("MLP-like": every dense configuration): at most
    ``bound`` × its time (floors), or at least ``bound`` × faster (published); ``threads``: "every"
    run, or only the one-thread or the all-cores run."""

    config: str
    versus: str
    bound: float
    threads: str = "every"

    def applies(self, threads: int) -> bool:
        return self.threads == "every" or (self.threads == "one") == (threads == 1)


TARGETS = (
    Target("MLP-like", "floor-mm", 1.3),
    Target("mid", "floor-mm", 1.2, "one"),
    Target("mid", "published", 2.2, "one"),
    Target("tiny", "published", 5.0, "one"),
    Target("vae50-bernoulli", "published", 3.0, "all-cores"),
    Target("dcgan", "floor-autograd", 1.5),
)


def load(paths):
    """({threads: {config: {provider: {repeat: [seconds per transition of each round]}}}},
    {threads: [profile entries]}, {config: extra_info with the loads seen}, the first file's JSON)."""
    runs, profiles, info, first = defaultdict(lambda: defaultdict(lambda: defaultdict(dict))), defaultdict(list), {}, None
    for path in paths:
        data = json.loads(Path(path).read_text())
        first = first or data
        for b in data["benchmarks"]:
            e = b["extra_info"]
            if e.get("gpu"):  # bench/test_gpu.py: bench/gpu_report.py
                continue
            if "profile" in e:
                profiles[e["threads"]].append(e)
                continue
            runs[e["threads"]][e["config"]][e["provider"]][e["repeat"]] = [t / e["block"] for t in b["stats"]["data"]]
            info.setdefault(e["config"], dict(e, loads=[]))["loads"].append(e["load"])
    return runs, profiles, info, first


def _spread(values, fmt="{:.2f}"):
    return " / ".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def ratios(per_repeat_a, per_repeat_b):
    """[median(a) / median(b)] for each repeat both have."""
    common = sorted(set(per_repeat_a) & set(per_repeat_b))
    return [statistics.median(per_repeat_a[r]) / statistics.median(per_repeat_b[r]) for r in common]


def _threads_label(threads: int) -> str:
    return "1 thread" if threads == 1 else f"{threads} threads"


def config_table(name, providers, info, threads):
    flops = info["flops_per_transition"]
    how = {"sequential": "nn.Sequential", "decode": "a module's `decode` method", "vae-decoder": "VAEDecoder",
           "dcgan": "DCGAN generator"}.get(info.get("form", "sequential"), info.get("form"))
    lines = [f"### {name}, {_threads_label(threads)}: {how}, {'→'.join(map(str, info['sizes']))}, "
             f"{info.get('distortion', 'gaussian_nll')}, B = {info['rows']} rows "
             f"({flops / 1e9:.2f} GFLOP of decoder work per transition)", "",
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


def _verdict(target: Target, providers) -> str:
    """The median ratio of a target on one run, and whether it is met."""
    if "rdfast-cpu" not in providers or target.versus not in providers:
        return "not measured"
    if target.versus == "published":
        value = statistics.median(ratios(providers["published"], providers["rdfast-cpu"]))
        ok, miss = value >= target.bound, 100 * (1 - value / target.bound)
        return f"{value:.2f}× faster ({'met' if ok else f'missed by {miss:.0f}%'})"
    value = statistics.median(ratios(providers["rdfast-cpu"], providers[target.versus]))
    ok, miss = value <= target.bound, 100 * (value / target.bound - 1)
    return f"{value:.2f}× ({'met' if ok else f'missed by {miss:.0f}%'})"


def target_lines(runs, info):
    threads = sorted(runs)
    lines = ["## Targets", "", "Medians over repeats of the repeat-by-repeat ratios (rdfast backend `cpu`); "
             "MLP-like: every configuration of dense layers, whatever its form.", "",
             "| configuration | rdfast-cpu against | target | " + " | ".join(map(_threads_label, threads)) + " |",
             "|---|---|---|" + "---|" * len(threads)]
    for target in TARGETS:
        names = ([n for n, e in info.items() if e.get("mlp_like", True)] if target.config == "MLP-like"
                 else [target.config])
        bound = f"≥ {target.bound}× faster" if target.versus == "published" else f"≤ {target.bound}×"
        for name in names:
            cells = [_verdict(target, runs[t].get(name, {})) if target.applies(t) else "–" for t in threads]
            lines.append(f"| {name} | {target.versus} | {bound} | " + " | ".join(cells) + " |")
    return lines


def plot(runs, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    threads = sorted(runs)
    names = list(dict.fromkeys(n for t in threads for n in runs[t]))
    fig, axes = plt.subplots(len(threads), len(names), figsize=(3.0 * len(names), 3.4 * len(threads)), squeeze=False)
    for row, t in zip(axes, threads):
        for ax, name in zip(row, names):
            times = runs[t].get(name, {})
            base = "floor-mm" if "floor-mm" in times else "floor-autograd"
            providers = [p for p in ORDER if p in times]
            if base not in times:
                ax.set_axis_off()
                continue
            values = [ratios(times[p], times[base]) for p in providers]
            med = [statistics.median(v) for v in values]
            err = [[m - min(v) for m, v in zip(med, values)], [max(v) - m for m, v in zip(med, values)]]
            ax.bar(range(len(providers)), med, yerr=err, capsize=3,
                   color=[dict(zip(ORDER, ["tab:green", "tab:olive", "tab:red", "tab:gray", "black"]))[p]
                          for p in providers])
            ax.set_xticks(range(len(providers)), providers, rotation=60, ha="right", fontsize=8)
            ax.axhline(1.0, color="black", lw=0.5)
            ax.set_title(f"{name}, {_threads_label(t)}", fontsize=9)
            ax.set_ylabel(f"÷ {base}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def accuracy_lines() -> list:
    """The other factor of the time to an accurate answer: transitions needed (bench/accuracy.json,
    written by bench/accuracy.py; its tables are docs/accuracy.md's)."""
    path = Path(__file__).resolve().parent / "accuracy.json"
    if not path.exists():
        return []
    from accuracy import report

    return ["## Accuracy per transition", "",
            "Time to an accurate answer = transitions needed × time per transition. The tables above are "
            "the time per transition; these are the errors against the number of transitions per round "
            "(`.venv/bin/python bench/accuracy.py run`, then `report`; docs/accuracy.md explains the problems "
            "and protocols).", "", report(json.loads(path.read_text())), ""]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="pytest-benchmark JSON files, one per thread count")
    parser.add_argument("--out", default="BENCHMARKS.md")
    args = parser.parse_args(argv)
    runs, profiles, info, data = load(args.results)
    out = Path(args.out)
    png = out.with_suffix(".png")
    plot(runs, png)
    machine = data.get("machine_info", {})
    loads = [l for e in info.values() for l in e["loads"]]
    lines = ["# rdfast benchmarks: time per AIS transition", "",
             f"Regenerate (from the repository root, on a quiet machine): `{COMMAND}`", "",
             f"Measured {data.get('datetime', '?')} on {machine.get('cpu', {}).get('brand_raw', '?')} at "
             f"{' and '.join(map(_threads_label, sorted(runs)))} (`RDFAST_BENCH_THREADS`), 1-minute load average "
             f"{min(loads):.2f}–{max(loads):.2f} during the runs; float32, L = 10 leapfrog steps, Gaussian NLL "
             "σ² = 0.03 unless a configuration names another distortion. "
             "Each repeat runs every provider of a configuration in turn (one warm-up block, then rounds of "
             "one block each); ratios are taken within a repeat and given as min / median / max over repeats. "
             "GFLOP/s counts the FLOPs of L decoder forwards + L input-gradient backwards at the median time "
             "(for `published` the useful work only; it does L + 5 forwards and L + 1 backwards).", "",
             "Providers: `rdfast-cpu` / `rdfast-torch`: `rdfast.ais` with that backend on the decoder as the "
             "configuration writes it (the whole call, decoder capture (after the first call: reading the kept torch.fx graph and checking it) and set-up included, amortised over the "
             "block; dense decoders in any form take the MLP fast path of rdfast/fastpath/, `cpu` with the "
             "compiled fused kernels and Philox, `torch` with torch ops only); `published`: bench/published.py, "
             "the published loop's cost structure without its per-step gc/file writes; `floor-autograd`: "
             "L × (decoder forward + autograd input-gradient VJP); `floor-mm`: L × the decoder's matrix products "
             "alone (torch.mm into preallocated outputs; the input-gradient product in its faster orientation; "
             "dense decoders only). The published row's `× floor-mm` bounds the speed-up any implementation can "
             "reach over it.", "",
             f"![ratios]({png.name})", "",
             "GPU throughput (transitions and chain-gradient evaluations per second, against the FLOP "
             "roofline) comes from bench/test_gpu.py and bench/gpu_report.py, as GPU_BENCHMARKS.md, on a "
             "machine with a CUDA device (`bash bench/gpu_check.sh`).", ""]
    lines += target_lines(runs, info) + [""]
    for threads in sorted(runs):
        lines += [f"## {_threads_label(threads)}", ""]
        for name in runs[threads]:
            lines += config_table(name, runs[threads][name], info[name], threads) + [""]
    lines += accuracy_lines()
    if profiles:
        lines += ["## Where the time goes (cProfile, own time per function, one block)", ""]
        for threads in sorted(profiles):
            for e in profiles[threads]:
                lines += [f"### {e['config']}, {e['provider']}, {_threads_label(threads)} ({e['block']} transitions)",
                          "", e["profile"], ""]
    out.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
