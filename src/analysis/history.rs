//! [`History`]: cumulative counts as a step function of time, which is what a rolling window differences.
//!
//! A history holds snapshots `(period, value)` taken at the start of periods, and the value now (`last`).
//! The value at the start of period `p` is that of the earliest snapshot at or after `p`: a period without
//! a snapshot saw no record (every record ticks first), so nothing changed until the next snapshot. The
//! sum of histories is a history, which is how state imported from another library copy joins ours.

use crate::recording::latency::LatencyCounts;
use crate::recording::totals::OutcomeCounts;

/// A value that only grows, so that two readings of it can be subtracted.
pub(crate) trait Cumulative: Clone + Default {
    /// The sum of two readings.
    fn plus(&self, other: &Self) -> Self;
    /// What grew since `earlier`, saturating at zero.
    fn minus(&self, earlier: &Self) -> Self;
    /// The larger of two readings, part by part.
    fn max_with(&self, other: &Self) -> Self;
}

impl Cumulative for OutcomeCounts {
    fn plus(&self, other: &Self) -> Self {
        combine(self, other, u64::wrapping_add)
    }

    fn minus(&self, earlier: &Self) -> Self {
        combine(self, earlier, u64::saturating_sub)
    }

    fn max_with(&self, other: &Self) -> Self {
        combine(self, other, u64::max)
    }
}

fn combine(a: &OutcomeCounts, b: &OutcomeCounts, op: fn(u64, u64) -> u64) -> OutcomeCounts {
    std::array::from_fn(|i| std::array::from_fn(|j| op(a[i][j], b[i][j])))
}

/// Latency buckets per operation code; a missing operation counts as empty.
impl Cumulative for Vec<LatencyCounts> {
    fn plus(&self, other: &Self) -> Self {
        zip_longest(self, other, |a, b| {
            let mut sum = a.clone();
            sum.merge(b);
            sum
        })
    }

    fn minus(&self, earlier: &Self) -> Self {
        zip_longest(self, earlier, LatencyCounts::since)
    }

    fn max_with(&self, other: &Self) -> Self {
        zip_longest(self, other, LatencyCounts::max_with)
    }
}

fn zip_longest(
    a: &[LatencyCounts],
    b: &[LatencyCounts],
    op: impl Fn(&LatencyCounts, &LatencyCounts) -> LatencyCounts,
) -> Vec<LatencyCounts> {
    let empty = LatencyCounts::default();
    (0..a.len().max(b.len()))
        .map(|i| op(a.get(i).unwrap_or(&empty), b.get(i).unwrap_or(&empty)))
        .collect()
}

/// Snapshots of a cumulative value, and its value now.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct History<T> {
    /// `(period start, value at that start)`, in increasing period order.
    snapshots: Vec<(u64, T)>,
    last: T,
}

impl<T: Cumulative> History<T> {
    /// A history from snapshots in any order.
    pub(crate) fn new(mut snapshots: Vec<(u64, T)>, last: T) -> Self {
        snapshots.sort_by_key(|(period, _)| *period);
        Self { snapshots, last }
    }

    /// The snapshots, in period order.
    pub(crate) fn snapshots(&self) -> &[(u64, T)] {
        &self.snapshots
    }

    /// The value now.
    pub(crate) fn last(&self) -> &T {
        &self.last
    }

    /// The value at the start of period `from`.
    pub(crate) fn at(&self, from: u64) -> &T {
        self.snapshots
            .iter()
            .find(|(period, _)| *period >= from)
            .map_or(&self.last, |(_, value)| value)
    }

    /// What was added from the start of period `from` until now.
    pub(crate) fn since(&self, from: u64) -> T {
        self.last.minus(self.at(from))
    }

    /// This history with every value passed through `f`.
    pub(crate) fn map<U: Cumulative>(&self, f: impl Fn(&T) -> U) -> History<U> {
        History {
            snapshots: self
                .snapshots
                .iter()
                .map(|(period, value)| (*period, f(value)))
                .collect(),
            last: f(&self.last),
        }
    }

    /// This history seen from `floor` on (a reset): everything before it reads as zero.
    pub(crate) fn above(&self, floor: &T) -> Self {
        let lift = |value: &T| value.max_with(floor).minus(floor);
        Self {
            snapshots: self
                .snapshots
                .iter()
                .map(|(period, value)| (*period, lift(value)))
                .collect(),
            last: lift(&self.last),
        }
    }

    /// The history of the sum of several values: at every period any of them has a snapshot.
    pub(crate) fn sum<'a>(histories: impl IntoIterator<Item = &'a Self> + Clone) -> Self
    where
        T: 'a,
    {
        let mut periods: Vec<u64> = histories
            .clone()
            .into_iter()
            .flat_map(|h| h.snapshots.iter().map(|(period, _)| *period))
            .collect();
        periods.sort_unstable();
        periods.dedup();
        let total = |value: &dyn Fn(&Self) -> &T| {
            histories
                .clone()
                .into_iter()
                .fold(T::default(), |sum, h| sum.plus(value(h)))
        };
        Self {
            snapshots: periods
                .iter()
                .map(|period| (*period, total(&|h| h.at(*period))))
                .collect(),
            last: total(&|h| &h.last),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(n: u64) -> OutcomeCounts {
        let mut counts = OutcomeCounts::default();
        counts[0][0] = n;
        counts
    }

    #[test]
    fn a_period_without_snapshot_reads_as_the_next_one() {
        let history = History::new(vec![(20, hits(5)), (10, hits(2))], hits(9));
        assert_eq!(history.at(5)[0][0], 2);
        assert_eq!(history.at(11)[0][0], 5);
        assert_eq!(history.at(21)[0][0], 9);
        assert_eq!(history.since(11)[0][0], 4);
    }

    #[test]
    fn sums_and_floors_compose() {
        let a = History::new(vec![(10, hits(0)), (20, hits(5))], hits(10));
        let b = History::new(vec![(15, hits(100))], hits(150));
        let sum = History::sum([&a, &b]);
        assert_eq!(sum.at(12)[0][0], 5 + 100);
        assert_eq!(
            sum.since(16)[0][0],
            10 - 5,
            "b has no snapshot after 15: nothing of it counts"
        );
        assert_eq!(sum.since(0)[0][0], 10 + 50);
        let reset = a.above(&hits(7));
        assert_eq!(reset.since(0)[0][0], 3, "only what came after the floor");
    }

    #[test]
    fn latency_vectors_of_different_lengths_combine() {
        let mut one = LatencyCounts::default();
        one.add(3, 2);
        let short = vec![one.clone()];
        let long = vec![one.clone(), one];
        let sum = short.plus(&long);
        assert_eq!(sum.len(), 2);
        assert_eq!(sum[0].total(), 4);
        assert_eq!(long.minus(&short)[1].total(), 2);
    }
}
