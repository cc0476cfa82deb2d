//! `GET /openapi.json`: an OpenAPI 3.1 document generated from the wire types. It documents
//! exactly the (method, path) pairs the daemon serves (its route table, and its router asked
//! through `405 Allow`), marks as `bearer` exactly the routes that refuse a missing token, and
//! its schemas agree with serde (wire.rs) and with the daemon's real answers (answers.rs).

#[path = "openapi/answers.rs"]
mod answers;
#[path = "openapi/schema.rs"]
mod schema;
mod support;
#[path = "openapi/wire.rs"]
mod wire;

use reqwest::Method;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use support::TestServer;

/// The methods an OpenAPI path item may hold, as the document spells them.
const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// The document as the daemon serves it.
pub async fn document(daemon: &TestServer) -> Value {
    let response = daemon
        .client
        .get(format!("{}/openapi.json", daemon.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "the document is served as JSON"
    );
    response.json().await.unwrap()
}

/// Every documented (METHOD, path template).
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("the document has paths");
    let mut pairs = BTreeSet::new();
    for (path, item) in paths {
        for method in METHODS {
            if item.get(*method).is_some() {
                pairs.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    pairs
}

/// Every documented operation: (METHOD, path template, operation).
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(operation) = item.get(*method) {
                found.push((method.to_uppercase(), path.clone(), operation));
            }
        }
    }
    found
}

/// A concrete path for a template: each `{param}` becomes a value no resource has.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|part| {
            if part.starts_with('{') {
                "no-such-thing"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn path_params(template: &str) -> BTreeSet<String> {
    template
        .split('/')
        .filter_map(|p| p.strip_prefix('{').and_then(|p| p.strip_suffix('}')))
        .map(str::to_string)
        .collect()
}

/// The documented answer of `METHOD path` with `status`; panics when it is not documented.
pub fn response<'a>(doc: &'a Value, method: &str, path: &str, status: u16) -> &'a Value {
    let operation = &doc["paths"][path][method.to_lowercase()];
    assert!(operation.is_object(), "{method} {path} is not documented");
    let answer = &operation["responses"][status.to_string()];
    assert!(
        answer.is_object(),
        "{method} {path} answered {status}, which its documentation does not list: {}",
        operation["responses"]
    );
    answer
}

/// Checks a real answer against the document: its status is documented for the operation, its
/// content type is the documented one, and a JSON body matches the documented schema. Returns
/// the JSON body (`Null` when there is none).
pub async fn conforms(doc: &Value, method: &str, path: &str, answer: reqwest::Response) -> Value {
    let status = answer.status().as_u16();
    let documented = response(doc, method, path, status);
    let content_type = answer
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let text = answer.text().await.unwrap();
    let Some(content) = documented.get("content").and_then(Value::as_object) else {
        assert!(
            text.is_empty(),
            "{method} {path} {status}: undocumented body {text}"
        );
        return Value::Null;
    };
    let content_type = content_type.expect("an answer with a body declares its type");
    let media = content
        .get(&content_type)
        .unwrap_or_else(|| panic!("{method} {path} {status}: {content_type} is not documented"));
    if !content_type.starts_with("application/json") {
        return Value::Null;
    }
    let body: Value = serde_json::from_str(&text).unwrap();
    let problems = schema::violations(doc, &media["schema"], &body);
    assert!(
        problems.is_empty(),
        "{method} {path} {status} does not match its schema: {problems:#?}\n{body:#}"
    );
    body
}

#[tokio::test]
async fn documents_every_route_served_and_no_other() {
    let daemon = support::start(support::config(&[])).await;
    let doc = document(&daemon).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "an OpenAPI 3.1 document: {}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "llama-orch");

    let served: BTreeSet<(String, String)> = orchestratord::api::ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    let documented = documented(&doc);
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not documented: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "documented but not served: {unserved:?}"
    );

    // The router itself, asked with a method the path does not document: 405 and an `Allow`
    // header listing exactly the documented methods (axum adds HEAD to every GET).
    let mut by_path: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (method, path) in &documented {
        by_path.entry(path).or_default().insert(method.clone());
    }
    for (path, methods) in &by_path {
        let probe = ["PATCH", "PUT", "DELETE", "POST", "GET"]
            .into_iter()
            .find(|m| !methods.contains(*m))
            .expect("a method the path does not take");
        let answer = daemon
            .client
            .request(
                Method::from_bytes(probe.as_bytes()).unwrap(),
                format!("{}{}", daemon.url, concrete(path)),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 405, "{probe} {path}");
        let allow: BTreeSet<String> = answer.headers()["allow"]
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_string())
            .filter(|m| m != "HEAD")
            .collect();
        assert_eq!(&allow, methods, "the methods the router takes on {path}");
    }

    let mut ids = BTreeSet::new();
    for (method, path, operation) in operations(&doc) {
        let id = operation["operationId"].as_str().unwrap_or_default();
        assert!(
            ids.insert(id.to_string()),
            "{method} {path}: operationId {id:?} is not unique"
        );
        let declared: BTreeSet<String> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .inspect(|p| assert_eq!(p["required"], true, "{method} {path}: {p}"))
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            declared,
            path_params(&path),
            "{method} {path}: path parameters"
        );
        let responses = operation["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path} documents no success"
        );
        assert!(
            responses.contains_key("403"),
            "{method} {path}: the origin guard's 403"
        );
    }
}

#[tokio::test]
async fn bearer_marks_exactly_the_routes_that_need_the_token() {
    let daemon = support::start_with(support::config(&[]), Some("a-test-token")).await;
    let doc = document(&daemon).await;
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    for (method, path, operation) in operations(&doc) {
        let bearer = operation["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
        let answer = daemon
            .client
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{}", daemon.url, concrete(&path)),
            )
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        let body = conforms(&doc, &method, &path, answer).await;
        if bearer {
            assert_eq!(
                status, 401,
                "{method} {path} is documented as needing the token"
            );
            // The envelope's code (or, in another documented shape, the same code inside it).
            assert!(
                body.to_string().contains("MISSING_TOKEN"),
                "{method} {path}: {body}"
            );
        } else {
            assert_ne!(status, 401, "{method} {path} is documented as public");
        }
    }
}
