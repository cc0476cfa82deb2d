//! [`ModelProvisioner`]: resolve a ref, reuse a verified download or fetch it, and describe it.
//! Reuse of earlier downloads is in `cache.rs`.

use crate::cache::{cache_name, describe, io_error, metadata_of};
use crate::catalog::Catalog;
use crate::digest::{file_sha256, normalize};
use crate::download::{client, mib, Download, Limits};
use crate::error::ModelError;
use crate::fields;
use crate::gguf::GgufMetadata;
use crate::model_ref::{redact, ModelRef};
use crate::progress::Progress;
use logging::keys;
use slog::{error, info, Logger};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where a resolved model came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A local path, used in place.
    Local,
    /// A verified earlier download found in the catalog.
    Catalog,
    /// Downloaded (or resumed) by this call.
    Downloaded,
}

/// A model file ready to load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedModel {
    /// The ref, redacted.
    pub model_ref: String,
    pub path: PathBuf,
    /// Always known for downloads; for local files only when a digest was asked for.
    pub sha256: Option<String>,
    pub size: u64,
    /// The GGUF header facts; `None` for files that are not GGUF.
    pub metadata: Option<GgufMetadata>,
    pub origin: Origin,
}

pub struct ModelProvisioner {
    pub(crate) cache_dir: PathBuf,
    pub(crate) catalog: Catalog,
    pub(crate) log: Logger,
    pub(crate) limits: Limits,
    pub(crate) rehash_cached: bool,
    /// One download per destination at a time within this process.
    pub(crate) downloads: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
    /// Catalog read-modify-write cycles, one at a time.
    pub(crate) catalog_writes: Mutex<()>,
}

impl ModelProvisioner {
    pub fn new(cache_dir: PathBuf, log: &Logger) -> ModelProvisioner {
        ModelProvisioner {
            catalog: Catalog::in_dir(&cache_dir),
            cache_dir,
            log: logging::component(log, "model-provisioner"),
            limits: Limits {
                connect_timeout: Duration::from_secs(10),
                stall_timeout: Duration::from_secs(30),
                progress_every: Duration::from_secs(5),
            },
            rehash_cached: false,
            downloads: Mutex::new(HashMap::new()),
            catalog_writes: Mutex::new(()),
        }
    }

    /// How often download progress is narrated (default 5 s).
    pub fn with_progress_every(mut self, every: Duration) -> Self {
        self.limits.progress_every = every;
        self
    }

    /// How long connecting may take (default 10 s).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.limits.connect_timeout = timeout;
        self
    }

    /// How long a response may send nothing before the download fails (default 30 s).
    pub fn with_stall_timeout(mut self, timeout: Duration) -> Self {
        self.limits.stall_timeout = timeout;
        self
    }

    /// Hash catalog entries again before reusing them (default off: size only).
    pub fn with_rehash_cached(mut self, rehash: bool) -> Self {
        self.rehash_cached = rehash;
        self
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub(crate) fn models_dir(&self) -> PathBuf {
        self.cache_dir.join("models")
    }

    /// Makes `model_ref` available as a verified file: local paths are checked in place; remote
    /// refs are reused from the catalog or downloaded (resuming a partial download). With
    /// `sha256`, the file's digest must match it.
    pub async fn ensure(
        &self,
        model_ref: &str,
        sha256: Option<&str>,
    ) -> Result<ResolvedModel, ModelError> {
        self.ensure_reporting(model_ref, sha256, &Progress::new())
            .await
    }

    /// [`ModelProvisioner::ensure`], keeping `progress` up to date as it goes (the bytes of a
    /// download after every chunk); it ends at [`crate::Stage::Done`] when the model is ready.
    pub async fn ensure_reporting(
        &self,
        model_ref: &str,
        sha256: Option<&str>,
        progress: &Progress,
    ) -> Result<ResolvedModel, ModelError> {
        let shown = redact(model_ref);
        let result = self.resolve(model_ref, &shown, sha256, progress).await;
        match &result {
            Ok(_) => progress.done(),
            Err(e) => {
                error!(self.log, "Could not provision {}", e;
                    keys::MODEL_REF => &shown, keys::ERROR_KIND => e.kind(), keys::ERROR => e.to_string());
            }
        }
        result
    }

    async fn resolve(
        &self,
        model_ref: &str,
        shown: &str,
        sha256: Option<&str>,
        progress: &Progress,
    ) -> Result<ResolvedModel, ModelError> {
        let expected = match sha256 {
            Some(given) => Some(normalize(given).ok_or_else(|| ModelError::BadDigest {
                model_ref: shown.to_string(),
                given: given.to_string(),
            })?),
            None => None,
        };
        info!(self.log, "Resolving model '{}'", shown; keys::MODEL_REF => shown);
        match ModelRef::parse(model_ref)? {
            ModelRef::Local { path } => {
                self.local(&path, shown, expected.as_deref(), progress)
                    .await
            }
            remote => {
                self.remote(&remote, shown, expected.as_deref(), progress)
                    .await
            }
        }
    }

    async fn local(
        &self,
        path: &Path,
        shown: &str,
        expected: Option<&str>,
        progress: &Progress,
    ) -> Result<ResolvedModel, ModelError> {
        let meta = tokio::fs::metadata(path)
            .await
            .map_err(|error| match error.kind() {
                std::io::ErrorKind::NotFound => ModelError::NotFound {
                    model_ref: shown.to_string(),
                    location: format!("no file at {}", path.display()),
                },
                _ => io_error(shown, "read", path, error),
            })?;
        if !meta.is_file() {
            return Err(ModelError::InvalidRef {
                model_ref: shown.to_string(),
                reason: format!("{} is not a file", path.display()),
            });
        }
        let sha256 = match expected {
            Some(expected) => {
                progress.verifying();
                let (found, _) = file_sha256(path)
                    .await
                    .map_err(|e| io_error(shown, "read", path, e))?;
                if found != expected {
                    return Err(ModelError::DigestMismatch {
                        model_ref: shown.to_string(),
                        expected: expected.to_string(),
                        found,
                    });
                }
                Some(found)
            }
            None => None,
        };
        let metadata = metadata_of(path, shown).await?;
        let verified = if sha256.is_some() {
            ", sha256 verified"
        } else {
            ""
        };
        info!(self.log, "Using local model file '{}' ({}{}{})", shown, mib(meta.len()), describe(&metadata), verified;
            keys::MODEL_REF => shown, fields::PATH => path.display().to_string(), fields::BYTES => meta.len(),
            fields::SHA256 => sha256.clone());
        Ok(ResolvedModel {
            model_ref: shown.to_string(),
            path: path.to_path_buf(),
            sha256,
            size: meta.len(),
            metadata,
            origin: Origin::Local,
        })
    }

    async fn remote(
        &self,
        parsed: &ModelRef,
        shown: &str,
        expected: Option<&str>,
        progress: &Progress,
    ) -> Result<ResolvedModel, ModelError> {
        let Some(url) = parsed.url() else {
            return Err(ModelError::InvalidRef {
                model_ref: shown.to_string(),
                reason: "not a remote ref".to_string(),
            });
        };
        if url.scheme() == "https" && !cfg!(feature = "https") {
            return Err(ModelError::HttpsUnavailable {
                model_ref: shown.to_string(),
            });
        }
        let name = match expected {
            Some(sha) => sha.to_string(),
            None => cache_name(parsed),
        };
        let dest = self.models_dir().join(name);
        let lock = self.download_lock(&dest);
        let _one_at_a_time = lock.lock().await;

        let catalog_error = |error| ModelError::Catalog {
            model_ref: shown.to_string(),
            error,
        };
        if let Some(entry) = self.catalog.find(shown, expected).map_err(catalog_error)? {
            if let Some(resolved) = self.reuse(&entry, shown, progress).await? {
                return Ok(resolved);
            }
        }
        if let Some(expected) = expected {
            if let Some(resolved) = self.adopt(&dest, shown, expected, progress).await? {
                return Ok(resolved);
            }
        }

        let client = client(url, &self.limits, shown)?;
        let done = Download {
            url,
            shown,
            dest: &dest,
            expected,
            limits: self.limits,
            log: &self.log,
            progress,
        }
        .run(&client)
        .await?;
        let metadata = metadata_of(&dest, shown).await?;
        self.record(shown, &dest, &done.sha256, done.size)?;
        let resumed = if done.resumed_from > 0 {
            format!(", resumed at {}", mib(done.resumed_from))
        } else {
            String::new()
        };
        let verified = if expected.is_some() {
            "Downloaded and verified"
        } else {
            "Downloaded"
        };
        info!(self.log, "{} model '{}' ({} in {:.1} s{}{})", verified, shown, mib(done.size), done.elapsed.as_secs_f64(), resumed, describe(&metadata);
            keys::MODEL_REF => shown, fields::PATH => dest.display().to_string(), fields::BYTES => done.size,
            fields::SHA256 => &done.sha256, keys::DURATION_MS => done.elapsed.as_millis() as u64);
        Ok(ResolvedModel {
            model_ref: shown.to_string(),
            path: dest,
            sha256: Some(done.sha256),
            size: done.size,
            metadata,
            origin: Origin::Downloaded,
        })
    }

    fn download_lock(&self, dest: &Path) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .downloads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.entry(dest.to_path_buf()).or_default().clone()
    }
}
