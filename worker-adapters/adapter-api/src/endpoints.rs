//! Engine addresses are the operator's business, never an API client's: one place that takes
//! them out of messages (errors relayed to clients, pool health, narration of failures).

/// `message` without engine addresses: the configured `urls` (with any credentials in them) and
/// anything else that looks like an endpoint (`scheme://…`, `host:port`). Engine addresses are
/// the operator's business, never an API client's.
pub fn without_endpoints(message: &str, urls: &[String]) -> String {
    let mut text = message.to_string();
    for url in urls {
        let authority = url
            .split_once("://")
            .map_or(url.as_str(), |(_, rest)| rest)
            .split(['/', '?', '#'])
            .next()
            .unwrap_or("");
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        if !authority.is_empty() {
            text = text.replace(url.trim_end_matches('/'), ENGINE);
            text = text.replace(authority, ENGINE);
        }
    }
    text.split(' ')
        .map(|word| {
            let bare = word.trim_matches(|c: char| "()<>,;'\"`".contains(c));
            if bare != ENGINE && looks_like_endpoint(bare) {
                word.replace(bare, ENGINE)
            } else {
                word.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

const ENGINE: &str = "<engine>";

fn looks_like_endpoint(word: &str) -> bool {
    if word.contains("://") || word.parse::<std::net::SocketAddr>().is_ok() {
        return true;
    }
    let Some((host, port)) = word.rsplit_once(':') else {
        return false;
    };
    let port = port.trim_end_matches(|c: char| !c.is_ascii_digit());
    let hostlike = host.contains('.') || host.starts_with('[') || host == "localhost";
    hostlike
        && !port.is_empty()
        && port.len() <= 5
        && port.chars().all(|c| c.is_ascii_digit())
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-[]:".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_taken_out_of_client_messages() {
        let none: &[String] = &[];
        let cases = [
            (
                "error sending request for url (http://10.1.2.3:8081/completion)",
                "error sending request for url (<engine>)",
            ),
            (
                "connection to gpu-7.lan:8081 refused; llama.cpp said: slot busy",
                "connection to <engine> refused; llama.cpp said: slot busy",
            ),
            ("tcp connect error [::1]:9000", "tcp connect error <engine>"),
            (
                "the engine stream ended without an end event",
                "the engine stream ended without an end event",
            ),
            ("at 12:30", "at 12:30"),
        ];
        for (message, expected) in cases {
            assert_eq!(without_endpoints(message, none), expected);
        }
    }

    #[test]
    fn configured_engine_urls_and_credentials_are_removed() {
        let urls = vec!["http://user:pw@10.0.0.7:8081/".to_string()];
        let text = without_endpoints(
            "cannot reach llama-server: error sending request for url (http://user:pw@10.0.0.7:8081/completion) via 10.0.0.7:8081 and 127.0.0.1:9",
            &urls,
        );
        assert!(
            !text.contains("8081") && !text.contains("pw") && !text.contains(":9"),
            "{text}"
        );
        assert!(
            text.starts_with("cannot reach llama-server: error sending request"),
            "{text}"
        );
    }
}
