//! Where `submit` writes: tokens to stdout as they arrive (raw for pipes; on a terminal, control
//! characters other than newline and tab are shown escaped), or each event as a JSON line; and
//! the one-line summary on stderr.

use crate::error::CliError;
use std::io::{IsTerminal, Stdout, Write};
use std::time::{Duration, Instant};

pub struct Output {
    stdout: Stdout,
    json: bool,
    terminal: bool,
    /// Whether the last byte written to a terminal ended a line.
    at_line_start: bool,
}

impl Output {
    pub fn new(json: bool) -> Output {
        let stdout = std::io::stdout();
        let terminal = stdout.is_terminal();
        Output {
            stdout,
            json,
            terminal,
            at_line_start: true,
        }
    }

    pub fn json(&self) -> bool {
        self.json
    }

    /// `{"event": name, "data": …}`: the data as JSON when it is, as a string otherwise.
    pub fn event(&mut self, name: &str, data: &str) -> Result<(), CliError> {
        let data = serde_json::from_str(data)
            .unwrap_or_else(|_| serde_json::Value::String(data.to_string()));
        let line = serde_json::json!({ "event": name, "data": data });
        self.write(&format!("{line}\n"))
    }

    pub fn token(&mut self, text: &str) -> Result<(), CliError> {
        if self.terminal {
            let shown: String = text.chars().map(shown_on_terminal).collect();
            self.write(&shown)
        } else {
            self.write(text)
        }
    }

    /// Ends the tokens' last line on a terminal, so the summary starts on its own.
    pub fn finish(&mut self) -> Result<(), CliError> {
        if self.terminal && !self.at_line_start {
            self.write("\n")?;
        }
        Ok(())
    }

    fn write(&mut self, text: &str) -> Result<(), CliError> {
        if text.is_empty() {
            return Ok(());
        }
        let mut out = self.stdout.lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::BrokenPipe => CliError::StdoutClosed,
                _ => CliError::Other(format!("cannot write to stdout: {e}")),
            })?;
        self.at_line_start = text.ends_with('\n');
        Ok(())
    }
}

/// Newlines, tabs and backslashes as they are; what could move the cursor, recolour or reorder
/// the terminal (controls, bidi marks) as the pretty drain writes it.
fn shown_on_terminal(c: char) -> String {
    let text = c.to_string();
    if matches!(c, '\n' | '\t' | '\\') {
        text
    } else {
        logging::escape_for_terminal(&text).into_owned()
    }
}

/// What the user waited for, measured here: from the admission request to the first token and
/// to the end.
pub struct Timing {
    submitted: Instant,
    first_token: Option<Instant>,
    pub tokens: u32,
}

impl Timing {
    pub fn start() -> Timing {
        Timing {
            submitted: Instant::now(),
            first_token: None,
            tokens: 0,
        }
    }

    pub fn token(&mut self) {
        self.tokens += 1;
        self.first_token.get_or_insert_with(Instant::now);
    }

    /// `32 tokens, first token after 25 ms, 177.8 tokens/s, stopped at max_tokens; job <id>`.
    pub fn summary(&self, stop: &str, job_id: &str) -> String {
        let end = Instant::now();
        let first = match self.first_token {
            Some(at) => format!("first token after {} ms", millis(at - self.submitted)),
            None => "no token".to_string(),
        };
        let rate = match self.first_token {
            Some(at) if self.tokens > 1 && end > at => {
                let seconds = (end - at).as_secs_f64();
                format!("{:.1} tokens/s", f64::from(self.tokens - 1) / seconds)
            }
            _ => "- tokens/s".to_string(),
        };
        format!(
            "{} tokens, {first}, {rate}, {stop}; job {job_id}",
            self.tokens
        )
    }
}

fn millis(d: Duration) -> u128 {
    d.as_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_output_keeps_lines_and_neutralises_escapes() {
        let shown: String = "a\n\tb\x1b[2Jc\u{9b}\\\u{202e}"
            .chars()
            .map(shown_on_terminal)
            .collect();
        assert_eq!(shown, "a\n\tb\\u{1b}[2Jc\\u{9b}\\\\u{202e}");
    }

    #[test]
    fn the_summary_names_count_first_token_rate_and_job() {
        let mut timing = Timing::start();
        timing.token();
        timing.token();
        let text = timing.summary("stopped at eos", "J");
        assert!(text.starts_with("2 tokens, first token after "), "{text}");
        assert!(text.contains(" tokens/s, stopped at eos; job J"), "{text}");
        let text = Timing::start().summary("canceled", "J");
        assert_eq!(text, "0 tokens, no token, - tokens/s, canceled; job J");
    }
}
