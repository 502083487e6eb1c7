//! `http_request`: arbitrary bytes sent to the HTTP exporter, served by its real connection handling
//! (`cache_monitor::exporter::serve_stream`: hyper's HTTP/1 server with the exporter's limits,
//! authentication and routes) over an in-memory stream, on a current-thread runtime whose clock is
//! paused, so that the exporter's read timeout passes as soon as both sides wait.
//!
//! The first byte chooses the setup: bit 0 requires a bearer token, bit 1 basic credentials, bit 2 the
//! smallest request-head limit (1024 bytes), bit 3 keeps the client's side open after the bytes (the
//! exporter must then close on its read timeout). The rest is sent as it is, while the answer is read.
//!
//! Checked: nothing panics; the exporter closes the connection within an hour of (paused) time; what it
//! writes begins with an HTTP/1 status line; and with credentials required, a request that does not
//! carry them gets no `200` and nothing that reveals the metrics (the namespace).

#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cache_monitor::exporter::serve_stream;
use cache_monitor::{Monitor, Operation, Outcome};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

/// The namespace of the served monitor: a response holding it has revealed metrics.
const NAMESPACE: &str = "fuzzns";
const TOKEN: &str = "fuzz-token";
/// `user:pass` in base64, as a client sends it.
const BASIC: &str = "dXNlcjpwYXNz";
/// The longest the exporter may keep a connection open; its read timeout is 5 s by default.
const DEADLINE: Duration = Duration::from_secs(3600);
/// In-memory stream buffer per direction; small, so that writes and reads interleave.
const PIPE_BYTES: usize = 4096;

fuzz_target!(|data: &[u8]| run(data));

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime")
    })
}

fn monitor() -> &'static Arc<Monitor> {
    static MONITOR: OnceLock<Arc<Monitor>> = OnceLock::new();
    MONITOR.get_or_init(|| {
        let monitor = Arc::new(cache_monitor_fuzz::monitor());
        monitor
            .configure(&format!(r#"{{"namespace": "{NAMESPACE}"}}"#))
            .expect("a valid namespace");
        monitor
            .record(Operation::GET, Outcome::Hit, 1_000, b"user:1")
            .expect("a built-in operation");
        monitor
    })
}

fn run(data: &[u8]) {
    let Some((&setup, request)) = data.split_first() else {
        return;
    };
    let bearer = setup & 1 != 0;
    let basic = setup & 2 != 0;
    let small = setup & 4 != 0;
    let keep_open = setup & 8 != 0;
    let monitor = monitor();
    let http = format!(
        r#"{{"http": {{"bearer_token": {}, "basic_auth": {}, "max_request_bytes": {}}}}}"#,
        if bearer {
            format!("\"{TOKEN}\"")
        } else {
            "null".to_owned()
        },
        if basic {
            r#"{"user": "user", "password": "pass"}"#
        } else {
            "null"
        },
        if small { 1024 } else { 8192 },
    );
    monitor.configure(&http).expect("a valid http section");

    let response = runtime().block_on(async {
        let (client, server) = tokio::io::duplex(PIPE_BYTES);
        let (mut from_server, mut to_server) = tokio::io::split(client);
        let serve = serve_stream(Arc::clone(monitor), server);
        let send = async {
            // The exporter may close before reading everything: a failed write is an answer too.
            let _ = to_server.write_all(request).await;
            if keep_open {
                std::future::pending::<()>().await;
            }
            let _ = to_server.shutdown().await;
        };
        let receive = async {
            let mut response = Vec::new();
            let _ = from_server.read_to_end(&mut response).await;
            response
        };
        let exchange = async {
            tokio::select! {
                // `send` never ends when the client keeps its side open; `receive` ends when the
                // exporter closes, and `serve` returns then too.
                ((), response) = async { tokio::join!(serve, receive) } => response,
                () = async { send.await; std::future::pending::<()>().await } => unreachable!(),
            }
        };
        tokio::time::timeout(DEADLINE, exchange).await
    });
    let response = response.unwrap_or_else(|_| panic!("the exporter kept the connection open for an hour"));

    if !response.is_empty() {
        let status_line = response.split(|b| *b == b'\n').next().unwrap_or_default();
        let well_formed = (status_line.starts_with(b"HTTP/1.1 ") || status_line.starts_with(b"HTTP/1.0 "))
            && status_line.len() >= 12
            && status_line[9..12].iter().all(u8::is_ascii_digit);
        assert!(
            well_formed,
            "not an HTTP/1 status line: {:?}",
            String::from_utf8_lossy(status_line)
        );
    }
    let carries = |credential: &str| request.windows(credential.len()).any(|w| w == credential.as_bytes());
    let authorised = (bearer && carries(TOKEN)) || (basic && carries(BASIC));
    if (bearer || basic) && !authorised {
        let text = String::from_utf8_lossy(&response);
        assert!(
            !text.contains(" 200 ") && !text.contains(NAMESPACE),
            "served without credentials:\n{text}"
        );
    }
}
