//! `cache-monitor show`: one render of a state file, or (`--watch`) a short live summary redrawn every
//! second, as `top` does.

use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use cache_monitor::Monitor;
use cache_monitor::render::json::{HitRateReport, StatsReport};

use super::signals::Signals;
use super::{Failure, Flow, Format, open, operations, print_out, thousands, utc};

/// Prints one render of the file.
pub(super) fn once(path: &Path, format: Format) -> Result<(), Failure> {
    let monitor = open(path)?;
    let mut text = match format {
        Format::Text => monitor.render_prometheus(),
        Format::Openmetrics => monitor.render_openmetrics(),
        Format::Json => monitor.render_hit_rate_json(),
        Format::Stats => monitor.render_stats_json(),
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    print_out(&text)?;
    Ok(())
}

/// Redraws the summary every second until Ctrl-C or SIGTERM (or until standard output closes).
pub(super) fn watch(path: &Path) -> Result<(), Failure> {
    let signals = Signals::block()?;
    let monitor = open(path)?;
    let terminal = std::io::stdout().is_terminal();
    let mut previous: Option<(Instant, u64)> = None;
    loop {
        let now = Instant::now();
        let total = operations(&monitor);
        let per_second = previous.and_then(|(then, before)| {
            let seconds = now.duration_since(then).as_secs_f64();
            (total >= before && seconds > 0.0).then(|| (total - before) as f64 / seconds)
        });
        previous = Some((now, total));
        let frame = summary(&monitor, path, total, per_second);
        // Home and clear on a terminal; one block after another anywhere else.
        let frame = if terminal {
            format!("\x1b[H\x1b[2J{frame}")
        } else {
            format!("{frame}\n")
        };
        if print_out(&frame)? == Flow::Stop {
            return Ok(());
        }
        let next = now + Duration::from_secs(1);
        if signals.wait(next.saturating_duration_since(Instant::now())) {
            return Ok(());
        }
    }
}

/// The summary of one moment: `total` operations since the reset, `per_second` since the last frame.
fn summary(monitor: &Monitor, path: &Path, total: u64, per_second: Option<f64>) -> String {
    let view = monitor.view();
    let rates = HitRateReport::new(&view);
    let stats = StatsReport::new(&view);
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut lines = vec![format!(
        "cache-monitor  {}  namespace {}  {}",
        clean(&path.display().to_string()),
        view.config.namespace,
        utc(wall)
    )];
    lines.push(format!(
        "operations/s  {:>12} now  {:>12} over the last minute   {} since the reset",
        per_second.map_or_else(|| "-".to_owned(), |rate| format!("{rate:.1}")),
        format!("{:.1}", stats.operations_per_second),
        thousands(total)
    ));
    let windows: Vec<String> = rates
        .windows
        .iter()
        .map(|window| format!("{} {}", window.window, percent(window.rate.hit_rate)))
        .collect();
    lines.push(format!("hit rate      {}", windows.join("   ")));
    lines.push(format!("in flight     {}", thousands(stats.operations_in_flight)));
    let p99: Vec<String> = stats
        .latency
        .iter()
        .filter(|latency| latency.last_minute.count > 0)
        .map(|latency| format!("{} {}", latency.operation, duration(latency.last_minute.p99_seconds)))
        .collect();
    lines.push(format!(
        "p99           {}",
        if p99.is_empty() {
            "- (nothing in the last minute)".to_owned()
        } else {
            format!("{}   (last minute)", p99.join("   "))
        }
    ));
    let mut patterns: Vec<_> = rates
        .key_patterns
        .iter()
        .chain(std::iter::once(&rates.other_patterns))
        .filter(|pattern| pattern.total_accesses > 0)
        .collect();
    patterns.sort_by(|a, b| b.total_accesses.cmp(&a.total_accesses).then(a.pattern.cmp(&b.pattern)));
    if patterns.is_empty() {
        lines.push("top patterns  -".to_owned());
    }
    for (rank, pattern) in patterns.iter().take(5).enumerate() {
        lines.push(format!(
            "{}{:<24} {:>14} ops  {} hits",
            if rank == 0 { "top patterns  " } else { "              " },
            shorten(&pattern.pattern, 24),
            thousands(pattern.total_accesses),
            percent(pattern.rate.hit_rate)
        ));
    }
    if !stats.firing_alerts.is_empty() {
        lines.push(format!("alerts        {}", stats.firing_alerts.join(", ")));
    }
    lines.join("\n") + "\n"
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "-".to_owned(), |rate| format!("{:.1}%", rate * 100.0))
}

fn duration(seconds: Option<f64>) -> String {
    match seconds {
        None => "-".to_owned(),
        Some(s) if s < 1e-6 => format!("{:.0} ns", s * 1e9),
        Some(s) if s < 1e-3 => format!("{:.1} us", s * 1e6),
        Some(s) if s < 1.0 => format!("{:.1} ms", s * 1e3),
        Some(s) => format!("{s:.2} s"),
    }
}

/// `text` with control characters shown as `?`.
fn clean(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// `text` cut to `width` characters, with `…` when cut; control characters shown as `?` so that a key
/// cannot move the cursor.
fn shorten(text: &str, width: usize) -> String {
    let clean = clean(text);
    if clean.chars().count() <= width {
        return clean;
    }
    let mut cut: String = clean.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_well() {
        assert_eq!(percent(None), "-");
        assert_eq!(percent(Some(0.716)), "71.6%");
        assert_eq!(duration(Some(850e-9)), "850 ns");
        assert_eq!(duration(Some(2.1e-3)), "2.1 ms");
        assert_eq!(shorten("user:*", 24), "user:*");
        assert_eq!(shorten("a\x1b[2Jb", 24), "a?[2Jb");
        assert_eq!(shorten("abcdef", 4), "abc…");
    }
}
