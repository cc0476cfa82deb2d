//! Model refs: what a pool's `model_ref` names and where its bytes come from.
//!
//! - a plain path (`/models/x.gguf`, `models/x.gguf`) or `file:` path (`file:/m/x.gguf`,
//!   `file:///m/x.gguf`): used in place, never copied;
//! - `https://host/path` (and `http://` only to loopback hosts, for tests);
//! - `hf:org/repo/path/file.gguf`: `{endpoint}/{org}/{repo}/resolve/main/{path}`, where the
//!   endpoint is `HF_ENDPOINT` or `https://huggingface.co`;
//! - `mock:name`: the built-in mock engine's models. They are not files, so `parse` refuses them
//!   with [`ModelError::MockRef`]; callers that serve mock pools check for them first.
//!
//! A word before `:` that looks like a URL scheme (two or more letters) is read as one, so a
//! relative file named `a:b.gguf` is written `./a:b.gguf` or `file:a:b.gguf`.

use crate::error::ModelError;
use reqwest::Url;
use std::net::IpAddr;
use std::path::PathBuf;

pub const DEFAULT_HF_ENDPOINT: &str = "https://huggingface.co";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelRef {
    /// A file on this machine.
    Local { path: PathBuf },
    /// An http(s) URL.
    Url { url: Url },
    /// A file in a Hugging Face repository, with the URL it resolves to.
    HuggingFace {
        org: String,
        repo: String,
        file: String,
        url: Url,
    },
}

impl ModelRef {
    /// Parses `model_ref`, resolving `hf:` refs against `HF_ENDPOINT` (or huggingface.co).
    pub fn parse(model_ref: &str) -> Result<ModelRef, ModelError> {
        let endpoint = std::env::var("HF_ENDPOINT").ok();
        let endpoint = endpoint.as_deref().filter(|e| !e.trim().is_empty());
        ModelRef::parse_with_hf_endpoint(model_ref, endpoint.unwrap_or(DEFAULT_HF_ENDPOINT))
    }

    /// Parses `model_ref`, resolving `hf:` refs against `hf_endpoint`.
    pub fn parse_with_hf_endpoint(
        model_ref: &str,
        hf_endpoint: &str,
    ) -> Result<ModelRef, ModelError> {
        let shown = redact(model_ref);
        let invalid = |reason: &str| ModelError::InvalidRef {
            model_ref: shown.clone(),
            reason: reason.to_string(),
        };
        let text = model_ref.trim();
        if text.is_empty() {
            return Err(invalid("the ref is empty"));
        }
        let Some((scheme, rest)) = split_scheme(text) else {
            return Ok(ModelRef::Local {
                path: PathBuf::from(text),
            });
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                let path = rest.strip_prefix("//").unwrap_or(rest);
                if path.is_empty() {
                    return Err(invalid("the file: ref has no path"));
                }
                Ok(ModelRef::Local {
                    path: PathBuf::from(path),
                })
            }
            "http" | "https" => {
                let url = Url::parse(text).map_err(|e| invalid(&format!("bad URL: {e}")))?;
                check_url(&url, &shown)?;
                Ok(ModelRef::Url { url })
            }
            "hf" => parse_hf(rest, hf_endpoint, &shown),
            "mock" => Err(ModelError::MockRef { model_ref: shown }),
            other => Err(invalid(&format!(
                "unknown scheme '{other}:' (use a path, file:, https://, or hf:org/repo/file)"
            ))),
        }
    }

    /// The URL to download from, for remote refs.
    pub fn url(&self) -> Option<&Url> {
        match self {
            ModelRef::Local { .. } => None,
            ModelRef::Url { url } | ModelRef::HuggingFace { url, .. } => Some(url),
        }
    }
}

fn split_scheme(text: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = text.split_once(':')?;
    let looks_like_scheme = scheme.len() >= 2
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    looks_like_scheme.then_some((scheme, rest))
}

fn parse_hf(rest: &str, endpoint: &str, shown: &str) -> Result<ModelRef, ModelError> {
    let invalid = |reason: &str| ModelError::InvalidRef {
        model_ref: shown.to_string(),
        reason: reason.to_string(),
    };
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.len() < 3 || segments.iter().any(|s| s.is_empty()) {
        return Err(invalid(
            "an hf: ref is hf:org/repo/path/to/file.gguf (org, repo and a file, no empty segments)",
        ));
    }
    if segments.iter().any(|s| is_dot_segment(s)) {
        return Err(ModelError::PathTraversal {
            model_ref: shown.to_string(),
        });
    }
    if segments.iter().any(|s| {
        s.chars()
            .any(|c| c.is_control() || matches!(c, '?' | '#' | '\\'))
    }) {
        return Err(invalid(
            "an hf: ref may not hold '?', '#', '\\' or control characters",
        ));
    }
    let (org, repo, file) = (segments[0], segments[1], segments[2..].join("/"));
    let base = endpoint.trim().trim_end_matches('/');
    let url = Url::parse(&format!("{base}/{org}/{repo}/resolve/main/{file}"))
        .map_err(|e| invalid(&format!("bad HF_ENDPOINT {:?}: {e}", redact(base))))?;
    check_url(&url, shown)?;
    Ok(ModelRef::HuggingFace {
        org: org.to_string(),
        repo: repo.to_string(),
        file,
        url,
    })
}

/// `.` and `..`, also spelt with percent-encoded dots, which URL parsing would resolve.
pub(crate) fn is_dot_segment(segment: &str) -> bool {
    let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
    decoded == "." || decoded == ".."
}

/// Only https, or http to loopback; the same rule applies to redirects.
pub(crate) fn check_url(url: &Url, shown: &str) -> Result<(), ModelError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(ModelError::InsecureHttp {
            model_ref: shown.to_string(),
            host: url.host_str().unwrap_or("").to_string(),
        }),
        other => Err(ModelError::InvalidRef {
            model_ref: shown.to_string(),
            reason: format!("only https:// and loopback http:// URLs are fetched, not {other}:"),
        }),
    }
}

/// 127.0.0.0/8, `localhost` and `[::1]`.
pub fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A URL fit for logs and errors: no user name, password, query or fragment.
pub fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// A model ref fit for logs, errors and the catalog: URLs lose their credentials, query and
/// fragment; other refs are kept as written.
pub fn redact(model_ref: &str) -> String {
    let text = model_ref.trim();
    match split_scheme(text) {
        Some((scheme, _))
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
        {
            match Url::parse(text) {
                Ok(url) => display_url(&url),
                // Unparseable: any part of it could be a credential.
                Err(_) => format!("{}://…", scheme.to_ascii_lowercase()),
            }
        }
        _ => text.to_string(),
    }
}
