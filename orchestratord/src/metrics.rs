//! The metrics of `reference/api-contract.md` §4, exposed with prometheus-client.

use crate::pool::Pool;
use llorch_api_types::Priority;
use logging::LogStats;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EnginePoolPriority {
    pub engine: String,
    pub pool_id: String,
    pub priority: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Started {
    pub engine: String,
    pub engine_version: String,
    pub pool_id: String,
    pub replica_id: String,
    pub priority: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Canceled {
    pub engine: String,
    pub pool_id: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Rejected {
    pub engine: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EnginePoolReplica {
    pub engine: String,
    pub pool_id: String,
    pub replica_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EnginePolicy {
    pub engine: String,
    pub policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabel {
    pub pool_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolReplicaReason {
    pub pool_id: String,
    pub replica_id: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabel {
    pub node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LevelLabel {
    pub level: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkReason {
    pub sink: String,
    pub reason: String,
}

type Histograms = Family<EnginePoolPriority, Histogram, fn() -> Histogram>;

fn latency_ms() -> Histogram {
    Histogram::new([
        1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    ])
}

pub struct Metrics {
    registry: Registry,
    pub tasks_enqueued: Family<EnginePoolPriority, Counter>,
    pub tasks_started: Family<Started, Counter>,
    pub tasks_canceled: Family<Canceled, Counter>,
    pub tasks_rejected: Family<Rejected, Counter>,
    pub queue_depth: Family<EnginePoolPriority, Gauge>,
    pub latency_first_token_ms: Histograms,
    pub latency_decode_ms: Histograms,
    pub tokens_in: Family<EnginePoolReplica, Counter>,
    pub tokens_out: Family<EnginePoolReplica, Counter>,
    pub admission_backpressure_events: Family<EnginePolicy, Counter>,
    pub pool_ready: Family<PoolLabel, Gauge>,
    pub active_leases: Family<PoolLabel, Gauge>,
    pub replica_restarts: Family<PoolReplicaReason, Counter>,
    pool_managerd_refusals: Family<NodeLabel, Counter>,
    log_records_dropped: Family<LevelLabel, Counter>,
    log_records_lost: Family<SinkReason, Counter>,
    log_sink_errors: Counter,
    log_stats: Option<Arc<LogStats>>,
    scrape: std::sync::Mutex<()>,
}

impl Metrics {
    pub fn new(log_stats: Option<Arc<LogStats>>) -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            tasks_enqueued: Family::default(),
            tasks_started: Family::default(),
            tasks_canceled: Family::default(),
            tasks_rejected: Family::default(),
            queue_depth: Family::default(),
            latency_first_token_ms: Family::new_with_constructor(latency_ms),
            latency_decode_ms: Family::new_with_constructor(latency_ms),
            tokens_in: Family::default(),
            tokens_out: Family::default(),
            admission_backpressure_events: Family::default(),
            pool_ready: Family::default(),
            active_leases: Family::default(),
            replica_restarts: Family::default(),
            pool_managerd_refusals: Family::default(),
            log_records_dropped: Family::default(),
            log_records_lost: Family::default(),
            log_sink_errors: Counter::default(),
            log_stats,
            scrape: std::sync::Mutex::new(()),
            registry: Registry::default(),
        };
        // prometheus-client appends `_total` to counter names.
        registry.register(
            "tasks_enqueued",
            "Tasks admitted into a queue",
            m.tasks_enqueued.clone(),
        );
        registry.register(
            "tasks_started",
            "Tasks placed on a replica",
            m.tasks_started.clone(),
        );
        registry.register(
            "tasks_canceled",
            "Tasks canceled, by reason",
            m.tasks_canceled.clone(),
        );
        registry.register(
            "tasks_rejected",
            "Tasks refused at admission, by reason",
            m.tasks_rejected.clone(),
        );
        registry.register(
            "queue_depth",
            "Tasks waiting in a queue",
            m.queue_depth.clone(),
        );
        registry.register(
            "latency_first_token_ms",
            "Milliseconds from admission to the first token",
            m.latency_first_token_ms.clone(),
        );
        registry.register(
            "latency_decode_ms",
            "Milliseconds from the first token to the end",
            m.latency_decode_ms.clone(),
        );
        registry.register(
            "tokens_in",
            "Prompt tokens sent to engines",
            m.tokens_in.clone(),
        );
        registry.register(
            "tokens_out",
            "Tokens streamed from engines",
            m.tokens_out.clone(),
        );
        registry.register(
            "admission_backpressure_events",
            "Admissions refused or evicted because a queue was full",
            m.admission_backpressure_events.clone(),
        );
        registry.register(
            "pool_ready",
            "1 when the pool has a ready replica",
            m.pool_ready.clone(),
        );
        registry.register(
            "active_leases",
            "Replica slots in use",
            m.active_leases.clone(),
        );
        registry.register(
            "replica_restarts",
            "Engine process restarts, by reason",
            m.replica_restarts.clone(),
        );
        registry.register(
            "pool_managerd_refusals",
            "Reads of a pool-managerd it refused (a wrong POOL_MANAGERD_TOKEN), by node",
            m.pool_managerd_refusals.clone(),
        );
        registry.register(
            "log_records_dropped",
            "Narration records lost to log channel overflow",
            m.log_records_dropped.clone(),
        );
        registry.register(
            "log_records_lost",
            "Narration records a sink could not write, by sink and reason (sink \"all\": lost before any sink)",
            m.log_records_lost.clone(),
        );
        registry.register(
            "log_sink_errors",
            "Failed writes of the log sinks",
            m.log_sink_errors.clone(),
        );
        Metrics { registry, ..m }
    }

    /// A pool-managerd refused a read (a wrong token).
    pub fn count_pool_managerd_refusal(&self, node: &str) {
        self.pool_managerd_refusals
            .get_or_create(&NodeLabel {
                node: node.to_string(),
            })
            .inc();
    }

    pub fn count_cancel(&self, pool: &Pool, reason: &str) {
        self.tasks_canceled
            .get_or_create(&Canceled {
                engine: pool.engine().into(),
                pool_id: pool.id().into(),
                reason: reason.into(),
            })
            .inc();
    }

    /// The OpenMetrics text of every metric (TYPE lines even before any sample). Gauges are read
    /// from the pools at scrape time, so they cannot drift from the queues they describe.
    pub fn render(&self, pools: &[Arc<Pool>]) -> String {
        let _one_scrape_at_a_time = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        for pool in pools {
            for priority in [Priority::Interactive, Priority::Batch] {
                self.queue_depth
                    .get_or_create(&EnginePoolPriority {
                        engine: pool.engine().into(),
                        pool_id: pool.id().into(),
                        priority: priority.as_str().into(),
                    })
                    .set(pool.queue_depth(priority) as i64);
            }
            let pool_label = PoolLabel {
                pool_id: pool.id().into(),
            };
            self.active_leases
                .get_or_create(&pool_label)
                .set(i64::from(pool.active_leases()));
            self.pool_ready
                .get_or_create(&pool_label)
                .set(i64::from(pool.ready()));
        }
        if let Some(stats) = &self.log_stats {
            for level in [slog::Level::Debug, slog::Level::Trace] {
                let counter = self.log_records_dropped.get_or_create(&LevelLabel {
                    level: logging::level_word(level).to_string(),
                });
                catch_up(&counter, stats.dropped(level));
            }
            for (sink, reason, lost) in stats.lost() {
                let counter = self.log_records_lost.get_or_create(&SinkReason {
                    sink: sink.to_string(),
                    reason: reason.as_str().to_string(),
                });
                catch_up(&counter, lost);
            }
            catch_up(&self.log_sink_errors, stats.sink_errors());
        }
        for pool in pools {
            for (replica_id, reason, count) in pool.restarts() {
                let counter = self.replica_restarts.get_or_create(&PoolReplicaReason {
                    pool_id: pool.id().into(),
                    replica_id,
                    reason: reason.into(),
                });
                catch_up(&counter, count);
            }
        }
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Moves a counter that mirrors one kept elsewhere up to that count.
fn catch_up(counter: &Counter, now: u64) {
    let seen = counter.get();
    if now > seen {
        counter.inc_by(now - seen);
    }
}
