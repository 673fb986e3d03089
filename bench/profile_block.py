"""A cProfile summary of one call: the functions with the most own time, as markdown rows."""
import cProfile
import pstats

TOP = 12


def profile_summary(run) -> str:
    """Run ``run()`` under cProfile; a markdown table of the TOP functions by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # {(file, line, name): (calls, ncalls, tottime, cumtime, callers)}
    total = sum(v[2] for v in stats.values())
    rows = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:TOP]
    lines = ["| function | calls | own time (ms) | share |", "|---|---:|---:|---:|"]
    for (path, line, name), (_, calls, own, _, _) in rows:
        where = name if path == "~" else f"{name} ({path.rsplit('/', 1)[-1]}:{line})"
        lines.append(f"| `{where}` | {calls} | {1e3 * own:.1f} | {100 * own / total:.1f}% |")
    lines.append(f"| total | | {1e3 * total:.1f} | 100% |")
    return "\n".join(lines)
