//! Recorded engines as processes: are they still the process that was started (same pid and
//! start time, not a zombie), and signals to their process group. Linux `/proc` only.

use super::state::ReplicaRecord;

/// What `/proc/<pid>/stat` says of a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStat {
    /// `R`, `S`, `D`, `Z` (exited, not yet reaped), …
    pub state: char,
    pub process_group: i32,
    /// Clock ticks after boot.
    pub start_time: u64,
}

/// Parses a `/proc/<pid>/stat` line. The command name is in parentheses and may itself hold
/// spaces and parentheses, so the fields are read after its last `)`.
pub fn parse_stat(line: &str) -> Option<ProcStat> {
    let rest = &line[line.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state (field 3 of proc(5)), ppid, pgrp, …, starttime (field 22).
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        process_group: fields.get(2)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

pub fn stat(pid: u32) -> Option<ProcStat> {
    let line = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&line)
}

/// The recorded engine still runs: its pid is the same process (same start time) and it has
/// not exited (a zombie waits only for its parent to reap it).
pub fn is_running(record: &ReplicaRecord) -> bool {
    stat(record.pid)
        .is_some_and(|s| s.start_time == record.start_time && !matches!(s.state, 'Z' | 'X'))
}

/// `signal` to the recorded engine's process group (its pid: it leads its own session), or to
/// the process alone when it no longer leads one. Nothing is sent to a process that is not the
/// recorded one.
pub fn signal(record: &ReplicaRecord, signal: i32) {
    let Some(stat) = stat(record.pid).filter(|s| s.start_time == record.start_time) else {
        return;
    };
    let pid = record.pid as i32;
    let target = if stat.process_group == pid { -pid } else { pid };
    // SAFETY: kill(2) with a pid checked to be the recorded engine (or its group) just now.
    unsafe {
        libc::kill(target, signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        let line = "4242 (llama) (server x) S 1 4242 4242 0 -1 4194560 2000 0 0 0 5 3 0 0 20 0 \
                    4 0 987654 123456789 1000 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 \
                    17 1 0 0 0 0 0";
        assert_eq!(
            parse_stat(line),
            Some(ProcStat {
                state: 'S',
                process_group: 4242,
                start_time: 987654
            })
        );
        assert_eq!(parse_stat("4242 (llama"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_seen_running_and_a_changed_start_time_is_not_it() {
        let me = stat(std::process::id()).expect("our own /proc entry");
        let mut record = super::super::state::ReplicaRecord {
            pool_id: "p".into(),
            replica_id: "p-r0".into(),
            pid: std::process::id(),
            start_time: me.start_time,
            port: 1,
            url: String::new(),
            model_ref: String::new(),
            model: Default::default(),
            binary: Default::default(),
            engine_version: String::new(),
            log: Default::default(),
        };
        assert!(is_running(&record));
        record.start_time += 1;
        assert!(!is_running(&record));
    }
}
