//! `cache-monitor serve`: the library's HTTP exporter over a state file, until Ctrl-C or SIGTERM.
//!
//! The file is opened read-side (`Monitor::open_state_file`): the command records nothing and claims no
//! writer slot. A file that does not exist yet is waited for, with a message, since a command-line host
//! creates it at its first use; `--create` creates it instead. Once a second the command looks at the
//! path: a file replaced under the same name (removed and created again) is served in place of the old
//! one, on the same address.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cache_monitor::Monitor;
use cache_monitor::exporter::{Exporter, parse_address};

use super::signals::Signals;
use super::{Failure, open};

/// How often the path is looked at while waiting for the file.
const WAIT_POLL: Duration = Duration::from_millis(200);
/// How often the path is looked at while serving.
const SERVE_POLL: Duration = Duration::from_secs(1);

/// Which file a path names: device and inode.
fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|metadata| (metadata.dev(), metadata.ino()))
}

pub(super) fn run(path: &Path, listen: &str, create: bool) -> Result<(), Failure> {
    let signals = Signals::block()?;
    parse_address(listen)?;
    let Some(monitor) = (if create {
        Some(create_or_open(path)?)
    } else {
        wait_for(path, &signals)?
    }) else {
        return Ok(()); // stopped while waiting
    };
    let mut served = identity(path);
    let mut exporter = Exporter::start(Arc::new(monitor), listen)?;
    let address = exporter.local_addr();
    eprintln!(
        "cache-monitor: serving {} at http://{address}/metrics (Ctrl-C to stop)",
        path.display()
    );
    let mut removed_said = false;
    let mut refused_said = None;
    while !signals.wait(SERVE_POLL) {
        let now = identity(path);
        if now == served {
            continue;
        }
        let Some(_) = now else {
            if !removed_said {
                eprintln!(
                    "cache-monitor: {} was removed; serving its last counts until a file appears there again",
                    path.display()
                );
                removed_said = true;
            }
            continue;
        };
        match open(path) {
            Ok(monitor) => {
                // The same address, the actual port if 0 was asked for: the old listener is closed first.
                exporter.stop();
                exporter = Exporter::start(Arc::new(monitor), &address.to_string())?;
                served = now;
                removed_said = false;
                refused_said = None;
                eprintln!(
                    "cache-monitor: {} was replaced; serving the new file at http://{address}/metrics",
                    path.display()
                );
            }
            Err(Failure::Runtime(message) | Failure::Usage(message)) if refused_said != now => {
                eprintln!("cache-monitor: {message}; still serving the file it replaced");
                refused_said = now;
            }
            Err(_) => {}
        }
    }
    exporter.stop();
    eprintln!("cache-monitor: stopped serving {}", path.display());
    Ok(())
}

/// Opens the file at `path`, creating it (with the default configuration) if it does not exist.
fn create_or_open(path: &Path) -> Result<Monitor, Failure> {
    let text = path.to_str().ok_or_else(|| {
        Failure::Usage(format!(
            "state file {}: --create takes a UTF-8 path (the configuration's `state.path` is text)",
            path.display()
        ))
    })?;
    let monitor = Monitor::new();
    monitor.configure(&serde_json::json!({ "state": { "path": text } }).to_string())?;
    Ok(monitor)
}

/// Waits until a file exists at `path` and opens it; `None` if Ctrl-C or SIGTERM came first. A file that
/// exists but cannot be used is an error, not a reason to wait.
fn wait_for(path: &Path, signals: &Signals) -> Result<Option<Monitor>, Failure> {
    let mut said = false;
    loop {
        match std::fs::symlink_metadata(path) {
            Ok(_) => return open(path).map(Some),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(Failure::Runtime(format!(
                    "state file {}: cannot look at it: {error}",
                    path.display()
                )));
            }
        }
        if !said {
            eprintln!(
                "cache-monitor: waiting for {} to appear (a host creates it when it first attaches it; \
                 --create makes it now; Ctrl-C to stop)",
                path.display()
            );
            said = true;
        }
        if signals.wait(WAIT_POLL) {
            return Ok(None);
        }
    }
}
