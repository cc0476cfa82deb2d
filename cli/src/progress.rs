//! Progress for long waits on stderr: an indicatif spinner on a terminal; elsewhere one plain
//! line per change, so logs of scripted runs still say what happened.

use indicatif::{ProgressBar, ProgressStyle};
use std::cell::RefCell;
use std::io::IsTerminal;
use std::time::Duration;

pub struct Progress {
    spinner: Option<ProgressBar>,
    last: RefCell<String>,
}

impl Progress {
    pub fn new() -> Progress {
        let spinner = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            spinner,
            last: RefCell::new(String::new()),
        }
    }

    /// Shows `message` (already safe for a terminal); a plain line only when it changed.
    pub fn note(&self, message: &str) {
        if *self.last.borrow() == message {
            return;
        }
        message.clone_into(&mut self.last.borrow_mut());
        match &self.spinner {
            Some(bar) => bar.set_message(message.to_string()),
            None => crate::console::say(message),
        }
    }

    /// Removes the spinner (nothing to do for plain lines).
    pub fn clear(&self) {
        if let Some(bar) = &self.spinner {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}
