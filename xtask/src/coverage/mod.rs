//! `cargo xtask narration-coverage`: the emission points of docs/narration.md §5, listed in
//! `docs/narration-points.toml`, are a contract. Each point names the test that asserts its
//! record with the capture drain, and that test claims it with a `// narration: <id>` line.
//!
//! The check fails when a point has no test, when the named file or `fn` does not exist or is
//! not a test, when that function does not claim the point, when two points share an id, and
//! when a `// narration:` line anywhere in the sources names an id that is not in the list.

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The list, relative to the workspace root.
pub const POINTS: &str = "docs/narration-points.toml";

const COMPONENTS: &[&str] = &[
    "daemon", "job", "adapter", "replica", "pool", "logging", "http",
];
const LEVELS: &[&str] = &["critical", "error", "warn", "info", "debug", "trace"];
const MARKER: &str = "narration:";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct List {
    #[serde(default)]
    point: Vec<Point>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Point {
    pub id: String,
    pub component: String,
    pub level: String,
    pub says: String,
    #[serde(default)]
    pub test: Option<String>,
}

/// One line of the table.
#[derive(Debug)]
pub struct Row {
    pub id: String,
    pub level: String,
    pub says: String,
    pub test: String,
    pub status: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub rows: Vec<Row>,
    pub problems: Vec<String>,
}

pub fn parse_points(text: &str) -> Result<Vec<Point>, String> {
    toml::from_str::<List>(text)
        .map(|list| list.point)
        .map_err(|e| format!("{POINTS}: {e}"))
}

/// A `// narration: <id>` claim: the ids on a line whose code is only that comment.
fn claims_on(line: &str) -> Vec<&str> {
    let Some(comment) = line.trim_start().strip_prefix("//") else {
        return Vec::new();
    };
    let Some(ids) = comment.trim_start().strip_prefix(MARKER) else {
        return Vec::new();
    };
    ids.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|id| !id.is_empty())
        .collect()
}

/// Finds the end of the item whose body opens at the first `{` at or after `from`: the index
/// just past the matching `}` (or the end of the text). Skips strings, chars and comments.
fn body_end(text: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = from;
    let mut depth = 0usize;
    let mut nesting = 0usize;
    let mut opened = false;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let mut nested = 0usize;
                while i < bytes.len() {
                    if bytes[i..].starts_with(b"/*") {
                        nested += 1;
                        i += 2;
                    } else if bytes[i..].starts_with(b"*/") {
                        nested -= 1;
                        i += 2;
                        if nested == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            b'r' if matches!(bytes.get(i + 1), Some(b'"' | b'#'))
                && (i == 0
                    || bytes[i - 1] == b'b'
                    || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_')) =>
            {
                let hashes = bytes[i + 1..].iter().take_while(|b| **b == b'#').count();
                if bytes.get(i + 1 + hashes) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                let start = i + 2 + hashes;
                i = bytes[start.min(bytes.len())..]
                    .windows(close.len())
                    .position(|w| w == close.as_slice())
                    .map_or(bytes.len(), |p| start + p + close.len());
                continue;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'\'' => {
                // A char literal ('x', '\n', '{') or a lifetime ('a): skip only the former.
                if bytes.get(i + 1) == Some(&b'\\') {
                    i += 3;
                    while i < bytes.len() && bytes[i] != b'\'' {
                        i += 1;
                    }
                } else if let Some(c) = text[i + 1..].chars().next() {
                    if text[i + 1 + c.len_utf8()..].starts_with('\'') {
                        i += c.len_utf8() + 1;
                    }
                }
            }
            b'{' => {
                depth += 1;
                opened = true;
            }
            b'}' if opened => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            b'(' | b'[' if !opened => nesting += 1,
            b')' | b']' if !opened => nesting = nesting.saturating_sub(1),
            b';' if !opened && nesting == 0 => return None,
            _ => {}
        }
        i += 1;
    }
    opened.then_some(bytes.len())
}

/// The `fn name` items of `text`: for each, whether an attribute above it makes it a test, and
/// its text from the `fn` line to the closing brace.
fn functions<'a>(text: &'a str, name: &str) -> Vec<(bool, &'a str)> {
    let needle = format!("fn {name}");
    let mut found = Vec::new();
    let mut offset = 0;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for (n, line) in lines.iter().enumerate() {
        let start = offset;
        offset += line.len();
        let Some(at) = line.find(&needle) else {
            continue;
        };
        let before_ok = line[..at]
            .chars()
            .next_back()
            .is_none_or(char::is_whitespace);
        let after = &line[at + needle.len()..];
        let after_ok = after.starts_with('(') || after.starts_with('<');
        let code = line.trim_start();
        if !before_ok || !after_ok || code.starts_with("//") {
            continue;
        }
        let is_test = lines[..n]
            .iter()
            .rev()
            .map(|l| l.trim())
            .take_while(|l| l.starts_with("#[") || l.starts_with("///") || l.is_empty())
            .any(|l| l.starts_with("#[") && l.contains("test"));
        let end = body_end(text, start + at).unwrap_or(start + line.len());
        found.push((is_test, &text[start..end]));
    }
    found
}

/// Checks `points` against `sources` (path from the workspace root → text).
pub fn check(points: &[Point], sources: &BTreeMap<String, String>) -> Report {
    let mut report = Report::default();
    let mut ids = BTreeSet::new();
    let mut duplicates = BTreeSet::new();
    for point in points {
        if !ids.insert(point.id.as_str()) {
            duplicates.insert(point.id.as_str());
        }
    }
    for point in points {
        let test = point.test.clone().unwrap_or_default();
        let mut trouble = Vec::new();
        if duplicates.contains(point.id.as_str()) {
            trouble.push("DUPLICATE ID".to_string());
        }
        if !COMPONENTS.contains(&point.component.as_str()) {
            trouble.push(format!("UNKNOWN COMPONENT {:?}", point.component));
        }
        if !LEVELS.contains(&point.level.as_str()) {
            trouble.push(format!("UNKNOWN LEVEL {:?}", point.level));
        }
        if point.says.trim().is_empty() {
            trouble.push("NO SENTENCE".to_string());
        }
        trouble.extend(test_problem(point, sources));
        for t in &trouble {
            report
                .problems
                .push(format!("{}: {} ({})", point.id, t, display(&test)));
        }
        report.rows.push(Row {
            id: point.id.clone(),
            level: point.level.clone(),
            says: point.says.clone(),
            test,
            status: if trouble.is_empty() {
                "ok".to_string()
            } else {
                trouble.join(", ")
            },
        });
    }
    for (path, text) in sources {
        for (n, line) in text.lines().enumerate() {
            for id in claims_on(line) {
                if !ids.contains(id) {
                    report.problems.push(format!(
                        "{path}:{}: claims narration point {id:?}, which is not in {POINTS}",
                        n + 1
                    ));
                }
            }
        }
    }
    report
}

fn display(test: &str) -> &str {
    if test.is_empty() {
        "no test named"
    } else {
        test
    }
}

/// What is wrong with a point's `test`, if anything.
fn test_problem(point: &Point, sources: &BTreeMap<String, String>) -> Option<String> {
    let test = point.test.as_deref().unwrap_or("").trim();
    if test.is_empty() {
        return Some("NO TEST".into());
    }
    let Some((path, name)) = test.rsplit_once("::") else {
        return Some("TEST IS NOT <path>::<fn>".into());
    };
    let Some(text) = sources.get(path) else {
        return Some("NO FILE".into());
    };
    let found = functions(text, name);
    if found.is_empty() {
        return Some("NO FN".into());
    }
    let tests: Vec<&str> = found
        .iter()
        .filter(|(is_test, _)| *is_test)
        .map(|(_, body)| *body)
        .collect();
    if tests.is_empty() {
        return Some("NOT A TEST".into());
    }
    let claimed = tests.iter().any(|body| {
        body.lines()
            .any(|l| claims_on(l).contains(&point.id.as_str()))
    });
    (!claimed).then(|| format!("NOT CLAIMED (no `// narration: {}` in the fn)", point.id))
}

/// Every `.rs` file under `root`, outside `target/` and hidden directories, by relative path.
pub fn sources(root: &Path) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let kind = entry
                .file_type()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if kind.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    dirs.push(path);
                }
            } else if kind.is_file() && name.ends_with(".rs") {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                let relative = path.strip_prefix(root).unwrap_or(&path);
                let key = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                out.insert(key, text);
            }
        }
    }
    Ok(out)
}

/// The workspace root: the parent of xtask's manifest directory.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn table(rows: &[Row]) -> String {
    let header = ["id", "level", "says", "test", "status"];
    let cells: Vec<[&str; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.id.as_str(),
                r.level.as_str(),
                r.says.as_str(),
                display(&r.test),
                r.status.as_str(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |row: &[&str; 5]| {
        let mut out = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                let pad = w - cell.chars().count();
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(&header);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    let rule: [&str; 5] = std::array::from_fn(|i| rule[i].as_str());
    out.push_str(&line(&rule));
    for row in &cells {
        out.push_str(&line(row));
    }
    out
}

/// `cargo xtask narration-coverage`: prints the table; fails when the contract is broken.
pub fn run() -> Result<(), String> {
    let root = workspace_root();
    let list = root.join(POINTS);
    let text = std::fs::read_to_string(&list)
        .map_err(|e| format!("cannot read {}: {e}", list.display()))?;
    let points = parse_points(&text)?;
    let report = check(&points, &sources(&root)?);
    print!("{}", table(&report.rows));
    let covered = report.rows.iter().filter(|r| r.status == "ok").count();
    println!(
        "{covered} of {} narration points are asserted by the test that claims them",
        report.rows.len()
    );
    if report.problems.is_empty() {
        return Ok(());
    }
    for problem in &report.problems {
        eprintln!("narration-coverage: {problem}");
    }
    Err(format!(
        "narration coverage: {} problem(s); see {POINTS} and docs/narration.md §5",
        report.problems.len()
    ))
}

#[cfg(test)]
mod tests;
