//! The error answers of the generation routes (completions and chats), described once for their
//! OpenAPI operations: each body an `OpenAiErrorResponse`, with the codes that lead to it.

use llorch_api_types::openai::OpenAiErrorResponse;
use std::collections::BTreeMap;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{PartialSchema, ToSchema};

/// (status, what leads to it) of each error answer of a generation route.
const ANSWERS: &[(u16, &str)] = &[
    (400, "`INVALID_PARAMS`: `param` names the field"),
    (401, "`MISSING_TOKEN` or `BAD_TOKEN`"),
    (403, "`ORIGIN_NOT_ALLOWED`"),
    (404, "`model_not_found`"),
    (
        409,
        "`canceled`: the task was canceled through the task API",
    ),
    (413, "`PAYLOAD_TOO_LARGE`"),
    (415, "`UNSUPPORTED_MEDIA_TYPE`"),
    (429, "`ADMISSION_REJECT`: the pool's queue is full"),
    (500, "`INTERNAL`"),
    (
        503,
        "`POOL_UNAVAILABLE`, `POOL_UNREADY`, `WORKER_RESET`, `DECODE_TIMEOUT`",
    ),
];

/// `responses(GenerationErrors)` in a generation route's `#[utoipa::path]`.
pub struct GenerationErrors;

impl utoipa::IntoResponses for GenerationErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        ANSWERS
            .iter()
            .map(|&(status, description)| {
                let body = ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(OpenAiErrorResponse::name())))
                    .build();
                let mut answer = ResponseBuilder::new()
                    .description(description)
                    .content("application/json", body);
                if status == 429 {
                    let retry_after = HeaderBuilder::new()
                        .schema(u64::schema())
                        .description(Some("When to retry, in seconds"))
                        .build();
                    answer = answer.header("Retry-After", retry_after);
                }
                (status.to_string(), answer.build().into())
            })
            .collect()
    }
}
