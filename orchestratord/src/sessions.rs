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
}

#[derive(Default)]
pub struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Counts a turn; refuses the ninth. Expired sessions start over.
    pub fn begin_turn(&self, id: &str) -> Result<u32, String> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        sessions.retain(|_, s| now.duration_since(s.last_used) < TTL);
        let session = sessions.entry(id.to_string()).or_insert(Session {
            last_used: now,
            turns: 0,
        });
        if session.turns >= MAX_TURNS {
            return Err(format!(
                "session has used all {MAX_TURNS} turns; start a new session"
            ));
        }
        session.turns += 1;
        session.last_used = now;
        Ok(session.turns)
    }

    /// Gives back a turn counted for a task that was not admitted after all.
    pub fn undo_turn(&self, id: &str) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(session) = sessions.get_mut(id) {
            session.turns = session.turns.saturating_sub(1);
            if session.turns == 0 {
                sessions.remove(id);
            }
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
            tokens_budget_remaining: None,
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
