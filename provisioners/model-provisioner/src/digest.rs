//! sha256 of files, streamed in blocks, and the hex form digests are compared in.

use sha2::{Digest, Sha256};
use std::io::{self, Read};
use std::path::Path;

const BLOCK: usize = 1 << 20;

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// The digest in lower case when `given` is 64 hex digits (an optional `sha256:` prefix allowed).
pub(crate) fn normalize(given: &str) -> Option<String> {
    let text = given.trim();
    let text = text.strip_prefix("sha256:").unwrap_or(text);
    (text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| text.to_ascii_lowercase())
}

/// Feeds the whole file at `path` into `hasher`; returns how many bytes it read.
pub(crate) fn hash_into(path: &Path, hasher: &mut Sha256) -> io::Result<u64> {
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; BLOCK];
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
}

/// The sha256 (hex) and size of the file at `path`, off the async runtime's threads.
pub(crate) async fn file_sha256(path: &Path) -> io::Result<(String, u64)> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut hasher = Sha256::new();
        let size = hash_into(&path, &mut hasher)?;
        Ok((hex(&hasher.finalize()), size))
    })
    .await
    .map_err(io::Error::other)?
}

/// The hasher after feeding it the file at `path` (a part to resume), off the runtime's threads.
pub(crate) async fn hasher_of(path: &Path) -> io::Result<(Sha256, u64)> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut hasher = Sha256::new();
        let size = hash_into(&path, &mut hasher)?;
        Ok((hasher, size))
    })
    .await
    .map_err(io::Error::other)?
}
