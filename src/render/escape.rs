//! Escaping for the text exposition formats: whatever bytes a key holds, a label value stays one value on
//! one line, and the text holds no NUL byte.
//!
//! The exposition formats (Prometheus text 0.0.4, OpenMetrics 1.0.0) know three escapes in label values,
//! `\\`, `\"` and `\n`; there is no escape for NUL (`\x00` or `\0` is refused by Prometheus' parser,
//! `promtool check metrics` included). A raw NUL is legal to that parser, but it ends the text for a C
//! host that reads the render as a string (`fputs`, `printf("%s")`), hiding every series after it. So a
//! NUL becomes U+FFFD, the character that already stands for the bytes of a key that are not UTF-8.

/// What a NUL byte in a label value or HELP text is written as.
pub(crate) const NUL_REPLACEMENT: char = '\u{fffd}';

/// Writes `value` as the inside of a double-quoted label value: backslash, double quote and line feed
/// become `\\`, `\"` and `\n`, and NUL becomes U+FFFD.
pub(crate) fn label_value(out: &mut String, value: &str) {
    // Fast path: most values (operation names, patterns) have nothing to escape.
    if !value.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n' | b'\0')) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\0' => out.push(NUL_REPLACEMENT),
            c => out.push(c),
        }
    }
}

/// Writes `text` as a HELP docstring: backslash and line feed become `\\` and `\n`, and NUL becomes
/// U+FFFD.
pub(crate) fn help(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\0' => out.push(NUL_REPLACEMENT),
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
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        // Whole numbers (counts as floats, gauges) print as integers, without the float formatter.
        integer(out, value as i64);
    } else {
        out.push_str(ryu::Buffer::new().format_finite(value));
    }
}

/// Writes a bucket bound or quantile as a label value: decimal notation (`0.000001`, not `1e-6`), which
/// is how the `prometheus` crate writes them too, so series from both line up.
pub(crate) fn bound(out: &mut String, value: f64) {
    if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        use std::fmt::Write;
        let _ = write!(out, "{value}");
    }
}

/// Writes an integer in decimal.
pub(crate) fn integer(out: &mut String, value: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(value));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(bytes: &str) -> String {
        let mut out = String::new();
        label_value(&mut out, bytes);
        out
    }

    #[test]
    fn label_values_cannot_break_out() {
        assert_eq!(escaped(r#"a"b"#), r#"a\"b"#);
        assert_eq!(escaped("a\\b"), r"a\\b");
        assert_eq!(escaped("a\nb} 1\nx"), r"a\nb} 1\nx");
        assert_eq!(escaped("\u{fffd}:*"), "\u{fffd}:*");
    }

    #[test]
    fn nul_bytes_become_replacement_characters() {
        assert_eq!(escaped("a\0b:*"), "a\u{fffd}b:*");
        assert_eq!(escaped("\0\"\0"), "\u{fffd}\\\"\u{fffd}");
        let mut out = String::new();
        help(&mut out, "x\0y\n");
        assert_eq!(out, "x\u{fffd}y\\n");
    }

    #[test]
    fn bounds_use_decimal_notation() {
        for (value, text) in [
            (1e-6, "0.000001"),
            (0.0025, "0.0025"),
            (10.0, "10"),
            (f64::INFINITY, "+Inf"),
        ] {
            let mut out = String::new();
            bound(&mut out, value);
            assert_eq!(out, text);
        }
    }

    #[test]
    fn floats_use_prometheus_spelling() {
        for (value, text) in [
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (0.5, "0.5"),
            (1e-6, "1e-6"),
            (3.0, "3"),
        ] {
            let mut out = String::new();
            float(&mut out, value);
            assert_eq!(out, text);
        }
    }
}
