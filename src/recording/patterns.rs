//! Key patterns: `user:42` counts under `user:*`, `path/a/b` under `path/*`, with a hard cap on how many
//! patterns exist.
//!
//! # Extraction
//!
//! A key's pattern is its prefix up to and including the `depth`-th delimiter (or the last one, if it has
//! fewer), followed by `*`; a key without a delimiter in its first [`MAX_PREFIX`] bytes counts as `*`.
//!
//! # The table (lock-free)
//!
//! Prefixes live in a fixed open-addressing table of `TABLE_ENTRIES` entries allocated with the monitor.
//! An entry is claimed by the one thread whose compare-and-swap moves its `hash` from 0 to the prefix's
//! hash; that thread then writes the prefix words and the pattern id, and publishes them by storing
//! `ready` with `Release`. Lookups compare a prefix only after loading `ready` with `Acquire`, and an entry
//! never changes once ready. A lookup that meets a matching hash still being written waits a bounded
//! number of spins for it (the claimer is a few stores away) rather than claiming a duplicate, so a burst
//! of threads meeting a new prefix together learns it once; a claimer descheduled mid-claim costs the
//! waiting records a count under `other`, never a wait without end (in a state file, a claimer killed
//! mid-claim leaves its prefix counting under `other` for good: never lost, only less detailed). Once
//! [`PatternConfig::max`] pattern ids are handed out, unknown prefixes count under `other` (pattern id 0)
//! without claiming anything, so memory is fixed whatever the keys.
//!
//! A *pattern id* indexes the pattern's outcome counters in every shard (`recording::shard::PATTERN_IDS`).
//! Ids above the configured maximum (handed out before it was lowered, or to the loser of a race for the
//! last id) keep their entry and the counts made under them, but count new records under `other` until the
//! maximum is raised again: lowering the cap never hides a count.
//!
//! The table and its settings live in the region, so every process of a state file learns a prefix
//! once; everything read from an entry is range-checked, since a state file is input.
//!
//! `loom_tests` model-check the claim and publication (`RUSTFLAGS="--cfg loom" cargo test --release --lib
//! loom`) on a table of a few entries: the table's size is a parameter for them.

use crate::sync::atomic::{AtomicU64, Ordering};

use crate::recording::shard::{OTHER_PATTERN_ID, PATTERN_IDS};

pub use crate::config::patterns::{MAX_PATTERNS, PatternConfig};

/// The label value of keys whose pattern is not tracked (pattern id 0).
pub const OTHER_PATTERN: &str = "other";

/// Only this many leading bytes of a key are searched for delimiters.
pub const MAX_PREFIX: usize = 64;

/// Entries in the lookup table: room for every pattern plus losers of claim races, at most half full.
const TABLE_ENTRIES: usize = 4 * MAX_PATTERNS;

const WORDS: usize = MAX_PREFIX / 8;

/// How long a lookup waits for an entry being published before counting its record under `other`.
#[cfg(not(loom))]
const PUBLISH_SPINS: usize = 4_096;
/// A few spins in a model: loom's spin hint is a yield to another thread, and each is another branch.
#[cfg(loom)]
const PUBLISH_SPINS: usize = 2;

/// A prefix packed into words, as the table stores it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Packed {
    len: usize,
    words: [u64; WORDS],
}

impl Packed {
    /// The first `len` bytes of `key` (at most [`MAX_PREFIX`]), packed.
    fn of_key(key: &[u8], len: usize) -> Self {
        let len = len.min(MAX_PREFIX).min(key.len());
        let mut words = [0u64; WORDS];
        for (word, chunk) in words.iter_mut().zip(key[..len].chunks(8)) {
            *word = load_partial(chunk);
        }
        Self { len, words }
    }

    /// `key`'s prefix as `settings` cut it (see the module docs), packed, in one pass over its first
    /// [`MAX_PREFIX`] bytes: each 8-byte chunk is read once, searched for every delimiter at once, and
    /// kept as the prefix's word.
    #[inline(always)]
    fn cut(key: &[u8], settings: PackedSettings) -> Self {
        let scanned = &key[..key.len().min(MAX_PREFIX)];
        let mut words = [0u64; WORDS];
        let mut left = settings.depth();
        // The end of the last delimiter seen, for keys with fewer than `depth` of them.
        let mut last_end = 0;
        for (index, chunk) in scanned.chunks(8).enumerate().take(WORDS) {
            let word = load_partial(chunk);
            // Bytes past the key read as 0: only the chunk's own bytes may be delimiters.
            let mut marks = settings.marks(word) & (Self::ALL_BYTES >> (8 * (8 - chunk.len())));
            let start = index * 8;
            while marks != 0 {
                let end = start + (marks.trailing_zeros() / 8) as usize + 1;
                left -= 1;
                if left == 0 {
                    words[index] = word & Self::ALL_BYTES >> (8 * (start + 8 - end));
                    return Self { len: end, words };
                }
                last_end = end;
                marks &= marks - 1;
            }
            words[index] = word;
        }
        Self::of_key(scanned, last_end)
    }

    /// Every byte of a word.
    const ALL_BYTES: u64 = u64::MAX;

    /// `prefix` (at most [`MAX_PREFIX`] bytes), packed.
    fn new(prefix: &[u8]) -> Self {
        Self::of_key(prefix, prefix.len())
    }

    /// The words that hold bytes.
    fn used_words(&self) -> &[u64] {
        &self.words[..self.len.div_ceil(8)]
    }

    /// See [`hash_words`].
    fn hash(&self) -> u64 {
        hash_words(self.len, self.used_words().iter().copied())
    }

    fn bytes(&self) -> Vec<u8> {
        let mut bytes: Vec<u8> = self.words.iter().flat_map(|w| w.to_le_bytes()).collect();
        bytes.truncate(self.len);
        bytes
    }
}

/// FxHash-style mixing of a prefix's length and words; never zero, since zero marks a free entry.
#[inline(always)]
fn hash_words(len: usize, words: impl Iterator<Item = u64>) -> u64 {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let mut hash = len as u64;
    for word in words {
        hash = (hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
    hash | 1
}

/// The first 8 bytes of `bytes` (which has at least 8) as a little-endian word.
#[inline(always)]
fn load_word(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(word)
}

/// Up to 8 delimiter bytes, searched for 8 key bytes at a time: for each delimiter `d`, the bytes of
/// `x = chunk ^ d * 0x0101...01` are zero exactly where `chunk` holds `d`, and
/// `!(((x & 0x7f..7f) + 0x7f..7f) | x) & 0x80..80` sets the high bit of exactly the zero bytes of `x` (the
/// addition never carries out of a byte: `0x7f + 0x7f < 0x100`), so every delimiter of the chunk is
/// marked, not only the first.
#[derive(Clone, Copy)]
struct Delimiters {
    /// Each delimiter repeated in every byte of a word.
    words: [u64; 8],
    count: usize,
}

impl Delimiters {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOWS: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGHS: u64 = 0x8080_8080_8080_8080;

    /// The bytes of `chunk` equal to the delimiter repeated in `word`, marked by their high bits.
    #[inline(always)]
    fn marks_of(chunk: u64, word: u64) -> u64 {
        let x = chunk ^ word;
        !(((x & Self::LOWS).wrapping_add(Self::LOWS)) | x) & Self::HIGHS
    }
}

/// The first `bytes.len()` (at most 8) bytes of `bytes` as a little-endian word, zeros above: no copy
/// loop and no `memcpy` for the short tail of a key, and no byte read twice into different places.
#[inline(always)]
fn load_partial(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    if n >= 8 {
        return load_word(bytes);
    }
    if n >= 4 {
        // Two 4-byte reads that overlap when n < 8: the overlapping bytes are the same either way.
        let low = u64::from(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]));
        let high = u64::from(u32::from_le_bytes([
            bytes[n - 4],
            bytes[n - 3],
            bytes[n - 2],
            bytes[n - 1],
        ]));
        return low | high << (8 * (n - 4));
    }
    if n == 0 {
        return 0;
    }
    // 1 to 3 bytes: the first, the middle and the last (some the same byte).
    u64::from(bytes[0]) | u64::from(bytes[n / 2]) << (8 * (n / 2)) | u64::from(bytes[n - 1]) << (8 * (n - 1))
}

/// One learned prefix. Every field is a word, so that no byte pattern a file can hold is invalid.
#[repr(C)]
struct Entry {
    hash: AtomicU64,
    /// Non-zero once the entry is published.
    ready: AtomicU64,
    id: AtomicU64,
    len: AtomicU64,
    words: [AtomicU64; WORDS],
}

impl Entry {
    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) != 0
    }

    /// The entry's pattern id, range-checked.
    fn id(&self) -> usize {
        let id = self.id.load(Ordering::Relaxed);
        if id < PATTERN_IDS as u64 {
            id as usize
        } else {
            OTHER_PATTERN_ID
        }
    }

    /// The entry's prefix, once published.
    fn packed(&self) -> Option<Packed> {
        if !self.is_ready() {
            return None;
        }
        let mut words = [0u64; WORDS];
        for (word, cell) in words.iter_mut().zip(&self.words) {
            *word = cell.load(Ordering::Relaxed);
        }
        Some(Packed {
            len: (self.len.load(Ordering::Relaxed) as usize).min(MAX_PREFIX),
            words,
        })
    }

    /// Whether the entry is published and holds `prefix`; reads only the words `prefix` uses.
    /// Waits, a bounded number of spins, for the entry's claimer to publish it: the claimer is a few
    /// stores away. Probing on instead would claim a second entry for the same prefix, and under a burst
    /// of threads meeting a new prefix together such duplicates would eat the pattern cap. `None` if the
    /// claimer is still not done (descheduled mid-claim): that one record counts under `other`.
    fn await_published(&self) -> Option<()> {
        for _ in 0..PUBLISH_SPINS {
            if self.is_ready() {
                return Some(());
            }
            crate::sync::hint::spin_loop();
        }
        None
    }

    fn holds(&self, prefix: &Packed) -> bool {
        self.is_ready()
            && self.len.load(Ordering::Relaxed) == prefix.len as u64
            && self
                .words
                .iter()
                .zip(prefix.used_words())
                .all(|(cell, word)| cell.load(Ordering::Relaxed) == *word)
    }
}

/// A pattern table entry's words as the region holds them, unchecked (for `check`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawEntry {
    /// The address of the entry's first word, to say where it lives.
    pub(crate) address: usize,
    pub(crate) hash: u64,
    pub(crate) ready: u64,
    pub(crate) id: u64,
    pub(crate) len: u64,
    pub(crate) words: [u64; MAX_PREFIX / 8],
}

/// A pattern table's settings as the region holds them, unchecked (for `check`, which compares them with
/// a table [`PatternTable::configure`]d from the recorded configuration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RawSettings {
    pub(crate) enabled: u64,
    pub(crate) depth: u64,
    pub(crate) max: u64,
    /// The delimiter words in use, then their count.
    pub(crate) delimiters: Vec<u64>,
    pub(crate) handed_out: u64,
}

/// The settings a lookup cuts keys with, packed into one word so that a lookup reads them whole, with
/// one load: no key is ever cut with one configuration's delimiters and another's depth (a pattern
/// learned that way would stay for good). Delimiters are ASCII (the configuration checks it), so eight
/// of them fit in 7 bits each:
///
/// | bits | what |
/// |---|---|
/// | 0..56 | delimiter `i` at bits `7i..7i+7` |
/// | 56..60 | how many delimiters (at most 8) |
/// | 60..63 | depth - 1 (depth 1 to 8) |
/// | 63 | analysis on |
///
/// All-zero is analysis off. Any word decodes to settings in range (a state file is untrusted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PackedSettings(u64);

impl PackedSettings {
    const ON: u64 = 1 << 63;

    fn of(config: &PatternConfig) -> Self {
        let bytes = &config.delimiters.as_bytes()[..config.delimiters.len().min(8)];
        let delimiters = bytes
            .iter()
            .enumerate()
            .fold(0, |word, (index, byte)| word | (u64::from(byte & 0x7f) << (7 * index)));
        let depth = u64::from(config.depth.clamp(1, 8)) - 1;
        let on = if config.enabled { Self::ON } else { 0 };
        Self(delimiters | (bytes.len() as u64) << 56 | depth << 60 | on)
    }

    fn is_on(self) -> bool {
        self.0 & Self::ON != 0
    }

    fn depth(self) -> usize {
        ((self.0 >> 60) & 7) as usize + 1
    }

    /// Every delimiter byte of `chunk` (8 bytes, little-endian), marked by its high bit; the delimiters
    /// are taken from the settings word as they are needed (no table to fill per lookup).
    #[inline(always)]
    fn marks(self, chunk: u64) -> u64 {
        let count = ((self.0 >> 56) & 15).min(8);
        let mut marks = 0;
        for index in 0..count {
            let delimiter = (self.0 >> (7 * index)) & 0x7f;
            marks |= Delimiters::marks_of(chunk, delimiter.wrapping_mul(Delimiters::ONES));
        }
        marks
    }

    /// The delimiters: how many, and each repeated in every byte of a word.
    fn delimiters(self) -> Delimiters {
        let count = (((self.0 >> 56) & 15) as usize).min(8);
        let mut words = [0; 8];
        let mut index = 0;
        while index < count {
            words[index] = ((self.0 >> (7 * index)) & 0x7f).wrapping_mul(Delimiters::ONES);
            index += 1;
        }
        Delimiters { words, count }
    }
}

/// The pattern table and the settings the hot path reads, in the region. All-zero is a valid empty table
/// with analysis off; [`PatternTable::configure`] sets it up. `ENTRIES`, a power of two, is
/// `TABLE_ENTRIES` but in the loom models.
#[repr(C)]
pub(crate) struct PatternTable<const ENTRIES: usize = TABLE_ENTRIES> {
    /// What a lookup uses to cut a key (analysis on or off, depth, delimiters): a [`PackedSettings`],
    /// stored and loaded whole.
    settings: AtomicU64,
    /// The cap on ids that count under their pattern: read on its own (lowering it makes higher ids count
    /// as `other`, whichever cut learned them).
    max: AtomicU64,
    /// Pattern ids handed out so far: ids `1..=handed_out` (at most [`MAX_PATTERNS`] of them hold counts).
    handed_out: AtomicU64,
    entries: [Entry; ENTRIES],
}

impl<const ENTRIES: usize> PatternTable<ENTRIES> {
    /// An empty table with analysis off, on the heap (the crate's live in zeroed region memory; loom's
    /// atomics cannot be zeroed).
    #[cfg(all(test, loom))]
    pub(crate) fn new() -> Self {
        let zero = || AtomicU64::new(0);
        Self {
            settings: zero(),
            max: zero(),
            handed_out: zero(),
            entries: std::array::from_fn(|_| Entry {
                hash: zero(),
                ready: zero(),
                id: zero(),
                len: zero(),
                words: std::array::from_fn(|_| zero()),
            }),
        }
    }

    /// Applies new settings; patterns already learned keep their ids.
    pub(crate) fn configure(&self, config: &PatternConfig) {
        self.settings.store(PackedSettings::of(config).0, Ordering::Relaxed);
        self.max.store(config.max as u64, Ordering::Relaxed);
    }

    /// How keys are cut now: `None` when analysis is off. One load (see [`PackedSettings`]).
    #[inline(always)]
    fn cut(&self) -> Option<PackedSettings> {
        let settings = PackedSettings(self.settings.load(Ordering::Relaxed));
        settings.is_on().then_some(settings)
    }

    /// The configured maximum, range-checked.
    fn max(&self) -> usize {
        (self.max.load(Ordering::Relaxed) as usize).min(MAX_PATTERNS)
    }

    /// The pattern id of `key`'s pattern, `None` when pattern analysis is off or the key is empty.
    #[inline(always)]
    pub(crate) fn id_of(&self, key: &[u8]) -> Option<usize> {
        if key.is_empty() {
            return None;
        }
        self.id_of_key(key)
    }

    /// [`Self::id_of`] of a non-empty key, the common case first ([`Self::id_of_at_home`]), then the
    /// whole way. Inlined into the (out-of-line) record with a key, so that a keyed record makes one
    /// call, not two.
    #[inline(always)]
    fn id_of_key(&self, key: &[u8]) -> Option<usize> {
        if let Some(found) = self.id_of_at_home(key) {
            return found;
        }
        let settings = self.cut()?;
        Some(self.id_of_key_in_full(key, settings))
    }

    /// [`Self::id_of`] of a non-empty key in a few dozen instructions and no call, when it can be had so:
    /// analysis off (`Some(None)`), or depth 1 (the default), a delimiter among the key's first 8 bytes,
    /// and its prefix learned and in its home entry (`Some(Some(id))`). `None`: the lookup must go the
    /// whole way.
    #[inline(always)]
    pub(crate) fn id_of_at_home(&self, key: &[u8]) -> Option<Option<usize>> {
        let Some(settings) = self.cut() else {
            return Some(None);
        };
        if settings.depth() != 1 {
            return None;
        }
        let head = &key[..key.len().min(8)];
        let word = load_partial(head);
        let mut marks = settings.marks(word);
        if head.len() < 8 {
            // Only the key's own bytes may be delimiters (an empty key has none, and a byte the load
            // filled with zero could match a NUL delimiter).
            marks &= u64::MAX >> (8 * (8 - head.len().max(1)));
        }
        if marks == 0 {
            return None;
        }
        let len = (marks.trailing_zeros() / 8) as usize + 1;
        // The bytes up to the first delimiter, itself included: every bit up to the lowest mark, which is
        // that byte's high bit (no shift by a variable count).
        let word = word & (marks ^ (marks - 1));
        // As `Packed::hash` hashes a one-word prefix.
        let hash = hash_words(len, std::iter::once(word));
        let home = &self.entries[(hash as usize) & (ENTRIES - 1)];
        let found = home.hash.load(Ordering::Acquire) == hash
            && home.is_ready()
            && home.len.load(Ordering::Relaxed) == len as u64
            && home.words[0].load(Ordering::Relaxed) == word;
        found.then(|| Some(self.counting(home.id.load(Ordering::Relaxed))))
    }

    /// Any key, cut by `settings`: its prefix packed in one pass, looked up in its home entry and then
    /// along its probe sequence, learned if new.
    #[cold]
    #[inline(never)]
    fn id_of_key_in_full(&self, key: &[u8], settings: PackedSettings) -> usize {
        let packed = Packed::cut(key, settings);
        let hash = packed.hash();
        let home = &self.entries[(hash as usize) & (ENTRIES - 1)];
        if home.hash.load(Ordering::Acquire) == hash && home.holds(&packed) {
            return self.counting(home.id.load(Ordering::Relaxed));
        }
        self.lookup(&packed, true)
    }

    /// The id `prefix` counts under, claiming an entry for it if `learn` and there is room.
    fn lookup(&self, prefix: &Packed, learn: bool) -> usize {
        let hash = prefix.hash();
        let mask = ENTRIES - 1;
        let mut index = (hash as usize) & mask;

        for _ in 0..ENTRIES {
            let entry = &self.entries[index];
            match entry.hash.load(Ordering::Acquire) {
                0 => {
                    if !learn || self.handed_out.load(Ordering::Relaxed) >= self.max() as u64 {
                        return OTHER_PATTERN_ID;
                    }
                    if entry
                        .hash
                        .compare_exchange(0, hash, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        return self.publish(entry, prefix);
                    }
                    continue; // lost the race for this entry: look at what the winner put there
                }
                found if found == hash => match entry.await_published() {
                    Some(()) if entry.holds(prefix) => return self.counting(entry.id.load(Ordering::Relaxed)),
                    Some(()) => {} // another prefix with the same hash: probe on
                    None => return OTHER_PATTERN_ID,
                },
                _ => {}
            }
            index = (index + 1) & mask;
        }
        OTHER_PATTERN_ID
    }

    /// The id a record counts under: `id` (as an entry stores it), unless it is above the configured
    /// maximum. One comparison: the maximum is at most [`MAX_PATTERNS`], so an id it lets through is in
    /// range whatever the entry holds (a table in a state file is input).
    #[inline(always)]
    fn counting(&self, id: u64) -> usize {
        if id <= self.max() as u64 {
            id as usize
        } else {
            OTHER_PATTERN_ID
        }
    }

    #[cold]
    fn publish(&self, entry: &Entry, prefix: &Packed) -> usize {
        let id = self.handed_out.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        // An id past the counters' range (a race for the last one) names no counter: `other` for good.
        let id = if id <= MAX_PATTERNS as u64 {
            id as usize
        } else {
            OTHER_PATTERN_ID
        };
        for (cell, word) in entry.words.iter().zip(prefix.words) {
            cell.store(word, Ordering::Relaxed);
        }
        entry.len.store(prefix.len as u64, Ordering::Relaxed);
        entry.id.store(id as u64, Ordering::Relaxed);
        entry.ready.store(1, Ordering::Release);
        self.counting(id as u64)
    }

    /// Every learned pattern as `(prefix, pattern id)`, whatever the current maximum (counts made under
    /// an id stay readable): the label is the prefix followed by `*`.
    pub(crate) fn learned(&self) -> Vec<(Vec<u8>, usize)> {
        self.entries
            .iter()
            .filter_map(|entry| {
                let packed = entry.packed()?;
                let id = entry.id();
                (id != OTHER_PATTERN_ID).then(|| (packed.bytes(), id))
            })
            .collect()
    }

    /// The pattern id of a prefix learned elsewhere (an imported state), learning it if there is room.
    pub(crate) fn register(&self, prefix: &[u8]) -> usize {
        if prefix.len() > MAX_PREFIX {
            return OTHER_PATTERN_ID;
        }
        self.lookup(&Packed::new(prefix), true)
    }

    /// The pattern id of a prefix if it is learned already, `other` if not; learns nothing.
    pub(crate) fn known(&self, prefix: &[u8]) -> usize {
        if prefix.len() > MAX_PREFIX {
            return OTHER_PATTERN_ID;
        }
        self.lookup(&Packed::new(prefix), false)
    }

    /// The settings as stored.
    pub(crate) fn raw_settings(&self) -> RawSettings {
        let load = |cell: &AtomicU64| cell.load(Ordering::Relaxed);
        let settings = PackedSettings(load(&self.settings));
        let delimiters = settings.delimiters();
        RawSettings {
            enabled: u64::from(settings.is_on()),
            depth: settings.depth() as u64,
            max: load(&self.max),
            delimiters: delimiters.words[..delimiters.count]
                .iter()
                .copied()
                .chain(std::iter::once(delimiters.count as u64))
                .collect(),
            handed_out: load(&self.handed_out),
        }
    }

    /// Every entry's words as stored, in table order.
    pub(crate) fn raw_entries(&self) -> Vec<RawEntry> {
        let load = |cell: &AtomicU64| cell.load(Ordering::Relaxed);
        self.entries
            .iter()
            .map(|entry| RawEntry {
                address: &entry.hash as *const AtomicU64 as usize,
                hash: load(&entry.hash),
                ready: load(&entry.ready),
                id: load(&entry.id),
                len: load(&entry.len),
                words: std::array::from_fn(|i| load(&entry.words[i])),
            })
            .collect()
    }

    /// How many pattern ids may hold counts: `other` and every id handed out.
    pub(crate) fn ids_in_use(&self) -> usize {
        (self.handed_out.load(Ordering::Relaxed) as usize).min(MAX_PATTERNS) + 1
    }

    /// How many patterns are tracked: ids handed out, at most the configured maximum.
    pub(crate) fn tracked(&self) -> usize {
        (self.handed_out.load(Ordering::Relaxed) as usize).min(self.max())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::backing::zeroed_box;

    fn table(config: &PatternConfig) -> Box<PatternTable> {
        // SAFETY: the table is atomics only; all-zero is valid.
        let table: Box<PatternTable> = unsafe { zeroed_box() };
        table.configure(config);
        table
    }

    /// The lookup without a call agrees with the whole lookup wherever it answers: keys of every length up
    /// to 12 with the delimiter at every place, NUL bytes among them and a NUL delimiter, learned and not.
    #[test]
    fn the_lookup_at_home_agrees_with_the_whole_lookup() {
        for delimiters in [":/", "\0", ".:", "x"] {
            let config = PatternConfig {
                delimiters: delimiters.into(),
                ..Default::default()
            };
            let patterns = table(&config);
            let delimiter = delimiters.as_bytes()[0];
            let mut keys: Vec<Vec<u8>> = Vec::new();
            for len in 1..=12usize {
                for at in 0..=len {
                    // `at == len`: no delimiter in the key.
                    let mut key: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                    if at < len {
                        key[at] = delimiter;
                    }
                    keys.push(key.clone());
                    key.iter_mut()
                        .filter(|byte| **byte != delimiter)
                        .take(1)
                        .for_each(|byte| *byte = 0);
                    keys.push(key);
                }
            }
            let settings = patterns.cut().expect("enabled");
            // Every prefix learned first, so that the lookup at home finds them.
            for key in &keys {
                patterns.id_of(key);
            }
            let mut answered = 0;
            for key in &keys {
                if let Some(found) = patterns.id_of_at_home(key) {
                    let whole = patterns.id_of_key_in_full(key, settings);
                    assert_eq!(found, Some(whole), "{delimiters:?}: {key:?}");
                    answered += 1;
                }
            }
            assert!(
                answered > keys.len() / 4,
                "{delimiters:?}: {answered} of {} at home",
                keys.len()
            );
        }
    }

    fn label_of(patterns: &PatternTable, key: &[u8]) -> Vec<u8> {
        let id = patterns.id_of(key).expect("enabled");
        if id == OTHER_PATTERN_ID {
            return OTHER_PATTERN.as_bytes().to_vec();
        }
        let mut label = patterns
            .learned()
            .into_iter()
            .find(|(_, i)| *i == id)
            .expect("learned")
            .0;
        label.push(b'*');
        label
    }

    #[test]
    fn keys_reduce_to_their_prefix() {
        let patterns = table(&PatternConfig::default());
        assert_eq!(label_of(&patterns, b"user:42"), b"user:*");
        assert_eq!(label_of(&patterns, b"user:43"), b"user:*");
        assert_eq!(label_of(&patterns, b"path/a/b"), b"path/*");
        assert_eq!(label_of(&patterns, b"plain"), b"*");
        assert_eq!(patterns.id_of(b"user:1"), patterns.id_of(b"user:2"));
        assert_eq!(patterns.id_of(b""), None);
        assert_eq!(patterns.tracked(), 3);
    }

    #[test]
    fn depth_and_delimiters_are_configurable() {
        let config = PatternConfig {
            delimiters: "/".into(),
            depth: 2,
            ..Default::default()
        };
        let patterns = table(&config);
        assert_eq!(label_of(&patterns, b"path/a/b/c"), b"path/a/*");
        assert_eq!(
            label_of(&patterns, b"path/a"),
            b"path/*",
            "fewer delimiters than the depth"
        );
        assert_eq!(label_of(&patterns, b"user:42"), b"*", "':' is no longer a delimiter");
    }

    #[test]
    fn settings_pack_into_one_word_and_back() {
        for (delimiters, depth, enabled) in [(":/", 1, true), ("\0\x7f:;,./-", 8, true), ("#", 3, false)] {
            let config = PatternConfig {
                delimiters: delimiters.into(),
                depth,
                enabled,
                ..Default::default()
            };
            let packed = PackedSettings::of(&config);
            assert_eq!((packed.is_on(), packed.depth()), (enabled, usize::from(depth)));
            let unpacked = packed.delimiters();
            assert_eq!(unpacked.count, delimiters.len());
            for (word, byte) in unpacked.words.iter().zip(delimiters.bytes()) {
                assert_eq!(*word, u64::from(byte).wrapping_mul(Delimiters::ONES), "{delimiters:?}");
            }
        }
        assert_eq!(
            PackedSettings(0),
            PackedSettings::of(&PatternConfig {
                enabled: false,
                delimiters: String::new(),
                depth: 1,
                ..Default::default()
            })
        );
    }

    #[test]
    fn a_key_is_cut_with_one_configuration_never_half_of_two() {
        // ":" at depth 1 cuts "a:b/c:d/e" to "a:"; "/" at depth 2 to "a:b/c:d/". A lookup reading one's
        // delimiters and the other's depth would learn "a:b/c:" or "a:b/".
        let colon = PatternConfig {
            delimiters: ":".into(),
            depth: 1,
            ..Default::default()
        };
        let slash = PatternConfig {
            delimiters: "/".into(),
            depth: 2,
            ..Default::default()
        };
        let patterns = table(&colon);
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    patterns.id_of(b"a:b/c:d/e");
                }
            });
            for round in 0..20_000 {
                patterns.configure(if round % 2 == 0 { &slash } else { &colon });
            }
            stop.store(true, Ordering::Relaxed);
        });
        for (prefix, _) in patterns.learned() {
            assert!(
                prefix == b"a:" || prefix == b"a:b/c:d/",
                "learned {:?} from a mix of two configurations",
                String::from_utf8_lossy(&prefix)
            );
        }
    }

    #[test]
    fn the_cap_holds_for_any_number_of_prefixes() {
        let config = PatternConfig {
            max: 5,
            ..Default::default()
        };
        let patterns = table(&config);
        for i in 0..10_000 {
            patterns.id_of(format!("p{i}:x").as_bytes());
        }
        assert_eq!(patterns.tracked(), 5);
        assert_eq!(patterns.learned().len(), 5);
        assert_eq!(patterns.id_of(b"p9999:y"), Some(OTHER_PATTERN_ID));
        assert_ne!(
            patterns.id_of(b"p0:y"),
            Some(OTHER_PATTERN_ID),
            "early patterns keep their ids"
        );
    }

    #[test]
    fn concurrent_lookups_agree_on_labels() {
        let patterns = table(&PatternConfig::default());
        std::thread::scope(|scope| {
            for t in 0..4 {
                let patterns = &patterns;
                scope.spawn(move || {
                    for i in 0..2_000 {
                        let id = patterns.id_of(format!("k{}:{t}", i % 50).as_bytes());
                        assert!(id.is_some());
                    }
                });
            }
        });
        let mut labels: Vec<_> = patterns.learned().into_iter().map(|(prefix, _)| prefix).collect();
        assert_eq!(
            labels.len(),
            50,
            "four threads meeting each new prefix together learn it once"
        );
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), 50);
        assert_eq!(patterns.tracked(), 50, "no id spent on a duplicate");
    }

    #[test]
    fn hostile_bytes_are_kept_verbatim_for_the_renderer_to_escape() {
        let patterns = table(&PatternConfig::default());
        assert_eq!(label_of(&patterns, b"a\"b\n}:1"), b"a\"b\n}:*");
        assert_eq!(label_of(&patterns, b"\xff\xfe:1"), b"\xff\xfe:*");
        let long = vec![b'x'; 10_240];
        assert_eq!(label_of(&patterns, &long), b"*");
    }

    #[test]
    fn lowering_the_cap_sends_new_records_to_other_and_keeps_every_count_readable() {
        let patterns = table(&PatternConfig::default());
        let ids: Vec<usize> = (0..10)
            .map(|i| patterns.id_of(format!("p{i}:x").as_bytes()).expect("enabled"))
            .collect();
        patterns.configure(&PatternConfig {
            max: 2,
            ..Default::default()
        });
        assert_eq!(patterns.id_of(b"p0:y"), Some(ids[0]));
        assert_eq!(patterns.id_of(b"p5:y"), Some(OTHER_PATTERN_ID), "above the cap: other");
        assert_eq!(patterns.id_of(b"new:y"), Some(OTHER_PATTERN_ID));
        assert_eq!(patterns.learned().len(), 10, "counts under every id stay readable");
        assert_eq!(patterns.ids_in_use(), 11);
        assert_eq!(patterns.tracked(), 2);
        patterns.configure(&PatternConfig::default());
        assert_eq!(patterns.id_of(b"p5:y"), Some(ids[5]), "raised again: its own id");
    }

    #[test]
    fn hostile_entries_stay_in_range() {
        let patterns = table(&PatternConfig::default());
        patterns.id_of(b"user:1");
        for entry in patterns.entries.iter().filter(|e| e.is_ready()) {
            entry.id.store(u64::MAX, Ordering::Relaxed);
            entry.len.store(u64::MAX, Ordering::Relaxed);
        }
        // Hostile settings too (a state file written by anyone): every field at its largest.
        patterns.settings.store(u64::MAX, Ordering::Relaxed);
        patterns.max.store(u64::MAX, Ordering::Relaxed);
        patterns.handed_out.store(u64::MAX, Ordering::Relaxed);
        assert_eq!(patterns.id_of(b"user:2"), Some(OTHER_PATTERN_ID));
        assert!(patterns.learned().is_empty());
        assert_eq!(patterns.ids_in_use(), PATTERN_IDS);
        assert!(patterns.tracked() <= MAX_PATTERNS);
    }

    /// The prefix a byte-by-byte scan keeps: up to and including the `depth`-th delimiter in the first
    /// [`MAX_PREFIX`] bytes, or the last one before.
    fn byte_scan(key: &[u8], delimiters: &[u8], depth: usize) -> Vec<u8> {
        let scanned = &key[..key.len().min(MAX_PREFIX)];
        let ends: Vec<usize> = (0..scanned.len())
            .filter(|at| delimiters.contains(&scanned[*at]))
            .map(|at| at + 1)
            .collect();
        let end = ends.get(depth - 1).or(ends.last()).copied().unwrap_or(0);
        scanned[..end].to_vec()
    }

    #[test]
    fn the_word_at_a_time_cut_keeps_what_a_byte_scan_keeps() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..50_000 {
            // Delimiters and key bytes from a small alphabet, so that keys hold many delimiters, NULs
            // and bytes with the high bit among them.
            let alphabet = [0u8, b':', b'/', b'a', 0x7f, 0x80, 0xff, b'.'];
            let delimiter_set: Vec<u8> = (0..rng.usize(1..=8))
                .map(|_| alphabet[rng.usize(..alphabet.len())] & 0x7f)
                .collect();
            let config = PatternConfig {
                enabled: true,
                delimiters: String::from_utf8(delimiter_set.clone()).expect("ASCII"),
                depth: rng.u8(1..=8),
                ..Default::default()
            };
            let settings = PackedSettings::of(&config);
            let key: Vec<u8> = (0..rng.usize(0..90))
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            let packed = Packed::cut(&key, settings);
            let expected = byte_scan(&key, &delimiter_set, usize::from(config.depth));
            assert_eq!(
                packed.bytes(),
                expected,
                "{key:?} cut by {delimiter_set:?} at depth {}",
                config.depth
            );
            assert!(packed == Packed::new(&expected), "words past the prefix are zero");
        }
    }

    #[test]
    fn the_short_path_and_the_full_one_agree_on_every_key() {
        let mut rng = fastrand::Rng::with_seed(11);
        let alphabet = [b':', b'/', b'a', b'b', 0, 0xff];
        for depth in [1, 2] {
            let config = PatternConfig {
                depth,
                max: MAX_PATTERNS,
                ..Default::default()
            };
            let mut patterns = table(&config);
            for round in 0..5_000 {
                if round % 500 == 0 {
                    // A fresh table before the cap could fill (each key learns at most one prefix).
                    patterns = table(&config);
                }
                let key: Vec<u8> = (0..rng.usize(1..20))
                    .map(|_| alphabet[rng.usize(..alphabet.len())])
                    .collect();
                let mut expected = byte_scan(&key, b":/", usize::from(depth));
                expected.push(b'*');
                // Twice: the first lookup may learn the prefix, the second finds it (the short path).
                for _ in 0..2 {
                    assert_eq!(label_of(&patterns, &key), expected, "{key:?} at depth {depth}");
                }
            }
        }
    }

    #[test]
    fn short_tails_load_byte_for_byte() {
        let bytes: Vec<u8> = (1..=9).collect();
        for len in 0..=8 {
            let mut expected = [0u8; 8];
            expected[..len].copy_from_slice(&bytes[..len]);
            assert_eq!(load_partial(&bytes[..len]), u64::from_le_bytes(expected), "{len} bytes");
        }
    }
}

/// Model checks of the claim and publication (`RUSTFLAGS="--cfg loom" cargo test --release --lib loom`), on
/// tables of four entries: a prefix is learned once, under one id, by however many threads meet it
/// together; a lookup or a listing never takes a half-written entry for a whole one.
#[cfg(all(test, loom))]
mod loom_tests {
    use loom::sync::Arc;

    use super::*;
    use crate::sync::{ModelThread, model, run_threads};

    type Table = PatternTable<4>;

    fn table() -> Arc<Table> {
        let table = Table::new();
        table.configure(&PatternConfig::default());
        Arc::new(table)
    }

    /// A thread that looks `key` up: the id it counts under.
    fn lookup(table: &Arc<Table>, key: &'static [u8]) -> ModelThread<usize> {
        let table = Arc::clone(table);
        Box::new(move || table.id_of(key).expect("analysis is on"))
    }

    /// A thread that lists what is learned while others learn it: every entry it lists is whole.
    fn lister(table: &Arc<Table>, expected: &'static [(&'static [u8], usize)]) -> ModelThread<usize> {
        let table = Arc::clone(table);
        Box::new(move || {
            for (prefix, id) in table.learned() {
                assert!(
                    expected.iter().any(|(p, i)| *p == prefix.as_slice() && *i == id),
                    "a half-written entry listed: {prefix:?} as {id}"
                );
            }
            OTHER_PATTERN_ID
        })
    }

    /// Two threads meet the new prefix `ab:` together while a third lists the table: it is learned once,
    /// as pattern 1, and a lookup counts under it or, if it gave up waiting for the claimer, under `other`.
    #[test]
    fn loom_a_prefix_met_together_is_learned_once() {
        model(2, || {
            let table = table();
            let ids = run_threads(vec![
                lookup(&table, b"ab:1"),
                lookup(&table, b"ab:2"),
                lister(&table, &[(b"ab:", 1)]),
            ]);
            assert!(ids[..2].iter().all(|id| [1, OTHER_PATTERN_ID].contains(id)), "{ids:?}");
            assert!(ids[..2].contains(&1), "the claimer counts under the new id: {ids:?}");
            assert_eq!(table.learned(), [(b"ab:".to_vec(), 1)], "learned once");
            assert_eq!(table.tracked(), 1, "no id spent on a duplicate");
            assert_eq!(table.id_of(b"ab:3"), Some(1));
        });
    }

    /// Two prefixes whose home is the same entry, met together: one claims the entry, the other probes on
    /// to the next; each gets an id of its own and keeps it.
    #[test]
    fn loom_colliding_prefixes_get_ids_of_their_own() {
        let home = |prefix: &[u8]| (Packed::new(prefix).hash() as usize) & 3;
        let other = (0..)
            .map(|i| format!("k{i}:").into_bytes())
            .find(|prefix| home(prefix) == home(b"ab:"))
            .expect("a colliding prefix");
        let other_key: &'static [u8] = Box::leak([other.as_slice(), b"1"].concat().into_boxed_slice());
        let other: &'static [u8] = Box::leak(other.into_boxed_slice());
        model(2, move || {
            let table = table();
            let ids = run_threads(vec![lookup(&table, b"ab:1"), lookup(&table, other_key)]);
            let mut sorted = ids.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, [1, 2], "an id each: {ids:?}");
            let mut learned = table.learned();
            learned.sort();
            let mut expected = vec![(b"ab:".to_vec(), ids[0]), (other.to_vec(), ids[1])];
            expected.sort();
            assert_eq!(learned, expected);
        });
    }
}
