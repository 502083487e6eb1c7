//! [`CountsSinceReset`]: the read model of a monitor, everything counted since its last reset.

use crate::analysis::history::History;
use crate::profiler::FoldedStack;
use crate::recording::latency::LatencyCounts;
use crate::recording::totals::{OutcomeCounts, Totals};

/// Everything counted since the last reset, own and imported: what renders and exports read, and what an
/// import is kept as. Counts only grow, so two of these add up part by part ([`CountsSinceReset::add`]).
#[derive(Clone, Debug)]
pub(crate) struct CountsSinceReset {
    pub(crate) totals: Totals,
    /// Count histories in `Resolution::ALL` order (1 s, 10 s, 5 min).
    pub(crate) windows: Vec<History<OutcomeCounts>>,
    pub(crate) latency: History<Vec<LatencyCounts>>,
    /// The second history starts at.
    pub(crate) history_start: Option<u64>,
    /// Sampled stacks, symbolised (addresses mean nothing in another copy of the library).
    pub(crate) stacks: Vec<FoldedStack>,
}

impl CountsSinceReset {
    /// Adds an import to these counts.
    pub(crate) fn add(&mut self, imported: &CountsSinceReset) {
        self.totals.merge(&imported.totals);
        for (mine, theirs) in self.windows.iter_mut().zip(&imported.windows) {
            *mine = History::sum([&*mine, theirs]);
        }
        self.latency = History::sum([&self.latency, &imported.latency]);
        self.history_start = match (self.history_start, imported.history_start) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.stacks.extend_from_slice(&imported.stacks);
    }
}
