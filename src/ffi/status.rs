//! The C ABI's status codes and the code enums of its arguments, as they appear in the header.

use std::ffi::CStr;

use crate::error::Error;

/// What a `cache_monitor_*` call returns: `CACHE_MONITOR_STATUS_OK` (0) or a negative error code.
/// `cache_monitor_strerror` describes each one. A negative code means the call was refused and changed
/// nothing (the exceptions are stated where they apply: `cache_monitor_record_batch` counts the records
/// before the refused one, and `cache_monitor_finish` ends the operation even when it cannot record it).
/// Each code says since which minor version of the C ABI it exists.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheMonitorStatus {
    /// Success (since ABI 1.0).
    Ok = 0,
    /// A required pointer argument was NULL (since ABI 1.0).
    NullPointer = -1,
    /// The operation code is neither built in nor registered through `operations` (since ABI 1.0).
    UnknownOperation = -2,
    /// The outcome code is not one of `CacheMonitorOutcome` (since ABI 1.0).
    UnknownResult = -3,
    /// A length is impossible (larger than `PTRDIFF_MAX`) (since ABI 1.0).
    InvalidLength = -4,
    /// A string argument is not valid UTF-8 (since ABI 1.0).
    InvalidUtf8 = -5,
    /// The configuration text is not a JSON object (since ABI 1.0).
    InvalidJson = -6,
    /// A configuration key is unknown or its value is out of range; nothing was changed (since ABI 1.0).
    InvalidConfig = -7,
    /// The output buffer is too small: the text's size in bytes, without its terminating NUL, was written
    /// to `*len`; a buffer of at least `*len + 1` bytes holds it (since ABI 1.0).
    BufferTooSmall = -8,
    /// The gauge code is not one of `CacheMonitorGauge` (since ABI 1.0).
    UnknownGauge = -9,
    /// The change cannot be made in the monitor's current state (since ABI 1.0): a state file attached after
    /// records, an import of a snapshot older than the one already imported from its source (see
    /// `cache_monitor_last_error`). What it also covered before ABI 1.6 has its own code since:
    /// `BUCKETS_LOCKED`, `TOO_MANY_IMPORT_SOURCES`, `INCOMPATIBLE_SNAPSHOT`.
    Busy = -10,
    /// An internal error (a panic) was caught at the boundary; the monitor is still usable (since ABI 1.0).
    Internal = -11,
    /// A state snapshot is malformed; nothing was imported (since ABI 1.2).
    InvalidSnapshot = -12,
    /// A state snapshot has another format or an unsupported version; nothing was imported (since ABI 1.2).
    ForeignSnapshot = -13,
    /// `cache_monitor_serve`: the address is not `IP:port` (such as `127.0.0.1:9464`) (since ABI 1.4).
    InvalidAddress = -14,
    /// `cache_monitor_serve`: the exporter is already serving; call `cache_monitor_serve_stop` first (since
    /// ABI 1.4).
    AlreadyServing = -15,
    /// `cache_monitor_serve`: the address cannot be bound (in use, not local, or not permitted) (since
    /// ABI 1.4).
    BindFailed = -16,
    /// The exporter is not serving (since ABI 1.4).
    NotServing = -17,
    /// `cache_monitor_serve`: the exporter's thread or event loop could not start (since ABI 1.4).
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
    /// A render failed (the SVG flamegraph's drawing reported an error; see `cache_monitor_last_error`);
    /// nothing was written (since ABI 1.6; `INTERNAL` before).
    RenderFailed = -21,
    /// `cache_monitor_configure`: histogram buckets can change only before the first record or right after
    /// `cache_monitor_reset`; nothing was changed (since ABI 1.6; `BUSY` before).
    BucketsLocked = -22,
    /// `cache_monitor_import_state`: state from the most other library copies that can be imported at once
    /// is imported already; `cache_monitor_reset` makes room. Nothing was imported (since ABI 1.6; `BUSY`
    /// before).
    TooManyImportSources = -23,
    /// `cache_monitor_import_state`: a well-formed snapshot whose configuration cannot be merged (other
    /// histogram buckets, once this copy has recorded). Nothing was imported (since ABI 1.6; `BUSY`
    /// before).
    IncompatibleSnapshot = -24,
    /// `cache_monitor_render_alloc`: the format code is not one of `CacheMonitorFormat` (since ABI 1.6).
    UnknownFormat = -25,
    /// `cache_monitor_record_with_exemplar`: the exemplar's label set is refused (a name that is not
    /// `[a-zA-Z_][a-zA-Z0-9_]*` or begins with `__`, a name given twice, more than 128 characters in the
    /// names and values together, a line that is not `name=value`); the record was not counted (since
    /// ABI 1.6).
    InvalidExemplar = -26,
}

impl CacheMonitorStatus {
    /// Every status, in code order from 0 down.
    pub(crate) const ALL: [Self; 27] = [
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
        Self::RenderFailed,
        Self::BucketsLocked,
        Self::TooManyImportSources,
        Self::IncompatibleSnapshot,
        Self::UnknownFormat,
        Self::InvalidExemplar,
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
            Self::RenderFailed => c"the render failed; nothing written",
            Self::BucketsLocked => c"histogram buckets can change only before the first record or after a reset",
            Self::TooManyImportSources => c"too many import sources; reset first",
            Self::IncompatibleSnapshot => c"state snapshot with an incompatible configuration; nothing imported",
            Self::UnknownFormat => c"unknown render format code",
            Self::InvalidExemplar => c"invalid exemplar label set; nothing recorded",
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
            Error::BucketsLocked => Self::BucketsLocked,
            Error::TooManyImportSources(_) => Self::TooManyImportSources,
            Error::IncompatibleSnapshot(_) => Self::IncompatibleSnapshot,
            Error::InvalidSnapshot(_) => Self::InvalidSnapshot,
            Error::ForeignSnapshot(_) => Self::ForeignSnapshot,
            Error::Render(_) => Self::RenderFailed,
            Error::InvalidAddress(_) => Self::InvalidAddress,
            Error::AlreadyServing(_) => Self::AlreadyServing,
            Error::BindFailed { .. } => Self::BindFailed,
            Error::NotServing => Self::NotServing,
            Error::ServeFailed(_) => Self::ServeFailed,
            Error::ExporterNotBuilt => Self::ExporterNotBuilt,
            Error::StateFile(_) => Self::StateFile,
            Error::InvalidExemplar(_) => Self::InvalidExemplar,
        }
    }
}

/// Built-in operation codes for `cache_monitor_record` (since ABI 1.0). Custom operations registered with
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

/// Outcome codes for `cache_monitor_record`'s `result` argument: what the operation found or did (since
/// ABI 1.6 under this name; `CacheMonitorResult` and `CACHE_MONITOR_RESULT_*` before, still defined as
/// deprecated aliases). Not to be confused with what a call returns, a `CacheMonitorStatus`: an outcome
/// of `CACHE_MONITOR_OUTCOME_OK` (2) is not `CACHE_MONITOR_STATUS_OK` (0).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheMonitorOutcome {
    /// The key was found.
    Hit = 0,
    /// The key was not found.
    Miss = 1,
    /// Success without hit or miss.
    Ok = 2,
    /// The operation failed.
    Error = 3,
}

/// The outcome codes' name before ABI 1.6.
///
/// cbindgen:ignore
#[deprecated(note = "renamed CacheMonitorOutcome, so that outcome codes cannot be taken for status codes")]
pub type CacheMonitorResult = CacheMonitorOutcome;

/// What `cache_monitor_render_alloc` renders (since ABI 1.6): each of the texts the `cache_monitor_render*`
/// functions and `cache_monitor_export_state` write, and the protobuf exposition.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheMonitorFormat {
    /// Prometheus text exposition 0.0.4 (`cache_monitor_render`).
    Prometheus = 0,
    /// OpenMetrics 1.0.0 (`cache_monitor_render_openmetrics`).
    Openmetrics = 1,
    /// The hit-rate report as JSON (`cache_monitor_render_hit_rate_json`).
    HitRateJson = 2,
    /// The stats report as JSON (`cache_monitor_render_stats_json`).
    StatsJson = 3,
    /// Sampled stacks as folded stacks (`cache_monitor_render_flamegraph_folded`).
    FlamegraphFolded = 4,
    /// Sampled stacks as an SVG flamegraph (`cache_monitor_render_flamegraph_svg`).
    FlamegraphSvg = 5,
    /// A state snapshot for `cache_monitor_import_state` (`cache_monitor_export_state`).
    StateSnapshot = 6,
    /// The protobuf exposition (since ABI 1.6): length-delimited `io.prometheus.client.MetricFamily`
    /// messages, with native histograms. Binary: its size is `*len` (it may hold NUL bytes; the NUL
    /// after it is there all the same).
    Protobuf = 7,
}

impl CacheMonitorFormat {
    /// Every format, in code order.
    pub const ALL: [Self; 8] = [
        Self::Prometheus,
        Self::Openmetrics,
        Self::HitRateJson,
        Self::StatsJson,
        Self::FlamegraphFolded,
        Self::FlamegraphSvg,
        Self::StateSnapshot,
        Self::Protobuf,
    ];

    /// The format of a code, if it is one.
    pub fn from_code(code: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|format| *format as u32 == code)
    }
}

/// Gauge codes for `cache_monitor_set_gauge` (since ABI 1.0).
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
            CacheMonitorOutcome::Hit,
            CacheMonitorOutcome::Miss,
            CacheMonitorOutcome::Ok,
            CacheMonitorOutcome::Error,
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
        let texts: std::collections::BTreeSet<_> = CacheMonitorStatus::ALL.iter().map(|s| s.description()).collect();
        assert_eq!(
            texts.len(),
            CacheMonitorStatus::ALL.len(),
            "two codes share a description"
        );
        assert_eq!(
            CacheMonitorStatus::from_code(-(CacheMonitorStatus::ALL.len() as i32)),
            None
        );
    }

    #[test]
    fn every_format_has_its_own_code() {
        for (i, format) in CacheMonitorFormat::ALL.iter().enumerate() {
            assert_eq!(*format as u32, i as u32);
            assert_eq!(CacheMonitorFormat::from_code(i as u32), Some(*format));
        }
        assert_eq!(
            CacheMonitorFormat::from_code(CacheMonitorFormat::ALL.len() as u32),
            None
        );
        assert_eq!(CacheMonitorFormat::from_code(u32::MAX), None);
    }

    #[test]
    fn every_error_maps_to_its_own_status() {
        let errors = [
            (Error::UnknownOperation(9), CacheMonitorStatus::UnknownOperation),
            (Error::UnknownResult(9), CacheMonitorStatus::UnknownResult),
            (Error::UnknownGauge(9), CacheMonitorStatus::UnknownGauge),
            (Error::InvalidJson(String::new()), CacheMonitorStatus::InvalidJson),
            (Error::InvalidConfig(String::new()), CacheMonitorStatus::InvalidConfig),
            (Error::Busy(String::new()), CacheMonitorStatus::Busy),
            (Error::BucketsLocked, CacheMonitorStatus::BucketsLocked),
            (Error::TooManyImportSources(8), CacheMonitorStatus::TooManyImportSources),
            (
                Error::IncompatibleSnapshot(String::new()),
                CacheMonitorStatus::IncompatibleSnapshot,
            ),
            (
                Error::InvalidSnapshot(String::new()),
                CacheMonitorStatus::InvalidSnapshot,
            ),
            (
                Error::ForeignSnapshot(String::new()),
                CacheMonitorStatus::ForeignSnapshot,
            ),
            (Error::Render(String::new()), CacheMonitorStatus::RenderFailed),
            (Error::InvalidAddress(String::new()), CacheMonitorStatus::InvalidAddress),
            (Error::AlreadyServing(String::new()), CacheMonitorStatus::AlreadyServing),
            (
                Error::BindFailed {
                    address: String::new(),
                    reason: String::new(),
                },
                CacheMonitorStatus::BindFailed,
            ),
            (Error::NotServing, CacheMonitorStatus::NotServing),
            (Error::ServeFailed(String::new()), CacheMonitorStatus::ServeFailed),
            (Error::ExporterNotBuilt, CacheMonitorStatus::ExporterNotBuilt),
            (Error::StateFile(String::new()), CacheMonitorStatus::StateFile),
            (
                Error::InvalidExemplar(String::new()),
                CacheMonitorStatus::InvalidExemplar,
            ),
        ];
        for (error, status) in &errors {
            assert_eq!(CacheMonitorStatus::from(error), *status, "{error:?}");
        }
    }
}
