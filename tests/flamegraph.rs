//! The flamegraph profiler seen from a C host (`ffi-tests/c/flamegraph_paths.c`): two native call paths
//! and one host-supplied path, sampled 1 in 100, rendered as folded stacks and SVG.

mod support;

use std::process::Command;
use std::sync::{Mutex, OnceLock};

use quick_xml::events::Event;
use support::{cdylib, compile_c_host_with, run};

/// Records per path in the C host, and the sampling rate it configures.
const RECORDS: u64 = 100_000;
const SAMPLE_EVERY: u64 = 100;
/// Samples per path: the countdown is per thread and exact, and the host records on one thread.
const SAMPLES: u64 = RECORDS / SAMPLE_EVERY;

/// What the C host wrote.
struct Renders {
    by_samples: String,
    by_time: String,
    svg: String,
}

/// Compiles and runs the host once for every test in this file.
fn renders() -> &'static Renders {
    static RENDERS: OnceLock<Renders> = OnceLock::new();
    RENDERS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let host = compile_c_host_with("flamegraph_paths", dir.path(), &support::FLAMEGRAPH_HOST_FLAGS);
        let [by_samples, by_time, svg] =
            ["samples.folded", "time.folded", "flamegraph.svg"].map(|f| dir.path().join(f));
        run(Command::new(&host)
            .arg(cdylib())
            .arg(&by_samples)
            .arg(&by_time)
            .arg(&svg));
        let read = |path| std::fs::read_to_string(path).expect("the host wrote its render");
        Renders {
            by_samples: read(&by_samples),
            by_time: read(&by_time),
            svg: read(&svg),
        }
    })
}

/// Parses folded stacks strictly: `frame;frame;... weight`, frames non-empty and free of `;` and line
/// breaks, weight a positive integer.
fn parse_folded(folded: &str) -> Vec<(Vec<&str>, u64)> {
    assert!(folded.ends_with('\n'), "lines end with a newline:\n{folded}");
    folded
        .lines()
        .map(|line| {
            let (stack, weight) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no weight: {line:?}"));
            let weight: u64 = weight
                .parse()
                .unwrap_or_else(|_| panic!("weight not an integer: {line:?}"));
            assert!(weight > 0, "{line:?}");
            let frames: Vec<&str> = stack.split(';').collect();
            assert!(frames.iter().all(|f| !f.trim().is_empty()), "empty frame: {line:?}");
            (frames, weight)
        })
        .collect()
}

/// The stacks through `function`, with their weights.
fn through<'a>(stacks: &'a [(Vec<&'a str>, u64)], function: &str) -> Vec<&'a (Vec<&'a str>, u64)> {
    stacks.iter().filter(|(frames, _)| frames.contains(&function)).collect()
}

fn position(frames: &[&str], name: &str) -> usize {
    frames
        .iter()
        .position(|f| *f == name)
        .unwrap_or_else(|| panic!("{name} missing from {frames:?}"))
}

#[test]
fn both_native_paths_appear_nested_in_call_order_with_one_sample_per_hundred_records() {
    let folded = &renders().by_samples;
    let stacks = parse_folded(folded);
    let total: u64 = stacks.iter().map(|(_, w)| w).sum();
    assert_eq!(total, 3 * SAMPLES, "every sample is in the output:\n{folded}");

    let alpha = through(&stacks, "alpha_lookup_path");
    assert!(!alpha.is_empty(), "alpha path missing:\n{folded}");
    for (frames, _) in &alpha {
        let main = position(frames, "main");
        let outer = position(frames, "alpha_lookup_path");
        let inner = position(frames, "alpha_inner");
        assert!(main < outer && outer < inner, "call order: {frames:?}");
        assert_eq!(
            &frames[inner..],
            ["alpha_inner", "cache_monitor::get"],
            "the host function that called the library, then the operation: {frames:?}"
        );
    }
    assert_eq!(alpha.iter().map(|(_, w)| w).sum::<u64>(), SAMPLES);

    let beta = through(&stacks, "beta_store_path");
    for (frames, _) in &beta {
        let main = position(frames, "main");
        let path = position(frames, "beta_store_path");
        assert!(main < path, "call order: {frames:?}");
        assert_eq!(&frames[path..], ["beta_store_path", "cache_monitor::put"]);
        assert!(!frames.iter().any(|f| f.starts_with("alpha")), "{frames:?}");
    }
    assert_eq!(beta.iter().map(|(_, w)| w).sum::<u64>(), SAMPLES);

    for (frames, _) in &stacks {
        let (leaf, callers) = frames.split_last().expect("non-empty stack");
        assert!(leaf.starts_with("cache_monitor::"), "{frames:?}");
        assert!(
            !callers
                .iter()
                .any(|f| f.contains("cache_monitor") || f.contains("backtrace")),
            "the library's own frames are trimmed: {frames:?}"
        );
    }
}

#[test]
fn host_supplied_frames_become_the_leaf_frames_of_their_samples() {
    let stacks = parse_folded(&renders().by_samples);
    let gamma = through(&stacks, "gamma_host_frames");
    for (frames, _) in &gamma {
        let at = position(frames, "gamma_host_frames");
        assert!(position(frames, "main") < at, "{frames:?}");
        assert_eq!(
            &frames[at..],
            [
                "gamma_host_frames",
                "main.main",
                "main.serve",
                "cache.(*Cache).Get",
                "cache_monitor::get"
            ]
        );
    }
    assert_eq!(gamma.iter().map(|(_, w)| w).sum::<u64>(), SAMPLES);
}

#[test]
fn time_weight_is_total_microseconds_per_path() {
    let stacks = parse_folded(&renders().by_time);
    // Each path records a fixed duration: 2 us (alpha), 5 us (beta), 1 us (gamma).
    for (function, micros) in [("alpha_inner", 2), ("beta_store_path", 5), ("gamma_host_frames", 1)] {
        let weight: u64 = through(&stacks, function).iter().map(|(_, w)| w).sum();
        assert_eq!(weight, SAMPLES * micros, "{function}");
    }
}

/// `log` messages (inferno reports lines it cannot parse as warnings).
static LOGGED: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.level() <= log::Level::Warn {
            let message = format!("{}: {}", record.level(), record.args());
            LOGGED.lock().expect("log lock").push(message);
        }
    }
    fn flush(&self) {}
}

#[test]
fn inferno_reads_every_folded_line() {
    log::set_logger(&Capture).expect("only this test sets a logger");
    log::set_max_level(log::LevelFilter::Warn);
    for folded in [&renders().by_samples, &renders().by_time] {
        let mut options = inferno::flamegraph::Options::default();
        let mut svg = Vec::new();
        inferno::flamegraph::from_lines(&mut options, folded.lines(), &mut svg)
            .expect("inferno draws the folded stacks");
        assert!(!svg.is_empty());
    }
    let logged = LOGGED.lock().expect("log lock");
    assert!(
        logged.is_empty(),
        "inferno ignored or complained about lines: {logged:?}"
    );
}

/// The text of every `<title>` element, entities resolved; panics unless the whole document is
/// well-formed XML.
fn svg_titles(svg: &str) -> Vec<String> {
    let mut reader = quick_xml::Reader::from_str(svg);
    reader.config_mut().check_end_names = true;
    let mut titles = Vec::new();
    let mut current: Option<String> = None;
    let mut depth = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Start(start)) => {
                depth += 1;
                if start.name().as_ref() == b"title" {
                    current = Some(String::new());
                }
            }
            Ok(Event::End(end)) => {
                depth = depth.checked_sub(1).expect("balanced elements");
                if end.name().as_ref() == b"title" {
                    titles.push(current.take().expect("title open"));
                }
            }
            Ok(Event::Text(text)) => {
                if let Some(title) = &mut current {
                    title.push_str(&text.decode().expect("UTF-8 text"));
                }
            }
            Ok(Event::GeneralRef(entity)) => {
                if let Some(title) = &mut current {
                    let name = entity.decode().expect("UTF-8 entity");
                    let resolved = quick_xml::escape::unescape(&format!("&{name};"))
                        .expect("a known entity")
                        .into_owned();
                    title.push_str(&resolved);
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!(
                "the SVG is not well-formed XML at byte {}: {e}",
                reader.error_position()
            ),
        }
    }
    assert_eq!(depth, 0, "every element closed");
    titles
}

#[test]
fn the_svg_is_xml_naming_the_host_functions() {
    let svg = &renders().svg;
    assert!(svg.contains("<svg"), "{svg}");
    let titles = svg_titles(svg);
    for function in [
        "main",
        "alpha_lookup_path",
        "alpha_inner",
        "beta_store_path",
        "gamma_host_frames",
        "cache.(*Cache).Get",
        "cache_monitor::get",
        "cache_monitor::put",
    ] {
        assert!(
            titles.iter().any(|t| t.starts_with(&format!("{function} ("))),
            "no frame titled {function}: {titles:?}"
        );
    }
    let all = format!("all ({} samples, 100%)", thousands(3 * SAMPLES));
    assert!(titles.contains(&all), "{all} missing: {titles:?}");
}

/// `3000` as inferno writes it: `3,000`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
