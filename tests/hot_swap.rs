//! Hot swap between two separately loaded copies of the library (two files), driven through the C ABI
//! with `libloading` as a Rust host would: four threads record without pause while the host swaps 100
//! times. Every count survives, no scrape ever sees a counter go back, every retired copy is really
//! unloaded, and memory stays flat.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use support::{cdylib, exposition, resident_bytes};

type RecordFn = unsafe extern "C" fn(u32, u32, u64, *const u8, usize) -> i32;
type RenderFn = unsafe extern "C" fn(*mut u8, usize, *mut usize) -> i32;
type ImportFn = unsafe extern "C" fn(*const u8, usize) -> i32;
type ConfigureFn = unsafe extern "C" fn(*const std::ffi::c_char) -> i32;
type CallFn = extern "C" fn() -> i32;

const OK: i32 = 0;
const BUFFER_TOO_SMALL: i32 = -8;
const THREADS: usize = 4;
const SWAPS: usize = 100;
const OPERATIONS: u32 = 7;
const RESULTS: u32 = 4;

/// One loaded copy of the library and the functions the host uses.
struct Library {
    path: PathBuf,
    record: RecordFn,
    render: RenderFn,
    export_state: RenderFn,
    import_state: ImportFn,
    configure: ConfigureFn,
    shutdown: CallFn,
    // Last, so the function pointers above are never used after the library is closed.
    _library: libloading::Library,
}

impl Library {
    fn load(path: &Path) -> Self {
        // SAFETY: loading our own library runs no initialisers besides Rust's own.
        let library = unsafe { libloading::Library::new(path) }.expect("dlopen");
        // SAFETY: each symbol has the C signature the header declares for it.
        unsafe {
            let symbol = |name: &[u8]| -> *const () { *library.get::<*const ()>(name).expect("dlsym") };
            let record = std::mem::transmute::<*const (), RecordFn>(symbol(b"cache_monitor_record"));
            let render = std::mem::transmute::<*const (), RenderFn>(symbol(b"cache_monitor_render"));
            let export_state = std::mem::transmute::<*const (), RenderFn>(symbol(b"cache_monitor_export_state"));
            let import_state = std::mem::transmute::<*const (), ImportFn>(symbol(b"cache_monitor_import_state"));
            let shutdown = std::mem::transmute::<*const (), CallFn>(symbol(b"cache_monitor_shutdown"));
            let configure = std::mem::transmute::<*const (), ConfigureFn>(symbol(b"cache_monitor_configure"));
            Self {
                path: path.to_path_buf(),
                record,
                render,
                export_state,
                import_state,
                configure,
                shutdown,
                _library: library,
            }
        }
    }

    fn text(&self, render: RenderFn) -> String {
        let mut buf = Vec::new();
        loop {
            let mut len = 0usize;
            // SAFETY: `buf` is writable for its length and `len` is a live local.
            let status = unsafe { render(buf.as_mut_ptr(), buf.len(), &mut len) };
            match status {
                OK => {
                    buf.truncate(len);
                    return String::from_utf8(buf).expect("UTF-8 text");
                }
                BUFFER_TOO_SMALL => buf.resize(len + 4096, 0),
                other => panic!("render failed with {other}"),
            }
        }
    }

    fn configure(&self, json: &str) {
        let json = std::ffi::CString::new(json).expect("no NUL");
        // SAFETY: a NUL-terminated string that outlives the call.
        let status = unsafe { (self.configure)(json.as_ptr()) };
        assert_eq!(status, OK, "configure {}", self.path.display());
    }

    fn import(&self, snapshot: &str) {
        // SAFETY: the snapshot is a live string of the given length.
        let status = unsafe { (self.import_state)(snapshot.as_ptr(), snapshot.len()) };
        assert_eq!(status, OK, "import into {}", self.path.display());
    }
}

/// `cuenv_cache_operations_total` per `(operation, result)` in an exposition.
fn operation_counts(text: &str) -> BTreeMap<(String, String), f64> {
    exposition::parse(text)
        .named("cuenv_cache_operations_total")
        .map(|s| ((s.labels["operation"].clone(), s.labels["result"].clone()), s.value))
        .collect()
}

fn mapped(path: &Path) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
    maps.contains(path.to_str().expect("UTF-8 path"))
}

/// How the new copy of a swap gets the old one's counts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Handover {
    /// Export from the old copy, import into the new one (twice: before and after the switch).
    Snapshot,
    /// Both copies attach one state file: no snapshot at all.
    StateFile,
}

#[test]
fn a_hundred_swaps_under_load_lose_no_count_and_never_go_back() {
    swap_under_load(Handover::Snapshot);
}

#[test]
fn a_hundred_swaps_through_a_shared_state_file_need_no_snapshot() {
    swap_under_load(Handover::StateFile);
}

fn swap_under_load(handover: Handover) {
    let dir = tempfile::tempdir().expect("temp dir");
    let files = ["a", "b"].map(|name| {
        let path = dir.path().join(format!("libcache_monitor_{name}.so"));
        std::fs::copy(cdylib(), &path).expect("copy the library");
        path
    });
    let state = dir.path().join("swap.state");
    let attach = format!(r#"{{"state": {{"path": {:?}}}}}"#, state.to_str().expect("UTF-8 path"));
    let first = Library::load(&files[0]);
    if handover == Handover::StateFile {
        first.configure(&attach);
    }
    let current = Arc::new(RwLock::new(first));
    let stop = Arc::new(AtomicBool::new(false));
    let recorded = Arc::new(Mutex::new([[0u64; RESULTS as usize]; OPERATIONS as usize]));

    let workers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let (current, stop, recorded) = (current.clone(), stop.clone(), recorded.clone());
            std::thread::spawn(move || {
                let mut mine = [[0u64; RESULTS as usize]; OPERATIONS as usize];
                let mut i = thread as u64;
                while !stop.load(Ordering::Relaxed) {
                    let library = current.read().expect("lock");
                    for _ in 0..256 {
                        i += THREADS as u64;
                        let (op, result) = ((i % 7) as u32, ((i / 7) % 4) as u32);
                        let key = b"user:1";
                        // SAFETY: `key` is a live slice of the given length.
                        let status =
                            unsafe { (library.record)(op, result, 1_000 + i % 9_000, key.as_ptr(), key.len()) };
                        assert_eq!(status, OK);
                        mine[op as usize][result as usize] += 1;
                    }
                }
                let mut recorded = recorded.lock().expect("lock");
                for (total, count) in recorded.iter_mut().flatten().zip(mine.iter().flatten()) {
                    *total += count;
                }
            })
        })
        .collect();

    let scraper = {
        let (current, stop) = (current.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut last: BTreeMap<(String, String), f64> = BTreeMap::new();
            let mut scrapes = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let text = {
                    let library = current.read().expect("lock");
                    library.text(library.render)
                };
                for (series, value) in operation_counts(&text) {
                    let before = last.get(&series).copied().unwrap_or(0.0);
                    assert!(value >= before, "{series:?} went back from {before} to {value}");
                    last.insert(series, value);
                }
                for series in last.keys() {
                    assert!(
                        text.contains(&format!("operation=\"{}\",result=\"{}\"", series.0, series.1)),
                        "{series:?} vanished"
                    );
                }
                scrapes += 1;
            }
            scrapes
        })
    };

    let mut memory_after_warmup = 0;
    for swap in 0..SWAPS {
        let next_file = &files[(swap + 1) % 2];
        assert!(
            !mapped(next_file),
            "swap {swap}: {} is still mapped",
            next_file.display()
        );
        let next = Library::load(next_file);
        let retired = match handover {
            Handover::Snapshot => {
                // The new copy adopts the old one's configuration and counts while the old one still serves.
                next.import(&{
                    let library = current.read().expect("lock");
                    library.text(library.export_state)
                });
                let mut library = current.write().expect("lock");
                // No call is inside the old copy now: take its final state, then route everything to the new.
                next.import(&library.text(library.export_state));
                std::mem::replace(&mut *library, next)
            }
            Handover::StateFile => {
                // Both copies count in the file: the new one only attaches it.
                next.configure(&attach);
                std::mem::replace(&mut *current.write().expect("lock"), next)
            }
        };
        assert_eq!((retired.shutdown)(), OK);
        let retired_file = retired.path.clone();
        drop(retired);
        assert!(
            !mapped(&retired_file),
            "swap {swap}: dlclose left {} mapped",
            retired_file.display()
        );
        if swap == 9 {
            memory_after_warmup = resident_bytes();
        }
    }
    let memory_growth = resident_bytes().saturating_sub(memory_after_warmup);
    eprintln!("hot swap ({handover:?}): memory growth over 90 swaps {memory_growth} bytes");

    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().expect("worker");
    }
    let scrapes = scraper.join().expect("scraper");
    assert!(scrapes > 0, "the scraper ran");

    let recorded = *recorded.lock().expect("lock");
    let names = ["get", "put", "delete", "contains", "clear", "evict", "load"];
    let results = ["hit", "miss", "ok", "error"];
    let final_counts = {
        let library = current.read().expect("lock");
        operation_counts(&library.text(library.render))
    };
    let mut total = 0;
    for (op, counts) in recorded.iter().enumerate() {
        for (result, count) in counts.iter().enumerate() {
            let rendered = final_counts
                .get(&(names[op].to_owned(), results[result].to_owned()))
                .copied();
            assert_eq!(
                rendered.unwrap_or(0.0),
                *count as f64,
                "{} {}",
                names[op],
                results[result]
            );
            total += count;
        }
    }
    eprintln!("hot swap ({handover:?}): {total} records, {scrapes} scrapes");
    assert!(
        total > 100_000,
        "the threads kept recording through the swaps ({total} records)"
    );
    assert!(
        memory_growth < 8 << 20,
        "90 swaps grew resident memory by {memory_growth} bytes: something leaks per swap"
    );
}
