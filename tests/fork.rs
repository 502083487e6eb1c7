//! `fork()` while the library is busy (`ffi-tests/c/fork_children.c`): 30 children forked while other
//! threads render, configure and record each record, render and exit within a liveness bound; the
//! parent's exporter is not theirs to stop, and serves on. In a binary of its own: the host forks, and no
//! other test's threads should be copied into its children.

mod support;

use std::process::Command;

use support::{cdylib, compile_c_host, run};

#[test]
fn children_forked_while_the_library_renders_configures_and_records_work_and_the_parent_serves_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = compile_c_host("fork_children", dir.path());
    let output = run(Command::new(&host).arg(cdylib()));
    let expected = if cfg!(feature = "exporter") {
        "fork_children: 30 children forked while rendering, configuring and recording; the parent still served\n"
    } else {
        "fork_children: 30 children forked while rendering, configuring and recording (built without the exporter)\n"
    };
    assert_eq!(String::from_utf8_lossy(&output.stdout), expected);
}

/// An `Exporter` started from Rust belongs to its process too: a forked child that drops (stops) its copy
/// leaves the parent's exporter serving.
#[cfg(feature = "exporter")]
#[test]
fn a_child_dropping_its_copy_of_an_exporter_leaves_the_parent_serving() {
    use std::sync::Arc;

    use cache_monitor::exporter::Exporter;
    use cache_monitor::{Monitor, Operation, Outcome};

    let monitor = Arc::new(Monitor::new());
    monitor.record(Operation::GET, Outcome::Hit, 1_000, b"user:1").unwrap();
    let exporter = Exporter::start(Arc::clone(&monitor), "127.0.0.1:0").expect("exporter starts");
    let address = exporter.local_addr();
    assert_eq!(support::http_get(address, "/metrics", &[]).status, 200);

    // SAFETY: the child only drops the exporter (which, in a process that did not start it, only
    // closes descriptors: no allocation, no lock) and leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        exporter.stop();
        // SAFETY: `_exit` ends the child at once, running nothing of the parent's copied state.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: `pid` is our child, and `status` a live local.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status:#x}"
    );

    let scrape = support::http_get(address, "/metrics", &[]);
    assert_eq!(scrape.status, 200, "the parent's exporter still serves");
    assert!(
        scrape
            .text()
            .contains("cuenv_cache_operations_total{operation=\"get\",result=\"hit\"} 1\n")
    );
    exporter.stop();
}
