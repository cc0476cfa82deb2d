//! The daemon's real answers, successes and refusals, match the schemas the document gives for
//! their status; a task's SSE events match the schema its `x-sse-events` names for each event.

use super::support::{self, read_events, TestDaemon};
use super::{conforms, document, response, schema};
use reqwest::Method;
use serde_json::{json, Value};

async fn ask(
    daemon: &TestDaemon,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let request = daemon
        .client
        .request(method, format!("{}{path}", daemon.url));
    let request = match body {
        Some(body) => request.json(body),
        None => request,
    };
    request.send().await.unwrap()
}

/// `METHOD path` (a concrete path of `template`) answers `status`, documented and conforming.
async fn check(
    daemon: &TestDaemon,
    doc: &Value,
    (method, template, path): (Method, &str, &str),
    body: Option<&Value>,
    status: u16,
) -> Value {
    let answer = ask(daemon, method.clone(), path, body).await;
    assert_eq!(answer.status(), status, "{method} {path}");
    conforms(doc, method.as_str(), template, answer).await
}

#[tokio::test]
async fn real_answers_match_their_schemas() {
    let daemon = support::start(support::config(&[])).await;
    let doc = document(&daemon).await;
    let get = Method::GET;
    let post = Method::POST;

    // A task: the request the document describes, its admission, its stream and its story.
    let task = support::task(8, "interactive");
    let request_schema =
        &doc["paths"]["/v1/tasks"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(
        schema::violations(&doc, request_schema, &task),
        Vec::<String>::new()
    );
    let admitted = check(
        &daemon,
        &doc,
        (post.clone(), "/v1/tasks", "/v1/tasks"),
        Some(&task),
        202,
    )
    .await;
    let id = task["task_id"].as_str().unwrap();
    assert_eq!(admitted["task_id"], id);

    let stream = daemon.open_stream(id).await;
    assert_eq!(stream.status(), 200);
    let documented = response(&doc, "GET", "/v1/tasks/{id}/stream", 200);
    let content_type = stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    let events_schema = &documented["content"][&content_type]["schema"];
    assert!(
        events_schema.is_object(),
        "{content_type} is not documented for the stream"
    );
    let events_schema = resolve(&doc, events_schema);
    let by_name = &events_schema["x-sse-events"];
    let events = read_events(stream, usize::MAX).await;
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names.first(), Some(&"started"), "{names:?}");
    assert_eq!(names.last(), Some(&"end"), "{names:?}");
    for event in &events {
        let schema = &by_name[&event.event];
        assert!(
            schema.is_object(),
            "event {:?} is not documented",
            event.event
        );
        let problems = schema::violations(&doc, schema, &event.data);
        assert!(problems.is_empty(), "event {}: {problems:#?}", event.event);
        // Each event's data matches the oneOf as a whole, too.
        assert_eq!(
            schema::violations(&doc, events_schema, &event.data),
            Vec::<String>::new()
        );
    }
    let story = format!("/v1/tasks/{id}/story");
    check(
        &daemon,
        &doc,
        (get.clone(), "/v1/tasks/{id}/story", &story),
        None,
        200,
    )
    .await;
    let cancel = format!("/v1/tasks/{id}/cancel");
    check(
        &daemon,
        &doc,
        (post.clone(), "/v1/tasks/{id}/cancel", &cancel),
        None,
        204,
    )
    .await;

    let session = format!("/v1/sessions/{}", task["session_id"].as_str().unwrap());
    check(
        &daemon,
        &doc,
        (get.clone(), "/v1/sessions/{id}", &session),
        None,
        200,
    )
    .await;
    check(
        &daemon,
        &doc,
        (Method::DELETE, "/v1/sessions/{id}", &session),
        None,
        204,
    )
    .await;

    // Pools and the rest of the control plane.
    check(
        &daemon,
        &doc,
        (get.clone(), "/v1/capabilities", "/v1/capabilities"),
        None,
        200,
    )
    .await;
    check(
        &daemon,
        &doc,
        (get.clone(), "/v1/pools", "/v1/pools"),
        None,
        200,
    )
    .await;
    let health = check(
        &daemon,
        &doc,
        (
            get.clone(),
            "/v1/pools/{id}/health",
            "/v1/pools/default/health",
        ),
        None,
        200,
    )
    .await;
    let replica = health["replicas"][0]["replica_id"].as_str().unwrap();
    let replica_story = format!("/v1/pools/default/replicas/{replica}/story");
    check(
        &daemon,
        &doc,
        (
            get.clone(),
            "/v1/pools/{id}/replicas/{rid}/story",
            &replica_story,
        ),
        None,
        200,
    )
    .await;
    check(
        &daemon,
        &doc,
        (
            get.clone(),
            "/v1/pools/{id}/story",
            "/v1/pools/default/story",
        ),
        None,
        200,
    )
    .await;
    let drain = (
        post.clone(),
        "/v1/pools/{id}/drain",
        "/v1/pools/default/drain",
    );
    check(
        &daemon,
        &doc,
        drain,
        Some(&json!({ "deadline_ms": 60000 })),
        202,
    )
    .await;
    let undrain = (
        post.clone(),
        "/v1/pools/{id}/undrain",
        "/v1/pools/default/undrain",
    );
    check(&daemon, &doc, undrain, None, 200).await;
    let reload = (
        post.clone(),
        "/v1/pools/{id}/reload",
        "/v1/pools/default/reload",
    );
    check(
        &daemon,
        &doc,
        reload,
        Some(&json!({ "model": "mock:tiny" })),
        400,
    )
    .await;

    // Probes, metrics, this document.
    check(
        &daemon,
        &doc,
        (get.clone(), "/health", "/health"),
        None,
        200,
    )
    .await;
    check(&daemon, &doc, (get.clone(), "/ready", "/ready"), None, 200).await;
    check(
        &daemon,
        &doc,
        (get.clone(), "/metrics", "/metrics"),
        None,
        200,
    )
    .await;
    check(
        &daemon,
        &doc,
        (get.clone(), "/openapi.json", "/openapi.json"),
        None,
        200,
    )
    .await;

    // Refusals, each in the envelope documented for its status.
    let mut invalid = support::task(8, "interactive");
    invalid["max_tokens"] = json!(0);
    let refused = check(
        &daemon,
        &doc,
        (post.clone(), "/v1/tasks", "/v1/tasks"),
        Some(&invalid),
        400,
    )
    .await;
    assert_eq!(refused["code"], "INVALID_PARAMS");
    let mut unserved = support::task(8, "interactive");
    unserved["model_ref"] = json!("mock:absent");
    check(
        &daemon,
        &doc,
        (post.clone(), "/v1/tasks", "/v1/tasks"),
        Some(&unserved),
        503,
    )
    .await;
    let absent = (
        get.clone(),
        "/v1/pools/{id}/health",
        "/v1/pools/absent/health",
    );
    let missing = check(&daemon, &doc, absent, None, 404).await;
    assert_eq!(missing["code"], "NOT_FOUND");
    let level = (get.clone(), "/v1/admin/log-level", "/v1/admin/log-level");
    check(&daemon, &doc, level, None, 404).await;
    let plain = daemon
        .client
        .post(format!("{}/v1/tasks", daemon.url))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 415);
    conforms(&doc, "POST", "/v1/tasks", plain).await;
    let foreign = daemon
        .client
        .get(format!("{}/v1/pools", daemon.url))
        .header("origin", "https://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    let refused = conforms(&doc, "GET", "/v1/pools", foreign).await;
    assert_eq!(refused["code"], "ORIGIN_NOT_ALLOWED");
}

/// A schema, its `$ref` followed.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => doc.pointer(reference.trim_start_matches('#')).unwrap(),
        None => schema,
    }
}
