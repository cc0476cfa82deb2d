//! orchestratord's view of the remote pools: each node's replicas, kept current from what its
//! pool-managerd answers. A pool with the same id on several nodes is one pool whose replicas are
//! the union (`<replica>@<node>`). A node silent for `unready_after` has its replicas marked
//! unready (told once: which node, since when, what ran there) and gets them back when it
//! answers; a node that refuses the token is not used. Each change is told once.

use super::discover::Endpoint;
use super::poll::{NodeReport, PollError};
use crate::pool::Pool;
use llorch_api_types::{PoolHealth, ReplicaHealth};
use logging::{keys, Secret};
use pool_managerd::Replica;
use slog::{error, info, o, warn, Logger};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    /// Not answered yet.
    Unknown,
    Answering,
    /// Silent for `unready_after`: its replicas are unready.
    Silent,
    /// It refused the token: its replicas are not used.
    Refused,
}

struct Node {
    state: NodeState,
    last_answer: Option<(Instant, SystemTime)>,
    /// Its replicas by (pool id, the replica id it gives).
    replicas: BTreeMap<(String, String), Arc<Replica>>,
    /// What was told once (an unknown pool, a mismatch, no answer yet).
    told: BTreeSet<String>,
}

pub struct View {
    log: Logger,
    pools: Vec<Arc<Pool>>,
    unready_after: Duration,
    engine_key: Option<Secret<String>>,
    nodes: BTreeMap<String, Node>,
}

fn rfc3339(at: SystemTime) -> String {
    time::OffsetDateTime::from(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl View {
    /// `pools` are the pools declared `remote`; engines are sent `engine_key`.
    pub fn new(
        log: &Logger,
        pools: Vec<Arc<Pool>>,
        unready_after: Duration,
        engine_key: Option<Secret<String>>,
    ) -> View {
        View {
            log: log.clone(),
            pools,
            unready_after,
            engine_key,
            nodes: BTreeMap::new(),
        }
    }

    #[cfg(test)]
    pub fn state(&self, node: &str) -> Option<NodeState> {
        self.nodes.get(node).map(|n| n.state)
    }

    /// Takes in one read of `endpoint` at `now`.
    pub fn apply(
        &mut self,
        endpoint: &Endpoint,
        read: Result<NodeReport, PollError>,
        now: Instant,
    ) {
        let name = endpoint.node.clone();
        let node = self.nodes.entry(name.clone()).or_insert_with(|| Node {
            state: NodeState::Unknown,
            last_answer: None,
            replicas: BTreeMap::new(),
            told: BTreeSet::new(),
        });
        let log = self.log.new(o!(keys::NODE => name.clone()));
        match read {
            Ok(report) => {
                self.answered(&name, report, now, &log);
                return;
            }
            Err(PollError::Refused(status)) if node.state != NodeState::Refused => {
                node.state = NodeState::Refused;
                let ids = unready(node);
                error!(log, "Pool-managerd at {} refused POOL_MANAGERD_TOKEN (HTTP {}): its replicas are not used ({})", name, status, listed(&ids);
                    keys::ACTION => "refuse", keys::ERROR_KIND => "UNAUTHORIZED", keys::COUNT => ids.len());
            }
            Err(PollError::Refused(_)) => {}
            Err(why) => match (node.state, node.last_answer) {
                (NodeState::Answering, Some((at, wall)))
                    if now.duration_since(at) >= self.unready_after =>
                {
                    node.state = NodeState::Silent;
                    let jobs: u32 = node.replicas.values().map(|r| r.busy()).sum();
                    let ids = unready(node);
                    let silent_ms = now.duration_since(at).as_millis() as u64;
                    warn!(log, "Node {} has not answered since {} ({} ms; {}): its {} replicas take no new tasks ({}); {} jobs were running there",
                        name, rfc3339(wall), silent_ms, why, ids.len(), listed(&ids), jobs;
                        keys::ACTION => "unready", keys::COUNT => ids.len(), keys::SILENT_MS => silent_ms, keys::JOBS_RUNNING => jobs);
                    for pool in self.pools_of(&name) {
                        pool.set_last_error(&format!(
                            "node {name} has not answered since {}",
                            rfc3339(wall)
                        ));
                    }
                }
                // Told once: a node that never answered stays quiet until it does.
                (NodeState::Unknown, _) if node.told.insert("no answer".into()) => {
                    warn!(log, "Pool-managerd at {} does not answer yet: {}", name, why;
                        keys::ACTION => "wait");
                }
                _ => {}
            },
        }
        self.settle();
    }

    fn answered(&mut self, name: &str, report: NodeReport, now: Instant, log: &Logger) {
        let node = self.nodes.get_mut(name).expect("the node was just entered");
        let was = std::mem::replace(&mut node.state, NodeState::Answering);
        let since = node.last_answer.replace((now, SystemTime::now()));
        let mut seen = BTreeSet::new();
        for health in &report.pools {
            let Some(pool) = self.pools.iter().find(|p| p.id() == health.pool_id) else {
                if node.told.insert(format!("pool {}", health.pool_id)) {
                    warn!(log, "Node {} offers pool '{}', which is not declared here with `remote = true`: not used", name, health.pool_id;
                        keys::POOL_ID => health.pool_id.clone(), keys::ACTION => "ignore");
                }
                continue;
            };
            if let Err(why) = matches_declaration(pool, health) {
                if node.told.insert(format!("mismatch {}", health.pool_id)) {
                    error!(pool.log(), "Node {} serves pool '{}' differently from its declaration here ({}): its replicas are not used", name, pool.id(), why;
                        keys::NODE => name.to_string(), keys::ACTION => "ignore");
                }
                continue;
            }
            if let Some(version) = health.engine_version.as_deref().filter(|v| *v != "unknown") {
                pool.set_engine_version(version);
            }
            for r in &health.replicas {
                let key = (pool.id().to_string(), r.replica_id.clone());
                let ready = r.ready && !health.draining;
                match node.replicas.get(&key).filter(|old| same_engine(old, r)) {
                    Some(replica) => tell_ready(replica, ready, name),
                    None => match remote_replica(pool, name, r, self.engine_key.as_ref()) {
                        Ok(replica) => {
                            tell_ready(&replica, ready, name);
                            node.replicas.insert(key.clone(), replica);
                        }
                        Err(why) => {
                            if node.told.insert(format!("replica {}", r.replica_id)) {
                                error!(log, "Replica '{}' of pool '{}' on node {} cannot be used: {}", r.replica_id, pool.id(), name, why;
                                    keys::ACTION => "ignore");
                            }
                            continue;
                        }
                    },
                }
                seen.insert(key);
            }
        }
        node.replicas.retain(|key, replica| {
            let kept = seen.contains(key);
            if !kept {
                replica.set_ready(false);
                info!(replica.log, "Replica {} left: node {} no longer offers it", replica.id, name;
                    keys::ACTION => "leave");
            }
            kept
        });
        let ready = node.replicas.values().filter(|r| r.ready()).count();
        let total = node.replicas.len();
        match (was, since) {
            (NodeState::Unknown, _) => {
                info!(log, "Pool-managerd at {} ('{}') joined: {} of {} replicas ready", name, report.node, ready, total;
                keys::ACTION => "join", keys::COUNT => total)
            }
            (NodeState::Silent, Some((at, wall))) => {
                info!(log, "Node {} answers again after {} ms of silence (since {}): {} of {} replicas ready", name,
                now.duration_since(at).as_millis() as u64, rfc3339(wall), ready, total;
                keys::ACTION => "recover", keys::COUNT => total)
            }
            (NodeState::Refused, _) => {
                info!(log, "Pool-managerd at {} accepts POOL_MANAGERD_TOKEN now: {} of {} replicas ready", name, ready, total;
                keys::ACTION => "recover", keys::COUNT => total)
            }
            _ => {}
        }
        self.settle();
    }

    /// The remote pools with replicas on `node`.
    fn pools_of(&self, node: &str) -> Vec<Arc<Pool>> {
        let ids: BTreeSet<&str> = self.nodes.get(node).map_or_else(BTreeSet::new, |n| {
            n.replicas.keys().map(|(pool, _)| pool.as_str()).collect()
        });
        self.pools
            .iter()
            .filter(|p| ids.contains(p.id()))
            .cloned()
            .collect()
    }

    /// Puts each remote pool's replicas (the union over its nodes) in service, and wakes its
    /// dispatcher: a replica may have come, gone or changed readiness.
    fn settle(&self) {
        for pool in &self.pools {
            let replicas: Vec<Arc<Replica>> = self
                .nodes
                .values()
                .flat_map(|n| n.replicas.iter())
                .filter(|((id, _), _)| id == pool.id())
                .map(|(_, r)| r.clone())
                .collect();
            let current = pool.replicas();
            let same = current.len() == replicas.len()
                && current
                    .iter()
                    .zip(&replicas)
                    .all(|(a, b)| Arc::ptr_eq(a, b));
            if same {
                pool.notify_changed();
            } else {
                pool.set_replicas(replicas);
            }
            pool.set_live(pool.replicas().iter().any(|r| r.ready()));
        }
    }
}

/// Marks a node's replicas unready; returns the ids of those that were ready.
fn unready(node: &Node) -> Vec<String> {
    node.replicas
        .values()
        .filter(|r| r.ready())
        .map(|r| {
            r.set_ready(false);
            r.id.clone()
        })
        .collect()
}

fn listed(ids: &[String]) -> String {
    if ids.is_empty() {
        "none was ready".into()
    } else {
        ids.join(", ")
    }
}

fn matches_declaration(pool: &Pool, health: &PoolHealth) -> Result<(), String> {
    if health.engine != pool.engine() {
        return Err(format!(
            "engine {} there, {} here",
            health.engine,
            pool.engine()
        ));
    }
    match &health.model_ref {
        Some(model) if *model != pool.model_ref() => {
            Err(format!("model {model} there, {} here", pool.model_ref()))
        }
        _ => Ok(()),
    }
}

/// A replica still reached where it was, with as many slots.
fn same_engine(replica: &Replica, health: &ReplicaHealth) -> bool {
    replica.url == health.url && replica.slots == health.slots
}

fn tell_ready(replica: &Replica, ready: bool, node: &str) {
    if replica.ready() == ready {
        return;
    }
    replica.set_ready(ready);
    if ready {
        info!(replica.log, "Replica {} on node {} is ready", replica.id, node; keys::ACTION => "ready");
    } else {
        warn!(replica.log, "Replica {} on node {} is not ready and takes no new leases", replica.id, node;
            keys::ACTION => "unready");
    }
}

/// A replica of `pool` for the engine `health` names on `node`: `<replica>@<node>`, narrating
/// with `node`, talking to the engine straight (tokens never pass through pool-managerd).
fn remote_replica(
    pool: &Pool,
    node: &str,
    health: &ReplicaHealth,
    key: Option<&Secret<String>>,
) -> Result<Arc<Replica>, String> {
    let url = health
        .url
        .clone()
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .ok_or("it has no engine URL")?;
    if health.slots == 0 {
        return Err("it has no slots".into());
    }
    let id = format!("{}@{node}", health.replica_id);
    let port = url
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok());
    let log = logging::replica(&pool.log(), &id, port).new(o!(keys::NODE => node.to_string()));
    let mut adapter = llamacpp_http::LlamaCppAdapter::new(url.clone()).with_log(&log);
    if let Some(key) = key {
        adapter = adapter.with_api_key(key)?;
    }
    let replica = Replica::new(id, Arc::new(adapter), health.slots, log).with_url(url);
    // Told ready (or not) by the caller, once it knows.
    replica.set_ready(false);
    Ok(Arc::new(replica))
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
