//! `ModelError`: every way provisioning a model can fail. Each variant names the model (its ref
//! with credentials and query stripped, or the file's path) so a message read on its own says
//! which model, what was expected and what was found.

use crate::catalog::CatalogError;
use crate::gguf::GgufError;
use std::fmt;
use std::path::PathBuf;

#[derive(Debug)]
pub enum ModelError {
    /// The ref cannot be understood (empty, bad URL, unknown scheme, malformed `hf:` ref).
    InvalidRef { model_ref: String, reason: String },
    /// A `..` (or `.`) segment where a name inside a repository or the cache is expected.
    PathTraversal { model_ref: String },
    /// Plain `http://` to a host that is not loopback.
    InsecureHttp { model_ref: String, host: String },
    /// `mock:` refs name models of the built-in mock engine: there is no file to provision.
    MockRef { model_ref: String },
    /// This build has no TLS stack (the crate's `https` feature is off).
    HttpsUnavailable { model_ref: String },
    /// The sha256 the caller gave is not 64 hex digits.
    BadDigest { model_ref: String, given: String },
    /// No such file, or the server answered 404/410.
    NotFound { model_ref: String, location: String },
    /// The server answered with a status other than 200, 206, 404, 410 or 416.
    HttpStatus { model_ref: String, status: u16 },
    /// Connecting or sending the request failed.
    Connect {
        model_ref: String,
        endpoint: String,
        reason: String,
    },
    /// No bytes arrived for `secs` seconds.
    Stalled {
        model_ref: String,
        bytes: u64,
        secs: f64,
    },
    /// The connection broke mid-body; the part file is kept and the next attempt resumes.
    Interrupted {
        model_ref: String,
        bytes: u64,
        total: Option<u64>,
        reason: String,
    },
    /// The body ended cleanly but shorter than announced; the part file is kept.
    Truncated {
        model_ref: String,
        expected: u64,
        found: u64,
    },
    /// The file's sha256 is not the one asked for.
    DigestMismatch {
        model_ref: String,
        expected: String,
        found: String,
    },
    /// A local file operation failed.
    Io {
        model_ref: String,
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    /// The catalog could not be read or written.
    Catalog {
        model_ref: String,
        error: CatalogError,
    },
    /// The GGUF header is unreadable or hostile.
    Gguf { model_ref: String, error: GgufError },
    /// The HTTP client could not be built.
    Client { model_ref: String, reason: String },
}

impl ModelError {
    /// The model (redacted ref or path) the error is about.
    pub fn model_ref(&self) -> &str {
        match self {
            ModelError::InvalidRef { model_ref, .. }
            | ModelError::PathTraversal { model_ref }
            | ModelError::InsecureHttp { model_ref, .. }
            | ModelError::MockRef { model_ref }
            | ModelError::HttpsUnavailable { model_ref }
            | ModelError::BadDigest { model_ref, .. }
            | ModelError::NotFound { model_ref, .. }
            | ModelError::HttpStatus { model_ref, .. }
            | ModelError::Connect { model_ref, .. }
            | ModelError::Stalled { model_ref, .. }
            | ModelError::Interrupted { model_ref, .. }
            | ModelError::Truncated { model_ref, .. }
            | ModelError::DigestMismatch { model_ref, .. }
            | ModelError::Io { model_ref, .. }
            | ModelError::Catalog { model_ref, .. }
            | ModelError::Gguf { model_ref, .. }
            | ModelError::Client { model_ref, .. } => model_ref,
        }
    }

    /// A short machine-readable kind for the `error_kind` field.
    pub fn kind(&self) -> &'static str {
        match self {
            ModelError::InvalidRef { .. } => "invalid_ref",
            ModelError::PathTraversal { .. } => "path_traversal",
            ModelError::InsecureHttp { .. } => "insecure_http",
            ModelError::MockRef { .. } => "mock_ref",
            ModelError::HttpsUnavailable { .. } => "https_unavailable",
            ModelError::BadDigest { .. } => "bad_digest",
            ModelError::NotFound { .. } => "not_found",
            ModelError::HttpStatus { .. } => "http_status",
            ModelError::Connect { .. } => "connect",
            ModelError::Stalled { .. } => "stalled",
            ModelError::Interrupted { .. } => "interrupted",
            ModelError::Truncated { .. } => "truncated",
            ModelError::DigestMismatch { .. } => "digest_mismatch",
            ModelError::Io { .. } => "io",
            ModelError::Catalog { .. } => "catalog",
            ModelError::Gguf { .. } => "gguf",
            ModelError::Client { .. } => "client",
        }
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::InvalidRef { model_ref, reason } => {
                write!(f, "model '{model_ref}': not a valid model ref: {reason}")
            }
            ModelError::PathTraversal { model_ref } => write!(
                f,
                "model '{model_ref}': '.' and '..' segments are refused (path traversal)"
            ),
            ModelError::InsecureHttp { model_ref, host } => write!(
                f,
                "model '{model_ref}': plain http:// is only allowed to loopback hosts \
                 (127.0.0.0/8, localhost, [::1]), not '{host}'; use https://"
            ),
            ModelError::MockRef { model_ref } => write!(
                f,
                "model '{model_ref}': mock: models are served by the built-in mock engine; \
                 there is no file to provision"
            ),
            ModelError::HttpsUnavailable { model_ref } => write!(
                f,
                "model '{model_ref}': https downloads need TLS, and this build has none: \
                 build model-provisioner with its `https` feature"
            ),
            ModelError::BadDigest { model_ref, given } => write!(
                f,
                "model '{model_ref}': expected sha256 {given:?} is not 64 hex digits"
            ),
            ModelError::NotFound { model_ref, location } => {
                write!(f, "model '{model_ref}': not found: {location}")
            }
            ModelError::HttpStatus { model_ref, status } => write!(
                f,
                "model '{model_ref}': the server answered HTTP {status}"
            ),
            ModelError::Connect { model_ref, endpoint, reason } => write!(
                f,
                "model '{model_ref}': could not reach {endpoint}: {reason}"
            ),
            ModelError::Stalled { model_ref, bytes, secs } => write!(
                f,
                "model '{model_ref}': download stalled: no bytes for {secs:.1} s after {bytes} bytes; \
                 the partial file is kept and the next attempt resumes"
            ),
            ModelError::Interrupted { model_ref, bytes, total, reason } => {
                write!(f, "model '{model_ref}': download interrupted after {bytes}")?;
                if let Some(total) = total {
                    write!(f, " of {total}")?;
                }
                write!(
                    f,
                    " bytes ({reason}); the partial file is kept and the next attempt resumes"
                )
            }
            ModelError::Truncated { model_ref, expected, found } => write!(
                f,
                "model '{model_ref}': expected {expected} bytes, found {found} (truncated); \
                 the partial file is kept and the next attempt resumes"
            ),
            ModelError::DigestMismatch { model_ref, expected, found } => write!(
                f,
                "model '{model_ref}': expected sha256 {expected}, found {found}"
            ),
            ModelError::Io { model_ref, action, path, error } => write!(
                f,
                "model '{model_ref}': could not {action} {}: {error}",
                path.display()
            ),
            ModelError::Catalog { model_ref, error } => {
                write!(f, "model '{model_ref}': {error}")
            }
            ModelError::Gguf { model_ref, error } => {
                write!(f, "model '{model_ref}': bad GGUF header: {error}")
            }
            ModelError::Client { model_ref, reason } => write!(
                f,
                "model '{model_ref}': could not build the HTTP client: {reason}"
            ),
        }
    }
}

impl std::error::Error for ModelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ModelError::Io { error, .. } => Some(error),
            ModelError::Catalog { error, .. } => Some(error),
            ModelError::Gguf { error, .. } => Some(error),
            _ => None,
        }
    }
}
