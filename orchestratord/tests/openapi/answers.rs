//! The daemon's real answers, successes and refusals, match the schemas the document gives for
//! their status; a task's SSE events match the schema its `x-sse-events` names for each event.

use super::support::{self, read_events, TestServer};
use super::{conforms, document, response, schema};
use reqwest::Method;
use serde_json::{json, Value};

async fn ask(
    daemon: &TestServer,
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

/// The daemon and its document: each answer checked to have the status expected, and to be
/// documented for it and conform to its schema.
struct Checked<'a> {
    daemon: &'a TestServer,
    doc: &'a Value,
}

impl Checked<'_> {
    /// `METHOD path` (a concrete path of `template`) answers `status`; its body.
    async fn answer(
        &self,
        method: Method,
        (template, path): (&str, &str),
        body: Option<&Value>,
        status: u16,
    ) -> Value {
        let answer = ask(self.daemon, method.clone(), path, body).await;
        assert_eq!(answer.status(), status, "{method} {path}");
        conforms(self.doc, method.as_str(), template, answer).await
    }

    async fn get(&self, (template, path): (&str, &str), status: u16) -> Value {
        self.answer(Method::GET, (template, path), None, status)
            .await
    }

    async fn post(
        &self,
        (template, path): (&str, &str),
        body: Option<&Value>,
        status: u16,
    ) -> Value {
        self.answer(Method::POST, (template, path), body, status)
            .await
    }
}

#[tokio::test]
async fn real_answers_match_their_schemas() {
    let daemon = support::start(support::config(&[])).await;
    let doc = document(&daemon).await;
    let api = Checked {
        daemon: &daemon,
        doc: &doc,
    };
    let tasks = ("/v1/tasks", "/v1/tasks");

    // A task: the request the document describes, its admission, its stream and its story.
    let task = support::task(8, "interactive");
    let request_schema =
        &doc["paths"]["/v1/tasks"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(
        schema::violations(&doc, request_schema, &task),
        Vec::<String>::new()
    );
    let admitted = api.post(tasks, Some(&task), 202).await;
    let id = task["task_id"].as_str().unwrap();
    assert_eq!(admitted["task_id"], id);
    stream_events_match_their_schemas(&daemon, &doc, id).await;
    api.get(
        ("/v1/tasks/{id}/story", &format!("/v1/tasks/{id}/story")),
        200,
    )
    .await;
    let cancel = format!("/v1/tasks/{id}/cancel");
    api.post(("/v1/tasks/{id}/cancel", &cancel), None, 204)
        .await;
    let session = format!("/v1/sessions/{}", task["session_id"].as_str().unwrap());
    api.get(("/v1/sessions/{id}", &session), 200).await;
    api.answer(Method::DELETE, ("/v1/sessions/{id}", &session), None, 204)
        .await;

    // Pools and the rest of the control plane.
    api.get(("/v1/capabilities", "/v1/capabilities"), 200).await;
    api.get(("/v1/pools", "/v1/pools"), 200).await;
    let health = api
        .get(("/v1/pools/{id}/health", "/v1/pools/default/health"), 200)
        .await;
    let replica = health["replicas"][0]["replica_id"].as_str().unwrap();
    let replica_story = format!("/v1/pools/default/replicas/{replica}/story");
    api.get(("/v1/pools/{id}/replicas/{rid}/story", &replica_story), 200)
        .await;
    api.get(("/v1/pools/{id}/story", "/v1/pools/default/story"), 200)
        .await;
    let drain = ("/v1/pools/{id}/drain", "/v1/pools/default/drain");
    api.post(drain, Some(&json!({ "deadline_ms": 60000 })), 202)
        .await;
    let undrain = ("/v1/pools/{id}/undrain", "/v1/pools/default/undrain");
    api.post(undrain, None, 200).await;
    let reload = ("/v1/pools/{id}/reload", "/v1/pools/default/reload");
    api.post(reload, Some(&json!({ "model": "mock:tiny" })), 400)
        .await;

    // Probes, metrics, this document.
    for path in ["/health", "/ready", "/metrics", "/openapi.json"] {
        api.get((path, path), 200).await;
    }

    // Refusals, each in the envelope documented for its status.
    let mut invalid = support::task(8, "interactive");
    invalid["max_tokens"] = json!(0);
    let refused = api.post(tasks, Some(&invalid), 400).await;
    assert_eq!(refused["code"], "INVALID_PARAMS");
    let mut unserved = support::task(8, "interactive");
    unserved["model_ref"] = json!("mock:absent");
    api.post(tasks, Some(&unserved), 503).await;
    let missing = api
        .get(("/v1/pools/{id}/health", "/v1/pools/absent/health"), 404)
        .await;
    assert_eq!(missing["code"], "NOT_FOUND");
    api.get(("/v1/admin/log-level", "/v1/admin/log-level"), 404)
        .await;
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

/// The stream of task `id`: each event's data matches the schema `x-sse-events` names for it,
/// and the `oneOf` of all events as a whole.
async fn stream_events_match_their_schemas(daemon: &TestServer, doc: &Value, id: &str) {
    let stream = daemon.open_stream(id).await;
    assert_eq!(stream.status(), 200);
    let documented = response(doc, "GET", "/v1/tasks/{id}/stream", 200);
    let content_type = stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    let events_schema = &documented["content"][&content_type]["schema"];
    assert!(
        events_schema.is_object(),
        "{content_type} is not documented for the stream"
    );
    let events_schema = resolve(doc, events_schema);
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
        let problems = schema::violations(doc, schema, &event.data);
        assert!(problems.is_empty(), "event {}: {problems:#?}", event.event);
        // Each event's data matches the oneOf as a whole, too.
        assert_eq!(
            schema::violations(doc, events_schema, &event.data),
            Vec::<String>::new()
        );
    }
}

/// A schema, its `$ref` followed.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => doc.pointer(reference.trim_start_matches('#')).unwrap(),
        None => schema,
    }
}
