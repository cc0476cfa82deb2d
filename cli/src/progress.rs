//! Progress for long waits on stderr: an indicatif spinner on a terminal, which becomes a bar
//! with bytes while something downloads; elsewhere one plain line per change of message, so
//! logs of scripted runs still say what happened without a line per byte.

use indicatif::{ProgressBar, ProgressStyle};
use std::cell::{Cell, RefCell};
use std::io::IsTerminal;
use std::time::Duration;

const SPINNER: &str = "{spinner} {msg} ({elapsed})";
const BAR: &str = "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)";
const BYTES: &str = "{spinner} {msg} {bytes} ({bytes_per_sec})";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Look {
    Spinner,
    Bar,
    Bytes,
}

pub struct Progress {
    spinner: Option<ProgressBar>,
    look: Cell<Look>,
    last: RefCell<String>,
}

impl Progress {
    pub fn new() -> Progress {
        let spinner = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            restyle(&bar, SPINNER);
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            spinner,
            look: Cell::new(Look::Spinner),
            last: RefCell::new(String::new()),
        }
    }

    /// Shows `message` (already safe for a terminal); a plain line only when it changed.
    pub fn note(&self, message: &str) {
        self.show(Look::Spinner, message);
    }

    /// Shows `message` with `done` of `total` bytes: a bar on a terminal (a byte count when the
    /// total is unknown); off a terminal only `message`, once, as [`Progress::note`] does.
    pub fn transfer(&self, message: &str, done: u64, total: Option<u64>) {
        let look = if total.is_some() {
            Look::Bar
        } else {
            Look::Bytes
        };
        if let (Some(bar), Some(total)) = (&self.spinner, total) {
            bar.set_length(total);
        }
        self.show(look, message);
        if let Some(bar) = &self.spinner {
            bar.set_position(done);
        }
    }

    fn show(&self, look: Look, message: &str) {
        let changed = *self.last.borrow() != message;
        if changed {
            message.clone_into(&mut self.last.borrow_mut());
        }
        let Some(bar) = &self.spinner else {
            if changed {
                crate::console::say(message);
            }
            return;
        };
        // The new message first, so no frame shows it in the old look or the reverse.
        if changed {
            bar.set_message(message.to_string());
        }
        if self.look.replace(look) != look {
            restyle(
                bar,
                match look {
                    Look::Spinner => SPINNER,
                    Look::Bar => BAR,
                    Look::Bytes => BYTES,
                },
            );
            bar.reset();
        }
    }

    /// Removes the spinner (nothing to do for plain lines).
    pub fn clear(&self) {
        if let Some(bar) = &self.spinner {
            bar.finish_and_clear();
        }
    }
}

fn restyle(bar: &ProgressBar, template: &str) {
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}
