//! Render-time naming of sampled stacks: return addresses to demangled function names (inlined
//! functions included), cut where the host called into the library.
//!
//! # Symbolising
//!
//! A [`Symbolizer`] lives for one render and owns everything it reads: the list of loaded objects
//! (`dl_iterate_phdr`, read when it is made, so objects loaded since the last render are known), and for
//! each object a stack address falls in, the object file mapped read-only, its DWARF (`addr2line`, for
//! inlined frames and source files) and its symbol table (for names without debug information), or those
//! of its separate debug file (`/usr/lib/debug/.build-id/`). Dropping it unmaps and frees all of it:
//! nothing is cached in a static, nothing outlives the render, and no lock is shared with other renders
//! (the `backtrace` crate's symboliser keeps a process-wide cache behind a process-wide lock, which a
//! library that is unloaded or a child that is forked would inherit).
//!
//! Debug sections compressed with zlib (as distributions ship separate debug files) are inflated for
//! the render; others compressed otherwise are left out, and the symbol table names those frames.
//!
//! # Cutting the library's frames
//!
//! A sample is captured inside the library, so its stack reads, leaf first, the library's own frames
//! (the unwinder, the profiler, the monitor, `catch_unwind` glue, the C entry point), then the host's.
//! The cut is made at the **entry point**: the outermost frame that is an exported `cache_monitor_*`
//! function, one of `Monitor::record*`, or a function an exported one tail-calls (its frame then stands
//! in for the exported one's; see [`is_entry`]), and it and every frame inward of it go.
//! This does not depend on naming every frame in between: release builds carry reduced debug
//! information, whose inlined frames have short names without their `cache_monitor::` path
//! (`guard<...>`, `observe`). After the cut, a leaf-end run of the library's own frames (a Rust host's
//! calls through `MonitoredCache` or `InFlight`) goes too ([`trim_own_frames`]); with no entry point
//! found, that trim alone is applied.

use std::collections::HashMap;
use std::ffi::{CStr, c_int, c_void};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

/// The name given to a frame that cannot be symbolised.
pub(crate) const UNKNOWN: &str = "[unknown]";

/// Frames of the recording path itself: this library, and the unwinder it samples with.
const OWN_PREFIXES: [&str; 4] = ["cache_monitor::", "<cache_monitor::", "backtrace::", "<backtrace::"];

/// Where this crate's sources were when it was compiled: frames whose source file is under it are the
/// library's own, whatever their (possibly shortened) name.
const OWN_SOURCES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/");

/// The Rust entry points that record, all methods of `Monitor` (in `src/monitor/`).
const RUST_ENTRIES: [&str; 4] = [
    "record",
    "record_with_frames",
    "record_codes",
    "record_codes_with_frames",
];

/// The functions of `src/ffi/` that an exported function hands a record to as a tail call: the exported
/// function's frame is gone from the stack then, and this one stands in for it.
const FFI_ENTRIES: [&str; 3] = ["record_in_full", "record_with_key", "record_without_key"];

/// Standard library frames that sit between the C ABI functions and the monitor (`catch_unwind`).
const GLUE_PREFIXES: [&str; 6] = [
    "std::panicking::",
    "std::panic::catch_unwind",
    "__rust_try",
    "core::ops::function::FnOnce::call_once",
    "<core::panic::unwind_safe::AssertUnwindSafe<",
    "core::panic::unwind_safe::",
];

/// One named frame of a stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    /// The function, demangled (Rust names without their hash).
    pub(crate) name: String,
    /// Whether the frame's code is in this crate's sources.
    pub(crate) own_source: bool,
}

impl Frame {
    fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            own_source: false,
        }
    }
}

/// Names return addresses for the life of one render. See the module documentation.
pub(crate) struct Symbolizer {
    objects: Vec<LoadedObject>,
    /// Names already found, by return address.
    names: HashMap<usize, Vec<Frame>>,
}

impl Default for Symbolizer {
    fn default() -> Self {
        Self {
            objects: loaded_objects(),
            names: HashMap::new(),
        }
    }
}

impl Symbolizer {
    /// The frames of a stack, outermost first, from its return addresses (innermost first), without
    /// the library's own frames (see the module documentation).
    pub(crate) fn stack(&mut self, ips: &[usize]) -> Vec<String> {
        for &ip in ips {
            if !self.names.contains_key(&ip) {
                let frames = self.resolve(ip);
                self.names.insert(ip, frames);
            }
        }
        let leaf_first: Vec<&Frame> = ips.iter().filter_map(|ip| self.names.get(ip)).flatten().collect();
        let kept = cut_own_frames(&leaf_first);
        kept.iter().rev().map(|frame| frame.name.clone()).collect()
    }

    /// The frames at return address `ip`, innermost (inlined) first; `[unknown]` when there are none.
    fn resolve(&mut self, ip: usize) -> Vec<Frame> {
        // A return address follows its call: look up the byte before it.
        let avma = ip.wrapping_sub(1);
        let Some(object) = self.objects.iter_mut().find(|object| object.contains(avma)) else {
            return vec![Frame::named(UNKNOWN)];
        };
        let svma = (avma - object.bias) as u64;
        let frames = object.debug().map(|debug| debug.frames(svma)).unwrap_or_default();
        if frames.is_empty() {
            vec![Frame::named(UNKNOWN)]
        } else {
            frames
        }
    }
}

/// An object (the program, a shared library) loaded in this process.
struct LoadedObject {
    /// Its file.
    path: PathBuf,
    /// What its addresses are shifted by in memory.
    bias: usize,
    /// Its loaded segments, `[start, end)` in memory.
    segments: Vec<(usize, usize)>,
    /// Its debug information and symbols: `None` until first needed, then `Some(None)` if unreadable.
    debug: Option<Option<DebugInfo>>,
}

impl LoadedObject {
    fn contains(&self, address: usize) -> bool {
        self.segments
            .iter()
            .any(|&(start, end)| (start..end).contains(&address))
    }

    fn debug(&mut self) -> Option<&DebugInfo> {
        let path = &self.path;
        self.debug.get_or_insert_with(|| DebugInfo::load(path)).as_ref()
    }
}

/// The objects loaded now, from `dl_iterate_phdr`.
fn loaded_objects() -> Vec<LoadedObject> {
    extern "C" fn visit(info: *mut libc::dl_phdr_info, _size: usize, data: *mut c_void) -> c_int {
        // SAFETY: `data` is the `Vec` passed below, alive and not otherwise borrowed during the call;
        // `info` is valid for the duration of the callback, as `dl_iterate_phdr` documents.
        let (objects, info) = unsafe { (&mut *data.cast::<Vec<LoadedObject>>(), &*info) };
        let name = if info.dlpi_name.is_null() {
            c""
        } else {
            // SAFETY: a non-null `dlpi_name` is a NUL-terminated string owned by the loader.
            unsafe { CStr::from_ptr(info.dlpi_name) }
        };
        let path = match name.to_str() {
            // The program itself has no name here.
            Ok("") if objects.is_empty() => PathBuf::from("/proc/self/exe"),
            Ok(name) if name.starts_with('/') || name.contains('/') => PathBuf::from(name),
            // The vDSO and other objects without a file.
            _ => return 0,
        };
        let bias = info.dlpi_addr as usize;
        let headers: &[libc::Elf64_Phdr] = if info.dlpi_phdr.is_null() {
            &[]
        } else {
            // SAFETY: `dlpi_phdr` points to `dlpi_phnum` program headers of a loaded object.
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) }
        };
        let segments = headers
            .iter()
            .filter(|header| header.p_type == libc::PT_LOAD)
            .map(|header| {
                let start = bias.wrapping_add(header.p_vaddr as usize);
                (start, start.wrapping_add(header.p_memsz as usize))
            })
            .collect();
        objects.push(LoadedObject {
            path,
            bias,
            segments,
            debug: None,
        });
        0
    }
    let mut objects: Vec<LoadedObject> = Vec::new();
    // SAFETY: `visit` matches the callback type and only uses `data` as the `Vec` it is given here.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&raw mut objects).cast()) };
    objects
}

/// A file mapped read-only into memory, unmapped when dropped.
struct Mapping {
    address: *mut c_void,
    len: usize,
}

impl Mapping {
    fn open(path: &Path) -> Option<Self> {
        let file = File::open(path).ok()?;
        let len = usize::try_from(file.metadata().ok()?.len())
            .ok()
            .filter(|&len| len > 0)?;
        // SAFETY: a fresh private read-only mapping of an open file; the kernel picks the address.
        let address = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        (address != libc::MAP_FAILED).then_some(Self { address, len })
    }

    /// The file's bytes, for as long as the caller can promise the mapping lives (see [`DebugInfo`]).
    ///
    /// # Safety
    /// The slice must not be used once `self` is dropped.
    unsafe fn bytes(&self) -> &'static [u8] {
        // SAFETY: `address` maps `len` readable bytes until `self` is dropped, which the caller promises
        // to outlive.
        unsafe { std::slice::from_raw_parts(self.address.cast::<u8>(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `address` and `len` are a mapping made by `open` and unmapped only here.
        unsafe { libc::munmap(self.address, self.len) };
    }
}

type Dwarf = gimli::EndianSlice<'static, gimli::RunTimeEndian>;

/// One symbol of a symbol table: `[start, start + size)` and its name.
struct Symbol {
    start: u64,
    size: u64,
    name: &'static str,
}

/// An object's debug information and symbols.
///
/// `context` and `symbols` borrow the mapped files and the inflated sections (their `'static` lifetimes
/// stand for "as long as `_files` and `_inflated`"): they are declared first, so they are dropped first,
/// and nothing borrowed from them leaves this type (names are copied into [`Frame`]s).
struct DebugInfo {
    context: Option<addr2line::Context<Dwarf>>,
    /// Function symbols, sorted by address.
    symbols: Vec<Symbol>,
    /// Sections inflated from zlib (a `Box` never moves its bytes, however the `Vec` grows).
    _inflated: Vec<Box<[u8]>>,
    _files: Vec<Mapping>,
}

impl DebugInfo {
    /// Reads the object at `path`, and its separate debug file if the system has one.
    fn load(path: &Path) -> Option<Self> {
        let mut files = vec![Mapping::open(path)?];
        // SAFETY: the slice is only used by `parsed`, `context` and `symbols`, which end up in the same
        // `DebugInfo` as `files` and are dropped before it (see the type's documentation).
        let data = unsafe { files[0].bytes() };
        let parsed = object::File::parse(data).ok()?;
        let separate = parsed
            .build_id()
            .ok()
            .flatten()
            .and_then(|id| Mapping::open(&build_id_path(id)));
        let mut inflated = Vec::new();
        let mut symbols = function_symbols(&parsed);
        let mut context = dwarf_context(&parsed, &mut inflated);
        if let Some(separate) = separate {
            // SAFETY: as for `data` above: `separate` joins `files` below.
            let debug_data = unsafe { separate.bytes() };
            if let Ok(debug_file) = object::File::parse(debug_data) {
                let debug_symbols = function_symbols(&debug_file);
                if debug_symbols.len() > symbols.len() {
                    symbols = debug_symbols;
                }
                if context.is_none() {
                    context = dwarf_context(&debug_file, &mut inflated);
                }
            }
            files.push(separate);
        }
        Some(Self {
            context,
            symbols,
            _inflated: inflated,
            _files: files,
        })
    }

    /// The frames at `svma` (an address as the object file counts them), innermost first.
    fn frames(&self, svma: u64) -> Vec<Frame> {
        let mut frames = Vec::new();
        if let Some(context) = &self.context
            && let Ok(mut iter) = context.find_frames(svma).skip_all_loads()
        {
            while let Ok(Some(frame)) = iter.next() {
                let name = frame
                    .function
                    .as_ref()
                    .and_then(|function| function.raw_name().ok())
                    .map(|raw| demangle(&raw));
                let own_source = frame
                    .location
                    .as_ref()
                    .and_then(|location| location.file)
                    .is_some_and(|file| file.starts_with(OWN_SOURCES));
                frames.push((name, own_source));
            }
        }
        let symbol = self.symbol(svma).map(demangle);
        let outermost = frames.len().checked_sub(1);
        let mut named: Vec<Frame> = frames
            .into_iter()
            .enumerate()
            .filter_map(|(i, (name, own_source))| {
                // The outermost frame is the function the address is in: its symbol names it fully when
                // reduced debug information gives only a short name.
                let name = match (name, &symbol) {
                    (Some(name), Some(symbol)) if Some(i) == outermost && is_short_form_of(&name, symbol) => {
                        symbol.clone()
                    }
                    (Some(name), _) => name,
                    (None, symbol) if Some(i) == outermost => symbol.clone()?,
                    (None, _) => return None,
                };
                Some(Frame { name, own_source })
            })
            .collect();
        if named.is_empty()
            && let Some(symbol) = symbol
        {
            named.push(Frame::named(&symbol));
        }
        named
    }

    /// The name of the function symbol containing `svma`.
    fn symbol(&self, svma: u64) -> Option<&'static str> {
        let after = self.symbols.partition_point(|symbol| symbol.start <= svma);
        let symbol = &self.symbols[after.checked_sub(1)?];
        (svma - symbol.start < symbol.size.max(1)).then_some(symbol.name)
    }
}

/// Where Debian and others keep the separate debug file of the object with this build ID.
fn build_id_path(id: &[u8]) -> PathBuf {
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    match id.split_first() {
        Some((first, rest)) if !rest.is_empty() => PathBuf::from(format!(
            "/usr/lib/debug/.build-id/{}/{}.debug",
            hex(&[*first]),
            hex(rest)
        )),
        _ => PathBuf::new(),
    }
}

/// The function symbols of `file` (its symbol table, else its dynamic symbols), sorted by address.
fn function_symbols(file: &object::File<'static>) -> Vec<Symbol> {
    let collect = |symbols: &mut dyn Iterator<Item = object::Symbol<'static, '_>>| {
        symbols
            .filter(|symbol| symbol.kind() == SymbolKind::Text && symbol.is_definition())
            .filter_map(|symbol| {
                Some(Symbol {
                    start: symbol.address(),
                    size: symbol.size(),
                    name: symbol.name().ok().filter(|name| !name.is_empty())?,
                })
            })
            .collect::<Vec<_>>()
    };
    let mut symbols = collect(&mut file.symbols());
    if symbols.is_empty() {
        symbols = collect(&mut file.dynamic_symbols());
    }
    symbols.sort_by_key(|symbol| (symbol.start, std::cmp::Reverse(symbol.size)));
    symbols.dedup_by_key(|symbol| symbol.start);
    symbols
}

/// The DWARF sections that name frames (units, functions, inlined calls, lines); the others (locations,
/// macros, call frames...) are never read or inflated.
const NAMING_SECTIONS: [gimli::SectionId; 10] = [
    gimli::SectionId::DebugAbbrev,
    gimli::SectionId::DebugAddr,
    gimli::SectionId::DebugAranges,
    gimli::SectionId::DebugInfo,
    gimli::SectionId::DebugLine,
    gimli::SectionId::DebugLineStr,
    gimli::SectionId::DebugRanges,
    gimli::SectionId::DebugRngLists,
    gimli::SectionId::DebugStr,
    gimli::SectionId::DebugStrOffsets,
];

/// The DWARF of `file`, if it has any; sections it inflates are kept in `inflated`, which must outlive
/// the context (see [`DebugInfo`]).
fn dwarf_context(file: &object::File<'static>, inflated: &mut Vec<Box<[u8]>>) -> Option<addr2line::Context<Dwarf>> {
    file.section_by_name(".debug_info")?;
    let endian = if file.is_little_endian() {
        gimli::RunTimeEndian::Little
    } else {
        gimli::RunTimeEndian::Big
    };
    let load = |id: gimli::SectionId| -> Result<Dwarf, gimli::Error> {
        if !NAMING_SECTIONS.contains(&id) {
            return Ok(gimli::EndianSlice::new(&[], endian));
        }
        let data = match file.section_by_name(id.name()).map(|section| section.compressed_data()) {
            Some(Ok(data)) if data.format == object::CompressionFormat::None => data.data,
            Some(Ok(data)) if data.format == object::CompressionFormat::Zlib => match inflate(&data) {
                Some(bytes) => {
                    // SAFETY: the bytes live in `inflated`, which the caller keeps as long as the context
                    // (see `DebugInfo`); a `Box` does not move them when `inflated` grows.
                    let slice: &'static [u8] = unsafe { std::slice::from_raw_parts(bytes.as_ptr(), bytes.len()) };
                    inflated.push(bytes);
                    slice
                }
                None => &[],
            },
            _ => &[],
        };
        Ok(gimli::EndianSlice::new(data, endian))
    };
    let dwarf = gimli::Dwarf::load(load).ok()?;
    addr2line::Context::from_dwarf(dwarf).ok()
}

/// The bytes of a zlib-compressed section, if they inflate to exactly the size it announces (at most
/// 1 GiB).
fn inflate(data: &object::CompressedData<'_>) -> Option<Box<[u8]>> {
    use miniz_oxide::inflate::TINFLStatus;
    use miniz_oxide::inflate::core::inflate_flags::{
        TINFL_FLAG_PARSE_ZLIB_HEADER, TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
    };
    use miniz_oxide::inflate::core::{DecompressorOxide, decompress};

    let size = usize::try_from(data.uncompressed_size)
        .ok()
        .filter(|&size| size <= 1 << 30)?;
    let mut output = vec![0u8; size].into_boxed_slice();
    let (status, read, written) = decompress(
        &mut DecompressorOxide::new(),
        data.data,
        &mut output,
        0,
        TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF | TINFL_FLAG_PARSE_ZLIB_HEADER,
    );
    (status == TINFLStatus::Done && read == data.data.len() && written == size).then_some(output)
}

/// `name` demangled if it is a mangled Rust name (without the hash), as it is otherwise.
fn demangle(name: &str) -> String {
    match rustc_demangle::try_demangle(name) {
        Ok(demangled) => format!("{demangled:#}"),
        Err(_) => name.to_owned(),
    }
}

/// Whether `short` (a function's name in reduced debug information, such as `sample` or `guard<...>`)
/// names the same function as `full` (its symbol, `cache_monitor::profiler::Profiler::sample`).
fn is_short_form_of(short: &str, full: &str) -> bool {
    !short.contains("::") && short != full && base_name(full) == base_name(short)
}

/// A function's own name: the last path segment, without generic arguments.
fn base_name(name: &str) -> &str {
    let mut depth = 0usize;
    let mut end = name.len();
    // Cut generic arguments at the end (`f<T>`), then keep what follows the last `::` outside `<...>`.
    if name.ends_with('>') {
        for (i, c) in name.char_indices().rev() {
            match c {
                '>' => depth += 1,
                '<' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    let name = &name[..end];
    name.rsplit("::").next().unwrap_or(name)
}

/// `frames` (innermost first) without the library's own frames: everything from the outermost entry
/// point inward ([`is_entry`]), then a leaf-end run of own frames and their glue ([`trim_own_frames`]).
pub(crate) fn cut_own_frames<'a, 'b>(frames: &'b [&'a Frame]) -> &'b [&'a Frame] {
    let after_entry = match frames.iter().rposition(|frame| is_entry(frame)) {
        Some(entry) => &frames[entry + 1..],
        None => frames,
    };
    trim_own_frames(after_entry)
}

/// Whether `frame` is where a host enters the library to record: an exported `cache_monitor_*` function,
/// or `Monitor::record*` (by its full name, or by its short name and its source file).
pub(crate) fn is_entry(frame: &Frame) -> bool {
    let name = frame.name.as_str();
    if name.starts_with("cache_monitor_") && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return true;
    }
    let method = base_name(name);
    if FFI_ENTRIES.contains(&method) {
        return if name.contains("::") {
            name.strip_prefix("cache_monitor::ffi::") == Some(method)
        } else {
            frame.own_source
        };
    }
    if !RUST_ENTRIES.contains(&method) {
        return false;
    }
    if name.contains("::") {
        let path = name.trim_start_matches('<');
        let mut segments = path.rsplit("::").skip(1);
        path.starts_with("cache_monitor::") && segments.next().is_some_and(|ty| ty.trim_end_matches('>') == "Monitor")
    } else {
        frame.own_source
    }
}

/// `frames` (innermost first) without the library's frames at the innermost end: the longest run of
/// own frames, and the standard library glue between them, that starts at the leaf.
pub(crate) fn trim_own_frames<'a, 'b>(frames: &'b [&'a Frame]) -> &'b [&'a Frame] {
    let mut cut = 0;
    for (i, frame) in frames.iter().enumerate() {
        if is_own(frame) {
            cut = i + 1;
        } else if !is_glue(&frame.name) {
            break;
        }
    }
    &frames[cut..]
}

fn is_own(frame: &Frame) -> bool {
    frame.own_source || OWN_PREFIXES.iter().any(|p| frame.name.starts_with(p)) || is_entry(frame)
}

fn is_glue(name: &str) -> bool {
    GLUE_PREFIXES.iter().any(|p| name.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(names: &[(&str, bool)]) -> Vec<Frame> {
        names
            .iter()
            .map(|&(name, own_source)| Frame {
                name: name.to_owned(),
                own_source,
            })
            .collect()
    }

    fn cut(frames: &[Frame]) -> Vec<&str> {
        let refs: Vec<&Frame> = frames.iter().collect();
        cut_own_frames(&refs).iter().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn the_cut_is_at_the_outermost_entry_point_whatever_the_frames_inside_are_called() {
        // A release build: reduced debug information names inlined frames without their path.
        let release = frames(&[
            ("backtrace::backtrace::libunwind::trace", false),
            ("cache_monitor::profiler::Profiler::sample", false),
            ("observe", true),
            ("record_with_frames", true),
            ("record_codes", true),
            ("{closure#0}", true),
            ("do_call<...>", false),
            ("catch_unwind<...>", false),
            ("guard<...>", true),
            ("cache_monitor_record", false),
            ("alpha_inner", false),
            ("alpha_lookup_path", false),
            ("main", false),
        ]);
        assert_eq!(cut(&release), ["alpha_inner", "alpha_lookup_path", "main"]);

        // A host frame named like the library's, outward of the entry point, stays.
        let host = frames(&[
            ("cache_monitor::profiler::Profiler::sample", false),
            ("std::panicking::catch_unwind::do_call", false),
            ("cache_monitor_record", false),
            ("alpha_inner", false),
            ("core::ops::function::FnOnce::call_once", false),
            ("cache_monitor::helper_named_by_host", false),
            ("main", false),
        ]);
        assert_eq!(
            cut(&host),
            &[
                "alpha_inner",
                "core::ops::function::FnOnce::call_once",
                "cache_monitor::helper_named_by_host",
                "main"
            ]
        );

        // A Rust host: the entry is Monitor::record, by full or short name, and the library's API frames
        // above it (MonitoredCache, InFlight) go too.
        let rust_host = frames(&[
            ("cache_monitor::profiler::Profiler::sample", false),
            ("cache_monitor::monitor::Monitor::record_with_frames", true),
            ("cache_monitor::monitor::Monitor::record", true),
            ("cache_monitor::monitor::InFlight::finish", true),
            ("my_app::lookup", false),
            ("main", false),
        ]);
        assert_eq!(cut(&rust_host), ["my_app::lookup", "main"]);
        let short = frames(&[("sample", true), ("record", true), ("my_app::lookup", false)]);
        assert_eq!(cut(&short), ["my_app::lookup"]);
        let host_record = frames(&[("record", false), ("main", false)]);
        assert_eq!(
            cut(&host_record),
            ["record", "main"],
            "a host's own `record` is not an entry point"
        );
    }

    #[test]
    fn without_an_entry_point_only_the_leaf_run_of_own_frames_goes() {
        let stack = frames(&[
            ("backtrace::backtrace::trace_unsynchronized", false),
            ("cache_monitor::profiler::Profiler::sample", false),
            ("std::panicking::catch_unwind::do_call", false),
            ("__rust_try", false),
            ("cache_monitor::ffi::boundary::guard", false),
            ("alpha_inner", false),
            ("cache_monitor::helper_named_by_host", false),
            ("main", false),
        ]);
        assert_eq!(
            cut(&stack),
            ["alpha_inner", "cache_monitor::helper_named_by_host", "main"]
        );
        let glue_only = frames(&[("std::panicking::try", false), ("main", false)]);
        assert_eq!(
            cut(&glue_only),
            ["std::panicking::try", "main"],
            "glue goes only with own frames beyond it"
        );
    }

    #[test]
    fn entry_points_are_recognised_by_name_and_source() {
        let entry = |name: &str, own_source: bool| {
            is_entry(&Frame {
                name: name.to_owned(),
                own_source,
            })
        };
        for name in [
            "cache_monitor_record",
            "cache_monitor_end",
            "cache_monitor_record_batch",
            "cache_monitor_future_fn",
        ] {
            assert!(entry(name, false), "{name}");
        }
        assert!(entry(
            "cache_monitor::monitor::Monitor::record_codes_with_frames",
            false
        ));
        assert!(entry("<cache_monitor::monitor::Monitor>::record", false));
        assert!(entry("record_with_frames", true));
        // What `cache_monitor_record` tail-calls stands in for it.
        assert!(entry("cache_monitor::ffi::record_in_full", false));
        assert!(entry("cache_monitor::ffi::record_with_key", false));
        assert!(entry("record_without_key", true));
        for (name, own_source) in [
            ("cache_monitor::recording::recorder::Recorder::record_with_key", true),
            ("my_app::ffi::record_in_full", false),
            ("record_in_full", false),
            ("cache_monitor::helper", false),
            ("cache_monitor::recording::recorder::Recorder::record", true),
            ("my_app::Monitor::record", false),
            ("record", false),
            ("cache_monitor_record::inner", false),
            ("sample", true),
        ] {
            assert!(!entry(name, own_source), "{name}");
        }
    }

    #[test]
    fn short_names_are_matched_to_their_symbols() {
        assert_eq!(base_name("guard<cache_monitor::ffi::x::{closure_env#0}>"), "guard");
        assert_eq!(base_name("cache_monitor::profiler::Profiler::sample"), "sample");
        assert_eq!(base_name("<T as core::ops::Fn<A>>::call"), "call");
        assert!(is_short_form_of("sample", "cache_monitor::profiler::Profiler::sample"));
        assert!(!is_short_form_of("sample", "sample"));
        assert!(!is_short_form_of("other", "cache_monitor::profiler::Profiler::sample"));
    }

    #[inline(never)]
    fn a_function_with_a_recognisable_name() -> usize {
        std::hint::black_box(42)
    }

    #[test]
    fn addresses_resolve_to_demangled_names_with_their_source() {
        let address = a_function_with_a_recognisable_name as fn() -> usize as usize;
        let mut symbolizer = Symbolizer::default();
        // One past the entry: `resolve` looks up the byte before a return address.
        let frames = symbolizer.resolve(address + 1);
        let frame = frames
            .iter()
            .find(|frame| frame.name.ends_with("tests::a_function_with_a_recognisable_name"))
            .unwrap_or_else(|| panic!("{frames:?}"));
        assert!(frame.own_source, "{frame:?}");
        assert_eq!(symbolizer.resolve(8), [Frame::named(UNKNOWN)]);
    }
}
