//! What `ModelProvisioner::ensure` will do for a pool's model, found out without doing it: a local
//! file used in place, a verified download already in the cache's catalog, or a download; then
//! the sha256 check. Reads the file system and the catalog only.

use model_provisioner::{display_url, redact, Catalog, ModelRef};
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelStep {
    /// A local file, used in place.
    UseLocal {
        path: PathBuf,
        bytes: u64,
    },
    /// A local path that holds no file.
    Missing {
        path: PathBuf,
    },
    /// A download recorded in the catalog whose file is still there.
    InCache {
        path: PathBuf,
        bytes: u64,
        fetched_at: String,
    },
    /// A file named by the expected digest that the catalog lost: hashed, then adopted.
    UnrecordedInCache {
        path: PathBuf,
    },
    /// Downloaded (resumably) into the cache's `models` folder.
    Download {
        url: String,
        into: PathBuf,
    },
    CheckSha256 {
        expected: String,
    },
    /// The ref cannot be provisioned at all.
    Invalid {
        why: String,
    },
}

impl ModelStep {
    pub fn is_problem(&self) -> bool {
        matches!(self, ModelStep::Missing { .. } | ModelStep::Invalid { .. })
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

impl fmt::Display for ModelStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelStep::UseLocal { path, bytes } => write!(
                f,
                "use the local file {} in place ({})",
                path.display(),
                mib(*bytes)
            ),
            ModelStep::Missing { path } => write!(f, "problem: no file at {}", path.display()),
            ModelStep::InCache {
                path,
                bytes,
                fetched_at,
            } => write!(
                f,
                "present in the cache: {} ({}, fetched {fetched_at})",
                path.display(),
                mib(*bytes)
            ),
            ModelStep::UnrecordedInCache { path } => write!(
                f,
                "present in the cache but not in its catalog: {} (hashed, then recorded)",
                path.display()
            ),
            ModelStep::Download { url, into } => {
                write!(f, "download {url} into {} (resumable)", into.display())
            }
            ModelStep::CheckSha256 { expected } => {
                write!(f, "check its sha256 is {expected}")
            }
            ModelStep::Invalid { why } => write!(f, "problem: {why}"),
        }
    }
}

/// The model's steps, and the file the engines will load when it is known before `up`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelPlan {
    pub steps: Vec<ModelStep>,
    pub file: Option<PathBuf>,
}

/// What provisioning `model_ref` (with the expected `sha256`) from `cache` will do.
pub fn plan(model_ref: &str, sha256: Option<&str>, cache: &Path) -> ModelPlan {
    let expected = sha256.map(str::to_ascii_lowercase);
    let (first, file) = match ModelRef::parse(model_ref) {
        Err(e) => (ModelStep::Invalid { why: e.to_string() }, None),
        Ok(ModelRef::Local { path }) => match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => (
                ModelStep::UseLocal {
                    path: path.clone(),
                    bytes: meta.len(),
                },
                Some(path),
            ),
            Ok(_) => (
                ModelStep::Invalid {
                    why: format!("{} is not a file", path.display()),
                },
                None,
            ),
            Err(_) => (ModelStep::Missing { path }, None),
        },
        Ok(remote) => remote_step(&remote, model_ref, expected.as_deref(), cache),
    };
    let mut steps = vec![first];
    let usable = !steps[0].is_problem();
    if let Some(expected) = expected.filter(|_| usable) {
        steps.push(ModelStep::CheckSha256 { expected });
    }
    ModelPlan { steps, file }
}

fn remote_step(
    remote: &ModelRef,
    model_ref: &str,
    expected: Option<&str>,
    cache: &Path,
) -> (ModelStep, Option<PathBuf>) {
    let models = cache.join("models");
    let catalog = Catalog::in_dir(cache);
    match catalog.find(&redact(model_ref), expected) {
        Err(e) => return (ModelStep::Invalid { why: e.to_string() }, None),
        Ok(Some(entry)) => {
            let size = std::fs::metadata(&entry.path).map(|m| m.len()).ok();
            if size == Some(entry.size) && entry.path.starts_with(&models) {
                let path = entry.path.clone();
                let step = ModelStep::InCache {
                    path: entry.path,
                    bytes: entry.size,
                    fetched_at: entry.fetched_at,
                };
                return (step, Some(path));
            }
        }
        Ok(None) => {}
    }
    if let Some(digest) = expected {
        let path = models.join(digest);
        if path.is_file() {
            return (
                ModelStep::UnrecordedInCache { path: path.clone() },
                Some(path),
            );
        }
    }
    let url = remote.url().map(display_url).unwrap_or_default();
    (ModelStep::Download { url, into: models }, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_file_is_used_in_place_and_a_missing_one_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.gguf");
        std::fs::write(&model, b"GGUF").unwrap();
        let ok = plan(model.to_str().unwrap(), None, dir.path());
        assert_eq!(
            ok.steps,
            vec![ModelStep::UseLocal {
                path: model.clone(),
                bytes: 4
            }]
        );
        assert_eq!(ok.file, Some(model));
        let gone = dir.path().join("gone.gguf");
        let missing = plan(gone.to_str().unwrap(), Some(&"A".repeat(64)), dir.path());
        assert_eq!(missing.steps, vec![ModelStep::Missing { path: gone }]);
        assert!(missing.steps[0].to_string().starts_with("problem: "));
    }

    #[test]
    fn a_url_is_downloaded_unless_the_catalog_has_it_and_its_credentials_never_show() {
        let dir = tempfile::tempdir().unwrap();
        let url = "http://user:CANARY@127.0.0.1:9/m.gguf?sig=CANARY2";
        let fresh = plan(url, None, dir.path());
        let shown = fresh.steps[0].to_string();
        assert!(
            shown.starts_with("download http://127.0.0.1:9/m.gguf into "),
            "{shown}"
        );
        assert!(!shown.contains("CANARY"), "{shown}");

        let models = dir.path().join("models");
        std::fs::create_dir_all(&models).unwrap();
        let file = models.join("m.gguf");
        std::fs::write(&file, b"12345").unwrap();
        Catalog::in_dir(dir.path())
            .record(model_provisioner::CatalogEntry {
                model_ref: redact(url),
                path: file.clone(),
                sha256: "b".repeat(64),
                size: 5,
                fetched_at: "2025-01-01T00:00:00Z".into(),
            })
            .unwrap();
        let cached = plan(url, Some(&"B".repeat(64)), dir.path());
        assert!(matches!(&cached.steps[0], ModelStep::InCache { path, .. } if *path == file));
        assert_eq!(
            cached.steps[1],
            ModelStep::CheckSha256 {
                expected: "b".repeat(64)
            }
        );
        assert_eq!(cached.file, Some(file));
    }

    #[test]
    fn a_mock_ref_is_not_a_file_to_provision() {
        let dir = tempfile::tempdir().unwrap();
        let mock = plan("mock:tiny", None, dir.path());
        assert!(mock.steps[0].is_problem(), "{:?}", mock.steps);
    }
}
