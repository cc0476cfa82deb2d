//! The daemon's own API as an OpenAPI 3.1 document, served at `GET /openapi.json`. It is
//! generated: schemas from the wire types (`llorch_api_types`, `ToSchema`), operations from the
//! handlers' `#[utoipa::path]` annotations, and what every route shares (Bearer auth, the origin
//! guard, the media-type and body-size checks, the correlation id) added here once, from the
//! middleware's own rules. tests/openapi.rs checks it against the routes the daemon serves.

use super::{control, middleware, openai, ops, sessions, stream, tasks};
use crate::error::ApiError;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use llorch_api_types::{
    EndEvent, ErrorCode, ErrorEnvelope, MetricsEvent, StartedEvent, TokenEvent, API_VERSION,
};
use std::borrow::Cow;
use std::sync::OnceLock;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::SchemaType;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    Components, ContentBuilder, OneOfBuilder, Ref, RefOr, Required, ResponseBuilder, Schema, Type,
};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

/// The name of the Bearer security scheme in the document.
const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "llama-orch",
        version = API_VERSION,
        description = "orchestratord: admits generation tasks into bounded per-pool queues, \
            places them on engine replicas and streams their tokens (SSE). Operations marked with \
            `bearer` need `Authorization: Bearer <token>` when the daemon runs with a token. Every \
            error answer is an `ErrorEnvelope`; every answer but 204 carries `X-Correlation-Id`."
    ),
    // Adding a route: every route of `super::ROUTES` is listed here, and only those
    // (tests/openapi.rs fails otherwise). Annotate its handler with `#[utoipa::path(...)]`
    // (method, path, an `operation_id` unique in the document, tag, params, request_body, its
    // own responses) and add it below, e.g. `super::openai::chat::create`; its wire types derive
    // `utoipa::ToSchema` behind api-types' `openapi` feature, as in api-types/src/lib.rs. Bearer
    // security, 401/403/413/415 and the correlation id are added by `SharedRules`, not repeated.
    paths(
        tasks::create,
        stream::stream,
        tasks::cancel,
        tasks::story,
        sessions::info,
        sessions::end,
        control::capabilities,
        control::pools,
        control::pool_health,
        control::drain,
        control::reload,
        control::undrain,
        control::pool_story,
        control::replica_story,
        ops::get_log_level,
        ops::set_log_level,
        ops::metrics,
        ops::health,
        ops::ready,
        document,
        openai::models::list,
        openai::completions::create,
        openai::chat::create,
    ),
    modifiers(&SharedRules),
    tags(
        (name = "tasks", description = "Admission, streaming, cancellation and a task's story"),
        (name = "sessions", description = "Sessions and their budgets"),
        (name = "control", description = "Capabilities, pools, drain, reload and their stories"),
        (name = "ops", description = "Probes, metrics, the log level and this document"),
        (name = "openai", description = "OpenAI-compatible routes (docs/openai.md): the same queue \
            and story as tasks; their errors are `OpenAiErrorResponse`"),
    )
)]
pub struct ApiDoc;

/// This document, as served.
#[utoipa::path(get, path = "/openapi.json",
    operation_id = "openapi_document", tag = "ops",
    responses((status = 200, description = "This OpenAPI document", body = Object)))]
pub async fn document() -> Response {
    // Built once: the document is the same for the daemon's whole life.
    static DOCUMENT: OnceLock<Option<String>> = OnceLock::new();
    match DOCUMENT.get_or_init(|| ApiDoc::openapi().to_json().ok()) {
        Some(text) => ([(header::CONTENT_TYPE, "application/json")], text.as_str()).into_response(),
        None => ApiError::new(
            ErrorCode::Internal,
            "the OpenAPI document could not be written",
        )
        .into_response(),
    }
}

/// The events of a task's stream: each event's name and the schema of its `data`.
pub const STREAM_EVENTS: &[(&str, &str)] = &[
    ("started", "StartedEvent"),
    ("token", "TokenEvent"),
    ("metrics", "MetricsEvent"),
    ("end", "EndEvent"),
    ("error", "ErrorEnvelope"),
];

/// The `data` of one event of `GET /v1/tasks/{id}/stream`. Which schema applies is told by the
/// event's name, listed in the schema's `x-sse-events` (event name → schema).
pub struct TaskEvent;

impl PartialSchema for TaskEvent {
    fn schema() -> RefOr<Schema> {
        let mut one_of = OneOfBuilder::new().description(Some(
            "The JSON `data` of one SSE event; its schema follows from the event's name \
             (`x-sse-events`). A stream sends `started`, then `token` and `metrics` events, then \
             exactly one terminal event, `end` or `error`, and closes.",
        ));
        let mut names = serde_json::Map::new();
        for (event, schema) in STREAM_EVENTS {
            one_of = one_of.item(Ref::from_schema_name(*schema));
            let location = format!("#/components/schemas/{schema}");
            names.insert(
                (*event).to_string(),
                serde_json::json!({ "$ref": location }),
            );
        }
        let mut extensions = Extensions::default();
        extensions.insert("x-sse-events".into(), names.into());
        Schema::OneOf(one_of.extensions(Some(extensions)).build()).into()
    }
}

impl ToSchema for TaskEvent {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("TaskEvent")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        fn add<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            schemas.push((T::name().into_owned(), T::schema()));
            T::schemas(schemas);
        }
        add::<StartedEvent>(schemas);
        add::<TokenEvent>(schemas);
        add::<MetricsEvent>(schemas);
        add::<EndEvent>(schemas);
        add::<ErrorEnvelope>(schemas);
    }
}

/// What the middleware does to every route, told once: Bearer auth except where the middleware
/// exempts the path, the origin guard's 403, the media-type guard's 415 on mutating methods, the
/// body limit's 413 where a body is read, and the correlation id in and out.
struct SharedRules;

impl Modify for SharedRules {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Components::new);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                ("GET", &mut item.get),
                ("PUT", &mut item.put),
                ("POST", &mut item.post),
                ("DELETE", &mut item.delete),
                ("PATCH", &mut item.patch),
            ];
            for (method, operation) in operations {
                if let Some(operation) = operation {
                    apply(path, method, operation);
                }
            }
        }
    }
}

fn apply(path: &str, method: &str, operation: &mut Operation) {
    if let Some(body) = operation.request_body.as_mut() {
        for content in body.content.values_mut() {
            content.schema = content.schema.take().map(not_null);
        }
    }
    let mut refusals = vec![(
        "403",
        "`ORIGIN_NOT_ALLOWED`: a browser request from an origin not in `[server] allowed_origins`",
    )];
    if !middleware::exempt_from_auth(path) {
        operation.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
        refusals.push((
            "401",
            "`MISSING_TOKEN` or `BAD_TOKEN`: the daemon runs with a token and the request did not present it",
        ));
    }
    if method != "GET" {
        refusals.push((
            "415",
            "`UNSUPPORTED_MEDIA_TYPE`: a body (or a content type) that is not `application/json`",
        ));
    }
    if operation.request_body.is_some() {
        refusals.push((
            "413",
            "`PAYLOAD_TOO_LARGE`: the body is larger than `[server] body_limit_bytes`",
        ));
    }
    let responses = &mut operation.responses.responses;
    // A handler that documents one of these itself (another body shape) keeps its own.
    for (status, description) in refusals {
        responses
            .entry(status.into())
            .or_insert_with(|| envelope(description).into());
    }
    for (status, response) in responses.iter_mut() {
        if let (false, RefOr::T(response)) = (status == "204", response) {
            let id = HeaderBuilder::new()
                .schema(String::schema())
                .description(Some("The request's correlation id (echoed, or generated)"))
                .build();
            response.headers.insert("X-Correlation-Id".into(), id);
        }
    }
    let correlation = ParameterBuilder::new()
        .name("X-Correlation-Id")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Correlates the request with its narration: 1-128 of `A-Za-z0-9-_.:`; generated when absent or invalid",
        ))
        .schema(Some(String::schema()))
        .build();
    operation
        .parameters
        .get_or_insert_with(Vec::new)
        .push(correlation);
}

/// An answer whose body is the `ErrorEnvelope`.
fn envelope(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                .build(),
        )
        .build()
}

/// A handler's `request_body = Option<T>` means the body may be left out (utoipa marks it not
/// required), not that it may be JSON `null`, which the handler refuses: its schema is `T`.
fn not_null(schema: RefOr<Schema>) -> RefOr<Schema> {
    let RefOr::T(Schema::OneOf(one_of)) = &schema else {
        return schema;
    };
    let is_null = |item: &RefOr<Schema>| {
        let RefOr::T(Schema::Object(object)) = item else {
            return false;
        };
        object.schema_type == SchemaType::Type(Type::Null)
    };
    match one_of.items.as_slice() {
        [null, only] | [only, null] if is_null(null) => only.clone(),
        _ => schema,
    }
}
