#!/usr/bin/env python3
"""Decode, merge and print l2sw's encoded latency histograms (stdlib only).

    python3 tools/hgrm.py HISTFAAA... HISTFAAA... > merged.hgrm
    l2sw probe ... --json | jq -r .rtt_hist_encoded | python3 tools/hgrm.py - --summary

`l2sw probe --json` and `l2sw latency --json` ship their histograms in the
compressed V2 base64 form of HdrHistogram ("HISTFAAA..."). This module reads
that form, adds histograms of the same layout exactly (counts per bucket),
and prints the same `.hgrm` percentile distribution and the same summary as
l2sw's Rust code (`observe::latency::LatencyHistogram::hgrm` / `summary`,
which use the `hdrhistogram` crate 7.x): the iteration, rounding and layout
below follow that crate, so for one histogram the output is byte for byte
what `l2sw latency --hgrm` prints. Values are nanoseconds inside, printed
in microseconds.

Used by bench/latency to merge the rounds' probe histograms per contender.
"""

import argparse
import base64
import math
import struct
import sys
import zlib

V2_COOKIE = 0x1C849313
V2_COMPRESSED_COOKIE = 0x1C849314
TICKS_PER_HALF_DISTANCE = 5


class Histogram:
    """An HdrHistogram's counts and bucket layout (the crate's arithmetic)."""

    def __init__(self, low, high, digits):
        self.low, self.high, self.digits = low, high, digits
        self.unit_magnitude = low.bit_length() - 1                       # floor(log2(low))
        sub_bucket_count_magnitude = (2 * 10 ** digits - 1).bit_length()  # ceil(log2(2*10^d))
        self.sub_bucket_half_count_magnitude = max(sub_bucket_count_magnitude, 1) - 1
        self.sub_bucket_count = 1 << sub_bucket_count_magnitude
        self.sub_bucket_half_count = self.sub_bucket_count // 2
        self.sub_bucket_mask = (self.sub_bucket_count - 1) << self.unit_magnitude
        # Buckets needed to cover `high`.
        smallest_untrackable = self.sub_bucket_count << self.unit_magnitude
        self.bucket_count = 1
        while smallest_untrackable <= high:
            smallest_untrackable <<= 1
            self.bucket_count += 1
        self.counts = [0] * ((self.bucket_count + 1) << self.sub_bucket_half_count_magnitude)

    # -- layout

    def layout(self):
        return (self.low, self.high, self.digits)

    def value_for(self, index):
        bucket = (index >> self.sub_bucket_half_count_magnitude) - 1
        sub = (index & (self.sub_bucket_half_count - 1)) + self.sub_bucket_half_count
        if bucket < 0:
            sub -= self.sub_bucket_half_count
            bucket = 0
        return sub << (bucket + self.unit_magnitude)

    def _bucket_for(self, value):
        return (value | self.sub_bucket_mask).bit_length() - self.unit_magnitude \
            - self.sub_bucket_half_count_magnitude - 1

    def lowest_equivalent(self, value):
        shift = self._bucket_for(value) + self.unit_magnitude
        return (value >> shift) << shift

    def equivalent_range(self, value):
        return 1 << (self.unit_magnitude + self._bucket_for(value))

    def highest_equivalent(self, value):
        return self.lowest_equivalent(value) + self.equivalent_range(value) - 1

    def median_equivalent(self, value):
        return self.lowest_equivalent(value) + (self.equivalent_range(value) >> 1)

    # -- contents

    def total(self):
        return sum(self.counts)

    def merge(self, other):
        if other.layout() != self.layout():
            raise ValueError(f"cannot merge histograms of different layouts: "
                             f"{self.layout()} and {other.layout()}")
        for i, c in enumerate(other.counts):
            if c:
                self.counts[i] += c

    def _recorded(self):
        """(index, count) of every non-empty bucket, in value order."""
        return [(i, c) for i, c in enumerate(self.counts) if c]

    def max_ns(self):
        rec = self._recorded()
        return self.highest_equivalent(self.value_for(rec[-1][0])) if rec else 0

    def min_ns(self):
        rec = self._recorded()
        if not rec or self.counts[0]:
            return 0
        return self.lowest_equivalent(self.value_for(rec[0][0]))

    def mean_ns(self):
        total = self.total()
        if not total:
            return 0.0
        acc = 0.0
        for i, c in self._recorded():
            acc += float(self.median_equivalent(self.value_for(i))) * float(c) / float(total)
        return acc

    def stdev_ns(self):
        total = self.total()
        if not total:
            return 0.0
        mean = self.mean_ns()
        acc = 0.0
        for i, c in self._recorded():
            dev = float(self.median_equivalent(self.value_for(i))) - mean
            acc += dev * dev * float(c)
        return math.sqrt(acc / float(total))

    def value_at_quantile(self, q):
        """The highest value equivalent to the sample at rank ceil(q * count)."""
        q = min(q, 1.0)
        target = max(1, math.ceil(q * self.total()))
        running = 0
        for i, c in enumerate(self.counts):
            running += c
            if running >= target:
                v = self.value_for(i)
                return self.lowest_equivalent(v) if q == 0.0 else self.highest_equivalent(v)
        return 0

    def summary(self):
        """Like LatencySummary: count, min, p50 ... max, mean, in µs."""
        if not self.total():
            return {k: 0 for k in ("count", "min_us", "p50_us", "p90_us", "p99_us",
                                   "p999_us", "p9999_us", "max_us", "mean_us")}
        q = self.value_at_quantile
        return {
            "count": self.total(), "min_us": self.min_ns() / 1000.0,
            "p50_us": q(0.5) / 1000.0, "p90_us": q(0.9) / 1000.0, "p99_us": q(0.99) / 1000.0,
            "p999_us": q(0.999) / 1000.0, "p9999_us": q(0.9999) / 1000.0,
            "max_us": self.max_ns() / 1000.0, "mean_us": self.mean_ns() / 1000.0,
        }

    def iter_quantiles(self, ticks_per_half_distance=TICKS_PER_HALF_DISTANCE):
        """(value_ns, quantile_iterated_to, total_count_so_far) rows, as the
        crate's `iter_quantiles` yields them (percentile steps that halve
        their size at 50 %, 75 %, 87.5 %, ...; the last row is quantile 1.0)."""
        total = self.total()
        rec = self._recorded()
        if not total:
            return
        max_index = rec[-1][0]
        q_to, reached_end = 0.0, False
        running, index, last_picked, count_here = 0, 0, None, 0
        fresh = True
        while index < len(self.counts):
            if last_picked is not None and last_picked >= max_index:
                # Past the last recorded value: one more row, at quantile 1.0.
                if reached_end:
                    return
                q_to = 1.0
            elif fresh:
                count_here = self.counts[index]
                running += count_here
                fresh = False
            picked = None
            if count_here and running / total >= q_to and not reached_end:
                if q_to == 1.0:
                    reached_end = True
                    picked = 1.0
                else:
                    halvings = int(math.log2(1.0 / (1.0 - q_to)))
                    increment = 1.0 / (ticks_per_half_distance * (1 << (halvings + 1)))
                    picked = q_to
                    q_to = 1.0 if q_to + increment == q_to else q_to + increment
            if picked is not None:
                yield self.highest_equivalent(self.value_for(index)), picked, running
                last_picked = index
                continue
            index += 1
            fresh = True

    def hgrm(self):
        """The .hgrm percentile distribution text, values in µs."""
        out = [f"{'Value':>12} {'Percentile':>14} {'TotalCount':>10} {'1/(1-Percentile)':>14}\n\n"]
        for value, q, total in self.iter_quantiles():
            if q < 1.0:
                out.append(f"{value / 1000.0:12.3f} {q:2.12f} {total:10d} {1.0 / (1.0 - q):14.2f}\n")
            else:
                out.append(f"{value / 1000.0:12.3f} {q:2.12f} {total:10d}\n")
        empty = not self.total()
        mean = 0.0 if empty else self.mean_ns() / 1000.0
        stdev = 0.0 if empty else self.stdev_ns() / 1000.0
        out.append(f"#[Mean    = {mean:12.3f}, StdDeviation   = {stdev:12.3f}]\n")
        out.append(f"#[Max     = {self.max_ns() / 1000.0:12.3f}, Total count    = {self.total():12d}]\n")
        out.append(f"#[Buckets = {self.bucket_count:12d}, SubBuckets     = {self.sub_bucket_count:12d}]\n")
        return "".join(out)


def _varints(payload):
    """ZigZag LEB128 numbers (at most 9 bytes, the 9th with all 8 bits)."""
    i, n = 0, len(payload)
    while i < n:
        value, shift = 0, 0
        for k in range(9):
            b = payload[i]
            i += 1
            if k == 8:
                value |= b << 56
                break
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        yield (value >> 1) ^ -(value & 1)


def decode(encoded):
    """A Histogram from the "HISTFAAA..." form; ValueError if it is not one."""
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except ValueError as e:
        raise ValueError(f"not base64: {e}") from None
    if len(raw) < 8 or struct.unpack(">I", raw[:4])[0] != V2_COMPRESSED_COOKIE:
        raise ValueError("not a compressed V2 HdrHistogram")
    length = struct.unpack(">I", raw[4:8])[0]
    try:
        inner = zlib.decompress(raw[8:8 + length])
    except zlib.error as e:
        raise ValueError(f"corrupt compressed histogram: {e}") from None
    if len(inner) < 40:
        raise ValueError("truncated histogram header")
    cookie, payload_len, offset, digits, low, high, ratio = struct.unpack(">IIIIQQd", inner[:40])
    if cookie != V2_COOKIE or offset != 0 or ratio != 1.0 or low < 1 or high < 2 * low or digits > 5:
        raise ValueError("unsupported histogram header")
    h = Histogram(low, high, digits)
    index = 0
    for n in _varints(inner[40:40 + payload_len]):
        if n < 0:
            index += -n
        else:
            if n:
                if index >= len(h.counts):
                    raise ValueError("histogram counts run past its range")
                h.counts[index] = n
            index += 1
    return h


def merge(encoded_list):
    """One Histogram holding every sample of the encoded histograms given."""
    hists = [decode(e) for e in encoded_list]
    if not hists:
        raise ValueError("no histograms to merge")
    out = hists[0]
    for h in hists[1:]:
        out.merge(h)
    return out


def main():
    ap = argparse.ArgumentParser(description="Merge encoded HdrHistograms (l2sw's \"HISTFAAA...\" "
                                             "strings) and print the .hgrm distribution")
    ap.add_argument("encoded", nargs="+", help="encoded histograms; '-' reads them from stdin, one a line")
    ap.add_argument("--summary", action="store_true", help="print the summary (µs) as JSON instead")
    args = ap.parse_args()
    items = []
    for e in args.encoded:
        items += [ln for ln in sys.stdin.read().split() if ln] if e == "-" else [e]
    try:
        h = merge(items)
    except ValueError as e:
        sys.exit(f"hgrm: {e}")
    if args.summary:
        import json
        print(json.dumps(h.summary()))
    else:
        sys.stdout.write(h.hgrm())


if __name__ == "__main__":
    main()
