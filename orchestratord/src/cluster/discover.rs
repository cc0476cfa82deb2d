//! Which pool-managerd daemons there are: the fixed URLs of `[cluster] pool_managers`, and every
//! address the `discover` name resolves to (resolved again on each round, so a daemon that joins
//! a headless Service is found without a restart). A node is named by its endpoint (`host:port`),
//! which is unique even when two daemons share a machine.

use super::config::{split_host_port, ClusterConfig};
use std::time::Duration;

/// One pool-managerd control API.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    /// `host:port`: the `node` of its replicas' narration.
    pub node: String,
    /// The control API's base URL, without a trailing `/`.
    pub url: String,
}

impl Endpoint {
    /// The endpoint of a configured URL (validated: http(s) with a host); credentials, path
    /// and query are not part of its name.
    pub fn of_url(url: &str) -> Endpoint {
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        let node = authority.rsplit('@').next().unwrap_or(authority);
        Endpoint {
            node: node.to_string(),
            url: url.trim_end_matches('/').to_string(),
        }
    }

    fn of_addr(addr: std::net::SocketAddr) -> Endpoint {
        Endpoint {
            node: addr.to_string(),
            url: format!("http://{addr}"),
        }
    }
}

/// Every address `name` (`host:port`) resolves to, within `bound`.
pub async fn resolve(name: &str, bound: Duration) -> Result<Vec<Endpoint>, String> {
    let (host, port) =
        split_host_port(name).ok_or_else(|| format!("{name:?} is not `host:port`"))?;
    let addrs = tokio::time::timeout(bound, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| format!("resolving {name} took longer than {} ms", bound.as_millis()))?
        .map_err(|e| format!("cannot resolve {name}: {e}"))?;
    let mut endpoints: Vec<Endpoint> = addrs.map(Endpoint::of_addr).collect();
    endpoints.sort();
    endpoints.dedup();
    Ok(endpoints)
}

/// The fixed endpoints and, when a name is configured, what it resolves to now (or why it does
/// not resolve: the caller tells that when it changes).
pub async fn endpoints(
    cluster: &ClusterConfig,
    bound: Duration,
) -> (Vec<Endpoint>, Option<Result<usize, String>>) {
    let mut all: Vec<Endpoint> = cluster
        .pool_managers
        .iter()
        .map(|u| Endpoint::of_url(u))
        .collect();
    let resolved = match &cluster.discover {
        None => None,
        Some(name) => Some(resolve(name, bound).await.map(|found| {
            let count = found.len();
            all.extend(found);
            count
        })),
    };
    all.sort();
    all.dedup_by(|a, b| a.node == b.node);
    (all, resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_names_its_node_without_credentials_or_path() {
        let e = Endpoint::of_url("http://user:CANARY@10.0.0.5:9300/base/");
        assert_eq!(e.node, "10.0.0.5:9300");
        assert_eq!(e.url, "http://user:CANARY@10.0.0.5:9300/base");
        assert_eq!(Endpoint::of_url("https://pm-0:9300").node, "pm-0:9300");
    }

    #[tokio::test]
    async fn a_name_resolves_to_every_address_and_the_list_is_merged() {
        let found = resolve("localhost:9300", Duration::from_secs(5))
            .await
            .unwrap();
        assert!(!found.is_empty());
        assert!(found
            .iter()
            .all(|e| e.node.ends_with(":9300") && e.url == format!("http://{}", e.node)));
        let cluster = ClusterConfig {
            pool_managers: vec![
                "http://127.0.0.1:9300".into(),
                "http://127.0.0.2:9300".into(),
            ],
            discover: Some("localhost:9300".into()),
            refresh_ms: 2_000,
            unready_after_ms: 6_000,
        };
        let (all, resolved) = endpoints(&cluster, Duration::from_secs(5)).await;
        assert_eq!(resolved, Some(Ok(found.len())));
        let nodes: Vec<&str> = all.iter().map(|e| e.node.as_str()).collect();
        assert!(nodes.contains(&"127.0.0.2:9300"), "{nodes:?}");
        // localhost's 127.0.0.1 and the listed URL are one node.
        assert_eq!(
            nodes.iter().filter(|n| **n == "127.0.0.1:9300").count(),
            1,
            "{nodes:?}"
        );
        let bad = resolve("no-such-host.invalid:9300", Duration::from_secs(5)).await;
        assert!(bad.unwrap_err().contains("no-such-host.invalid"));
    }
}
