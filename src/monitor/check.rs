//! Checking a state file without using it: the header, the layout, the recorded configuration (its
//! *shape*), and a structural pass over the region (claims and shards, journals, key pattern entries,
//! window ring tags, the reset baseline), for `cache-monitor check` and for anyone who wants to know
//! whether a file is sound before trusting it.
//!
//! [`check_state_file`] reads; it takes no lock, claims no shard and writes nothing. Every problem it finds
//! is reported, not only the first, each naming where in the file it is. It separates *problems* (the
//! file is corrupt or inconsistent: something was written that the library never writes) from *notes*
//! (states a running or killed writer legitimately leaves, such as a record cut short that the next claimer
//! rolls back). A file with problems may still be usable: the library bounds-checks everything it reads
//! from a file, so a problem costs accuracy, never memory safety; `cache-monitor reset` or a new file is
//! the remedy.
//!
//! Other processes may write while the check runs, so a check of a busy file can see a shard mid-record:
//! the consistency checks of a shard's counts run only on shards whose owner is gone.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;

use super::state_file::read_shape;
use crate::error::Error;
use crate::recording::attachment::{self, Attachment};
use crate::recording::buckets::BucketIndex;
use crate::recording::journal::LastRecord;
use crate::recording::latency;
use crate::recording::operation::{MAX_OPERATIONS, OUTCOMES};
use crate::recording::patterns::{MAX_PREFIX, PatternTable, RawSettings};
use crate::recording::recorder::{MAX_COUNTDOWN, raw_totals_of};
use crate::recording::region::Region;
use crate::recording::shard::{PATTERN_IDS, Shard};
use crate::recording::state_file::{HEADER_BYTES, Header, OpenOptions};
use crate::recording::thread_claim::{OWNED_SHARDS, SHARD_COUNT};
use crate::recording::totals::Totals;

/// How far in the future a second read from the file may lie before it counts as corrupt (clocks of the
/// processes sharing a file agree: they read one system clock).
const FUTURE_SLACK_SECS: u64 = 300;

/// What [`check_state_file`] found: a short description of the file, and every problem and note.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateFileReport {
    /// The file, as given.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// The layout version its header states, if it has a readable header.
    pub layout_version: Option<u32>,
    /// The library version that created it (`cache-monitor 0.1.0`), from its header.
    pub creator: Option<String>,
    /// When it was created (Unix seconds), from its header.
    pub created_unix_seconds: Option<u64>,
    /// The namespace of its recorded configuration.
    pub namespace: Option<String>,
    /// The custom operations of its recorded configuration, in code order.
    pub custom_operations: Vec<String>,
    /// Shards writers have used (each process thread that recorded holds one, or shares one).
    pub shards_in_use: usize,
    /// Of those, the owned shards whose process is alive now (shared shards are not counted).
    pub shards_live: usize,
    /// Operations recorded since the last reset, over every process that ever wrote the file.
    pub operations_counted: u64,
    /// Operations recorded since the file was created, resets ignored.
    pub operations_counted_ever: u64,
    /// Key patterns learned.
    pub patterns_learned: usize,
    /// The first second (Unix) anything was recorded or read, if any.
    pub history_start_unix_seconds: Option<u64>,
    /// What is wrong: corruption, or states the library never leaves behind. Empty for a sound file.
    pub problems: Vec<String>,
    /// What is worth knowing but not wrong: records cut short by a killed writer, claims abandoned.
    pub notes: Vec<String>,
}

impl StateFileReport {
    /// Whether the check found no problem (notes are fine).
    pub fn is_sound(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One part of a state file's layout: `count` elements, element `i` spanning `len` bytes from
/// `offset + i * stride`. From [`state_file_layout`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePart {
    /// What the part holds (`header`, `shape`, `pattern entries`, `fine ring tags`, `shard controls`...).
    pub name: String,
    /// The byte offset of its first element in the file.
    pub offset: u64,
    /// The length of one element in bytes.
    pub len: u64,
    /// How many elements.
    pub count: usize,
    /// Bytes from one element to the next (`len` for a single element).
    pub stride: u64,
}

/// Where the parts of a state file of this library build live, for tools and tests that inspect or
/// corrupt files on purpose. Offsets depend on the layout version and the build's layout hash, both in the
/// header.
pub fn state_file_layout() -> Vec<FilePart> {
    // SAFETY: a region is atomics only, valid when all-zero; the allocation is zeroed (untouched pages
    // cost nothing) and only its addresses are used.
    let region: Box<Region> = unsafe { crate::recording::backing::zeroed_box() };
    layout_of(&region)
}

/// [`state_file_layout`] measured on `region`, whose first byte is at file offset [`HEADER_BYTES`].
fn layout_of(region: &Region) -> Vec<FilePart> {
    let at = Locator::new(region);
    let one = |name: &str, address: usize, len: usize| FilePart {
        name: name.to_owned(),
        offset: at.offset(address),
        len: len as u64,
        count: 1,
        stride: len as u64,
    };
    let many = |name: &str, addresses: &[usize], len: usize| {
        let stride = match addresses {
            [first, second, ..] => (second - first) as u64,
            _ => len as u64,
        };
        FilePart {
            name: name.to_owned(),
            offset: addresses.first().map_or(0, |address| at.offset(*address)),
            len: len as u64,
            count: addresses.len(),
            stride,
        }
    };
    let core = &region.core;
    let entries = core.hot.patterns.raw_entries();
    let entry_addresses: Vec<usize> = entries.iter().map(|entry| entry.address).collect();
    let entry_len = match entry_addresses.as_slice() {
        [first, second, ..] => second - first,
        _ => 0,
    };
    let table_start = address_of(&core.hot.patterns);
    let mut parts = vec![
        FilePart {
            name: "header".to_owned(),
            offset: 0,
            len: HEADER_BYTES as u64,
            count: 1,
            stride: HEADER_BYTES as u64,
        },
        one(
            "bucket table",
            address_of(&core.hot.buckets),
            size_of_val(&core.hot.buckets),
        ),
        one(
            "pattern settings",
            table_start,
            entry_addresses.first().map_or(0, |first| first - table_start),
        ),
        many("pattern entries", &entry_addresses, entry_len),
        one("gauges", address_of(&core.gauges), size_of_val(&core.gauges)),
        one("claims", address_of(&core.claims), size_of_val(&core.claims)),
        one("shape", address_of(&core.shape), size_of_val(&core.shape)),
        one("baseline", address_of(&core.baseline), size_of_val(&core.baseline)),
        one("window rings", address_of(&core.windows), size_of_val(&core.windows)),
    ];
    for ring in core.windows.ring_tags() {
        let addresses: Vec<usize> = ring.tags.iter().map(|tag| tag.address).collect();
        parts.push(many(&format!("{} ring tags", ring.name), &addresses, 8));
    }
    let shards: Vec<usize> = region.shards.iter().map(address_of).collect();
    let controls: Vec<usize> = region.shards.iter().map(|shard| address_of(&shard.control)).collect();
    parts.push(many(
        "shard controls",
        &controls,
        size_of_val(&region.shards[0].control),
    ));
    parts.push(many("shards", &shards, size_of_val(&region.shards[0])));
    parts
}

fn address_of<T>(value: &T) -> usize {
    value as *const T as usize
}

/// Turns addresses inside a region into file offsets.
struct Locator {
    base: usize,
}

impl Locator {
    fn new(region: &Region) -> Self {
        Self {
            base: address_of(region),
        }
    }

    fn offset(&self, address: usize) -> u64 {
        (HEADER_BYTES + address.wrapping_sub(self.base)) as u64
    }

    /// `byte 0x…` of `address`, for messages.
    fn at(&self, address: usize) -> String {
        format!("byte {:#x}", self.offset(address))
    }
}

/// Checks the state file at `path` (see the module docs). `Err` only when the file cannot be read at
/// all (missing, not a regular file, no permission); everything wrong with what it holds is in the
/// report's `problems`.
pub fn check_state_file(path: impl AsRef<Path>) -> Result<StateFileReport, Error> {
    let path = path.as_ref();
    let fail = |problem: String| Error::StateFile(format!("state file {}: {problem}", path.display()));
    let mut report = StateFileReport {
        path: path.to_owned(),
        ..StateFileReport::default()
    };
    let metadata = std::fs::symlink_metadata(path).map_err(|e| fail(format!("cannot open it: {e}")))?;
    if metadata.file_type().is_symlink() {
        report
            .problems
            .push("is a symbolic link; state files are opened without following links".to_owned());
        return Ok(report);
    }
    if !metadata.file_type().is_file() {
        return Err(fail("not a regular file".to_owned()));
    }
    report.size = metadata.len();
    let mut file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| fail(format!("cannot open it: {e}")))?;
    let mut header = Vec::with_capacity(HEADER_BYTES);
    (&mut file)
        .take(HEADER_BYTES as u64)
        .read_to_end(&mut header)
        .map_err(|e| fail(format!("cannot read its header: {e}")))?;
    drop(file);

    check_owner_and_mode(&metadata, &mut report);
    check_header(&header, &mut report);
    if !report.problems.is_empty() {
        return Ok(report);
    }
    let options = OpenOptions {
        create: false,
        // Whatever mode its creator configured: the mode is reported above, not refused here.
        mode: 0o666,
    };
    match Attachment::open(path, options, None, &|_: &Region| {}) {
        Ok(attachment) => check_region(&attachment, &mut report),
        Err(error) => report.problems.push(error.problem),
    }
    Ok(report)
}

fn check_owner_and_mode(metadata: &std::fs::Metadata, report: &mut StateFileReport) {
    // SAFETY: `geteuid` has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if metadata.uid() != me {
        report.problems.push(format!(
            "owned by uid {}, not by this user (uid {me}): the library refuses files of other users",
            metadata.uid()
        ));
    }
    let mode = metadata.mode() & 0o777;
    if mode & 0o077 != 0 {
        report.notes.push(format!(
            "its permissions {mode:04o} let other users in; only processes that configure that mode \
             (`\"state\": {{\"mode\": \"{mode:04o}\"}}`) attach it"
        ));
    }
}

fn check_header(bytes: &[u8], report: &mut StateFileReport) {
    let header = match Header::decode(bytes) {
        Ok(header) => header,
        Err(problem) => {
            report.problems.push(problem);
            return;
        }
    };
    report.layout_version = Some(header.version);
    report.creator = Some(header.creator.clone());
    report.created_unix_seconds = Some(header.created);
    let expected = attachment::shape();
    if header.total_bytes != report.size {
        report.problems.push(format!(
            "{} bytes long, but its header says {}: truncated or extended",
            report.size, header.total_bytes
        ));
    }
    if header.total_bytes != expected.total_bytes || header.layout_hash != expected.layout_hash {
        report.problems.push(format!(
            "its layout ({} bytes, hash {:016x}) is not this library's ({} bytes, hash {:016x}), though both \
             say version {}: it was made by another build ({})",
            header.total_bytes,
            header.layout_hash,
            expected.total_bytes,
            expected.layout_hash,
            header.version,
            header.creator
        ));
    }
    let now = unix_now();
    if header.created > now + FUTURE_SLACK_SECS {
        report.problems.push(format!(
            "its header says it was created at {} (Unix seconds), in the future",
            header.created
        ));
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The structural pass over a mapped region.
fn check_region(attachment: &Attachment, report: &mut StateFileReport) {
    let region = attachment.region();
    let at = Locator::new(region);
    let now = unix_now();
    let shape = match read_shape(region) {
        Ok(shape) => {
            report.namespace = Some(shape.config.namespace.clone());
            report.custom_operations = shape.config.operations.clone();
            Some(shape.config)
        }
        Err(problem) => {
            report
                .problems
                .push(format!("{problem} ({})", at.at(address_of(&region.core.shape))));
            None
        }
    };
    if let Some(shape) = &shape {
        check_buckets(region, shape.buckets.nanos(), &at, report);
    }
    check_claims(attachment, &at, now, report);
    check_patterns(region, shape.as_ref(), &at, report);
    check_rings(region, &at, now, report);
    report.history_start_unix_seconds = region.core.windows.first_second();
    if let Some(first) = report.history_start_unix_seconds
        && first > now + FUTURE_SLACK_SECS
    {
        report.problems.push(format!(
            "its history starts at second {first}, in the future ({})",
            at.at(address_of(&region.core.windows))
        ));
    }
    check_counts(attachment, &at, report);
}

/// The bucket table bins every duration as the recorded bounds (`nanos`) say: a bound in its own bucket,
/// a nanosecond more in the next. Checked through the lookup records use, so whatever the table's layout.
fn check_buckets(region: &Region, nanos: &[u64], at: &Locator, report: &mut StateFileReport) {
    let table = &region.core.hot.buckets;
    let bucket_of = |duration: u64| table.index_of(duration, latency::index_of(duration));
    let wrong = nanos
        .iter()
        .enumerate()
        .find(|(index, bound)| bucket_of(**bound) != *index || bucket_of(bound.saturating_add(1)) != index + 1);
    if let Some((index, bound)) = wrong {
        report.problems.push(format!(
            "its bucket table ({}) disagrees with its recorded buckets: {bound} ns lands in bucket {}, not {index} \
             (or a nanosecond more not in the next): records land in buckets their labels do not name",
            at.at(address_of(table)),
            bucket_of(*bound)
        ));
    }
}

/// Which shards are claimed, by whom, and whether each is consistent.
fn check_claims(attachment: &Attachment, at: &Locator, now: u64, report: &mut StateFileReport) {
    let region = attachment.region();
    let claims = &region.core.claims;
    let owned_high = claims.owned_high.load(Relaxed);
    if owned_high > OWNED_SHARDS as u64 {
        report.problems.push(format!(
            "its claims say {owned_high} owned shards were used, but there are {OWNED_SHARDS} ({})",
            at.at(address_of(claims))
        ));
    }
    let sharing = claims.sharing.load(Relaxed);
    if sharing > 1 {
        report.problems.push(format!(
            "its sharing flag holds {sharing}, not 0 or 1 ({})",
            at.at(address_of(claims))
        ));
    }
    let in_use: Vec<usize> = region
        .shards_in_use_indexed()
        .into_iter()
        .map(|(index, _)| index)
        .collect();
    report.shards_in_use = in_use.len();
    for index in 0..SHARD_COUNT {
        let shard: &Shard = &region.shards[index];
        let here = at.at(address_of(shard));
        if !in_use.contains(&index) {
            let totals = Totals::sum(&[(index, shard)], PATTERN_IDS, |_| false, false);
            if totals.series.iter().flatten().any(|series| series.count > 0) {
                report.problems.push(format!(
                    "shard {index} ({here}) holds counts but is not among the shards in use: readers leave \
                     them out"
                ));
            }
            continue;
        }
        let owned = index < OWNED_SHARDS;
        let live = owned && attachment.is_live(index);
        if live {
            report.shards_live += 1;
        }
        let buckets = &region.core.hot.buckets;
        check_control(shard, index, buckets, (owned, live), &here, now, report);
        if owned && !live && !shard.control.journal.needs_roll_back(shard, buckets) {
            check_shard_counts(shard, index, &here, report);
        }
    }
}

/// A shard's control words: owner, clock countdown, flush state, journal.
fn check_control(
    shard: &Shard,
    index: usize,
    buckets: &BucketIndex,
    (owned, live): (bool, bool),
    here: &str,
    now: u64,
    report: &mut StateFileReport,
) {
    let control = &shard.control;
    let name = format!("shard {index} ({here})");
    if owned {
        if control.owner.load(Relaxed) == 0 {
            report.problems.push(format!("{name} is in use but records no owner"));
        }
        let countdown = control.countdown.load(Relaxed);
        let reload = control.reload.load(Relaxed);
        if countdown > MAX_COUNTDOWN || reload > MAX_COUNTDOWN {
            report.problems.push(format!(
                "{name}: its clock countdown ({countdown}, restarting from {reload}) is beyond {MAX_COUNTDOWN}"
            ));
        }
    }
    if let Some(second) = control.second.load(Relaxed).checked_sub(1)
        && second > now + FUTURE_SLACK_SECS
    {
        report.problems.push(format!(
            "{name}: its records not yet in the windows are dated second {second}, in the future"
        ));
    }
    if control.flush_seq.load(Relaxed) & 1 == 1 && !live {
        report.notes.push(format!(
            "{name}: a move of its records to the windows was cut short (its writer died while moving them); \
             readers accept it after a few retries, and its next writer finishes it"
        ));
    }
    let flush_lock = control.flush_lock.load(Relaxed);
    if flush_lock > 1 || (owned && flush_lock != 0) {
        report
            .problems
            .push(format!("{name}: its flush lock holds {flush_lock}"));
    } else if flush_lock == 1 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        if control.flush_lock.load(Relaxed) == 1 {
            report.notes.push(format!(
                "{name}: its flush lock stays held (a writer killed while moving the shard's records to the \
                 windows?): the shard's newer records reach the rolling windows late"
            ));
        }
    }
    let cut_short = match control.journal.last_record(shard, buckets) {
        LastRecord::None | LastRecord::Whole => false,
        LastRecord::NotBegun | LastRecord::Half { .. } => true,
        LastRecord::Corrupt(entry) => {
            report.problems.push(format!(
                "{name}: its journal names a record no writer makes ({entry:?}: a cell the shard does not have, \
                 or a duration no record has): nothing can be rolled back"
            ));
            false
        }
    };
    if !owned && control.journal.entry().is_some() {
        report.problems.push(format!(
            "{name}: its journal names a record, but only owned shards keep a journal"
        ));
    } else if cut_short && live {
        report.notes.push(format!("{name}: a record is being written"));
    } else if cut_short {
        report.notes.push(format!(
            "{name}: holds a record cut short when its writer was killed; the next process to claim the \
             shard rolls it back (it is not counted until then either way: readers may see part of it)"
        ));
    }
}

/// The counts of a shard nobody writes: every record is in its histogram and its latency buckets once,
/// patterns count at most the records, and what was moved to the windows is at most what was counted.
fn check_shard_counts(shard: &Shard, index: usize, here: &str, report: &mut StateFileReport) {
    let totals = Totals::sum(&[(index, shard)], PATTERN_IDS, |_| true, false);
    let name = format!("shard {index} ({here})");
    let mut by_outcome = [0u64; OUTCOMES];
    for op in 0..MAX_OPERATIONS {
        let counted: u64 = totals.series[op].iter().map(|series| series.count).sum();
        let latency = totals.latency[op].total();
        if counted != latency {
            report.problems.push(format!(
                "{name}: operation code {op} has {counted} records in its histogram but {latency} in its latency \
                 buckets"
            ));
        }
        for (outcome, series) in totals.series[op].iter().enumerate() {
            by_outcome[outcome] = by_outcome[outcome].saturating_add(series.count);
            let flushed = shard.flushed.counts[op][outcome].load(Relaxed);
            if flushed > series.count {
                report.problems.push(format!(
                    "{name}: operation code {op}, result code {outcome}: {flushed} records moved to the windows, \
                     but only {} counted",
                    series.count
                ));
            }
        }
        let (begun, ended) = (shard.begun[op].load(Relaxed), shard.ended[op].load(Relaxed));
        let (base_begun, base_ended) = (
            shard.claim_base.begun[op].load(Relaxed),
            shard.claim_base.ended[op].load(Relaxed),
        );
        if base_begun > begun || base_ended > ended {
            report.problems.push(format!(
                "{name}: operation code {op}: its in-flight counts at the last claim ({base_begun} begun, \
                 {base_ended} ended) are above its counts ({begun} begun, {ended} ended)"
            ));
        }
    }
    for (outcome, records) in by_outcome.iter().enumerate() {
        let patterns = totals
            .patterns
            .iter()
            .fold(0u64, |sum, counts| sum.saturating_add(counts[outcome]));
        if patterns > *records {
            report.problems.push(format!(
                "{name}: result code {outcome}: its key patterns count {patterns} records, but it holds {records}"
            ));
        }
    }
}

/// The key pattern table: settings as recorded, every entry in range, findable and unique.
fn check_patterns(region: &Region, shape: Option<&crate::config::Config>, at: &Locator, report: &mut StateFileReport) {
    let table = &region.core.hot.patterns;
    let stored = table.raw_settings();
    let settings_at = at.at(address_of(table));
    let expected = shape.map(|config| {
        // SAFETY: a pattern table is atomics only, and all-zero is a valid empty table.
        let scratch: Box<PatternTable> = unsafe { crate::recording::backing::zeroed_box() };
        scratch.configure(&config.patterns);
        RawSettings {
            handed_out: stored.handed_out,
            ..scratch.raw_settings()
        }
    });
    if let Some(expected) = expected
        && expected != stored
    {
        report.problems.push(format!(
            "its pattern settings ({settings_at}: enabled {}, depth {}, max {}) disagree with its recorded \
             configuration (enabled {}, depth {}, max {}, delimiters as configured)",
            stored.enabled, stored.depth, stored.max, expected.enabled, expected.depth, expected.max
        ));
    }
    let entries = table.raw_entries();
    if stored.handed_out > entries.len() as u64 {
        report.problems.push(format!(
            "its pattern table says {} ids were handed out, more than its {} entries ({settings_at})",
            stored.handed_out,
            entries.len()
        ));
    }
    let max = (stored.max as usize).min(crate::recording::patterns::MAX_PATTERNS);
    let mut owners: BTreeMap<u64, usize> = BTreeMap::new();
    for (index, entry) in entries.iter().enumerate() {
        let name = format!("pattern entry {index} ({})", at.at(entry.address));
        if entry.hash == 0 {
            if entry.ready != 0 || entry.id != 0 || entry.len != 0 || entry.words.iter().any(|w| *w != 0) {
                report.problems.push(format!("{name} is free (no hash) but not empty"));
            }
            continue;
        }
        if entry.ready == 0 {
            report.notes.push(format!(
                "{name} was claimed but never published (its writer died mid-claim?): that prefix counts under \
                 `other`"
            ));
            continue;
        }
        let len = entry.len as usize;
        if len > MAX_PREFIX {
            report.problems.push(format!(
                "{name}: its prefix is {} bytes, beyond {MAX_PREFIX}",
                entry.len
            ));
            continue;
        }
        let bytes: Vec<u8> = entry.words.iter().flat_map(|word| word.to_le_bytes()).collect();
        if bytes[len..].iter().any(|byte| *byte != 0) {
            report
                .problems
                .push(format!("{name}: bytes after its {len}-byte prefix are not zero"));
        }
        let prefix = String::from_utf8_lossy(&bytes[..len]).into_owned();
        if entry.id >= PATTERN_IDS as u64 {
            report.problems.push(format!(
                "{name} ({prefix:?}*): its pattern id {} is beyond the {} ids",
                entry.id,
                PATTERN_IDS - 1
            ));
            continue;
        }
        if entry.id == 0 {
            continue; // the loser of a race for the last id: counts under `other`, as documented
        }
        if entry.id > stored.handed_out {
            report.problems.push(format!(
                "{name} ({prefix:?}*): its pattern id {} was never handed out (only {})",
                entry.id, stored.handed_out
            ));
        }
        if let Some(first) = owners.insert(entry.id, index) {
            report.problems.push(format!(
                "{name} ({prefix:?}*) and pattern entry {first} share pattern id {}: their counts mix",
                entry.id
            ));
        } else {
            report.patterns_learned += 1;
        }
        if entry.id as usize <= max && table.known(&bytes[..len]) != entry.id as usize {
            report.problems.push(format!(
                "{name} ({prefix:?}*) is not where lookups find it (its hash or its place is wrong, or the prefix \
                 is there twice): new records of that prefix count elsewhere"
            ));
        }
    }
}

/// The window rings: every bank holds a period that belongs in it, and none from the future.
fn check_rings(region: &Region, at: &Locator, now: u64, report: &mut StateFileReport) {
    for ring in region.core.windows.ring_tags() {
        let now_period = now / ring.period_seconds;
        // Banks are prepared one ring ahead of the current period.
        let latest = now_period + ring.entries as u64 + FUTURE_SLACK_SECS / ring.period_seconds + 1;
        for tag in &ring.tags {
            let Some(period) = tag.period else { continue };
            let name = format!(
                "{} ring, entry {} bank {} ({})",
                ring.name,
                tag.entry,
                tag.bank,
                at.at(tag.address)
            );
            if period > latest {
                report.problems.push(format!(
                    "{name}: tagged with period {period} (tag {:#x}), in the future: records of that bank's later \
                     periods are dropped from the window",
                    tag.raw
                ));
            } else if !(ring.is_home_of)(tag.entry, tag.bank, period) {
                report.problems.push(format!(
                    "{name}: tagged with period {period} (tag {:#x}), which belongs in another bank: its counts \
                     show in the wrong period",
                    tag.raw
                ));
            } else if tag.clearing {
                report.notes.push(format!(
                    "{name}: being cleared for period {period} (or its clearer was killed: the bank then keeps \
                     that period, and the deltas of its later periods go to the next period)"
                ));
            } else if tag.writers != 0 {
                report.notes.push(format!(
                    "{name}: {} writer(s) adding to period {period} (or killed while they did: the bank then \
                     keeps that period, and the deltas of its later periods go to the next period)",
                    tag.writers
                ));
            }
        }
    }
}

/// Totals since the last reset and ever, and a baseline that is not above them.
fn check_counts(attachment: &Attachment, at: &Locator, report: &mut StateFileReport) {
    let region = attachment.region();
    let raw = raw_totals_of(region, Some(attachment));
    let count = |totals: &Totals| {
        totals
            .series
            .iter()
            .flatten()
            .fold(0u64, |sum, series| sum.saturating_add(series.count))
    };
    report.operations_counted_ever = count(&raw);
    let baseline = region
        .core
        .baseline
        .read(|generation, cells| (generation != 0).then(|| Totals::read_baseline(cells)));
    let here = at.at(address_of(&region.core.baseline));
    match baseline {
        None => {
            report.problems.push(format!(
                "its reset baseline ({here}) is being rewritten without end: no reader can read it"
            ));
            report.operations_counted = report.operations_counted_ever;
        }
        Some(None) => report.operations_counted = report.operations_counted_ever,
        Some(Some(baseline)) => {
            for (op, (raw, base)) in raw.series.iter().zip(&baseline.series).enumerate() {
                for (outcome, (raw, base)) in raw.iter().zip(base).enumerate() {
                    if base.count > raw.count {
                        report.problems.push(format!(
                            "its reset baseline ({here}) holds {} records of operation code {op}, result code \
                             {outcome}, more than were ever counted ({}): that series reads as zero",
                            base.count, raw.count
                        ));
                    }
                }
            }
            report.operations_counted = count(&raw.since(&baseline));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::Monitor;
    use crate::recording::operation::{Operation, Outcome};

    fn written_file(dir: &Path) -> PathBuf {
        let path = dir.join("checked.state");
        let monitor = Monitor::new();
        monitor
            .configure(&format!(
                r#"{{"namespace": "checked", "state": {{"path": {:?}}}}}"#,
                path.to_str().unwrap()
            ))
            .unwrap();
        for i in 0..100u64 {
            let key = format!("user:{i}");
            monitor
                .record(Operation::GET, Outcome::Hit, 1_000 + i, key.as_bytes())
                .unwrap();
        }
        monitor.record(Operation::PUT, Outcome::Ok, 5, b"path/x").unwrap();
        path
    }

    /// Writes `bytes` to `path` with its blocks of zeros left as holes: a state file is mostly zeros
    /// and tens of megabytes, and a dense copy per corruption filled small CI disks.
    fn write_sparse(path: &Path, bytes: &[u8]) {
        use std::os::unix::fs::FileExt;
        const BLOCK: usize = 4096;
        let file = File::create(path).unwrap();
        file.set_len(bytes.len() as u64).unwrap();
        for (index, block) in bytes.chunks(BLOCK).enumerate() {
            if block.iter().any(|&byte| byte != 0) {
                file.write_all_at(block, (index * BLOCK) as u64).unwrap();
            }
        }
    }

    fn patch(path: &Path, offset: u64, bytes: &[u8]) {
        use std::os::unix::fs::FileExt;
        let file = File::options().write(true).open(path).unwrap();
        file.write_all_at(bytes, offset).unwrap();
    }

    fn part(name: &str) -> FilePart {
        state_file_layout()
            .into_iter()
            .find(|part| part.name == name)
            .unwrap_or_else(|| panic!("no part {name}"))
    }

    #[test]
    fn a_sound_file_is_described() {
        let dir = tempfile::tempdir().unwrap();
        let path = written_file(dir.path());
        let report = check_state_file(&path).unwrap();
        assert!(report.is_sound(), "{report:#?}");
        assert_eq!(report.namespace.as_deref(), Some("checked"));
        assert_eq!(report.operations_counted, 101);
        assert_eq!(report.operations_counted_ever, 101);
        assert_eq!(report.patterns_learned, 2);
        assert_eq!(report.size, attachment::shape().total_bytes);
        assert!(report.shards_in_use >= 1);
        assert_eq!(report.shards_live, 0, "the writer is gone");
        assert!(report.creator.unwrap().starts_with("cache-monitor "));
    }

    /// A record cut short by a writer that died is a note (the next claimer rolls it back), not a problem.
    #[test]
    fn a_record_cut_short_by_a_dead_writer_is_a_note() {
        let (_dir, path, writer) = crate::monitor::on_new_state_file("cut.state");
        writer.record(Operation::GET, Outcome::Hit, 1_000, b"").unwrap();
        assert!(writer.leave_half_record(2_000));
        drop(writer); // its descriptor, mapping and shard lock go, as at a death
        let report = check_state_file(&path).unwrap();
        assert!(report.is_sound(), "{report:#?}");
        assert!(
            report.notes.iter().any(|note| note.contains("a record cut short")),
            "{report:#?}"
        );
    }

    #[test]
    fn the_layout_covers_the_file_in_order() {
        let layout = state_file_layout();
        let total = attachment::shape().total_bytes;
        for part in &layout {
            let end = part.offset + part.stride * (part.count as u64 - 1) + part.len;
            assert!(end <= total, "{part:?} ends past the file");
        }
        let entries = part("pattern entries");
        assert_eq!(entries.count, crate::recording::patterns::MAX_PATTERNS * 4);
        assert_eq!(part("shards").count, SHARD_COUNT);
        assert_eq!(part("fine ring tags").len, 8);
    }

    #[test]
    fn corruptions_of_each_part_are_reported_where_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let good = written_file(dir.path());
        let original = std::fs::read(&good).unwrap();
        let fresh = |name: &str| {
            let path = dir.path().join(name);
            write_sparse(&path, &original);
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
            path
        };
        let problems = |path: &Path| check_state_file(path).unwrap().problems.join("\n");

        let path = fresh("magic");
        patch(&path, 0, b"XX");
        assert!(problems(&path).contains("not a cache-monitor state file"));

        let path = fresh("short");
        write_sparse(&path, &original[..original.len() - 4096]);
        assert!(problems(&path).contains("truncated"));

        let path = fresh("shape");
        let shape = part("shape");
        patch(&path, shape.offset, &[0xff; 64]);
        patch(&path, shape.offset + shape.len / 2, &[0xff; 64]);
        assert!(problems(&path).contains("configuration"), "{}", problems(&path));

        let path = fresh("ring");
        let tags = part("fine ring tags");
        patch(
            &path,
            tags.offset + 3 * tags.stride,
            &crate::recording::delta_ring::held(7).to_ne_bytes(),
        );
        assert!(
            problems(&path).contains("belongs in another bank"),
            "{}",
            problems(&path)
        );

        let path = fresh("entry");
        let entries = part("pattern entries");
        let used = (0..entries.count as u64)
            .map(|i| entries.offset + i * entries.stride)
            .find(|offset| original[*offset as usize..*offset as usize + 8] != [0; 8])
            .unwrap();
        patch(&path, used, &0x1234_5678u64.to_ne_bytes());
        assert!(
            problems(&path).contains("not where lookups find it"),
            "{}",
            problems(&path)
        );

        let path = fresh("control");
        let controls = part("shard controls");
        patch(&path, controls.offset, &u64::MAX.to_ne_bytes()); // shard 0's countdown
        assert!(problems(&path).contains("countdown"), "{}", problems(&path));

        let path = fresh("journal");
        // Shard 0's journal entry (its first word), marked, naming pattern id 2046: no shard has it.
        let entry = controls.offset + std::mem::offset_of!(crate::recording::shard::Control, journal) as u64;
        patch(&path, entry, &(1u64 | 0x7ff << 8).to_ne_bytes());
        assert!(
            problems(&path).contains("names a record no writer makes"),
            "{}",
            problems(&path)
        );

        let path = fresh("buckets");
        patch(&path, part("bucket table").offset + 8, &u64::MAX.to_ne_bytes()); // the first bound
        assert!(problems(&path).contains("bucket table"), "{}", problems(&path));

        let path = fresh("claims");
        patch(&path, part("claims").offset, &1000u64.to_ne_bytes());
        assert!(problems(&path).contains("owned shards"), "{}", problems(&path));
    }
}
