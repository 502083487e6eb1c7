//! A writer killed inside a record leaves its journal naming the record and some of its cells written. When
//! no process claims that shard again (the writer was among the last), readers must still never count
//! the half record: they roll it back themselves (`Attachment::roll_back_dead_writers`). A test of its
//! own, so that its one thread owns a shard of the file (a process's first 64 threads do).

use cache_monitor::{Monitor, Operation, Outcome};

#[test]
fn a_half_record_left_by_a_dead_writer_is_never_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("dead.state");
    let writer = Monitor::new();
    writer
        .configure(&serde_json::json!({"state": {"path": path}}).to_string())
        .expect("attach");
    writer.record(Operation::GET, Outcome::Hit, 1_000, b"").unwrap();
    assert!(writer.leave_half_record(1_000), "a half record left in an owned shard");
    // The writer dies: its descriptor and mapping go, and with them its shard's lock (an open file
    // description's locks live as long as its last reference, a mapping included).
    drop(writer);

    let reader = Monitor::open_state_file(&path).expect("the file reads back");
    let totals = reader.totals();
    let get_hit = &totals.series[0][0];
    assert_eq!((get_hit.count, get_hit.sum_ns), (1, 1_000), "the whole record only");
    assert_eq!(get_hit.buckets.iter().sum::<u64>(), 1);
    assert_eq!(totals.latency[0].total(), 1);
    let parsed = reader.render_prometheus();
    assert!(
        parsed.contains("cuenv_cache_operations_total{operation=\"get\",result=\"hit\"} 1\n"),
        "{parsed}"
    );
    drop(reader);
    let again = Monitor::open_state_file(&path).expect("the file reads back");
    assert_eq!(again.totals().series[0][0].count, 1, "rolled back in the file, once");
}
