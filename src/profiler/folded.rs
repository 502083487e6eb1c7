//! Folded stacks, the text format of `flamegraph.pl` and `inferno-flamegraph`: one line per distinct
//! stack, its frames outermost first separated by `;`, a space, and its weight.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::symbols::UNKNOWN;
use crate::config::profiler::Weight;

/// One stack to fold: frames outermost first, and what it weighs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FoldedStack {
    pub(crate) frames: Vec<String>,
    pub(crate) samples: u64,
    pub(crate) total_ns: u64,
}

/// `stacks` with identical frames merged, at most `max` of them: the most sampled are kept and the rest
/// are counted together under [`OVERFLOW_FRAME`](super::OVERFLOW_FRAME), so stacks carried from copy to
/// copy across hot swaps stay bounded.
pub(crate) fn merge_bounded(stacks: Vec<FoldedStack>, max: usize) -> Vec<FoldedStack> {
    let mut merged: BTreeMap<Vec<String>, (u64, u64)> = BTreeMap::new();
    for stack in stacks {
        let entry = merged.entry(stack.frames).or_default();
        entry.0 = entry.0.saturating_add(stack.samples);
        entry.1 = entry.1.saturating_add(stack.total_ns);
    }
    let mut stacks: Vec<FoldedStack> = merged
        .into_iter()
        .map(|(frames, (samples, total_ns))| FoldedStack {
            frames,
            samples,
            total_ns,
        })
        .collect();
    if stacks.len() > max.max(1) {
        stacks.sort_by(|a, b| b.samples.cmp(&a.samples).then_with(|| a.frames.cmp(&b.frames)));
        let rest = stacks.split_off(max.max(1) - 1);
        stacks.push(FoldedStack {
            frames: vec![super::OVERFLOW_FRAME.to_owned()],
            samples: rest.iter().map(|s| s.samples).sum(),
            total_ns: rest.iter().map(|s| s.total_ns).sum(),
        });
    }
    stacks
}

/// Folds `stacks` into lines weighted by `weight`: stacks whose (sanitised) frames read the same are
/// merged, lines are sorted, and lines of zero weight (stacks under half a microsecond in total, when
/// weighing time) are left out.
pub(crate) fn fold(stacks: impl IntoIterator<Item = FoldedStack>, weight: Weight) -> String {
    let mut merged: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for stack in stacks {
        let mut line = String::new();
        for (i, frame) in stack.frames.iter().enumerate() {
            if i > 0 {
                line.push(';');
            }
            push_sanitised(&mut line, frame);
        }
        let (samples, total_ns) = merged.entry(line).or_default();
        *samples = samples.wrapping_add(stack.samples);
        *total_ns = total_ns.wrapping_add(stack.total_ns);
    }
    let mut folded = String::new();
    for (line, (samples, total_ns)) in merged {
        let value = match weight {
            Weight::Samples => samples,
            Weight::Time => total_ns / 1_000 + u64::from(total_ns % 1_000 >= 500),
        };
        if value > 0 {
            // Writing to a `String` cannot fail.
            let _ = writeln!(folded, "{line} {value}");
        }
    }
    folded
}

/// Appends `frame` made safe for a folded line: no `;` (the frame separator, replaced by `:`), no line
/// breaks or other control characters (replaced by spaces), no surrounding blanks, never empty.
fn push_sanitised(line: &mut String, frame: &str) {
    let clean = frame.trim_matches(|c: char| c.is_whitespace() || c.is_control());
    if clean.is_empty() {
        line.push_str(UNKNOWN);
        return;
    }
    line.extend(clean.chars().map(|c| match c {
        ';' => ':',
        c if c.is_control() => ' ',
        c => c,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_is_bounded_and_keeps_every_sample() {
        let stack = |frame: &str, samples| FoldedStack {
            frames: vec![frame.to_owned()],
            samples,
            total_ns: samples,
        };
        let stacks = vec![
            stack("a", 5),
            stack("b", 1),
            stack("a", 2),
            stack("c", 3),
            stack("d", 1),
        ];
        let merged = merge_bounded(stacks.clone(), 10);
        assert_eq!(merged.len(), 4);
        assert_eq!(merged.iter().find(|s| s.frames == ["a"]).map(|s| s.samples), Some(7));
        let bounded = merge_bounded(stacks, 3);
        assert_eq!(bounded.len(), 3);
        assert_eq!(bounded.iter().map(|s| s.samples).sum::<u64>(), 12, "nothing lost");
        assert_eq!(
            bounded.last().map(|s| (s.frames.clone(), s.samples)),
            Some((vec!["[overflow]".to_owned()], 2))
        );
    }

    fn stack(frames: &[&str], samples: u64, total_ns: u64) -> FoldedStack {
        FoldedStack {
            frames: frames.iter().map(|f| (*f).to_owned()).collect(),
            samples,
            total_ns,
        }
    }

    #[test]
    fn lines_are_sorted_merged_and_weighted_by_samples() {
        let folded = fold(
            [
                stack(&["main", "b", "cache_monitor::get"], 2, 10),
                stack(&["main", "a", "cache_monitor::get"], 3, 10),
                stack(&["main", "b", "cache_monitor::get"], 5, 10),
            ],
            Weight::Samples,
        );
        assert_eq!(folded, "main;a;cache_monitor::get 3\nmain;b;cache_monitor::get 7\n");
    }

    #[test]
    fn time_weight_is_total_microseconds_rounded_and_zero_lines_are_dropped() {
        let folded = fold(
            [
                stack(&["a"], 1_000, 2_000_000),
                stack(&["b"], 3, 1_499),
                stack(&["c"], 3, 1_500),
                stack(&["d"], 9, 499),
                stack(&["e"], 1, u64::MAX),
            ],
            Weight::Time,
        );
        assert_eq!(folded, format!("a 2000\nb 1\nc 2\ne {}\n", u64::MAX / 1_000 + 1));
    }

    #[test]
    fn frames_never_break_the_format() {
        let folded = fold(
            [stack(
                &["<[u8; 8] as Foo>::bar", "two\nlines\r\tx", "  padded ", "", "\n"],
                1,
                0,
            )],
            Weight::Samples,
        );
        assert_eq!(
            folded,
            "<[u8: 8] as Foo>::bar;two lines  x;padded;[unknown];[unknown] 1\n"
        );
        assert_eq!(fold(Vec::new(), Weight::Samples), "");
    }
}
