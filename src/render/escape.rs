//! Escaping for the text exposition formats: whatever bytes a key holds, a label value stays one value on
//! one line.

use std::borrow::Cow;
use std::fmt::Write;

/// Writes `value` as the inside of a double-quoted label value: invalid UTF-8 becomes U+FFFD, and
/// backslash, double quote and line feed become `\\`, `\"` and `\n`.
pub(crate) fn label_value(out: &mut String, value: &[u8]) {
    let text: Cow<'_, str> = String::from_utf8_lossy(value);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Writes `text` as a HELP docstring: backslash and line feed become `\\` and `\n`.
pub(crate) fn help(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Writes a sample value the way Prometheus parses it: `NaN`, `+Inf`, `-Inf`, or a decimal number.
pub(crate) fn float(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(bytes: &[u8]) -> String {
        let mut out = String::new();
        label_value(&mut out, bytes);
        out
    }

    #[test]
    fn label_values_cannot_break_out() {
        assert_eq!(escaped(br#"a"b"#), r#"a\"b"#);
        assert_eq!(escaped(b"a\\b"), r"a\\b");
        assert_eq!(escaped(b"a\nb} 1\nx"), r"a\nb} 1\nx");
        assert_eq!(escaped(b"\xff:*"), "\u{fffd}:*");
    }

    #[test]
    fn floats_use_prometheus_spelling() {
        for (value, text) in [
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (0.5, "0.5"),
            (1e-6, "0.000001"),
            (3.0, "3"),
        ] {
            let mut out = String::new();
            float(&mut out, value);
            assert_eq!(out, text);
        }
    }
}
