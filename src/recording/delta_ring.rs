//! Rings of per-period deltas: what every writer counted in each second (or 10 s, or 5 min), added up by
//! the writers themselves, so that a rolling window is the sum of the periods it covers and nothing ever
//! has to sum every writer's cells at once.
//!
//! # Layout
//!
//! A ring of `ENTRIES` entries keeps the last `ENTRIES` periods, the current one included. Each entry has
//! two banks; period `p` lives in entry `p % ENTRIES`, bank
//! `(p / ENTRIES) % 2`. The other bank of the same entry last held period `p - ENTRIES`, which is already
//! out of the span, so it can be cleared for `p + ENTRIES` at leisure: whoever adds to period `p` first
//! *prepares* the bank of `p + ENTRIES`. Writers of a period therefore find its bank cleared in advance and
//! only add, unless the ring sat idle for a whole span, in which case the first of them clears it.
//!
//! # Protocol (one bank)
//!
//! `tag` is 0 for a bank never used, `hold(p) = (p + 1) << 1` while the bank holds period `p`, and
//! `hold(p) | 1` while one thread clears it for `p`:
//!
//! - To add to period `p`: load `tag` (`Acquire`). At `hold(p)`, add the deltas (`fetch_add`, `Relaxed`).
//!   At a later period (held or being cleared), the bank was reused: `p` is out of the span and the
//!   deltas are dropped from this ring (`Expired`). At an earlier period, claim the bank with a
//!   compare-and-swap to `hold(p) | 1`, clear the cells, and publish with a compare-and-swap to `hold(p)`
//!   (`Release`, pairing with the adders' `Acquire`, so no add lands before the clear). While another
//!   thread clears the bank for `p`, wait a bounded number of spins, then give up (`Busy`: the caller keeps
//!   its deltas and tries again later).
//! - A clear claimed for an earlier period and not finished within the wait (its thread died or stalls) is
//!   taken over by the next claimer; the final compare-and-swap keeps a stalled clearer from publishing
//!   over the new holder.
//! - Readers take banks whose tag is `hold(p)` with `p` in their range, at any moment: a bank being
//!   cleared or added to reads as some mix of before and after, which bounds a window's error to the
//!   deltas in flight at that instant; nothing is ever counted into the wrong period.
//!
//! What the protocol does not cover, by design: a thread descheduled between loading `tag` and adding
//! for the *whole span* of the ring (5 minutes for the finest) adds into a bank since reused for a later
//! period. Likewise a clearer stalled (not dead) between its claim and its publication for longer than
//! the wait: once a writer of a later period took the bank over and added, the stalled clear, resuming,
//! zeroes those adds (its final compare-and-swap then fails). It needs a bank left idle for a whole span,
//! a flush of a second older than the span meeting a current one on it, and that preemption; it costs one
//! period's deltas of one ring, never the totals.
//!
//! All-zero is the valid empty ring.

use crate::sync::atomic::{AtomicU64, Ordering};

/// How long a writer waits for another to finish clearing a bank before giving up.
#[cfg(not(loom))]
const CLEAR_SPINS: usize = 1 << 12;
/// A few spins in a model: loom's spin hint is a yield to another thread, and each is another branch.
#[cfg(loom)]
const CLEAR_SPINS: usize = 2;

/// Why deltas could not be added to a period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Miss {
    /// The period is older than the ring's span: the deltas belong to no window this ring serves.
    Expired,
    /// Another writer is clearing the bank and did not finish within the wait.
    Busy,
}

const fn hold(period: u64) -> u64 {
    period.wrapping_add(1) << 1
}

/// One bank's tag, with the claim-and-clear protocol of the module docs.
#[repr(transparent)]
pub(crate) struct PeriodTag(AtomicU64);

impl PeriodTag {
    /// The period the bank holds, if it holds one and is not being cleared.
    pub(crate) fn period(&self) -> Option<u64> {
        let tag = self.0.load(Ordering::Acquire);
        (tag != 0 && tag & 1 == 0).then(|| (tag >> 1) - 1)
    }

    /// Makes the bank hold `period`, clearing it with `clear` first if it held an earlier one.
    pub(crate) fn hold(&self, period: u64, clear: impl FnOnce()) -> Result<(), Miss> {
        let want = hold(period);
        let mut stalled_claim = None;
        for spin in 0..=CLEAR_SPINS {
            let tag = self.0.load(Ordering::Acquire);
            if tag == want {
                return Ok(());
            }
            if tag >> 1 > want >> 1 {
                return Err(Miss::Expired);
            }
            let clearing = tag & 1 == 1;
            // A clear for this very period in progress: wait for it. A clear for an earlier period that
            // outlasts the wait is taken over (its thread died or stalls).
            let take_over = clearing && tag >> 1 < want >> 1 && stalled_claim == Some(tag) && spin == CLEAR_SPINS;
            if clearing && !take_over {
                if spin == 0 || stalled_claim != Some(tag) {
                    stalled_claim = Some(tag);
                }
                crate::sync::hint::spin_loop();
                continue;
            }
            if self
                .0
                .compare_exchange(tag, want | 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                clear();
                return match self
                    .0
                    .compare_exchange(want | 1, want, Ordering::Release, Ordering::Relaxed)
                {
                    Ok(_) => Ok(()),
                    Err(_) => Err(Miss::Busy),
                };
            }
        }
        Err(Miss::Busy)
    }
}

/// One bank's tag as stored, decoded but unchecked (for `check`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct BankTag {
    /// The address of the tag, to say where it lives.
    pub(crate) address: usize,
    /// Its entry and bank in the ring.
    pub(crate) entry: usize,
    pub(crate) bank: usize,
    /// The word as stored.
    pub(crate) raw: u64,
    /// The period it holds or is being cleared for; `None` for a bank never used.
    pub(crate) period: Option<u64>,
    /// Whether a clear is in progress (or was cut short).
    pub(crate) clearing: bool,
}

/// What a bank holds for one period, and how it is emptied for the next.
///
/// # Safety
/// All-zero bytes must be a valid, empty value (the ring lives in zeroed memory).
pub(crate) unsafe trait BankCells {
    /// Empties the cells (only their owner's `clear` runs, under the bank's claim).
    fn clear(&self);
}

/// `N` counters.
#[repr(C)]
pub(crate) struct Counters<const N: usize>(pub(crate) [AtomicU64; N]);

// SAFETY: atomics only; zero is "nothing counted".
unsafe impl<const N: usize> BankCells for Counters<N> {
    fn clear(&self) {
        for cell in &self.0 {
            cell.store(0, Ordering::Relaxed);
        }
    }
}

/// One period's bank: its tag and cells.
#[repr(C)]
pub(crate) struct Bank<C> {
    tag: PeriodTag,
    cells: C,
}

/// A ring of `ENTRIES` two-bank entries (see the module docs).
#[repr(C)]
pub(crate) struct DeltaRing<const ENTRIES: usize, C> {
    entries: [[Bank<C>; 2]; ENTRIES],
}

impl<const ENTRIES: usize, C: BankCells> DeltaRing<ENTRIES, C> {
    /// An empty ring of `empty()` cells, on the heap (the crate's live in zeroed region memory; loom's
    /// atomics cannot be zeroed).
    #[cfg(all(test, loom))]
    pub(crate) fn new(empty: impl Fn() -> C) -> Self {
        Self {
            entries: std::array::from_fn(|_| {
                std::array::from_fn(|_| Bank {
                    tag: PeriodTag(AtomicU64::new(0)),
                    cells: empty(),
                })
            }),
        }
    }

    /// Periods a window can reach back in this ring, the current one included.
    #[cfg(test)]
    pub(crate) const SPAN: u64 = ENTRIES as u64;

    fn bank(&self, period: u64) -> &Bank<C> {
        let entry = &self.entries[(period % ENTRIES as u64) as usize];
        &entry[((period / ENTRIES as u64) % 2) as usize]
    }

    /// Lets `add` add to the cells of `period`, and prepares the bank of `period + ENTRIES` so that the
    /// writers of that period find it cleared.
    pub(crate) fn add(&self, period: u64, add: impl FnOnce(&C)) -> Result<(), Miss> {
        let bank = self.bank(period);
        bank.tag.hold(period, || bank.cells.clear())?;
        add(&bank.cells);
        let ahead = period + ENTRIES as u64;
        let next = self.bank(ahead);
        if next.tag.period().is_none_or(|held| held < ahead) {
            let _ = next.tag.hold(ahead, || next.cells.clear());
        }
        Ok(())
    }

    /// Every bank's tag as stored, entry by entry, two banks each (for `check`).
    pub(crate) fn tags(&self) -> Vec<BankTag> {
        self.entries
            .iter()
            .enumerate()
            .flat_map(|(entry, banks)| {
                banks.iter().enumerate().map(move |(bank, held)| {
                    let raw = held.tag.0.load(Ordering::Relaxed);
                    BankTag {
                        address: &held.tag as *const PeriodTag as usize,
                        entry,
                        bank,
                        raw,
                        period: (raw != 0).then(|| (raw >> 1).wrapping_sub(1)),
                        clearing: raw & 1 == 1,
                    }
                })
            })
            .collect()
    }

    /// Whether `period` belongs in bank `bank` of entry `entry` (see the module docs).
    pub(crate) fn is_home_of(entry: usize, bank: usize, period: u64) -> bool {
        period % ENTRIES as u64 == entry as u64 && (period / ENTRIES as u64) % 2 == bank as u64
    }

    /// Calls `visit` with every period held in `from..=to` and its cells.
    pub(crate) fn visit(&self, from: u64, to: u64, mut visit: impl FnMut(u64, &C)) {
        for bank in self.entries.iter().flatten() {
            if let Some(period) = bank.tag.period().filter(|period| (from..=to).contains(period)) {
                visit(period, &bank.cells);
            }
        }
    }
}

#[cfg(test)]
impl<const ENTRIES: usize, const N: usize> DeltaRing<ENTRIES, Counters<N>> {
    /// Adds the counters of every period in `from..=to` to `sums` (which has `N` entries or fewer).
    pub(crate) fn sum(&self, from: u64, to: u64, sums: &mut [u64]) {
        self.visit(from, to, |_, cells| {
            for (sum, cell) in sums.iter_mut().zip(&cells.0) {
                *sum = sum.wrapping_add(cell.load(Ordering::Relaxed));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::backing::zeroed_box;

    type Ring = DeltaRing<7, Counters<3>>;

    fn ring() -> Box<Ring> {
        // SAFETY: tags and counters are atomics; all-zero is the empty ring.
        unsafe { zeroed_box() }
    }

    fn add(ring: &Ring, period: u64, deltas: &[(usize, u64)]) -> Result<(), Miss> {
        ring.add(period, |cells| {
            for (index, amount) in deltas {
                cells.0[*index].fetch_add(*amount, Ordering::Relaxed);
            }
        })
    }

    fn window(ring: &Ring, from: u64, to: u64) -> [u64; 3] {
        let mut sums = [0; 3];
        ring.sum(from, to, &mut sums);
        sums
    }

    #[test]
    fn periods_add_up_and_roll_out_of_the_span() {
        let ring = ring();
        for period in 100..120u64 {
            add(&ring, period, &[(0, 1), (2, period)]).unwrap();
        }
        assert_eq!(window(&ring, 119, 119), [1, 0, 119]);
        assert_eq!(window(&ring, 114, 119), [6, 0, (114..120).sum()]);
        assert_eq!(Ring::SPAN, 7);
        assert_eq!(
            window(&ring, 100, 119),
            [7, 0, (113..120).sum()],
            "only the span is kept"
        );
        assert_eq!(add(&ring, 105, &[(0, 1)]), Err(Miss::Expired));
        add(&ring, 118, &[(1, 5)]).unwrap();
        assert_eq!(
            window(&ring, 118, 118),
            [1, 5, 118],
            "late deltas still land in their period"
        );
    }

    #[test]
    fn an_idle_ring_clears_stale_banks_on_first_use() {
        let ring = ring();
        add(&ring, 10, &[(0, 4)]).unwrap();
        add(&ring, 10 + 14, &[(0, 1)]).unwrap();
        assert_eq!(
            window(&ring, 0, 100),
            [1, 0, 0],
            "the bank of period 10 was reused after two spans"
        );
    }

    #[test]
    fn banks_are_prepared_a_ring_ahead() {
        let ring = ring();
        add(&ring, 3, &[(0, 1)]).unwrap();
        assert_eq!(ring.bank(10).tag.period(), Some(10));
        assert_eq!(window(&ring, 10, 10), [0, 0, 0], "prepared banks hold nothing yet");
    }

    #[test]
    fn a_stalled_clear_of_an_older_period_is_taken_over() {
        let ring = ring();
        let bank = ring.bank(3);
        bank.tag.0.store(hold(3) | 1, Ordering::Relaxed); // a clearer died mid-clear for period 3
        assert_eq!(
            add(&ring, 3, &[(0, 1)]),
            Err(Miss::Busy),
            "its own period: wait, then give up"
        );
        add(&ring, 3 + 14, &[(0, 2)]).unwrap();
        assert_eq!(window(&ring, 17, 17), [2, 0, 0]);
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let ring = ring();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for period in 0..1_000u64 {
                        // Threads drift apart: a laggard's old periods may have left the span.
                        while add(&ring, period, &[(0, 1), (1, 2)]) == Err(Miss::Busy) {}
                    }
                });
            }
        });
        assert_eq!(window(&ring, 994, 999), [24, 48, 0]);
    }
}

/// Model checks of the protocol (`RUSTFLAGS="--cfg loom" cargo test --release --lib loom`): no add is
/// lost or lands before its bank's clear, and nothing is read under the wrong period.
#[cfg(all(test, loom))]
mod loom_tests {
    use loom::sync::Arc;

    use super::*;
    use crate::sync::{ModelThread, model, run_threads};

    /// Two entries: period `p` and `p + 4` share a bank, `p + 2` is the other bank of the entry.
    type Ring = DeltaRing<2, Counters<1>>;

    fn ring() -> Arc<Ring> {
        Arc::new(DeltaRing::new(|| Counters([AtomicU64::new(0)])))
    }

    /// Adds 1 to `period`, trying again (at most twice) while another writer's clear keeps the bank
    /// `Busy`; whether it was added.
    fn add_one(ring: &Ring, period: u64) -> bool {
        for _ in 0..3 {
            match ring.add(period, |cells| {
                cells.0[0].fetch_add(1, Ordering::Relaxed);
            }) {
                Ok(()) => return true,
                Err(Miss::Busy) => continue,
                Err(Miss::Expired) => return false,
            }
        }
        false
    }

    fn held(ring: &Ring, period: u64) -> Option<u64> {
        let mut held = None;
        ring.visit(period, period, |_, cells| {
            held = Some(cells.0[0].load(Ordering::Relaxed))
        });
        held
    }

    /// A thread that adds 1 to `period`; whether it was added.
    fn writer(ring: &Arc<Ring>, period: u64) -> ModelThread<Option<u64>> {
        let ring = Arc::clone(ring);
        Box::new(move || add_one(&ring, period).then_some(1))
    }

    /// Period 0 counted 5; two writers meet period 4 (its bank must be cleared first, and each also
    /// prepares period 6's) while a reader looks: the reader never sees period 0's counts under period 4,
    /// and at the end period 4 holds exactly the adds that succeeded.
    #[test]
    fn loom_concurrent_writers_clear_once_and_lose_no_add() {
        model(2, || {
            let ring = ring();
            ring.add(0, |cells| {
                cells.0[0].fetch_add(5, Ordering::Relaxed);
            })
            .expect("an empty ring takes any period");
            let reader: ModelThread<Option<u64>> = {
                let ring = Arc::clone(&ring);
                Box::new(move || {
                    if let Some(seen) = held(&ring, 4) {
                        assert!(seen <= 2, "period 0's counts read as period 4's: {seen}");
                    }
                    None
                })
            };
            let added: u64 = run_threads(vec![writer(&ring, 4), writer(&ring, 4), reader])
                .into_iter()
                .flatten()
                .sum();
            assert!(added >= 1, "one writer cleared the bank and added");
            assert_eq!(held(&ring, 4), Some(added), "every successful add counted once");
            assert_eq!(held(&ring, 0), None, "period 0 left the ring");
            assert_eq!(ring.bank(6).tag.period(), Some(6), "period 6's bank prepared");
        });
    }

    /// A clearer died mid-clear of period 0's bank (its claim left, its cells half cleared); two writers
    /// meet period 4, which needs the same bank: one takes the dead claim over, and nothing is lost.
    #[test]
    fn loom_a_dead_clear_is_taken_over() {
        model(2, || {
            let ring = ring();
            let bank = ring.bank(4);
            bank.tag.0.store(hold(0) | 1, Ordering::Relaxed);
            bank.cells.0[0].store(7, Ordering::Relaxed);
            let added: u64 = run_threads(vec![writer(&ring, 4), writer(&ring, 4)])
                .into_iter()
                .flatten()
                .sum();
            assert!(added >= 1, "the dead claim was taken over");
            assert_eq!(held(&ring, 4), Some(added), "the dead clearer's cells were cleared");
        });
    }
}
