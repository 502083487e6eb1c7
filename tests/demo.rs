//! The README's first command: the demo host (`examples/demo/`) loads the built library with `dlopen`,
//! drives its cache workload, serves `/metrics`, prints a live summary, and stops cleanly on Ctrl-C.

mod support;

use std::time::Duration;

use support::{Demo, assert_promtool_accepts, curl, poll_until};

#[test]
fn the_demo_serves_valid_metrics_of_a_realistic_workload_and_stops_on_ctrl_c() {
    let mut demo = Demo::start(&["--duration", "300", "--rate", "3000", "--threads", "2"]);
    let url = format!("http://{}/metrics", demo.address);

    // Every part of the workload shows up: hits and misses, puts and their errors (oversized
    // documents), loads and their errors, evictions, deletes, presence checks, the host's gauges.
    let wanted = [
        r#"operation="get",result="hit""#,
        r#"operation="get",result="miss""#,
        r#"operation="put",result="ok""#,
        r#"operation="put",result="error""#,
        r#"operation="load",result="ok""#,
        r#"operation="load",result="error""#,
        r#"operation="evict",result="ok""#,
        r#"operation="delete",result="ok""#,
        r#"operation="contains""#,
    ];
    let exposition = poll_until(
        "every kind of operation to be recorded",
        Duration::from_secs(120),
        Duration::from_millis(200),
        || {
            let text = String::from_utf8(curl(&url, &[])).expect("UTF-8 exposition");
            wanted.iter().all(|w| text.contains(w)).then_some(text)
        },
    );
    assert_promtool_accepts(&exposition);
    let entries = exposition
        .lines()
        .find_map(|l| l.strip_prefix(r#"cuenv_cache_stats{metric="entries"} "#))
        .and_then(|v| v.parse::<u64>().ok())
        .expect("the entries gauge");
    assert!(entries > 0, "the host sets its gauges");

    // gzip through curl's own decoder, and OpenMetrics on request.
    let decompressed = curl(&url, &["--compressed"]);
    assert_promtool_accepts(&String::from_utf8(decompressed).expect("UTF-8"));
    let openmetrics = curl(&url, &["-H", "Accept: application/openmetrics-text; version=1.0.0"]);
    assert!(openmetrics.ends_with(b"# EOF\n"));

    // The live summary, then a clean stop on Ctrl-C.
    demo.wait_for_line("a summary line", |line| {
        line.contains("ops/s") && line.contains("p99 get")
    });
    let status = demo.interrupt();
    assert!(
        status.success(),
        "the demo exited with {status}:\n{}",
        demo.seen.join("\n")
    );
    assert!(
        demo.seen.iter().any(|l| l.starts_with("stopped (interrupted)")),
        "{}",
        demo.seen.join("\n")
    );
}

#[test]
fn the_demo_samples_1_in_100_unless_told_not_to_and_its_help_says_so() {
    let output = support::run(std::process::Command::new(support::demo_binary()).arg("--help"));
    let help = String::from_utf8(output.stdout).expect("UTF-8 help");
    for option in [
        "--duration",
        "--listen",
        "--threads",
        "--rate",
        "--capacity",
        "--library",
        "--bearer-token",
        "--no-profiling",
        "--help",
    ] {
        assert!(help.contains(&format!(" {option} ")), "--help lists {option}:\n{help}");
    }
    assert!(help.contains(r#"{"profiler": {"sample_every": 100}}"#), "{help}");

    let mut demo = Demo::start(&["--duration", "300", "--rate", "1000", "--threads", "1"]);
    assert!(
        demo.seen
            .iter()
            .any(|line| line.starts_with("profiling: 1 record in 100 on each thread sampled")),
        "{}",
        demo.seen.join("\n")
    );
    let index = String::from_utf8(curl(&format!("http://{}/", demo.address), &[])).expect("UTF-8 page");
    assert!(
        index.contains("The flamegraphs sample 1 record in 100 on each thread."),
        "{index}"
    );
    assert!(demo.interrupt().success());

    let mut quiet = Demo::start(&[
        "--duration",
        "300",
        "--rate",
        "1000",
        "--threads",
        "1",
        "--no-profiling",
    ]);
    assert!(
        quiet
            .seen
            .iter()
            .any(|line| line.starts_with("profiling off (--no-profiling)")),
        "{}",
        quiet.seen.join("\n")
    );
    let svg = String::from_utf8(curl(&format!("http://{}/flamegraph.svg", quiet.address), &[])).expect("UTF-8");
    assert!(svg.contains("No sample taken: sampling is off"), "{svg}");
    assert!(quiet.interrupt().success());
}
