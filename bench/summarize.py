#!/usr/bin/python3
"""Summarize a bench/run.sh results directory: medians, ratios and targets.

Usage: summarize.py RESULTS_DIR

Reads raw.tsv (one line per loadgen run), extra.tsv and seal.tsv, and prints
Markdown tables. "time/op" is the mean time per operation of one reader,
readers / (ops per second), so its ratio is the inverse of the throughput
ratio. The bindfs reference of each cell is the faster of bindfs (single-
threaded, its default) and bindfs --multithreaded in that cell.
"""
import csv
import statistics
import sys
from collections import defaultdict

SYSTEMS = ["tmpfs", "bindfs", "bindfs-mt", "gocryptfs", "vf-off", "vf-req"]


def read_tsv(path):
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f, delimiter="\t"))
    except FileNotFoundError:
        return []


def set_label(name):
    if name == "big":
        return "1 KiB, large set"
    size = int(name[2:])
    return f"{size // 1024} KiB" if size >= 1024 else f"{size} B"


def main():
    out = sys.argv[1]
    raw = read_tsv(f"{out}/raw.tsv")
    extra = {row["metric"]: row for row in read_tsv(f"{out}/extra.tsv")}
    seal = read_tsv(f"{out}/seal.tsv")

    # A run with any failed operation is left out of the medians and counted
    # in the "failed runs" column: on a shared machine another program can
    # disable auditing or seal every vaultfs mount in the middle of a run.
    runs = defaultdict(list)
    failed_runs = defaultdict(int)
    total_runs = defaultdict(int)
    for row in raw:
        key = (row["set"], int(row["readers"]), row["system"])
        total_runs[key] += 1
        if int(row["errors"] or 0) > 0:
            failed_runs[key] += 1
        else:
            runs[key].append(row)

    cells = []
    for row in raw:
        cell = (row["set"], int(row["readers"]))
        if cell not in cells:
            cells.append(cell)

    def med(cell, system, field):
        values = [float(r[field]) for r in runs.get((*cell, system), [])]
        return statistics.median(values) if values else None

    def time_per_op(cell, system):
        ops = med(cell, system, "ops_per_s")
        return cell[1] / ops * 1e6 if ops else float("inf")

    print("## Throughput and latency (medians over rounds)\n")
    print("| set | readers | system | ops/s | min-max ops/s | time/op us | p50 us | p99 us | failed runs |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for cell in cells:
        for system in SYSTEMS:
            rows = runs.get((*cell, system))
            if not rows:
                if total_runs[(*cell, system)]:
                    print(f"| {set_label(cell[0])} | {cell[1]} | {system} | - | - | - | - | - "
                          f"| {failed_runs[(*cell, system)]} of {total_runs[(*cell, system)]} |")
                continue
            ops = [float(r["ops_per_s"]) for r in rows]
            print(f"| {set_label(cell[0])} | {cell[1]} | {system} | {med(cell, system, 'ops_per_s'):.0f} "
                  f"| {min(ops):.0f}-{max(ops):.0f} | {time_per_op(cell, system):.1f} "
                  f"| {med(cell, system, 'p50_us'):.1f} | {med(cell, system, 'p99_us'):.1f} "
                  f"| {failed_runs[(*cell, system)]} of {total_runs[(*cell, system)]} |")

    print("\n## vaultfs ratios\n")
    print("time/op ratio: vaultfs time per op / bindfs time per op (lower is better); "
          "throughput ratio: vaultfs ops/s / gocryptfs ops/s (higher is better).\n")
    print("| set | readers | system | time/op vs bindfs | vs bindfs-mt | vs best bindfs "
          "| throughput vs gocryptfs | time/op vs tmpfs |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    ratios = {}
    for cell in cells:
        best = min(time_per_op(cell, "bindfs"), time_per_op(cell, "bindfs-mt"))
        for system in ("vf-off", "vf-req"):
            if (*cell, system) not in runs:
                continue
            t = time_per_op(cell, system)
            vs_b = t / time_per_op(cell, "bindfs")
            vs_bmt = t / time_per_op(cell, "bindfs-mt")
            vs_best = t / best
            vs_g = med(cell, system, "ops_per_s") / med(cell, "gocryptfs", "ops_per_s")
            vs_t = t / time_per_op(cell, "tmpfs")
            ratios[(*cell, system)] = (vs_best, vs_g)
            print(f"| {set_label(cell[0])} | {cell[1]} | {system} | {vs_b:.2f} | {vs_bmt:.2f} "
                  f"| {vs_best:.2f} | {vs_g:.2f} | {vs_t:.1f} |")

    load = read_tsv(f"{out}/load.tsv")
    if load:
        print("\n1-minute load average at the end of each round: "
              + ", ".join(r["loadavg_1min"] for r in load) + "\n")

    print("\n## Other figures\n")
    print("| figure | value | note |")
    print("| --- | ---: | --- |")
    for name, row in extra.items():
        print(f"| {name} | {row['value']} {row['unit']} | {row['note']} |")
    by_config = defaultdict(list)
    for row in seal:
        # Results from before the nice column ran every seal at nice 0.
        by_config[(row["readers"], row["mode"], row.get("nice", "0"))].append(row)
    for (readers, mode, nice), rows in by_config.items():
        if nice != "0":
            mode = f"{mode}, seal at nice {nice}"
        firsts = [float(r["first_ms"]) for r in rows if r["first_ms"] not in ("", "NA")]
        lasts = [float(r["last_ms"]) for r in rows if r["last_ms"] not in ("", "NA")]
        seals = [float(r["seal_ms"]) for r in rows if r["seal_ms"]]
        bad = sum(1 for r in rows if r["seal_exit"] != "0" or r["leaks"] != "0" or not r["last_ms"]
                  or r["last_ms"] == "NA")
        if lasts:
            print(f"| seal-to-blind, {readers} reader(s), {mode} | first {statistics.median(firsts):.1f} ms, "
                  f"last {statistics.median(lasts):.1f} ms (max {max(lasts):.1f}) | median of {len(rows)}; "
                  f"vaultctl seal exits after {statistics.median(seals):.0f} ms; {bad} failed run(s) |")
        else:
            print(f"| seal-to-blind, {readers} reader(s), {mode} | no reader blinded | {len(rows)} run(s) |")

    try:
        with open(f"{out}/opcost.txt") as f:
            steps = f.read().strip()
    except FileNotFoundError:
        steps = ""
    if steps:
        print("\n## Steps of one open without FUSE (bench/opcost.c, 1 KiB secret, us per call)\n")
        print("```")
        print(steps)
        print("```")

    print("\n## Targets\n")
    print("| target | measured | met |")
    print("| --- | --- | --- |")

    def target(text, measured, met):
        print(f"| {text} | {measured} | {'yes' if met else 'NO'} |")

    for readers in (1, 16):
        cell = ("sz1024", readers)
        if (*cell, "vf-req") in ratios:
            t, g = ratios[(*cell, "vf-req")]
            target(f"1 KiB, {readers} reader(s), audit required: time/op <= 1.3x bindfs", f"{t:.2f}x", t <= 1.3)
            target(f"1 KiB, {readers} reader(s), audit required: ops/s >= gocryptfs", f"{g:.2f}x", g >= 1.0)
        if (*cell, "vf-off") in ratios:
            t, g = ratios[(*cell, "vf-off")]
            target(f"1 KiB, {readers} reader(s), audit off: time/op <= 1.1x bindfs", f"{t:.2f}x", t <= 1.1)
            target(f"1 KiB, {readers} reader(s), audit off: ops/s >= 1.5x gocryptfs", f"{g:.2f}x", g >= 1.5)
    for system in ("vf-off", "vf-req"):
        for readers in (1, 16):
            if (("sz1024", readers, system) in runs and ("big", readers, system) in runs):
                small = time_per_op(("sz1024", readers), system)
                large = time_per_op(("big", readers), system)
                change = large / small - 1
                target(f"{system}, {readers} reader(s): time/op with the large set within 10% of 10 secrets",
                       f"{change * 100:+.1f}%", abs(change) <= 0.10)
    lists = {n: float(extra[f"list_ms_{n}"]["value"]) for n in (10, 1000, 10000)
             if f"list_ms_{n}" in extra}
    if len(lists) == 3:
        slope_small = (lists[1000] - lists[10]) / 990
        slope_large = (lists[10000] - lists[1000]) / 9000
        growth = slope_large / slope_small if slope_small > 0 else float("inf")
        target("vaultctl list linear (cost per secret 1 000-10 000 within 1.5x of 10-1 000)",
               f"{slope_small * 1000:.1f} us and {slope_large * 1000:.1f} us per secret", growth <= 1.5)
    for system in ("vf-off", "vf-req"):
        key = f"rss_kib_{system}_16_handles"
        if key in extra and extra[key]["value"].isdigit():
            rss = int(extra[key]["value"])
            target(f"{system} RSS with the large set and 16 open handles < 16 MiB",
                   f"{rss / 1024:.1f} MiB", rss < 16 * 1024)
    for nice, suffix in (("0", ""), ("-20", ", seal at nice -20")):
        rows = by_config.get(("16", "fd", nice), [])
        lasts = [float(r["last_ms"]) for r in rows if r["last_ms"] not in ("", "NA")]
        if rows:
            worst = max(lasts) if lasts and len(lasts) == len(rows) else float("inf")
            target(f"seal-to-blind with 16 busy readers (fd{suffix}) < 100 ms, every run",
                   f"max {worst:.1f} ms", worst < 100)


if __name__ == "__main__":
    main()
