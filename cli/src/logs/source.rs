//! One input of `llama-orch logs`: a file (followed like `tail -F`: it may appear late, be
//! truncated or replaced) or stdin (read by a thread, so waiting on it never blocks the files).
//! Lines are cut at `MAX_LINE` bytes so a log without newlines cannot take all memory; the
//! pieces are all shown.

use crate::error::CliError;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, TryRecvError};

/// The longest line kept whole, in bytes.
pub const MAX_LINE: usize = 1 << 20;

/// What a source has now.
#[derive(Debug, PartialEq)]
pub enum Next {
    Line(String),
    /// Nothing now; more may come (a followed file).
    Idle,
    /// Nothing more will come.
    Done,
}

pub struct Source {
    kind: Kind,
    follow: bool,
}

enum Kind {
    File(FileSource),
    Stdin(Receiver<Result<Vec<u8>, String>>),
}

struct FileSource {
    path: PathBuf,
    reader: Option<BufReader<File>>,
    /// Device and inode of the open file: another one at the path means it was replaced.
    identity: (u64, u64),
    position: u64,
    partial: Vec<u8>,
}

impl Source {
    /// `-` is stdin. A missing file is an error unless following (then it is waited for).
    pub fn open(path: &Path, follow: bool) -> Result<Source, CliError> {
        if path == Path::new("-") {
            return Ok(Source {
                kind: Kind::Stdin(stdin_lines()),
                follow,
            });
        }
        let mut file = FileSource {
            path: path.to_path_buf(),
            reader: None,
            identity: (0, 0),
            position: 0,
            partial: Vec::new(),
        };
        if let Err(e) = file.reopen() {
            if !follow || e.kind() != std::io::ErrorKind::NotFound {
                return Err(CliError::Other(format!(
                    "cannot read {}: {e}",
                    logging::escape_for_terminal(&path.display().to_string())
                )));
            }
        }
        Ok(Source {
            kind: Kind::File(file),
            follow,
        })
    }

    /// The next line; with `wait`, stdin is waited on (files never block).
    pub fn next(&mut self, wait: bool) -> Result<Next, CliError> {
        match &mut self.kind {
            Kind::Stdin(lines) => {
                let received = if wait {
                    lines.recv().map_err(|_| TryRecvError::Disconnected)
                } else {
                    lines.try_recv()
                };
                match received {
                    Ok(Ok(bytes)) => Ok(Next::Line(text_of(bytes))),
                    Ok(Err(e)) => Err(CliError::Other(format!("cannot read stdin: {e}"))),
                    Err(TryRecvError::Empty) => Ok(Next::Idle),
                    Err(TryRecvError::Disconnected) => Ok(Next::Done),
                }
            }
            Kind::File(file) => match file.read_line(self.follow) {
                Ok(Some(bytes)) => Ok(Next::Line(text_of(bytes))),
                Ok(None) if self.follow => {
                    file.check_replaced();
                    Ok(Next::Idle)
                }
                Ok(None) => Ok(Next::Done),
                Err(e) => Err(CliError::Other(format!(
                    "cannot read {}: {e}",
                    logging::escape_for_terminal(&file.path.display().to_string())
                ))),
            },
        }
    }
}

fn text_of(mut bytes: Vec<u8>) -> String {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Reads on into `partial`, up to its newline or `MAX_LINE` bytes; the count read (0 at the end).
fn read_piece(reader: &mut impl BufRead, partial: &mut Vec<u8>) -> std::io::Result<usize> {
    let room = (MAX_LINE - partial.len()) as u64;
    (&mut *reader).take(room).read_until(b'\n', partial)
}

/// The line in `partial` when it is whole, a `MAX_LINE` piece, or the rest at the end.
fn complete(partial: &mut Vec<u8>, at_end: bool) -> Option<Vec<u8>> {
    let whole = partial.last() == Some(&b'\n') || partial.len() >= MAX_LINE;
    (whole || (at_end && !partial.is_empty())).then(|| std::mem::take(partial))
}

impl FileSource {
    fn reopen(&mut self) -> std::io::Result<()> {
        let file = File::open(&self.path)?;
        let meta = file.metadata()?;
        self.identity = (meta.dev(), meta.ino());
        self.reader = Some(BufReader::new(file));
        self.position = 0;
        self.partial.clear();
        Ok(())
    }

    /// A complete line; at the end of the file, a last line without newline only when not
    /// following (a followed file's last line may still be being written).
    fn read_line(&mut self, follow: bool) -> std::io::Result<Option<Vec<u8>>> {
        let Some(reader) = &mut self.reader else {
            return Ok(None);
        };
        loop {
            let read = read_piece(reader, &mut self.partial)?;
            self.position += read as u64;
            if let Some(line) = complete(&mut self.partial, read == 0 && !follow) {
                return Ok(Some(line));
            }
            if read == 0 {
                return Ok(None);
            }
        }
    }

    /// At the end of a followed file: starts again from the top of a file that was replaced
    /// or truncated, or that has appeared.
    fn check_replaced(&mut self) {
        let Ok(meta) = std::fs::metadata(&self.path) else {
            return;
        };
        let replaced = (meta.dev(), meta.ino()) != self.identity;
        let truncated = meta.len() < self.position;
        if self.reader.is_none() || replaced || truncated {
            let _ = self.reopen();
        }
    }
}

/// Stdin's lines, read by their own thread (bounded channel: it reads ahead at most 256 lines).
fn stdin_lines() -> Receiver<Result<Vec<u8>, String>> {
    let (tx, rx) = mpsc::sync_channel(256);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut partial = Vec::new();
        loop {
            match read_piece(&mut stdin, &mut partial) {
                Ok(read) => {
                    if let Some(line) = complete(&mut partial, read == 0) {
                        if tx.send(Ok(line)).is_err() {
                            return;
                        }
                    }
                    if read == 0 {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_followed_file_gives_complete_lines_and_survives_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, "one\ntw").unwrap();
        let mut source = Source::open(&path, true).unwrap();
        assert_eq!(source.next(false).unwrap(), Next::Line("one".into()));
        assert_eq!(source.next(false).unwrap(), Next::Idle);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"o\r\n").unwrap();
        assert_eq!(source.next(false).unwrap(), Next::Line("two".into()));
        std::fs::write(&path, "new\n").unwrap();
        assert_eq!(source.next(false).unwrap(), Next::Idle);
        assert_eq!(source.next(false).unwrap(), Next::Line("new".into()));
    }

    #[test]
    fn without_follow_the_last_line_needs_no_newline_and_long_lines_come_in_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.log");
        let long = "x".repeat(MAX_LINE + 5);
        std::fs::write(&path, format!("{long}\nlast")).unwrap();
        let mut source = Source::open(&path, false).unwrap();
        assert_eq!(source.next(true).unwrap(), Next::Line("x".repeat(MAX_LINE)));
        assert_eq!(source.next(true).unwrap(), Next::Line("xxxxx".into()));
        assert_eq!(source.next(true).unwrap(), Next::Line("last".into()));
        assert_eq!(source.next(true).unwrap(), Next::Done);
        assert!(Source::open(&dir.path().join("missing"), false).is_err());
    }
}
