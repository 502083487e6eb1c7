//! The error type of the Rust API. The C ABI maps each variant to a status code (`ffi::status`).

use crate::config::ConfigError;
use crate::recording::exemplars::ExemplarError;

/// Why a monitor call was refused. Nothing is recorded or changed when a call returns an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The operation code is neither built in nor registered.
    #[error("unknown operation code {0}")]
    UnknownOperation(u32),
    /// The result code is not one of hit, miss, ok, error.
    #[error("unknown result code {0}")]
    UnknownResult(u32),
    /// The gauge code is not one of size_bytes, entries.
    #[error("unknown gauge code {0}")]
    UnknownGauge(u32),
    /// The text is not JSON, or not a JSON object.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// A configuration key is unknown or its value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The change cannot be made in the monitor's current state (a state file attached after records, an
    /// import older than the one already imported from its source). What it also covered before has its
    /// own variants: [`Error::BucketsLocked`], [`Error::TooManyImportSources`],
    /// [`Error::IncompatibleSnapshot`].
    #[error("not now: {0}")]
    Busy(String),
    /// Histogram buckets can only change before the first record or right after a reset.
    #[error("histogram buckets can only change before the first record or right after a reset")]
    BucketsLocked,
    /// State from this many other monitors is imported already; a reset makes room.
    #[error("state from {0} other monitors is imported already; reset first")]
    TooManyImportSources(usize),
    /// A well-formed state snapshot whose configuration cannot be merged into this monitor's (other
    /// histogram buckets, once this monitor has recorded).
    #[error("incompatible state snapshot: {0}")]
    IncompatibleSnapshot(String),
    /// A state snapshot is malformed.
    #[error("invalid state snapshot: {0}")]
    InvalidSnapshot(String),
    /// A state snapshot has another format or an unsupported version.
    #[error("foreign state snapshot: {0}")]
    ForeignSnapshot(String),
    /// A rendering failed (the flamegraph renderer reported an error).
    #[error("cannot render: {0}")]
    Render(String),
    /// The exporter's listen address is not an `IP:port` socket address.
    #[error("invalid listen address {0:?}: expected IP:port, such as 127.0.0.1:9464 or [::1]:9464")]
    InvalidAddress(String),
    /// The process-wide exporter is already serving (at the address given).
    #[error("already serving on {0}")]
    AlreadyServing(String),
    /// The exporter could not bind its listening socket.
    #[error("cannot listen on {address}: {reason}")]
    BindFailed {
        /// The address asked for.
        address: String,
        /// What the operating system said.
        reason: String,
    },
    /// The process-wide exporter is not serving.
    #[error("the exporter is not serving")]
    NotServing,
    /// The exporter bound its socket but could not start its thread or event loop.
    #[error("the exporter could not start: {0}")]
    ServeFailed(String),
    /// The library was built without the HTTP exporter (Cargo feature `exporter` off).
    #[error("the library was built without the HTTP exporter (Cargo feature `exporter`)")]
    ExporterNotBuilt,
    /// A state file cannot be attached or used: the text names the file and the problem.
    #[error("{0}")]
    StateFile(String),
    /// An exemplar's label set is refused (a bad or repeated name, more than 128 characters, a malformed
    /// line of the C ABI's text form); the record was not counted.
    #[error("invalid exemplar: {0}")]
    InvalidExemplar(String),
}

impl From<ExemplarError> for Error {
    /// Keeps the reason, with the names or lines it quotes cut to [`QUOTED_INPUT_BYTES`].
    fn from(error: ExemplarError) -> Self {
        Self::InvalidExemplar(shorten_quotes(&error.to_string()))
    }
}

impl From<ConfigError> for Error {
    /// Keeps the reason, with any input it quotes cut to [`QUOTED_INPUT_BYTES`] (`shorten_quotes`):
    /// a refused megabyte of configuration does not come back in its error.
    fn from(error: ConfigError) -> Self {
        match error {
            ConfigError::InvalidJson(why) => Self::InvalidJson(shorten_quotes(&why)),
            ConfigError::InvalidConfig(why) => Self::InvalidConfig(shorten_quotes(&why)),
        }
    }
}

/// The most bytes of one quoted input an error text keeps.
pub const QUOTED_INPUT_BYTES: usize = 64;

/// Writes `text` to `out` with every quoted part (between `"` and `"`, where `\` escapes, or between
/// backticks) cut after [`QUOTED_INPUT_BYTES`] bytes, at a character boundary, and marked `...` before its
/// closing quote. Error texts quote what they refuse (a value, a key, an address), and what they refuse
/// can be any size: this keeps a short prefix. Allocates nothing of its own; the C boundary streams
/// error texts through it into a fixed buffer.
pub(crate) struct QuoteLimiter<W> {
    out: W,
    /// The quote character of the quoted part being written, if any.
    open: Option<char>,
    /// The previous character inside a `"` quote was an unescaped backslash.
    escaped: bool,
    /// Bytes of the current quoted part written so far.
    quoted: usize,
    /// The current quoted part has been cut.
    cut: bool,
}

impl<W: std::fmt::Write> QuoteLimiter<W> {
    /// A limiter writing to `out`.
    pub(crate) fn new(out: W) -> Self {
        Self {
            out,
            open: None,
            escaped: false,
            quoted: 0,
            cut: false,
        }
    }

    /// The writer it wrote to.
    pub(crate) fn into_inner(self) -> W {
        self.out
    }
}

impl<W: std::fmt::Write> std::fmt::Write for QuoteLimiter<W> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        for c in text.chars() {
            match self.open {
                None => {
                    if c == '"' || c == '`' {
                        self.open = Some(c);
                        self.quoted = 0;
                        self.cut = false;
                        self.escaped = false;
                    }
                    self.out.write_char(c)?;
                }
                Some(quote) => {
                    let closes = c == quote && !self.escaped;
                    self.escaped = quote == '"' && c == '\\' && !self.escaped;
                    if closes {
                        self.open = None;
                        if self.cut {
                            self.out.write_str("...")?;
                        }
                        self.out.write_char(c)?;
                    } else if !self.cut && self.quoted + c.len_utf8() <= QUOTED_INPUT_BYTES {
                        self.quoted += c.len_utf8();
                        self.out.write_char(c)?;
                    } else {
                        self.cut = true;
                    }
                }
            }
        }
        Ok(())
    }
}

/// `text` with every quoted part cut to [`QUOTED_INPUT_BYTES`] (see [`QuoteLimiter`]).
pub(crate) fn shorten_quotes(text: &str) -> String {
    use std::fmt::Write;
    let mut limiter = QuoteLimiter::new(String::with_capacity(text.len().min(256)));
    let _ = limiter.write_str(text);
    limiter.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_inputs_keep_a_short_prefix() {
        let long = "x".repeat(100_000);
        assert_eq!(
            shorten_quotes(&format!("namespace: \"{long}\" is not a metric name")),
            format!(
                "namespace: \"{}...\" is not a metric name",
                "x".repeat(QUOTED_INPUT_BYTES)
            )
        );
        assert_eq!(
            shorten_quotes(&format!("unknown field `{long}`, expected `namespace`")),
            format!(
                "unknown field `{}...`, expected `namespace`",
                "x".repeat(QUOTED_INPUT_BYTES)
            )
        );
        let escaped = format!("value \"a\\\"{}\" end", "é".repeat(40));
        let kept = "é".repeat((QUOTED_INPUT_BYTES - 3) / 2);
        assert_eq!(shorten_quotes(&escaped), format!("value \"a\\\"{kept}...\" end"));
        let short = "invalid type: string \"abc\", expected a sequence";
        assert_eq!(shorten_quotes(short), short);
        let error: Error = ConfigError::InvalidConfig(format!("operations: \"{long}\"")).into();
        assert_eq!(
            error.to_string().len(),
            "invalid configuration: operations: \"...\"".len() + 64
        );
    }
}
