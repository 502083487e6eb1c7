//! `cache-monitor check`: the library's `check_state_file`, printed. The summary and notes go to
//! standard output, every problem to standard error as `cache-monitor: state file FILE: problem`; the
//! exit status is 0 only for a sound file.

use std::path::Path;

use cache_monitor::check::{StateFileReport, check_state_file};

use super::{Failure, print_out, thousands, utc};

pub(super) fn run(path: &Path) -> Result<(), Failure> {
    let report = check_state_file(path)?;
    print_out(&summary(&report))?;
    for problem in &report.problems {
        eprintln!("cache-monitor: state file {}: {problem}", path.display());
    }
    if report.is_sound() {
        Ok(())
    } else {
        Err(Failure::Silent)
    }
}

fn summary(report: &StateFileReport) -> String {
    let unknown = || "-".to_owned();
    let mut lines = vec![
        format!("state file   {}", report.path.display()),
        format!(
            "size         {} bytes{}",
            thousands(report.size),
            report
                .layout_version
                .map_or_else(String::new, |version| format!(" (layout version {version})"))
        ),
        format!(
            "created      {}{}",
            report.created_unix_seconds.map_or_else(unknown, utc),
            report
                .creator
                .as_ref()
                .map_or_else(String::new, |creator| format!(" by {creator}"))
        ),
        format!(
            "namespace    {}{}",
            report.namespace.clone().unwrap_or_else(unknown),
            if report.custom_operations.is_empty() {
                String::new()
            } else {
                format!(" (custom operations: {})", report.custom_operations.join(", "))
            }
        ),
        format!(
            "shards       {} in use, {} live",
            report.shards_in_use, report.shards_live
        ),
        format!(
            "operations   {} since the last reset ({} ever)",
            thousands(report.operations_counted),
            thousands(report.operations_counted_ever)
        ),
        format!("patterns     {} learned", report.patterns_learned),
        format!(
            "history      {}",
            report
                .history_start_unix_seconds
                .map_or_else(|| "none yet".to_owned(), |start| format!("since {}", utc(start)))
        ),
    ];
    for note in &report.notes {
        lines.push(format!("note         {note}"));
    }
    lines.push(match report.problems.len() {
        0 => "sound        yes".to_owned(),
        1 => "sound        no: 1 problem (on standard error)".to_owned(),
        n => format!("sound        no: {n} problems (on standard error)"),
    });
    lines.join("\n") + "\n"
}
