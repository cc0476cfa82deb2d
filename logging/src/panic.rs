//! A panic anywhere is narrated at critical (thread, location, payload, and the context of the
//! current scoped logger) and flushed before the process unwinds or aborts.

use crate::keys;
use crate::router::Router;
use std::fmt::Write;
use std::sync::{Once, RwLock, Weak};
use std::time::Duration;

static FLUSHER: RwLock<Option<Weak<Router>>> = RwLock::new(None);

pub(crate) const WORKER_THREAD: &str = "llorch-log";

pub(crate) fn set_flusher(router: Weak<Router>) {
    if let Ok(mut f) = FLUSHER.write() {
        *f = Some(router);
    }
}

pub(crate) fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let thread = std::thread::current();
            let thread_name = thread.name().unwrap_or("unnamed").to_string();
            let payload = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-text payload".to_string());
            let location = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_default();
            if thread_name == WORKER_THREAD {
                // The worker cannot narrate its own panic through its own channel.
                let line = worker_panic_line(time::OffsetDateTime::now_utc(), &payload, &location);
                let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
                return;
            }
            slog_scope::with_logger(|log| {
                slog::crit!(log, "Panicked in thread '{}': {}", thread_name, payload;
                    keys::THREAD => &thread_name, keys::LOCATION => &location)
            });
            {
                let router = FLUSHER.read().ok().and_then(|f| f.as_ref()?.upgrade());
                if let Some(router) = router {
                    router.flush_within(Duration::from_secs(2));
                }
            }
        }));
    });
}

/// The JSON line written straight to stderr when the log worker itself panics, with the keys
/// of every other record (`ts`, `level`, `msg`) first.
fn worker_panic_line(now: time::OffsetDateTime, payload: &str, location: &str) -> String {
    let mut line = String::with_capacity(128 + payload.len() + location.len());
    line.push_str("{\"ts\":");
    push_json_string(&mut line, &crate::timestamp::rfc3339(now));
    line.push_str(",\"level\":\"critical\",\"msg\":");
    push_json_string(&mut line, &format!("The log worker panicked: {payload}"));
    line.push_str(",\"thread\":");
    push_json_string(&mut line, WORKER_THREAD);
    line.push_str(",\"location\":");
    push_json_string(&mut line, location);
    line.push_str("}\n");
    line
}

/// `text` as a JSON string (RFC 8259 §7): quote, backslash and C0 controls escaped, the rest
/// as UTF-8. Not `escape_debug`, whose `\'` and `\u{..}` are not JSON.
fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_panic_line_is_json_for_any_payload() {
        let now = time::OffsetDateTime::UNIX_EPOCH;
        for payload in [
            "plain",
            "it's \"quoted\" and C:\\back\\slashed",
            "ctl \u{0}\u{1}\u{1b}[2J\n\r\t\u{7f}\u{9b} end",
            "non-ASCII: naïve 日本語 \u{202e} \u{2028} 🦀",
            "",
        ] {
            let line = worker_panic_line(now, payload, "src/x'y\".rs:1:2");
            assert!(line.ends_with("}\n") && !line[..line.len() - 1].contains('\n'));
            let value: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
            assert_eq!(value["level"], "critical");
            assert_eq!(value["ts"], "1970-01-01T00:00:00.000000Z");
            assert_eq!(value["thread"], WORKER_THREAD);
            assert_eq!(value["location"], "src/x'y\".rs:1:2");
            assert_eq!(
                value["msg"].as_str(),
                Some(format!("The log worker panicked: {payload}").as_str())
            );
        }
    }
}
