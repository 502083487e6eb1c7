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
//! A bank's `tag` packs the period it holds plus one (0: never used), the number of writers adding to it
//! and a *clearing* bit. Writers count themselves in and out, and a bank is cleared only when none is in
//! it, so an add always lands in the period it was meant for:
//!
//! - To add to period `p`: load `tag` (`Acquire`). At `p`, not being cleared, count in with a
//!   compare-and-swap that adds one writer (`Acquire`), add the deltas (`fetch_add`, `Relaxed`), and count
//!   out with a `fetch_sub` (`Release`). At a later period the bank was reused: `p` is out of the span and
//!   the deltas are dropped from this ring (`Expired`). At an earlier period with no writer in it and no
//!   clear under way, claim the bank with a compare-and-swap to *`p`, clearing* (`Acquire`: it reads the
//!   last writer's count-out, a `Release` read-modify-write that every earlier writer's count-out heads a
//!   release sequence into, so every add to the old period happens before the clear), clear the cells,
//!   and publish *`p`, one writer* (`Release`, pairing with the next writers' count-in, so no add lands
//!   before the clear); then add and count out. While writers of an earlier period are still in the bank,
//!   or a clear is under way, wait a bounded number of spins, then give up (`Busy`: the caller puts its
//!   deltas in the next period, or keeps them for later).
//! - Nothing ever takes a bank over: the period of a bank changes only under a claim with no writer in
//!   it, and nobody but the claimer changes a claimed tag. So no add is ever lost to a clear, none ever
//!   lands in a later period, and a writer may stall for any length of time anywhere.
//! - Readers take banks whose tag holds a period in their range and is not being cleared, at any moment: a
//!   bank being added to reads as some mix of before and after, which bounds a window's error to the
//!   deltas in flight at that instant.
//!
//! What a dead writer leaves (a process killed inside an add, in a state file shared by processes): its
//! count never goes out, or its claim is never published, so the bank keeps its period for good. Its
//! later periods then go `Busy`, and the flush that met it puts their deltas in the next period whose bank
//! is free (`WindowRings`: a period late, none lost while fewer than four banks in a row are kept), and
//! `check` reports the bank. It takes a kill inside the microsecond or so of a flush.
//!
//! All-zero is the valid empty ring.

use crate::sync::atomic::{AtomicU64, Ordering};

/// How long a writer waits for other writers to leave a bank, or for a clear to finish, before giving
/// up.
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
    /// Writers of an earlier period are still in the bank, or another writer is clearing it, and did not
    /// finish within the wait.
    Busy,
}

/// The tag's clearing bit.
const CLEARING: u64 = 1;
/// One writer in the tag's writer count, which takes the bits above the clearing bit.
const WRITER: u64 = 1 << 1;
/// Bits of the writer count: more writers than that in one bank at once wait for one to leave.
const WRITER_BITS: u32 = 16;
/// The tag's writer count, in place.
const WRITERS: u64 = ((1 << WRITER_BITS) - 1) * WRITER;
/// Where the period (plus one) starts.
const PERIOD_SHIFT: u32 = 1 + WRITER_BITS;

/// The tag of a bank holding `period`, with no writer in it and no clear under way.
pub(crate) const fn held(period: u64) -> u64 {
    period.wrapping_add(1) << PERIOD_SHIFT
}

/// The period a tag holds or is being cleared for; `None` for a bank never used.
const fn period_of(tag: u64) -> Option<u64> {
    (tag >> PERIOD_SHIFT).checked_sub(1)
}

/// The writers a tag counts.
const fn writers_of(tag: u64) -> u64 {
    (tag & WRITERS) / WRITER
}

/// Whether a tag has no writer in it and no clear under way: a bank that may be claimed for a later period.
const fn idle(tag: u64) -> bool {
    tag & (WRITERS | CLEARING) == 0
}

/// One bank's tag, with the count-in, claim-and-clear protocol of the module docs.
#[repr(transparent)]
pub(crate) struct PeriodTag(AtomicU64);

/// A writer counted into a bank; counts out when dropped.
pub(crate) struct CountedIn<'a>(&'a AtomicU64);

impl Drop for CountedIn<'_> {
    fn drop(&mut self) {
        // Nobody changes the period while a writer is in, so this takes out exactly the writer put in.
        self.0.fetch_sub(WRITER, Ordering::Release);
    }
}

impl PeriodTag {
    /// The period the bank holds, if it holds one and is not being cleared.
    pub(crate) fn period(&self) -> Option<u64> {
        let tag = self.0.load(Ordering::Acquire);
        if tag & CLEARING == 0 { period_of(tag) } else { None }
    }

    /// Counts a writer of `period` into the bank, clearing it with `clear` first if it held an earlier
    /// period; waits at most `spins` spins for others to leave it or finish clearing.
    pub(crate) fn count_in(&self, period: u64, clear: impl FnOnce(), spins: usize) -> Result<CountedIn<'_>, Miss> {
        let open = held(period);
        let mut clear = Some(clear);
        for _ in 0..=spins {
            let tag = self.0.load(Ordering::Acquire);
            let at = tag & !(WRITERS | CLEARING);
            if at > open {
                return Err(Miss::Expired);
            }
            let free = if at == open {
                tag & CLEARING == 0 && tag & WRITERS != WRITERS
            } else {
                idle(tag)
            };
            if !free {
                crate::sync::hint::spin_loop();
                continue;
            }
            if at == open {
                if self
                    .0
                    .compare_exchange(tag, tag + WRITER, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return Ok(CountedIn(&self.0));
                }
            } else {
                // Publish and count in at once. `clear` runs only if the claim is won (once: then we return).
                let clear_once = || {
                    if let Some(clear) = clear.take() {
                        clear();
                    }
                };
                if self.claim_and_clear(tag, open, clear_once, open + WRITER) {
                    return Ok(CountedIn(&self.0));
                }
            }
        }
        Err(Miss::Busy)
    }

    /// Clears the bank for `period` if it held an earlier period and nobody is in it or clearing it, without
    /// waiting (a bank still busy is cleared by the period's first writer instead).
    pub(crate) fn prepare(&self, period: u64, clear: impl FnOnce()) {
        let open = held(period);
        let tag = self.0.load(Ordering::Relaxed);
        if tag & !(WRITERS | CLEARING) < open && idle(tag) {
            self.claim_and_clear(tag, open, clear, open);
        }
    }

    /// The claim of the module docs: from `seen` (a tag of an earlier period, [`idle`]) to *`open`,
    /// clearing* (`Acquire`, after every writer's count-out), `clear`, then `publish` (`open`, with or
    /// without the claimer counted in; `Release`, before any writer's count-in). Only the claimer changes
    /// a claimed tag, so the publication is a plain store. False, with nothing done, if the tag moved on.
    fn claim_and_clear(&self, seen: u64, open: u64, clear: impl FnOnce(), publish: u64) -> bool {
        if self
            .0
            .compare_exchange(seen, open | CLEARING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        clear();
        self.0.store(publish, Ordering::Release);
        true
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
    /// Writers adding to it (or killed while they did).
    pub(crate) writers: u64,
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
        let counted_in = bank.tag.count_in(period, || bank.cells.clear(), CLEAR_SPINS)?;
        add(&bank.cells);
        drop(counted_in);
        let ahead = period + ENTRIES as u64;
        let next = self.bank(ahead);
        next.tag.prepare(ahead, || next.cells.clear());
        Ok(())
    }

    /// Leaves a writer counted into the bank of `period` for good, as a writer killed inside its add does.
    #[cfg(test)]
    pub(crate) fn strand_writer(&self, period: u64) {
        let bank = self.bank(period);
        let counted_in = bank.tag.count_in(period, || bank.cells.clear(), 0);
        std::mem::forget(counted_in.expect("the bank is free"));
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
                        period: period_of(raw),
                        clearing: raw & CLEARING != 0,
                        writers: writers_of(raw),
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
    fn a_writer_in_a_bank_keeps_it_from_being_cleared_for_as_long_as_it_stays() {
        let ring = ring();
        let bank = ring.bank(3);
        let stalled = bank.tag.count_in(3, || bank.cells.clear(), 0).unwrap();
        assert_eq!(
            add(&ring, 3 + 14, &[(0, 2)]),
            Err(Miss::Busy),
            "a later period waits, then gives up"
        );
        bank.cells.0[0].fetch_add(1, Ordering::Relaxed); // the stalled writer's add, however late
        drop(stalled);
        assert_eq!(window(&ring, 3, 3), [1, 0, 0], "it landed in its own period");
        add(&ring, 3 + 14, &[(0, 2)]).unwrap();
        assert_eq!(window(&ring, 0, 20), [2, 0, 0], "cleared once the writer left");
    }

    #[test]
    fn a_dead_writer_or_clearer_keeps_its_bank_and_loses_nothing_already_counted() {
        let ring = ring();
        add(&ring, 3, &[(0, 5)]).unwrap();
        let bank = ring.bank(3);
        bank.tag.0.fetch_add(WRITER, Ordering::Relaxed); // a writer killed inside its add
        add(&ring, 3, &[(0, 1)]).unwrap();
        assert_eq!(window(&ring, 3, 3), [6, 0, 0], "its own period still takes adds");
        assert_eq!(add(&ring, 3 + 14, &[(0, 1)]), Err(Miss::Busy), "never taken over");
        assert_eq!(window(&ring, 3, 3), [6, 0, 0]);

        let bank = ring.bank(4);
        bank.tag.0.store(held(4) | CLEARING, Ordering::Relaxed); // a clearer killed mid-clear
        assert_eq!(
            add(&ring, 4, &[(0, 1)]),
            Err(Miss::Busy),
            "its own period waits, then gives up"
        );
        assert_eq!(
            add(&ring, 4 + 14, &[(0, 1)]),
            Err(Miss::Busy),
            "and so does a later one"
        );
        assert_eq!(window(&ring, 0, 30), [6, 0, 0], "a bank being cleared is never read");
        let tags = ring.tags();
        let dead = |entry: usize| tags.iter().find(|tag| tag.entry == entry && tag.period.is_some());
        assert_eq!(dead(3).map(|tag| (tag.writers, tag.clearing)), Some((1, false)));
        assert_eq!(dead(4).map(|tag| (tag.writers, tag.clearing)), Some((0, true)));
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
                    // As `visit` reads, on the one bank period 4 can be in.
                    let bank = ring.bank(4);
                    let seen = (bank.tag.period() == Some(4)).then(|| bank.cells.0[0].load(Ordering::Relaxed));
                    if let Some(seen) = seen {
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

    /// Period 0 counted 5 and a writer adds 1 more to it while another meets period 4, which needs the
    /// same bank: whatever the interleaving, period 0's counts never show under period 4, period 4 holds
    /// exactly its own add once it took the bank, and until then period 0 holds every add made to it.
    #[test]
    fn loom_a_writer_of_an_older_period_is_never_cleared_under() {
        model(2, || {
            let ring = ring();
            ring.add(0, |cells| {
                cells.0[0].fetch_add(5, Ordering::Relaxed);
            })
            .expect("an empty ring takes any period");
            let [old, new]: [Option<u64>; 2] = run_threads(vec![writer(&ring, 0), writer(&ring, 4)])
                .try_into()
                .expect("two threads");
            match (new, held(&ring, 4), held(&ring, 0)) {
                (Some(1), Some(1), None) => {}
                (None, None, Some(held)) => assert_eq!(held, 5 + old.unwrap_or(0), "period 0 kept its adds"),
                other => panic!("period 4 added, held, and period 0 held: {other:?}"),
            }
        });
    }
}
