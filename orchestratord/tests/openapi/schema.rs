//! A small, strict JSON Schema check for the keywords the daemon's OpenAPI 3.1 document uses.
//! A keyword it does not know fails the check rather than being skipped, so a document that
//! grows new constraints cannot pass unchecked.

use serde_json::Value;

/// Keywords that only describe (they constrain nothing).
const ANNOTATIONS: &[&str] = &[
    "description",
    "title",
    "format",
    "example",
    "examples",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// Every way `value` breaks `schema` (empty when it conforms). `document` resolves `$ref`s.
pub fn violations(document: &Value, schema: &Value, value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    check(document, schema, value, "$", &mut found);
    found
}

fn check(document: &Value, schema: &Value, value: &Value, at: &str, found: &mut Vec<String>) {
    let Some(schema) = schema.as_object() else {
        if schema != &Value::Bool(true) {
            found.push(format!("{at}: schema {schema} is not an object"));
        }
        return;
    };
    for (keyword, rule) in schema {
        match keyword.as_str() {
            "$ref" => match resolve(document, rule) {
                Some(target) => check(document, target, value, at, found),
                None => found.push(format!("{at}: unresolved $ref {rule}")),
            },
            "type" => {
                let allowed: Vec<&str> = match rule {
                    Value::String(one) => vec![one.as_str()],
                    Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
                    _ => vec![],
                };
                if !allowed.iter().any(|t| is_type(value, t)) {
                    found.push(format!("{at}: {value} is not of type {rule}"));
                }
            }
            "enum" => {
                if !rule.as_array().is_some_and(|values| values.contains(value)) {
                    found.push(format!("{at}: {value} is not one of {rule}"));
                }
            }
            "required" => {
                for name in rule.as_array().into_iter().flatten() {
                    let name = name.as_str().unwrap_or_default();
                    if value.is_object() && value.get(name).is_none() {
                        found.push(format!("{at}: required property {name:?} is missing"));
                    }
                }
            }
            "properties" => {
                let (Some(properties), Some(object)) = (rule.as_object(), value.as_object()) else {
                    continue;
                };
                for (name, property) in properties {
                    if let Some(field) = object.get(name) {
                        check(document, property, field, &format!("{at}.{name}"), found);
                    }
                }
            }
            "additionalProperties" => {
                let Some(object) = value.as_object() else {
                    continue;
                };
                let declared = schema.get("properties").and_then(Value::as_object);
                for (name, field) in object {
                    if declared.is_some_and(|d| d.contains_key(name)) {
                        continue;
                    }
                    match rule {
                        Value::Bool(false) => {
                            found.push(format!("{at}: property {name:?} is not allowed"))
                        }
                        Value::Bool(true) => {}
                        _ => check(document, rule, field, &format!("{at}.{name}"), found),
                    }
                }
            }
            "items" => {
                for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                    check(document, rule, item, &format!("{at}[{i}]"), found);
                }
            }
            "minimum" | "maximum" => {
                let (Some(bound), Some(number)) = (rule.as_f64(), value.as_f64()) else {
                    continue;
                };
                let outside = if keyword == "minimum" {
                    number < bound
                } else {
                    number > bound
                };
                if outside {
                    found.push(format!("{at}: {number} is outside {keyword} {bound}"));
                }
            }
            "oneOf" | "anyOf" | "allOf" => {
                let branches = rule.as_array().map(Vec::as_slice).unwrap_or_default();
                let passing = branches
                    .iter()
                    .filter(|branch| violations(document, branch, value).is_empty())
                    .count();
                let ok = match keyword.as_str() {
                    "oneOf" => passing == 1,
                    "anyOf" => passing >= 1,
                    _ => passing == branches.len(),
                };
                if !ok {
                    found.push(format!(
                        "{at}: {value} matches {passing} of the {} branches of {keyword}",
                        branches.len()
                    ));
                }
            }
            other if ANNOTATIONS.contains(&other) || other.starts_with("x-") => {}
            other => found.push(format!("{at}: the check does not know keyword {other:?}")),
        }
    }
}

fn is_type(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => false,
    }
}

/// `#/components/schemas/X` (any local JSON pointer) in `document`.
fn resolve<'a>(document: &'a Value, reference: &Value) -> Option<&'a Value> {
    let pointer = reference.as_str()?.strip_prefix('#')?;
    document.pointer(pointer)
}
