//! Reading one pool-managerd: `GET /v1/pools` with the bearer token, within a bound. What it
//! answers is its node's pools and replicas; what can go wrong is a refusal (a wrong token), no
//! answer, or an answer that cannot be read. Error texts carry no URL and no header.

use super::discover::Endpoint;
pub use llorch_api_types::NodePools as NodeReport;
use logging::Secret;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub enum PollError {
    /// 401 or 403: the token is wrong or missing.
    Refused(u16),
    /// No answer within the bound, or no connection.
    Silent(String),
    /// An answer that is not a pool list.
    Unreadable(String),
}

impl std::fmt::Display for PollError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PollError::Refused(status) => {
                write!(f, "it refused POOL_MANAGERD_TOKEN (HTTP {status})")
            }
            PollError::Silent(why) => write!(f, "no answer: {why}"),
            PollError::Unreadable(why) => write!(f, "an unreadable answer: {why}"),
        }
    }
}

/// A client that sends `token` to every pool-managerd (unset: no Authorization header).
pub fn client(token: Option<&Secret<String>>) -> reqwest::Client {
    let headers = token
        .and_then(adapter_api::http::bearer)
        .unwrap_or_default();
    adapter_api::http::client_with(headers)
}

/// Reads `endpoint`'s pools, waiting at most `bound`.
pub async fn poll(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    bound: Duration,
) -> Result<NodeReport, PollError> {
    let silent = |e: reqwest::Error| {
        let e = e.without_url();
        PollError::Silent(if e.is_timeout() {
            format!("no answer within {} ms", bound.as_millis())
        } else if e.is_connect() {
            "connection refused or unreachable".to_string()
        } else {
            e.to_string()
        })
    };
    let response = client
        .get(format!("{}/v1/pools", endpoint.url))
        .timeout(bound)
        .send()
        .await
        .map_err(silent)?;
    let status = response.status().as_u16();
    match status {
        200 => {}
        401 | 403 => return Err(PollError::Refused(status)),
        _ => return Err(PollError::Unreadable(format!("HTTP {status}"))),
    }
    let body = response.bytes().await.map_err(silent)?;
    serde_json::from_slice(&body).map_err(|e| PollError::Unreadable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_list_reads_with_fields_this_client_does_not_know() {
        let text = r#"{"node": "gpu-0", "extra": 1, "pools": [{
            "pool_id": "tiny", "engine": "llamacpp", "model_ref": "gguf:tiny",
            "engine_version": "b1", "live": true, "ready": true, "draining": false,
            "replicas": [{"replica_id": "tiny-r0", "ready": true, "slots": 2, "busy": 0,
                          "url": "http://10.0.0.5:41234", "restarts": 0, "new_field": true}],
            "last_error": null, "metrics": {"queue_depth": 0, "active_leases": 0}}]}"#;
        let report: NodeReport = serde_json::from_str(text).unwrap();
        assert_eq!(report.node, "gpu-0");
        assert_eq!(
            report.pools[0].replicas[0].url.as_deref(),
            Some("http://10.0.0.5:41234")
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_silence_not_a_refusal() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let endpoint = Endpoint::of_url(&format!("http://{addr}"));
        let token = Secret::new("CANARY-TOKEN".to_string());
        let e = poll(&client(Some(&token)), &endpoint, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(e, PollError::Silent(_)), "{e:?}");
        let shown = e.to_string();
        assert!(
            !shown.contains("CANARY") && !shown.contains(&addr.to_string()),
            "{shown}"
        );
    }
}
