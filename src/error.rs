//! The error type of the Rust API. The C ABI maps each variant to a status code (`ffi::status`).

use crate::config::ConfigError;

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
    /// The change cannot be made in the monitor's current state.
    #[error("not now: {0}")]
    Busy(String),
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
}

impl From<ConfigError> for Error {
    fn from(error: ConfigError) -> Self {
        match error {
            ConfigError::InvalidJson(why) => Self::InvalidJson(why),
            ConfigError::InvalidConfig(why) => Self::InvalidConfig(why),
        }
    }
}
