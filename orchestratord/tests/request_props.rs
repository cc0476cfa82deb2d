//! Property test of the task request parser at the edge: whatever the body, `POST /v1/tasks`
//! answers 202, a 4xx, or the contract's 503 for a model no pool serves, with the contract's
//! envelope, never a 500 or a dropped connection, never
//! echoes the prompt in its error, and repeats no raw control character from the client.

mod support;

use proptest::prelude::*;
use serde_json::{json, Value};
use support::{config, start, task};

const CANARY: &str = "CANARY-prompt-7f3e";

/// Values of every JSON type, including ones a field does not take.
fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u32>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,40}".prop_map(Value::from),
        "[\\x00-\\x1f\\x7f\\u{202e}a-z]{0,40}".prop_map(Value::from),
    ]
}

const FIELDS: &[&str] = &[
    "task_id",
    "session_id",
    "workload",
    "model_ref",
    "engine",
    "ctx",
    "priority",
    "max_tokens",
    "deadline_ms",
    "prompt",
    "seed",
    "temperature",
    "top_p",
    "stop",
    "pool_id",
    "unknown_field",
];

/// A valid request with some fields replaced, removed, or added; or raw bytes.
fn any_body() -> impl Strategy<Value = Vec<u8>> {
    let edited = prop::collection::vec(
        (prop::sample::select(FIELDS), prop::option::of(any_value())),
        0..4,
    )
    .prop_map(|edits| {
        let mut body = task(8, "interactive");
        body["prompt"] = Value::from(CANARY);
        if edits.is_empty() {
            // The prompt in a shape the parser refuses.
            body["prompt"] = json!([CANARY, {"nested": CANARY}]);
        }
        for (field, value) in edits {
            match value {
                Some(v) => body[field] = v,
                None => {
                    body.as_object_mut().map(|o| o.remove(field));
                }
            }
        }
        serde_json::to_vec(&body).unwrap_or_default()
    });
    prop_oneof![
        4 => edited,
        1 => prop::collection::vec(any::<u8>(), 0..200),
        1 => "\\PC{0,200}".prop_map(|s| format!("{{\"prompt\":\"{CANARY}\",{s}").into_bytes()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn any_task_body_gets_an_answer_in_the_contract_shape(bodies in prop::collection::vec(any_body(), 1..4)) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let daemon = start(config(&[])).await;
            for body in bodies {
                let response = daemon
                    .client
                    .post(format!("{}/v1/tasks", daemon.url))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("the daemon answers");
                let status = response.status().as_u16();
                let text = response.text().await.unwrap();
                // 503 is the contract's answer when no ready pool serves the engine and model.
                assert!(
                    status == 202 || (400..500).contains(&status) || (status == 503 && text.contains("POOL_UNAVAILABLE")),
                    "{status}: {text}"
                );
                if status != 202 {
                    let envelope: Value = serde_json::from_str(&text).expect("an error envelope");
                    assert!(envelope["code"].is_string(), "{text}");
                    assert!(envelope["message"].is_string(), "{text}");
                    assert!(!text.contains(CANARY), "the prompt was echoed: {text}");
                    let message = envelope["message"].as_str().unwrap_or("");
                    assert!(
                        !message.chars().any(|c| c.is_control() || c == '\u{202e}'),
                        "raw control characters from the client in: {message:?}"
                    );
                }
            }
        });
    }
}
