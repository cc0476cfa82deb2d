//! CPU time and memory of processes, read from `/proc`: a process and its descendants
//! (`utime + stime` of `/proc/<pid>/stat`, which include the threads that already exited), this
//! process's own use (`getrusage`), and resident memory (`VmRSS`).

use std::time::Duration;

/// Fields 14 and 15 (`utime`, `stime`) of a `/proc/<pid>/stat` line, in clock ticks, and field 4
/// (the parent's pid). The command name (field 2) may hold spaces and parentheses, so the fields
/// are counted from its closing parenthesis.
fn parse_stat(line: &str) -> Option<(u32, u64)> {
    let rest = &line[line.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): field n is fields[n - 3].
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((ppid, utime + stime))
}

fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|t| *t > 0).unwrap_or(100)
}

/// CPU time used so far by `root` and every process below it (a process that is gone counts
/// nothing: the bench's services keep their processes for the whole run).
pub fn tree_cpu(root: u32) -> Duration {
    let mut table = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            if let Some((ppid, ticks)) = parse_stat(&stat) {
                table.push((pid, ppid, ticks));
            }
        }
    }
    let mut members = vec![root];
    let mut grew = true;
    while grew {
        grew = false;
        for (pid, ppid, _) in &table {
            if members.contains(ppid) && !members.contains(pid) {
                members.push(*pid);
                grew = true;
            }
        }
    }
    let ticks: u64 = table
        .iter()
        .filter(|(pid, _, _)| members.contains(pid))
        .map(|(_, _, ticks)| ticks)
        .sum();
    Duration::from_micros(ticks * 1_000_000 / ticks_per_second())
}

/// CPU time (user + system) this process has used so far, all threads.
pub fn own_cpu() -> Duration {
    // SAFETY: getrusage writes into the struct we pass; a zeroed rusage is a valid value.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

/// Resident memory of `pid` in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_parent_and_cpu_ticks_even_with_a_strange_name() {
        let line = "4242 (tokio (rt) x) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 9 0 \
                    1000 1000000 200 18446744073709551615";
        assert_eq!(parse_stat(line), Some((17, 281)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_found_with_its_memory_and_cpu() {
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(30) {
            std::hint::black_box(0u64);
        }
        assert!(own_cpu() > Duration::ZERO);
        assert!(rss_kib(std::process::id()).is_some_and(|kib| kib > 0));
        // /proc/<pid>/stat answers for this process (the tick count may still be 0).
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", std::process::id())).unwrap();
        assert!(parse_stat(&stat).is_some());
    }
}
