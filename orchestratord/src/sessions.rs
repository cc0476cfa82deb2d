//! Sessions: metadata only (turns, TTL, token budget), never prompts or outputs. Each admitted
//! turn holds a [`Reservation`] of its `max_tokens`, given back when it is settled or dropped,
//! whichever way the task ends. Expired sessions are found through an expiry queue, so the cost
//! of an admission does not grow with the number of live sessions.

use llorch_api_types::SessionInfo;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const TTL: Duration = Duration::from_millis(600_000);
pub const MAX_TURNS: u32 = 8;
/// Expired sessions looked at per admission, at most: the sweep is amortised.
const SWEEP_PER_CALL: usize = 64;

struct Session {
    /// Tells this session from an earlier one with the same id (ended, or expired).
    generation: u64,
    last_used: Instant,
    turns: u32,
    tokens_used: u64,
    /// Tokens reserved by turns still running (their `max_tokens`).
    tokens_reserved: u64,
}

impl Session {
    fn expired(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_used) >= TTL
    }
}

#[derive(Default)]
struct Table {
    sessions: HashMap<String, Session>,
    /// One entry per session, roughly oldest first; an entry whose session was used since is
    /// put back with its new time instead of expiring it.
    expiry: VecDeque<(Instant, String)>,
    generations: u64,
}

impl Table {
    fn sweep(&mut self, now: Instant) {
        for _ in 0..SWEEP_PER_CALL {
            let Some((since, _)) = self.expiry.front() else {
                return;
            };
            if now.saturating_duration_since(*since) < TTL {
                return;
            }
            let Some((_, id)) = self.expiry.pop_front() else {
                return;
            };
            match self.sessions.get(&id) {
                Some(s) if s.expired(now) && s.tokens_reserved == 0 => {
                    self.sessions.remove(&id);
                }
                Some(s) => self.expiry.push_back((s.last_used, id)),
                None => {}
            }
        }
    }
}

#[derive(Default)]
pub struct Sessions {
    table: Mutex<Table>,
    /// Tokens a session may stream over all its turns; `None` is unlimited.
    tokens_budget: Option<u64>,
}

impl Sessions {
    pub fn with_tokens_budget(tokens_budget: Option<u64>) -> Arc<Self> {
        Arc::new(Sessions {
            tokens_budget: tokens_budget.filter(|b| *b > 0),
            ..Default::default()
        })
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a turn that may stream up to `max_tokens`; refuses the ninth turn, and a turn the
    /// session's token budget cannot cover. Expired sessions start over.
    pub fn begin_turn(self: &Arc<Self>, id: &str, max_tokens: u32) -> Result<Reservation, String> {
        let mut table = self.table();
        let now = Instant::now();
        table.sweep(now);
        table.generations += 1;
        let fresh = Session {
            generation: table.generations,
            last_used: now,
            turns: 0,
            tokens_used: 0,
            tokens_reserved: 0,
        };
        let session = match table.sessions.get_mut(id) {
            Some(s) if s.expired(now) && s.tokens_reserved == 0 => {
                *s = fresh;
                s
            }
            Some(s) => s,
            None => {
                table.expiry.push_back((now, id.to_string()));
                table.sessions.entry(id.to_string()).or_insert(fresh)
            }
        };
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
        Ok(Reservation {
            sessions: self.clone(),
            session_id: id.to_string(),
            generation: session.generation,
            reserved: max_tokens,
            used: 0,
            undo: false,
        })
    }

    fn settle(&self, r: &Reservation) {
        let mut table = self.table();
        let Some(session) = table
            .sessions
            .get_mut(&r.session_id)
            .filter(|s| s.generation == r.generation)
        else {
            return;
        };
        session.tokens_reserved = session
            .tokens_reserved
            .saturating_sub(u64::from(r.reserved));
        if r.undo {
            session.turns = session.turns.saturating_sub(1);
            if session.turns == 0 {
                table.sessions.remove(&r.session_id);
            }
        } else {
            session.tokens_used += u64::from(r.used);
        }
    }

    pub fn info(&self, id: &str) -> Option<SessionInfo> {
        let table = self.table();
        let s = table.sessions.get(id)?;
        let age = s.last_used.elapsed();
        if age >= TTL {
            return None;
        }
        Some(SessionInfo {
            ttl_ms_remaining: (TTL - age).as_millis() as u64,
            turns: s.turns,
            kv_bytes: None,
            kv_warmth: None,
            tokens_budget_remaining: self
                .tokens_budget
                .map(|b| b.saturating_sub(s.tokens_used + s.tokens_reserved)),
            time_budget_remaining_ms: None,
            cost_budget_remaining: None,
        })
    }

    pub fn end(&self, id: &str) {
        self.table().sessions.remove(id);
    }

    /// Sessions held in memory (live, or expired and not swept yet).
    pub fn len(&self) -> usize {
        self.table().sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A turn's hold on its session's token budget: settled with the tokens the turn streamed, or
/// given back whole when the task ends without streaming, or undone for a task that was not
/// admitted after all. Dropping it settles it with what it has recorded.
pub struct Reservation {
    sessions: Arc<Sessions>,
    session_id: String,
    generation: u64,
    reserved: u32,
    used: u32,
    undo: bool,
}

impl Reservation {
    /// The turn streamed `used` tokens.
    pub fn settle(mut self, used: u32) {
        self.used = used;
    }

    /// The task was not admitted: the turn and its reservation are given back.
    pub fn undo(mut self) {
        self.undo = true;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.sessions.settle(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_given_back_on_drop_and_charged_when_settled() {
        let sessions = Sessions::with_tokens_budget(Some(100));
        let r = sessions.begin_turn("s", 60).unwrap();
        assert!(sessions.begin_turn("s", 60).is_err(), "60 are reserved");
        drop(r);
        let r = sessions.begin_turn("s", 60).unwrap();
        r.settle(10);
        assert_eq!(
            sessions.info("s").unwrap().tokens_budget_remaining,
            Some(90)
        );
        assert_eq!(sessions.info("s").unwrap().turns, 2);
        sessions.begin_turn("s", 5).unwrap().undo();
        assert_eq!(sessions.info("s").unwrap().turns, 2);
    }

    #[test]
    fn a_turn_of_an_ended_session_never_settles_against_its_successor() {
        let sessions = Sessions::with_tokens_budget(Some(100));
        let old = sessions.begin_turn("s", 60).unwrap();
        sessions.end("s");
        let new = sessions.begin_turn("s", 30).unwrap();
        drop(old);
        assert_eq!(
            sessions.info("s").unwrap().tokens_budget_remaining,
            Some(70)
        );
        new.settle(5);
        assert_eq!(
            sessions.info("s").unwrap().tokens_budget_remaining,
            Some(95)
        );
    }

    #[test]
    fn expired_sessions_are_swept_a_few_at_a_time() {
        let sessions = Sessions::with_tokens_budget(None);
        let long_ago = Instant::now() - TTL - Duration::from_secs(1);
        {
            let mut table = sessions.table();
            for i in 0..1000 {
                let id = format!("old-{i}");
                table.expiry.push_back((long_ago, id.clone()));
                table.sessions.insert(
                    id,
                    Session {
                        generation: 0,
                        last_used: long_ago,
                        turns: 1,
                        tokens_used: 0,
                        tokens_reserved: 0,
                    },
                );
            }
        }
        sessions.begin_turn("new", 1).unwrap().settle(1);
        assert_eq!(sessions.len(), 1000 - SWEEP_PER_CALL + 1);
        for _ in 0..20 {
            sessions.begin_turn("new", 1).ok();
        }
        assert_eq!(sessions.len(), 1, "every expired session is gone");
        assert!(sessions.info("old-1").is_none());
    }
}
