//! The rolling windows' storage: rings of what was counted in each period, filled by the writers
//! themselves, one shard at a time.
//!
//! # Protocol
//!
//! A shard's records since its last *flush* are its *pending* records: counts per operation and outcome
//! (its cells minus its `flushed` copy) and latency buckets, all from one second, `control.second` (a
//! writer flushes at its first record of every new second, so older records were flushed before). A flush
//! adds the pending counts to the period of that second in three [`DeltaRing`]s (1 s, 10 s and 5 min
//! periods), the pending latency to the 10 s latency ring when the 10 s period changes, updates `flushed`
//! and `second`, all inside an odd `flush_seq` (`Release` on the way out). It reads and writes only the
//! writer's own shard and a few ring cells, so no record ever sums every shard.
//!
//! A reader wants, for a window starting at period `p`, everything counted at or after `p`: the rings'
//! periods from `p` on plus every shard's pending records if their second is at or after `p`. It loads
//! each shard's `flush_seq`, reads the rings, then reads each shard's pending records and checks its
//! `flush_seq` again (`Acquire` fence between): a shard that flushed in between would be counted twice or
//! not at all, so the read is retried (bounded; then accepted with at most one second of one shard off).
//!
//! Records of a writer that stopped (a thread gone quiet, a process killed) stay pending in its shard,
//! attributed to their second, until its next record or the shard's next owner flushes them. Nothing in
//! a window is ever attributed to the wrong period, except by the bounded means the rings' and the
//! clock's docs state (`delta_ring`, `Recorder::tick`).
//!
//! The sequence protocol itself is [`flushing`] (the writer's side) and [`read_consistent`] (the
//! reader's), generic over the sequence word, so that `loom_tests` can model-check it
//! (`RUSTFLAGS="--cfg loom" cargo test --release --lib loom`) with a small shard and a real
//! [`DeltaRing`].

use std::sync::atomic::{AtomicU64, Ordering};

use crate::sync::atomic::fence;

use crate::recording::delta_ring::{BankCells, BankTag, Counters, DeltaRing, Miss};
use crate::recording::latency::{LATENCY_BUCKETS, LatencyCounts, row_bit, row_range, rows_of, set_bits};
use crate::recording::operation::{MAX_OPERATIONS, OUTCOMES};
use crate::recording::shard::Shard;
use crate::recording::totals::OutcomeCounts;

/// A shard's flush sequence word: `std`'s atomic in the shards, loom's in the models.
pub(crate) trait SeqWord {
    /// The word's value.
    fn load(&self, order: Ordering) -> u64;
    /// Sets the word.
    fn store(&self, value: u64, order: Ordering);
}

impl SeqWord for AtomicU64 {
    #[inline(always)]
    fn load(&self, order: Ordering) -> u64 {
        AtomicU64::load(self, order)
    }
    #[inline(always)]
    fn store(&self, value: u64, order: Ordering) {
        AtomicU64::store(self, value, order)
    }
}

#[cfg(loom)]
impl SeqWord for loom::sync::atomic::AtomicU64 {
    fn load(&self, order: Ordering) -> u64 {
        loom::sync::atomic::AtomicU64::load(self, order)
    }
    fn store(&self, value: u64, order: Ordering) {
        loom::sync::atomic::AtomicU64::store(self, value, order)
    }
}

/// The writer's side: runs `flush` (which moves pending records to the rings) inside an odd `seq`.
#[inline(always)]
pub(crate) fn flushing(seq: &impl SeqWord, flush: impl FnOnce()) {
    let before = seq.load(Ordering::Relaxed);
    let odd = if before & 1 == 1 {
        before.wrapping_add(2)
    } else {
        before.wrapping_add(1)
    };
    seq.store(odd, Ordering::Relaxed);
    fence(Ordering::Release);
    flush();
    seq.store(odd.wrapping_add(1), Ordering::Release);
}

/// Reads attempted before a read torn by flushes is accepted anyway.
#[cfg(not(loom))]
const READ_ATTEMPTS: usize = 8;
/// Fewer in a model: each is another branch for loom to explore.
#[cfg(loom)]
const READ_ATTEMPTS: usize = 2;

/// The reader's side: reads the rings (`rings`), then every shard's pending records (`pending`), and
/// tries again while a shard whose sequence word is in `seqs` flushed in between (bounded: then the last
/// read is returned, with `false`).
pub(crate) fn read_consistent<S: SeqWord, R, P>(
    seqs: &[&S],
    mut rings: impl FnMut() -> R,
    mut pending: impl FnMut() -> P,
) -> (R, P, bool) {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let before: Vec<u64> = seqs.iter().map(|seq| seq.load(Ordering::Acquire)).collect();
        let rings = rings();
        fence(Ordering::Acquire);
        let pending = pending();
        fence(Ordering::Acquire);
        let steady = seqs
            .iter()
            .zip(&before)
            .all(|(seq, before)| before & 1 == 0 && seq.load(Ordering::Relaxed) == *before);
        if steady || attempt == READ_ATTEMPTS {
            return (rings, pending, steady);
        }
    }
}

/// Length of the window that latency statistics call "the last minute".
pub const RECENT_LATENCY_SECS: u64 = 60;

/// Periods a flush tries, its own and the next ones, while their banks are busy: a bank stays busy for
/// good only under a writer killed inside an add or a clear, so four cover three such banks in a row.
const LATE_PERIODS: u64 = 4;

/// Resolution of the latency ring.
pub(crate) const LATENCY_RESOLUTION: u64 = 10;

/// Counters of a count bank: one per operation and outcome.
const COUNT_CELLS: usize = MAX_OPERATIONS * OUTCOMES;

/// The three count rings, by resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Resolution {
    /// 1 s periods, 5 minutes back: the 1m and 5m windows.
    Fine,
    /// 10 s periods, an hour back: the 1h window.
    Medium,
    /// 5 min periods, a day back: the 24h window.
    Coarse,
}

impl Resolution {
    /// Every resolution, finest first.
    pub(crate) const ALL: [Self; 3] = [Self::Fine, Self::Medium, Self::Coarse];

    /// Seconds per period.
    pub(crate) const fn seconds(self) -> u64 {
        match self {
            Self::Fine => 1,
            Self::Medium => 10,
            Self::Coarse => 300,
        }
    }

    const fn span(self) -> u64 {
        match self {
            Self::Fine => 300,
            Self::Medium => 3_600,
            Self::Coarse => 86_400,
        }
    }

    /// Periods this resolution's ring keeps: every period of its span, plus the current one, plus one of
    /// slack.
    const fn ring_len(self) -> usize {
        (self.span() / self.seconds()) as usize + 2
    }

    /// The ring a window of `window` seconds reads, and the first second the window covers at `now` (the
    /// start of a period).
    pub(crate) fn for_window(window: u64, now: u64) -> (Self, u64) {
        let resolution = Self::ALL
            .into_iter()
            .find(|r| window <= r.span())
            .unwrap_or(Self::Coarse);
        let res = resolution.seconds();
        (resolution, (now - now % res).saturating_sub(window.saturating_sub(res)))
    }
}

/// Where "the last minute" of latency starts: [`RECENT_LATENCY_SECS`] before the start of the current
/// 10-second period, so it covers 60 to 70 seconds.
pub(crate) fn recent_latency_start(now: u64) -> u64 {
    (now - now % LATENCY_RESOLUTION).saturating_sub(RECENT_LATENCY_SECS)
}

/// Latency buckets of every operation for one 10-second period, with the rows that hold counts.
#[repr(C)]
pub(crate) struct LatencyBank {
    rows: [AtomicU64; MAX_OPERATIONS],
    buckets: [[AtomicU64; LATENCY_BUCKETS]; MAX_OPERATIONS],
}

// SAFETY: atomics only; zero is "nothing counted, no rows".
unsafe impl BankCells for LatencyBank {
    fn clear(&self) {
        for (rows, buckets) in self.rows.iter().zip(&self.buckets) {
            for index in rows_of(rows.load(Ordering::Relaxed)) {
                if let Some(cell) = buckets.get(index) {
                    cell.store(0, Ordering::Relaxed);
                }
            }
            rows.store(0, Ordering::Relaxed);
        }
    }
}

const FINE_LEN: usize = Resolution::Fine.ring_len();
const MEDIUM_LEN: usize = Resolution::Medium.ring_len();
const COARSE_LEN: usize = Resolution::Coarse.ring_len();
const LATENCY_LEN: usize = (RECENT_LATENCY_SECS / LATENCY_RESOLUTION) as usize + 2;

/// The rings, in the region. All-zero is the valid empty state.
#[repr(C)]
pub(crate) struct WindowRings {
    /// The first second anything was recorded or read, plus one; 0 before.
    first_second: AtomicU64,
    fine: DeltaRing<FINE_LEN, Counters<COUNT_CELLS>>,
    medium: DeltaRing<MEDIUM_LEN, Counters<COUNT_CELLS>>,
    coarse: DeltaRing<COARSE_LEN, Counters<COUNT_CELLS>>,
    latency: DeltaRing<LATENCY_LEN, LatencyBank>,
}

/// What a shard has not flushed yet, read consistently.
#[derive(Clone, Debug, Default)]
pub(crate) struct Pending {
    /// The second they were recorded in; `None` if the shard never recorded.
    pub(crate) second: Option<u64>,
    pub(crate) counts: OutcomeCounts,
    /// Per operation.
    pub(crate) latency: Vec<LatencyCounts>,
}

/// What the rings and the pending records say about the past, for every period they know.
#[derive(Clone, Debug, Default)]
pub(crate) struct WindowDeltas {
    /// Per resolution (in [`Resolution::ALL`] order): `(period start second, counts in that period)`.
    pub(crate) counts: Vec<Vec<(u64, OutcomeCounts)>>,
    /// `(period start second, latency per operation in that 10 s period)`.
    pub(crate) latency: Vec<(u64, Vec<LatencyCounts>)>,
    /// The first second anything was recorded or read.
    pub(crate) first_second: Option<u64>,
}

/// The tags of one ring, as stored (for `check`).
#[derive(Clone, Debug)]
pub(crate) struct RingTags {
    /// Which ring: `fine`, `medium`, `coarse` or `latency`.
    pub(crate) name: &'static str,
    /// Seconds per period.
    pub(crate) period_seconds: u64,
    /// Entries in the ring (each has two banks).
    pub(crate) entries: usize,
    /// Every bank's tag.
    pub(crate) tags: Vec<BankTag>,
    /// Whether `period` belongs in bank `bank` of entry `entry`.
    pub(crate) is_home_of: fn(usize, usize, u64) -> bool,
}

impl WindowRings {
    /// Every ring's tags as stored.
    pub(crate) fn ring_tags(&self) -> Vec<RingTags> {
        vec![
            RingTags {
                name: "fine",
                period_seconds: Resolution::Fine.seconds(),
                entries: FINE_LEN,
                tags: self.fine.tags(),
                is_home_of: DeltaRing::<FINE_LEN, Counters<COUNT_CELLS>>::is_home_of,
            },
            RingTags {
                name: "medium",
                period_seconds: Resolution::Medium.seconds(),
                entries: MEDIUM_LEN,
                tags: self.medium.tags(),
                is_home_of: DeltaRing::<MEDIUM_LEN, Counters<COUNT_CELLS>>::is_home_of,
            },
            RingTags {
                name: "coarse",
                period_seconds: Resolution::Coarse.seconds(),
                entries: COARSE_LEN,
                tags: self.coarse.tags(),
                is_home_of: DeltaRing::<COARSE_LEN, Counters<COUNT_CELLS>>::is_home_of,
            },
            RingTags {
                name: "latency",
                period_seconds: LATENCY_RESOLUTION,
                entries: LATENCY_LEN,
                tags: self.latency.tags(),
                is_home_of: DeltaRing::<LATENCY_LEN, LatencyBank>::is_home_of,
            },
        ]
    }

    /// Notes `now` as the start of history if nothing came before.
    pub(crate) fn note_first(&self, now: u64) {
        if self.first_second.load(Ordering::Relaxed) == 0 {
            let _ = self
                .first_second
                .compare_exchange(0, now.wrapping_add(1), Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// The first second anything was recorded or read.
    pub(crate) fn first_second(&self) -> Option<u64> {
        self.first_second.load(Ordering::Relaxed).checked_sub(1)
    }

    fn count_ring_add(&self, resolution: Resolution, second: u64, deltas: &OutcomeCounts) {
        let period = second / resolution.seconds();
        let add = |cells: &Counters<COUNT_CELLS>| {
            for (cell, delta) in cells.0.iter().zip(deltas.iter().flatten()) {
                if *delta != 0 {
                    cell.fetch_add(*delta, Ordering::Relaxed);
                }
            }
        };
        // A bank that writers of an earlier period are still in, or that another writer is clearing (and
        // that did not leave or finish within the wait), sends the deltas a period late rather than not at
        // all: to the first of the next periods whose bank takes them. A period gone out of the span
        // takes them nowhere (no window wants them).
        for late in 0..LATE_PERIODS {
            let added = match resolution {
                Resolution::Fine => self.fine.add(period + late, add),
                Resolution::Medium => self.medium.add(period + late, add),
                Resolution::Coarse => self.coarse.add(period + late, add),
            };
            if added != Err(Miss::Busy) {
                return;
            }
        }
    }

    /// Moves `shard`'s pending records to the rings if `now` is a new second for it (see the module
    /// docs). Only the shard's writer calls it (for a shared shard, the writer holding its flush lock).
    pub(crate) fn flush(&self, shard: &Shard, now: u64) {
        let control = &shard.control;
        let second = control.second.load(Ordering::Relaxed);
        if second == now.wrapping_add(1) {
            return;
        }
        self.note_first(now);
        flushing(&control.flush_seq, || {
            if let Some(last) = second.checked_sub(1) {
                self.move_counts(shard, last);
                if last / LATENCY_RESOLUTION != now / LATENCY_RESOLUTION {
                    self.move_latency(shard, last);
                }
            }
            control.second.store(now.wrapping_add(1), Ordering::Relaxed);
        });
    }

    fn move_counts(&self, shard: &Shard, last: u64) {
        let mut deltas = [[0u64; OUTCOMES]; MAX_OPERATIONS];
        let mut any = false;
        for (op, row) in deltas.iter_mut().enumerate() {
            if shard.operation_rows(op) == 0 {
                continue; // never recorded in this shard
            }
            for (outcome, delta) in row.iter_mut().enumerate() {
                let count = shard.series[op][outcome].count();
                let flushed = &shard.flushed.counts[op][outcome];
                *delta = count.wrapping_sub(flushed.load(Ordering::Relaxed));
                if *delta != 0 {
                    flushed.store(count, Ordering::Relaxed);
                    any = true;
                }
            }
        }
        if any {
            for resolution in Resolution::ALL {
                self.count_ring_add(resolution, last, &deltas);
            }
        }
    }

    fn move_latency(&self, shard: &Shard, last: u64) {
        let period = last / LATENCY_RESOLUTION;
        let pending = |op: usize| {
            shard
                .operation_latency(op, shard.operation_rows(op))
                .map(move |(index, value)| (index, value, &shard.flushed.latency[op][index]))
                .filter(|(_, value, flushed)| *value != flushed.load(Ordering::Relaxed))
        };
        if (0..MAX_OPERATIONS).all(|op| pending(op).next().is_none()) {
            return;
        }
        let moved = self.latency.add(period, |bank| {
            for op in 0..MAX_OPERATIONS {
                for (index, value, flushed) in pending(op) {
                    let delta = value.wrapping_sub(flushed.load(Ordering::Relaxed));
                    bank.rows[op].fetch_or(row_bit(index), Ordering::Relaxed);
                    bank.buckets[op][index].fetch_add(delta, Ordering::Relaxed);
                    flushed.store(value, Ordering::Relaxed);
                }
            }
        });
        if moved == Err(Miss::Expired) {
            // Older than the ring: no window wants it any more.
            for op in 0..MAX_OPERATIONS {
                for (_, value, flushed) in pending(op) {
                    flushed.store(value, Ordering::Relaxed);
                }
            }
        }
        // `Busy`: they stay pending and go with the next period.
    }

    /// Every shard's pending records and the rings' periods from `since` (in seconds) up to `now`,
    /// consistent with each other (see the module docs).
    pub(crate) fn read(&self, shards: &[&Shard], since: u64, now: u64) -> (WindowDeltas, Vec<Pending>) {
        let seqs: Vec<&AtomicU64> = shards.iter().map(|shard| &shard.control.flush_seq).collect();
        let (deltas, pending, _) = read_consistent(
            &seqs,
            || self.read_rings(since, now),
            || shards.iter().map(|shard| pending_of(shard)).collect(),
        );
        (deltas, pending)
    }

    fn read_rings(&self, since: u64, now: u64) -> WindowDeltas {
        let counts = |resolution: Resolution| {
            let (seconds, mut periods) = (resolution.seconds(), Vec::new());
            let visit = |period: u64, cells: &Counters<COUNT_CELLS>| {
                let mut counts = [[0u64; OUTCOMES]; MAX_OPERATIONS];
                for (count, cell) in counts.iter_mut().flatten().zip(&cells.0) {
                    *count = cell.load(Ordering::Relaxed);
                }
                periods.push((period * seconds, counts));
            };
            let (from, to) = (since / seconds, now / seconds);
            match resolution {
                Resolution::Fine => self.fine.visit(from, to, visit),
                Resolution::Medium => self.medium.visit(from, to, visit),
                Resolution::Coarse => self.coarse.visit(from, to, visit),
            }
            periods
        };
        let mut latency = Vec::new();
        self.latency
            .visit(since / LATENCY_RESOLUTION, now / LATENCY_RESOLUTION, |period, bank| {
                let ops = (0..MAX_OPERATIONS)
                    .map(|op| {
                        let mut counts = LatencyCounts::default();
                        let rows = bank.rows[op].load(Ordering::Relaxed);
                        counts.reserve_rows(rows);
                        for row in set_bits(rows) {
                            if let Some(cells) = bank.buckets[op].get(row_range(row)) {
                                counts.add_row(row, &std::array::from_fn(|i| cells[i].load(Ordering::Relaxed)));
                            }
                        }
                        counts
                    })
                    .collect();
                latency.push((period * LATENCY_RESOLUTION, ops));
            });
        WindowDeltas {
            counts: Resolution::ALL.into_iter().map(counts).collect(),
            latency,
            first_second: self.first_second(),
        }
    }
}

/// A shard's pending records (unsynchronised: [`WindowRings::read`] checks `flush_seq` around it).
fn pending_of(shard: &Shard) -> Pending {
    let second = shard.control.second.load(Ordering::Relaxed).checked_sub(1);
    let mut pending = Pending {
        second,
        counts: [[0; OUTCOMES]; MAX_OPERATIONS],
        latency: vec![LatencyCounts::default(); MAX_OPERATIONS],
    };
    if second.is_none() {
        return pending;
    }
    for op in 0..MAX_OPERATIONS {
        let rows = shard.operation_rows(op);
        if rows == 0 {
            continue;
        }
        // Saturating: a read torn by a flush (retried, see `read`) must not wrap into huge counts.
        for (outcome, count) in pending.counts[op].iter_mut().enumerate() {
            *count = shard.series[op][outcome]
                .count()
                .saturating_sub(shard.flushed.counts[op][outcome].load(Ordering::Relaxed));
        }
        pending.latency[op].reserve_rows(rows);
        for row in set_bits(rows) {
            let (Some(totals), Some(flushed)) = (
                shard.operation_latency_row(op, row),
                shard.flushed.latency[op].get(row_range(row)),
            ) else {
                continue;
            };
            let deltas = std::array::from_fn(|i| totals[i].saturating_sub(flushed[i].load(Ordering::Relaxed)));
            pending.latency[op].add_row(row, &deltas);
        }
    }
    pending
}

/// Model checks of the flush protocol (`RUSTFLAGS="--cfg loom" cargo test --release --lib loom`): a
/// shard of one counter (its records, and the part of them already moved), flushed into a real
/// [`DeltaRing`] by [`flushing`] while a reader reads with [`read_consistent`]. A read that reports itself
/// consistent counts every record once: never twice (in the rings and still pending), never not at all.
#[cfg(all(test, loom))]
mod loom_tests {
    use loom::sync::Arc;
    use loom::sync::atomic::AtomicU64;

    use super::*;
    use crate::sync::{ModelThread, model, run_threads};

    struct Model {
        /// Records counted by the shard's writer.
        count: AtomicU64,
        /// The part of `count` moved to the ring.
        flushed: AtomicU64,
        seq: AtomicU64,
        ring: DeltaRing<2, Counters<1>>,
    }

    impl Model {
        /// Moves the pending records to `period`, as `WindowRings::flush` does.
        fn flush(&self, period: u64) {
            flushing(&self.seq, || {
                let count = self.count.load(Ordering::Relaxed);
                let delta = count.wrapping_sub(self.flushed.load(Ordering::Relaxed));
                self.flushed.store(count, Ordering::Relaxed);
                let added = self.ring.add(period, |cells| {
                    cells.0[0].fetch_add(delta, Ordering::Relaxed);
                });
                assert_eq!(added, Ok(()), "one writer: nothing else holds the bank");
            });
        }

        /// Records counted, rings plus pending, and whether the read was consistent.
        fn read(&self) -> (u64, bool) {
            let (ringed, pending, steady) = read_consistent(
                &[&self.seq],
                || {
                    let mut sum = 0;
                    self.ring
                        .visit(0, 3, |_, cells| sum += cells.0[0].load(Ordering::Relaxed));
                    sum
                },
                || {
                    self.count
                        .load(Ordering::Relaxed)
                        .saturating_sub(self.flushed.load(Ordering::Relaxed))
                },
            );
            (ringed + pending, steady)
        }
    }

    /// Three records pending from period 0; the writer flushes them and records one more while a reader
    /// reads: a consistent read counts 3 or 4, whatever it overlapped.
    #[test]
    fn loom_a_consistent_read_counts_every_record_once() {
        model(2, || {
            let shard = Arc::new(Model {
                count: AtomicU64::new(3),
                flushed: AtomicU64::new(0),
                seq: AtomicU64::new(0),
                ring: DeltaRing::new(|| Counters([AtomicU64::new(0)])),
            });
            let writer: ModelThread<()> = {
                let shard = Arc::clone(&shard);
                Box::new(move || {
                    shard.flush(0);
                    shard.count.fetch_add(1, Ordering::Relaxed);
                })
            };
            let reader: ModelThread<()> = {
                let shard = Arc::clone(&shard);
                Box::new(move || {
                    let (total, steady) = shard.read();
                    if steady {
                        assert!((3..=4).contains(&total), "a consistent read counted {total}");
                    }
                })
            };
            run_threads(vec![writer, reader]);
            assert_eq!(shard.read(), (4, true), "at rest, every record once");
            shard.flush(1);
            assert_eq!(shard.read(), (4, true), "and after the next flush");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::backing::zeroed_box;
    use crate::recording::latency;
    use crate::recording::shard::{OwnerWriter, Placed, Writer};

    fn parts() -> (Box<WindowRings>, Box<Shard>) {
        // SAFETY: rings and shards are atomics only; all-zero is empty.
        unsafe { (zeroed_box(), zeroed_box()) }
    }

    fn record(shard: &Shard, outcome: usize) {
        let duration_ns = 1_000;
        OwnerWriter::record(
            shard,
            &Placed {
                operation: 0,
                outcome,
                duration_ns,
                bucket: 0,
                latency: latency::index_of(duration_ns),
                pattern: None,
            },
        );
    }

    /// Hits at or after `from` (a second), rings plus pending.
    fn hits_since(rings: &WindowRings, shard: &Shard, resolution: Resolution, from: u64, now: u64) -> u64 {
        let (deltas, pending) = rings.read(&[shard], from, now);
        let index = Resolution::ALL.iter().position(|r| *r == resolution).unwrap();
        let ringed: u64 = deltas.counts[index]
            .iter()
            .filter(|(start, _)| *start >= from - from % resolution.seconds())
            .map(|(_, counts)| counts[0][0])
            .sum();
        let pending: u64 = pending
            .iter()
            .filter(|p| p.second.is_some_and(|s| s >= from))
            .map(|p| p.counts[0][0])
            .sum();
        ringed + pending
    }

    #[test]
    fn records_reach_their_period_through_the_writers_flush() {
        let (rings, shard) = parts();
        for second in 1000..1100u64 {
            rings.flush(&shard, second); // the first record of each second flushes the last one's
            record(&shard, 0);
        }
        assert_eq!(
            hits_since(&rings, &shard, Resolution::Fine, 1099, 1099),
            1,
            "pending: this second"
        );
        assert_eq!(hits_since(&rings, &shard, Resolution::Fine, 1040, 1099), 60);
        assert_eq!(hits_since(&rings, &shard, Resolution::Medium, 1000, 1099), 100);
        assert_eq!(hits_since(&rings, &shard, Resolution::Coarse, 900, 1099), 100);
        assert_eq!(rings.first_second(), Some(1000));
        // Quiet for ten seconds: the last record is still pending in its second.
        assert_eq!(hits_since(&rings, &shard, Resolution::Fine, 1050, 1109), 50);
        assert_eq!(hits_since(&rings, &shard, Resolution::Fine, 1100, 1109), 0);
    }

    #[test]
    fn a_bank_kept_by_a_dead_writer_sends_its_periods_deltas_one_period_late() {
        let (rings, shard) = parts();
        let second = 5_000u64;
        // A writer killed inside an add to the period two rings back, which shares this second's bank.
        rings.fine.strand_writer(second - 2 * FINE_LEN as u64);
        rings.flush(&shard, second);
        record(&shard, 0);
        record(&shard, 0);
        rings.flush(&shard, second + 1);
        let (deltas, _) = rings.read(&[&*shard], second, second + 1);
        let fine: Vec<(u64, u64)> = deltas.counts[0].iter().map(|(start, c)| (*start, c[0][0])).collect();
        assert_eq!(fine, [(second + 1, 2)], "one second late, both");
        assert_eq!(hits_since(&rings, &shard, Resolution::Medium, second, second + 1), 2);
        assert_eq!(hits_since(&rings, &shard, Resolution::Coarse, second, second + 1), 2);
    }

    #[test]
    fn banks_kept_by_dead_writers_in_a_row_send_the_deltas_to_the_first_free_one() {
        let (rings, shard) = parts();
        let second = 6_000u64;
        for stuck in [second, second + 1, second + 2] {
            rings.fine.strand_writer(stuck - 2 * FINE_LEN as u64);
        }
        rings.flush(&shard, second);
        record(&shard, 0);
        rings.flush(&shard, second + 4);
        let (deltas, _) = rings.read(&[&*shard], second, second + 4);
        let fine: Vec<(u64, u64)> = deltas.counts[0].iter().map(|(start, c)| (*start, c[0][0])).collect();
        assert_eq!(fine, [(second + 3, 1)], "three seconds late, counted");
    }

    #[test]
    fn latency_moves_every_ten_seconds() {
        let (rings, shard) = parts();
        for second in 0..25u64 {
            rings.flush(&shard, 2000 + second);
            record(&shard, 1);
        }
        let (deltas, pending) = rings.read(&[&*shard], 2000, 2024);
        let ringed: Vec<u64> = deltas.latency.iter().map(|(_, ops)| ops[0].total()).collect();
        assert_eq!(ringed.iter().sum::<u64>(), 20, "two whole periods in the ring");
        assert_eq!(pending[0].latency[0].total(), 5, "the current period is pending");
        assert_eq!(pending[0].counts[0][1], 1, "counts flush every second");
    }

    #[test]
    fn reads_are_consistent_while_a_writer_flushes() {
        let (rings, shard) = parts();
        let done = std::sync::atomic::AtomicBool::new(false);
        let reading = std::sync::atomic::AtomicBool::new(false);
        let mut reads = 0u64;
        std::thread::scope(|scope| {
            scope.spawn(|| {
                // Not before the reader reads: an optimised writer could otherwise finish first.
                while !reading.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
                // Many records per second, as in life: flushes are rare next to reads.
                for second in 10_000..10_400u64 {
                    rings.flush(&shard, second);
                    for _ in 0..1_000 {
                        record(&shard, 0);
                    }
                }
                done.store(true, Ordering::Relaxed);
            });
            while !done.load(Ordering::Relaxed) {
                reading.store(true, Ordering::Relaxed);
                let (deltas, pending) = rings.read(&[&*shard], 0, u64::MAX / 2);
                let total: u64 = deltas.counts[2].iter().map(|(_, c)| c[0][0]).sum::<u64>()
                    + pending.iter().map(|p| p.counts[0][0]).sum::<u64>();
                reads += 1;
                let recorded = shard.series[0][0].count();
                assert!(total <= recorded, "never counted twice: {total} > {recorded}");
            }
        });
        assert!(reads > 0);
        let (deltas, pending) = rings.read(&[&*shard], 0, u64::MAX / 2);
        let total: u64 = deltas.counts[2].iter().map(|(_, c)| c[0][0]).sum::<u64>()
            + pending.iter().map(|p| p.counts[0][0]).sum::<u64>();
        assert_eq!(total, 400_000, "at rest, rings and pending hold every record once");
    }
}
