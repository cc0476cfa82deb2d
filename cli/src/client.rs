//! The HTTP client for orchestratord: base address, Bearer token, timeouts, and the one mapping
//! of transport failures and error answers to [`CliError`].

use crate::args::Cli;
use crate::error::CliError;
use llorch_api_types::ErrorEnvelope;
use reqwest::{Method, Response};
use serde::de::DeserializeOwned;
use std::time::Duration;

/// How long a connection may take to open; requests are bounded by `--timeout` on top.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Client {
    http: reqwest::Client,
    base: String,
    /// The address as shown in messages (no user or password).
    shown: String,
    token: Option<String>,
    /// `--timeout`: each request, and the silence of a stream.
    pub timeout: Duration,
    connect_timeout: Duration,
    correlation_id: String,
}

impl Client {
    pub fn new(cli: &Cli) -> Result<Client, CliError> {
        let base = normalise_addr(&cli.addr)?;
        let timeout = Duration::from_secs(cli.timeout.max(1));
        let connect_timeout = CONNECT_TIMEOUT.min(timeout);
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .build()
            .map_err(|e| CliError::Other(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Client {
            http,
            shown: without_userinfo(&base),
            base,
            token: cli.token.clone().filter(|t| !t.is_empty()),
            timeout,
            connect_timeout,
            correlation_id: uuid::Uuid::new_v4().to_string(),
        })
    }

    /// How the daemon names this caller in its logs: `token:<fp6>`, or empty without a token.
    pub fn identity(&self) -> String {
        self.token
            .as_deref()
            .map(|t| logging::identity(Some(t)))
            .unwrap_or_default()
    }

    /// Sends a request and returns the answer when it is a success; `bound` limits the whole
    /// exchange (`None`: only the connection and the headers, for streams).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        bound: Option<Duration>,
    ) -> Result<Response, CliError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("x-correlation-id", &self.correlation_id);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(bound) = bound {
            request = request.timeout(bound);
        }
        let sent = tokio::time::timeout(bound.unwrap_or(self.timeout), request.send()).await;
        let response = match sent {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => return Err(self.transport(&e)),
            Err(_) => return Err(self.no_answer()),
        };
        if response.status().is_success() {
            return Ok(response);
        }
        Err(self.refusal(response).await)
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let response = self
            .send(Method::GET, path, None, Some(self.timeout))
            .await?;
        self.json(response).await
    }

    /// `POST` with an optional JSON body, bounded by `bound` (default `--timeout`).
    pub async fn post(
        &self,
        path: &str,
        body: Option<&serde_json::Value>,
        bound: Option<Duration>,
    ) -> Result<Response, CliError> {
        let bound = bound.unwrap_or(self.timeout);
        self.send(Method::POST, path, body, Some(bound)).await
    }

    /// The answer's body as `T`.
    pub async fn json<T: DeserializeOwned>(&self, response: Response) -> Result<T, CliError> {
        let bytes = response.bytes().await.map_err(|e| self.transport(&e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            CliError::Other(format!(
                "orchestratord at {} answered something this client does not understand: {}",
                self.shown,
                describe(&e)
            ))
        })
    }

    /// A refused request as its error: the envelope when the body is one, the status otherwise.
    async fn refusal(&self, response: Response) -> CliError {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let body = tokio::time::timeout(self.timeout, response.bytes()).await;
        let envelope = match body {
            Ok(Ok(bytes)) => serde_json::from_slice::<ErrorEnvelope>(&bytes).ok(),
            _ => None,
        };
        match CliError::from_answer(status, envelope.as_ref(), retry_after, &self.identity()) {
            CliError::Server(detail) => {
                CliError::Server(format!("{detail}; correlation id {}", self.correlation_id))
            }
            other => other,
        }
    }

    /// A failure below HTTP: no connection, a timeout, a broken answer.
    pub fn transport(&self, error: &reqwest::Error) -> CliError {
        let why = innermost(error);
        if error.is_connect() {
            let why = if error.is_timeout() {
                format!("no connection within {} s", self.connect_timeout.as_secs())
            } else {
                why
            };
            return CliError::Unreachable {
                addr: self.shown.clone(),
                why,
            };
        }
        if error.is_timeout() {
            return self.no_answer();
        }
        CliError::Other(format!("the exchange with {} failed: {why}", self.shown))
    }

    pub fn no_answer(&self) -> CliError {
        CliError::TimedOut(format!(
            "orchestratord at {} did not answer within {} s",
            self.shown,
            self.timeout.as_secs()
        ))
    }

    pub fn shown_addr(&self) -> &str {
        &self.shown
    }
}

/// The deepest cause of an error, which names the real reason ("Connection refused (os error
/// 111)") without the URL reqwest adds on top.
fn innermost(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    if text.contains("Connection refused") {
        "connection refused".to_string()
    } else {
        text
    }
}

/// `host:port` gets `http://`; the trailing `/` goes; only http(s) is accepted.
fn normalise_addr(addr: &str) -> Result<String, CliError> {
    let addr = addr.trim().trim_end_matches('/');
    let with_scheme = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    let scheme = with_scheme.split("://").next().unwrap_or("");
    match scheme {
        "http" => {}
        "https" if cfg!(feature = "https") => {}
        "https" => {
            return Err(CliError::Usage(
                "https addresses need llama-orch built with `--features https`".into(),
            ))
        }
        _ => {
            return Err(CliError::Usage(format!(
                "--addr must be an http:// URL, not {}://…",
                logging::escape_for_terminal(scheme)
            )))
        }
    }
    if reqwest::Url::parse(&with_scheme).is_err() {
        return Err(CliError::Usage(format!(
            "--addr {} is not a valid URL",
            logging::escape_for_terminal(&without_userinfo(&with_scheme))
        )));
    }
    Ok(with_scheme)
}

fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}{path}")
}

/// One path segment, percent-encoded: an id never changes the route it is put in.
pub fn segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// What serde's error says, without quoting the data (which may come from anywhere).
fn describe(error: &serde_json::Error) -> String {
    let kind = match error.classify() {
        serde_json::error::Category::Io => "a read error",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "unexpected JSON",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    format!("{kind} at line {} column {}", error.line(), error.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised_and_checked() {
        assert_eq!(
            normalise_addr("127.0.0.1:9/").unwrap(),
            "http://127.0.0.1:9"
        );
        assert_eq!(normalise_addr("http://h:1").unwrap(), "http://h:1");
        assert_eq!(normalise_addr("ftp://h").unwrap_err().exit_code(), 2);
        assert_eq!(without_userinfo("http://user:CANARY@h:1/x"), "http://h:1/x");
    }

    #[test]
    fn ids_cannot_escape_their_segment() {
        assert_eq!(segment("a/../b?c"), "a%2F..%2Fb%3Fc");
        assert_eq!(segment("3f2c-AB_9.x~"), "3f2c-AB_9.x~");
    }
}
