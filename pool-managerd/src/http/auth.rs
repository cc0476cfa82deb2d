//! Bearer-token auth of a control API (pool-managerd's and orchestratord's): the presented token
//! is compared in constant time and never narrated (callers narrate its fingerprint).

use axum::http::HeaderMap;
use llorch_api_types::ErrorCode;
use logging::Secret;
use subtle::ConstantTimeEq;

/// Why a request was refused before it ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthRefusal {
    MissingToken,
    BadToken,
}

impl AuthRefusal {
    pub fn code(self) -> ErrorCode {
        match self {
            AuthRefusal::MissingToken => ErrorCode::MissingToken,
            AuthRefusal::BadToken => ErrorCode::BadToken,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            AuthRefusal::MissingToken => "this server requires `Authorization: Bearer <token>`",
            AuthRefusal::BadToken => "the bearer token is not valid for this server",
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Whether `presented` may pass when the server expects `expected` (no token: everyone may).
pub fn check(
    expected: Option<&Secret<String>>,
    presented: Option<&str>,
) -> Result<(), AuthRefusal> {
    match (expected, presented) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(AuthRefusal::MissingToken),
        (Some(expected), Some(token)) => {
            if bool::from(expected.expose().as_bytes().ct_eq(token.as_bytes())) {
                Ok(())
            } else {
                Err(AuthRefusal::BadToken)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_expected_token_passes() {
        let expected = Secret::new("s3cret".to_string());
        assert_eq!(check(None, None), Ok(()));
        assert_eq!(check(Some(&expected), None), Err(AuthRefusal::MissingToken));
        assert_eq!(
            check(Some(&expected), Some("nope")),
            Err(AuthRefusal::BadToken)
        );
        assert_eq!(check(Some(&expected), Some("s3cret")), Ok(()));
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "bearer  s3cret".parse().unwrap());
        assert_eq!(bearer(&headers), Some("s3cret"));
    }
}
