//! The daemon's configuration: TOML, with an embedded default (one mock pool).

use llorch_api_types::Engine;
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

mod origin;
mod pool;

pub use origin::{check_origin, split_authority};
pub use pool::{FullPolicy, PoolConfig};

pub const EMBEDDED_DEFAULT: &str = include_str!("../default.toml");

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub pools: Vec<PoolConfig>,
    /// The pool-managerd daemons whose replicas serve the pools declared `remote = true`.
    #[serde(default)]
    pub cluster: Option<crate::cluster::ClusterConfig>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub addr: SocketAddr,
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// Interval of `: keep-alive` comments on SSE streams; 0 turns them off.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_ms: u64,
    #[serde(default = "yes")]
    pub cancel_on_disconnect: bool,
    #[serde(default = "default_grace")]
    pub shutdown_grace_ms: u64,
    /// Tokens one session may stream over all its turns; unset (or 0) is unlimited.
    #[serde(default)]
    pub session_tokens_budget: Option<u64>,
    /// A task whose stream nobody opens within this time is canceled.
    #[serde(default = "default_claim_timeout")]
    pub stream_claim_timeout_ms: u64,
    /// A client that takes no event from its stream for this long is canceled, freeing the slot.
    #[serde(default = "default_client_stall")]
    pub client_stall_ms: u64,
    /// Web origins (`scheme://host[:port]`) whose pages may call the API from a browser. Empty:
    /// none but the daemon's own address; any other request with an `Origin` header is refused.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Where downloaded models and their catalog are kept (`<cache_dir>/models`). Unset:
    /// `LLORCH_CACHE`, else `~/.cache/llama-orch`.
    #[serde(default)]
    pub cache_dir: Option<std::path::PathBuf>,
}

fn default_body_limit() -> usize {
    1024 * 1024
}
fn default_heartbeat() -> u64 {
    10_000
}
fn yes() -> bool {
    true
}
fn default_grace() -> u64 {
    10_000
}
fn default_client_stall() -> u64 {
    30_000
}
fn default_claim_timeout() -> u64 {
    60_000
}
/// A configuration that cannot be used; names the file and the field.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    pub fn embedded() -> Config {
        Config::parse(EMBEDDED_DEFAULT, "the embedded default")
            .unwrap_or_else(|e| unreachable!("the embedded default configuration is valid: {e}"))
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        Config::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text)
            .map_err(|e| ConfigError(format!("invalid configuration in {origin}: {e}")))?;
        config
            .validate()
            .map_err(|e| ConfigError(format!("invalid configuration in {origin}: {e}")))?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        let server = &self.server;
        for (field, value) in [
            ("body_limit_bytes", server.body_limit_bytes as u64),
            ("stream_claim_timeout_ms", server.stream_claim_timeout_ms),
            ("client_stall_ms", server.client_stall_ms),
        ] {
            if value == 0 {
                return Err(format!("server.{field}: must be at least 1"));
            }
        }
        for (i, origin) in server.allowed_origins.iter().enumerate() {
            if let Err(why) = check_origin(origin) {
                return Err(format!("server.allowed_origins[{i}]: {why}"));
            }
        }
        if self.pools.is_empty() {
            return Err("`pools` is empty: configure at least one pool".into());
        }
        if let Some(cluster) = &self.cluster {
            cluster.validate()?;
        }
        for (i, pool) in self.pools.iter().enumerate() {
            let at = |field: &str| format!("pools[{i}].{field} (pool '{}')", pool.id);
            if pool.id.is_empty()
                || !pool
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!("{}: use letters, digits, '-' and '_'", at("id")));
            }
            if self.pools[..i].iter().any(|p| p.id == pool.id) {
                return Err(format!("{}: duplicate pool id", at("id")));
            }
            if pool.remote && self.cluster.is_none() {
                return Err(format!(
                    "{}: a remote pool's replicas come from the pool-managerds of `[cluster]`, which is missing",
                    at("remote")
                ));
            }
            match pool.engine {
                _ if pool.remote => {}
                Engine::Mock if pool.replicas == 0 => {
                    return Err(format!("{}: must be at least 1", at("replicas")));
                }
                _ if pool.spawns() => {}
                Engine::Llamacpp if pool.urls.is_empty() => {
                    return Err(format!(
                        "{}: list the URL of at least one running llama-server, or set `replicas` for the pool to run its own",
                        at("urls")
                    ));
                }
                _ if pool.engine != Engine::Mock && pool.urls.is_empty() => {
                    return Err(format!(
                        "{}: list the URL of at least one running `{}` engine",
                        at("urls"),
                        pool.engine.as_str()
                    ));
                }
                Engine::Llamacpp | Engine::Vllm | Engine::Tgi | Engine::Triton => {
                    if let Some(bad) = pool
                        .urls
                        .iter()
                        .find(|u| !u.starts_with("http://") && !u.starts_with("https://"))
                    {
                        let scheme = bad.split("://").next().unwrap_or("");
                        return Err(format!(
                            "{}: a URL with scheme {scheme:?} is not http(s)",
                            at("urls")
                        ));
                    }
                }
                Engine::Mock => {}
            }
            for (field, value) in [
                ("slots_per_replica", pool.slots_per_replica as u64),
                ("queue_capacity", pool.queue_capacity as u64),
                ("ctx_max", pool.ctx_max as u64),
                ("max_tokens_out", pool.max_tokens_out as u64),
                ("progress_every_tokens", pool.progress_every_tokens as u64),
                ("progress_every_ms", pool.progress_every_ms),
                ("max_prompt_chars", pool.max_prompt_chars as u64),
                ("stall_after_ms", pool.stall_after_ms),
                ("decode_timeout_ms", pool.decode_timeout_ms),
            ] {
                if value == 0 {
                    return Err(format!("{}: must be at least 1", at(field)));
                }
            }
            if pool.stall_after_ms > pool.decode_timeout_ms {
                return Err(format!(
                    "{}: {} ms is longer than decode_timeout_ms ({} ms); a stall is noticed before the job times out",
                    at("stall_after_ms"),
                    pool.stall_after_ms,
                    pool.decode_timeout_ms
                ));
            }
            pool.validate_engine_settings()
                .map_err(|(field, why)| format!("{}: {why}", at(field)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_is_one_mock_pool() {
        let c = Config::embedded();
        assert_eq!(c.pools.len(), 1);
        assert_eq!(c.pools[0].id, "default");
        assert_eq!(c.pools[0].engine, Engine::Mock);
        assert_eq!(c.server.addr.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn errors_name_the_field() {
        let bad = EMBEDDED_DEFAULT.replace("replicas = 2", "replicas = 0");
        let e = Config::parse(&bad, "test.toml").unwrap_err().to_string();
        assert!(
            e.contains("pools[0].replicas") && e.contains("test.toml"),
            "{e}"
        );
        let bad = EMBEDDED_DEFAULT.replace("full_policy = \"reject\"", "full_policy = \"maybe\"");
        let e = Config::parse(&bad, "test.toml").unwrap_err().to_string();
        assert!(e.contains("full_policy"), "{e}");
        let bad = EMBEDDED_DEFAULT.replace("ctx_max = 4096", "ctx_max = 4096\nctx_maxx = 1");
        let e = Config::parse(&bad, "test.toml").unwrap_err().to_string();
        assert!(e.contains("ctx_maxx"), "{e}");
    }

    /// The embedded default with `from` replaced by `to`: refused, naming `field`.
    fn refused(from: &str, to: &str, field: &str) -> String {
        assert!(
            EMBEDDED_DEFAULT.contains(from),
            "no {from:?} in the default"
        );
        let text = EMBEDDED_DEFAULT.replace(from, to);
        let e = Config::parse(&text, "test.toml")
            .err()
            .unwrap_or_else(|| panic!("{to:?} was accepted"))
            .to_string();
        assert!(e.contains(field) && e.contains("test.toml"), "{e}");
        e
    }

    #[test]
    fn values_that_make_no_sense_are_refused_naming_the_field() {
        refused(
            "progress_every_ms = 2000",
            "progress_every_ms = 0",
            "pools[0].progress_every_ms",
        );
        refused(
            "stream_claim_timeout_ms = 60000",
            "stream_claim_timeout_ms = 0",
            "server.stream_claim_timeout_ms",
        );
        refused(
            "body_limit_bytes = 1048576",
            "body_limit_bytes = 0",
            "server.body_limit_bytes",
        );
        refused(
            "max_prompt_chars = 32768",
            "max_prompt_chars = 0",
            "pools[0].max_prompt_chars",
        );
        let e = refused(
            "stall_after_ms = 5000",
            "stall_after_ms = 40000",
            "pools[0].stall_after_ms",
        );
        assert!(e.contains("decode_timeout_ms"), "{e}");
        refused(
            "token_count = 32",
            "token_count = 0",
            "pools[0].mock.token_count",
        );
        refused(
            "first_token_delay_ms = 20",
            "first_token_delay_ms = 30000",
            "pools[0].mock.first_token_delay_ms",
        );
        refused(
            "decode_timeout_ms = 30000",
            "decode_timeout_ms = 4000",
            "pools[0].stall_after_ms",
        );
        refused(
            "tokens_per_sec = 200",
            "tokens_per_sec = 200\nfault = { kind = \"stall\", after_tokens = 33 }",
            "pools[0].mock.fault.after_tokens",
        );
        refused(
            "replicas = 2",
            "replicas = 2\nurls = [\"http://127.0.0.1:8081\"]",
            "pools[0].urls",
        );
        // Zero grace and no heartbeat are legitimate; so is a fault right at the last token.
        for (from, to) in [
            ("shutdown_grace_ms = 10000", "shutdown_grace_ms = 0"),
            ("heartbeat_ms = 10000", "heartbeat_ms = 0"),
            (
                "tokens_per_sec = 200",
                "tokens_per_sec = 0\nfault = { kind = \"fail_mid_stream\", after_tokens = 32 }",
            ),
        ] {
            let text = EMBEDDED_DEFAULT.replace(from, to);
            Config::parse(&text, "test.toml").unwrap_or_else(|e| panic!("{to}: {e}"));
        }
    }

    #[test]
    fn mock_settings_on_an_engine_pool_are_refused() {
        let text = r#"
[server]
addr = "127.0.0.1:0"

[[pools]]
id = "tiny"
engine = "llamacpp"
model_ref = "gguf:tiny"
urls = ["http://127.0.0.1:8081"]
ctx_max = 512
max_tokens_out = 256
queue_capacity = 16
full_policy = "reject"
slots_per_replica = 1
"#;
        Config::parse(text, "test.toml").unwrap();
        let with_mock = format!("{text}\n[pools.mock]\ntokens_per_sec = 5\n");
        let e = Config::parse(&with_mock, "test.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("pools[0].mock"), "{e}");
        let with_replicas = text.replace(
            "slots_per_replica = 1",
            "slots_per_replica = 1\nreplicas = 3",
        );
        let e = Config::parse(&with_replicas, "test.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("pools[0].replicas"), "{e}");
    }

    #[test]
    fn a_remote_pool_needs_a_cluster_and_runs_nothing_here() {
        let remote = r#"
[server]
addr = "127.0.0.1:0"

[[pools]]
id = "tiny"
engine = "llamacpp"
model_ref = "gguf:tiny"
remote = true
ctx_max = 512
max_tokens_out = 256
queue_capacity = 16
full_policy = "reject"
slots_per_replica = 1
"#;
        let e = Config::parse(remote, "test.toml").unwrap_err().to_string();
        assert!(
            e.contains("pools[0].remote") && e.contains("[cluster]"),
            "{e}"
        );
        let clustered =
            format!("{remote}\n[cluster]\npool_managers = [\"http://10.0.0.5:9300\"]\n");
        let config = Config::parse(&clustered, "test.toml").unwrap();
        assert!(config.pools[0].remote && config.cluster.is_some());
        for (from, to, field) in [
            (
                "remote = true",
                "remote = true\nurls = [\"http://127.0.0.1:1\"]",
                "pools[0].urls",
            ),
            (
                "remote = true",
                "remote = true\nreplicas = 1",
                "pools[0].replicas",
            ),
            (
                "engine = \"llamacpp\"",
                "engine = \"vllm\"",
                "pools[0].engine",
            ),
            (
                "pool_managers = [",
                "refresh_ms = 0\npool_managers = [",
                "cluster.refresh_ms",
            ),
        ] {
            let e = Config::parse(&clustered.replace(from, to), "test.toml")
                .err()
                .unwrap_or_else(|| panic!("{to:?} was accepted"))
                .to_string();
            assert!(e.contains(field), "{to:?}: {e}");
        }
    }

    #[test]
    fn allowed_origins_are_plain_origins() {
        let with = |origins: &str| {
            EMBEDDED_DEFAULT.replace(
                "stream_claim_timeout_ms = 60000",
                &format!("stream_claim_timeout_ms = 60000\nallowed_origins = {origins}"),
            )
        };
        let ok = Config::parse(
            &with(r#"["http://localhost:3000", "https://ops.example.com", "http://[::1]:8000"]"#),
            "test.toml",
        )
        .unwrap();
        assert_eq!(ok.server.allowed_origins.len(), 3);
        for bad in [
            r#"["*"]"#,
            r#"["localhost:3000"]"#,
            r#"["http://localhost:3000/"]"#,
            r#"["http://localhost:3000/app"]"#,
            r#"["http://*.example.com"]"#,
            r#"["http://localhost:0"]"#,
            r#"["http://user@localhost"]"#,
            r#"["null"]"#,
        ] {
            let e = Config::parse(&with(bad), "test.toml")
                .err()
                .unwrap_or_else(|| panic!("{bad} was accepted"))
                .to_string();
            assert!(e.contains("server.allowed_origins[0]"), "{bad}: {e}");
        }
    }
}
