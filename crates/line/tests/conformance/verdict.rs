//! The verdict on a conformance table, shared by the line and mapper suites (included by `#[path]`).
//!
//! Each row agrees with statsd_exporter 0.30 or is listed as a deliberate difference with a reason; a
//! listed row that agrees again, or a listing that names no row, fails too, so the list stays true.

/// Judges `rows` — (row id, what disagrees; empty when the row agrees) — against `differences` —
/// (row id, why) — prints the counts, and panics with every failure.
pub(crate) fn judge(table: &str, rows: &[(String, Vec<String>)], differences: &[(String, String)]) {
    let mut failures = Vec::new();
    let (mut passed, mut differ) = (0, 0);
    for (id, problems) in rows {
        let listed = differences.iter().find(|(d, _)| d == id);
        match (problems.is_empty(), listed) {
            (true, None) => passed += 1,
            (false, Some((_, why))) if !why.trim().is_empty() => differ += 1,
            (false, Some(_)) => failures.push(format!("{id}: a listed difference needs a reason")),
            (true, Some(_)) => failures.push(format!(
                "{id}: listed as a difference but agrees now: remove it from differences.yaml"
            )),
            (false, None) => failures.push(format!("{id}:\n   {}", problems.join("\n   "))),
        }
    }
    for (id, _) in differences {
        if !rows.iter().any(|(r, _)| r == id) {
            failures.push(format!("differences.yaml names no row: {id}"));
        }
    }
    println!(
        "{table} conformance: {} cases, {passed} pass, {differ} differ as listed",
        rows.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
