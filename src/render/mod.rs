//! Renderers: pure functions from a [`MetricsView`] to text. Nothing here touches the hot path.

pub(crate) mod escape;
pub mod text;

use crate::config::Config;
use crate::operation::{Gauge, Operation, Outcome};
use crate::totals::{SeriesTotals, Totals};

/// Everything a renderer needs, read once from a monitor.
#[derive(Clone, Debug)]
pub struct MetricsView {
    /// The configuration in force when the view was taken.
    pub config: Config,
    /// Totals since the last reset.
    pub totals: Totals,
    /// Host gauges, indexed by [`Gauge`] code.
    pub gauges: [u64; Gauge::ALL.len()],
}

impl MetricsView {
    /// Every `(operation, outcome)` series with at least one record, in code order.
    pub fn recorded_series(&self) -> impl Iterator<Item = (Operation, Outcome, &SeriesTotals)> {
        self.totals
            .series
            .iter()
            .enumerate()
            .flat_map(|(code, series)| {
                Outcome::ALL
                    .into_iter()
                    .zip(series)
                    .filter(|(_, totals)| totals.count > 0)
                    .map(move |(outcome, totals)| {
                        (Operation::from_code(code as u32), outcome, totals)
                    })
            })
    }

    /// Hits over hits plus misses, over every operation; NaN before the first hit or miss.
    pub fn hit_rate(&self) -> f64 {
        let (hits, misses) = self.totals.hits_and_misses();
        ratio(hits, hits + misses)
    }
}

/// `part / whole`, NaN when `whole` is zero: Prometheus' spelling of "no data".
pub(crate) fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        f64::NAN
    } else {
        part as f64 / whole as f64
    }
}
