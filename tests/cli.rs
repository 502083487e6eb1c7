//! `cache-monitor`, the command, from outside: its renders pass `promtool`, a real Prometheus scrapes
//! `serve` while short-lived writer processes come and go and ends with their exact totals, a push reaches
//! a real Pushgateway and reads back, and corrupted state files get an error or a render from `show`,
//! `check`, `serve` and attaching processes, never a crash.
//!
//! Writer and attacher processes are this test binary again, run with `CLI_TEST_ROLE` set (see
//! [`child_roles`]). Nothing waits on time except for liveness: every wait has a deadline and fails the
//! test when it passes.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cache_monitor::check::{FilePart, state_file_layout};
use cache_monitor::{Monitor, Operation, Outcome};
use support::prometheus::{self, query};
use support::{ChildGuard, assert_promtool_accepts, exposition, files, free_port, http_get, poll_until};

/// The command under test.
const BIN: &str = env!("CARGO_BIN_EXE_cache-monitor");

/// Environment variable that turns this test binary into a child process (see [`child_roles`]).
const ROLE: &str = "CLI_TEST_ROLE";

/// How long any one command may take before the test calls it hung.
const LIVENESS: Duration = Duration::from_secs(120);

// ----------------------------------------------------------------------------------------------------
// Helpers

/// What a finished command left.
#[derive(Debug)]
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn code(&self) -> i32 {
        match (self.status.code(), self.status.signal()) {
            (Some(code), _) => code,
            (None, Some(signal)) => panic!("killed by signal {signal}: {self:#?}"),
            _ => panic!("no exit status: {self:#?}"),
        }
    }
}

/// Reads a child's pipe to the end on a thread of its own.
fn collect(pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = BufReader::new(pipe).read_to_end(&mut text);
        String::from_utf8_lossy(&text).into_owned()
    })
}

/// Runs `command` to the end (at most [`LIVENESS`]; then it is killed and the test fails).
fn run(mut command: Command) -> Ran {
    let described = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {described}: {e}"));
    let stdout = collect(child.stdout.take().expect("piped"));
    let stderr = collect(child.stderr.take().expect("piped"));
    let status = wait_for_exit(&mut child, &described);
    Ran {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// Waits for `child` to exit, killing it and failing the test after [`LIVENESS`].
fn wait_for_exit(child: &mut Child, described: &str) -> ExitStatus {
    let deadline = Instant::now() + LIVENESS;
    loop {
        if let Some(status) = child.try_wait().expect("wait for a child") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{described} did not finish within {LIVENESS:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `cache-monitor ARGS` with no `CACHE_MONITOR_STATE` from the test's environment.
fn cli(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args).env_remove("CACHE_MONITOR_STATE");
    command
}

fn cli_ok(args: &[&str]) -> Ran {
    let ran = run(cli(args));
    assert_eq!(ran.code(), 0, "cache-monitor {args:?} failed: {ran:#?}");
    ran
}

fn text(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// A new monitor attached to the state file at `path`, configured with `json` (an object) besides.
fn attached(path: &Path, json: &str) -> Monitor {
    let mut config: serde_json::Value = serde_json::from_str(json).expect("a JSON object");
    config["state"]["path"] = serde_json::json!(text(path));
    let monitor = Monitor::new();
    monitor.configure(&config.to_string()).expect("attach the state file");
    monitor
}

/// Sends `signal` to `child`.
fn signal(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: `kill` has no memory-safety preconditions; `pid` is our own child, not yet reaped.
    assert_eq!(
        unsafe { libc::kill(pid, signal) },
        0,
        "kill: {}",
        std::io::Error::last_os_error()
    );
}

/// A running `cache-monitor serve`: the process and the lines of its standard error.
struct Served {
    child: ChildGuard,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stdout: Option<std::thread::JoinHandle<String>>,
}

impl Served {
    fn start(args: &[&str]) -> Self {
        let mut child = cli(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cache-monitor serve");
        let stdout = collect(child.stdout.take().expect("piped"));
        let stderr = child.stderr.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child: ChildGuard(child),
            lines,
            seen: Vec::new(),
            stdout: Some(stdout),
        }
    }

    /// The next line of standard error that `matches`, or `None` if the process ended first.
    fn line(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + LIVENESS;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if matches(&line) {
                        return Some(line);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("waiting for {what}; standard error so far:\n{}", self.seen.join("\n"))
                }
            }
        }
    }

    /// The address from `serving FILE at http://ADDR/metrics`, or `None` if it exited first.
    fn address(&mut self) -> Option<SocketAddr> {
        let line = self.line("serve to listen", |line| line.contains(" at http://"))?;
        let address = line.split(" at http://").nth(1)?.split('/').next()?;
        Some(address.parse().unwrap_or_else(|_| panic!("no address in {line:?}")))
    }

    /// Stops it with `sig` and returns how it ended, with everything it wrote.
    fn stop(mut self, sig: libc::c_int) -> Ran {
        signal(&self.child.0, sig);
        let status = wait_for_exit(&mut self.child.0, "cache-monitor serve");
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
            self.seen.push(line);
        }
        Ran {
            status,
            stdout: self
                .stdout
                .take()
                .map(|h| h.join().expect("stdout"))
                .unwrap_or_default(),
            stderr: self.seen.join("\n"),
        }
    }
}

/// This test binary as a child process of `role`, with `CACHE_MONITOR_STATE` set to `state`.
fn child(role: &str, state: &Path, extra: &[(&str, String)]) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("this test binary"));
    command
        .args(["--exact", "child_roles", "--nocapture", "--test-threads", "1"])
        .env(ROLE, role)
        .env("CACHE_MONITOR_STATE", state);
    for (name, value) in extra {
        command.env(name, value);
    }
    command
}

// ----------------------------------------------------------------------------------------------------
// Child processes

/// Does nothing in a normal test run. With `CLI_TEST_ROLE` set, this process is a child of another test:
///
/// - `writer`: records `CLI_TEST_GETS` gets (alternately hit and miss, keys `user:N`) and one put of
///   `session:N` into the process-wide monitor, which `CACHE_MONITOR_STATE` attaches, and exits: a
///   short-lived command-line host;
/// - `attacher`: attaches each file listed in `CLI_TEST_FILES` (one per line) with a new monitor; if
///   that works, records and renders; prints one line per file, `ok` or `refused: why`.
#[test]
fn child_roles() {
    let Ok(role) = std::env::var(ROLE) else { return };
    match role.as_str() {
        "writer" => {
            let gets: u64 = std::env::var("CLI_TEST_GETS")
                .expect("CLI_TEST_GETS")
                .parse()
                .expect("a number");
            let monitor = Monitor::global();
            let state = std::env::var_os("CACHE_MONITOR_STATE").map(PathBuf::from);
            assert_eq!(monitor.state_file(), state, "CACHE_MONITOR_STATE attached the file");
            for i in 0..gets {
                let outcome = if i % 2 == 0 { Outcome::Hit } else { Outcome::Miss };
                let key = format!("user:{i}");
                monitor
                    .record(Operation::GET, outcome, 1_000 + i % 5_000, key.as_bytes())
                    .expect("record");
            }
            monitor
                .record(
                    Operation::PUT,
                    Outcome::Ok,
                    20_000,
                    format!("session:{gets}").as_bytes(),
                )
                .expect("record");
        }
        "attacher" => {
            let files = std::env::var("CLI_TEST_FILES").expect("CLI_TEST_FILES");
            for file in files.lines() {
                let monitor = Monitor::new();
                let json = format!(r#"{{"state": {{"path": {file:?}}}}}"#);
                match monitor.configure(&json) {
                    Ok(()) => {
                        for i in 0..100u64 {
                            let _ =
                                monitor.record(Operation::GET, Outcome::Hit, i * 1_000, format!("k{i}:x").as_bytes());
                        }
                        monitor.begin(Operation::PUT).expect("begin");
                        let text = monitor.render_prometheus();
                        let _ = monitor.render_hit_rate_json();
                        let _ = monitor.render_stats_json();
                        println!("\nattached {file}: ok ({} bytes rendered)", text.len());
                    }
                    Err(error) => println!("\nattached {file}: refused: {error}"),
                }
            }
        }
        other => panic!("unknown {ROLE} {other:?}"),
    }
}

/// Runs a writer child recording `gets` gets and one put into `state`; asserts it succeeded.
fn write_from_a_process(state: &Path, gets: u64) -> Child {
    child("writer", state, &[("CLI_TEST_GETS", gets.to_string())])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start a writer process")
}

fn finish(mut writer: Child) {
    let status = wait_for_exit(&mut writer, "a writer process");
    assert!(status.success(), "a writer process failed: {status:?}");
}

// ----------------------------------------------------------------------------------------------------
// The command's surface

#[test]
fn usage_errors_exit_2_help_exits_0_and_runtime_failures_exit_1() {
    for args in [
        &["--help"][..],
        &["--version"],
        &["serve", "--help"],
        &["show", "--help"],
        &["textfile", "--help"],
        &["push", "--help"],
        &["reset", "--help"],
        &["check", "--help"],
    ] {
        let ran = cli_ok(args);
        assert!(
            ran.stdout.contains("cache-monitor") || ran.stdout.contains("Usage"),
            "{args:?}: {ran:#?}"
        );
    }
    for args in [
        &["show"][..],
        &["show", "--state", "x", "--format", "yaml"],
        &["frobnicate"],
        &["textfile", "--state", "x", "--out", "/tmp", "--every", "0"],
        &[
            "push",
            "--state",
            "x",
            "--gateway",
            "https://gateway:9091",
            "--job",
            "j",
        ],
        &["serve", "--state", "x", "--listen", "localhost:9464"],
    ] {
        let ran = run(cli(args));
        assert_eq!(ran.code(), 2, "{args:?}: {ran:#?}");
        assert!(ran.stderr.starts_with("cache-monitor: "), "{args:?}: {ran:#?}");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.state");
    for command in ["show", "check", "reset"] {
        let ran = run(cli(&[command, "--state", text(&missing)]));
        assert_eq!(ran.code(), 1, "{command}: {ran:#?}");
        assert!(
            ran.stderr.starts_with("cache-monitor: ") && ran.stderr.contains(text(&missing)),
            "{command} names the file: {ran:#?}"
        );
    }
    // The hosts' variable is the default for --state.
    let state = dir.path().join("env.state");
    drop(attached(&state, "{}"));
    let mut command = cli(&["check"]);
    command.env("CACHE_MONITOR_STATE", &state);
    assert_eq!(run(command).code(), 0);
}

#[test]
fn a_file_its_hosts_made_group_readable_is_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("shared/group.state");
    let host = attached(&state, r#"{"state": {"mode": "0640"}}"#);
    host.record(Operation::GET, Outcome::Hit, 1_000, b"").unwrap();
    let mode = std::fs::metadata(&state).expect("created").permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let shown = cli_ok(&["show", "--state", text(&state)]);
    assert!(
        shown
            .stdout
            .contains(r#"cuenv_cache_operations_total{operation="get",result="hit"} 1"#)
    );
    let checked = cli_ok(&["check", "--state", text(&state)]);
    assert!(checked.stdout.contains("permissions 0640"), "noted: {}", checked.stdout);
    drop(host);
}

#[test]
fn show_check_reset_and_watch_over_a_file_of_several_monitors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("app.state");
    let path = text(&state);
    let (a, b) = (attached(&state, r#"{"namespace": "watched"}"#), attached(&state, "{}"));
    for i in 0..300u64 {
        a.record(Operation::GET, Outcome::Hit, 2_000, format!("user:{i}").as_bytes())
            .unwrap();
        b.record(Operation::GET, Outcome::Miss, 3_000, format!("page/{i}").as_bytes())
            .unwrap();
    }
    drop((a, b));

    let check = cli_ok(&["check", "--state", path]);
    for line in [
        "namespace    watched",
        "operations   600 since the last reset (600 ever)",
        "sound        yes",
    ] {
        assert!(check.stdout.contains(line), "{line:?} in\n{}", check.stdout);
    }
    let json = cli_ok(&["show", "--state", path, "--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).expect("the hit-rate report is JSON");
    assert_eq!(report["overall"]["hits"], 300);
    assert_eq!(report["overall"]["misses"], 300);
    let stats = cli_ok(&["show", "--state", path, "--format", "stats"]);
    let stats: serde_json::Value = serde_json::from_str(&stats.stdout).expect("the stats report is JSON");
    assert_eq!(stats["operations_in_flight"], 0);
    let openmetrics = cli_ok(&["show", "--state", path, "--format", "openmetrics"]);
    assert!(openmetrics.stdout.ends_with("# EOF\n"), "{}", openmetrics.stdout);

    // --watch on a pipe: one block per second, no escape sequences, until Ctrl-C.
    let mut watch = cli(&["show", "--state", path, "--watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start show --watch");
    let mut lines = BufReader::new(watch.stdout.take().expect("piped")).lines();
    let mut blocks = 0;
    let mut first = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("a line of the summary");
        assert!(!line.contains('\x1b'), "no escape sequences on a pipe: {line:?}");
        if line.is_empty() {
            blocks += 1;
            if blocks == 2 {
                break;
            }
        } else if blocks == 0 {
            first.push(line);
        }
    }
    let first = first.join("\n");
    for part in [
        "namespace watched",
        "1m 50.0%",
        "in flight     0",
        "user:*",
        "page/*",
        "300 ops",
    ] {
        assert!(first.contains(part), "{part:?} in the summary:\n{first}");
    }
    signal(&watch, libc::SIGINT);
    let status = wait_for_exit(&mut watch, "show --watch");
    assert_eq!(status.code(), Some(0), "Ctrl-C stops --watch cleanly");

    let reset = cli_ok(&["reset", "--state", path]);
    assert!(reset.stdout.contains("600 operations forgotten"), "{}", reset.stdout);
    let after = cli_ok(&["show", "--state", path]);
    assert!(!after.stdout.contains("watched_operations_total{"), "{}", after.stdout);
    let check = cli_ok(&["check", "--state", path]);
    assert!(
        check.stdout.contains("operations   0 since the last reset (600 ever)"),
        "{}",
        check.stdout
    );
}

#[test]
fn promtool_accepts_show_and_the_textfile_of_a_file_written_by_several_monitors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("several.state");
    let monitors: Vec<Monitor> = (0..3)
        .map(|_| attached(&state, r#"{"namespace": "several", "operations": ["compact"]}"#))
        .collect();
    let hostile: [&[u8]; 4] = [b"quote\"d:1", b"new\nline:2", b"back\\slash/3", b"\xff\xfeinvalid:4"];
    std::thread::scope(|scope| {
        for (n, monitor) in monitors.iter().enumerate() {
            scope.spawn(move || {
                for i in 0..1_000u64 {
                    let outcome = [Outcome::Hit, Outcome::Miss, Outcome::Error][(i % 3) as usize];
                    monitor
                        .record(Operation::GET, outcome, 500 * (i + 1), hostile[(i as usize + n) % 4])
                        .unwrap();
                }
                monitor
                    .record(Operation::from_code(7), Outcome::Ok, 1_000_000, b"compact:all")
                    .unwrap();
                monitor.begin(Operation::LOAD).unwrap();
            });
        }
    });
    monitors[0].set_gauge(cache_monitor::Gauge::Entries, 42);

    let shown = cli_ok(&["show", "--state", text(&state), "--format", "text"]);
    assert_promtool_accepts(&shown.stdout);
    let parsed = exposition::parse(&shown.stdout);
    let total: f64 = parsed.named("several_operations_total").map(|s| s.value).sum();
    assert_eq!(total, 3_003.0, "every monitor's records, exactly");
    assert_eq!(
        parsed.value(
            "several_operations_total",
            &[("operation", "compact"), ("result", "ok")]
        ),
        Some(3.0)
    );
    assert_eq!(
        parsed.value("several_stats", &[("metric", "operations_in_flight")]),
        Some(3.0),
        "the monitors are alive: their loads are in flight"
    );

    let out = dir.path().join("textfile");
    std::fs::create_dir(&out).expect("textfile directory");
    let written = cli_ok(&["textfile", "--state", text(&state), "--out", text(&out)]);
    let file = out.join("several.prom");
    assert!(written.stdout.contains(text(&file)), "{written:#?}");
    let textfile = std::fs::read_to_string(&file).expect("the .prom file");
    assert_promtool_accepts(&textfile);
    let counters = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|line| line.contains("_total{"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        counters(&textfile),
        counters(&shown.stdout),
        "the same counts (rates and windows move with time)"
    );
    let names: Vec<_> = std::fs::read_dir(&out)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["several.prom"], "no temporary file left behind");

    // --name, and --every until SIGTERM, leaving no temporary file either.
    let mut every = cli(&[
        "textfile",
        "--state",
        text(&state),
        "--out",
        text(&out),
        "--name",
        "named",
        "--every",
        "1",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start textfile --every");
    let named = out.join("named.prom");
    poll_until("textfile --every to write", LIVENESS, Duration::from_millis(20), || {
        named.exists().then_some(())
    });
    signal(&every, libc::SIGTERM);
    assert_eq!(
        wait_for_exit(&mut every, "textfile --every").code(),
        Some(0),
        "SIGTERM stops it cleanly"
    );
    assert_promtool_accepts(&std::fs::read_to_string(&named).expect("named.prom"));
    let mut names: Vec<_> = std::fs::read_dir(&out)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["named.prom", "several.prom"]);
    drop(monitors);
}

// ----------------------------------------------------------------------------------------------------
// Prometheus

/// One value of an instant query.
fn query_one(prometheus: SocketAddr, promql: &str) -> Option<f64> {
    let values = query(prometheus, promql)?;
    assert_eq!(values.len(), 1, "{promql}: one series expected, got {values:?}");
    Some(values[0])
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

#[test]
fn prometheus_scrapes_serve_while_writer_processes_come_and_go_and_ends_with_their_exact_totals() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("run/cli.state");

    // serve starts before any host: it waits for the file.
    let mut served = Served::start(&["serve", "--state", text(&state), "--listen", "127.0.0.1:0"]);
    served.line("serve to wait for the file", |line| line.contains("waiting for"));

    // The first short-lived host creates the file.
    let mut expected_gets = 0u64;
    let mut writers = 1u64;
    finish(write_from_a_process(&state, 1_000));
    expected_gets += 1_000;
    let address = served.address().expect("serve listens once the file exists");
    let (_prometheus, prometheus) = prometheus::start(dir.path(), "cache-monitor-serve", &[address], &[]);

    let gets = r#"sum(cuenv_cache_operations_total{operation="get"})"#;
    let wait_for_gets = |expected: u64| {
        poll_until(
            &format!("Prometheus to scrape {expected} gets"),
            LIVENESS,
            Duration::from_millis(250),
            || query_one(prometheus, gets).filter(|value| *value == expected as f64),
        )
    };
    wait_for_gets(expected_gets);

    // Waves of hosts, each process attaching the file, recording and exiting; Prometheus scrapes
    // between and during the waves.
    for wave in 1..=4u64 {
        let spawned: Vec<(Child, u64)> = (0..2)
            .map(|n| {
                let count = 500 * wave + 7 * n;
                (write_from_a_process(&state, count), count)
            })
            .collect();
        for (writer, count) in spawned {
            finish(writer);
            expected_gets += count;
            writers += 1;
        }
        wait_for_gets(expected_gets);
    }

    // A scrape made after the last host exited holds the exact totals.
    let done = unix_now();
    poll_until(
        "a scrape after the last writer exited",
        LIVENESS,
        Duration::from_millis(250),
        || query_one(prometheus, "max(timestamp(cuenv_cache_operations_total))").filter(|at| *at > done + 0.5),
    );
    let value = |promql: &str| query_one(prometheus, promql).unwrap_or_else(|| panic!("no answer to {promql}"));
    assert_eq!(value(gets), expected_gets as f64, "every get of every process");
    assert_eq!(
        value(r#"cuenv_cache_operations_total{operation="put",result="ok"}"#),
        writers as f64,
        "one put per process"
    );
    assert_eq!(
        value(r#"sum(cuenv_cache_pattern_operations_total{pattern="user:*"})"#),
        expected_gets as f64,
        "patterns too"
    );
    assert_eq!(
        value(r#"sum(resets(cuenv_cache_operations_total[1h]))"#),
        0.0,
        "no counter ever went back while processes came and went"
    );
    assert!(
        value(r#"changes(cuenv_cache_operations_total{operation="get",result="hit"}[1h])"#) >= 4.0,
        "Prometheus saw the counts grow wave by wave"
    );
    assert_eq!(value(r#"up{job="cache-monitor-serve"}"#), 1.0);

    let stopped = served.stop(libc::SIGINT);
    assert_eq!(stopped.code(), 0, "Ctrl-C stops serve cleanly: {stopped:#?}");
    assert!(stopped.stderr.contains("stopped serving"), "{stopped:#?}");
}

// ----------------------------------------------------------------------------------------------------
// Pushgateway

/// Starts Debian's Pushgateway on a free loopback port.
fn start_pushgateway(dir: &Path) -> (ChildGuard, SocketAddr) {
    let binary = "/usr/bin/prometheus-pushgateway";
    prometheus::require(binary, "prometheus-pushgateway");
    prometheus::start_server(dir, "pushgateway", |address, _| {
        let mut command = Command::new(binary);
        command
            .arg(format!("--web.listen-address={address}"))
            // In memory only (Debian's default persists to /var/lib/prometheus).
            .arg("--persistence.file=")
            .arg("--log.level=warn");
        command
    })
}

#[test]
fn a_push_reaches_a_real_pushgateway_and_reads_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_gateway, address) = start_pushgateway(dir.path());
    let state = dir.path().join("pushed.state");
    let monitor = attached(&state, r#"{"namespace": "pushed"}"#);
    for i in 0..40u64 {
        let outcome = if i % 4 == 0 { Outcome::Miss } else { Outcome::Hit };
        monitor.record(Operation::GET, outcome, 10_000, b"build:x").unwrap();
    }
    drop(monitor);

    let url = format!("http://{address}");
    // Every push but the failing ones below goes to the one group: job `nightly`, instance `ci/runner 1`.
    let push_nightly = || {
        cli_ok(&[
            "push",
            "--state",
            text(&state),
            "--gateway",
            &url,
            "--job",
            "nightly",
            "--instance",
            "ci/runner 1",
        ])
    };
    let pushed = push_nightly();
    assert!(pushed.stdout.contains("200"), "the status is reported: {pushed:#?}");

    // curl: the gateway answers large bodies in chunks, which support::http_get does not decode.
    let metrics = String::from_utf8(support::curl(&format!("{url}/metrics"), &[])).expect("UTF-8 metrics");
    let ours: String = metrics
        .lines()
        .filter(|line| {
            line.starts_with("pushed_") || line.starts_with("# HELP pushed_") || line.starts_with("# TYPE pushed_")
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let parsed = exposition::parse(&ours);
    let labels = [("job", "nightly"), ("instance", "ci/runner 1"), ("operation", "get")];
    let value = |result: &str| {
        let mut labels = labels.to_vec();
        labels.push(("result", result));
        parsed.value("pushed_operations_total", &labels)
    };
    assert_eq!(value("hit"), Some(30.0), "{ours}");
    assert_eq!(value("miss"), Some(10.0), "{ours}");
    assert_eq!(
        parsed.value(
            "pushed_pattern_operations_total",
            &[("job", "nightly"), ("pattern", "build:*"), ("result", "hit")]
        ),
        Some(30.0)
    );

    // A second push replaces the group's metrics (PUT).
    let monitor = attached(&state, "{}");
    monitor
        .record(Operation::GET, Outcome::Hit, 10_000, b"build:y")
        .unwrap();
    drop(monitor);
    push_nightly();
    let again = String::from_utf8(support::curl(&format!("{url}/metrics"), &[])).expect("UTF-8 metrics");
    assert!(
        again.contains(
            r#"pushed_operations_total{instance="ci/runner 1",job="nightly",operation="get",result="hit"} 31"#
        ),
        "{again}"
    );

    // Anything but a 2xx is a failure, with the status.
    let push_to = |gateway: &str| {
        run(cli(&[
            "push",
            "--state",
            text(&state),
            "--gateway",
            gateway,
            "--job",
            "x",
        ]))
    };
    let refused = push_to(&format!("{url}/elsewhere"));
    assert_eq!(refused.code(), 1, "{refused:#?}");
    assert!(refused.stderr.contains("404"), "{refused:#?}");
    let unreachable = push_to(&format!("http://127.0.0.1:{}", free_port()));
    assert_eq!(unreachable.code(), 1, "{unreachable:#?}");
}

// ----------------------------------------------------------------------------------------------------
// Corrupted files

/// One way to damage a copy of a valid file.
#[derive(Clone, Debug)]
enum Damage {
    /// Random bytes at `offset`.
    Bytes { offset: u64, bytes: Vec<u8> },
    /// The file cut to `len` bytes.
    Truncate { len: u64 },
    /// Bytes appended.
    Extend { bytes: u64 },
    /// Whole pages zeroed, from `page` (4096-byte pages).
    ZeroPages { page: u64, pages: u64 },
}

/// A seeded, named case.
#[derive(Clone, Debug)]
struct Case {
    name: String,
    damage: Vec<Damage>,
    /// Whether every reader must refuse the file (the header or the size is wrong).
    refused: bool,
}

fn part<'a>(layout: &'a [FilePart], name: &str) -> &'a FilePart {
    layout
        .iter()
        .find(|part| part.name == name)
        .unwrap_or_else(|| panic!("no part {name} in the layout"))
}

/// An offset inside element `index` of `part`.
fn element(part: &FilePart, index: usize, within: u64) -> u64 {
    part.offset + index as u64 * part.stride + within.min(part.len.saturating_sub(1))
}

/// A word a reader may choke on.
fn nasty_word(rng: &mut fastrand::Rng) -> [u8; 8] {
    let value = match rng.u8(0..6) {
        0 => u64::MAX,
        1 => 0,
        2 => 1 << 63,
        3 => rng.u64(0..4096),
        4 => u64::MAX - rng.u64(0..4096),
        _ => rng.u64(..),
    };
    value.to_ne_bytes()
}

/// The cases: damage aimed at each part the structural check knows, and random damage anywhere.
fn cases(original: &[u8], seed: u64) -> Vec<Case> {
    let layout = state_file_layout();
    let size = original.len() as u64;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut cases = Vec::new();
    let mut add = |name: String, damage: Vec<Damage>, refused: bool| cases.push(Case { name, damage, refused });

    // Header: magic, version, byte order, sizes, layout hash, then anywhere in the first page.
    for (field, at) in [
        ("magic", 0u64),
        ("version", 8),
        ("byte order", 12),
        ("header size", 16),
        ("total size", 24),
        ("layout hash", 32),
    ] {
        let mut bytes = original[at as usize..at as usize + 4].to_vec();
        bytes[rng.usize(0..4)] ^= 1 << rng.u8(0..8);
        add(
            format!("header {field}"),
            vec![Damage::Bytes { offset: at, bytes }],
            true,
        );
    }
    add(
        "header zeroed".into(),
        vec![Damage::ZeroPages { page: 0, pages: 1 }],
        true,
    );
    for n in 0..3 {
        let offset = rng.u64(40..HEADER_PAGE);
        let bytes: Vec<u8> = (0..rng.usize(1..64)).map(|_| rng.u8(..)).collect();
        add(
            format!("header bytes {n}"),
            vec![Damage::Bytes { offset, bytes }],
            false,
        );
    }
    // Sizes.
    for len in [0, 7, 111, HEADER_PAGE - 1, HEADER_PAGE, size / 2, size - 1] {
        add(format!("truncated to {len}"), vec![Damage::Truncate { len }], true);
    }
    add("extended".into(), vec![Damage::Extend { bytes: 4096 }], true);
    // The recorded configuration.
    let shape = part(&layout, "shape");
    for n in 0..4 {
        let offset = shape.offset + rng.u64(0..shape.len.min(256));
        let bytes: Vec<u8> = (0..rng.usize(1..16)).map(|_| rng.u8(..)).collect();
        add(format!("shape {n}"), vec![Damage::Bytes { offset, bytes }], false);
    }
    add(
        "shape zeroed".into(),
        vec![Damage::ZeroPages {
            page: shape.offset / 4096,
            pages: shape.len.div_ceil(4096) + 1,
        }],
        false,
    );
    // Pattern entries: the used ones (non-zero hash) and any.
    let entries = part(&layout, "pattern entries");
    let used: Vec<usize> = (0..entries.count)
        .filter(|i| {
            let at = element(entries, *i, 0) as usize;
            original[at..at + 8] != [0; 8]
        })
        .collect();
    assert!(!used.is_empty(), "the original file learned patterns");
    for n in 0..8 {
        let index = if n % 2 == 0 {
            used[rng.usize(0..used.len())]
        } else {
            rng.usize(0..entries.count)
        };
        let offset = element(entries, index, 8 * rng.u64(0..entries.len / 8));
        add(
            format!("pattern entry {index}"),
            vec![Damage::Bytes {
                offset,
                bytes: nasty_word(&mut rng).to_vec(),
            }],
            false,
        );
    }
    add(
        "pattern settings".into(),
        vec![Damage::Bytes {
            offset: element(part(&layout, "pattern settings"), 0, 8 * rng.u64(0..9)),
            bytes: nasty_word(&mut rng).to_vec(),
        }],
        false,
    );
    // Ring tags of every ring.
    for ring in ["fine", "medium", "coarse", "latency"] {
        let tags = part(&layout, &format!("{ring} ring tags"));
        for n in 0..2 {
            let index = rng.usize(0..tags.count);
            let offset = element(tags, index, 0);
            let word = if n == 0 {
                // A period that belongs elsewhere, or one far in the future, or a clear in progress.
                (((rng.u64(0..1 << 40) + 1) << 1) | rng.u64(0..2)).to_ne_bytes()
            } else {
                nasty_word(&mut rng)
            };
            add(
                format!("{ring} ring tag {index}"),
                vec![Damage::Bytes {
                    offset,
                    bytes: word.to_vec(),
                }],
                false,
            );
        }
    }
    // Shard control words (countdown, reload, second, flush_seq, flush_lock, journal, owner) of the
    // shards in use and of the shared ones.
    let controls = part(&layout, "shard controls");
    for n in 0..12 {
        let shard = if n < 8 {
            rng.usize(0..3)
        } else {
            rng.usize(64..controls.count)
        };
        let word = rng.u64(0..controls.len / 8);
        let offset = element(controls, shard, 8 * word);
        add(
            format!("shard {shard} control word {word}"),
            vec![Damage::Bytes {
                offset,
                bytes: nasty_word(&mut rng).to_vec(),
            }],
            false,
        );
    }
    // Claims, bucket table, baseline, clock hint.
    for name in ["claims", "bucket table", "baseline"] {
        let target = part(&layout, name);
        let offset = element(target, 0, 8 * rng.u64(0..(target.len / 8).min(64)));
        add(
            name.into(),
            vec![Damage::Bytes {
                offset,
                bytes: nasty_word(&mut rng).to_vec(),
            }],
            false,
        );
    }
    // Zero pages and random bytes anywhere past the header.
    let pages = size / 4096;
    for n in 0..6 {
        let page = rng.u64(1..pages);
        add(
            format!("zero pages {n}"),
            vec![Damage::ZeroPages {
                page,
                pages: rng.u64(1..16),
            }],
            false,
        );
    }
    for n in 0..8 {
        let damage = (0..rng.usize(1..32))
            .map(|_| Damage::Bytes {
                offset: rng.u64(HEADER_PAGE..size - 64),
                bytes: (0..rng.usize(1..64)).map(|_| rng.u8(..)).collect(),
            })
            .collect();
        add(format!("random bytes {n}"), damage, false);
    }
    cases
}

const HEADER_PAGE: u64 = 4096;

/// Writes a copy of `original` with `case`'s damage to `path` (sparse: only non-zero pages are written).
fn damaged_copy(original: &[u8], case: &Case, path: &Path) {
    let _ = std::fs::remove_file(path);
    files::write_sparse(path, original);
    let file = std::fs::File::options().write(true).open(path).expect("open the copy");
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .expect("chmod");
    for damage in &case.damage {
        match damage {
            Damage::Bytes { offset, bytes } => file.write_all_at(bytes, *offset).expect("damage"),
            Damage::Truncate { len } => file.set_len(*len).expect("truncate"),
            Damage::Extend { bytes } => file.set_len(original.len() as u64 + bytes).expect("extend"),
            Damage::ZeroPages { page, pages } => {
                let start = (page * 4096).min(original.len() as u64);
                let end = ((page + pages) * 4096).min(original.len() as u64);
                file.write_all_at(&vec![0; (end - start) as usize], start)
                    .expect("zero pages");
            }
        }
    }
}

/// `show`, `check` and `serve` over the damaged file: an error (exit 1, naming the file) or a render,
/// never a signal; `refused` files must be refused.
fn commands_survive(case: &Case, path: &Path) {
    let name = &case.name;
    let shown = run(cli(&["show", "--state", text(path)]));
    let code = shown.code();
    assert!(code == 0 || code == 1, "{name}: show: {shown:#?}");
    if code == 1 {
        assert!(
            shown.stderr.contains(text(path)),
            "{name}: show names the file: {shown:#?}"
        );
    }
    let checked = run(cli(&["check", "--state", text(path)]));
    let check_code = checked.code();
    assert!(check_code == 0 || check_code == 1, "{name}: check: {checked:#?}");
    if case.refused {
        assert_eq!(code, 1, "{name}: show refuses the file: {shown:#?}");
        assert_eq!(check_code, 1, "{name}: check finds the problem: {checked:#?}");
    }
    if code == 1 && check_code == 0 {
        panic!("{name}: show refused a file check calls sound:\n{shown:#?}\n{checked:#?}");
    }

    let mut served = Served::start(&["serve", "--state", text(path), "--listen", "127.0.0.1:0"]);
    match served.address() {
        Some(address) => {
            let response = http_get(address, "/metrics", &[]);
            assert_eq!(response.status, 200, "{name}: serve answers a scrape");
            let _ = http_get(address, "/stats.json", &[]);
            let stopped = served.stop(libc::SIGTERM);
            assert_eq!(stopped.code(), 0, "{name}: serve stops cleanly: {stopped:#?}");
        }
        None => {
            let status = wait_for_exit(&mut served.child.0, "serve");
            let ran = Ran {
                status,
                stdout: String::new(),
                stderr: served.seen.join("\n"),
            };
            assert_eq!(ran.code(), 1, "{name}: serve refuses with an error: {ran:#?}");
            assert!(
                ran.stderr.contains(text(path)),
                "{name}: serve names the file: {ran:#?}"
            );
        }
    }
}

#[test]
fn corrupted_files_get_an_error_or_a_render_never_a_crash() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("good.state");
    {
        let writers: Vec<Monitor> = (0..3)
            .map(|_| attached(&good, r#"{"namespace": "fuzzed", "operations": ["compact"]}"#))
            .collect();
        std::thread::scope(|scope| {
            for (n, monitor) in writers.iter().enumerate() {
                scope.spawn(move || {
                    for i in 0..2_000u64 {
                        let key = format!("{}:{i}", ["user", "session", "page"][n]);
                        monitor
                            .record(Operation::GET, Outcome::Hit, 100 * i, key.as_bytes())
                            .unwrap();
                    }
                    monitor.begin(Operation::LOAD).unwrap();
                });
            }
        });
        writers[0].reset();
        writers[1]
            .record(Operation::PUT, Outcome::Ok, 5, b"after:reset")
            .unwrap();
    }
    let report = cache_monitor::check::check_state_file(&good).expect("check the original");
    assert!(report.is_sound(), "the original is sound: {report:#?}");
    let original = std::fs::read(&good).expect("read the original");

    let seed = std::env::var("CLI_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_cafe);
    let cases = cases(&original, seed);
    eprintln!("{} cases from seed {seed:#x} (set CLI_FUZZ_SEED to vary)", cases.len());
    let copies = dir.path().join("copies");
    std::fs::create_dir(&copies).expect("copies dir");

    let started = Instant::now();
    for (n, case) in cases.iter().enumerate() {
        let path = copies.join(format!("case-{n}.state"));
        damaged_copy(&original, case, &path);
        commands_survive(case, &path);
        std::fs::remove_file(&path).expect("remove the copy");
    }

    eprintln!("show, check and serve: {:?}", started.elapsed());
    let started = Instant::now();

    // Attaching processes: fresh copies, several per process; each line says what happened.
    let paths: Vec<PathBuf> = cases
        .iter()
        .enumerate()
        .map(|(n, case)| {
            let path = copies.join(format!("attach-{n}.state"));
            damaged_copy(&original, case, &path);
            path
        })
        .collect();
    for (batch, chunk) in paths.chunks(8).enumerate() {
        let files: Vec<&str> = chunk.iter().map(|path| text(path)).collect();
        let ran = run(child(
            "attacher",
            Path::new(""),
            &[("CLI_TEST_FILES", files.join("\n"))],
        ));
        let done = ran.stdout.matches("\nattached ").count();
        assert!(
            ran.status.success() && done == chunk.len(),
            "attaching batch {batch} failed after {done} files (the next one crashed it?): {:?}\n{ran:#?}",
            chunk.get(done)
        );
        for (path, case) in chunk.iter().zip(&cases[batch * 8..]) {
            if case.refused {
                assert!(
                    ran.stdout.contains(&format!("attached {}: refused", text(path))),
                    "{}: attaching refuses the file: {}",
                    case.name,
                    ran.stdout
                );
            }
        }
    }

    eprintln!("attaching processes: {:?}", started.elapsed());
    let started = Instant::now();

    // Under valgrind, where it is installed: no invalid read or write in show and check.
    let valgrind = Command::new("valgrind").arg("--version").output();
    if !valgrind.is_ok_and(|o| o.status.success()) {
        eprintln!("valgrind is not installed: the memcheck pass is left out");
        return;
    }
    // One case of each kind (memcheck is slow): the first of each name.
    let kinds = [
        "header bytes",
        "pattern entry",
        "fine ring tag",
        "shard ",
        "random bytes",
    ];
    let picked = kinds
        .iter()
        .filter_map(|kind| cases.iter().find(|case| case.name.starts_with(kind)));
    for case in picked {
        let path = copies.join("valgrind.state");
        damaged_copy(&original, case, &path);
        for command in ["show", "check"] {
            let mut valgrind = Command::new("valgrind");
            valgrind
                .args(["--quiet", "--error-exitcode=99", BIN, command, "--state", text(&path)])
                .env_remove("CACHE_MONITOR_STATE");
            let ran = run(valgrind);
            assert!(
                matches!(ran.code(), 0 | 1),
                "{}: {command} under valgrind: {ran:#?}",
                case.name
            );
        }
    }
    eprintln!("valgrind: {:?}", started.elapsed());
}
