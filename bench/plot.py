#!/usr/bin/env python3
"""bench/plot.py: draw the results bench/run wrote.

    bench/plot.py results.json -o docs/bench.png

Three panels, one group per contender, medians with min-max whiskers over
the rounds: TCP throughput (default offloads and offloads off), 64-byte
frames delivered at full rate, and UDP ping-pong RTT percentiles (log
scale). A contender that failed a measurement or is not installed gets a
label where its bar would be.

Needs matplotlib. If the Python running this lacks it and Debian's
/usr/bin/python3 has it (apt-get install python3-matplotlib), the script
re-runs itself there.
"""

import argparse
import json
import os
import statistics
import sys

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    DEBIAN_PYTHON = "/usr/bin/python3"
    if os.path.realpath(sys.executable) != os.path.realpath(DEBIAN_PYTHON) and os.path.exists(DEBIAN_PYTHON):
        os.execv(DEBIAN_PYTHON, [DEBIAN_PYTHON, os.path.abspath(__file__)] + sys.argv[1:])
    sys.exit("bench/plot.py: needs matplotlib (apt-get install python3-matplotlib)")

COLOURS = ["#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb"]


def series(entry, step, field):
    """(median, low, high) over the rounds, or a short reason why there is none."""
    if entry["status"] != "ok":
        return "not installed" if entry["status"] == "not installed" else "setup failed"
    values, failed, note = [], False, None
    for rnd in entry["rounds"]:
        r = rnd.get(step, {})
        if field in r:
            values.append(r[field])
            note = r.get("note", note)
        elif "fail" in r:
            failed = True
    if not values:
        return "fails" if failed else "n/a"
    return statistics.median(values), min(values), max(values), note


def grouped_bars(ax, names, labels, metrics, unit, log=False):
    """One group per contender, one bar per metric (step, field, legend)."""
    width = 0.8 / len(metrics)
    for j, (step, field, legend) in enumerate(metrics):
        labelled = False
        for i, name in enumerate(names):
            x = i + (j - (len(metrics) - 1) / 2) * width
            got = series(labels[name], step, field)
            if isinstance(got, str):
                # A contender that is not there at all is labelled once, in
                # the middle of its group; a failed measurement at its bar.
                whole = labels[name]["status"] != "ok"
                if whole and j > 0:
                    continue
                ax.text(i if whole else x, 0.02, got, rotation=90, ha="center", va="bottom",
                        fontsize=8, color="#aa0000", transform=ax.get_xaxis_transform())
                continue
            med, lo, hi, note = got
            ax.bar(x, med, width, color=COLOURS[j % len(COLOURS)], label=None if labelled else legend,
                   yerr=[[med - lo], [hi - med]], capsize=2, error_kw={"elinewidth": 0.8})
            labelled = True
            if note:
                ax.text(x, med, "*", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([labels[n]["label"] for n in names], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(unit)
    if log:
        ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3)
    if len(metrics) > 1 and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def main():
    ap = argparse.ArgumentParser(description="Plot bench/run results.")
    ap.add_argument("results", help="JSON written by bench/run")
    ap.add_argument("-o", "--out", default="bench.png", help="image to write (default bench.png)")
    ap.add_argument("--note", help="a line to print above the plots, e.g. 'smoke run, loaded machine'")
    args = ap.parse_args()
    with open(args.results) as f:
        data = json.load(f)
    contenders = data["contenders"]
    names = list(contenders)
    meta = data.get("meta", {})

    fig, axes = plt.subplots(3, 1, figsize=(11, 13))
    grouped_bars(axes[0], names, contenders, [
        ("tcp_default", "gbps", "default offloads"),
        ("tcp_nooffload", "gbps", "offloads off"),
    ], "Gbit/s")
    axes[0].set_title("TCP, 1 stream (iperf3)")
    grouped_bars(axes[1], names, contenders, [
        ("pps_max", "kpps", "delivered at full rate"),
    ], "kpps")
    axes[1].set_title("64-byte frames delivered, generator at full rate")
    grouped_bars(axes[2], names, contenders, [
        ("rtt", "p50", "p50"),
        ("rtt", "p99", "p99"),
        ("rtt", "p999", "p99.9"),
    ], "µs (log scale)", log=True)
    axes[2].set_title("UDP ping-pong round trip (sockperf); * = measured with tx checksum offload off")
    fig.suptitle(
        f"l2sw bench: {meta.get('rounds_done', '?')} round(s) x {meta.get('seconds', '?')} s, "
        f"{meta.get('cpu_model', '?')} x{meta.get('cpus', '?')}, Linux {meta.get('kernel', '?')}, "
        f"commit {meta.get('commit', '?')}\nbars: median, whiskers: min-max over the rounds"
        + (f"\n{args.note}" if args.note else ""),
        fontsize=10, color="#aa0000" if args.note else "black")
    # Leave the suptitle its own room above the panels.
    fig.tight_layout(rect=(0, 0, 1, 0.955 if args.note else 0.965))
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
