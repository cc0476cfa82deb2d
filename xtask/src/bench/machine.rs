//! What a report says about where it ran (processor, cores, memory, kernel, date), and the wait
//! for a quiet machine before a measured run: the 1-minute load average under a bound, for at
//! most a set time, after which the run goes on and the report says so.

use std::process::Command;
use std::time::{Duration, Instant};

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// One line: `Intel(R) Xeon(R) Processor, 2 cores, 24 GiB, Linux 6.x, rustc 1.x, <date> UTC`.
pub fn describe() -> String {
    let model = output("lscpu", &[])
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("Model name:").map(|m| m.trim().to_string()))
        })
        .unwrap_or_else(|| "unknown processor".to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |kib| (kib + 512 * 1024) / (1024 * 1024));
    let kernel = output("uname", &["-r"]).unwrap_or_default();
    let rustc = output("rustc", &["--version"]).unwrap_or_default();
    let date = output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default();
    format!("{model}, {cores} cores, {memory_gib} GiB, Linux {kernel}, {rustc}, {date}")
}

/// The 1-minute load average.
pub fn load() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Waits until the load is under `bound`, at most `limit`; tells what happened, for the report.
pub fn wait_quiet(bound: f64, limit: Duration) -> String {
    let started = Instant::now();
    loop {
        let now = load().unwrap_or(f64::NAN);
        if now < bound {
            return format!(
                "load average {now:.2} at the start (waited {} s for < {bound})",
                started.elapsed().as_secs()
            );
        }
        if started.elapsed() >= limit {
            return format!(
                "**the machine was not quiet**: load average {now:.2} after waiting {} s for \
                 < {bound}; ran anyway",
                started.elapsed().as_secs()
            );
        }
        println!("==> waiting for a quiet machine: load average {now:.2} (want < {bound})");
        std::thread::sleep(Duration::from_secs(15));
    }
}
