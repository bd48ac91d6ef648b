//! Percentile distribution files (`.hgrm`) in the text layout of HdrHistogram's
//! `outputPercentileDistribution`, which the HdrHistogram plotter and most HDR tools read.
//! Values are written in milliseconds from histograms of microseconds.

use std::fmt::Write;

use hdrhistogram::Histogram;

/// Quantile steps per half distance to 100%, as HdrHistogram's own output uses by default.
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// Renders the percentile distribution of a histogram of microseconds, in milliseconds.
pub fn render(histogram: &Histogram<u64>, partial: bool) -> String {
    let mut out = String::new();
    let scale = 1000.0;
    let decimals = histogram.sigfig() as usize;
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if !histogram.is_empty() {
        for step in histogram.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            total += step.count_since_last_iteration();
            let value = step.value_iterated_to() as f64 / scale;
            let quantile = step.quantile_iterated_to();
            if quantile < 1.0 {
                let _ = writeln!(
                    out,
                    "{value:>12.decimals$} {quantile:>2.12} {total:>10} {:>14.2}",
                    1.0 / (1.0 - quantile)
                );
            } else {
                let _ = writeln!(out, "{value:>12.decimals$} {quantile:>2.12} {total:>10}");
            }
        }
    }
    let (mean, deviation, max) = if histogram.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (
            histogram.mean() / scale,
            histogram.stdev() / scale,
            histogram.max() as f64 / scale,
        )
    };
    let sub_buckets = (2 * 10u64.pow(histogram.sigfig() as u32)).next_power_of_two();
    let _ = writeln!(
        out,
        "#[Mean    = {mean:>12.decimals$}, StdDeviation   = {deviation:>12.decimals$}]"
    );
    let _ = writeln!(
        out,
        "#[Max     = {max:>12.decimals$}, Total count    = {:>12}]",
        histogram.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:>12}, SubBuckets     = {sub_buckets:>12}]",
        histogram.buckets()
    );
    if partial {
        let _ = writeln!(out, "#[Partial: the run was interrupted]");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_ends_at_total() {
        let mut histogram = crate::stats::new_histogram();
        for value in 1..=10_000u64 {
            histogram.record(value).unwrap();
        }
        let text = render(&histogram, false);
        let rows: Vec<Vec<&str>> = text
            .lines()
            .skip(2)
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| l.split_whitespace().collect())
            .collect();
        let last = rows.last().unwrap();
        assert_eq!(last[1], "1.000000000000");
        assert_eq!(last[2], "10000");
        let first_median = rows
            .iter()
            .find(|r| r[1].parse::<f64>().unwrap() >= 0.5)
            .unwrap();
        // Rows show the highest value equivalent to the recorded one, as HdrHistogram does.
        let median = histogram.highest_equivalent(5000) as f64 / 1000.0;
        assert_eq!(first_median[0], format!("{median:.3}"));
        assert!(text.contains("Total count    =        10000"), "{text}");
        let counts: Vec<u64> = rows.iter().map(|r| r[2].parse().unwrap()).collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    }
}
