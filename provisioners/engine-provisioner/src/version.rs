//! The engine's version, from `llama-server --version`.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `version: 4500 (abcdef12)` → `b4500`; `version: 0.6.0-dev (build 0, commit unknown)` →
/// `0.6.0-dev`; `version: 0.6.0-dev (build 7, commit 1a2b3c)` → `b7`; a build-0 version with a
/// commit → `0.6.0-dev-1a2b3c`. `None` when no line starts with `version:`.
pub fn parse_version(output: &str) -> Option<String> {
    let rest = output
        .lines()
        .find_map(|line| line.trim().strip_prefix("version:"))?
        .trim();
    let (word, detail) = match rest.split_once('(') {
        Some((word, detail)) => (word.trim(), detail.trim_end_matches(')').trim()),
        None => (rest, ""),
    };
    if word.is_empty() {
        return None;
    }
    let mut build = None;
    let mut commit = None;
    for part in detail.split(',').map(str::trim) {
        if let Some(n) = part.strip_prefix("build ") {
            build = n.trim().parse::<u64>().ok();
        } else if let Some(c) = part.strip_prefix("commit ") {
            commit = Some(c.trim());
        } else if !part.is_empty() && commit.is_none() {
            commit = Some(part);
        }
    }
    if word.bytes().all(|b| b.is_ascii_digit()) {
        return Some(format!("b{word}"));
    }
    Some(match (build, commit) {
        (Some(n), _) if n > 0 => format!("b{n}"),
        (_, Some(c)) if !c.is_empty() && c != "unknown" => format!("{word}-{c}"),
        _ => word.to_string(),
    })
}

/// Runs `binary --version` for at most 10 s and parses what it prints; `unknown` otherwise.
pub(crate) fn read_version(binary: &Path) -> String {
    let Ok(mut child) = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        return "unknown".to_string();
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let pipes: Vec<_> = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .collect();
    let readers = pipes.len();
    for mut pipe in pipes {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.by_ref().take(64 * 1024).read_to_end(&mut text);
            let _ = tx.send(String::from_utf8_lossy(&text).into_owned());
            let _ = std::io::copy(&mut pipe, &mut std::io::sink());
        });
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
        }
    }
    // A grandchild may hold the pipes open: wait for the readers a bounded time only.
    let texts: Vec<String> = (0..readers)
        .map_while(|_| rx.recv_timeout(Duration::from_secs(1)).ok())
        .collect();
    let text = texts.join("\n");
    parse_version(&text).unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn versions_of_several_builds() {
        let cases = [
            (
                "version: 0.6.0-dev (build 0, commit unknown)\nbuilt with GNU 12.2.0",
                Some("0.6.0-dev"),
            ),
            ("version: 4500 (adc5dd92)\nbuilt with cc", Some("b4500")),
            ("version: 0.6.0-dev (build 7, commit 1a2b3c)", Some("b7")),
            (
                "version: 0.6.0-dev (build 0, commit 1a2b3c)",
                Some("0.6.0-dev-1a2b3c"),
            ),
            ("line\nline", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_version(text).as_deref(), want, "{text}");
        }
    }
}
