//! SVG flamegraphs, drawn by `inferno` from folded stacks.

use std::io::ErrorKind;

use inferno::flamegraph::{self, Options};

use crate::config::profiler::Weight;
use crate::error::Error;
use crate::os_thread::{self, Failure};

/// An interactive SVG flamegraph of `folded` (see `folded`), its widths in `weight`'s unit. With no
/// stacks it is inferno's picture saying there is no input.
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
    match flamegraph::from_lines(&mut options, folded.lines(), &mut svg) {
        Ok(()) => {}
        // inferno has written its "no valid input" picture.
        Err(e) if folded.is_empty() && e.kind() == ErrorKind::InvalidData => {}
        Err(e) => return Err(Error::Render(format!("flamegraph: {e}"))),
    }
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

    #[test]
    fn no_stacks_still_make_an_svg() {
        let svg = render("", Weight::Samples).unwrap();
        assert!(svg.contains("<svg") && svg.trim_end().ends_with("</svg>"), "{svg}");
    }
}
