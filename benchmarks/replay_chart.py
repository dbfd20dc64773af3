#!/usr/bin/env python3
"""Draws cache_replay's CSV (cache_replay --csv=FILE) as one PNG with two
panels: each policy's hits as a share of Belady's optimum over every
(workload, cache size) case, and each policy's misses against LRU's, with the
goals of issue 16 (a median of 80% of the optimum; never more than 8% more
misses than LRU) drawn in.

usage: replay_chart.py RESULTS.csv --chart OUT.png

Only the Python standard library, plus matplotlib (Debian: python3-matplotlib)
for the chart; without matplotlib it prints the medians and says so.
"""
import argparse
import csv
import statistics
import sys
from collections import OrderedDict


def load(path):
    """{policy: [(case, share_of_optimum_percent, misses_vs_lru_percent)]}, in file order."""
    out = OrderedDict()
    with open(path) as f:
        for row in csv.DictReader(f):
            requests = int(row["requests"])
            hits, optimum, lru = int(row["hits"]), int(row["optimum_hits"]), int(row["lru_hits"])
            share = 100.0 if optimum == 0 else 100.0 * hits / optimum
            lru_misses = requests - lru
            vs_lru = 0.0 if lru_misses == 0 else 100.0 * ((requests - hits) - lru_misses) / lru_misses
            case = "%s @ %.1f%%" % (row["workload"], 100 * float(row["size_share"]))
            out.setdefault(row["policy"], []).append((case, share, vs_lru))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--chart", required=True)
    args = ap.parse_args()
    data = load(args.csv)
    names = list(data)
    for n in names:
        print("%-18s median %.1f%% of optimum, worst %+.1f%% misses vs LRU" % (
            n, statistics.median(s for _, s, _ in data[n]), max(v for _, _, v in data[n])))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("replay_chart.py: matplotlib not found (Debian: python3-matplotlib); no chart", file=sys.stderr)
        return 0

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2))
    shares = [[s for _, s, _ in data[n]] for n in names]
    left.boxplot(shares, labels=names, showfliers=True)
    for i, col in enumerate(shares, start=1):
        m = statistics.median(col)
        left.annotate("%.1f" % m, (i, m), textcoords="offset points", xytext=(14, 2), fontsize=8)
    left.axhline(80, color="tab:green", linestyle="--", linewidth=1, label="goal: median 80%")
    left.set_ylabel("hits, % of Belady's optimum (with bypass)")
    left.set_title("%d cases (workload x cache size)" % len(shares[0]))
    left.legend(loc="lower right", fontsize=8)
    left.tick_params(axis="x", labelrotation=20)

    others = [n for n in names if n != "lru"]
    vs = [[v for _, _, v in data[n]] for n in others]
    right.boxplot(vs, labels=others, showfliers=True)
    for i, col in enumerate(vs, start=1):
        w = max(col)
        right.annotate("worst %+.0f%%" % w, (i, w), textcoords="offset points", xytext=(-20, 4), fontsize=8)
    right.axhline(0, color="black", linewidth=0.8)
    right.axhline(8, color="tab:red", linestyle="--", linewidth=1, label="goal: at most +8%")
    right.set_ylabel("misses vs LRU, % (lower is better)")
    right.set_title("misses against LRU per case")
    right.legend(loc="upper right", fontsize=8)
    right.tick_params(axis="x", labelrotation=20)

    fig.tight_layout()
    fig.savefig(args.chart, dpi=110)
    print("chart: %s" % args.chart)
    return 0


if __name__ == "__main__":
    sys.exit(main())
