# SPDX-License-Identifier: BSL-1.0
"""Turns the scale run's db_bench JSON lines (scripts/bench.sh, group "scale",
collected in benchmarks/results/scale.jsonl: fillrandom into a fresh store at
several record counts, every engine) into a markdown report - ops/s and put
latency p50 / p99 / p99.9 / max per (records, engine), and the goals of issue
13 - and a chart of throughput against store size (records, log scale) beside
the tail latency of a put.

usage: scale_chart.py SCALE.jsonl [--markdown OUT.md] [--chart OUT.png] [--machine MACHINE.txt]

Only the Python standard library, plus matplotlib (Debian: python3-matplotlib)
for the chart, drawn headless (Agg); without matplotlib the chart is skipped
with a note.
"""
import argparse
import json
import sys

ENGINES = ["stowage", "leveldb", "rocksdb", "lmdb", "sqlite"]
COLOURS = {"stowage": "#c0392b", "leveldb": "#1f77b4", "rocksdb": "#ff7f0e", "lmdb": "#2ca02c",
           "sqlite": "#9467bd"}
WORKLOAD = "fillrandom"
MIB = 1024.0 * 1024.0
# Issue 13's goals for fillrandom at default options, stated for 500,000 and
# 4,000,000 records: the largest size at least 0.8x stowage's own rate at the
# smallest, at least 1.5x LevelDB, the longest put at most 10 ms, p99.9 at most 50 us.
GOAL_OWN = 0.8
GOAL_LEVELDB = 1.5
GOAL_MAX_US = 10000.0
GOAL_P999_US = 50.0


def load(path):
    """{(engine, records): row}, the last row of each pair winning."""
    runs = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if r.get("workload") != WORKLOAD:
                continue
            runs[(r["engine"], int(r["num"]))] = r
    return runs


def engines_of(runs):
    seen = {e for e, _ in runs}
    return [e for e in ENGINES if e in seen] + sorted(seen - set(ENGINES))


def sizes_of(runs):
    return sorted({n for _, n in runs})


def fmt_int(x):
    return "-" if x is None else "{:,.0f}".format(x)


def fmt_us(x):
    if x is None:
        return "-"
    return "{:,.2f}".format(x) if x < 100 else "{:,.0f}".format(x)


def fmt_ops(x):
    if x is None:
        return "-"
    if x >= 1e6:
        return "%.2fM" % (x / 1e6)
    if x >= 1e3:
        return "%.1fK" % (x / 1e3)
    return "%.0f" % x


def short(n):
    """500000 -> 500k, 4000000 -> 4M."""
    if n >= 1000000 and n % 100000 == 0:
        return ("%.1fM" % (n / 1e6)).replace(".0M", "M")
    if n >= 1000 and n % 1000 == 0:
        return "%dk" % (n // 1000)
    return str(n)


def markdown(runs, machine):
    engines, sizes = engines_of(runs), sizes_of(runs)
    out = []
    caches = sorted({r.get("cache_bytes", 0) for r in runs.values()})
    cache = ", ".join("%.0f MiB" % (c / MIB) for c in caches)
    out.append("### fillrandom against store size\n")
    out.append("Each cell: `db_bench --engine=E --benchmarks=fillrandom --num=N` into a fresh store, one process "
               "per engine and size, cache_bytes %s (db_bench's default, stowage's default `Options`); "
               "16-byte keys, 100-byte values, uniformly random keys (about 63%% distinct), one writer. "
               "ops/s includes the final flush; the latencies are of each put on its own (steady_clock), "
               "the final flush not among them.\n" % cache)

    out.append("#### Throughput (ops/s)\n")
    out.append("| records | " + " | ".join(engines) + " |")
    out.append("|---:|" + "---:|" * len(engines))
    for n in sizes:
        cells = [fmt_ops(runs[(e, n)]["ops_per_sec"]) if (e, n) in runs else "-" for e in engines]
        out.append("| %s | %s |" % (fmt_int(n), " | ".join(cells)))

    out.append("\n#### Each run: ops/s and the latency of one put (us)\n")
    out.append("| records | engine | ops/s | p50 | p99 | p99.9 | max | final flush (ms) | ops/s vs own at %s |"
               % fmt_int(sizes[0]))
    out.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        for e in engines:
            r = runs.get((e, n))
            if r is None:
                continue
            base = runs.get((e, sizes[0]))
            own = "%.2fx" % (r["ops_per_sec"] / base["ops_per_sec"]) if base and base["ops_per_sec"] else "-"
            flush = "%.1f" % (r["flush_us"] / 1e3) if r.get("flush_us") is not None else "-"
            out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                fmt_int(n), e, fmt_int(r["ops_per_sec"]), fmt_us(r.get("p50_us")), fmt_us(r.get("p99_us")),
                fmt_us(r.get("p999_us")), fmt_us(r.get("max_us")), flush, own))

    out.extend(goals(runs, sizes))
    if machine:
        out.append("\n#### Machine\n\n```\n" + machine.strip() + "\n```")
    return "\n".join(out) + "\n"


def goals(runs, sizes):
    small, big = sizes[0], sizes[-1]
    s_big, s_small, l_big = runs.get(("stowage", big)), runs.get(("stowage", small)), runs.get(("leveldb", big))
    if s_big is None:
        return []
    out = ["\n#### Goals of issue 13 (fillrandom, default options), at %s records\n" % fmt_int(big)]
    if (small, big) != (500000, 4000000):
        out.append("(The issue states them for 500,000 and 4,000,000 records; this run's sizes are %s.)\n"
                   % ", ".join(fmt_int(n) for n in sizes))

    def verdict(ok):
        return "met" if ok else "**missed**"

    if s_small is not None and small != big:
        ratio = s_big["ops_per_sec"] / s_small["ops_per_sec"]
        out.append("- stowage's ops/s at %s against its own at %s: %.2fx (goal >= %.1fx): %s"
                   % (fmt_int(big), fmt_int(small), ratio, GOAL_OWN, verdict(ratio >= GOAL_OWN)))
    if l_big is not None:
        ratio = s_big["ops_per_sec"] / l_big["ops_per_sec"]
        out.append("- stowage / LevelDB at %s: %.2fx (goal >= %.1fx): %s"
                   % (fmt_int(big), ratio, GOAL_LEVELDB, verdict(ratio >= GOAL_LEVELDB)))
    if s_big.get("max_us") is not None:
        out.append("- stowage's longest put: %s us (goal <= %s us): %s"
                   % (fmt_us(s_big["max_us"]), fmt_int(GOAL_MAX_US), verdict(s_big["max_us"] <= GOAL_MAX_US)))
        out.append("- stowage's p99.9 put: %s us (goal <= %s us): %s"
                   % (fmt_us(s_big["p999_us"]), fmt_int(GOAL_P999_US), verdict(s_big["p999_us"] <= GOAL_P999_US)))
    return out


def chart(runs, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D
        from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
    except ImportError:
        print("scale_chart.py: matplotlib not found (Debian: python3-matplotlib); no chart", file=sys.stderr)
        return False
    engines, sizes = engines_of(runs), sizes_of(runs)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2), dpi=110)
    for e in engines:
        pts = [(n, runs[(e, n)]) for n in sizes if (e, n) in runs]
        xs = [n for n, _ in pts]
        style = dict(color=COLOURS.get(e), linewidth=2.6 if e == "stowage" else 1.5, marker="o",
                     zorder=3 if e == "stowage" else 2)
        left.plot(xs, [r["ops_per_sec"] for _, r in pts], label=e, **style)
        lat = [(n, r) for n, r in pts if r.get("max_us") is not None]
        if lat:
            right.plot([n for n, _ in lat], [r["max_us"] for _, r in lat], **style)
            right.plot([n for n, _ in lat], [r["p999_us"] for _, r in lat], linestyle="--",
                       **dict(style, marker="s", linewidth=1.2))
    for ax in (left, right):
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator(sizes))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: short(int(round(x)))))
        ax.set_xlabel("records put into a fresh store (fillrandom --num; log scale)")
        ax.grid(True, which="major", color="#dddddd", linewidth=0.8)
        if len(sizes) == 1:
            ax.set_xlim(sizes[0] / 1.5, sizes[0] * 1.5)
    left.set_ylim(bottom=0)
    left.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: fmt_ops(y)))
    left.set_ylabel("ops/s (higher is better)")
    left.set_title("fillrandom throughput against store size")
    left.legend(fontsize=8)
    right.set_yscale("log")
    right.axhline(GOAL_MAX_US, color="#c0392b", linestyle=":", linewidth=1)
    right.axhline(GOAL_P999_US, color="#c0392b", linestyle=":", linewidth=1)
    right.text(1.0, GOAL_MAX_US, "goal: max 10 ms ", fontsize=7, va="bottom", ha="right", color="#c0392b",
               transform=right.get_yaxis_transform())
    right.text(1.0, GOAL_P999_US, "goal: p99.9 50 us ", fontsize=7, va="bottom", ha="right", color="#c0392b",
               transform=right.get_yaxis_transform())
    right.set_ylabel("latency of one put, us (log scale)")
    right.set_title("the slowest puts: max (solid) and p99.9 (dashed)")
    right.legend(handles=[Line2D([], [], color="black", marker="o", label="max"),
                          Line2D([], [], color="black", marker="s", linestyle="--", linewidth=1.2, label="p99.9")],
                 fontsize=8, loc="upper left")
    cache = sorted({r.get("cache_bytes", 0) for r in runs.values()})
    fig.suptitle("stowage and its peers, default options (cache_bytes %s MiB), one writer, random keys"
                 % "/".join("%.0f" % (c / MIB) for c in cache), fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--markdown")
    ap.add_argument("--chart")
    ap.add_argument("--machine")
    a = ap.parse_args()
    runs = load(a.results)
    if not runs:
        sys.exit("scale_chart.py: no %s JSON lines in %s" % (WORKLOAD, a.results))
    machine = open(a.machine).read() if a.machine else ""
    md = markdown(runs, machine)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(md)
    sys.stdout.write(md)
    if a.chart and chart(runs, a.chart):
        print("\nchart: " + a.chart)


if __name__ == "__main__":
    main()
