//! The catalog of downloaded models: `cache_dir/catalog.json`,
//! `{"version":1,"entries":[{"model_ref","path","sha256","size","fetched_at"}]}`.
//!
//! Refs are stored redacted (no credentials, no query), which also lets a signed URL whose
//! token changes on every request find its earlier download. The file is replaced through a
//! temporary file and a rename, so a crash leaves the old catalog or the new one, never half.
//! Writers inside one process are serialised by the provisioner; separate processes sharing a
//! cache dir can lose each other's entries (the files stay, and are re-verified when found).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub const CATALOG_VERSION: u32 = 1;
const FILE_NAME: &str = "catalog.json";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntry {
    /// The ref, redacted.
    pub model_ref: String,
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
    /// RFC 3339, UTC.
    pub fetched_at: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct CatalogFile {
    version: u32,
    entries: Vec<CatalogEntry>,
}

#[derive(Debug)]
pub enum CatalogError {
    Io {
        action: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    Corrupt {
        path: PathBuf,
        reason: String,
    },
    UnknownVersion {
        path: PathBuf,
        version: u64,
    },
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogError::Io {
                action,
                path,
                error,
            } => write!(f, "could not {action} the catalog {}: {error}", path.display()),
            CatalogError::Corrupt { path, reason } => write!(
                f,
                "the catalog {} is corrupt ({reason}); remove it to rebuild it from fresh downloads",
                path.display()
            ),
            CatalogError::UnknownVersion { path, version } => write!(
                f,
                "the catalog {} has version {version}, and this build reads version {CATALOG_VERSION}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for CatalogError {}

/// The catalog file in a cache dir.
#[derive(Clone, Debug)]
pub struct Catalog {
    path: PathBuf,
}

impl Catalog {
    pub fn in_dir(cache_dir: &Path) -> Catalog {
        Catalog {
            path: cache_dir.join(FILE_NAME),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All entries; no file yet is an empty catalog.
    pub fn load(&self) -> Result<Vec<CatalogEntry>, CatalogError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => {
                return Err(CatalogError::Io {
                    action: "read",
                    path: self.path.clone(),
                    error,
                })
            }
        };
        let corrupt = |reason: String| CatalogError::Corrupt {
            path: self.path.clone(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        let version = value
            .get("version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| corrupt("no numeric \"version\"".to_string()))?;
        if version != u64::from(CATALOG_VERSION) {
            return Err(CatalogError::UnknownVersion {
                path: self.path.clone(),
                version,
            });
        }
        let file: CatalogFile =
            serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?;
        Ok(file.entries)
    }

    /// The entry for `model_ref` (redacted), with `sha256` when one is asked for.
    pub fn find(
        &self,
        model_ref: &str,
        sha256: Option<&str>,
    ) -> Result<Option<CatalogEntry>, CatalogError> {
        Ok(self
            .load()?
            .into_iter()
            .rev()
            .find(|e| e.model_ref == model_ref && sha256.is_none_or(|s| e.sha256 == s)))
    }

    /// Adds `entry`, replacing any entry for the same ref or the same path.
    pub fn record(&self, entry: CatalogEntry) -> Result<(), CatalogError> {
        let mut entries = self.load()?;
        entries.retain(|e| e.model_ref != entry.model_ref && e.path != entry.path);
        entries.push(entry);
        self.write(entries)
    }

    /// Drops every entry for `model_ref`.
    pub fn forget(&self, model_ref: &str) -> Result<(), CatalogError> {
        let mut entries = self.load()?;
        let before = entries.len();
        entries.retain(|e| e.model_ref != model_ref);
        if entries.len() == before {
            return Ok(());
        }
        self.write(entries)
    }

    fn write(&self, entries: Vec<CatalogEntry>) -> Result<(), CatalogError> {
        let io_error = |action, path: &Path| {
            let path = path.to_path_buf();
            move |error| CatalogError::Io {
                action,
                path,
                error,
            }
        };
        let file = CatalogFile {
            version: CATALOG_VERSION,
            entries,
        };
        let mut text = serde_json::to_vec_pretty(&file).map_err(|e| CatalogError::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        text.push(b'\n');
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io_error("create the folder of", &self.path))?;
        }
        let temp = self
            .path
            .with_extension(format!("json.tmp-{}", std::process::id()));
        let written = std::fs::File::create(&temp).and_then(|mut f| {
            f.write_all(&text)?;
            f.sync_all()
        });
        written.map_err(io_error("write", &temp))?;
        std::fs::rename(&temp, &self.path).map_err(|error| {
            let _ = std::fs::remove_file(&temp);
            CatalogError::Io {
                action: "replace",
                path: self.path.clone(),
                error,
            }
        })
    }
}

/// Now, as RFC 3339 UTC.
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "unknown".to_string())
}
