//! A panic anywhere is narrated at critical (thread, location, payload, and the context of the
//! current scoped logger) and flushed before the process unwinds or aborts.

use crate::keys;
use crate::router::Router;
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
                let line = format!(
                    "{{\"level\":\"critical\",\"msg\":\"The log worker panicked: {}\",\"location\":\"{}\"}}\n",
                    payload.escape_debug(),
                    location.escape_debug()
                );
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
