#!/usr/bin/env python3
"""Turns db_bench JSON lines (scripts/bench.sh collects them in
benchmarks/results/latest.jsonl) into a markdown report, with the ratio
stowage / best peer per workload against the goals of issue 5, and a bar chart
of those ratios.

usage: report.py RESULTS.jsonl [--markdown OUT.md] [--chart OUT.png] [--machine MACHINE.txt]

Only the Python standard library, plus matplotlib (Debian: python3-matplotlib)
for the chart; without matplotlib the chart is skipped with a note.
"""
import argparse
import json
import sys

ENGINES = ["stowage", "leveldb", "rocksdb", "lmdb", "sqlite"]
# (workload, group it is read from, goal ratio stowage / best peer or None, note
#  [, the peer the goal names, when it is not the best one])
WORKLOADS = [
    ("fillseq", "write", 1.5, "fills >= 1.5x"),
    ("fillbatch", "write", 1.5, "fills >= 1.5x"),
    ("fillrandom", "write", 1.5, "fills >= 1.5x"),
    ("overwrite", "write", 1.5, "fills >= 1.5x"),
    ("fillsync", "sync", 1.0, ">= 1.0x"),
    ("fillsync2", "sync", 1.0, ">= 1.0x (2 writer threads)"),
    ("load", "read", None, "(loads the read group's store)"),
    ("readrandom", "read", 1.5, ">= 1.5x (warm)"),
    ("readrandom-cold", "cold", 1.0, ">= 1.0x"),
    ("readmissing", "read", 1.0, ">= 1.0x"),
    ("readseq", "read", 1.0, ">= 1.0x and >= 10M records/s"),
    ("ycsb-a", "ycsb", 1.0, ">= 1.0x"),
    ("ycsb-b", "ycsb", 1.0, ">= 1.0x"),
    ("ycsb-c", "ycsb", 1.0, ">= 1.0x"),
    ("ycsb-e", "ycsb", 1.0, ">= 1.0x"),
    ("ycsb-f", "ycsb", 1.0, ">= 1.0x"),
    ("deleterandom", "ycsb", None, "(no goal)"),
    # Issue 13's goals, every engine with its own default cache (stowage 64 MiB,
    # LevelDB 8 MiB), the fill not flushed: reopen is close + open right after
    # the random puts.
    ("fillrandom", "defaults", 1.5, "defaults: >= 1.5x LevelDB", "leveldb"),
    ("reopen", "defaults", 1.0, "defaults: close + open no slower than LevelDB", "leveldb"),
    ("readrandom", "defaults", 1.5, "defaults: >= 1.5x LevelDB", "leveldb"),
    ("deleterandom", "defaults", 1.0, "defaults: >= 1.0x LevelDB", "leveldb"),
]
MIB = 1024.0 * 1024.0


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    return rows


def fmt_ops(x):
    if x is None:
        return "-"
    if x >= 1e6:
        return "%.2fM" % (x / 1e6)
    if x >= 1e3:
        return "%.1fK" % (x / 1e3)
    return "%.0f" % x


def fmt_us(x):
    return "{:,.1f}".format(x) if x < 100 else "{:,.0f}".format(x)


def fmt_mib(b):
    return "-" if b is None else "%.1f" % (b / MIB)


def pick(rows, engine, workload, group):
    """The last result for (engine, workload) from `group` (or any group)."""
    found = [r for r in rows if r["engine"] == engine and r["workload"] == workload and r.get("group") == group]
    if not found:
        found = [r for r in rows if r["engine"] == engine and r["workload"] == workload]
    return found[-1] if found else None


def analyse(rows):
    engines = [e for e in ENGINES if any(r["engine"] == e for r in rows)]
    peers = [e for e in engines if e != "stowage"]
    table = []
    for workload, group, goal, note, *against in WORKLOADS:
        res = {e: pick(rows, e, workload, group) for e in engines}
        if group == "defaults":  # only from that group: its settings differ
            res = {e: (r if r and r.get("group") == group else None) for e, r in res.items()}
        if not any(res.values()):
            continue
        ops = {e: (res[e]["ops_per_sec"] if res[e] else None) for e in engines}
        peer_ops = [(ops[e], e) for e in peers if ops[e]]
        best = max(peer_ops) if peer_ops else (None, None)
        if against:
            best = (ops.get(against[0]), against[0]) if ops.get(against[0]) else (None, None)
        ratio = ops.get("stowage") / best[0] if ops.get("stowage") and best[0] else None
        met = None
        if goal is not None and ratio is not None:
            met = ratio >= goal
            if workload == "readseq":
                met = met and ops["stowage"] >= 10e6
        name = workload + (" (" + group + ")" if group == "defaults" else "")
        table.append(dict(workload=workload, name=name, group=group, goal=goal, note=note, res=res, ops=ops,
                          best=best, ratio=ratio, met=met))
    return engines, peers, table


def markdown(rows, engines, peers, table, machine):
    out = []
    num = rows[0].get("num") if rows else "?"
    out.append("### Throughput (ops/s), %s records; ratio = stowage / best peer\n" % f"{num:,}")
    head = ["workload"] + engines + ["peer", "stowage / peer", "goal", "met"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "|".join(["---"] + ["---:"] * len(engines) + ["---", "---:", "---", "---"]) + "|")
    for t in table:
        cells = [t["name"]]
        for e in engines:
            o = t["ops"][e]
            # reopen is one operation: its time reads better than its rate
            cells.append(fmt_ops(o) if t["workload"] != "reopen" or not o else "%.1f ms" % (1e3 / o))
        cells.append(t["best"][1] or "-")
        cells.append("%.2fx" % t["ratio"] if t["ratio"] is not None else "-")
        cells.append(t["note"])
        cells.append("-" if t["met"] is None else ("yes" if t["met"] else "**no**"))
        out.append("| " + " | ".join(cells) + " |")

    out.append("\n### Microseconds per operation\n")
    out.append("| workload | " + " | ".join(engines) + " |")
    out.append("|---|" + "---:|" * len(engines))
    for t in table:
        out.append("| %s | %s |" % (t["name"], " | ".join(
            "%.3f" % t["res"][e]["micros_per_op"] if t["res"][e] else "-" for e in engines)))

    timed = [t for t in table if any(r and r.get("p50_us") is not None for r in t["res"].values())]
    if timed:
        out.append("\n### Latency of one write (us): p50 / p99 / p99.9 / max\n")
        out.append("Each put, erase or batch timed on its own (steady_clock); the final flush is not among them. "
                   "YCSB rows: their updates, inserts or read-modify-writes only.\n")
        out.append("| workload | timed op | " + " | ".join(engines) + " |")
        out.append("|---|---|" + "---:|" * len(engines))
        for t in timed:
            op = next((r["latency_op"] for r in t["res"].values() if r and r.get("latency_op")), "-")
            cells = []
            for e in engines:
                r = t["res"][e]
                if r and r.get("p50_us") is not None:
                    cells.append(" / ".join(fmt_us(r[k]) for k in ("p50_us", "p99_us", "p999_us", "max_us")))
                else:
                    cells.append("-")
            out.append("| %s | %s | %s |" % (t["name"], op, " | ".join(cells)))

    out.append("\n### Bytes on disk after each write workload (MiB; LSM engines fully compacted, untimed)\n")
    out.append("| workload | " + " | ".join(engines) + " |")
    out.append("|---|" + "---:|" * len(engines))
    for w, g in [("fillseq", "write"), ("fillbatch", "write"), ("fillrandom", "write"), ("overwrite", "write"),
                 ("load", "read"), ("deleterandom", "ycsb")]:
        cells = []
        for e in engines:
            r = pick(rows, e, w, g)
            cells.append(fmt_mib(r.get("disk_bytes")) if r else "-")
        out.append("| %s | %s |" % (w, " | ".join(cells)))

    out.append("\n### Peak RSS per process (MiB; each engine and group runs in its own process)\n")
    groups = []
    for r in rows:
        if r.get("group") not in groups:
            groups.append(r.get("group"))
    out.append("| group (cache_bytes) | " + " | ".join(engines) + " |")
    out.append("|---|" + "---:|" * len(engines))
    rss_goal = []
    for g in groups:
        cache = max((r["cache_bytes"] for r in rows if r.get("group") == g), default=0)
        if cache == 0:  # --cache_bytes=default: stowage's is Options::cache_bytes, 64 MiB
            cache = 64 * MIB
        cells = []
        for e in engines:
            peak = max((r["peak_rss_bytes"] for r in rows if r.get("group") == g and r["engine"] == e), default=None)
            cells.append(fmt_mib(peak))
            if e == "stowage" and peak is not None:
                rss_goal.append((g, peak, cache))
        out.append("| %s (%s MiB) | %s |" % (g, fmt_mib(cache), " | ".join(cells)))

    out.append("\n### Goals beyond throughput\n")
    fr = {e: pick(rows, e, "fillrandom", "write") for e in engines}
    if fr.get("stowage") and any(fr[e] for e in peers):
        smallest = min((fr[e]["disk_bytes"], e) for e in peers if fr[e])
        s = fr["stowage"]["disk_bytes"]
        out.append("- bytes on disk after fillrandom: stowage %s MiB, smallest peer %s %s MiB: %s" % (
            fmt_mib(s), smallest[1], fmt_mib(smallest[0]), "met" if s <= smallest[0] else "**missed**"))
    for g, peak, cache in rss_goal:
        limit = cache + 32 * MIB
        out.append("- peak RSS, group %s: stowage %s MiB <= cache_bytes + 32 MiB = %s MiB: %s" % (
            g, fmt_mib(peak), fmt_mib(limit), "met" if peak <= limit else "**missed**"))
    rs = [t for t in table if t["workload"] == "readseq"]
    if rs and rs[0]["ops"].get("stowage"):
        v = rs[0]["ops"]["stowage"]
        out.append("- readseq >= 10M records/s: stowage %s/s: %s" % (fmt_ops(v), "met" if v >= 10e6 else "**missed**"))

    out.append("\n### Durability per operation in this run\n")
    out.append("| engine | asynchronous groups | fillsync, fillsync2 |")
    out.append("|---|---|---|")
    for e in engines:
        a = next((r.get("durability_note", "") for r in rows if r["engine"] == e and r["durability"] == "none"), "")
        s = next((r.get("durability_note", "") for r in rows if r["engine"] == e and r["durability"] == "sync"), "")
        out.append("| %s | %s | %s |" % (e, a, s))
    if machine:
        out.append("\n### Machine\n\n```\n" + machine.strip() + "\n```")
    return "\n".join(out) + "\n"


def chart(table, path, num):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report.py: matplotlib not found (Debian: python3-matplotlib); no chart", file=sys.stderr)
        return False
    items = [t for t in table if t["ratio"] is not None]
    names = [t["name"] for t in items]
    ratios = [t["ratio"] for t in items]
    colours = []
    for t in items:
        colours.append("#999999" if t["met"] is None else ("#2e8b57" if t["met"] else "#c0392b"))
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(items) + 1.6), dpi=110)
    y = list(range(len(items)))[::-1]
    ax.barh(y, ratios, color=colours, height=0.7)
    for yi, t in zip(y, items):
        label = "%.2fx vs %s" % (t["ratio"], t["best"][1])
        ax.text(t["ratio"], yi, " " + label, va="center", fontsize=8)
        if t["goal"] is not None:
            ax.plot([t["goal"], t["goal"]], [yi - 0.38, yi + 0.38], color="black", linewidth=1.5)
    ax.axvline(1.0, color="#555555", linestyle="--", linewidth=1)
    ax.set_yticks(y)
    ax.set_yticklabels(names)
    ax.set_xlabel("stowage ops/s / best peer's ops/s   (black tick: goal; green met, red missed, grey no goal)")
    ax.set_xlim(0, max(max(ratios) * 1.35, 2.0))
    ax.set_title("stowage vs the fastest of LevelDB, RocksDB, LMDB, SQLite (%s records)" % f"{num:,}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--markdown")
    ap.add_argument("--chart")
    ap.add_argument("--machine")
    a = ap.parse_args()
    rows = load(a.results)
    if not rows:
        sys.exit("report.py: no JSON lines in " + a.results)
    engines, peers, table = analyse(rows)
    machine = open(a.machine).read() if a.machine else ""
    md = markdown(rows, engines, peers, table, machine)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(md)
    sys.stdout.write(md)
    if a.chart and chart(table, a.chart, rows[0].get("num", 0)):
        print("\nchart: " + a.chart)


if __name__ == "__main__":
    main()
