"""Turn pytest-benchmark's JSON of bench/test_gpu.py into a Markdown section (stdout or a file).

    .venv/bin/python bench/gpu_report.py RESULTS.json [OUT.md]

Per configuration and provider: the marginal time per transition (median long-block round −
median short-block round, over (LONG − SHORT) transitions, per repeat; min / median / max over
repeats), AIS transitions per second, chain-gradient evaluations per second (rows · L per
transition), achieved TFLOP/s of the decoder's matmul work, the fraction of the FLOP roofline
(the measured fp32 matmul peak) and ratios to floor-mm and to published.
"""
from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

COMMAND = (".venv/bin/pytest bench/test_gpu.py --benchmark-only --benchmark-json=bench/gpu_results.json && "
           ".venv/bin/python bench/gpu_report.py bench/gpu_results.json GPU_BENCHMARKS.md")


def load(path):
    """({config: {provider: {repeat: {block: median seconds}}}}, {config: extra_info}, peak FLOP/s, meta)."""
    data = json.loads(Path(path).read_text())
    times, info, peak = defaultdict(lambda: defaultdict(lambda: defaultdict(dict))), {}, None
    for b in data["benchmarks"]:
        e = b["extra_info"]
        if not e.get("gpu"):
            continue
        if e["provider"] == "peak-mm":
            peak = e["flops"] / b["stats"]["median"]
            continue
        times[e["config"]][e["provider"]][e["repeat"]][e["block"]] = b["stats"]["median"]
        info.setdefault(e["config"], e)
    return times, info, peak, data


def marginal(per_repeat):
    """[seconds per transition] per repeat, from its short and long blocks."""
    out = []
    for blocks in per_repeat.values():
        if len(blocks) == 2:
            (short, t_short), (long, t_long) = sorted(blocks.items())
            out.append((t_long - t_short) / (long - short))
    return out


def spread(values, fmt):
    return " / ".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def table(name, providers, info, peak):
    rows, L, flops = info["rows"], info["leapfrog_steps"], info["flops_per_transition"]
    per = {p: marginal(r) for p, r in providers.items()}
    per = {p: v for p, v in per.items() if v}
    lines = [f"### {name}: decoder {'→'.join(map(str, info['sizes']))}, {rows} rows, L = {L} "
             f"({flops / 1e9:.1f} GFLOP of decoder matmuls per transition)", "",
             "| provider | ms / transition (min / median / max) | transitions / s | chain-gradients / s "
             "| TFLOP/s | of roofline | × floor-mm | speed-up over published |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for p, values in per.items():
        med = statistics.median(values)
        cells = [p, spread([1e3 * v for v in values], "{:.3f}"), f"{1 / med:.1f}", f"{rows * L / med:.3g}",
                 f"{flops / med / 1e12:.2f}", f"{flops / med / peak:.0%}" if peak else "–",
                 f"{med / statistics.median(per['floor-mm']):.2f}" if "floor-mm" in per else "–",
                 f"{statistics.median(per['published']) / med:.2f}" if "published" in per else "–"]
        lines.append("| " + " | ".join(cells) + " |")
    roofline = f"{1e3 * flops / peak:.3f} ms" if peak else "not measured"
    return lines + ["", f"Roofline (matmul FLOPs at the measured fp32 peak): {roofline} per transition.", ""]


def main(json_path, out=None):
    times, info, peak, data = load(json_path)
    first = next(iter(info.values()), {})
    lines = ["## GPU: AIS transitions per second", "", f"Regenerate: `{COMMAND}`", "",
             f"Measured {data.get('datetime', '?')} on {first.get('device', '?')}; fp32 matmul peak "
             f"{peak / 1e12:.1f} TFLOP/s measured on 8192² products (TF32 {'on' if first.get('tf32') else 'off'})."
             if peak else "No peak-mm entry in this run.", "",
             "Marginal time per transition: set-up, warm-up and CUDA-graph capture excluded (bench/test_gpu.py).", ""]
    for name in times:
        lines += table(name, times[name], info[name], peak)
    text = "\n".join(lines)
    if out:
        Path(out).write_text(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main(*sys.argv[1:])
