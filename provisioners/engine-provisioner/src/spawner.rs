//! One long-lived thread that forks every engine. The parent-death signal
//! (`PR_SET_PDEATHSIG`) fires when the *thread* that forked the child ends, not the process: an
//! engine forked from a tokio blocking thread or a test thread would be killed when that thread
//! retires. This thread lives as long as the process.

use std::sync::mpsc;
use std::sync::OnceLock;

type Job = Box<dyn FnOnce() + Send>;

fn jobs() -> Option<&'static mpsc::Sender<Job>> {
    static JOBS: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();
    JOBS.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("llorch-engine-spawner".into())
            .spawn(move || {
                for job in rx {
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            })
            .ok()
            .map(|_| tx)
    })
    .as_ref()
}

/// Runs `f` on the spawner thread and returns its result (on this thread when the spawner could
/// not be started); `None` when `f` panicked.
pub(crate) fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let Some(jobs) = jobs() else {
        return Some(f());
    };
    let (tx, rx) = mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    if let Err(mpsc::SendError(job)) = jobs.send(job) {
        job();
    }
    rx.recv().ok()
}
