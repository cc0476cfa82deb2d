//! The session step of admission (`Sessions::begin_turn`) with no live sessions and with 100 000,
//! side by side with the full scan it replaced (every admission walked every session), to show
//! that admission no longer costs more as sessions pile up. Each iteration opens a new session,
//! settles its turn and ends it, so the table stays at its size. Run: `cargo xtask bench`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use orchestratord::sessions::Sessions;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const LIVE: usize = 100_000;

fn with_live_sessions(n: usize) -> std::sync::Arc<Sessions> {
    let sessions = Sessions::with_tokens_budget(Some(1_000_000));
    for i in 0..n {
        if let Ok(turn) = sessions.begin_turn(&format!("live-{i}"), 16) {
            turn.settle(16);
        }
    }
    sessions
}

fn admission(c: &mut Criterion) {
    let mut group = c.benchmark_group("admission_session_step");
    for live in [0, LIVE] {
        let sessions = with_live_sessions(live);
        let mut next = 0u64;
        group.bench_function(format!("begin_turn/{live}_live_sessions"), |b| {
            b.iter(|| {
                next += 1;
                let id = format!("new-{next}");
                if let Ok(turn) = sessions.begin_turn(&id, 16) {
                    turn.settle(16);
                }
                // Keeps the table at `live` sessions, as in a steady state.
                sessions.end(&id);
            })
        });
    }
    // What every admission did before: a retain over every live session under the lock.
    let ttl = Duration::from_secs(600);
    let mut table: HashMap<String, Instant> = (0..LIVE)
        .map(|i| (format!("live-{i}"), Instant::now()))
        .collect();
    group.bench_function(format!("full_scan_before/{LIVE}_live_sessions"), |b| {
        b.iter_batched(
            Instant::now,
            |now| table.retain(|_, used| now.duration_since(*used) < ttl),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, admission);
criterion_main!(benches);
