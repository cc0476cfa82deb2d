//! The relay bench's figures: per round and target (from the load client's samples and the CPU
//! time the processes used), then per target and concurrency as medians over rounds with
//! min–max, rendered as the markdown table of BENCHMARKS.md.

use super::load::Round;
use super::stats::{percentile, Spread};
use std::fmt::Write as _;
use std::time::Duration;

/// CPU time used during one round.
#[derive(Clone, Copy, Default)]
pub struct CpuUse {
    /// The proxy's process tree; `None` for the engine itself.
    pub proxy: Option<Duration>,
    pub engine: Duration,
    pub client: Duration,
}

/// One round of one target.
#[derive(Clone, Debug)]
pub struct Figures {
    pub tokens_per_sec: f64,
    pub ttft_p50_ms: Option<f64>,
    pub ttft_p99_ms: Option<f64>,
    pub tokens_per_request: f64,
    /// The median of what the streams said they generated, when they say.
    pub stated_per_request: Option<f64>,
    pub requests: usize,
    pub failed: usize,
    pub first_failure: Option<String>,
    pub proxy_us_per_token: Option<f64>,
    pub engine_us_per_token: f64,
    pub client_us_per_token: f64,
    /// The client's CPU time over the round's wall time (1.0 = one core busy).
    pub client_cores: f64,
}

fn micros_per(cpu: Duration, tokens: f64) -> f64 {
    cpu.as_secs_f64() * 1e6 / tokens
}

impl Figures {
    pub fn of(round: &Round, cpu: CpuUse) -> Figures {
        let tokens: u32 = round.samples.iter().map(|s| s.tokens).sum();
        let tokens = f64::from(tokens);
        let ttfts: Vec<f64> = round
            .samples
            .iter()
            .filter_map(|s| s.ttft)
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        let per_request: Vec<f64> = round.samples.iter().map(|s| f64::from(s.tokens)).collect();
        let stated: Vec<f64> = round
            .samples
            .iter()
            .filter_map(|s| s.stated.map(f64::from))
            .collect();
        let failures: Vec<&String> = round
            .samples
            .iter()
            .filter_map(|s| s.failed.as_ref())
            .collect();
        Figures {
            tokens_per_sec: tokens / round.wall.as_secs_f64(),
            ttft_p50_ms: percentile(&ttfts, 50.0),
            ttft_p99_ms: percentile(&ttfts, 99.0),
            tokens_per_request: percentile(&per_request, 50.0).unwrap_or(0.0),
            stated_per_request: percentile(&stated, 50.0),
            requests: round.samples.len(),
            failed: failures.len(),
            first_failure: failures.first().map(|f| f.to_string()),
            proxy_us_per_token: cpu.proxy.map(|p| micros_per(p, tokens)),
            engine_us_per_token: micros_per(cpu.engine, tokens),
            client_us_per_token: micros_per(cpu.client, tokens),
            client_cores: cpu.client.as_secs_f64() / round.wall.as_secs_f64(),
        }
    }
}

/// A target's rows: its name, why it was not measured, and its rounds per concurrency.
pub struct Row {
    pub name: &'static str,
    pub problem: Option<String>,
    /// `(streams, rounds)`, in the order the concurrencies ran.
    pub rounds: Vec<(usize, Vec<Figures>)>,
}

/// `1 234`: thousands separated by a thin space, as BENCHMARKS.md writes them.
fn count(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// Median (min–max) with `decimals`, or `—` without values.
fn spread(values: &[f64], decimals: usize) -> String {
    match Spread::of(values) {
        None => "—".to_string(),
        Some(s) if decimals == 0 => {
            format!("{} ({}–{})", count(s.median), count(s.min), count(s.max))
        }
        Some(s) => format!(
            "{:.d$} ({:.d$}–{:.d$})",
            s.median,
            s.min,
            s.max,
            d = decimals
        ),
    }
}

/// The markdown table: one row per concurrency and target. `baseline` is the row whose
/// tokens/s the others are divided by, round by round.
pub fn table(rows: &[Row], baseline: usize) -> String {
    let mut out = String::from(
        "| streams | target | events/s | × direct | TTFT p50 ms | TTFT p99 ms | \
         events of tokens per request | \
         proxy CPU µs/event | engine CPU µs/event | client CPU µs/event (cores) | failed |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let concurrencies: Vec<usize> = rows
        .iter()
        .flat_map(|r| r.rounds.iter().map(|(s, _)| *s))
        .fold(Vec::new(), |mut seen, s| {
            if !seen.contains(&s) {
                seen.push(s);
            }
            seen
        });
    let base = rows.get(baseline);
    for streams in concurrencies {
        let base_rounds = base.and_then(|b| rounds_at(b, streams)).unwrap_or(&[]);
        for row in rows {
            if let Some(problem) = &row.problem {
                let _ = writeln!(
                    out,
                    "| {streams} | {} | not measured: {} |{}",
                    row.name,
                    problem.replace('|', "/"),
                    " |".repeat(8)
                );
                continue;
            }
            let Some(rounds) = rounds_at(row, streams) else {
                continue;
            };
            let _ = writeln!(
                out,
                "| {streams} | {} | {} |",
                row.name,
                cells(rounds, base_rounds)
            );
        }
    }
    out
}

fn rounds_at(row: &Row, streams: usize) -> Option<&[Figures]> {
    row.rounds
        .iter()
        .find(|(s, _)| *s == streams)
        .map(|(_, r)| r.as_slice())
}

/// The cells after the name, joined by ` | `.
fn cells(rounds: &[Figures], base: &[Figures]) -> String {
    let pick =
        |f: fn(&Figures) -> Option<f64>| -> Vec<f64> { rounds.iter().filter_map(f).collect() };
    let ratios: Vec<f64> = rounds
        .iter()
        .zip(base)
        .map(|(r, b)| r.tokens_per_sec / b.tokens_per_sec)
        .collect();
    let requests: usize = rounds.iter().map(|r| r.requests).sum();
    let failed: usize = rounds.iter().map(|r| r.failed).sum();
    let failure = rounds
        .iter()
        .find_map(|r| r.first_failure.as_deref())
        .map(|f| format!(" ({})", f.replace('|', "/")))
        .unwrap_or_default();
    let proxy = pick(|r| r.proxy_us_per_token);
    let client = format!(
        "{} ({:.2})",
        spread(&pick(|r| Some(r.client_us_per_token)), 1),
        Spread::of(&pick(|r| Some(r.client_cores))).map_or(0.0, |s| s.median)
    );
    [
        spread(&pick(|r| Some(r.tokens_per_sec)), 0),
        spread(&ratios, 2),
        spread(&pick(|r| r.ttft_p50_ms), 1),
        spread(&pick(|r| r.ttft_p99_ms), 1),
        format!(
            "{} of {}",
            spread(&pick(|r| Some(r.tokens_per_request)), 0),
            Spread::of(&pick(|r| r.stated_per_request))
                .map_or("?".to_string(), |s| count(s.median))
        ),
        if proxy.is_empty() {
            "—".to_string()
        } else {
            spread(&proxy, 1)
        },
        spread(&pick(|r| Some(r.engine_us_per_token)), 1),
        client,
        format!("{failed}/{requests}{failure}"),
    ]
    .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::load::Sample;

    fn round(tokens: u32, ttfts_ms: &[u64], wall_ms: u64) -> Figures {
        let samples = ttfts_ms
            .iter()
            .map(|t| Sample {
                ttft: Some(Duration::from_millis(*t)),
                tokens,
                stated: Some(128),
                failed: None,
            })
            .collect();
        let round = Round {
            wall: Duration::from_millis(wall_ms),
            samples,
        };
        let cpu = CpuUse {
            proxy: Some(Duration::from_millis(40)),
            engine: Duration::from_millis(400),
            client: Duration::from_millis(100),
        };
        Figures::of(&round, cpu)
    }

    #[test]
    fn a_round_counts_delivered_tokens_and_cpu_per_token() {
        let figures = round(100, &[1, 2, 3, 40], 400);
        assert_eq!(figures.tokens_per_sec, 1000.0);
        assert_eq!(figures.ttft_p50_ms, Some(2.0));
        assert_eq!(figures.ttft_p99_ms, Some(40.0));
        assert_eq!(figures.tokens_per_request, 100.0);
        assert_eq!(figures.proxy_us_per_token, Some(100.0));
        assert_eq!(figures.engine_us_per_token, 1000.0);
        assert_eq!(figures.client_cores, 0.25);
    }

    #[test]
    fn rows_show_medians_with_min_max_and_the_ratio_to_the_baseline_round_by_round() {
        let direct = Row {
            name: "direct",
            problem: None,
            rounds: vec![(1, vec![round(100, &[1], 100), round(100, &[1], 200)])],
        };
        let proxy = Row {
            name: "proxy",
            problem: None,
            rounds: vec![(1, vec![round(100, &[2], 200), round(100, &[4], 200)])],
        };
        let missing = Row {
            name: "router",
            problem: Some("pip failed".to_string()),
            rounds: Vec::new(),
        };
        let table = table(&[direct, proxy, missing], 0);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[2],
            "| 1 | direct | 750 (500–1 000) | 1.00 (1.00–1.00) | 1.0 (1.0–1.0) | 1.0 (1.0–1.0) | \
             100 (100–100) of 128 | 400.0 (400.0–400.0) | 4000.0 (4000.0–4000.0) | \
             1000.0 (1000.0–1000.0) (0.75) | 0/2 |"
        );
        assert!(lines[3]
            .starts_with("| 1 | proxy | 500 (500–500) | 0.75 (0.50–1.00) | 3.0 (2.0–4.0) |"));
        assert_eq!(
            lines[4],
            "| 1 | router | not measured: pip failed | | | | | | | | |"
        );
    }
}
