//! Files for tests that corrupt state files.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Writes `bytes` to `path` with its blocks of zeros left as holes.
///
/// A state file is tens of megabytes and mostly zeros; dense copies of it, one per corruption a
/// test tries, filled the disk of a small CI machine.
pub fn write_sparse(path: &Path, bytes: &[u8]) {
    const BLOCK: usize = 4096;
    let file = File::create(path).expect("create the file");
    file.set_len(bytes.len() as u64).expect("size the file");
    for (index, block) in bytes.chunks(BLOCK).enumerate() {
        if block.iter().any(|&byte| byte != 0) {
            file.write_all_at(block, (index * BLOCK) as u64).expect("write a block");
        }
    }
}
