//! `cache-monitor`, the command: serves, shows, exports, pushes, resets and checks the counts in a state
//! file, the memory-mapped file that every process attaching it records into (`CACHE_MONITOR_STATE=FILE`,
//! or `{"state": {"path": "FILE"}}`).
//!
//! ```sh
//! cache-monitor serve --state "$XDG_RUNTIME_DIR/myapp.state"          # /metrics for Prometheus
//! cache-monitor show --state "$XDG_RUNTIME_DIR/myapp.state" --watch   # a live summary, as top does
//! cache-monitor textfile --state FILE --out /var/lib/node_exporter/textfile_collector
//! cache-monitor push --state FILE --gateway http://pushgateway:9091 --job nightly-build
//! cache-monitor check --state FILE                                     # is the file sound?
//! ```
//!
//! Exit status: 0 on success, 1 when something failed at run time (a missing or refused file, a push the
//! gateway refused, a check that found problems), 2 for a usage error. Errors go to standard error as
//! `cache-monitor: <message>`. Commands that run until stopped (`serve`, `show --watch`,
//! `textfile --every`) stop cleanly on Ctrl-C or SIGTERM.

mod check;
mod push;
mod serve;
mod show;
mod signals;
mod textfile;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cache_monitor::Monitor;
use clap::{Parser, Subcommand, ValueEnum};

/// Serve, show, export, push, reset and check the counts of a cache-monitor state file.
///
/// A state file holds the counts of every process that attaches it: hosts turn it on with
/// `CACHE_MONITOR_STATE=FILE` or the configuration key `{"state": {"path": "FILE"}}`. Every option
/// `--state` also reads `CACHE_MONITOR_STATE`.
#[derive(Debug, Parser)]
#[command(name = "cache-monitor", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The state file option every subcommand takes.
#[derive(Debug, clap::Args)]
struct StateArg {
    /// The state file (the hosts' `CACHE_MONITOR_STATE`).
    #[arg(long, value_name = "FILE", env = "CACHE_MONITOR_STATE")]
    state: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the file's metrics over HTTP, every endpoint of the in-process exporter, until Ctrl-C.
    ///
    /// Endpoints: /metrics (Prometheus text, or OpenMetrics when asked), /hit-rate.json, /stats.json, and
    /// an index at /. If the file does not exist yet, waits for a host to create it (or creates it with
    /// --create). If the file is replaced (removed and created again), serves the new one.
    Serve {
        #[command(flatten)]
        state: StateArg,
        /// Where to listen: IP:port (port 0 picks a free one; the address is printed).
        #[arg(long, value_name = "ADDR", default_value = cache_monitor::exporter::DEFAULT_ADDRESS)]
        listen: String,
        /// Create the file now (default configuration; the first host to attach it may still set its
        /// namespace, buckets and patterns) instead of waiting for a host to create it.
        #[arg(long)]
        create: bool,
    },
    /// Print the file's metrics or reports once, or a live summary every second (--watch).
    Show {
        #[command(flatten)]
        state: StateArg,
        /// What to print.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Redraw a short summary every second until Ctrl-C (operations per second, hit rate per window,
        /// in flight, p99, top key patterns); clears the screen only when writing to a terminal.
        #[arg(long, conflicts_with = "format")]
        watch: bool,
    },
    /// Write the metrics for node_exporter's textfile collector: DIR/NAME.prom, through a temporary
    /// file renamed into place.
    Textfile {
        #[command(flatten)]
        state: StateArg,
        /// The collector's directory (node_exporter's --collector.textfile.directory).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The file's name without `.prom` (default: the file's namespace).
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Write again every SECONDS until Ctrl-C, instead of once.
        #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
        every: Option<u64>,
    },
    /// Push the metrics to a Prometheus Pushgateway once (PUT: replaces the group's metrics).
    Push {
        #[command(flatten)]
        state: StateArg,
        /// The gateway: http://HOST[:PORT][/PREFIX] (user:password@ for basic authentication).
        #[arg(long, value_name = "URL")]
        gateway: String,
        /// The job label of the group.
        #[arg(long, value_name = "NAME")]
        job: String,
        /// The instance label of the group, if any.
        #[arg(long, value_name = "I")]
        instance: Option<String>,
        /// Give up after this many seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
        timeout: u64,
    },
    /// Forget every count in the file, for every process attached to it (operations in flight stay).
    Reset {
        #[command(flatten)]
        state: StateArg,
    },
    /// Check the file: header, layout, recorded configuration, and a structural pass over its counts.
    /// Exits 0 when the file is sound, 1 otherwise; every problem is printed.
    Check {
        #[command(flatten)]
        state: StateArg,
    },
}

/// What `show` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.0.
    Openmetrics,
    /// The hit-rate report (JSON): rolling windows, operations, key patterns.
    Json,
    /// The stats report (JSON): in flight, operations per second, latencies, alerts.
    Stats,
}

/// Why the command failed: the exit status and the message for standard error.
#[derive(Debug)]
enum Failure {
    /// Exit status 2.
    Usage(String),
    /// Exit status 1.
    Runtime(String),
    /// Exit status 1, everything already said.
    Silent,
}

impl From<cache_monitor::Error> for Failure {
    fn from(error: cache_monitor::Error) -> Self {
        match error {
            cache_monitor::Error::InvalidAddress(_) => Self::Usage(error.to_string()),
            other => Self::Runtime(other.to_string()),
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    let result = match cli.command {
        Command::Serve { state, listen, create } => serve::run(&state.state, &listen, create),
        Command::Show { state, format, watch } => {
            if watch {
                show::watch(&state.state)
            } else {
                show::once(&state.state, format)
            }
        }
        Command::Textfile {
            state,
            out,
            name,
            every,
        } => textfile::run(&state.state, &out, name.as_deref(), every),
        Command::Push {
            state,
            gateway,
            job,
            instance,
            timeout,
        } => push::run(&state.state, &gateway, &job, instance.as_deref(), timeout),
        Command::Reset { state } => reset(&state.state),
        Command::Check { state } => check::run(&state.state),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("cache-monitor: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(message)) => {
            eprintln!("cache-monitor: {message}");
            ExitCode::from(1)
        }
        Err(Failure::Silent) => ExitCode::from(1),
    }
}

/// Prints clap's message (help and version to standard output, with status 0; errors to standard error
/// as `cache-monitor: ...`, with status 2).
fn usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(error.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        print!("{error}");
        return ExitCode::SUCCESS;
    }
    if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        eprint!("{error}");
        return ExitCode::from(2);
    }
    let text = error.to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    eprint!("cache-monitor: {text}");
    ExitCode::from(2)
}

/// Opens the existing state file at `path` for reading (it records nothing).
fn open(path: &Path) -> Result<Monitor, Failure> {
    Monitor::open_state_file(path).map_err(Failure::from)
}

/// Writes `text` to standard output; a closed pipe (`| head`) ends the command quietly.
fn print_out(text: &str) -> Result<Flow, Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(Flow::Go),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(Flow::Stop),
        Err(error) => Err(Failure::Runtime(format!("cannot write to standard output: {error}"))),
    }
}

/// Whether to go on after writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Go,
    Stop,
}

fn reset(path: &Path) -> Result<(), Failure> {
    let monitor = open(path)?;
    let forgotten = operations(&monitor);
    monitor.reset();
    print_out(&format!(
        "reset {}: {} operations forgotten, for every process attached to it\n",
        path.display(),
        thousands(forgotten)
    ))?;
    Ok(())
}

/// Operations recorded since the last reset.
fn operations(monitor: &Monitor) -> u64 {
    monitor
        .totals()
        .series
        .iter()
        .flatten()
        .fold(0u64, |sum, series| sum.saturating_add(series.count))
}

/// `1234567` as `1,234,567`.
fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian calendar).
fn utc(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let seconds = unix_seconds % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_dates_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(12_345_678), "12,345,678");
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_767_225_599), "2025-12-31 23:59:59 UTC");
    }

    #[test]
    fn the_arguments_are_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
