//! Which environment variables a binary reads, found in its source: the Rust files of its crate
//! and of every workspace crate it depends on (normal dependencies, followed through `path` and
//! `workspace = true` entries), each up to its `#[cfg(test)]` module. A variable counts as read
//! when its name is a whole string literal there: `std::env::var("AUTH_TOKEN")`, clap's
//! `env = "ORCHD_ADDR"`, `const ENV_CACHE: &str = "LLORCH_CACHE"`, or a helper's argument
//! (`secret("ENGINE_API_KEY")`). Names appear as whole literals in the code that reads them and
//! hardly anywhere else (messages say "set AUTH_TOKEN", inside a longer literal).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The sources of one binary's crates.
pub struct Sources {
    pub crates: BTreeSet<PathBuf>,
    files: Vec<String>,
}

fn manifest(dir: &Path) -> toml::Table {
    let path = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The folders of the workspace crates that `dir`'s crate depends on (not dev-dependencies).
fn path_dependencies(root: &Path, dir: &Path) -> Vec<PathBuf> {
    let workspace = manifest(root);
    let shared = &workspace["workspace"]["dependencies"];
    let own = manifest(dir);
    let Some(dependencies) = own.get("dependencies").and_then(|d| d.as_table()) else {
        return Vec::new();
    };
    dependencies
        .iter()
        .filter_map(|(name, spec)| {
            if let Some(path) = spec.get("path").and_then(|p| p.as_str()) {
                return Some(dir.join(path));
            }
            let inherited = spec.get("workspace").and_then(|w| w.as_bool()) == Some(true);
            let path = shared.get(name)?.get("path")?.as_str()?;
            inherited.then(|| root.join(path))
        })
        .map(|path| path.canonicalize().expect("a dependency folder"))
        .collect()
}

fn rust_files(dir: &Path, into: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("a source file");
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            into.push(code.to_string());
        }
    }
}

impl Sources {
    /// The binary of the workspace crate in `crate_dir` (relative to the workspace root).
    pub fn of(root: &Path, crate_dir: &str) -> Sources {
        let start = root
            .join(crate_dir)
            .canonicalize()
            .expect("the crate folder");
        let mut crates = BTreeSet::new();
        let mut todo = vec![start];
        while let Some(dir) = todo.pop() {
            if crates.insert(dir.clone()) {
                todo.extend(path_dependencies(root, &dir));
            }
        }
        let mut files = Vec::new();
        for dir in &crates {
            rust_files(&dir.join("src"), &mut files);
        }
        Sources { crates, files }
    }

    /// Whether the binary reads the environment variable `name`: the name is a whole string
    /// literal of its sources.
    pub fn reads(&self, name: &str) -> bool {
        let literal = format!("\"{name}\"");
        self.files.iter().any(|file| file.contains(&literal))
    }
}
