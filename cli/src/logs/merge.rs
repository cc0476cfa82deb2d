//! Merging several logs by time: each source offers its next line, and the one with the
//! earliest time goes first. A line without a time (not a llama-orch record) takes the time of
//! the record before it in its source, so it stays where it was written. Memory is one line
//! per source.

use super::source::{Next, Source};
use crate::error::CliError;
use logging::replay::{parse_line, Line};
use time::OffsetDateTime;

struct Head {
    key: Option<OffsetDateTime>,
    line: Line,
}

pub struct Merger {
    sources: Vec<Source>,
    heads: Vec<Option<Head>>,
    last_time: Vec<Option<OffsetDateTime>>,
    done: Vec<bool>,
}

impl Merger {
    pub fn new(sources: Vec<Source>) -> Merger {
        let n = sources.len();
        Merger {
            sources,
            heads: (0..n).map(|_| None).collect(),
            last_time: vec![None; n],
            done: vec![false; n],
        }
    }

    /// True when no source will give another line.
    pub fn all_done(&self) -> bool {
        self.done.iter().all(|d| *d) && self.heads.iter().all(Option::is_none)
    }

    /// Hands every line the sources have now to `emit`, earliest first; with `wait`, stdin is
    /// read to its end. Returns whether there was any.
    pub fn merge_available(
        &mut self,
        wait: bool,
        emit: &mut impl FnMut(Line) -> Result<(), CliError>,
    ) -> Result<bool, CliError> {
        let mut idle = vec![false; self.sources.len()];
        let mut any = false;
        loop {
            for (i, source) in self.sources.iter_mut().enumerate() {
                if self.heads[i].is_some() || self.done[i] || idle[i] {
                    continue;
                }
                match source.next(wait)? {
                    Next::Line(text) => self.heads[i] = Some(head(&mut self.last_time[i], text)),
                    Next::Idle => idle[i] = true,
                    Next::Done => self.done[i] = true,
                }
            }
            let earliest = (0..self.heads.len())
                .filter_map(|i| self.heads[i].as_ref().map(|h| (h.key, i)))
                .min();
            let Some((_, i)) = earliest else {
                return Ok(any);
            };
            if let Some(head) = self.heads[i].take() {
                any = true;
                emit(head.line)?;
            }
        }
    }
}

/// The line parsed, keyed by its time or else by the time of its source's record before it.
fn head(last_time: &mut Option<OffsetDateTime>, text: String) -> Head {
    let line = parse_line(&text);
    if let Line::Record(record) = &line {
        if let Some(ts) = record.ts() {
            *last_time = Some(ts);
        }
    }
    Head {
        key: *last_time,
        line,
    }
}
