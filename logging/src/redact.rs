//! Keeping secrets out of every sink: the `Secret` wrapper and the sensitive-key rule.

use slog::{Key, Record, Serializer, Value};
use std::fmt;

/// What a redacted value is written as, in every sink.
pub const REDACTED: &str = "[REDACTED]";

/// A value that must never be logged. Logs, `Debug` and `Display` all show `[REDACTED]`;
/// the real value is only reachable through [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> Value for Secret<T> {
    fn serialize(&self, _: &Record, key: Key, serializer: &mut dyn Serializer) -> slog::Result {
        serializer.emit_str(key, REDACTED)
    }
}

const SENSITIVE_ENDINGS: &[&str] = &[
    "authorization",
    "token",
    "password",
    "passwd",
    "secret",
    "cookie",
    "apikey",
    "bearer",
    "credential",
    "credentials",
];

/// True when a field named `key` may hold a secret: ignoring case and separators, its name
/// ends with a sensitive word. `auth_token`, `apiKey`, `X-Api-Key` and `Set-Cookie` are
/// sensitive; `first_token_ms`, `tokens_out` and `max_tokens` are not.
pub fn is_sensitive_key(key: &str) -> bool {
    let mut folded = [0u8; 64];
    let mut len = 0;
    for b in key.bytes().rev().filter(u8::is_ascii_alphanumeric) {
        if len == folded.len() {
            break;
        }
        folded[len] = b.to_ascii_lowercase();
        len += 1;
    }
    let reversed_tail = &folded[..len];
    SENSITIVE_ENDINGS.iter().any(|word| {
        word.len() <= len && word.bytes().rev().zip(reversed_tail).all(|(a, b)| a == *b)
    })
}

/// A direct-mapped cache of `is_sensitive_key` verdicts keyed by the key's address: keys are
/// `&'static str` constants, so the worker pays the word scan once per distinct key.
pub(crate) struct SensitiveKeyCache {
    slots: Vec<Option<(usize, usize, bool)>>,
}

impl SensitiveKeyCache {
    const SLOTS: usize = 512;

    pub(crate) fn new() -> Self {
        SensitiveKeyCache {
            slots: vec![None; Self::SLOTS],
        }
    }

    pub(crate) fn is_sensitive(&mut self, key: &'static str) -> bool {
        let addr = key.as_ptr() as usize;
        let slot = (addr >> 3) % Self::SLOTS;
        if let Some((a, len, verdict)) = self.slots[slot] {
            if a == addr && len == key.len() {
                return verdict;
            }
        }
        let verdict = is_sensitive_key(key);
        self.slots[slot] = Some((addr, key.len(), verdict));
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_keys_in_any_case_and_spelling() {
        for key in [
            "authorization",
            "Authorization",
            "api_key",
            "API_KEY",
            "x-api-key",
            "apikey",
            "token",
            "auth_token",
            "access.token",
            "password",
            "db_password",
            "secret",
            "client_secret",
            "cookie",
            "Set-Cookie",
            "bearer",
            "apiKey",
            "accessToken",
            "proxy-authorization",
        ] {
            assert!(is_sensitive_key(key), "{key} should be sensitive");
        }
    }

    #[test]
    fn taxonomy_keys_are_not_sensitive() {
        for key in [
            "tokens_in",
            "tokens_out",
            "max_tokens",
            "job_id",
            "session_id",
            "prompt_len",
            "keyboard",
            "api_version",
            "first_token_ms",
            "token_count",
            "password_len",
        ] {
            assert!(!is_sensitive_key(key), "{key} should not be sensitive");
        }
    }

    #[test]
    fn cache_agrees_with_rule() {
        let mut cache = SensitiveKeyCache::new();
        for _ in 0..2 {
            assert!(cache.is_sensitive("api_key"));
            assert!(!cache.is_sensitive("tokens_out"));
        }
    }

    #[test]
    fn secret_hides_itself_everywhere() {
        let s = Secret::new("hunter2".to_string());
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(s.expose(), "hunter2");
    }
}
