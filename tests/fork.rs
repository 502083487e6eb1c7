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
