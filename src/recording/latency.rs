//! Latency buckets: the resolution behind every quantile the monitor reports, and the monitor's
//! Prometheus native histogram.
//!
//! A duration of `d` nanoseconds is `d as f64 * 1e-9` seconds, and lands in the native-histogram bucket
//! of that value at schema 5 (`native`: 32 exponential buckets per power of two, upper-inclusive bounds
//! `2^(k/32)` seconds, as Prometheus defines them); 0 ns lands in the zero bucket. Here those buckets
//! are numbered from 0: index 0 is the zero bucket, index `i >= 1` is native bucket `k = i - 1 +`
//! [`FIRST_NATIVE_INDEX`], the bucket of 1 ns. Every bucket is at most 2.2% wide, so a quantile reported
//! as a value inside its bucket (chosen to halve the worst case, see [`RELATIVE_ERROR`]) is within
//! **1.0831% of the true value** of some observation in that bucket.
//!
//! Durations are tracked up to [`MAX_TRACKED_NS`] (about 73 minutes); longer ones land in its bucket.

use crate::recording::{native, wrapping_total};

/// The largest duration, in nanoseconds, with a bucket of its own (2^42 - 1, about 73 minutes).
pub const MAX_TRACKED_NS: u64 = (1 << 42) - 1;

/// A duration in seconds, as the native histogram's buckets see it.
#[inline(always)]
pub const fn seconds(duration_ns: u64) -> f64 {
    duration_ns as f64 * 1e-9
}

/// The native bucket (schema 5) of 1 ns, the shortest duration but 0: index 1 here.
pub const FIRST_NATIVE_INDEX: i32 = native::index_of(seconds(1));

/// The native bucket (schema 5) of [`MAX_TRACKED_NS`].
const LAST_NATIVE_INDEX: i32 = native::index_of(seconds(MAX_TRACKED_NS));

/// The number of latency buckets: the zero bucket, the native buckets from 1 ns to [`MAX_TRACKED_NS`],
/// and empty ones up to a whole row.
pub(crate) const LATENCY_BUCKETS: usize =
    ((LAST_NATIVE_INDEX - FIRST_NATIVE_INDEX + 2) as usize).next_multiple_of(LATENCY_ROW);

/// The relative error bound of every reported quantile: a bucket's integer durations span at most a
/// factor `r = 2^(1/32)`, and the value reported for them, `2 lo hi / (lo + hi)`, is within
/// `(r - 1) / (r + 1)` (0.0108300013...) of each; rounded up.
pub const RELATIVE_ERROR: f64 = 0.010_831;

/// The bucket a duration falls in.
#[inline(always)]
pub(crate) const fn index_of(duration_ns: u64) -> usize {
    let v = if duration_ns > MAX_TRACKED_NS {
        MAX_TRACKED_NS
    } else {
        duration_ns
    };
    if v == 0 {
        return 0;
    }
    let index = (native::index_of(seconds(v)) - FIRST_NATIVE_INDEX + 1) as usize;
    // SAFETY: `seconds` and `native::index_of` never decrease as the duration grows (a conversion to
    // `f64` and a product by a positive constant are monotonic, and so is a bucket index), so over
    // `1..=MAX_TRACKED_NS` the index runs from `index_of(1)` to `index_of(MAX_TRACKED_NS)`, which the
    // assertion below checks at compile time to lie inside the array, after the zero bucket. Telling the
    // compiler spares every record a clamp of the index into the latency cells, and a second test of a
    // zero duration (`JournalEntry::of`).
    unsafe { std::hint::assert_unchecked(index >= 1 && index < LATENCY_BUCKETS) };
    index
}

const _: () = assert!(
    index_of(1) == 1 && index_of(MAX_TRACKED_NS) < LATENCY_BUCKETS,
    "the latency index of 1..=MAX_TRACKED_NS lies inside the latency cells"
);

/// The native (schema 5) bucket of latency bucket `index`; `None` for the zero bucket.
pub(crate) const fn native_index(index: usize) -> Option<i32> {
    if index == 0 {
        None
    } else {
        Some(index as i32 - 1 + FIRST_NATIVE_INDEX)
    }
}

/// The shortest duration in bucket `index` or a later one (`MAX_TRACKED_NS + 1` past the last used).
const fn lowest_at_or_after(index: usize) -> u64 {
    if index == 0 {
        return 0;
    }
    let Some(k) = native_index(index) else {
        return 0;
    };
    if k > LAST_NATIVE_INDEX {
        return MAX_TRACKED_NS + 1;
    }
    // The bucket starts above 2^((k-1)/32) seconds: start a little below that many nanoseconds, then
    // step up to the first duration indexed here (a few steps; buckets below 45 ns hold at most one).
    let estimate = native::upper_bound(k - 1) * 1e9;
    let mut duration = if estimate > 3.0 { estimate as u64 - 2 } else { 1 };
    while duration <= MAX_TRACKED_NS && index_of(duration) < index {
        duration += 1;
    }
    duration
}

/// Per bucket, [`lowest_at_or_after`]; one more entry for the end.
static LOWEST: [u64; LATENCY_BUCKETS + 1] = {
    let mut table = [0; LATENCY_BUCKETS + 1];
    let mut index = 0;
    while index <= LATENCY_BUCKETS {
        table[index] = lowest_at_or_after(index);
        index += 1;
    }
    table
};

/// The half-open range `[low, high)` of durations in bucket `index` (`low == high`: none, as for most
/// buckets below 45 ns, narrower than a nanosecond).
pub(crate) fn bounds_of(index: usize) -> (u64, u64) {
    let index = index.min(LATENCY_BUCKETS - 1);
    let low = LOWEST[index];
    (low, LOWEST[index + 1].max(low))
}

/// Buckets are grouped in rows of this many; a row mask (one bit per row, 38 rows) says which rows may
/// hold counts, so that readers skip the empty ones.
pub(crate) const LATENCY_ROW: usize = 32;

/// The positions of the set bits of `mask`, lowest first.
pub(crate) fn set_bits(mut mask: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let bit = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            bit
        })
    })
}

/// The bucket indexes of the rows set in `mask`.
pub(crate) fn rows_of(mask: u64) -> impl Iterator<Item = usize> {
    set_bits(mask).flat_map(|row| row * LATENCY_ROW..((row + 1) * LATENCY_ROW).min(LATENCY_BUCKETS))
}

/// The bucket indexes of row `row`.
#[inline(always)]
pub(crate) const fn row_range(row: usize) -> std::ops::Range<usize> {
    row * LATENCY_ROW..(row + 1) * LATENCY_ROW
}

/// The row bit of bucket `index`.
#[inline(always)]
pub(crate) const fn row_bit(index: usize) -> u64 {
    1 << (index / LATENCY_ROW)
}

/// Rows of buckets.
const ROWS: usize = LATENCY_BUCKETS / LATENCY_ROW;
const _: () = assert!(
    ROWS * LATENCY_ROW == LATENCY_BUCKETS && ROWS <= 64,
    "rows tile the buckets, one bit each"
);

/// The value reported for observations in each bucket: exact when it holds one duration, else
/// `2 lo hi / (lo + hi)` of its shortest and longest, which is as far from either in relative terms.
static REPRESENTATIVES: [f64; LATENCY_BUCKETS] = {
    let mut table = [0.0; LATENCY_BUCKETS];
    let mut index = 0;
    while index < LATENCY_BUCKETS {
        let low = LOWEST[index];
        let high = if LOWEST[index + 1] > low {
            LOWEST[index + 1] - 1
        } else {
            low
        };
        table[index] = if high == low {
            low as f64
        } else {
            2.0 * low as f64 * high as f64 / (low as f64 + high as f64)
        };
        index += 1;
    }
    table
};

/// Bucket counts summed over shards, with the questions asked of them.
///
/// Stored by row: only rows that hold counts take memory (a few hundred bytes for typical latencies,
/// against 10 KB for every bucket), so copies and comparisons are cheap.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LatencyCounts {
    /// One bit per row present in `data`.
    rows: u64,
    /// The present rows, in increasing row order.
    data: Vec<[u64; LATENCY_ROW]>,
}

impl LatencyCounts {
    /// The position in `data` of `row`, if present.
    fn position(&self, row: usize) -> Option<usize> {
        (self.rows & (1 << row) != 0).then(|| (self.rows & ((1 << row) - 1)).count_ones() as usize)
    }

    /// Row `row`, inserted zeroed if absent.
    fn row_mut(&mut self, row: usize) -> &mut [u64; LATENCY_ROW] {
        let position = (self.rows & ((1 << row) - 1)).count_ones() as usize;
        if self.rows & (1 << row) == 0 {
            self.data.insert(position, [0; LATENCY_ROW]);
            self.rows |= 1 << row;
        }
        &mut self.data[position]
    }

    /// Rows as `(row, counts)`, in order.
    fn present(&self) -> impl Iterator<Item = (usize, &[u64; LATENCY_ROW])> {
        set_bits(self.rows).zip(&self.data)
    }

    /// The rows present (one bit each) and their counts, in row order.
    pub(crate) fn rows(&self) -> (u64, &[[u64; LATENCY_ROW]]) {
        (self.rows, &self.data)
    }

    /// Adds one bucket's count.
    pub(crate) fn add(&mut self, index: usize, count: u64) {
        if count != 0 && index < LATENCY_BUCKETS {
            let cell = &mut self.row_mut(index / LATENCY_ROW)[index % LATENCY_ROW];
            *cell = cell.wrapping_add(count);
        }
    }

    /// Makes room for the rows in `mask` not present yet, so that adding them row by row reallocates
    /// once at most.
    pub(crate) fn reserve_rows(&mut self, mask: u64) {
        self.data.reserve((mask & !self.rows).count_ones() as usize);
    }

    /// Adds a whole row of counts.
    pub(crate) fn add_row(&mut self, row: usize, counts: &[u64; LATENCY_ROW]) {
        if row < ROWS && counts.iter().any(|c| *c != 0) {
            for (mine, theirs) in self.row_mut(row).iter_mut().zip(counts) {
                *mine = mine.wrapping_add(*theirs);
            }
        }
    }

    /// Adds every bucket of `other`.
    pub(crate) fn merge(&mut self, other: &Self) {
        self.reserve_rows(other.rows);
        for (row, counts) in other.present() {
            for (mine, theirs) in self.row_mut(row).iter_mut().zip(counts) {
                *mine = mine.wrapping_add(*theirs);
            }
        }
    }

    /// Buckets of the rows in `rows`, combined with `other`'s by `op`; rows left all zero are dropped.
    fn combine(&self, other: &Self, rows: u64, op: impl Fn(u64, u64) -> u64) -> Self {
        const ZERO: [u64; LATENCY_ROW] = [0; LATENCY_ROW];
        let mut result = Self {
            rows: 0,
            data: Vec::with_capacity(rows.count_ones() as usize),
        };
        for row in set_bits(rows) {
            let mine = self.position(row).map_or(&ZERO, |p| &self.data[p]);
            let theirs = other.position(row).map_or(&ZERO, |p| &other.data[p]);
            let combined: [u64; LATENCY_ROW] = std::array::from_fn(|i| op(mine[i], theirs[i]));
            if combined.iter().any(|c| *c != 0) {
                result.rows |= 1 << row;
                result.data.push(combined);
            }
        }
        result
    }

    /// The larger of the two counts in every bucket.
    pub(crate) fn max_with(&self, other: &Self) -> Self {
        self.combine(other, self.rows | other.rows, u64::max)
    }

    /// Subtracts `earlier` bucket by bucket, saturating at zero.
    pub(crate) fn since(&self, earlier: &Self) -> Self {
        self.combine(earlier, self.rows, u64::saturating_sub)
    }

    /// Calls `visit` with every non-zero bucket as `(index, count)`, in index order; stops when it
    /// returns `false`.
    fn visit_nonzero(&self, mut visit: impl FnMut(usize, u64) -> bool) {
        for (row, counts) in self.present() {
            for (offset, count) in counts.iter().enumerate() {
                if *count != 0 && !visit(row * LATENCY_ROW + offset, *count) {
                    return;
                }
            }
        }
    }

    /// Non-zero buckets as `(index, count)` pairs.
    pub(crate) fn nonzero(&self) -> Vec<(usize, u64)> {
        let mut buckets = Vec::new();
        self.visit_nonzero(|index, count| {
            buckets.push((index, count));
            true
        });
        buckets
    }

    /// The native histogram at `schema` (at most [`native::STORED_SCHEMA`]): the zero bucket's count, and
    /// the non-empty buckets as `(index at that schema, count)` in index order, each the sum of the
    /// `2^(5 - schema)` stored buckets it covers.
    pub fn native_buckets(&self, schema: u8) -> (u64, Vec<(i32, u64)>) {
        let schema = schema.min(native::STORED_SCHEMA);
        let mut zero = 0u64;
        let mut buckets: Vec<(i32, u64)> = Vec::new();
        self.visit_nonzero(|index, count| {
            match native_index(index) {
                None => zero = zero.wrapping_add(count),
                Some(k) => {
                    let k = native::coarsen(k, schema);
                    match buckets.last_mut() {
                        Some((last, sum)) if *last == k => *sum = sum.wrapping_add(count),
                        _ => buckets.push((k, count)),
                    }
                }
            }
            true
        });
        (zero, buckets)
    }

    /// The number of observations.
    pub fn total(&self) -> u64 {
        wrapping_total(self.data.iter().flatten())
    }

    /// Several quantiles, as [`LatencyCounts::quantile_ns`] computes each, with the count and (if
    /// `with_mean`) the mean of the representative values. Rows are summed first (a tight loop), then
    /// each quantile scans only the row it falls in.
    pub fn summary_ns<const N: usize>(&self, qs: [f64; N], with_mean: bool) -> (u64, Option<f64>, [Option<f64>; N]) {
        let row_totals: Vec<u64> = self.data.iter().map(wrapping_total).collect();
        let total = wrapping_total(&row_totals);
        let mut found = [None; N];
        if total == 0 {
            return (0, None, found);
        }
        for (quantile, q) in found.iter_mut().zip(qs) {
            let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
            let mut seen = 0;
            for ((row, counts), row_total) in self.present().zip(&row_totals) {
                if seen + row_total < rank {
                    seen += row_total;
                    continue;
                }
                for (offset, count) in counts.iter().enumerate() {
                    seen += count;
                    if seen >= rank {
                        *quantile = Some(REPRESENTATIVES[row * LATENCY_ROW + offset]);
                        break;
                    }
                }
                break;
            }
        }
        if !with_mean {
            return (total, None, found);
        }
        let sum: f64 = self
            .present()
            .map(|(row, counts)| {
                let representatives = &REPRESENTATIVES[row * LATENCY_ROW..(row + 1) * LATENCY_ROW];
                counts
                    .iter()
                    .zip(representatives)
                    .map(|(count, value)| *count as f64 * value)
                    .sum::<f64>()
            })
            .sum();
        (total, Some(sum / total as f64), found)
    }

    /// The `q`-quantile (`0.0..=1.0`) in nanoseconds, `None` without observations.
    ///
    /// Nearest-rank definition: the smallest bucket whose cumulative count reaches `ceil(q * total)`.
    pub fn quantile_ns(&self, q: f64) -> Option<f64> {
        let [quantile] = self.summary_ns([q], false).2;
        quantile
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_duration_lies_inside_its_bucket() {
        let mut probes: Vec<u64> = (0..4096).collect();
        for shift in 0..42 {
            let p = 1u64 << shift;
            probes.extend([p - 1, p, p + 1, p + p / 3]);
        }
        probes.push(MAX_TRACKED_NS);
        for v in probes {
            let (low, high) = bounds_of(index_of(v));
            assert!(low <= v && v < high, "{v} not in [{low}, {high})");
        }
    }

    #[test]
    fn buckets_tile_the_range_without_gaps() {
        for index in 1..LATENCY_BUCKETS {
            assert_eq!(bounds_of(index - 1).1, bounds_of(index).0, "gap before bucket {index}");
        }
        assert_eq!(index_of(u64::MAX), index_of(MAX_TRACKED_NS));
        assert!(index_of(MAX_TRACKED_NS) < LATENCY_BUCKETS);
        assert_eq!(bounds_of(index_of(MAX_TRACKED_NS)).1, MAX_TRACKED_NS + 1);
    }

    #[test]
    fn representative_is_within_the_stated_error() {
        for (index, rep) in REPRESENTATIVES.iter().copied().enumerate() {
            let (low, high) = bounds_of(index);
            if low == high {
                continue; // no duration lands there
            }
            for v in [low, high - 1] {
                let err = (rep - v as f64).abs() / v.max(1) as f64;
                assert!(err <= RELATIVE_ERROR, "bucket {index}: {err} > {RELATIVE_ERROR}");
            }
        }
    }

    #[test]
    fn every_bucket_is_its_native_bucket_in_nanoseconds() {
        for index in 1..LATENCY_BUCKETS {
            let (low, high) = bounds_of(index);
            let Some(k) = native_index(index) else { continue };
            if low < high {
                assert!(
                    native::upper_bound(k - 1) < seconds(low),
                    "{low} ns above bucket {k}'s lower bound"
                );
                assert!(
                    seconds(high - 1) <= native::upper_bound(k),
                    "{high} ns within bucket {k}"
                );
            }
        }
        assert_eq!(native_index(index_of(1)), Some(FIRST_NATIVE_INDEX));
        assert_eq!(
            native_index(index_of(1_000_000_000)),
            Some(0),
            "1 s is the upper bound of bucket 0"
        );
        assert_eq!(native_index(index_of(1_000_000_001)), Some(1));
        assert_eq!(index_of(0), 0, "the zero bucket");
    }

    #[test]
    fn native_buckets_merge_to_coarser_schemas() {
        let mut counts = LatencyCounts::default();
        counts.add(index_of(0), 2);
        for ns in [
            1_000_000_000,
            1_000_000_001,
            1_500_000_000,
            2_000_000_000,
            2_000_000_001,
        ] {
            counts.add(index_of(ns), 1);
        }
        let (zero, schema5) = counts.native_buckets(5);
        assert_eq!(zero, 2);
        assert_eq!(schema5.iter().map(|(_, c)| c).sum::<u64>(), 5);
        assert_eq!(counts.native_buckets(0), (2, vec![(0, 1), (1, 3), (2, 1)]));
    }

    #[test]
    fn quantiles_use_nearest_rank() {
        let mut counts = LatencyCounts::default();
        assert_eq!(counts.quantile_ns(0.5), None);
        for v in 1..=10u64 {
            counts.add(index_of(v), 1);
        }
        assert_eq!(counts.quantile_ns(0.5), Some(5.0));
        assert_eq!(counts.quantile_ns(0.99), Some(10.0));
        assert_eq!(counts.quantile_ns(0.0), Some(1.0));
    }
}
