//! Prometheus native-histogram bucket indexes, exact and in constant time.
//!
//! A native histogram of schema `s` has exponential buckets: bucket `k` holds the values `v` with
//! `2^((k-1)/2^s) < v <= 2^(k/2^s)` (upper-inclusive, as Prometheus defines them), and a zero bucket
//! holds the values at or below the zero threshold. The monitor keeps every duration at schema
//! [`STORED_SCHEMA`] (5: 32 buckets per power of two, each 2.2% wide) and renders any coarser schema by
//! merging `2^(5-s)` adjacent buckets ([`coarsen`]): bucket `k` of schema `s` is exactly the union of the
//! schema-5 buckets `(k-1)·2^(5-s)+1 ..= k·2^(5-s)`, because both share the bound `2^(k/2^s)`.
//!
//! # The index, without a logarithm or a loop
//!
//! A positive, normal `f64` is `2^e · (1 + m/2^52)` with the exponent `e` and the 52 mantissa bits `m`
//! in its bits. The octave is `e`; the sub-bucket is the `j` in `0..=32` with
//! `2^((j-1)/32) < 1 + m/2^52 <= 2^(j/32)`, and then `k = 32e + j` (`j = 0` only for `m = 0`: a power
//! of two is the upper bound of bucket `32e`). Bounds of one octave are the same mantissas in every
//! octave, so one table of the 33 bound mantissas (`BOUNDS`, correctly rounded, as in client_golang's
//! `nativeHistogramBounds`) serves all octaves. To find `j` without a search, the top
//! `SLOT_BITS` (6) mantissa bits pick a slot of the octave, and a second table gives the first bound at
//! or above the slot's start. Slots (`1/64` of an octave's mantissa range) are narrower than the
//! narrowest bucket (`2^(1/32) - 1 ≈ 0.0219`), so at most one bound lies inside a slot, and one
//! comparison of the mantissa with that bound decides between it and the next:
//! `j = first[m >> 46] + (m > bound[first[m >> 46]])`. Comparing mantissas is comparing the values
//! themselves (same exponent), so the index agrees with Prometheus's `f64` bounds at every bound and
//! either side of it (the tests check every bound of every supported schema).

/// The schema the monitor stores every duration at (32 buckets per power of two), the coarsest and the
/// finest it renders (`config::native_histograms` says why not finer).
pub use crate::config::native_histograms::{MAX_SCHEMA, MIN_SCHEMA, STORED_SCHEMA};

/// The zero bucket's threshold, in seconds: client_golang's default (`2^-128`), so that histograms
/// from this library merge with those of Go services without widening anyone's zero bucket. A
/// duration is never that short but for 0 ns, which is all the zero bucket holds.
pub const ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39;

/// Buckets per power of two at the stored schema.
const SUB_BUCKETS: i32 = 1 << STORED_SCHEMA;

/// `2^(j/32)` for `j` in `0..32`, correctly rounded (the values of client_golang's schema-5 bounds,
/// doubled).
const BOUNDS: [f64; 32] = [
    1.0,
    1.021_897_148_654_116_6,
    1.044_273_782_427_413_8,
    1.067_140_400_676_823_7,
    1.090_507_732_665_257_7,
    1.114_386_742_595_892_4,
    1.138_788_634_756_691_6,
    1.163_724_858_777_577_5,
    1.189_207_115_002_721,
    1.215_247_359_980_469,
    1.241_857_812_073_484,
    1.269_050_957_191_733_2,
    1.296_839_554_651_009_6,
    1.325_236_643_159_741_3,
    1.354_255_546_936_892_7,
    1.383_909_881_963_832,
    std::f64::consts::SQRT_2,
    1.445_180_806_977_046_7,
    1.476_826_145_939_499_3,
    1.509_164_427_593_422_8,
    1.542_210_825_407_940_7,
    1.575_980_845_107_886_5,
    1.610_490_331_949_254_3,
    1.645_755_478_153_965,
    1.681_792_830_507_429,
    1.718_619_298_122_478,
    1.756_252_160_373_299_5,
    1.794_709_075_003_107_2,
    1.834_008_086_409_342_4,
    1.874_167_634_110_3,
    1.915_206_561_397_147_4,
    1.957_144_124_175_400_2,
];

const MANTISSA_BITS: u32 = 52;
const MANTISSA_MASK: u64 = (1 << MANTISSA_BITS) - 1;

/// The mantissa bits of `2^(j/32)` for `j` in `0..=32`; `2^52` (the mantissa of 2 as if it stayed in
/// the octave) for `j = 32`, above every mantissa.
const BOUND_MANTISSAS: [u64; 33] = {
    let mut table = [1 << MANTISSA_BITS; 33];
    let mut j = 0;
    while j < 32 {
        table[j] = BOUNDS[j].to_bits() & MANTISSA_MASK;
        j += 1;
    }
    table
};

/// log2 of the slots an octave's mantissas are split into.
const SLOT_BITS: u32 = 6;

/// Per slot, the first `j` whose bound mantissa is at or above the slot's first mantissa.
const FIRST_BOUND: [u8; 1 << SLOT_BITS] = {
    let mut table = [0u8; 1 << SLOT_BITS];
    let mut slot = 0;
    while slot < table.len() {
        let start = (slot as u64) << (MANTISSA_BITS - SLOT_BITS);
        let mut j = 0;
        while BOUND_MANTISSAS[j] < start {
            j += 1;
        }
        table[slot] = j as u8;
        slot += 1;
    }
    table
};

// At most one bound inside any slot: the narrowest bucket is wider than a slot.
const _: () = {
    let slot = 1u64 << (MANTISSA_BITS - SLOT_BITS);
    let mut j = 1;
    while j < 33 {
        assert!(BOUND_MANTISSAS[j] - BOUND_MANTISSAS[j - 1] > slot);
        j += 1;
    }
};

/// The schema-5 bucket index of `value`, a positive normal `f64` (callers send values at or below
/// [`ZERO_THRESHOLD`] to the zero bucket): `k` with `2^((k-1)/32) < value <= 2^(k/32)`.
#[inline(always)]
pub const fn index_of(value: f64) -> i32 {
    let bits = value.to_bits();
    let exponent = ((bits >> MANTISSA_BITS) & 0x7ff) as i32 - 1023;
    let mantissa = bits & MANTISSA_MASK;
    let first = FIRST_BOUND[(mantissa >> (MANTISSA_BITS - SLOT_BITS)) as usize] as usize;
    let j = first as i32 + (mantissa > BOUND_MANTISSAS[first]) as i32;
    exponent * SUB_BUCKETS + j
}

/// The upper bound of schema-5 bucket `k`, `2^(k/32)`, as the `f64` Prometheus compares with (for `k`
/// whose bound is a normal `f64`: `|k| < 32 * 1022`).
pub const fn upper_bound(k: i32) -> f64 {
    let exponent = k.div_euclid(SUB_BUCKETS);
    let j = k.rem_euclid(SUB_BUCKETS) as usize;
    f64::from_bits((((exponent + 1023) as u64) << MANTISSA_BITS) | BOUND_MANTISSAS[j])
}

/// The index at schema `schema` (at most [`STORED_SCHEMA`]) of the bucket that contains schema-5
/// bucket `k`: `ceil(k / 2^(5-schema))`.
#[inline]
pub const fn coarsen(k: i32, schema: u8) -> i32 {
    let shift = (STORED_SCHEMA - schema) as u32;
    (k + (1 << shift) - 1) >> shift
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `2^(k/2^schema)` computed in `f64`.
    fn bound(k: i32, schema: u8) -> f64 {
        (f64::from(k) / f64::from(1u32 << schema)).exp2()
    }

    #[test]
    fn the_bound_table_is_2_to_the_j_over_32_in_f64() {
        for (j, value) in BOUNDS.iter().enumerate() {
            assert_eq!(*value, (j as f64 / 32.0).exp2(), "2^({j}/32)");
        }
    }

    /// Every bound of every supported schema over the durations a monitor records (1 ns to 2^42 ns,
    /// with margin): the value at the bound falls in `k`, the next `f64` above it in `k + 1`, the one
    /// below in `k`.
    #[test]
    fn every_boundary_falls_on_the_right_side_for_every_schema() {
        for schema in MIN_SCHEMA..=MAX_SCHEMA {
            let per_octave = 1i32 << schema;
            let index = |value: f64| coarsen(index_of(value), schema);
            for k in (-32 * per_octave)..=(14 * per_octave) {
                let at = bound(k, schema);
                assert_eq!(
                    at,
                    upper_bound(k << (STORED_SCHEMA - schema)),
                    "schema {schema} bound {k}"
                );
                assert_eq!(
                    index(at),
                    k,
                    "schema {schema}: 2^({k}/{per_octave}) = {at:e} is in bucket {k}"
                );
                assert_eq!(index(at.next_up()), k + 1, "schema {schema}: just above {at:e}");
                assert_eq!(index(at.next_down()), k, "schema {schema}: just below {at:e}");
            }
        }
    }

    #[test]
    fn values_inside_a_bucket_lie_between_its_bounds() {
        let mut value = 1e-9;
        while value < 5000.0 {
            let k = index_of(value);
            assert!(
                upper_bound(k - 1) < value && value <= upper_bound(k),
                "{value:e} in {k}"
            );
            value *= 1.003_7;
        }
    }

    #[test]
    fn coarsening_rounds_up_for_negative_and_positive_indexes() {
        assert_eq!(coarsen(0, 0), 0);
        assert_eq!(coarsen(1, 0), 1);
        assert_eq!(coarsen(32, 0), 1);
        assert_eq!(coarsen(33, 0), 2);
        assert_eq!(coarsen(-31, 0), 0);
        assert_eq!(coarsen(-32, 0), -1);
        assert_eq!(coarsen(-33, 0), -1);
        assert_eq!(coarsen(-7, 3), -1);
        assert_eq!(coarsen(-8, 3), -2);
        assert_eq!(coarsen(17, STORED_SCHEMA), 17);
    }
}
