//! The daemon's configuration: TOML, with an embedded default (one mock pool).

use llorch_api_types::Engine;
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

pub const EMBEDDED_DEFAULT: &str = include_str!("default.toml");

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub pools: Vec<PoolConfig>,
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum FullPolicy {
    #[serde(rename = "reject")]
    Reject,
    #[serde(rename = "drop-lru")]
    DropLru,
}

impl FullPolicy {
    pub fn label(self) -> &'static str {
        match self {
            FullPolicy::Reject => "reject",
            FullPolicy::DropLru => "drop-lru",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    pub id: String,
    pub engine: Engine,
    pub model_ref: String,
    pub ctx_max: u32,
    pub max_tokens_out: u32,
    pub queue_capacity: usize,
    pub full_policy: FullPolicy,
    /// Mock pools: how many replicas to run.
    #[serde(default)]
    pub replicas: u32,
    /// `llamacpp` pools: the URL of each running `llama-server` replica.
    #[serde(default)]
    pub urls: Vec<String>,
    pub slots_per_replica: u32,
    #[serde(default = "default_prompt_chars")]
    pub max_prompt_chars: usize,
    #[serde(default = "default_progress_tokens")]
    pub progress_every_tokens: u32,
    #[serde(default = "default_progress_ms")]
    pub progress_every_ms: u64,
    #[serde(default = "default_stall")]
    pub stall_after_ms: u64,
    #[serde(default = "default_decode_timeout")]
    pub decode_timeout_ms: u64,
    #[serde(default)]
    pub mock: mock_engine::MockConfig,
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
fn default_claim_timeout() -> u64 {
    60_000
}
fn default_prompt_chars() -> usize {
    32 * 1024
}
fn default_progress_tokens() -> u32 {
    64
}
fn default_progress_ms() -> u64 {
    2_000
}
fn default_stall() -> u64 {
    5_000
}
fn default_decode_timeout() -> u64 {
    30_000
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
        if self.pools.is_empty() {
            return Err("`pools` is empty: configure at least one pool".into());
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
            match pool.engine {
                Engine::Mock if pool.replicas == 0 => {
                    return Err(format!("{}: must be at least 1", at("replicas")));
                }
                Engine::Llamacpp if pool.urls.is_empty() => {
                    return Err(format!(
                        "{}: list the URL of at least one llama-server",
                        at("urls")
                    ));
                }
                Engine::Llamacpp => {
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
                _ => {
                    return Err(format!(
                        "{}: `{}` pools are not supported yet (mock and llamacpp are)",
                        at("engine"),
                        pool.engine.as_str()
                    ))
                }
            }
            for (field, value) in [
                ("slots_per_replica", pool.slots_per_replica as u64),
                ("queue_capacity", pool.queue_capacity as u64),
                ("ctx_max", pool.ctx_max as u64),
                ("max_tokens_out", pool.max_tokens_out as u64),
                ("progress_every_tokens", pool.progress_every_tokens as u64),
                ("stall_after_ms", pool.stall_after_ms),
                ("decode_timeout_ms", pool.decode_timeout_ms),
            ] {
                if value == 0 {
                    return Err(format!("{}: must be at least 1", at(field)));
                }
            }
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
}
