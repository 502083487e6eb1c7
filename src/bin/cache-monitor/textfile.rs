//! `cache-monitor textfile`: the metrics as a file for node_exporter's textfile collector.
//!
//! The collector reads every `*.prom` file of its directory at each scrape, so a file must never be seen
//! half written: the text goes to a temporary name that does not end in `.prom` (`.NAME.prom.PID.tmp`),
//! then is renamed over `NAME.prom`, which replaces it in one step. With `--every`, the state file is
//! opened afresh for each write (a file replaced under its name is followed) and the last `.prom` file
//! is left in place at the end: node_exporter's `node_textfile_mtime_seconds` tells how old it is.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::signals::Signals;
use super::{Failure, open, print_out};

pub(super) fn run(path: &Path, out: &Path, name: Option<&str>, every: Option<u64>) -> Result<(), Failure> {
    if let Some(name) = name {
        check_name(name)?;
    }
    let signals = every.map(|_| Signals::block()).transpose()?;
    let written = write_once(path, out, name)?;
    let (Some(seconds), Some(signals)) = (every, signals) else {
        print_out(&format!("wrote {}\n", written.display()))?;
        return Ok(());
    };
    eprintln!(
        "cache-monitor: writing {} every {seconds} s (Ctrl-C to stop)",
        written.display()
    );
    let period = Duration::from_secs(seconds);
    let mut next = Instant::now() + period;
    let mut failing = false;
    while !signals.wait(next.saturating_duration_since(Instant::now())) {
        next += period;
        if next < Instant::now() {
            next = Instant::now() + period; // a slow write: keep the period, do not catch up
        }
        // A failure now (the directory full, the state file replaced by a bad one) may pass: say so
        // once, and again when it recovers.
        match write_once(path, out, name) {
            Ok(_) if failing => {
                eprintln!("cache-monitor: writing {} again", written.display());
                failing = false;
            }
            Ok(_) => {}
            Err(Failure::Runtime(message) | Failure::Usage(message)) if !failing => {
                eprintln!("cache-monitor: {message}; trying again in {seconds} s");
                failing = true;
            }
            Err(_) => {}
        }
    }
    eprintln!(
        "cache-monitor: stopped; {} stays with the last counts written",
        written.display()
    );
    Ok(())
}

/// A name node_exporter reads and that stays in `out`: not empty, no `/`, not hidden, no NUL.
fn check_name(name: &str) -> Result<(), Failure> {
    if name.is_empty() || name.contains(['/', '\0']) || name.starts_with('.') {
        return Err(Failure::Usage(format!(
            "--name {name:?}: expected a file name without `/` that does not start with `.`"
        )));
    }
    Ok(())
}

/// Renders the state file at `path` into `out/NAME.prom`; returns that path.
fn write_once(path: &Path, out: &Path, name: Option<&str>) -> Result<PathBuf, Failure> {
    let monitor = open(path)?;
    let name = match name {
        Some(name) => name.to_owned(),
        None => monitor.config().namespace,
    };
    let text = monitor.render_prometheus();
    let target = out.join(format!("{name}.prom"));
    let temporary = out.join(format!(".{name}.prom.{}.tmp", std::process::id()));
    let failed =
        |what: &str, error: std::io::Error| Failure::Runtime(format!("cannot {what} {}: {error}", target.display()));
    let result = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temporary)
        .and_then(|mut file| file.write_all(text.as_bytes()).and_then(|()| file.sync_data()));
    if let Err(error) = result {
        let _ = std::fs::remove_file(&temporary);
        return Err(failed("write", error));
    }
    if let Err(error) = std::fs::rename(&temporary, &target) {
        let _ = std::fs::remove_file(&temporary);
        return Err(failed("rename a temporary file to", error));
    }
    Ok(target)
}
