//! Shared by the integration tests that drive the built library from outside Rust.
#![allow(dead_code)] // each test binary uses its own subset

pub mod exposition;
pub mod files;
pub mod prometheus;
pub mod rng;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The crate's root directory.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>/`, where this test binary's profile puts the libraries.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

/// The `libcache_monitor.so` of the current source, in this test binary's profile.
///
/// `cargo test` compiles the library with all its crate types into `deps/` but only `cargo build` copies
/// them up to `target/<profile>/`, so the current cdylib is the one in `deps/`.
pub fn cdylib() -> PathBuf {
    let lib = profile_dir().join("deps/libcache_monitor.so");
    assert!(
        lib.exists(),
        "{} missing: cargo test builds it with the tests",
        lib.display()
    );
    lib
}

/// Runs `command`, panicking with its output unless it succeeds.
pub fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e} (is it installed? .ci/run installs it)"));
    assert!(
        output.status.success(),
        "{command:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `go` with `args`, run in `dir` of this repository, offline: checks first that Go is installed (CI
/// installs Debian's `golang-go`), and keeps Go's caches under `target/` (HOME may not be writable, and
/// reruns are quicker).
pub fn go_command(dir: &str, args: &[&str]) -> Command {
    let version = Command::new("go").arg("version").output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "`go` not found or not working ({version:?}): install the Debian package `golang-go` (.ci/run does)"
    );
    let go_dirs = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go");
    let mut command = Command::new("go");
    command
        .current_dir(crate_dir().join(dir))
        .args(args)
        .env("GOCACHE", go_dirs.join("cache"))
        .env("GOPATH", go_dirs.join("path"))
        .env("GOFLAGS", "")
        .env("GO111MODULE", "on")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "1");
    command
}

/// Compiles the C test host `ffi-tests/c/<name>.c` with the system `cc` into `dir`, against the header only.
pub fn compile_c_host(name: &str, dir: &Path) -> PathBuf {
    compile_c_host_with(name, dir, &[])
}

/// The `cc` flags of a C host whose stacks the profiler must unwind and name (`flamegraph_paths.c`).
pub const FLAMEGRAPH_HOST_FLAGS: [&str; 4] = [
    "-g",
    "-fno-omit-frame-pointer",
    "-fno-optimize-sibling-calls",
    "-rdynamic",
];

/// [`compile_c_host`] with extra `cc` flags (debug information, frame pointers...).
pub fn compile_c_host_with(name: &str, dir: &Path, extra_flags: &[&str]) -> PathBuf {
    compile_c_host_linking(name, dir, extra_flags, &[])
}

/// [`compile_c_host_with`], linking `libraries` (archives, `-l` flags) after the source, as the linker
/// wants them.
pub fn compile_c_host_linking(name: &str, dir: &Path, extra_flags: &[&str], libraries: &[&str]) -> PathBuf {
    let source = crate_dir().join("ffi-tests/c").join(format!("{name}.c"));
    let binary = dir.join(name);
    run(Command::new("cc")
        .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread"])
        // The hosts use only the header's current names (deprecated_names.c undefines it to use the old).
        .arg("-DCACHE_MONITOR_NO_DEPRECATED")
        .args(extra_flags)
        .arg("-I")
        .arg(crate_dir().join("include"))
        .arg(&source)
        .arg("-o")
        .arg(&binary)
        .args(libraries)
        .arg("-ldl"));
    binary
}

/// Asserts that `promtool check metrics` (Debian package `prometheus`) accepts `exposition`.
pub fn assert_promtool_accepts(exposition: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool not found: install the Debian package `prometheus` (.ci/run does)");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(exposition.as_bytes())
        .expect("promtool reads its input");
    let output = child.wait_with_output().expect("promtool runs");
    assert!(
        output.status.success(),
        "promtool rejected the exposition:\n{}{}\n--- exposition ---\n{exposition}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Resident memory of this process in bytes (`/proc/self/statm`).
pub fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page as u64
}

/// Anonymous resident memory of this process in bytes (`RssAnon` of `/proc/self/status`): the heap and
/// other private memory, without mapped files (whose pages the kernel can drop at any time).
pub fn resident_anonymous_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kilobytes: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("RssAnon:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("RssAnon in /proc/self/status");
    kilobytes * 1024
}

/// A response read from a raw HTTP/1.1 exchange.
#[derive(Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names (lower-cased) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body as sent (not decoded).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("the body is UTF-8")
    }
}

/// Sends `raw` to `address` and reads until the server closes (at most 30 s).
pub fn exchange(address: std::net::SocketAddr, raw: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    stream.write_all(raw)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    Ok(response)
}

/// Splits a raw HTTP/1.1 response (with a `Content-Length` or read to the end) into its parts.
pub fn parse_response(raw: &[u8]) -> HttpResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..split]).expect("the head is ASCII");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("a status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    HttpResponse {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// `GET path` with extra headers, on a fresh connection that closes after the response.
pub fn http_get(address: std::net::SocketAddr, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    http_request(address, "GET", path, headers)
}

/// `method path` with extra headers, on a fresh connection that closes after the response.
pub fn http_request(address: std::net::SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let raw = exchange(address, request.as_bytes()).unwrap_or_else(|e| panic!("{method} {path} from {address}: {e}"));
    parse_response(&raw)
}

/// Calls `probe` until it returns `Some`, at most until `deadline` has passed, pausing `every` between
/// tries; panics with `what` if the deadline passes first.
pub fn poll_until<T>(
    what: &str,
    deadline: std::time::Duration,
    every: std::time::Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            start.elapsed() < deadline,
            "gave up after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(every);
    }
}

/// A child process killed (and reaped) when dropped, also when the test panics.
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port that was free a moment ago (for tools that cannot bind port 0 and report it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind an ephemeral loopback port")
        .port()
}

/// Threads of this process, from `/proc/self/task`.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").expect("/proc/self/task").count()
}

/// The demo example cargo built for this test run: `target/<profile>/examples/demo`.
pub fn demo_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let demo = profile_dir.join("examples/demo");
    assert!(
        demo.exists(),
        "{} missing: `cargo test` builds the examples; when running one test file alone, run `cargo build --example demo` first",
        demo.display()
    );
    demo
}

/// A running demo: the process (killed when dropped), the address it serves, and its stdout lines.
pub struct Demo {
    pub child: ChildGuard,
    pub address: std::net::SocketAddr,
    pub lines: std::sync::mpsc::Receiver<String>,
    /// Every line read so far, in order.
    pub seen: Vec<String>,
}

impl Demo {
    /// Starts the demo with `args` on a free loopback port and waits (up to 60 s) for it to serve.
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new(demo_binary())
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the demo");
        let stdout = child.stdout.take().expect("piped stdout");
        let child = ChildGuard(child);
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut demo = Self {
            child,
            address: "0.0.0.0:0".parse().expect("placeholder address"),
            lines,
            seen: Vec::new(),
        };
        let serving = demo.wait_for_line("the demo to serve", |line| line.starts_with("serving http://"));
        let address = serving["serving http://".len()..]
            .split('/')
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {serving:?}"));
        demo.address = address;
        demo
    }

    /// Reads stdout until a line matches (at most 60 s); panics with everything read otherwise.
    pub fn wait_for_line(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if matches(&line) {
                        return line;
                    }
                }
                Err(e) => panic!("waiting for {what}: {e}; output so far:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Sends SIGINT (Ctrl-C) and waits (at most 60 s) for the demo to exit; returns its status.
    pub fn interrupt(&mut self) -> std::process::ExitStatus {
        let pid = libc::pid_t::try_from(self.child.0.id()).expect("pid fits pid_t");
        // SAFETY: `kill` has no memory-safety preconditions; `pid` is our own child, not yet reaped.
        let sent = unsafe { libc::kill(pid, libc::SIGINT) };
        assert_eq!(sent, 0, "kill(SIGINT): {}", std::io::Error::last_os_error());
        let status = poll_until(
            "the demo to exit after Ctrl-C",
            std::time::Duration::from_secs(60),
            std::time::Duration::from_millis(20),
            || self.child.0.try_wait().expect("wait for the demo"),
        );
        // The reader thread ends at end of stream: collect the rest of the output.
        while let Ok(line) = self.lines.recv_timeout(std::time::Duration::from_secs(10)) {
            self.seen.push(line);
        }
        status
    }
}

/// `curl -sS --fail` on `url` with extra arguments; returns the body. Fails clearly without curl.
pub fn curl(url: &str, extra: &[&str]) -> Vec<u8> {
    let output = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "30"])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl not found: install the Debian package `curl` (.ci/run does)");
    assert!(
        output.status.success(),
        "curl {url} failed with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// `libcache_monitor.so` built by `cargo build --release --lib` (the library as shipped: release profile,
/// reduced debug information), with the features of this test build. Builds it once per test binary;
/// quick when `target/release` is fresh.
pub fn release_cdylib() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let features: Vec<&str> = [
                ("exporter", cfg!(feature = "exporter")),
                ("caches", cfg!(feature = "caches")),
                ("abi-stable", cfg!(feature = "abi-stable")),
                ("prometheus-collector", cfg!(feature = "prometheus-collector")),
            ]
            .into_iter()
            .filter_map(|(name, on)| on.then_some(name))
            .collect();
            run(Command::new(env!("CARGO"))
                .current_dir(crate_dir())
                .args(["build", "--release", "--lib", "--no-default-features"])
                .arg(format!("--features={}", features.join(","))));
            let lib = profile_dir()
                .parent()
                .expect("target/<profile>")
                .join("release/libcache_monitor.so");
            assert!(lib.exists(), "{} missing after cargo build --release", lib.display());
            lib
        })
        .clone()
}
