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
    /// A client that takes no event from its stream for this long is canceled, freeing the slot.
    #[serde(default = "default_client_stall")]
    pub client_stall_ms: u64,
    /// Web origins (`scheme://host[:port]`) whose pages may call the API from a browser. Empty:
    /// none but the daemon's own address; any other request with an `Origin` header is refused.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
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
    /// Engine pools: the URL of each running engine (one replica each).
    #[serde(default)]
    pub urls: Vec<String>,
    /// `vllm` (OpenAI-compatible) and `triton` pools: the model name the engine serves, when it
    /// is not `model_ref`.
    #[serde(default)]
    pub served_model: Option<String>,
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
    /// `llamacpp` pools with `replicas` and no `urls`: how they run their own engines.
    #[serde(default)]
    pub spawn: Option<pool_managerd::SpawnSettings>,
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

impl PoolConfig {
    /// What pool-managerd needs of this pool.
    pub fn spec(&self) -> pool_managerd::PoolSpec {
        pool_managerd::PoolSpec {
            id: self.id.clone(),
            engine: self.engine,
            model_ref: self.model_ref.clone(),
            replicas: self.replicas,
            urls: self.urls.clone(),
            served_model: self.served_model.clone(),
            slots_per_replica: self.slots_per_replica,
            mock: self.mock.clone(),
            ctx: self.ctx_max,
            spawn: self
                .spawns()
                .then(|| self.spawn.clone().unwrap_or_default()),
        }
    }

    /// A llama.cpp pool with replicas and no URLs runs its own engines.
    pub fn spawns(&self) -> bool {
        self.engine == Engine::Llamacpp && self.urls.is_empty() && self.replicas > 0
    }
}

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

impl PoolConfig {
    /// Settings that belong to another engine, and mock settings that make every job fail or
    /// never do what they say. Returns the field and why.
    fn validate_engine_settings(&self) -> Result<(), (&'static str, String)> {
        if self.spawn.is_some() && !self.spawns() {
            return Err((
                "spawn",
                "only llamacpp pools with `replicas` and no `urls` run their own engines".into(),
            ));
        }
        if let Some(spawn) = self.spawn.as_ref().filter(|_| self.spawns()) {
            let devices = spawn.gpu_devices.len();
            if devices != 0 && devices != self.replicas as usize {
                return Err((
                    "spawn.gpu_devices",
                    format!(
                        "give one entry per replica ({} replicas, {devices} entries)",
                        self.replicas
                    ),
                ));
            }
            if spawn
                .model_sha256
                .as_ref()
                .is_some_and(|d| d.len() != 64 || !d.chars().all(|c| c.is_ascii_hexdigit()))
            {
                return Err(("spawn.model_sha256", "must be 64 hexadecimal digits".into()));
            }
        }
        if self.engine != Engine::Mock {
            if self.replicas != 0 && !self.spawns() {
                return Err((
                    "replicas",
                    "a pool on running engines has one replica per URL; set `replicas` only without `urls`".into(),
                ));
            }
            if self.mock != mock_engine::MockConfig::default() {
                return Err(("mock", "only mock pools take mock settings".into()));
            }
            return Ok(());
        }
        if !self.urls.is_empty() {
            return Err((
                "urls",
                "mock pools run built-in replicas; `urls` is for llamacpp pools".into(),
            ));
        }
        let mock = &self.mock;
        if mock.token_count == 0 {
            return Err((
                "mock.token_count",
                "must be at least 1 (a mock that produces no tokens serves nothing)".into(),
            ));
        }
        if mock.first_token_delay_ms >= self.decode_timeout_ms {
            return Err((
                "mock.first_token_delay_ms",
                format!(
                    "{} ms is not shorter than decode_timeout_ms ({} ms): every job would time out",
                    mock.first_token_delay_ms, self.decode_timeout_ms
                ),
            ));
        }
        if mock.tokens_per_sec > 0
            && 1000 / u64::from(mock.tokens_per_sec) >= self.decode_timeout_ms
        {
            return Err((
                "mock.tokens_per_sec",
                format!(
                    "{} tokens/s leaves {} ms between tokens, not less than decode_timeout_ms ({} ms): every job would time out",
                    mock.tokens_per_sec,
                    1000 / u64::from(mock.tokens_per_sec),
                    self.decode_timeout_ms
                ),
            ));
        }
        match mock.fault {
            Some(
                mock_engine::Fault::FailMidStream { after_tokens }
                | mock_engine::Fault::Stall { after_tokens },
            ) if after_tokens > mock.token_count => Err((
                "mock.fault.after_tokens",
                format!(
                    "{after_tokens} is more than mock.token_count ({}): the fault would never happen",
                    mock.token_count
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// `host[:port]` (the host may be a bracketed IPv6 address) as host and port text.
pub fn split_authority(authority: &str) -> (&str, Option<&str>) {
    let host_end = if authority.starts_with('[') {
        authority.find(']').map_or(authority.len(), |i| i + 1)
    } else {
        authority.find(':').unwrap_or(authority.len())
    };
    let (host, rest) = authority.split_at(host_end);
    match rest.strip_prefix(':') {
        Some(port) => (host, Some(port)),
        None if rest.is_empty() => (host, None),
        // Text after the host that is not a port: keep it in the host so it fails the check.
        None => (authority, None),
    }
}

/// An allowed origin as browsers send it: `http(s)://host[:port]`, no path, no wildcard.
pub fn check_origin(origin: &str) -> Result<(), String> {
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .ok_or("write an origin as http://host[:port] or https://host[:port]")?;
    let (host, port) = split_authority(rest);
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => {
            !v6.is_empty()
                && v6
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        }
        None => {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        }
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p != 0));
    if !host_ok || !port_ok {
        return Err(
            "write an origin as scheme://host[:port], without a path, a trailing '/' or a wildcard"
                .into(),
        );
    }
    Ok(())
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
