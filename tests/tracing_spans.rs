//! Every operation of a `MonitoredCache` runs in a `tracing` span. Alone in its binary: `tracing` caches
//! per call site whether anyone listens, so a global subscriber installed by another test (the seed's
//! example installs one) would race with the scoped subscriber this test captures with.

use std::io::Write;
use std::sync::{Arc, Mutex};

use cache_monitor::{Cache, MemoryCache, MonitoredCacheBuilder};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn each_operation_runs_in_a_span_naming_service_key_and_result() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let captured = captured.clone();
            move || captured.clone()
        })
        .with_max_level(tracing::Level::DEBUG)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        runtime().block_on(async {
            let cache = MonitoredCacheBuilder::new(MemoryCache::default())
                .with_service_name("orders")
                .build()
                .unwrap();
            cache.put("user:7", &7, None).await.unwrap();
            let _ = cache.get::<i32>("user:7").await.unwrap();
        });
    });
    let output = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        output.contains("otel.name=\"put\"") || output.contains("otel.name=put"),
        "{output}"
    );
    assert!(output.contains("service=orders"), "{output}");
    assert!(output.contains("key=\"user:7\""), "{output}");
    assert!(output.contains("result=\"hit\""), "{output}");
    assert_eq!(output.matches("close").count(), 2, "one span per operation:\n{output}");
}
