//! The daemon's `[server]` table and its start-up checks: where the control API listens, the
//! address engines listen on and are announced at (`advertise_host`; `POD_IP` wins), and the
//! secrets a non-loopback deployment needs (`AUTH_TOKEN`, `ENGINE_API_KEY`).

use logging::Secret;
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

/// The control API's port when `[server] addr` is not given.
pub const DEFAULT_PORT: u16 = 9300;

/// `[server]` as written; other keys (orchestratord's, in a shared file) are ignored.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ServerSection {
    #[serde(default = "default_addr")]
    pub addr: SocketAddr,
    #[serde(default)]
    pub advertise_host: Option<IpAddr>,
    /// On the stop signal, how long busy engines get to finish the generations they run
    /// before they are stopped (their slots, from llama-server's `/slots`).
    #[serde(default = "default_stop_grace_ms")]
    pub stop_grace_ms: u64,
}

/// `[server] stop_grace_ms` when not given: one minute.
pub const DEFAULT_STOP_GRACE_MS: u64 = 60_000;

fn default_stop_grace_ms() -> u64 {
    DEFAULT_STOP_GRACE_MS
}

fn default_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DEFAULT_PORT)
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            addr: default_addr(),
            advertise_host: None,
            stop_grace_ms: DEFAULT_STOP_GRACE_MS,
        }
    }
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    server: ServerSection,
}

/// The `[server]` table of the TOML file at `path` (defaults when absent).
pub fn read_server(path: &Path) -> Result<ServerSection, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let file: File = toml::from_str(&text)
        .map_err(|e| format!("invalid configuration in {}: {e}", path.display()))?;
    Ok(file.server)
}

/// Why the daemon refuses to start with these settings.
#[derive(Debug, PartialEq)]
pub enum StartupError {
    /// `POD_IP` is set but is not an IP address.
    BadPodIp(String),
    /// `AUTH_TOKEN` or `ENGINE_API_KEY` is not valid UTF-8.
    NotUnicode(&'static str),
    /// A non-loopback bind without `AUTH_TOKEN`.
    OpenWithoutToken(SocketAddr),
    /// Listening on every interface without an address to announce the engines at.
    NoAdvertiseHost(SocketAddr),
    /// Engines on a non-loopback address without `ENGINE_API_KEY`.
    EnginesWithoutKey(IpAddr),
}

impl StartupError {
    /// The `error_kind` of the start-up refusal.
    pub fn kind(&self) -> &'static str {
        match self {
            StartupError::BadPodIp(_) | StartupError::NoAdvertiseHost(_) => "INVALID_CONFIG",
            StartupError::NotUnicode(_) | StartupError::OpenWithoutToken(_) => "INVALID_AUTH_TOKEN",
            StartupError::EnginesWithoutKey(_) => "INVALID_ENGINE_API_KEY",
        }
    }
}

impl std::fmt::Display for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartupError::BadPodIp(value) => write!(f, "POD_IP {value:?} is not an IP address"),
            StartupError::NotUnicode(name) => write!(f, "{name} is not valid UTF-8"),
            StartupError::OpenWithoutToken(addr) => write!(
                f,
                "the control API would listen on {addr}, beyond loopback, without AUTH_TOKEN: set AUTH_TOKEN or bind 127.0.0.1"
            ),
            StartupError::NoAdvertiseHost(addr) => write!(
                f,
                "the control API listens on {addr} (every interface): set `[server] advertise_host` or POD_IP to the address engines are reached at"
            ),
            StartupError::EnginesWithoutKey(host) => write!(
                f,
                "engines would listen on {host}, beyond loopback, without ENGINE_API_KEY: set ENGINE_API_KEY or advertise a loopback address"
            ),
        }
    }
}

/// What the daemon runs with, checked.
pub struct Settings {
    pub addr: SocketAddr,
    pub advertise_host: IpAddr,
    pub auth_token: Option<Secret<String>>,
    pub engine_api_key: Option<Secret<String>>,
    /// How long busy engines get to finish on the stop signal (`stop_grace_ms`).
    pub stop_grace: std::time::Duration,
}

/// An environment variable: absent and empty are alike; not UTF-8 is an error.
fn secret(name: &'static str) -> Result<Option<Secret<String>>, StartupError> {
    match std::env::var(name) {
        Ok(value) if value.is_empty() => Ok(None),
        Ok(value) => Ok(Some(Secret::new(value))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(StartupError::NotUnicode(name)),
    }
}

impl Settings {
    /// `section` with `POD_IP`, `AUTH_TOKEN` and `ENGINE_API_KEY` from the environment.
    pub fn from_env(section: &ServerSection) -> Result<Settings, StartupError> {
        let pod_ip = match std::env::var("POD_IP") {
            Ok(value) if !value.is_empty() => Some(
                value
                    .trim()
                    .parse()
                    .map_err(|_| StartupError::BadPodIp(value))?,
            ),
            _ => None,
        };
        Settings::check(
            section,
            pod_ip,
            secret("AUTH_TOKEN")?,
            secret("ENGINE_API_KEY")?,
        )
    }

    /// The start-up checks, on given values.
    pub fn check(
        section: &ServerSection,
        pod_ip: Option<IpAddr>,
        auth_token: Option<Secret<String>>,
        engine_api_key: Option<Secret<String>>,
    ) -> Result<Settings, StartupError> {
        let addr = section.addr;
        if !addr.ip().is_loopback() && auth_token.is_none() {
            return Err(StartupError::OpenWithoutToken(addr));
        }
        let advertise_host = match (pod_ip, section.advertise_host) {
            (Some(ip), _) | (None, Some(ip)) => ip,
            (None, None) if addr.ip().is_unspecified() => {
                return Err(StartupError::NoAdvertiseHost(addr))
            }
            (None, None) => addr.ip(),
        };
        if !advertise_host.is_loopback() && engine_api_key.is_none() {
            return Err(StartupError::EnginesWithoutKey(advertise_host));
        }
        Ok(Settings {
            addr,
            advertise_host,
            auth_token,
            engine_api_key,
            stop_grace: std::time::Duration::from_millis(section.stop_grace_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(addr: &str, advertise: Option<&str>) -> ServerSection {
        ServerSection {
            addr: addr.parse().unwrap(),
            advertise_host: advertise.map(|a| a.parse().unwrap()),
            ..ServerSection::default()
        }
    }

    fn key() -> Option<Secret<String>> {
        Some(Secret::new("k".to_string()))
    }

    #[test]
    fn a_loopback_daemon_needs_no_secrets() {
        let s = Settings::check(&section("127.0.0.1:9300", None), None, None, None).unwrap();
        assert_eq!(s.advertise_host, "127.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn beyond_loopback_the_token_and_the_key_are_required() {
        let open = section("0.0.0.0:9300", Some("10.0.0.5"));
        assert!(matches!(
            Settings::check(&open, None, None, key()),
            Err(StartupError::OpenWithoutToken(_))
        ));
        assert!(matches!(
            Settings::check(&open, None, key(), None),
            Err(StartupError::EnginesWithoutKey(_))
        ));
        assert!(Settings::check(&open, None, key(), key()).is_ok());
    }

    #[test]
    fn pod_ip_wins_and_a_wildcard_bind_needs_an_address_to_announce() {
        let wildcard = section("0.0.0.0:9300", Some("10.0.0.5"));
        let pod: IpAddr = "10.1.2.3".parse().unwrap();
        let s = Settings::check(&wildcard, Some(pod), key(), key()).unwrap();
        assert_eq!(s.advertise_host, pod);
        assert!(matches!(
            Settings::check(&section("0.0.0.0:9300", None), None, key(), key()),
            Err(StartupError::NoAdvertiseHost(_))
        ));
    }

    #[test]
    fn other_server_keys_are_ignored_and_defaults_apply() {
        let file: File = toml::from_str("[server]\nbody_limit_bytes = 5\n").unwrap();
        assert_eq!(file.server, ServerSection::default());
        let file: File = toml::from_str("").unwrap();
        assert_eq!(file.server.addr.port(), DEFAULT_PORT);
        assert_eq!(file.server.stop_grace_ms, DEFAULT_STOP_GRACE_MS);
        let file: File = toml::from_str("[server]\nstop_grace_ms = 250\n").unwrap();
        let s = Settings::check(&file.server, None, None, None).unwrap();
        assert_eq!(s.stop_grace, std::time::Duration::from_millis(250));
    }
}
