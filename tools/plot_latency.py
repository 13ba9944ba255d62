#!/usr/bin/env python3
"""Draw HdrHistogram-style latency percentile plots from .hgrm files.

    python3 tools/plot_latency.py -o out.png --title "l2sw vs bridge" \
        l2sw=l2sw.hgrm bridge=bridge.hgrm

Each FILE is the standard HdrHistogram percentile distribution text, as
printed by `l2sw latency --hgrm`, by the probe, or by Java HdrHistogram's
outputPercentileDistribution: a header, rows of
"Value Percentile TotalCount 1/(1-Percentile)", and "#[...]" footer lines.
Values are taken as microseconds.

The x axis is 1/(1-percentile) on a log scale, labelled 0%, 90%, 99%,
99.9%, ...: every decade is one more "nine", so the tail gets as much room as
the body. The 100% row cannot sit on that axis (1/(1-1) is infinite); each
series' maximum is given in the legend instead.

Needs matplotlib. If the python3 that runs this lacks it (e.g. a pyenv
python), the script re-runs itself with /usr/bin/python3, where Debian's
python3-matplotlib installs it.
"""

import argparse
import math
import os
import sys


def _import_pyplot():
    try:
        import matplotlib
    except ImportError:
        system = "/usr/bin/python3"
        if os.path.realpath(sys.executable) != os.path.realpath(system) and os.path.exists(system) \
                and not os.environ.get("PLOT_LATENCY_REEXEC"):
            os.environ["PLOT_LATENCY_REEXEC"] = "1"
            os.execv(system, [system] + sys.argv)
        sys.exit("plot_latency: matplotlib is missing: apt-get install python3-matplotlib "
                 "(or pip install matplotlib)")
    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt
    return plt


class Series:
    def __init__(self, label, path):
        self.label = label
        self.path = path
        self.values = []       # µs
        self.percentiles = []  # 0..1
        self.max = None
        self.count = None


def parse_hgrm(label, path):
    """Reads one .hgrm file; exits with a message naming the file and line on
    anything that is not the format."""
    s = Series(label, path)
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            text = line.strip()
            if not text or text.startswith("Value"):
                continue
            if text.startswith("#"):
                # "#[Max     =       10.007, Total count    =        10000]"
                if text.startswith("#[Max"):
                    fields = text.strip("#[]").split(",")
                    try:
                        s.max = float(fields[0].split("=")[1])
                        s.count = int(fields[1].split("=")[1])
                    except (IndexError, ValueError):
                        pass
                continue
            fields = text.split()
            try:
                value, percentile = float(fields[0]), float(fields[1])
                int(fields[2])
            except (IndexError, ValueError):
                sys.exit(f"plot_latency: {path}:{n}: not an hgrm row: {text!r}")
            if not 0.0 <= percentile <= 1.0:
                sys.exit(f"plot_latency: {path}:{n}: percentile {percentile} outside 0..1")
            s.values.append(value)
            s.percentiles.append(percentile)
    if s.max is None and s.values:
        s.max = max(s.values)
    return s


def nines_label(decade):
    """0 -> 0%, 1 -> 90%, 2 -> 99%, 3 -> 99.9%, ..."""
    if decade == 0:
        return "0%"
    if decade == 1:
        return "90%"
    return "99" + ("." + "9" * (decade - 2) if decade > 2 else "") + "%"


def plot(series, output, title, log_y):
    plt = _import_pyplot()
    fig, ax = plt.subplots(figsize=(10, 6), dpi=100)
    top_decade = 5  # always show up to 99.999%, like HdrHistogram's plotter
    drawn = 0
    for s in series:
        points = [(1.0 / (1.0 - p), v) for p, v in zip(s.percentiles, s.values) if p < 1.0]
        if not points:
            print(f"plot_latency: {s.path}: no samples, {s.label} left out", file=sys.stderr)
            continue
        xs, ys = zip(*points)
        top_decade = max(top_decade, math.ceil(math.log10(max(xs)) - 1e-9))
        extra = f" (n={s.count}, max {s.max:.1f} µs)" if s.count is not None else ""
        ax.plot(xs, ys, label=s.label + extra, linewidth=1.6)
        drawn += 1
    if drawn == 0:
        sys.exit("plot_latency: no series had samples")
    ax.set_xscale("log")
    ticks = [10.0 ** d for d in range(top_decade + 1)]
    ax.set_xticks(ticks)
    ax.set_xticklabels([nines_label(d) for d in range(top_decade + 1)])
    ax.minorticks_off()
    ax.set_xlim(1, ticks[-1])
    if log_y:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (µs)")
    ax.set_title(title)
    ax.grid(True, which="major", linestyle=":", linewidth=0.8)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(output)
    print(f"plot_latency: wrote {output}")


def main():
    ap = argparse.ArgumentParser(
        description="HdrHistogram-style latency percentile plot of .hgrm files")
    ap.add_argument("-o", "--output", required=True, help="image to write (.png, .svg, .pdf)")
    ap.add_argument("--title", default="Latency by percentile")
    ap.add_argument("--log-y", action="store_true", help="log-scaled latency axis")
    ap.add_argument("series", nargs="+", metavar="LABEL=FILE.hgrm")
    args = ap.parse_args()
    series = []
    for spec in args.series:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path:
            ap.error(f"series {spec!r} is not LABEL=FILE.hgrm")
        if not os.path.isfile(path):
            ap.error(f"{path}: no such file")
        series.append(parse_hgrm(label, path))
    plot(series, args.output, args.title, args.log_y)


if __name__ == "__main__":
    main()
