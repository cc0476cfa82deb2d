//! The one way a test says it could not run here: `skipped: <test>: <why>` written past
//! libtest's capture, so the line shows and `cargo xtask ci` counts the test as skipped, not
//! passed. And the workspace's other binaries, which only a workspace build puts beside a
//! test's own.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `skipped: <test>: <why>`; `test` is the test's path (`module::test_fn`).
pub fn skip(test: &str, why: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "skipped: {test}: {why}");
}

/// The workspace binary `name` beside `own` (a test's `CARGO_BIN_EXE_…`), built there by
/// `cargo test --workspace` (`cargo xtask ci`) but not by one crate's tests alone; `None` after
/// saying so with [`skip`].
pub fn sibling_binary(own: &str, name: &str, test: &str) -> Option<PathBuf> {
    let path = Path::new(own).with_file_name(name);
    if path.is_file() {
        return Some(path);
    }
    let why = format!(
        "{} is not built (cargo test --workspace builds it)",
        path.display()
    );
    skip(test, &why);
    None
}
