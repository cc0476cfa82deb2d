//! Stopping on SIGTERM or SIGINT, for the daemons. The handlers are installed when
//! [`stop_signal`] is called (inside the runtime), not when its future is first polled: a signal
//! that comes while a daemon is still starting up then stops it gracefully instead of killing it.

use tokio::signal::unix::{signal, Signal, SignalKind};

/// Resolves on SIGTERM or SIGINT.
pub fn stop_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    let term = signal(SignalKind::terminate()).ok();
    let interrupt = signal(SignalKind::interrupt()).ok();
    async move {
        tokio::select! {
            _ = received(term) => {}
            _ = received(interrupt) => {}
        }
    }
}

async fn received(stream: Option<Signal>) {
    match stream {
        Some(mut stream) => {
            stream.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}
