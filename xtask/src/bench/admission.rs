//! `cargo xtask bench admission`: `POST /v1/tasks` as fast as Debian's `wrk` sends them (a Lua
//! script makes every task and session id unique), against orchestratord's release binary on the
//! mock engine. Three runs: a fresh daemon with a large queue and an instant mock (tasks
//! admitted per second, latency p50/p99); the same daemon again, now holding the sessions of
//! the first run; and a daemon whose queue is full (slow mock, small queue): the 429 rate and
//! the latency of refusals.

use super::configs::{mock_pool, MockSpeed};
use super::process::Service;
use super::{cpu, machine, orchd};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The wrk script: unique ids per request, counts by status, one JSON line at the end.
const SCRIPT: &str = r#"
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  run = tonumber(args[1]) or 0
  max_tokens = tonumber(args[2]) or 1
  counter, accepted, full, other, other_status = 0, 0, 0, 0, 0
end
function request()
  counter = counter + 1
  local id = string.format("%08x-%04x-4000-8000-%012x", tid, run, counter)
  local session = string.format("%08x-%04x-4000-9000-%012x", tid, run, counter)
  local body = '{"task_id":"' .. id .. '","session_id":"' .. session ..
    '","workload":"completion","engine":"mock","model_ref":"mock:tiny","ctx":4096,' ..
    '"priority":"interactive","max_tokens":' .. max_tokens ..
    ',"deadline_ms":864000000,"prompt":"hi"}'
  return wrk.format("POST", "/v1/tasks", {["Content-Type"] = "application/json"}, body)
end
function response(status, headers, body)
  if status == 202 then accepted = accepted + 1
  elseif status == 429 then full = full + 1
  else
    other = other + 1
    if other_status == 0 then other_status = status end
  end
end
function done(summary, latency, requests)
  local a, f, o, s = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("accepted"); f = f + t:get("full"); o = o + t:get("other")
    if s == 0 then s = t:get("other_status") end
  end
  io.write(string.format('BENCH {"requests":%d,"duration_us":%d,"accepted":%d,"full":%d,' ..
    '"other":%d,"other_status":%d,"p50_us":%d,"p99_us":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration, a, f, o, s, latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"#;

#[derive(serde::Deserialize)]
struct WrkResult {
    requests: u64,
    duration_us: u64,
    accepted: u64,
    full: u64,
    other: u64,
    /// The status of the first answer that was neither 202 nor 429.
    other_status: u16,
    p50_us: u64,
    p99_us: u64,
    socket_errors: u64,
}

const SECONDS: u32 = 10;
const CONNECTIONS: u32 = 32;

fn ensure_wrk() -> Result<(), String> {
    let found = Command::new("wrk").arg("--version").output().is_ok();
    if found {
        return Ok(());
    }
    println!("==> installing wrk from Debian");
    crate::packages::apt_install(&["wrk"])
}

/// One wrk run: its label, length, the `max_tokens` of its tasks, and a number that keeps its
/// ids apart from other runs' on the same daemon.
struct Run {
    label: String,
    seconds: u32,
    max_tokens: u32,
    id: u32,
}

/// Runs wrk against `daemon`; wrk's figures, the daemon's and wrk's cores.
fn wrk(daemon: &Service, script: &Path, run: &Run) -> Result<(WrkResult, f64, f64), String> {
    let daemon_before = cpu::tree_cpu(daemon.pid());
    let wrk_before = children_cpu();
    let output = Command::new("wrk")
        .args(["-t", "1", "-c", &CONNECTIONS.to_string()])
        .args(["-d", &format!("{}s", run.seconds), "--timeout", "5s", "-s"])
        .arg(script)
        .arg(daemon.url())
        .args(["--", &run.id.to_string(), &run.max_tokens.to_string()])
        .output()
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("BENCH "))
        .ok_or_else(|| format!("wrk printed no result: {text}"))?;
    let result: WrkResult =
        serde_json::from_str(line).map_err(|e| format!("wrk's result ({e}): {line}"))?;
    let seconds = result.duration_us as f64 / 1e6;
    let daemon_cpu = cpu::tree_cpu(daemon.pid()).saturating_sub(daemon_before);
    Ok((
        result,
        daemon_cpu.as_secs_f64() / seconds,
        (children_cpu() - wrk_before) / seconds,
    ))
}

/// CPU seconds of the children this process has waited for.
fn children_cpu() -> f64 {
    // SAFETY: getrusage writes into the struct we pass; a zeroed rusage is a valid value.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn row(out: &mut String, run: &Run, measured: (WrkResult, f64, f64)) {
    let (r, daemon_cores, wrk_cores) = measured;
    let seconds = r.duration_us as f64 / 1e6;
    let other = if r.other + r.socket_errors == 0 {
        "0".to_string()
    } else {
        format!(
            "{} answers (first: {}), {} socket errors",
            r.other, r.other_status, r.socket_errors
        )
    };
    let _ = writeln!(
        out,
        "| {} | {:.0} | {:.0} | {:.1} % | {:.2} | {:.2} | {other} | {:.2} | {:.2} |",
        run.label,
        r.accepted as f64 / seconds,
        r.requests as f64 / seconds,
        100.0 * r.full as f64 / r.requests.max(1) as f64,
        r.p50_us as f64 / 1000.0,
        r.p99_us as f64 / 1000.0,
        daemon_cores,
        wrk_cores,
    );
}

pub fn run(out_dir: &Path, binary: &Path, wait: bool) -> Result<String, String> {
    ensure_wrk()?;
    let logs = out_dir.join("logs");
    let script = logs.join("admission.lua");
    std::fs::write(&script, SCRIPT).map_err(|e| format!("{}: {e}", script.display()))?;
    let instant = MockSpeed {
        tokens_per_sec: 0,
        token_count: 1,
        first_token_delay_ms: 0,
    };
    let slow = MockSpeed {
        tokens_per_sec: 1,
        token_count: 1000,
        first_token_delay_ms: 0,
    };
    let quiet = if wait {
        machine::wait_quiet(0.6, Duration::from_secs(600))
    } else {
        "no wait for a quiet machine".to_string()
    };
    let mut table = String::from(
        "| run | admitted/s | requests/s | 429 | latency p50 ms | latency p99 ms | other errors | \
         daemon cores | wrk cores |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let open = orchd::start(
        binary,
        "orchestratord-admission",
        &mock_pool(4, 64, 1_000_000, &instant),
        &logs,
    )?;
    let fresh = Run {
        label: "fresh daemon".to_string(),
        seconds: SECONDS,
        max_tokens: 1,
        id: 1,
    };
    let measured = wrk(&open, &script, &fresh)?;
    let live_sessions = measured.0.accepted;
    row(&mut table, &fresh, measured);
    let again = Run {
        label: format!("same daemon, {live_sessions} live sessions from the run before"),
        id: 2,
        ..fresh
    };
    row(&mut table, &again, wrk(&open, &script, &again)?);
    drop(open);
    let full = orchd::start(
        binary,
        "orchestratord-queue-full",
        &mock_pool(1, 4, 64, &slow),
        &logs,
    )?;
    let refused = Run {
        label: "queue full (4 slots busy, 64 queued)".to_string(),
        seconds: SECONDS / 2,
        max_tokens: 100,
        id: 1,
    };
    row(&mut table, &refused, wrk(&full, &script, &refused)?);
    Ok(format!(
        "**Machine**: {}; {quiet}.\n\n**Method** (`cargo xtask bench admission`): orchestratord's \
         release binary, production logging (both sinks to files, `info`), one mock pool; Debian's \
         `wrk` (1 thread, {CONNECTIONS} keep-alive connections, {SECONDS} s, a Lua script giving \
         every task and session a new id) posting `POST /v1/tasks` (`max_tokens` 1, a deadline of \
         ten days so that admission's start-time prediction refuses none). Admission runs: 4 \
         replicas × 64 slots, a queue of 1 000 000, an instant mock (`tokens_per_sec` 0, one \
         token): admitted tasks run at once and nobody opens their streams. Queue full: 1 replica \
         × 4 slots held by slow tasks (100 tokens at one a second), a queue of 64, \
         `full_policy = \"reject\"`, {} s. Latency is wrk's, over every response (202 or 429). \
         Cores: CPU time over wall time (`/proc/<pid>/stat` for the daemon, `getrusage` of \
         children for wrk).\n\n{table}",
        machine::describe(),
        SECONDS / 2,
    ))
}
