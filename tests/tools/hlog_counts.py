#!/usr/bin/env python3
"""Decode an HdrHistogram interval log with the `hdrh` package (the Python HdrHistogram
implementation from PyPI, independent of the Rust crate inferload writes with) and print, as
JSON, per tag: the total count, the number of intervals, and the 50th/99th percentiles and max
of all intervals merged, in the log's unit (microseconds for inferload)."""

import json
import sys

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader


def main(path):
    # The reference histogram only sets the range and precision of decoded copies.
    reference = HdrHistogram(1, 3_600_000_000, 3)
    reader = HistogramLogReader(path, reference)
    merged = {}
    intervals = {}
    while True:
        histogram = reader.get_next_interval_histogram()
        if histogram is None:
            break
        tag = histogram.get_tag() or ""
        intervals[tag] = intervals.get(tag, 0) + 1
        if tag not in merged:
            merged[tag] = HdrHistogram(1, 3_600_000_000, 3)
        merged[tag].add(histogram)
    reader.close()
    result = {}
    for tag, histogram in merged.items():
        result[tag] = {
            "count": histogram.get_total_count(),
            "intervals": intervals[tag],
            "p50": histogram.get_value_at_percentile(50.0),
            "p99": histogram.get_value_at_percentile(99.0),
            "max": histogram.get_max_value(),
        }
    json.dump(result, sys.stdout, sort_keys=True)
    print()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: hlog_counts.py FILE.hlog")
    main(sys.argv[1])
