//! Writing to the user: stdout for results (a closed pipe is an error of its own, never a
//! panic), stderr for messages (a closed stderr is ignored), and whether colour is wanted.

use crate::error::CliError;
use std::io::{IsTerminal, Write};

/// Writes `text` to stdout and flushes it.
pub fn print(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => CliError::StdoutClosed,
            _ => CliError::Other(format!("cannot write to stdout: {e}")),
        })
}

/// `llama-orch: <message>` on stderr.
pub fn say(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "llama-orch: {message}");
}

/// Colour on stdout: on a terminal, or when `CLICOLOR_FORCE` asks for it (set, not "0");
/// never with `NO_COLOR` set (to anything but "").
pub fn colour_on_stdout() -> bool {
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if set("NO_COLOR").is_some() {
        return false;
    }
    let forced = set("CLICOLOR_FORCE").is_some_and(|v| v != "0");
    forced || std::io::stdout().is_terminal()
}
