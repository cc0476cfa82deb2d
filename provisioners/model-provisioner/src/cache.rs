//! The cache side of provisioning: names of files in `cache_dir/models`, reuse of catalog
//! entries, adoption of verified files the catalog lost, and recording downloads.
//!
//! Reuse: a catalog entry is trusted when its file exists inside `cache_dir/models` with the
//! recorded size (and the recorded sha256 equals the one asked for). The file is hashed again
//! only with [`ModelProvisioner::with_rehash_cached`], because hashing tens of gigabytes on
//! every start costs minutes; a file whose size changed is downloaded again.

use crate::catalog::{now_rfc3339, CatalogEntry, CatalogError};
use crate::digest::{file_sha256, hex};
use crate::download::mib;
use crate::error::ModelError;
use crate::fields;
use crate::gguf::{is_gguf, read_gguf_metadata, GgufMetadata};
use crate::model_ref::{display_url, ModelRef};
use crate::progress::Progress;
use crate::provisioner::{ModelProvisioner, Origin, ResolvedModel};
use logging::keys;
use sha2::{Digest, Sha256};
use slog::{info, warn};
use std::path::{Component, Path};

impl ModelProvisioner {
    /// The entry's file when it still looks as recorded; `None` (after a warning) when stale.
    pub(crate) async fn reuse(
        &self,
        entry: &CatalogEntry,
        shown: &str,
        progress: &Progress,
    ) -> Result<Option<ResolvedModel>, ModelError> {
        let models = self.models_dir();
        let inside = entry.path.starts_with(&models)
            && !entry
                .path
                .components()
                .any(|c| matches!(c, Component::ParentDir | Component::CurDir));
        if !inside {
            return Err(ModelError::Catalog {
                model_ref: shown.to_string(),
                error: CatalogError::Corrupt {
                    path: self.catalog.path().to_path_buf(),
                    reason: format!(
                        "its entry for '{shown}' points outside {}: {}",
                        models.display(),
                        entry.path.display()
                    ),
                },
            });
        }
        let stale = match tokio::fs::metadata(&entry.path).await {
            Err(_) => Some("its file is gone".to_string()),
            Ok(meta) if meta.len() != entry.size => Some(format!(
                "its file has {} bytes, not the {} recorded",
                meta.len(),
                entry.size
            )),
            Ok(_) if self.rehash_cached => {
                progress.verifying();
                let (found, _) = file_sha256(&entry.path)
                    .await
                    .map_err(|e| io_error(shown, "read", &entry.path, e))?;
                (found != entry.sha256).then(|| format!("its sha256 is now {found}"))
            }
            Ok(_) => None,
        };
        if let Some(reason) = stale {
            warn!(self.log, "The catalog entry for model '{}' is stale ({}); downloading it again", shown, reason;
                keys::MODEL_REF => shown, fields::PATH => entry.path.display().to_string(), keys::REASON => &reason);
            return Ok(None);
        }
        let metadata = metadata_of(&entry.path, shown).await?;
        info!(self.log, "Reusing model '{}' from the catalog ({}{}, fetched {})", shown, mib(entry.size), describe(&metadata), entry.fetched_at;
            keys::MODEL_REF => shown, fields::PATH => entry.path.display().to_string(), fields::BYTES => entry.size,
            fields::SHA256 => &entry.sha256);
        Ok(Some(ResolvedModel {
            model_ref: shown.to_string(),
            path: entry.path.clone(),
            sha256: Some(entry.sha256.clone()),
            size: entry.size,
            metadata,
            origin: Origin::Catalog,
        }))
    }

    /// A finished file named by its digest but missing from the catalog (a lost catalog).
    pub(crate) async fn adopt(
        &self,
        dest: &Path,
        shown: &str,
        expected: &str,
        progress: &Progress,
    ) -> Result<Option<ResolvedModel>, ModelError> {
        if !tokio::fs::try_exists(dest).await.unwrap_or(false) {
            return Ok(None);
        }
        progress.verifying();
        let (found, size) = file_sha256(dest)
            .await
            .map_err(|e| io_error(shown, "read", dest, e))?;
        if found != expected {
            let _ = tokio::fs::remove_file(dest).await;
            return Ok(None);
        }
        let metadata = metadata_of(dest, shown).await?;
        self.record(shown, dest, &found, size)?;
        info!(self.log, "Reusing model '{}' already in the cache ({}, sha256 verified)", shown, mib(size);
            keys::MODEL_REF => shown, fields::PATH => dest.display().to_string(), fields::BYTES => size, fields::SHA256 => &found);
        Ok(Some(ResolvedModel {
            model_ref: shown.to_string(),
            path: dest.to_path_buf(),
            sha256: Some(found),
            size,
            metadata,
            origin: Origin::Catalog,
        }))
    }

    pub(crate) fn record(
        &self,
        shown: &str,
        path: &Path,
        sha256: &str,
        size: u64,
    ) -> Result<(), ModelError> {
        let _one_writer = self
            .catalog_writes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.catalog
            .record(CatalogEntry {
                model_ref: shown.to_string(),
                path: path.to_path_buf(),
                sha256: sha256.to_string(),
                size,
                fetched_at: now_rfc3339(),
            })
            .map_err(|error| ModelError::Catalog {
                model_ref: shown.to_string(),
                error,
            })
    }
}

pub(crate) fn io_error(
    shown: &str,
    action: &'static str,
    path: &Path,
    error: std::io::Error,
) -> ModelError {
    ModelError::Io {
        model_ref: shown.to_string(),
        action,
        path: path.to_path_buf(),
        error,
    }
}

/// The GGUF header of `path`, or `None` when the file is not GGUF at all.
pub(crate) async fn metadata_of(
    path: &Path,
    shown: &str,
) -> Result<Option<GgufMetadata>, ModelError> {
    let owned = path.to_path_buf();
    let read = tokio::task::spawn_blocking(move || match is_gguf(&owned) {
        Ok(false) => Ok(Ok(None)),
        Ok(true) => Ok(read_gguf_metadata(&owned).map(Some)),
        Err(e) => Err(e),
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|r| r)
    .map_err(|e| io_error(shown, "read", path, e))?;
    read.map_err(|e| match e {
        ModelError::Gguf { error, .. } => ModelError::Gguf {
            model_ref: shown.to_string(),
            error,
        },
        other => other,
    })
}

/// ", llama, context 512" for narration; empty without metadata.
pub(crate) fn describe(metadata: &Option<GgufMetadata>) -> String {
    match metadata {
        Some(m) => match m.context_length {
            Some(context) => format!(", {}, context {}", m.architecture, context),
            None => format!(", {}", m.architecture),
        },
        None => String::new(),
    }
}

/// The cache file name for a ref without a digest: readable, and unique per URL (query left
/// out, so a re-signed URL maps to the same file).
pub(crate) fn cache_name(parsed: &ModelRef) -> String {
    match parsed {
        ModelRef::HuggingFace {
            org, repo, file, ..
        } => sanitize(&format!("hf--{org}--{repo}--{}", file.replace('/', "--"))),
        other => {
            let url = other.url().map(display_url).unwrap_or_default();
            let last = other
                .url()
                .and_then(|u| u.path_segments())
                .and_then(|mut s| s.next_back().map(str::to_string))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "model".to_string());
            let digest = hex(&Sha256::digest(url.as_bytes()));
            sanitize(&format!("{}-{last}", &digest[..16]))
        }
    }
}

/// Letters, digits, `.`, `_` and `-` only, not starting with `.`, at most 160 characters.
fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(160)
        .collect();
    if out.starts_with('.') {
        out.replace_range(..1, "_");
    }
    out
}
