//! Tests of the parent module.

use super::*;

fn point(id: &str, test: Option<&str>) -> Point {
    Point {
        id: id.into(),
        component: "job".into(),
        level: "info".into(),
        says: "Accepted task; queued at position".into(),
        test: test.map(str::to_string),
    }
}

/// A test file; `{m}` stands for the marker's comment start, so no line of this file is a
/// claim itself.
fn file(text: &str) -> String {
    text.replace("{m}", "//")
}

fn sources(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|(p, t)| (p.to_string(), file(t)))
        .collect()
}

const TESTS: &str = "\
#[tokio::test]
async fn admits() {
let s = \"}\"; let c = '}';
{m} narration: job.admitted
assert!(true);
}

/// Not this one.
#[test]
fn places() {
{m} narration: job.placed, job.started
}

fn helper() {
{m} narration: job.finished
}
";

#[test]
fn claimed_points_are_ok() {
    let points = [
        point("job.admitted", Some("t/a.rs::admits")),
        point("job.placed", Some("t/a.rs::places")),
        point("job.started", Some("t/a.rs::places")),
        point("job.finished", Some("t/a.rs::helper")),
    ];
    let report = check(&points[..3], &sources(&[("t/a.rs", TESTS)]));
    assert!(
        report.rows.iter().all(|r| r.status == "ok"),
        "{:?}",
        report.rows
    );
    // Only the helper's claim of a point not in this list is a problem.
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(report.problems[0].contains("\"job.finished\""));
}

#[test]
fn a_point_without_a_test_fails() {
    let report = check(&[point("job.admitted", None)], &sources(&[]));
    assert_eq!(report.rows[0].status, "NO TEST");
    assert_eq!(report.problems.len(), 1);
    let report = check(&[point("job.admitted", Some("  "))], &sources(&[]));
    assert_eq!(report.rows[0].status, "NO TEST");
}

#[test]
fn a_missing_file_or_fn_fails() {
    let files = sources(&[("t/a.rs", TESTS)]);
    let report = check(&[point("job.admitted", Some("t/b.rs::admits"))], &files);
    assert_eq!(report.rows[0].status, "NO FILE");
    let report = check(&[point("job.admitted", Some("t/a.rs::admit"))], &files);
    assert_eq!(report.rows[0].status, "NO FN");
    let report = check(&[point("job.admitted", Some("t/a.rs"))], &files);
    assert!(report.rows[0].status.starts_with("TEST IS NOT"));
}

#[test]
fn a_helper_is_not_a_test() {
    let files = sources(&[("t/a.rs", TESTS)]);
    let report = check(&[point("job.finished", Some("t/a.rs::helper"))], &files);
    assert_eq!(report.rows[0].status, "NOT A TEST");
}

#[test]
fn an_unknown_claim_fails() {
    let files = sources(&[
        ("t/a.rs", TESTS),
        (
            "src/x.rs",
            "#[test]\nfn t() {\n    {m} narration: job.nope\n}\n",
        ),
    ]);
    let points = [
        point("job.admitted", Some("t/a.rs::admits")),
        point("job.placed", Some("t/a.rs::places")),
        point("job.started", Some("t/a.rs::places")),
    ];
    let report = check(&points, &files);
    let unknown: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.contains("not in"))
        .collect();
    assert_eq!(unknown.len(), 2, "{:?}", report.problems);
    assert!(unknown.iter().any(|p| p.starts_with("src/x.rs:3: ")));
    assert!(unknown.iter().any(|p| p.starts_with("t/a.rs:15: ")));
}

#[test]
fn a_claim_outside_the_named_fn_does_not_count() {
    let files = sources(&[("t/a.rs", TESTS)]);
    let report = check(&[point("job.placed", Some("t/a.rs::admits"))], &files);
    assert!(
        report.rows[0].status.starts_with("NOT CLAIMED"),
        "{:?}",
        report.rows
    );
    // The claim after `admits` (in `places`) is past its closing brace, even though
    // `admits` holds a `}` in a string and in a char.
    let report = check(&[point("job.started", Some("t/a.rs::admits"))], &files);
    assert!(report.rows[0].status.starts_with("NOT CLAIMED"));
}

#[test]
fn duplicate_ids_and_bad_fields_fail() {
    let files = sources(&[("t/a.rs", TESTS)]);
    let mut odd = point("job.admitted", Some("t/a.rs::admits"));
    odd.level = "warning".into();
    let points = [point("job.admitted", Some("t/a.rs::admits")), odd];
    let report = check(&points, &files);
    assert!(report.rows[0].status.contains("DUPLICATE ID"));
    assert!(report.rows[1].status.contains("UNKNOWN LEVEL"));
}

#[test]
fn markers_are_whole_comment_lines() {
    assert_eq!(claims_on("    // narration: a.b"), ["a.b"]);
    assert_eq!(claims_on("//narration: a.b, c.d"), ["a.b", "c.d"]);
    assert!(claims_on("/// narration: a.b").is_empty());
    assert!(claims_on("let x = 1; // narration: a.b").is_empty());
    assert!(claims_on("\"// narration: a.b\"").is_empty());
}

#[test]
fn bodies_end_at_their_brace() {
    let text = "fn a() -> Vec<u8> where u8: Copy {\n    let r = r#\"}\"#;\n    /* } */ 'x: loop { break 'x; }\n}\nfn b() {}\n";
    let end = body_end(text, 0).unwrap();
    assert!(text[..end].ends_with("}\n}"), "{:?}", &text[..end]);
    assert_eq!(body_end("fn f();", 0), None);
    let text = "fn g(x: [u8; 4], c: char) {\n    if c == '\\'' || c == '{' { }\n}\n// x\n";
    let end = body_end(text, 0).unwrap();
    assert_eq!(&text[end..], "\n// x\n");
}

#[test]
fn the_list_parses_strictly() {
    let text = "[[point]]\nid = \"a.b\"\ncomponent = \"job\"\nlevel = \"info\"\nsays = \"x\"\ntest = \"p.rs::t\"\n";
    assert_eq!(parse_points(text).unwrap().len(), 1);
    assert!(parse_points(&format!("{text}extra = 1\n")).is_err());
}

#[test]
fn the_real_list_holds_together() {
    let root = workspace_root();
    let text = std::fs::read_to_string(root.join(POINTS)).unwrap();
    let points = parse_points(&text).unwrap();
    assert!(!points.is_empty());
}
