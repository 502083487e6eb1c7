//! The C ABI's status codes and the code enums of its arguments, as they appear in the header.

use std::ffi::CStr;

use crate::error::Error;

/// What a `cache_monitor_*` call returns: `CACHE_MONITOR_STATUS_OK` (0) or a negative error code.
/// `cache_monitor_strerror` describes each one.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheMonitorStatus {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullPointer = -1,
    /// The operation code is neither built in nor registered through `operations`.
    UnknownOperation = -2,
    /// The result code is not one of `CacheMonitorResult`.
    UnknownResult = -3,
    /// A length is impossible (larger than `PTRDIFF_MAX`).
    InvalidLength = -4,
    /// A string argument is not valid UTF-8.
    InvalidUtf8 = -5,
    /// The configuration text is not a JSON object.
    InvalidJson = -6,
    /// A configuration key is unknown or its value is out of range; nothing was changed.
    InvalidConfig = -7,
    /// The output buffer is too small: the needed size, in bytes, was written to `*len`.
    BufferTooSmall = -8,
    /// The gauge code is not one of `CacheMonitorGauge`.
    UnknownGauge = -9,
    /// The change cannot be made in the monitor's current state (see `cache_monitor_last_error`).
    Busy = -10,
    /// An internal error was caught at the boundary; the monitor is still usable.
    Internal = -11,
    /// A state snapshot is malformed; nothing was imported.
    InvalidSnapshot = -12,
    /// A state snapshot has another format or an unsupported version; nothing was imported.
    ForeignSnapshot = -13,
    /// `cache_monitor_serve`: the address is not `IP:port` (such as `127.0.0.1:9464`).
    InvalidAddress = -14,
    /// `cache_monitor_serve`: the exporter is already serving; call `cache_monitor_serve_stop` first.
    AlreadyServing = -15,
    /// `cache_monitor_serve`: the address cannot be bound (in use, not local, or not permitted).
    BindFailed = -16,
    /// The exporter is not serving.
    NotServing = -17,
    /// `cache_monitor_serve`: the exporter's thread or event loop could not start.
    ServeFailed = -18,
    /// `cache_monitor_serve`, `cache_monitor_serve_stop`, `cache_monitor_serve_address`: the library was
    /// built without the HTTP exporter (Cargo feature `exporter` off), so nothing was started or stopped
    /// (since ABI 1.5).
    ExporterNotBuilt = -19,
    /// `cache_monitor_configure` with `{"state": ...}`, `cache_monitor_import_state`: the state file cannot
    /// be attached (missing, unreadable, corrupt, of another layout or owner, or configured differently
    /// with counts in it) or a state file is attached; `cache_monitor_last_error` names the file and the
    /// problem. Nothing changed (since ABI 1.6).
    StateFile = -20,
}

impl CacheMonitorStatus {
    /// Every status, in code order from 0 down.
    pub(crate) const ALL: [Self; 21] = [
        Self::Ok,
        Self::NullPointer,
        Self::UnknownOperation,
        Self::UnknownResult,
        Self::InvalidLength,
        Self::InvalidUtf8,
        Self::InvalidJson,
        Self::InvalidConfig,
        Self::BufferTooSmall,
        Self::UnknownGauge,
        Self::Busy,
        Self::Internal,
        Self::InvalidSnapshot,
        Self::ForeignSnapshot,
        Self::InvalidAddress,
        Self::AlreadyServing,
        Self::BindFailed,
        Self::NotServing,
        Self::ServeFailed,
        Self::ExporterNotBuilt,
        Self::StateFile,
    ];

    /// A static, NUL-terminated description.
    pub fn description(self) -> &'static CStr {
        match self {
            Self::Ok => c"success",
            Self::NullPointer => c"a required pointer argument was NULL",
            Self::UnknownOperation => c"unknown operation code",
            Self::UnknownResult => c"unknown result code",
            Self::InvalidLength => c"impossible length",
            Self::InvalidUtf8 => c"string is not valid UTF-8",
            Self::InvalidJson => c"configuration is not a JSON object",
            Self::InvalidConfig => c"unknown configuration key or bad value; configuration unchanged",
            Self::BufferTooSmall => c"buffer too small; needed size written to *len",
            Self::UnknownGauge => c"unknown gauge code",
            Self::Busy => c"not possible in the monitor's current state",
            Self::Internal => c"internal error caught at the C boundary",
            Self::InvalidSnapshot => c"malformed state snapshot; nothing imported",
            Self::ForeignSnapshot => c"state snapshot of another format or version; nothing imported",
            Self::InvalidAddress => c"listen address is not IP:port",
            Self::AlreadyServing => c"the exporter is already serving",
            Self::BindFailed => c"cannot bind the listen address",
            Self::NotServing => c"the exporter is not serving",
            Self::ServeFailed => c"the exporter could not start its thread",
            Self::ExporterNotBuilt => c"the library was built without the HTTP exporter",
            Self::StateFile => c"the state file cannot be used; nothing changed (see cache_monitor_last_error)",
        }
    }

    /// The status of a code, if it is one.
    pub fn from_code(code: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|status| *status as i32 == code)
    }
}

impl From<&Error> for CacheMonitorStatus {
    fn from(error: &Error) -> Self {
        match error {
            Error::UnknownOperation(_) => Self::UnknownOperation,
            Error::UnknownResult(_) => Self::UnknownResult,
            Error::UnknownGauge(_) => Self::UnknownGauge,
            Error::InvalidJson(_) => Self::InvalidJson,
            Error::InvalidConfig(_) => Self::InvalidConfig,
            Error::Busy(_) => Self::Busy,
            Error::InvalidSnapshot(_) => Self::InvalidSnapshot,
            Error::ForeignSnapshot(_) => Self::ForeignSnapshot,
            Error::Render(_) => Self::Internal,
            Error::InvalidAddress(_) => Self::InvalidAddress,
            Error::AlreadyServing(_) => Self::AlreadyServing,
            Error::BindFailed { .. } => Self::BindFailed,
            Error::NotServing => Self::NotServing,
            Error::ServeFailed(_) => Self::ServeFailed,
            Error::ExporterNotBuilt => Self::ExporterNotBuilt,
            Error::StateFile(_) => Self::StateFile,
        }
    }
}

/// Built-in operation codes for `cache_monitor_record`. Custom operations registered with
/// `{"operations": [...]}` take the codes from `CACHE_MONITOR_OPERATION_FIRST_CUSTOM` on.
#[repr(u32)]
#[derive(Clone, Copy, Debug)]
pub enum CacheMonitorOperation {
    /// A lookup; result hit or miss.
    Get = 0,
    /// An insert or update.
    Put = 1,
    /// Removal of one key.
    Delete = 2,
    /// A presence check; result hit or miss.
    Contains = 3,
    /// Removal of every key.
    Clear = 4,
    /// Removal decided by the cache.
    Evict = 5,
    /// A fill from the backing store.
    Load = 6,
    /// The first code available to custom operations.
    FirstCustom = 7,
}

/// Result codes for `cache_monitor_record`.
#[repr(u32)]
#[derive(Clone, Copy, Debug)]
pub enum CacheMonitorResult {
    /// The key was found.
    Hit = 0,
    /// The key was not found.
    Miss = 1,
    /// Success without hit or miss.
    Ok = 2,
    /// The operation failed.
    Error = 3,
}

/// Gauge codes for `cache_monitor_set_gauge`.
#[repr(u32)]
#[derive(Clone, Copy, Debug)]
pub enum CacheMonitorGauge {
    /// Bytes held by the cache.
    SizeBytes = 0,
    /// Entries held by the cache.
    Entries = 1,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::operation::{Gauge, Operation, Outcome};

    #[test]
    fn header_codes_match_the_rust_codes() {
        let ops = [
            CacheMonitorOperation::Get,
            CacheMonitorOperation::Put,
            CacheMonitorOperation::Delete,
            CacheMonitorOperation::Contains,
            CacheMonitorOperation::Clear,
            CacheMonitorOperation::Evict,
            CacheMonitorOperation::Load,
        ];
        for (c, rust) in ops.iter().zip(Operation::BUILTIN) {
            assert_eq!(*c as u32, rust.code());
        }
        assert_eq!(CacheMonitorOperation::FirstCustom as u32, Operation::FIRST_CUSTOM);
        let results = [
            CacheMonitorResult::Hit,
            CacheMonitorResult::Miss,
            CacheMonitorResult::Ok,
            CacheMonitorResult::Error,
        ];
        for (c, rust) in results.iter().zip(Outcome::ALL) {
            assert_eq!(*c as u32, rust.code());
        }
        for (c, rust) in [CacheMonitorGauge::SizeBytes, CacheMonitorGauge::Entries]
            .iter()
            .zip(Gauge::ALL)
        {
            assert_eq!(*c as u32, rust as u32);
        }
    }

    #[test]
    fn every_code_has_its_own_description() {
        for (i, status) in CacheMonitorStatus::ALL.iter().enumerate() {
            assert_eq!(*status as i32, -(i as i32));
            assert_eq!(CacheMonitorStatus::from_code(*status as i32), Some(*status));
        }
        let mut texts: Vec<_> = CacheMonitorStatus::ALL.iter().map(|s| s.description()).collect();
        texts.dedup();
        assert_eq!(texts.len(), CacheMonitorStatus::ALL.len());
    }
}
