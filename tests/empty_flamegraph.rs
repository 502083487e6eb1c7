//! A flamegraph with nothing to draw explains itself: `Monitor::render_flamegraph_svg` and
//! `cache_monitor_render_flamegraph_svg` answer a small valid SVG saying that no sample was taken and how
//! to turn sampling on, while the folded stacks, a format tools read, stay empty.

use cache_monitor::ffi::{CacheMonitorStatus, cache_monitor_render_flamegraph_svg};
use cache_monitor::{Monitor, Operation, Outcome};
use quick_xml::events::Event;

/// The text of each `<text>` element of `svg`, entities resolved; panics unless `svg` is well-formed
/// XML whose root is an `<svg>` element.
fn texts(svg: &str) -> Vec<String> {
    let mut reader = quick_xml::Reader::from_str(svg);
    reader.config_mut().check_end_names = true;
    let (mut texts, mut depth, mut in_text, mut root) = (Vec::new(), 0usize, false, None);
    loop {
        match reader
            .read_event()
            .unwrap_or_else(|e| panic!("not well-formed XML ({e}):\n{svg}"))
        {
            Event::Start(element) => {
                if depth == 0 {
                    root = Some(element.name().as_ref().to_vec());
                }
                depth += 1;
                in_text = element.name().as_ref() == b"text";
                if in_text {
                    texts.push(String::new());
                }
            }
            Event::End(_) => {
                depth -= 1;
                in_text = false;
            }
            Event::Text(text) if in_text => {
                let text = text.decode().expect("UTF-8");
                texts.last_mut().expect("inside <text>").push_str(&text);
            }
            Event::GeneralRef(reference) if in_text => {
                let entity = format!("&{};", reference.decode().expect("UTF-8"));
                let resolved = quick_xml::escape::unescape(&entity).expect("a predefined entity");
                texts.last_mut().expect("inside <text>").push_str(&resolved);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(root.as_deref(), Some(&b"svg"[..]), "{svg}");
    texts
}

/// Runs `body` on a new thread: its sampling countdown starts afresh, so "every N-th record" is exact.
fn on_fresh_thread(body: impl FnOnce() + Send) {
    std::thread::scope(|scope| scope.spawn(body).join().expect("the thread ran"));
}

#[test]
fn with_sampling_off_the_svg_says_no_sample_was_taken_and_how_to_sample_and_the_folded_stacks_are_empty() {
    let monitor = Monitor::new();
    monitor.record(Operation::GET, Outcome::Hit, 1_000, b"user:1").unwrap();
    assert_eq!(monitor.render_flamegraph_folded(), "");
    assert_eq!(
        texts(&monitor.render_flamegraph_svg().unwrap()),
        [
            "cache-monitor operations",
            "No sample taken: sampling is off, so there is no call stack to draw.",
            r#"Turn it on with the configuration {"profiler": {"sample_every": 100}} (1 record in 100 on each thread)"#,
            "through cache_monitor_configure (C) or Monitor::configure (Rust), record operations, then reload.",
        ]
    );
}

#[test]
fn with_sampling_on_the_svg_waits_for_the_first_sample_then_draws_it() {
    let monitor = Monitor::new();
    monitor.configure(r#"{"profiler": {"sample_every": 100}}"#).unwrap();
    on_fresh_thread(|| {
        for _ in 0..99 {
            monitor.record(Operation::GET, Outcome::Hit, 1_000, b"user:1").unwrap();
        }
        assert_eq!(monitor.render_flamegraph_folded(), "");
        assert_eq!(
            texts(&monitor.render_flamegraph_svg().unwrap())[1],
            "No sample taken yet: sampling is on (1 record in 100 on each thread), but no record has been sampled"
        );
        monitor.record(Operation::GET, Outcome::Hit, 1_000, b"user:1").unwrap();
    });
    let folded = monitor.render_flamegraph_folded();
    assert_eq!(folded.lines().count(), 1, "{folded}");
    assert!(folded.ends_with(";cache_monitor::get 1\n"), "{folded}");
    let svg = monitor.render_flamegraph_svg().unwrap();
    assert!(svg.contains("cache_monitor::get"), "inferno drew the sample");
    assert!(!svg.contains("No sample taken"), "{svg}");
}

#[test]
fn weighed_by_time_samples_too_short_to_show_are_counted_in_the_explanation() {
    let monitor = Monitor::new();
    monitor
        .configure(r#"{"profiler": {"sample_every": 1, "weight": "time"}}"#)
        .unwrap();
    on_fresh_thread(|| {
        for _ in 0..3 {
            monitor.record(Operation::GET, Outcome::Hit, 100, b"user:1").unwrap();
        }
    });
    assert_eq!(monitor.render_flamegraph_folded(), "", "300 ns round to 0 us");
    assert_eq!(
        texts(&monitor.render_flamegraph_svg().unwrap())[1..],
        [
            "3 samples taken, but widths are microseconds of the sampled operations",
            r#"({"profiler": {"weight": "time"}}) and no stack adds up to one yet."#,
            r#"Reload once more operations were sampled, or draw sample counts: {"profiler": {"weight": "samples"}}."#,
        ]
    );
}

#[test]
fn the_c_abi_answers_the_same_explanation_under_the_buffer_contract() {
    // This test binary's only use of the process-wide monitor, which nothing configured.
    let mut len = 0usize;
    // SAFETY: a NULL buffer with capacity 0 is allowed; `len` is a valid, writable usize.
    let status = unsafe { cache_monitor_render_flamegraph_svg(std::ptr::null_mut(), 0, &mut len) };
    assert_eq!(status, CacheMonitorStatus::BufferTooSmall as i32);
    let mut buffer = vec![0u8; len + 1];
    let mut written = 0usize;
    // SAFETY: `buffer` is writable for `buffer.len()` bytes and `written` is a valid, writable usize.
    let status = unsafe { cache_monitor_render_flamegraph_svg(buffer.as_mut_ptr(), buffer.len(), &mut written) };
    assert_eq!(status, CacheMonitorStatus::Ok as i32);
    assert_eq!(written, len);
    assert_eq!(buffer[len], 0, "NUL-terminated");
    let svg = std::str::from_utf8(&buffer[..len]).expect("UTF-8");
    assert_eq!(svg, Monitor::global().render_flamegraph_svg().unwrap());
    assert_eq!(
        texts(svg)[1],
        "No sample taken: sampling is off, so there is no call stack to draw."
    );
}
