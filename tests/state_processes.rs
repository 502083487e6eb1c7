//! Counts that outlive the process: short-lived C hosts, some killed with SIGKILL at random moments, a
//! few running at once, all record into one state file through `CACHE_MONITOR_STATE` (the hosts know
//! nothing of it). The file's totals equal exactly what the hosts' record calls returned, pattern by
//! pattern, and the file does not grow with the number of processes that ever wrote it.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use cache_monitor::{Monitor, Operation, Outcome};
use support::{cdylib, compile_c_host};

/// Words per progress slot, as `state_writer.c` lays them out.
const SLOT_WORDS: usize = 8;
const READY: usize = 0;
const PENDING: usize = 1;
const COMPLETED: usize = 2;
const FINISHED: usize = 3;

/// A host's progress, read from the shared progress file.
#[derive(Clone, Copy, Debug)]
struct Progress {
    ready: bool,
    pending: bool,
    completed: u64,
    finished: bool,
}

fn progress(file: &Path, slot: usize) -> Progress {
    let bytes = std::fs::read(file).expect("progress file");
    let word = |index: usize| {
        let at = (slot * SLOT_WORDS + index) * 8;
        u64::from_ne_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
    };
    Progress {
        ready: word(READY) != 0,
        pending: word(PENDING) != 0,
        completed: word(COMPLETED),
        finished: word(FINISHED) != 0,
    }
}

fn writer(host: &Path, state: &Path, progress: &Path, slot: usize, records: u64, fork: Option<u64>) -> Child {
    let mut command = Command::new(host);
    command
        .arg(cdylib())
        .arg(progress)
        .arg(slot.to_string())
        .arg(records.to_string())
        .env("CACHE_MONITOR_STATE", state);
    if let Some(child_records) = fork {
        command.arg(child_records.to_string());
    }
    command.spawn().expect("start a writer")
}

fn wait_ready(progress_file: &Path, slot: usize, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !progress(progress_file, slot).ready {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "writer {slot} exited before recording"
        );
        assert!(Instant::now() < deadline, "writer {slot} never got going");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Hits and misses counted under `pattern` in the file.
fn pattern_count(monitor: &Monitor, pattern: &str) -> u64 {
    let view = monitor.view();
    view.patterns
        .iter()
        .find(|p| p.pattern == pattern)
        .map_or(0, |p| p.counts[0] + p.counts[1])
}

#[test]
fn sixty_four_short_lived_processes_some_killed_count_exactly_what_returned() {
    const PROCESSES: usize = 64;
    const RECORDS: u64 = 20_000;
    const AT_ONCE: usize = 4;
    let seed = std::env::var("STATE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("seed {seed} (STATE_TEST_SEED={seed} repeats this run)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut to_kill: Vec<usize> = Vec::new();
    while to_kill.len() < 8 {
        let victim = rng.usize(1..PROCESSES);
        if !to_kill.contains(&victim) {
            to_kill.push(victim);
        }
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let host = compile_c_host("state_writer", dir.path());
    let state = dir.path().join("run").join("cli.state");
    let progress_file = dir.path().join("progress");
    std::fs::write(&progress_file, vec![0u8; (PROCESSES + 1) * SLOT_WORDS * 8]).expect("progress file");

    let mut size_after_first = None;
    let mut running: Vec<(usize, Child)> = Vec::new();
    for slot in 0..PROCESSES {
        while running.len() >= AT_ONCE {
            running.retain_mut(|(_, child)| child.try_wait().expect("wait").is_none());
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut child = writer(&host, &state, &progress_file, slot, RECORDS, None);
        if to_kill.contains(&slot) {
            wait_ready(&progress_file, slot, &mut child);
            std::thread::sleep(Duration::from_micros(rng.u64(0..20_000)));
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
        } else {
            running.push((slot, child));
        }
        if slot == 0 {
            let (_, mut first) = running.pop().expect("the first writer");
            assert!(first.wait().expect("wait").success(), "the first writer failed");
            size_after_first = Some(std::fs::metadata(&state).expect("the first writer made the file").len());
        }
    }
    for (slot, mut child) in running {
        assert!(child.wait().expect("wait").success(), "writer {slot} failed");
    }

    let monitor = Monitor::open_state_file(&state).expect("the file reads back");
    let (mut returned, mut ambiguous, mut inside) = (0u64, 0u64, 0u64);
    for slot in 0..PROCESSES {
        let progress = progress(&progress_file, slot);
        let counted = pattern_count(&monitor, &format!("p{slot}:*"));
        if to_kill.contains(&slot) {
            assert!(
                counted == progress.completed || (progress.pending && counted == progress.completed + 1),
                "killed writer {slot}: {counted} counted, {} returned, {} in a record (seed {seed})",
                progress.completed,
                progress.pending
            );
            inside += u64::from(progress.pending);
            ambiguous += u64::from(progress.pending && counted == progress.completed + 1);
            returned += counted;
        } else {
            assert!(progress.finished, "writer {slot} did not finish");
            assert_eq!(counted, RECORDS, "writer {slot} (seed {seed})");
            returned += counted;
        }
    }
    let totals = monitor.totals();
    let get = &totals.series[Operation::GET.code() as usize];
    let (hits, misses) = (
        get[Outcome::Hit.code() as usize].clone(),
        get[Outcome::Miss.code() as usize].clone(),
    );
    assert_eq!(
        hits.count + misses.count,
        returned,
        "every pattern's records, no more (seed {seed})"
    );
    assert_eq!(hits.sum_ns + misses.sum_ns, returned * 1_000, "no half-written record");
    assert_eq!(totals.latency[0].total(), returned, "latency agrees");
    assert_eq!(hits.buckets.iter().sum::<u64>(), hits.count, "buckets agree");
    assert_eq!(totals.in_flight(), 0);
    let view = monitor.view();
    assert_eq!(view.other_pattern, [0; 4], "every record under its own pattern");
    let size = std::fs::metadata(&state).expect("file").len();
    assert_eq!(
        Some(size),
        size_after_first,
        "the file does not grow with the processes that wrote it"
    );
    println!(
        "{returned} records from {PROCESSES} processes ({} killed, {inside} of them inside a record call, \
         {ambiguous} of those after the record counted), file {size} bytes",
        to_kill.len()
    );
}

#[test]
fn a_forked_child_records_into_the_file_its_parent_attached() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = compile_c_host("state_writer", dir.path());
    let state: PathBuf = dir.path().join("fork.state");
    let progress_file = dir.path().join("progress");
    std::fs::write(&progress_file, vec![0u8; 4 * SLOT_WORDS * 8]).expect("progress file");
    let mut parent = writer(&host, &state, &progress_file, 0, 10_000, Some(7_000));
    assert!(parent.wait().expect("wait").success(), "parent or child failed");
    let monitor = Monitor::open_state_file(&state).expect("the file reads back");
    assert_eq!(
        pattern_count(&monitor, "p0:*"),
        10_000,
        "the parent, before and after the fork"
    );
    assert_eq!(pattern_count(&monitor, "c0:*"), 7_000, "the child");
    let totals = monitor.totals();
    let get = &totals.series[Operation::GET.code() as usize];
    assert_eq!(get[0].count + get[1].count, 17_000);
    assert_eq!(get[0].sum_ns + get[1].sum_ns, 17_000 * 1_000);
}

#[test]
fn a_go_a_c_and_a_rust_host_record_into_one_file_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("polyglot.state");
    let c_host = compile_c_host("state_writer", dir.path());
    let go_host = dir.path().join("statewriter");
    support::run(&mut support::go_command(
        "ffi-tests/go",
        &["build", "-o", go_host.to_str().expect("UTF-8 path"), "./statewriter"],
    ));
    let progress_file = dir.path().join("progress");
    std::fs::write(&progress_file, vec![0u8; 2 * SLOT_WORDS * 8]).expect("progress file");

    let rust = Monitor::new();
    rust.configure(&format!(
        r#"{{"state": {{"path": {:?}}}}}"#,
        state.to_str().expect("UTF-8 path")
    ))
    .expect("attach");
    let mut go = Command::new(&go_host)
        .arg(cdylib())
        .arg("80000")
        .env("CACHE_MONITOR_STATE", &state)
        .spawn()
        .expect("start the Go host");
    let mut c = writer(&c_host, &state, &progress_file, 0, 20_000, None);
    std::thread::scope(|scope| {
        for t in 0..4 {
            let rust = &rust;
            scope.spawn(move || {
                for i in 0..10_000 {
                    let key = format!("rust:{t}:{i}");
                    rust.record(Operation::GET, Outcome::Hit, 1_000, key.as_bytes())
                        .expect("record");
                }
            });
        }
    });
    assert!(go.wait().expect("wait").success(), "the Go host failed");
    assert!(c.wait().expect("wait").success(), "the C host failed");

    for reader in [&rust, &Monitor::open_state_file(&state).expect("reads back")] {
        assert_eq!(pattern_count(reader, "go:*"), 80_000);
        assert_eq!(pattern_count(reader, "p0:*"), 20_000);
        assert_eq!(pattern_count(reader, "rust:*"), 40_000);
        let totals = reader.totals();
        let get = &totals.series[Operation::GET.code() as usize];
        assert_eq!(get[0].count + get[1].count, 140_000);
        assert_eq!(totals.latency[0].total(), 140_000);
    }
}
