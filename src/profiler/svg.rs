//! SVG flamegraphs, drawn by `inferno` from folded stacks, and the picture shown instead when there is no
//! stack to draw.

use std::fmt::Write as _;

use inferno::flamegraph::{self, Options};

use crate::config::profiler::{ProfilerConfig, Weight};
use crate::error::Error;
use crate::os_thread::{self, Failure};

/// The configuration that turns sampling on, as the empty flamegraph quotes it.
const TURN_SAMPLING_ON: &str = r#"{"profiler": {"sample_every": 100}}"#;

/// Why a flamegraph has no stack to draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NothingToDraw {
    /// Sampling is off (`sample_every` is 0) and no sample is held.
    SamplingOff,
    /// Sampling is on, one record in `sample_every` on each thread, but no sample is held yet.
    NoSampleYet {
        /// The configured rate.
        sample_every: u32,
    },
    /// Samples are held, but the flamegraph is weighed by time and every stack's total rounds to 0 us.
    UnderAMicrosecond {
        /// Samples held.
        samples: u64,
    },
}

impl NothingToDraw {
    /// Why a flamegraph of `samples` samples taken under `config` has no stack to draw (its folded
    /// stacks are empty).
    pub(crate) fn given(config: &ProfilerConfig, samples: u64) -> Self {
        if samples > 0 && config.weight == Weight::Time {
            Self::UnderAMicrosecond { samples }
        } else if config.sample_every == 0 {
            Self::SamplingOff
        } else {
            // Also when a sample arrived after the stacks were read: it shows at the next render.
            Self::NoSampleYet {
                sample_every: config.sample_every,
            }
        }
    }

    /// The lines the picture says: what happened, then what to do about it.
    pub(crate) fn lines(self) -> Vec<String> {
        match self {
            Self::SamplingOff => vec![
                "No sample taken: sampling is off, so there is no call stack to draw.".to_owned(),
                format!("Turn it on with the configuration {TURN_SAMPLING_ON} (1 record in 100 on each thread)"),
                "through cache_monitor_configure (C) or Monitor::configure (Rust), record operations, then reload."
                    .to_owned(),
            ],
            Self::NoSampleYet { sample_every } => vec![
                format!(
                    "No sample taken yet: sampling is on (1 record in {sample_every} on each thread), but no record has been sampled"
                ),
                "since it was turned on or since the last reset.".to_owned(),
                r#"Reload once more operations were recorded; {"profiler": {"sample_every": 1}} samples every record."#
                    .to_owned(),
            ],
            Self::UnderAMicrosecond { samples } => vec![
                format!(
                    "{samples} sample{} taken, but widths are microseconds of the sampled operations",
                    if samples == 1 { "" } else { "s" }
                ),
                r#"({"profiler": {"weight": "time"}}) and no stack adds up to one yet."#.to_owned(),
                r#"Reload once more operations were sampled, or draw sample counts: {"profiler": {"weight": "samples"}}."#
                    .to_owned(),
            ],
        }
    }
}

/// A small SVG, in the style of inferno's, saying why there is no flamegraph and how to get one.
pub(crate) fn nothing_to_draw(why: NothingToDraw) -> String {
    const WIDTH: usize = 1200;
    const LINE: usize = 24;
    let lines = why.lines();
    let height = 70 + LINE * lines.len();
    let mut svg = format!(
        "<?xml version=\"1.0\" standalone=\"no\"?>\n\
         <svg version=\"1.1\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" \
         xmlns=\"http://www.w3.org/2000/svg\">\n\
         <title>cache-monitor operations: no flamegraph yet</title>\n\
         <rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{height}\" fill=\"#eeeeee\"/>\n\
         <text x=\"{}\" y=\"30\" text-anchor=\"middle\" font-family=\"Verdana\" font-size=\"17\">cache-monitor operations</text>\n",
        WIDTH / 2
    );
    for (i, line) in lines.iter().enumerate() {
        let _ = write!(
            svg,
            "<text x=\"20\" y=\"{}\" font-family=\"Verdana\" font-size=\"14\">",
            70 + LINE * i
        );
        push_xml_escaped(&mut svg, line);
        svg.push_str("</text>\n");
    }
    svg.push_str("</svg>\n");
    svg
}

/// Appends `text` with the characters XML text and attributes reserve escaped.
fn push_xml_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// An interactive SVG flamegraph of `folded` (see `folded`), its widths in `weight`'s unit. `folded`
/// must hold a stack: with none, the caller draws [`nothing_to_draw`] instead.
///
/// Drawn on a thread of the library's own (see `os_thread`): inferno keeps a thread-local value with a
/// destructor, which on a host thread would keep `dlclose` from unloading the library.
pub(crate) fn render(folded: &str, weight: Weight) -> Result<String, Error> {
    os_thread::run(|| draw(folded, weight)).unwrap_or_else(|failure| {
        Err(Error::Render(match failure {
            Failure::Thread(why) => why,
            Failure::Panicked => "the flamegraph renderer panicked".to_owned(),
        }))
    })
}

fn draw(folded: &str, weight: Weight) -> Result<String, Error> {
    let mut options = Options::default();
    options.title = "cache-monitor operations".to_owned();
    options.count_name = match weight {
        Weight::Samples => "samples",
        Weight::Time => "us",
    }
    .to_owned();
    let mut svg = Vec::new();
    flamegraph::from_lines(&mut options, folded.lines(), &mut svg)
        .map_err(|e| Error::Render(format!("flamegraph: {e}")))?;
    String::from_utf8(svg).map_err(|e| Error::Render(format!("flamegraph is not UTF-8: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_stacks_become_an_svg_naming_their_frames() {
        let svg = render(
            "main;alpha;cache_monitor::get 3\nmain;beta;cache_monitor::put 1\n",
            Weight::Samples,
        )
        .unwrap();
        assert!(svg.starts_with("<?xml"), "{svg}");
        for name in ["alpha", "beta", "cache_monitor::get", "4 samples"] {
            assert!(svg.contains(name), "{name} missing");
        }
        let time = render("main 2000\n", Weight::Time).unwrap();
        assert!(time.contains("2,000 us"), "{time}");
    }

    /// The text of every `<text>` element of `svg`, which must be well-formed XML with an `<svg>` root in
    /// the SVG namespace.
    fn texts(svg: &str) -> Vec<String> {
        use quick_xml::events::Event;
        let mut reader = quick_xml::Reader::from_str(svg);
        let (mut texts, mut depth, mut in_text, mut root) = (Vec::new(), 0usize, false, None);
        loop {
            match reader.read_event().unwrap_or_else(|e| panic!("not XML ({e}):\n{svg}")) {
                Event::Start(element) => {
                    if depth == 0 {
                        let namespace = element
                            .try_get_attribute("xmlns")
                            .unwrap()
                            .map(|a| String::from_utf8(a.value.to_vec()).unwrap());
                        root = Some((String::from_utf8(element.name().as_ref().to_vec()).unwrap(), namespace));
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
                    let last = texts.last_mut().unwrap();
                    last.push_str(&text.decode().unwrap());
                }
                Event::GeneralRef(reference) if in_text => {
                    let name = reference.decode().unwrap();
                    let entity = format!("&{name};");
                    texts
                        .last_mut()
                        .unwrap()
                        .push_str(&quick_xml::escape::unescape(&entity).unwrap());
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(depth, 0, "every element closed");
        assert_eq!(
            root,
            Some(("svg".to_owned(), Some("http://www.w3.org/2000/svg".to_owned())))
        );
        texts
    }

    #[test]
    fn with_sampling_off_the_picture_says_no_sample_was_taken_and_how_to_turn_sampling_on() {
        let svg = nothing_to_draw(NothingToDraw::SamplingOff);
        assert!(
            svg.starts_with("<?xml version=\"1.0\" standalone=\"no\"?>\n<svg "),
            "{svg}"
        );
        assert_eq!(
            texts(&svg),
            [
                "cache-monitor operations",
                "No sample taken: sampling is off, so there is no call stack to draw.",
                r#"Turn it on with the configuration {"profiler": {"sample_every": 100}} (1 record in 100 on each thread)"#,
                "through cache_monitor_configure (C) or Monitor::configure (Rust), record operations, then reload.",
            ]
        );
        assert!(!svg.contains("ERROR"), "{svg}");
    }

    #[test]
    fn with_sampling_on_or_weighed_by_time_the_picture_says_what_to_wait_for() {
        assert_eq!(
            texts(&nothing_to_draw(NothingToDraw::NoSampleYet { sample_every: 7 }))[1..],
            [
                "No sample taken yet: sampling is on (1 record in 7 on each thread), but no record has been sampled",
                "since it was turned on or since the last reset.",
                r#"Reload once more operations were recorded; {"profiler": {"sample_every": 1}} samples every record."#,
            ]
        );
        assert_eq!(
            texts(&nothing_to_draw(NothingToDraw::UnderAMicrosecond { samples: 3 }))[1..],
            [
                "3 samples taken, but widths are microseconds of the sampled operations",
                r#"({"profiler": {"weight": "time"}}) and no stack adds up to one yet."#,
                r#"Reload once more operations were sampled, or draw sample counts: {"profiler": {"weight": "samples"}}."#,
            ]
        );
        assert_eq!(
            texts(&nothing_to_draw(NothingToDraw::UnderAMicrosecond { samples: 1 }))[1],
            "1 sample taken, but widths are microseconds of the sampled operations"
        );
    }

    #[test]
    fn the_reason_follows_the_configuration_and_the_samples_held() {
        let config = |sample_every, weight| ProfilerConfig {
            sample_every,
            weight,
            ..ProfilerConfig::default()
        };
        assert_eq!(
            NothingToDraw::given(&config(0, Weight::Samples), 0),
            NothingToDraw::SamplingOff
        );
        assert_eq!(
            NothingToDraw::given(&config(0, Weight::Time), 0),
            NothingToDraw::SamplingOff
        );
        assert_eq!(
            NothingToDraw::given(&config(100, Weight::Samples), 0),
            NothingToDraw::NoSampleYet { sample_every: 100 }
        );
        assert_eq!(
            NothingToDraw::given(&config(100, Weight::Time), 5),
            NothingToDraw::UnderAMicrosecond { samples: 5 }
        );
        assert_eq!(
            NothingToDraw::given(&config(0, Weight::Time), 5),
            NothingToDraw::UnderAMicrosecond { samples: 5 },
            "sampled before sampling was turned off"
        );
    }

    #[test]
    fn inferno_is_never_asked_to_draw_nothing() {
        assert!(matches!(render("", Weight::Samples), Err(Error::Render(_))));
    }
}
