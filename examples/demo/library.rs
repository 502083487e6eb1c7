//! `libcache_monitor.so`, loaded with `dlopen` (through `libloading`) as any C host would load it.
//!
//! Only types come from the `cache_monitor` crate (the Rust mirror of `include/cache_monitor.h`: the
//! function typedefs and code enums); every call goes through a pointer `dlsym` returned.

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};

use cache_monitor::ffi::{
    CACHE_MONITOR_ABI_VERSION_MAJOR, CACHE_MONITOR_ABI_VERSION_MINOR, CacheMonitorAbiVersionFn, CacheMonitorBeginFn,
    CacheMonitorConfigureFn, CacheMonitorRecordFn, CacheMonitorRenderFn, CacheMonitorServeFn, CacheMonitorServeStopFn,
    CacheMonitorSetGaugeFn, CacheMonitorStatus, CacheMonitorStrerrorFn,
};
use libloading::Library;

/// The library's functions. The `Library` is kept so the pointers stay valid for the life of `Api`.
pub struct Api {
    pub path: PathBuf,
    pub version: u32,
    configure: CacheMonitorConfigureFn,
    record: CacheMonitorRecordFn,
    begin: CacheMonitorBeginFn,
    end: CacheMonitorRecordFn,
    set_gauge: CacheMonitorSetGaugeFn,
    render: CacheMonitorRenderFn,
    last_error: CacheMonitorRenderFn,
    strerror: CacheMonitorStrerrorFn,
    serve: CacheMonitorServeFn,
    serve_stop: CacheMonitorServeStopFn,
    serve_address: CacheMonitorRenderFn,
    _library: Library,
}

/// A failed call: its status and the library's description of it.
#[derive(Debug)]
pub struct CallError(pub String);

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `libcache_monitor.so` cargo built with this binary (`target/<profile>/examples/demo`): in
/// `target/<profile>/deps/`, where cargo always writes it, or `target/<profile>/`, where it is copied
/// when the library itself is built (`cargo build`), but not when only the example is.
pub fn default_path() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("{} is not in target/<profile>/examples/", exe.display()))?;
    let candidates = [
        profile_dir.join("deps/libcache_monitor.so"),
        profile_dir.join("libcache_monitor.so"),
    ];
    Ok(candidates
        .iter()
        .find(|path| path.exists())
        .unwrap_or(&candidates[0])
        .clone())
}

impl Api {
    /// Loads the library and every function the demo uses, checking its ABI version.
    pub fn load(path: &Path) -> Result<Self, String> {
        if !path.exists() {
            return Err(format!(
                "{} not found: build it with `cargo build --release` (`cargo run --release --example demo` does), or pass --library PATH",
                path.display()
            ));
        }
        // SAFETY: loading runs the library's initialisers; libcache_monitor has none beyond Rust's
        // (statics are lazily initialised).
        let library = unsafe { Library::new(path) }.map_err(|e| format!("dlopen {}: {e}", path.display()))?;
        macro_rules! symbol {
            ($name:literal, $type:ty) => {
                // SAFETY: the symbol is declared in include/cache_monitor.h with the signature of
                // this typedef (the crate checks both at compile time); the copied pointer is only
                // used while `_library` keeps the library loaded.
                *unsafe { library.get::<$type>($name) }.map_err(|e| format!("dlsym {}: {e}", $name))?
            };
        }
        let abi_version: CacheMonitorAbiVersionFn = symbol!("cache_monitor_abi_version", CacheMonitorAbiVersionFn);
        let version = abi_version();
        if version >> 16 != CACHE_MONITOR_ABI_VERSION_MAJOR || version & 0xffff < CACHE_MONITOR_ABI_VERSION_MINOR {
            return Err(format!(
                "{} speaks ABI {}.{}, this demo needs {}.{} or a later minor",
                path.display(),
                version >> 16,
                version & 0xffff,
                CACHE_MONITOR_ABI_VERSION_MAJOR,
                CACHE_MONITOR_ABI_VERSION_MINOR
            ));
        }
        Ok(Self {
            path: path.to_owned(),
            version,
            configure: symbol!("cache_monitor_configure", CacheMonitorConfigureFn),
            record: symbol!("cache_monitor_record", CacheMonitorRecordFn),
            begin: symbol!("cache_monitor_begin", CacheMonitorBeginFn),
            end: symbol!("cache_monitor_end", CacheMonitorRecordFn),
            set_gauge: symbol!("cache_monitor_set_gauge", CacheMonitorSetGaugeFn),
            render: symbol!("cache_monitor_render", CacheMonitorRenderFn),
            last_error: symbol!("cache_monitor_last_error", CacheMonitorRenderFn),
            strerror: symbol!("cache_monitor_strerror", CacheMonitorStrerrorFn),
            serve: symbol!("cache_monitor_serve", CacheMonitorServeFn),
            serve_stop: symbol!("cache_monitor_serve_stop", CacheMonitorServeStopFn),
            serve_address: symbol!("cache_monitor_serve_address", CacheMonitorRenderFn),
            _library: library,
        })
    }

    fn check(&self, status: i32) -> Result<(), CallError> {
        if status == CacheMonitorStatus::Ok as i32 {
            return Ok(());
        }
        // SAFETY: `cache_monitor_strerror` returns a static NUL-terminated string, never NULL.
        let description = unsafe { CStr::from_ptr((self.strerror)(status)) };
        let detail = self.text(self.last_error).unwrap_or_default();
        Err(CallError(format!(
            "status {status} ({}): {detail}",
            description.to_string_lossy()
        )))
    }

    /// A text from a function with the buffer contract: ask for the size, then retry until it fits.
    fn text(&self, function: CacheMonitorRenderFn) -> Result<String, CallError> {
        let mut len = 0usize;
        // SAFETY: a NULL buffer with capacity 0 asks for the size; `len` is a live local.
        let mut status = unsafe { function(std::ptr::null_mut(), 0, &mut len) };
        loop {
            if status == CacheMonitorStatus::Ok as i32 {
                return Ok(String::new());
            }
            if status != CacheMonitorStatus::BufferTooSmall as i32 {
                return Err(CallError(format!("status {status}")));
            }
            let mut buf = vec![0u8; len + 1];
            // SAFETY: `buf` is writable for its length; `len` is a live local.
            status = unsafe { function(buf.as_mut_ptr(), buf.len(), &mut len) };
            if status == CacheMonitorStatus::Ok as i32 {
                buf.truncate(len);
                return String::from_utf8(buf).map_err(|e| CallError(e.to_string()));
            }
            // Still too small: the text grew between the calls.
        }
    }

    pub fn configure(&self, json: &str) -> Result<(), CallError> {
        let json = CString::new(json).map_err(|e| CallError(e.to_string()))?;
        // SAFETY: a NUL-terminated string that outlives the call.
        self.check(unsafe { (self.configure)(json.as_ptr()) })
    }

    pub fn record(&self, op: u32, result: u32, nanos: u64, key: &[u8]) -> Result<(), CallError> {
        // SAFETY: `key` is readable for `key.len()` bytes during the call.
        self.check(unsafe { (self.record)(op, result, nanos, key.as_ptr(), key.len()) })
    }

    pub fn begin(&self, op: u32) -> Result<(), CallError> {
        self.check((self.begin)(op))
    }

    pub fn end(&self, op: u32, result: u32, nanos: u64, key: &[u8]) -> Result<(), CallError> {
        // SAFETY: `key` is readable for `key.len()` bytes during the call.
        self.check(unsafe { (self.end)(op, result, nanos, key.as_ptr(), key.len()) })
    }

    pub fn set_gauge(&self, gauge: u32, value: u64) -> Result<(), CallError> {
        self.check((self.set_gauge)(gauge, value))
    }

    pub fn render(&self) -> Result<String, CallError> {
        self.text(self.render)
    }

    /// Starts the exporter and returns the address it listens on.
    pub fn serve(&self, address: &str) -> Result<String, CallError> {
        let address = CString::new(address).map_err(|e| CallError(e.to_string()))?;
        // SAFETY: a NUL-terminated string that outlives the call.
        self.check(unsafe { (self.serve)(address.as_ptr()) })?;
        self.text(self.serve_address)
    }

    pub fn serve_stop(&self) -> Result<(), CallError> {
        self.check((self.serve_stop)())
    }
}
