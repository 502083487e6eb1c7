//! The demo's pages as a person sees them: the demo runs (sampling, as it does by default), and headless
//! Chromium opens its index page and its flamegraph, takes a screenshot of each and dumps each page's
//! DOM after its scripts ran. The index must link every endpoint with its line, and the flamegraph must
//! show frames named after the demo's own functions. A demo run with `--no-profiling` shows the
//! flamegraph's explanation instead.
//!
//! The screenshots and DOM dumps stay in `target/tmp/pages/` for a look. Needs Chromium
//! (`/usr/bin/chromium`, the Debian package `chromium`, which .ci/run installs): without it this test
//! fails.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cache_monitor::exporter::routes::ROUTES;
use support::{Demo, curl, poll_until};

/// The browser.
const CHROMIUM: &str = "/usr/bin/chromium";

/// Frames every sampled stack of the demo's workers passes through, or ends in (`examples/demo/`): the
/// worker loop, its operations, the demo's wrappers of the C ABI, and the leaves naming operations.
const DEMO_FRAMES: &[&str] = &[
    "demo::workload::Worker::run",
    "demo::workload::Worker::one_operation",
    "demo::workload::Worker::get",
    "demo::workload::Worker::put",
    "demo::workload::Worker::load",
    "demo::library::Api::record",
    "demo::library::Api::end",
    "cache_monitor::get",
    "cache_monitor::put",
    "cache_monitor::load",
];

/// Where the screenshots and DOM dumps are kept: `target/tmp/pages/`.
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pages");
    std::fs::create_dir_all(&dir).expect("create target/tmp/pages");
    dir
}

/// Runs headless Chromium on `url` with `action` (`--dump-dom`, `--screenshot=FILE`...) and a fresh
/// profile; returns its stdout. Fails the test if Chromium is missing, fails, or takes over 2 minutes.
fn chromium(url: &str, action: &[&str]) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} not found: install the Debian package `chromium` (.ci/run does); this test needs a browser"
    );
    let profile = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            // Lets the page's timers run (the flamegraph fits its labels after a zero timeout).
            "--virtual-time-budget=2000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(action)
        .arg(url)
        .env("HOME", profile.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {CHROMIUM}: {e}"));
    let started = Instant::now();
    // Read the pipes on threads so that a chatty browser cannot block on a full pipe.
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let (stdout, stderr) = (read(Box::new(stdout)), read(Box::new(stderr)));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {action:?} {url} took over 2 minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (stdout.join().expect("stdout"), stderr.join().expect("stderr"));
    assert!(
        status.success(),
        "chromium {action:?} {url} failed with {status}:\n{stderr}"
    );
    stdout
}

/// Screenshots `url` at `width`x`height` into `file` under [`artifacts`]; returns the PNG's path after
/// checking that it is one.
fn screenshot(url: &str, file: &str, (width, height): (u32, u32)) -> PathBuf {
    let png = artifacts().join(file);
    let _ = std::fs::remove_file(&png);
    chromium(
        url,
        &[
            &format!("--screenshot={}", png.display()),
            &format!("--window-size={width},{height}"),
        ],
    );
    let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", png.display()));
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{} is a PNG", png.display());
    // The IHDR chunk follows the signature: width and height, big-endian.
    let size = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    assert_eq!((size(16), size(20)), (width, height), "{}", png.display());
    png
}

/// The DOM of `url` once loaded, kept as `file` under [`artifacts`].
fn dump_dom(url: &str, file: &str) -> String {
    let dom = chromium(url, &["--dump-dom"]);
    std::fs::write(artifacts().join(file), &dom).expect("keep the DOM dump");
    dom
}

/// `text` as the DOM serialises a text node: `&`, `<` and `>` escaped.
fn as_dom_text(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[test]
fn in_a_browser_the_index_lists_every_endpoint_and_the_flamegraph_names_the_demos_functions() {
    let mut demo = Demo::start(&["--duration", "300", "--rate", "3000", "--threads", "2"]);
    let base = format!("http://{}", demo.address);

    // Let the demo run until every function the flamegraph should show has been sampled.
    poll_until(
        "the demo's functions in the sampled stacks",
        Duration::from_secs(120),
        Duration::from_millis(500),
        || {
            let folded = String::from_utf8(curl(&format!("{base}/flamegraph.folded"), &[])).expect("UTF-8");
            DEMO_FRAMES
                .iter()
                .all(|frame| folded.split([';', ' ', '\n']).any(|f| f == *frame))
                .then_some(())
        },
    );

    let index = dump_dom(&format!("{base}/"), "index.html");
    assert!(index.contains("<title>cache-monitor</title>"), "{index}");
    for route in ROUTES {
        let item = format!(
            "<li><a href=\"{0}\">{0}</a>: {1}</li>",
            route.path,
            as_dom_text(route.about)
        );
        assert!(index.contains(&item), "the index shows {item}:\n{index}");
    }
    assert_eq!(
        index.matches("<a href=").count(),
        ROUTES.len(),
        "one link per endpoint:\n{index}"
    );
    assert!(
        index.contains("The flamegraphs sample 1 record in 100 on each thread."),
        "{index}"
    );
    let png = screenshot(&format!("{base}/"), "index.png", (1280, 720));
    println!("index page: {}", png.display());

    let svg = dump_dom(&format!("{base}/flamegraph.svg"), "flamegraph.svg.html");
    assert!(
        svg.contains(">cache-monitor operations</text>"),
        "the flamegraph's title:\n{svg}"
    );
    for frame in DEMO_FRAMES {
        // inferno titles each frame's box `name (N samples, P%)`, shown on hover.
        assert!(
            svg.contains(&format!("<title>{} (", as_dom_text(frame))),
            "the flamegraph has a frame {frame}:\n{svg}"
        );
    }
    assert!(!svg.contains("No sample taken"), "{svg}");
    let png = screenshot(&format!("{base}/flamegraph.svg"), "flamegraph.png", (1600, 1000));
    println!("flamegraph: {}", png.display());
    assert!(demo.interrupt().success(), "{}", demo.seen.join("\n"));

    // Without sampling, the flamegraph page says why it is empty and how to sample.
    let mut quiet = Demo::start(&[
        "--duration",
        "300",
        "--rate",
        "1000",
        "--threads",
        "1",
        "--no-profiling",
    ]);
    let base = format!("http://{}", quiet.address);
    let svg = dump_dom(&format!("{base}/flamegraph.svg"), "flamegraph-no-profiling.svg.html");
    for line in [
        "No sample taken: sampling is off, so there is no call stack to draw.",
        r#"Turn it on with the configuration {"profiler": {"sample_every": 100}} (1 record in 100 on each thread)"#,
    ] {
        assert!(svg.contains(&format!(">{line}</text>")), "{line}:\n{svg}");
    }
    let png = screenshot(
        &format!("{base}/flamegraph.svg"),
        "flamegraph-no-profiling.png",
        (1280, 240),
    );
    println!("flamegraph without profiling: {}", png.display());
    assert!(quiet.interrupt().success(), "{}", quiet.seen.join("\n"));
}
