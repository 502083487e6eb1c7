//! The live summary, computed from two renders of the exposition one tick apart: operations per
//! second, the hit rate of gets, and the 99th percentile of get latency (interpolated within the
//! histogram's buckets, as Prometheus' `histogram_quantile` does).

/// What one render says, reduced to what the summary shows.
#[derive(Clone, Default)]
pub struct Snapshot {
    pub operations: u64,
    pub get_hits: u64,
    pub get_misses: u64,
    pub errors: u64,
    /// Cumulative counts of get durations per bucket bound (seconds), `+Inf` last.
    pub get_buckets: Vec<(f64, u64)>,
    pub in_flight: f64,
    pub entries: f64,
    pub size_bytes: f64,
}

/// The value of `name="..."` in a label set such as `operation="get",result="hit"`.
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    labels.split(',').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.trim_matches('"'))
    })
}

impl Snapshot {
    /// Reads the families of namespace `ns` from a text exposition.
    pub fn parse(exposition: &str, ns: &str) -> Self {
        let mut snapshot = Self::default();
        for line in exposition.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let Some(name) = name.strip_prefix(ns).and_then(|n| n.strip_prefix('_')) else {
                continue;
            };
            let count = value.parse::<u64>().unwrap_or(0);
            let float = value.parse::<f64>().unwrap_or(f64::NAN);
            let operation = label(labels, "operation");
            let result = label(labels, "result");
            match name {
                "operations_total" => {
                    snapshot.operations += count;
                    match (operation, result) {
                        (Some("get"), Some("hit")) => snapshot.get_hits += count,
                        (Some("get"), Some("miss")) => snapshot.get_misses += count,
                        (_, Some("error")) => snapshot.errors += count,
                        _ => {}
                    }
                }
                "operation_duration_seconds_bucket" if operation == Some("get") => {
                    let le = match label(labels, "le") {
                        Some("+Inf") => f64::INFINITY,
                        Some(bound) => bound.parse().unwrap_or(f64::NAN),
                        None => continue,
                    };
                    // Hits and misses share the bounds: add them up per bound.
                    match snapshot.get_buckets.iter_mut().find(|(b, _)| *b == le) {
                        Some((_, total)) => *total += count,
                        None => snapshot.get_buckets.push((le, count)),
                    }
                }
                "stats" => match label(labels, "metric") {
                    Some("operations_in_flight") => snapshot.in_flight = float,
                    Some("entries") => snapshot.entries = float,
                    Some("size_bytes") => snapshot.size_bytes = float,
                    _ => {}
                },
                _ => {}
            }
        }
        snapshot.get_buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        snapshot
    }
}

/// The `q` quantile of the get durations recorded between `before` and `after`, in seconds.
pub fn quantile(q: f64, before: &Snapshot, after: &Snapshot) -> Option<f64> {
    let delta: Vec<(f64, u64)> = after
        .get_buckets
        .iter()
        .map(|&(bound, count)| {
            let earlier = before
                .get_buckets
                .iter()
                .find(|(b, _)| *b == bound)
                .map_or(0, |&(_, c)| c);
            (bound, count.saturating_sub(earlier))
        })
        .collect();
    let total = delta.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut lower = (0.0, 0u64);
    for &(bound, cumulative) in &delta {
        if cumulative as f64 >= rank {
            if bound.is_infinite() {
                return Some(lower.0);
            }
            let in_bucket = (cumulative - lower.1) as f64;
            let fraction = if in_bucket > 0.0 {
                (rank - lower.1 as f64) / in_bucket
            } else {
                1.0
            };
            return Some(lower.0 + (bound - lower.0) * fraction);
        }
        lower = (bound, cumulative);
    }
    None
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration in seconds with a readable unit.
pub fn duration(seconds: f64) -> String {
    if seconds < 1e-3 {
        format!("{:.0} us", seconds * 1e6)
    } else if seconds < 1.0 {
        format!("{:.1} ms", seconds * 1e3)
    } else {
        format!("{seconds:.2} s")
    }
}

/// Bytes with a binary unit.
pub fn bytes(n: f64) -> String {
    if n >= (1 << 20) as f64 {
        format!("{:.1} MiB", n / (1 << 20) as f64)
    } else {
        format!("{:.0} KiB", n / 1024.0)
    }
}

/// One summary line for the tick from `before` to `after`, `seconds` apart.
pub fn line(elapsed: f64, seconds: f64, before: &Snapshot, after: &Snapshot) -> String {
    let per_second = |a: u64, b: u64| (a.saturating_sub(b) as f64 / seconds.max(1e-9)).round() as u64;
    let hits = after.get_hits.saturating_sub(before.get_hits);
    let misses = after.get_misses.saturating_sub(before.get_misses);
    let hit_rate = if hits + misses > 0 {
        format!("{:.1}%", 100.0 * hits as f64 / (hits + misses) as f64)
    } else {
        "-".to_owned()
    };
    let p99 = quantile(0.99, before, after).map_or_else(|| "-".to_owned(), duration);
    format!(
        "{elapsed:>5.0}s  {:>9} ops/s  hit rate {hit_rate:>6}  p99 get {p99:>9}  errors {:>4}/s  in flight {:>3}  entries {:>6}  size {}",
        thousands(per_second(after.operations, before.operations)),
        per_second(after.errors, before.errors),
        after.in_flight,
        thousands(after.entries as u64),
        bytes(after.size_bytes),
    )
}
