//! Resumable downloads: bytes go to `<file>.part`; a later attempt asks for the rest with
//! `Range: bytes=N-`, hashing the part first so the digest covers the whole file. A server that
//! ignores the range (200) restarts the part from zero; 416 means the part is already whole.
//! The part becomes the final file by one rename, after its size and digest are checked.

use crate::digest::{hasher_of, hex};
use crate::error::ModelError;
use crate::fields;
use crate::model_ref::{display_url, is_loopback};
use crate::progress::Progress;
use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::{Client, Response, Url};
use sha2::{Digest, Sha256};
use slog::{info, warn, Logger};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

const WRITE_BUFFER: usize = 1 << 20;
const MAX_REDIRECTS: usize = 10;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub connect_timeout: Duration,
    pub stall_timeout: Duration,
    pub progress_every: Duration,
}

pub(crate) struct Downloaded {
    pub sha256: String,
    pub size: u64,
    pub resumed_from: u64,
    pub elapsed: Duration,
}

/// One download of `url` (shown in logs and errors as `shown`) into `dest`.
pub(crate) struct Download<'a> {
    pub url: &'a Url,
    pub shown: &'a str,
    pub dest: &'a Path,
    pub expected: Option<&'a str>,
    pub limits: Limits,
    pub log: &'a Logger,
    /// Told the bytes on disk after every chunk, and when a part is hashed.
    pub progress: &'a Progress,
}

pub(crate) fn client(url: &Url, limits: &Limits, shown: &str) -> Result<Client, ModelError> {
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if attempt.url().scheme() == "http" && !is_loopback(attempt.url()) {
            attempt.error("redirected to plain http:// on a host that is not loopback")
        } else {
            attempt.follow()
        }
    });
    let mut builder = Client::builder()
        .connect_timeout(limits.connect_timeout)
        .redirect(policy)
        .user_agent(concat!(
            "llama-orch-model-provisioner/",
            env!("CARGO_PKG_VERSION")
        ));
    if is_loopback(url) {
        builder = builder.no_proxy();
    }
    builder.build().map_err(|e| ModelError::Client {
        model_ref: shown.to_string(),
        reason: describe(e),
    })
}

/// The error and its causes, without the URL reqwest would print (it may carry a query).
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub(crate) fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// `start` of a `bytes start-end/total` (or `bytes */total`) header, and the total when known.
fn content_range(response: &Response) -> (Option<u64>, Option<u64>) {
    let Some(text) = response
        .headers()
        .get(CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
    else {
        return (None, None);
    };
    let Some(spec) = text.trim().strip_prefix("bytes ") else {
        return (None, None);
    };
    let (range, total) = spec.split_once('/').unwrap_or((spec, "*"));
    let start = range
        .split_once('-')
        .and_then(|(s, _)| s.trim().parse().ok());
    (start, total.trim().parse().ok())
}

impl Download<'_> {
    fn part(&self) -> std::path::PathBuf {
        let mut name = self.dest.file_name().unwrap_or_default().to_os_string();
        name.push(".part");
        self.dest.with_file_name(name)
    }

    fn io(&self, action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ModelError {
        let (model_ref, path) = (self.shown.to_string(), path.to_path_buf());
        move |error| ModelError::Io {
            model_ref,
            action,
            path,
            error,
        }
    }

    async fn remove(&self, part: &Path) -> Result<(), ModelError> {
        match tokio::fs::remove_file(part).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.io("remove", part)(e)),
            _ => Ok(()),
        }
    }

    fn endpoint(&self) -> String {
        let host = self.url.host_str().unwrap_or("?");
        match self.url.port_or_known_default() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        }
    }

    pub(crate) async fn run(&self, client: &Client) -> Result<Downloaded, ModelError> {
        let part = self.part();
        if let Some(dir) = part.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(self.io("create", dir))?;
        }
        let started = Instant::now();
        let mut use_range = true;
        loop {
            let existing = match tokio::fs::metadata(&part).await {
                Ok(m) if use_range => m.len(),
                _ => 0,
            };
            let mut request = client.get(self.url.clone());
            if existing > 0 {
                request = request.header(RANGE, format!("bytes={existing}-"));
            }
            let response =
                match tokio::time::timeout(self.limits.stall_timeout, request.send()).await {
                    Err(_) => {
                        return Err(ModelError::Stalled {
                            model_ref: self.shown.to_string(),
                            bytes: existing,
                            secs: self.limits.stall_timeout.as_secs_f64(),
                        })
                    }
                    Ok(Err(e)) => {
                        return Err(ModelError::Connect {
                            model_ref: self.shown.to_string(),
                            endpoint: self.endpoint(),
                            reason: describe(e),
                        })
                    }
                    Ok(Ok(response)) => response,
                };
            let status = response.status().as_u16();
            let (range_start, range_total) = content_range(&response);
            let (offset, total) = match status {
                200 => {
                    if existing > 0 {
                        warn!(self.log, "The server ignored the request to resume model '{}' at {} bytes; downloading it from the start", self.shown, existing;
                            logging::keys::MODEL_REF => self.shown, fields::BYTES => existing);
                    }
                    (0, response.content_length())
                }
                206 if range_start == Some(existing) => {
                    let total = range_total.or(response.content_length().map(|n| n + existing));
                    (existing, total)
                }
                206 if existing > 0 => {
                    warn!(self.log, "The server answered the resume of model '{}' with another range; downloading it from the start", self.shown;
                        logging::keys::MODEL_REF => self.shown, fields::BYTES => existing);
                    self.remove(&part).await?;
                    use_range = false;
                    continue;
                }
                416 if existing > 0 && range_total.is_none_or(|t| t == existing) => {
                    info!(self.log, "The partial download of model '{}' is already whole ({}); verifying it", self.shown, mib(existing);
                        logging::keys::MODEL_REF => self.shown, fields::BYTES => existing);
                    self.progress.verifying();
                    let (hasher, size) = hasher_of(&part).await.map_err(self.io("read", &part))?;
                    return self.finish(&part, hasher, size, existing, started).await;
                }
                416 if existing > 0 => {
                    warn!(self.log, "The partial download of model '{}' is longer than the file on the server; downloading it from the start", self.shown;
                        logging::keys::MODEL_REF => self.shown, fields::BYTES => existing);
                    self.remove(&part).await?;
                    use_range = false;
                    continue;
                }
                404 | 410 => {
                    return Err(ModelError::NotFound {
                        model_ref: self.shown.to_string(),
                        location: format!("{} answered HTTP {status}", display_url(self.url)),
                    })
                }
                _ => {
                    return Err(ModelError::HttpStatus {
                        model_ref: self.shown.to_string(),
                        status,
                    })
                }
            };
            let hasher = if offset > 0 {
                let shown_total = total.map(|t| format!(" of {}", mib(t))).unwrap_or_default();
                info!(self.log, "Resuming download of model '{}' at {} bytes ({}{})", self.shown, offset, mib(offset), shown_total;
                    logging::keys::MODEL_REF => self.shown, fields::BYTES => offset, fields::TOTAL_BYTES => total);
                self.progress.verifying();
                let (hasher, size) = hasher_of(&part).await.map_err(self.io("read", &part))?;
                if size != offset {
                    // The part changed under us; its bytes cannot be trusted.
                    let _ = tokio::fs::remove_file(&part).await;
                    use_range = false;
                    continue;
                }
                hasher
            } else {
                Sha256::new()
            };
            if offset == 0 {
                let shown_total = total.map(|t| format!(" ({})", mib(t))).unwrap_or_default();
                info!(self.log, "Downloading model '{}' from {}{}", self.shown, self.endpoint(), shown_total;
                    logging::keys::MODEL_REF => self.shown, fields::TOTAL_BYTES => total);
            }
            self.progress.downloading(offset, total);
            let (hasher, size) = self.body(response, &part, hasher, offset, total).await?;
            return self.finish(&part, hasher, size, offset, started).await;
        }
    }

    /// Streams the body into the part file; returns the hasher over the whole part and its size.
    async fn body(
        &self,
        mut response: Response,
        part: &Path,
        mut hasher: Sha256,
        offset: u64,
        total: Option<u64>,
    ) -> Result<(Sha256, u64), ModelError> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(offset > 0)
            .truncate(offset == 0)
            .open(part)
            .await
            .map_err(self.io("open", part))?;
        let mut out = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut written = offset;
        let started = Instant::now();
        let mut last_report = started;
        let outcome = loop {
            let chunk =
                match tokio::time::timeout(self.limits.stall_timeout, response.chunk()).await {
                    Err(_) => {
                        break Err(ModelError::Stalled {
                            model_ref: self.shown.to_string(),
                            bytes: written,
                            secs: self.limits.stall_timeout.as_secs_f64(),
                        })
                    }
                    Ok(Err(e)) => {
                        break Err(ModelError::Interrupted {
                            model_ref: self.shown.to_string(),
                            bytes: written,
                            total,
                            reason: describe(e),
                        })
                    }
                    Ok(Ok(None)) => break Ok(()),
                    Ok(Ok(Some(chunk))) => chunk,
                };
            if let Err(e) = out.write_all(&chunk).await {
                break Err(self.io("write", part)(e));
            }
            hasher.update(&chunk);
            written += chunk.len() as u64;
            self.progress.downloaded(written);
            if last_report.elapsed() >= self.limits.progress_every {
                last_report = Instant::now();
                self.progress(written, total, written - offset, started.elapsed());
            }
        };
        // Flush what arrived even on failure: the next attempt resumes from it.
        let flushed = async {
            out.flush().await?;
            out.get_ref().sync_all().await
        }
        .await;
        outcome?;
        flushed.map_err(self.io("write", part))?;
        if let Some(total) = total.filter(|t| written < *t) {
            return Err(ModelError::Truncated {
                model_ref: self.shown.to_string(),
                expected: total,
                found: written,
            });
        }
        Ok((hasher, written))
    }

    fn progress(&self, bytes: u64, total: Option<u64>, session_bytes: u64, elapsed: Duration) {
        let rate = (session_bytes as f64 / elapsed.as_secs_f64().max(1e-3)) as u64;
        match total.filter(|t| *t > 0) {
            Some(total) => {
                let percent = bytes.min(total) * 100 / total;
                info!(self.log, "Downloading model '{}': {} of {} ({} %) at {}/s", self.shown, mib(bytes), mib(total), percent, mib(rate);
                    logging::keys::MODEL_REF => self.shown, fields::BYTES => bytes, fields::TOTAL_BYTES => total,
                    fields::PERCENT => percent, fields::BYTES_PER_SEC => rate);
            }
            None => {
                info!(self.log, "Downloading model '{}': {} so far at {}/s", self.shown, mib(bytes), mib(rate);
                    logging::keys::MODEL_REF => self.shown, fields::BYTES => bytes, fields::BYTES_PER_SEC => rate);
            }
        }
    }

    /// Checks the digest, then renames the part to the final name.
    async fn finish(
        &self,
        part: &Path,
        hasher: Sha256,
        size: u64,
        resumed_from: u64,
        started: Instant,
    ) -> Result<Downloaded, ModelError> {
        let found = hex(&hasher.finalize());
        if let Some(expected) = self.expected.filter(|e| *e != found) {
            // Resuming cannot mend wrong bytes: the next attempt starts from zero.
            let _ = tokio::fs::remove_file(part).await;
            return Err(ModelError::DigestMismatch {
                model_ref: self.shown.to_string(),
                expected: expected.to_string(),
                found,
            });
        }
        tokio::fs::rename(part, self.dest)
            .await
            .map_err(self.io("rename into place", part))?;
        Ok(Downloaded {
            sha256: found,
            size,
            resumed_from,
            elapsed: started.elapsed(),
        })
    }
}
