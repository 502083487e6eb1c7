//! Exemplars: the latest traced record of every classic histogram bucket of every `(operation, outcome)`
//! series, with its label set (a trace id, say), its duration and its wall-clock time, kept beside the
//! counts and never in their way.
//!
//! A plain record never comes here. `Monitor::record_with_exemplar` counts its record like any other,
//! then offers the exemplar to its bucket's `Slot`; the slot keeps the latest one. Slots are fixed-size
//! (the label set inline, at most [`LABEL_BYTES`]), in one zeroed table per monitor (`ExemplarTable`:
//! `MAX_OPERATIONS x OUTCOMES x (MAX_BUCKETS + 1)` slots, about 1.2 MB of address space whose pages stay
//! unmapped until an exemplar lands in them), so the exemplar path allocates nothing and the memory is
//! bounded. They live in process memory only: a state file shares counts, not exemplars.
//!
//! # Protocol: a try-lock seqlock per slot
//!
//! Each slot has a sequence number `seq`: even while stable, odd while a writer writes it.
//!
//! - A writer loads `seq`; if it is odd another writer holds the slot and this one **gives up** (its record
//!   counted already; only the exemplar is dropped, and the holder's is as recent). Otherwise it claims
//!   the slot by a compare-exchange from `s` to `s + 1` (`Acquire`) and gives up if that fails. So a
//!   writer never waits: it writes or leaves at once. Holding the slot, it fences (`Release`), stores the
//!   cells (`Relaxed`: the epoch, the reset generation, the duration, the time, the length, the label
//!   words), then publishes with `seq = s + 2` (`Release`). Nothing between the claim and the release can
//!   panic or return early (atomic stores of values computed before the claim), so a slot is never left
//!   odd by a live thread; the table is process-local, so no other process can die holding one. A
//!   `fork()` can cut a writer off mid-write: the child's fork handler releases such slots as forgotten
//!   (`ExemplarTable::release_held_in_child`).
//! - A reader loads `seq` (`Acquire`); odd means a write is under way and it tries again (a bounded number
//!   of times, `READ_ATTEMPTS`, then reports no exemplar for that bucket this time). It copies the cells
//!   (`Relaxed`), fences (`Acquire`), and keeps the copy only if `seq` still holds the value it started
//!   with. A writer whose stores the reader saw any of had made `seq` odd before its `Release` fence, so
//!   the reader's second load sees that change (fence-to-fence synchronisation): an accepted copy is one
//!   writer's whole exemplar, never a mix of two. Readers never write, so they never hold a writer up.
//!
//! # Forgetting
//!
//! A reset must forget exemplars without racing the writers: the table's `epoch` goes up by one (and the
//! reset's baseline generation changes), and readers keep only slots stamped with the epoch and
//! generation of now. A writer that read the epoch before the reset stamps the old one, so its exemplar
//! is forgotten too. Readers also check that an exemplar's duration falls in the bucket it is shown on,
//! under the bounds in force.
//!
//! `loom_tests` model-check one slot (`RUSTFLAGS="--cfg loom" cargo test --release --lib loom`).

use crate::sync::atomic::{AtomicU64, Ordering, fence};

use crate::config::buckets::MAX_BUCKETS;
use crate::config::operations::MAX_OPERATIONS;
use crate::recording::operation::OUTCOMES;

/// The most characters (Unicode scalar values) an exemplar's label names and values hold together:
/// OpenMetrics' limit.
pub const MAX_EXEMPLAR_CHARS: usize = 128;

/// Bytes a slot keeps for a label set: every label as `name=value`, labels separated by `0xFF` (never part
/// of UTF-8). Names are ASCII of at least one byte, so 128 characters with four-byte values and the
/// separators take at most `511 - labels` bytes: 512 always suffice.
pub const LABEL_BYTES: usize = 4 * MAX_EXEMPLAR_CHARS;

/// Words of a slot's label bytes.
const LABEL_WORDS: usize = LABEL_BYTES / 8;

/// Separates two labels in a slot.
const SEPARATOR: u8 = 0xFF;

/// Reads of one slot tried before a reader reports it empty for now.
#[cfg(not(loom))]
const READ_ATTEMPTS: usize = 64;
/// A few in a model: each is another branch for loom to explore.
#[cfg(loom)]
const READ_ATTEMPTS: usize = 3;

/// Slots per series: one per finite bucket and one for `+Inf`.
pub(crate) const BUCKET_SLOTS: usize = MAX_BUCKETS + 1;

/// The most bytes of refused input an [`ExemplarError`] quotes.
const QUOTED_BYTES: usize = 64;

/// A short quote of refused input, kept inline so that refusing allocates nothing (the C ABI promises
/// that of its records): at most 64 bytes, cut at a character boundary.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    bytes: [u8; QUOTED_BYTES],
    len: u8,
}

impl Quoted {
    fn new(text: &str) -> Self {
        let len = text.floor_char_boundary(QUOTED_BYTES);
        let mut bytes = [0; QUOTED_BYTES];
        bytes[..len].copy_from_slice(&text.as_bytes()[..len]);
        Self { bytes, len: len as u8 }
    }

    /// The quoted text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl std::fmt::Debug for Quoted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Why a label set cannot be an exemplar's. Allocation-free: quoted input is cut to 64 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExemplarError {
    /// Names and values hold more than [`MAX_EXEMPLAR_CHARS`] characters together.
    TooLong {
        /// How many they hold.
        chars: usize,
    },
    /// A name is not `[a-zA-Z_][a-zA-Z0-9_]*`, or begins with the reserved `__`.
    BadName(Quoted),
    /// Two labels have the same name.
    DuplicateName(Quoted),
    /// A line of the text form (`name=value` lines) has no `=`, or is empty.
    Malformed(Quoted),
}

impl std::fmt::Display for ExemplarError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLong { chars } => write!(
                f,
                "exemplar labels hold {chars} characters in their names and values, more than OpenMetrics' \
                 {MAX_EXEMPLAR_CHARS}"
            ),
            Self::BadName(name) => write!(
                f,
                "exemplar label name \"{}\" is not [a-zA-Z_][a-zA-Z0-9_]* (or begins with the reserved __)",
                name.as_str().escape_debug()
            ),
            Self::DuplicateName(name) => {
                write!(f, "exemplar label \"{}\" is given twice", name.as_str().escape_debug())
            }
            Self::Malformed(line) => write!(
                f,
                "exemplar label line \"{}\" is not name=value (lines separated by \\n)",
                line.as_str().escape_debug()
            ),
        }
    }
}

impl std::error::Error for ExemplarError {}

/// Whether `name` is a label name an exemplar may carry.
fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    first_ok && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') && !name.starts_with("__")
}

/// Checks a label set: valid, distinct names, at most [`MAX_EXEMPLAR_CHARS`] characters in all. `pairs`
/// is walked more than once (to find duplicates without allocating), hence `Clone`. An empty set is
/// valid: the exemplar then carries its value and time alone.
pub(crate) fn check<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)> + Clone) -> Result<(), ExemplarError> {
    let mut chars = 0;
    for (index, (name, value)) in pairs.clone().enumerate() {
        if !valid_name(name) {
            return Err(ExemplarError::BadName(Quoted::new(name)));
        }
        if pairs.clone().take(index).any(|(earlier, _)| earlier == name) {
            return Err(ExemplarError::DuplicateName(Quoted::new(name)));
        }
        chars += name.len() + value.chars().count();
        if chars > MAX_EXEMPLAR_CHARS {
            // Count the rest too, for the message (bounded by the input the caller holds anyway).
            let total = pairs.map(|(n, v)| n.len() + v.chars().count()).sum();
            return Err(ExemplarError::TooLong { chars: total });
        }
    }
    Ok(())
}

/// The labels of the text form the C ABI takes: `name=value` lines separated by `\n` (one `\n` after the
/// last is allowed; an empty text is no labels). A value runs to the end of its line, so it may hold `=`
/// and `,` but not a line feed. Checked whole: either every line is `name=value` and the set is valid, or
/// an error.
pub(crate) fn parse_text(text: &str) -> Result<TextLabels<'_>, ExemplarError> {
    if text.is_empty() {
        return Ok(TextLabels { rest: "" });
    }
    let body = text.strip_suffix('\n').unwrap_or(text);
    let labels = TextLabels { rest: body };
    for line in body.split('\n') {
        if !line.contains('=') {
            return Err(ExemplarError::Malformed(Quoted::new(line)));
        }
    }
    check(labels.clone())?;
    Ok(labels)
}

/// The labels of a text form checked by [`parse_text`], as `(name, value)` pairs.
#[derive(Clone, Debug)]
pub(crate) struct TextLabels<'a> {
    rest: &'a str,
}

impl<'a> Iterator for TextLabels<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let (line, rest) = self.rest.split_once('\n').unwrap_or((self.rest, ""));
        self.rest = rest;
        Some(line.split_once('=').unwrap_or((line, "")))
    }
}

/// A label set in a slot's form, built on the stack before the slot is claimed.
pub(crate) struct Encoded {
    words: [u64; LABEL_WORDS],
    len: usize,
}

impl Encoded {
    /// `pairs`, checked by [`check`] (longer sets are cut at [`LABEL_BYTES`], which a checked one never
    /// reaches).
    pub(crate) fn new<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Self {
        let mut bytes = [0u8; LABEL_BYTES];
        let mut len = 0;
        let mut push = |part: &[u8]| {
            let take = part.len().min(LABEL_BYTES - len);
            bytes[len..len + take].copy_from_slice(&part[..take]);
            len += take;
        };
        for (index, (name, value)) in pairs.enumerate() {
            if index > 0 {
                push(&[SEPARATOR]);
            }
            push(name.as_bytes());
            push(b"=");
            push(value.as_bytes());
        }
        let mut words = [0u64; LABEL_WORDS];
        for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut le = [0u8; 8];
            le.copy_from_slice(chunk);
            *word = u64::from_le_bytes(le);
        }
        Self { words, len }
    }
}

/// The latest exemplar of a bucket, as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar {
    /// Its labels, `(name, value)`, in the order given.
    pub labels: Vec<(String, String)>,
    /// The recorded duration in nanoseconds (after the ceiling every duration gets).
    pub duration_ns: u64,
    /// When it was recorded: nanoseconds since the Unix epoch (wall clock).
    pub unix_nanos: u64,
}

impl Exemplar {
    /// The value an exposition shows: the duration in seconds.
    pub fn value_seconds(&self) -> f64 {
        self.duration_ns as f64 / 1e9
    }
}

/// One bucket's latest exemplar (see the module docs for the protocol).
#[repr(C)]
struct Slot {
    /// Even: stable; odd: a writer holds it. 0: never written.
    seq: AtomicU64,
    /// The table's epoch when written.
    epoch: AtomicU64,
    /// The reset generation (the region's baseline generation) when written.
    generation: AtomicU64,
    duration_ns: AtomicU64,
    unix_nanos: AtomicU64,
    len: AtomicU64,
    words: [AtomicU64; LABEL_WORDS],
}

/// What a writer puts in a slot.
pub(crate) struct Offer<'a> {
    /// The operation's index, below `MAX_OPERATIONS`.
    pub(crate) operation: usize,
    /// The outcome's index.
    pub(crate) outcome: usize,
    /// The classic bucket the record counted in (the bound count for `+Inf`).
    pub(crate) bucket: usize,
    pub(crate) duration_ns: u64,
    pub(crate) unix_nanos: u64,
    /// The reset generation now.
    pub(crate) generation: u64,
    pub(crate) labels: &'a Encoded,
}

/// Every slot of a monitor, and the epoch a reset moves on. All-zero is empty.
#[repr(C)]
pub(crate) struct ExemplarTable {
    epoch: AtomicU64,
    slots: [[[Slot; BUCKET_SLOTS]; OUTCOMES]; MAX_OPERATIONS],
}

impl ExemplarTable {
    /// An empty table on the heap, allocated zeroed (untouched pages stay unmapped).
    pub(crate) fn boxed() -> Box<Self> {
        // SAFETY: atomics only; all-zero is the empty table.
        unsafe { crate::recording::backing::zeroed_box() }
    }

    /// The epoch readers keep exemplars of.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Forgets every exemplar: later reads keep only those written after this.
    pub(crate) fn forget(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// In a child after `fork()`, where only the forking thread lives: a slot a writer held at the fork
    /// (it stays odd, its writer gone) is released as forgotten (an epoch no read asks for), so later
    /// writers can use it and no reader sees its half-written cells. Reads every slot's `seq` (untouched
    /// pages stay unmapped: reading maps the zero page) and writes only held ones.
    pub(crate) fn release_held_in_child(&self) {
        for slot in self.slots.iter().flatten().flatten() {
            let seq = slot.seq.load(Ordering::Relaxed);
            if seq & 1 == 1 {
                slot.epoch.store(u64::MAX, Ordering::Relaxed);
                slot.seq.store(seq.wrapping_add(1), Ordering::Release);
            }
        }
    }

    /// Stores `offer` as its bucket's latest exemplar, unless another writer holds that slot now (then
    /// nothing happens). Never waits. Returns whether it was stored.
    pub(crate) fn offer(&self, offer: &Offer<'_>) -> bool {
        let epoch = self.epoch();
        self.slots
            .get(offer.operation)
            .and_then(|outcomes| outcomes.get(offer.outcome))
            .and_then(|buckets| buckets.get(offer.bucket))
            .is_some_and(|slot| slot.offer(epoch, offer))
    }

    /// The latest exemplar of a bucket written in `epoch` and reset `generation`, if any (and if no
    /// writer kept the slot busy through every attempt).
    pub(crate) fn read(
        &self,
        operation: usize,
        outcome: usize,
        bucket: usize,
        epoch: u64,
        generation: u64,
    ) -> Option<Exemplar> {
        self.slots
            .get(operation)?
            .get(outcome)?
            .get(bucket)?
            .read(epoch, generation)
    }
}

impl Slot {
    /// An empty slot on the heap (the crate's live in zeroed memory; loom's atomics cannot be zeroed).
    #[cfg(all(test, loom))]
    fn new() -> Self {
        let zero = || AtomicU64::new(0);
        Self {
            seq: zero(),
            epoch: zero(),
            generation: zero(),
            duration_ns: zero(),
            unix_nanos: zero(),
            len: zero(),
            words: std::array::from_fn(|_| zero()),
        }
    }

    /// The writer's side (see the module docs): stores `offer`, stamped with `epoch`, unless another
    /// writer holds the slot. Never waits.
    #[inline]
    fn offer(&self, epoch: u64, offer: &Offer<'_>) -> bool {
        let slot = self;
        let seq = slot.seq.load(Ordering::Relaxed);
        if seq & 1 == 1
            || slot
                .seq
                .compare_exchange(seq, seq.wrapping_add(1), Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return false;
        }
        fence(Ordering::Release);
        slot.epoch.store(epoch, Ordering::Relaxed);
        slot.generation.store(offer.generation, Ordering::Relaxed);
        slot.duration_ns.store(offer.duration_ns, Ordering::Relaxed);
        slot.unix_nanos.store(offer.unix_nanos, Ordering::Relaxed);
        slot.len.store(offer.labels.len as u64, Ordering::Relaxed);
        let used = offer.labels.len.div_ceil(8);
        for (cell, word) in slot.words.iter().zip(&offer.labels.words).take(used) {
            cell.store(*word, Ordering::Relaxed);
        }
        slot.seq.store(seq.wrapping_add(2), Ordering::Release);
        true
    }

    /// The reader's side (see the module docs): the exemplar written in `epoch` and reset `generation`,
    /// if the slot holds one and no writer kept it busy through every attempt.
    fn read(&self, epoch: u64, generation: u64) -> Option<Exemplar> {
        let slot = self;
        for _ in 0..READ_ATTEMPTS {
            let seq = slot.seq.load(Ordering::Acquire);
            if seq == 0 {
                return None;
            }
            if seq & 1 == 1 {
                crate::sync::hint::spin_loop();
                continue;
            }
            let stamp = (
                slot.epoch.load(Ordering::Relaxed),
                slot.generation.load(Ordering::Relaxed),
            );
            let duration_ns = slot.duration_ns.load(Ordering::Relaxed);
            let unix_nanos = slot.unix_nanos.load(Ordering::Relaxed);
            let len = (slot.len.load(Ordering::Relaxed) as usize).min(LABEL_BYTES);
            let mut bytes = [0u8; LABEL_BYTES];
            for (chunk, cell) in bytes.chunks_exact_mut(8).zip(&slot.words).take(len.div_ceil(8)) {
                chunk.copy_from_slice(&cell.load(Ordering::Relaxed).to_le_bytes());
            }
            fence(Ordering::Acquire);
            if slot.seq.load(Ordering::Relaxed) != seq {
                continue;
            }
            if stamp != (epoch, generation) {
                return None;
            }
            return Some(Exemplar {
                labels: decode(&bytes[..len]),
                duration_ns,
                unix_nanos,
            });
        }
        None
    }
}

/// A slot's label bytes as `(name, value)` pairs. The writer stored UTF-8 joined by `0xFF`; bytes that
/// are somehow not are shown replaced.
fn decode(bytes: &[u8]) -> Vec<(String, String)> {
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|b| *b == SEPARATOR)
        .map(|label| {
            let text = String::from_utf8_lossy(label);
            match text.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => (text.into_owned(), String::new()),
            }
        })
        .collect()
}

/// Where a monitor keeps its table: the process-wide monitor's in `.bss`, any other's on the heap.
pub(crate) enum ExemplarHome {
    /// The process-wide monitor's.
    Static(&'static ExemplarTable),
    /// Any other monitor's.
    Heap(Box<ExemplarTable>),
}

impl std::ops::Deref for ExemplarHome {
    type Target = ExemplarTable;

    fn deref(&self) -> &ExemplarTable {
        match self {
            Self::Static(table) => table,
            Self::Heap(table) => table,
        }
    }
}

/// Model checks of one slot (`RUSTFLAGS="--cfg loom" cargo test --release --lib loom`): writers never
/// wait (a writer that meets a held slot gives up), and a read returns one writer's whole exemplar, never a
/// mix of two.
#[cfg(all(test, loom))]
mod loom_tests {
    use loom::sync::Arc;

    use super::*;
    use crate::sync::{ModelThread, model, run_threads};

    /// Exemplar `n`: its duration, time and label all say `n`.
    fn exemplar(n: u64) -> Exemplar {
        Exemplar {
            labels: vec![("t".to_owned(), n.to_string())],
            duration_ns: n,
            unix_nanos: n,
        }
    }

    /// A writer offering exemplar `n`: whether it was stored.
    fn writer(slot: &Arc<Slot>, n: u64) -> ModelThread<Option<bool>> {
        let slot = Arc::clone(slot);
        let value = n.to_string();
        let labels = Encoded::new([("t", value.as_str())].into_iter());
        Box::new(move || {
            let offer = Offer {
                operation: 0,
                outcome: 0,
                bucket: 0,
                duration_ns: n,
                unix_nanos: n,
                generation: 0,
                labels: &labels,
            };
            Some(slot.offer(0, &offer))
        })
    }

    /// A reader of the slot: what it read is one writer's whole exemplar, 1 or 2.
    fn reader(slot: &Arc<Slot>) -> ModelThread<Option<bool>> {
        let slot = Arc::clone(slot);
        Box::new(move || {
            if let Some(read) = slot.read(0, 0) {
                assert!(
                    [exemplar(1), exemplar(2)].contains(&read),
                    "a torn exemplar read: {read:?}"
                );
            }
            None
        })
    }

    /// Exemplar 1 is in the slot; a writer offers 2 while a reader reads: the reader gets 1 or 2 whole (or
    /// nothing, if the writer held the slot through its attempts).
    #[test]
    fn loom_reads_are_whole() {
        model(2, || {
            let slot = Arc::new(Slot::new());
            assert_eq!(writer(&slot, 1)(), Some(true));
            let stored = run_threads(vec![writer(&slot, 2), reader(&slot)]);
            assert_eq!(stored[0], Some(true), "a lone writer never gives up");
            assert_eq!(slot.read(0, 0), Some(exemplar(2)));
        });
    }

    /// Two writers offer 2 and 3 together: neither waits, at least one stores, and the slot ends with one
    /// stored exemplar whole, never a mix of the two.
    #[test]
    fn loom_writers_never_wait_and_never_mix() {
        model(3, || {
            let slot = Arc::new(Slot::new());
            let stored: Vec<bool> = run_threads(vec![writer(&slot, 2), writer(&slot, 3)])
                .into_iter()
                .flatten()
                .collect();
            assert!(stored.contains(&true), "a writer stored: {stored:?}");
            let last = slot.read(0, 0).expect("the slot is free now");
            let candidates: Vec<Exemplar> = (2..=3).filter(|n| stored[*n as usize - 2]).map(exemplar).collect();
            assert!(candidates.contains(&last), "{last:?} is not a stored exemplar");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer<'a>(bucket: usize, duration_ns: u64, labels: &'a Encoded) -> Offer<'a> {
        Offer {
            operation: 1,
            outcome: 2,
            bucket,
            duration_ns,
            unix_nanos: 1_700_000_000_123_000_000,
            generation: 0,
            labels,
        }
    }

    fn pairs(labels: &[(&'static str, &'static str)]) -> Vec<(String, String)> {
        labels.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn label_sets_are_checked_by_openmetrics_rules() {
        assert_eq!(check([("trace_id", "abc"), ("span_id", "é=,\n")].into_iter()), Ok(()));
        assert_eq!(check(std::iter::empty()), Ok(()));
        assert_eq!(check([("_x9", "")].into_iter()), Ok(()));
        for bad in ["", "9a", "a-b", "__reserved", "é"] {
            assert_eq!(
                check([(bad, "v")].into_iter()),
                Err(ExemplarError::BadName(Quoted::new(bad))),
                "{bad:?}"
            );
        }
        assert_eq!(
            check([("a", "1"), ("b", "2"), ("a", "3")].into_iter()),
            Err(ExemplarError::DuplicateName(Quoted::new("a")))
        );
        let value = "é".repeat(120);
        assert_eq!(check([("trace_id", value.as_str())].into_iter()), Ok(()));
        let value = "é".repeat(121);
        assert_eq!(
            check([("trace_id", value.as_str())].into_iter()),
            Err(ExemplarError::TooLong { chars: 129 })
        );
    }

    #[test]
    fn the_text_form_is_name_value_lines() {
        let labels: Vec<_> = parse_text("trace_id=abc\nspan_id=d=e,f\n").unwrap().collect();
        assert_eq!(labels, [("trace_id", "abc"), ("span_id", "d=e,f")]);
        assert_eq!(parse_text("").unwrap().count(), 0);
        assert_eq!(parse_text("a=").unwrap().collect::<Vec<_>>(), [("a", "")]);
        for malformed in ["\n", "a=1\n\nb=2", "trace_id", "a=1\n\n"] {
            assert!(
                matches!(parse_text(malformed), Err(ExemplarError::Malformed(_))),
                "{malformed:?}"
            );
        }
        assert!(matches!(parse_text("a b=1"), Err(ExemplarError::BadName(_))));
        assert!(matches!(parse_text("a=1\na=2"), Err(ExemplarError::DuplicateName(_))));
    }

    #[test]
    fn the_longest_label_sets_fit_a_slot() {
        // One-character names with empty values: the most separators. Four-byte values: the most bytes.
        let names: Vec<String> = (0..64)
            .map(|i| format!("{}", (b'a' + (i % 26) as u8) as char))
            .collect();
        let wide = "\u{1F600}".repeat(127);
        let sets: [Vec<(&str, &str)>; 2] = [
            names.iter().map(|n| (n.as_str(), "")).take(26).collect(),
            vec![("t", wide.as_str())],
        ];
        for set in sets {
            check(set.iter().copied()).unwrap();
            let encoded = Encoded::new(set.iter().copied());
            let expected: usize = set.iter().map(|(n, v)| n.len() + 1 + v.len()).sum::<usize>() + set.len() - 1;
            assert_eq!(encoded.len, expected);
            assert!(encoded.len <= LABEL_BYTES);
            let table = ExemplarTable::boxed();
            assert!(table.offer(&offer(0, 5, &encoded)));
            let read = table.read(1, 2, 0, 0, 0).expect("stored");
            let owned: Vec<(String, String)> = set.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
            assert_eq!(read.labels, owned);
        }
    }

    #[test]
    fn the_latest_exemplar_per_bucket_is_kept_and_a_forget_drops_them() {
        let table = ExemplarTable::boxed();
        assert_eq!(table.read(1, 2, 3, 0, 0), None, "never written");
        let first = Encoded::new([("trace_id", "first")].into_iter());
        let second = Encoded::new([("trace_id", "second"), ("span_id", "7")].into_iter());
        assert!(table.offer(&offer(3, 10, &first)));
        assert!(table.offer(&offer(3, 20, &second)));
        assert!(table.offer(&offer(4, 30, &first)));
        let read = table.read(1, 2, 3, 0, 0).unwrap();
        assert_eq!(read.labels, pairs(&[("trace_id", "second"), ("span_id", "7")]));
        assert_eq!((read.duration_ns, read.unix_nanos), (20, 1_700_000_000_123_000_000));
        assert_eq!(
            table.read(1, 2, 4, 0, 0).unwrap().labels,
            pairs(&[("trace_id", "first")])
        );
        assert_eq!(table.read(1, 2, 4, 0, 1), None, "another reset generation");
        table.forget();
        assert_eq!(table.read(1, 2, 3, table.epoch(), 0), None);
        assert!(table.offer(&offer(3, 40, &first)));
        assert_eq!(table.read(1, 2, 3, table.epoch(), 0).unwrap().duration_ns, 40);
        assert_eq!(table.read(1, 2, BUCKET_SLOTS, 1, 0), None, "out of range");
        assert!(!table.offer(&offer(BUCKET_SLOTS, 1, &first)), "out of range");
    }

    #[test]
    fn a_slot_held_at_a_fork_is_released_forgotten_in_the_child() {
        let table = ExemplarTable::boxed();
        let labels = Encoded::new([("trace_id", "a")].into_iter());
        assert!(table.offer(&offer(0, 1, &labels)));
        assert!(table.offer(&offer(1, 1, &labels)));
        table.slots[1][2][0].seq.fetch_add(1, Ordering::Relaxed); // held by a writer the fork cut off
        table.release_held_in_child();
        assert_eq!(
            table.read(1, 2, 0, 0, 0),
            None,
            "its half-written cells are never shown"
        );
        assert_eq!(table.read(1, 2, 1, 0, 0).unwrap().duration_ns, 1, "others stay");
        assert!(table.offer(&offer(0, 2, &labels)), "writers can use it again");
        assert_eq!(table.read(1, 2, 0, 0, 0).unwrap().duration_ns, 2);
    }

    #[test]
    fn a_writer_finding_the_slot_held_gives_up_at_once() {
        let table = ExemplarTable::boxed();
        let labels = Encoded::new([("trace_id", "a")].into_iter());
        assert!(table.offer(&offer(0, 1, &labels)));
        let slot = &table.slots[1][2][0];
        slot.seq.fetch_add(1, Ordering::Relaxed); // another writer holds it
        assert!(!table.offer(&offer(0, 2, &labels)), "no wait, no write");
        assert_eq!(table.read(1, 2, 0, 0, 0), None, "a reader gives up too");
        slot.seq.fetch_add(1, Ordering::Relaxed);
        assert_eq!(table.read(1, 2, 0, 0, 0).unwrap().duration_ns, 1);
    }

    /// Writers store exemplars whose every part derives from one number; readers check that what they get
    /// derives from one number too: never torn.
    #[test]
    fn concurrent_writers_and_readers_never_see_a_torn_exemplar() {
        let table = ExemplarTable::boxed();
        let writers = 4;
        let rounds = 20_000u64;
        let running = std::sync::atomic::AtomicUsize::new(writers as usize);
        let read_one = std::sync::atomic::AtomicBool::new(false);
        let (stored, seen) = std::thread::scope(|scope| {
            let stored: Vec<_> = (0..writers)
                .map(|writer| {
                    let (table, running, read_one) = (&table, &running, &read_one);
                    scope.spawn(move || {
                        let mut stored = 0u32;
                        for round in 0..rounds {
                            if round == 1 {
                                // Not all done before the reader reads (an optimised build could be); bounded,
                                // so that a reader that never reads fails below instead of hanging.
                                let give_up = std::time::Instant::now() + std::time::Duration::from_secs(10);
                                while !read_one.load(Ordering::Relaxed) && std::time::Instant::now() < give_up {
                                    std::thread::yield_now();
                                }
                            }
                            let n = round * writers + writer;
                            // Values of different lengths, so a mix of two would also show in the length.
                            let value = format!("{n:x}").repeat(1 + (n % 7) as usize);
                            let labels =
                                Encoded::new([("trace_id", value.as_str()), ("n", &n.to_string())].into_iter());
                            let offer = Offer {
                                operation: 0,
                                outcome: 0,
                                bucket: 0,
                                duration_ns: n,
                                unix_nanos: n * 3,
                                generation: 0,
                                labels: &labels,
                            };
                            stored += u32::from(table.offer(&offer));
                        }
                        running.fetch_sub(1, Ordering::Release);
                        stored
                    })
                })
                .collect();
            let mut seen = 0u32;
            // Read for as long as any writer writes.
            while running.load(Ordering::Acquire) > 0 {
                if let Some(read) = table.read(0, 0, 0, 0, 0) {
                    let n = read.duration_ns;
                    let value = format!("{n:x}").repeat(1 + (n % 7) as usize);
                    assert_eq!(read.unix_nanos, n * 3, "torn: {read:?}");
                    assert_eq!(
                        read.labels,
                        [("trace_id".to_owned(), value), ("n".to_owned(), n.to_string())]
                    );
                    seen += 1;
                    read_one.store(true, Ordering::Relaxed);
                }
            }
            (stored.into_iter().map(|h| h.join().unwrap()).sum::<u32>(), seen)
        });
        assert!(stored > 0 && seen > 0, "stored {stored}, seen {seen}");
        let last = table.read(0, 0, 0, 0, 0).expect("the writers are done");
        assert!(last.duration_ns < rounds * writers);
    }
}
