//! `[cluster]`: where the pool-managerd daemons are (fixed URLs and/or a DNS name resolved to
//! every address), how often they are read, when a silent one's replicas become unready; and the
//! secrets used with them (`POOL_MANAGERD_TOKEN`, `ENGINE_API_KEY`), read from the environment.

use logging::Secret;
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Base URLs of pool-managerd control APIs (`http://10.0.0.5:9300`).
    #[serde(default)]
    pub pool_managers: Vec<String>,
    /// `host:port` resolved to every address it has (a Kubernetes headless Service).
    #[serde(default)]
    pub discover: Option<String>,
    /// How often each pool-managerd is read and `discover` resolved again.
    #[serde(default = "default_refresh")]
    pub refresh_ms: u64,
    /// A pool-managerd that has not answered for this long has its replicas marked unready.
    #[serde(default = "default_unready_after")]
    pub unready_after_ms: u64,
}

fn default_refresh() -> u64 {
    2_000
}
fn default_unready_after() -> u64 {
    6_000
}

/// `host:port` of a `discover` name: a host and a port that is a number.
pub fn split_host_port(name: &str) -> Option<(&str, u16)> {
    let (host, port) = name.rsplit_once(':')?;
    let port = port.parse().ok().filter(|p| *p != 0)?;
    (!host.is_empty() && !host.contains('/')).then_some((host, port))
}

impl ClusterConfig {
    /// Refuses settings that cannot work; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.pool_managers.is_empty() && self.discover.is_none() {
            return Err(
                "cluster: list `pool_managers` or set `discover` (or remove `[cluster]`)".into(),
            );
        }
        for (i, url) in self.pool_managers.iter().enumerate() {
            let rest = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"));
            if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
                return Err(format!(
                    "cluster.pool_managers[{i}]: {url:?} is not an http(s) URL with a host"
                ));
            }
        }
        if let Some(name) = &self.discover {
            if split_host_port(name).is_none() {
                return Err(format!(
                    "cluster.discover: {name:?} is not `host:port` (a DNS name and the control API's port)"
                ));
            }
        }
        if self.refresh_ms == 0 {
            return Err("cluster.refresh_ms: must be at least 1".into());
        }
        if self.unready_after_ms <= self.refresh_ms {
            return Err(format!(
                "cluster.unready_after_ms: {} ms is not longer than refresh_ms ({} ms): every node would be unready between two reads",
                self.unready_after_ms, self.refresh_ms
            ));
        }
        Ok(())
    }
}

/// The secrets of a cluster: the bearer token of the pool-managerd control APIs and the key
/// the engines require. Never logged.
#[derive(Clone, Default)]
pub struct ClusterSecrets {
    pub pool_managerd_token: Option<Secret<String>>,
    pub engine_api_key: Option<Secret<String>>,
}

impl ClusterSecrets {
    /// `POOL_MANAGERD_TOKEN` and `ENGINE_API_KEY` (empty is unset); the error names the variable.
    pub fn from_env() -> Result<ClusterSecrets, String> {
        Ok(ClusterSecrets {
            pool_managerd_token: secret("POOL_MANAGERD_TOKEN")?,
            engine_api_key: secret("ENGINE_API_KEY")?,
        })
    }
}

fn secret(name: &str) -> Result<Option<Secret<String>>, String> {
    match std::env::var(name) {
        Ok(value) if value.is_empty() => Ok(None),
        Ok(value) if adapter_api::http::bearer(&Secret::new(value.clone())).is_none() => Err(
            format!("{name} holds characters an HTTP header cannot carry"),
        ),
        Ok(value) => Ok(Some(Secret::new(value))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{name} is not valid UTF-8")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(text: &str) -> Result<ClusterConfig, String> {
        let c: ClusterConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate().map(|_| c)
    }

    #[test]
    fn defaults_and_a_list_or_a_name() {
        let c = cluster("pool_managers = [\"http://10.0.0.5:9300\"]").unwrap();
        assert_eq!((c.refresh_ms, c.unready_after_ms), (2_000, 6_000));
        cluster("discover = \"pool-managerd.llama-orch.svc:9300\"").unwrap();
        assert_eq!(
            split_host_port("pm.svc:9300"),
            Some(("pm.svc", 9300)),
            "a name and its port"
        );
    }

    #[test]
    fn settings_that_cannot_work_are_refused_naming_the_field() {
        for (text, field) in [
            ("", "list `pool_managers`"),
            ("pool_managers = [\"10.0.0.5:9300\"]", "pool_managers[0]"),
            ("pool_managers = [\"http://\"]", "pool_managers[0]"),
            ("discover = \"pm.svc\"", "cluster.discover"),
            ("discover = \"pm.svc:0\"", "cluster.discover"),
            (
                "discover = \"pm:9300\"\nrefresh_ms = 0",
                "cluster.refresh_ms",
            ),
            (
                "discover = \"pm:9300\"\nunready_after_ms = 2000",
                "cluster.unready_after_ms",
            ),
            ("discover = \"pm:9300\"\nrefresh = 1", "refresh"),
        ] {
            let e = cluster(text)
                .err()
                .unwrap_or_else(|| panic!("{text:?} was accepted"));
            assert!(e.contains(field), "{text:?}: {e}");
        }
    }
}
