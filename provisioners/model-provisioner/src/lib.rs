//! model-provisioner: turns a pool's `model_ref` into a verified file on this machine.
//!
//! - [`ModelRef`]: paths, `file:`, `https://` (plain `http://` to loopback only), `hf:` refs;
//! - [`ModelProvisioner::ensure`]: resumable downloads into `cache_dir/models/`, sha256
//!   verification, reuse through the on-disk [`Catalog`]; local files are checked, never copied;
//!   [`ModelProvisioner::ensure_reporting`] also keeps a [`Progress`] up to date for watchers;
//! - [`read_gguf_metadata`]: architecture, context length, file type, parameter count and name
//!   from a GGUF header, bounded against hostile input.
//!
//! Everything is narrated on the logger given to [`ModelProvisioner::new`], with the actor
//! `model-provisioner`. URLs are logged without credentials or query ([`redact`]).
//!
//! https needs TLS, which the workspace's default build does not carry: build this crate with
//! its `https` feature (reqwest's rustls) to fetch from https hosts and Hugging Face. Without it
//! an https ref fails with [`ModelError::HttpsUnavailable`].

mod cache;
mod catalog;
mod digest;
mod download;
mod error;
mod gguf;
mod model_ref;
mod progress;
mod provisioner;

pub use catalog::{Catalog, CatalogEntry, CatalogError, CATALOG_VERSION};
pub use error::ModelError;
pub use gguf::{read_gguf_metadata, GgufError, GgufMetadata};
pub use model_ref::{display_url, is_loopback, redact, ModelRef, DEFAULT_HF_ENDPOINT};
pub use progress::{Progress, Stage};
pub use provisioner::{ModelProvisioner, Origin, ResolvedModel};

/// Field names this crate adds to its records, beside those of `logging::keys`.
pub mod fields {
    /// Bytes of the model on disk so far (or in all).
    pub const BYTES: &str = "bytes";
    /// The model's size in bytes, when the server said.
    pub const TOTAL_BYTES: &str = "total_bytes";
    /// Whole percent of `total_bytes` downloaded.
    pub const PERCENT: &str = "percent";
    /// Download rate of this attempt.
    pub const BYTES_PER_SEC: &str = "bytes_per_sec";
    /// The model file's sha256, hex.
    pub const SHA256: &str = "sha256";
    /// The model file on disk.
    pub const PATH: &str = "path";
}
