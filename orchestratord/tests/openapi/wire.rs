//! The schemas and serde agree on the wire types: a value built from a schema with every
//! property, and one with only the required ones, is read by serde and written back as a value
//! the schema accepts (the full one unchanged); every enum value the schema lists is one serde
//! reads and writes the same; what serde refuses, the schema refuses.

use super::support;
use super::{document, schema};
use llorch_api_types as wire;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};

/// serde's reading of `value` as `T`, written back.
fn through<T: Serialize + DeserializeOwned>(value: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

type Through = fn(&Value) -> Result<Value, String>;

/// Each wire type by the name of its schema.
const WIRE_TYPES: &[(&str, Through)] = &[
    ("TaskRequest", through::<wire::TaskRequest>),
    ("AdmissionResponse", through::<wire::AdmissionResponse>),
    ("ErrorEnvelope", through::<wire::ErrorEnvelope>),
    ("StartedEvent", through::<wire::StartedEvent>),
    ("TokenEvent", through::<wire::TokenEvent>),
    ("MetricsEvent", through::<wire::MetricsEvent>),
    ("EndEvent", through::<wire::EndEvent>),
    ("SessionInfo", through::<wire::SessionInfo>),
    ("Capabilities", through::<wire::Capabilities>),
    ("PoolHealth", through::<wire::PoolHealth>),
    ("PoolPhase", through::<wire::PoolPhase>),
    ("ReloadStep", through::<wire::ReloadStep>),
    ("Workload", through::<wire::Workload>),
    ("Engine", through::<wire::Engine>),
    ("Priority", through::<wire::Priority>),
    ("Determinism", through::<wire::Determinism>),
    ("KvHint", through::<wire::KvHint>),
    ("ErrorCode", through::<wire::ErrorCode>),
    ("StopReason", through::<wire::StopReason>),
];

/// A value of `schema`: with every property (`all`), or only the required ones; `pick` chooses
/// among enum values and `oneOf` branches.
fn example(doc: &Value, schema: &Value, all: bool, pick: usize) -> Value {
    if let Some(reference) = schema["$ref"].as_str() {
        let target = doc.pointer(reference.trim_start_matches('#')).unwrap();
        return example(doc, target, all, pick);
    }
    if let Some(values) = schema["enum"].as_array() {
        return values[pick % values.len()].clone();
    }
    if let Some(branches) = schema["oneOf"].as_array() {
        // `null` is how an optional field is spelled; the example gives it a value.
        let values: Vec<&Value> = branches.iter().filter(|b| b["type"] != "null").collect();
        return example(doc, values[pick % values.len()], all, pick);
    }
    let kind = match &schema["type"] {
        Value::Array(kinds) => kinds.iter().find(|k| *k != "null").cloned().unwrap(),
        kind => kind.clone(),
    };
    match kind.as_str().unwrap_or("object") {
        "object" => {
            let required = schema["required"].as_array().cloned().unwrap_or_default();
            let mut object = Map::new();
            for (name, property) in schema["properties"].as_object().into_iter().flatten() {
                if all || required.contains(&json!(name)) {
                    object.insert(name.clone(), example(doc, property, all, pick));
                }
            }
            Value::Object(object)
        }
        "array" => json!([example(doc, &schema["items"], all, pick)]),
        "string" => json!("a-value"),
        "integer" => json!(7),
        "number" => json!(0.5),
        "boolean" => json!(true),
        other => panic!("no example for type {other}"),
    }
}

#[tokio::test]
async fn schemas_and_serde_agree_on_the_wire_types() {
    let daemon = support::start(support::config(&[])).await;
    let doc = document(&daemon).await;
    let schemas = &doc["components"]["schemas"];
    for (name, through) in WIRE_TYPES {
        let schema = &schemas[*name];
        assert!(schema.is_object(), "the document has no schema {name}");
        let conforms = |value: &Value, what: &str| {
            let problems = schema::violations(&doc, schema, value);
            assert!(
                problems.is_empty(),
                "{name} ({what}): {problems:#?}\n{value:#}"
            );
        };
        // Every value of an enum, every branch of a tagged enum (`oneOf`).
        let variants = schema["enum"]
            .as_array()
            .or(schema["oneOf"].as_array())
            .map_or(1, Vec::len);
        for pick in 0..variants {
            let full = example(&doc, schema, true, pick);
            conforms(&full, "every property");
            let written =
                through(&full).unwrap_or_else(|e| panic!("serde refuses {name} {full}: {e}"));
            assert_eq!(
                written, full,
                "{name}: serde writes back what the schema describes"
            );
            let minimal = example(&doc, schema, false, pick);
            let written = through(&minimal).unwrap_or_else(|e| {
                panic!("serde refuses {name} with its required properties only {minimal}: {e}")
            });
            conforms(&written, "written from the required properties");
        }
    }
}

#[tokio::test]
async fn what_serde_refuses_the_schema_refuses() {
    let daemon = support::start(support::config(&[])).await;
    let doc = document(&daemon).await;
    let schemas = &doc["components"]["schemas"];
    let task = support::task(8, "batch");
    let mut unknown_field = task.clone();
    unknown_field["temprature"] = json!(0.5);
    let mut missing = task.clone();
    missing.as_object_mut().unwrap().remove("task_id");
    let mut wrong_case = task.clone();
    wrong_case["priority"] = json!("Batch");
    let envelope = json!({ "code": "not_found", "message": "pool not found", "retriable": false });
    let cases = [
        (
            "TaskRequest",
            through::<wire::TaskRequest> as Through,
            task.clone(),
            true,
        ),
        (
            "TaskRequest",
            through::<wire::TaskRequest>,
            unknown_field,
            false,
        ),
        ("TaskRequest", through::<wire::TaskRequest>, missing, false),
        (
            "TaskRequest",
            through::<wire::TaskRequest>,
            wrong_case,
            false,
        ),
        (
            "ErrorEnvelope",
            through::<wire::ErrorEnvelope>,
            envelope,
            false,
        ),
    ];
    for (name, through, value, valid) in cases {
        let by_serde = through(&value).is_ok();
        let by_schema = schema::violations(&doc, &schemas[name], &value).is_empty();
        assert_eq!(by_serde, valid, "serde on {name} {value}");
        assert_eq!(by_schema, valid, "the schema of {name} on {value}");
    }
}
