//! Latency samples and their percentiles.

use std::time::Duration;

/// Latencies of the successful operations of one test.
#[derive(Clone, Debug, Default)]
pub struct Latencies {
    samples: Vec<Duration>,
}

/// Percentiles of a set of latencies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
}

impl Latencies {
    /// Adds one sample.
    pub fn record(&mut self, latency: Duration) {
        self.samples.push(latency);
    }

    /// Adds all samples of `other`.
    pub fn merge(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether no sample was recorded.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Median and 99th percentile (nearest-rank), or `None` without samples.
    pub fn summary(mut self) -> Option<Summary> {
        self.samples.sort_unstable();
        Some(Summary {
            p50: nearest_rank(&self.samples, 50.0)?,
            p99: nearest_rank(&self.samples, 99.0)?,
        })
    }
}

/// The smallest sample such that at least `percent` % of the samples are at or below it.
fn nearest_rank(sorted: &[Duration], percent: f64) -> Option<Duration> {
    let rank = (percent / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(values: impl IntoIterator<Item = u64>) -> Latencies {
        let mut l = Latencies::default();
        for v in values {
            l.record(Duration::from_micros(v));
        }
        l
    }

    #[test]
    fn percentiles_use_nearest_rank_on_unsorted_input() {
        let s = micros((1..=100).rev()).summary().unwrap();
        assert_eq!(s.p50, Duration::from_micros(50));
        assert_eq!(s.p99, Duration::from_micros(99));
    }

    #[test]
    fn one_sample_is_every_percentile() {
        let s = micros([7]).summary().unwrap();
        assert_eq!(
            (s.p50, s.p99),
            (Duration::from_micros(7), Duration::from_micros(7))
        );
    }

    #[test]
    fn a_single_outlier_in_a_hundred_is_not_the_p99() {
        let s = micros(std::iter::repeat_n(10, 99).chain([5000]))
            .summary()
            .unwrap();
        assert_eq!(s.p99, Duration::from_micros(10));
        let s = micros(std::iter::repeat_n(10, 98).chain([5000, 5000]))
            .summary()
            .unwrap();
        assert_eq!(s.p99, Duration::from_micros(5000));
    }

    #[test]
    fn no_samples_no_summary() {
        assert_eq!(Latencies::default().summary(), None);
    }

    #[test]
    fn merge_keeps_all_samples() {
        let mut a = micros([1, 2]);
        a.merge(micros([3]));
        assert_eq!(a.len(), 3);
        assert_eq!(a.summary().unwrap().p99, Duration::from_micros(3));
    }
}
