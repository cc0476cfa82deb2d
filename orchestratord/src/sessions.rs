//! Sessions: metadata only (turns, TTL, budgets), never prompts or outputs.

use llorch_api_types::SessionInfo;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const TTL: Duration = Duration::from_millis(600_000);
pub const MAX_TURNS: u32 = 8;

struct Session {
    last_used: Instant,
    turns: u32,
    tokens_used: u64,
    /// Tokens reserved by turns still running (their `max_tokens`).
    tokens_reserved: u64,
}

#[derive(Default)]
pub struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
    /// Tokens a session may stream over all its turns; `None` is unlimited.
    tokens_budget: Option<u64>,
}

impl Sessions {
    pub fn with_tokens_budget(tokens_budget: Option<u64>) -> Self {
        Sessions {
            tokens_budget: tokens_budget.filter(|b| *b > 0),
            ..Default::default()
        }
    }

    /// Counts a turn that may stream up to `max_tokens`; refuses the ninth turn, and a turn the
    /// session's token budget cannot cover. Expired sessions start over.
    pub fn begin_turn(&self, id: &str, max_tokens: u32) -> Result<u32, String> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        sessions.retain(|_, s| now.duration_since(s.last_used) < TTL);
        let session = sessions.entry(id.to_string()).or_insert(Session {
            last_used: now,
            turns: 0,
            tokens_used: 0,
            tokens_reserved: 0,
        });
        if session.turns >= MAX_TURNS {
            return Err(format!(
                "session has used all {MAX_TURNS} turns; start a new session"
            ));
        }
        if let Some(budget) = self.tokens_budget {
            let left = budget.saturating_sub(session.tokens_used + session.tokens_reserved);
            if u64::from(max_tokens) > left {
                return Err(format!(
                    "the session's token budget has {left} tokens left; this task asks for up to {max_tokens}"
                ));
            }
        }
        session.turns += 1;
        session.tokens_reserved += u64::from(max_tokens);
        session.last_used = now;
        Ok(session.turns)
    }

    /// Gives back a turn (and its reservation) counted for a task that was not admitted after all.
    pub fn undo_turn(&self, id: &str, max_tokens: u32) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(session) = sessions.get_mut(id) {
            session.turns = session.turns.saturating_sub(1);
            session.tokens_reserved = session
                .tokens_reserved
                .saturating_sub(u64::from(max_tokens));
            if session.turns == 0 {
                sessions.remove(id);
            }
        }
    }

    /// Settles a finished turn: its reservation of `reserved` tokens becomes the `used` it streamed.
    pub fn charge(&self, id: &str, reserved: u32, used: u32) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(session) = sessions.get_mut(id) {
            session.tokens_reserved = session.tokens_reserved.saturating_sub(u64::from(reserved));
            session.tokens_used += u64::from(used);
        }
    }

    pub fn info(&self, id: &str) -> Option<SessionInfo> {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let s = sessions.get(id)?;
        let age = s.last_used.elapsed();
        if age >= TTL {
            return None;
        }
        Some(SessionInfo {
            ttl_ms_remaining: (TTL - age).as_millis() as u64,
            turns: s.turns,
            kv_bytes: 0,
            kv_warmth: false,
            tokens_budget_remaining: self
                .tokens_budget
                .map(|b| b.saturating_sub(s.tokens_used + s.tokens_reserved)),
            time_budget_remaining_ms: None,
            cost_budget_remaining: None,
        })
    }

    pub fn end(&self, id: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}
