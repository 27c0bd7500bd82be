//! The Grafana dashboard shipped in `deploy/grafana/fl-router.json` queries only what the
//! router exports: every `flrouter_…` name in a panel's query is a metric of
//! `fl_router::metrics::SPEC` (a counter with its `_total`), and every label it selects or
//! groups by is one of that metric's labels or a label Prometheus adds (`instance`, `job`).
//! A renamed metric or label fails here, not on an operator's empty panel.

use fl_router::metrics::{Kind, Metric, SPEC};
use serde_json::Value;

const DASHBOARD: &str = include_str!("../deploy/grafana/fl-router.json");
const SCRAPE_LABELS: &[&str] = &["instance", "job"];

/// Every query of every panel, with the panel's title.
fn queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        let title = p["title"].as_str().unwrap_or_default().to_string();
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(e) = t["expr"].as_str() {
                out.push((title.clone(), e.to_string()));
            }
        }
    }
    out
}

/// The metric a series name in a query refers to.
fn metric_of(series: &str) -> Option<&'static Metric> {
    SPEC.iter().find(|m| match m.kind {
        Kind::Counter => series.strip_suffix("_total") == Some(m.name),
        Kind::Gauge => series == m.name,
        Kind::Histogram => ["_bucket", "_sum", "_count"]
            .iter()
            .any(|s| series.strip_suffix(s) == Some(m.name)),
    })
}

/// `(series name, label names in its `{…}` matcher)` for each `flrouter_` series in `expr`.
fn series(expr: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("flrouter_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = tail[..end].to_string();
        let mut labels = Vec::new();
        if let Some(body) = tail[end..].strip_prefix('{') {
            let body = &body[..body.find('}').unwrap_or(body.len())];
            for matcher in body.split(',') {
                let label: String = matcher
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !label.is_empty() {
                    labels.push(label);
                }
            }
        }
        out.push((name, labels));
        rest = &tail[end..];
    }
    out
}

/// Label names in `by (…)` clauses.
fn grouped_by(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("by (") {
        let tail = &rest[at + 4..];
        let close = tail.find(')').unwrap_or(tail.len());
        out.extend(
            tail[..close]
                .split(',')
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty()),
        );
        rest = &tail[close..];
    }
    out
}

#[test]
fn every_dashboard_query_names_exported_metrics_and_their_labels() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    let qs = queries(&dashboard);
    assert!(
        qs.len() >= 10,
        "a dashboard worth shipping: {} queries",
        qs.len()
    );
    let mut problems = Vec::new();
    for (title, expr) in &qs {
        let found = series(expr);
        if found.is_empty() {
            problems.push(format!("{title}: no flrouter_ metric in {expr:?}"));
        }
        let mut labels_here: Vec<&str> = SCRAPE_LABELS.to_vec();
        for (name, labels) in &found {
            let Some(m) = metric_of(name) else {
                problems.push(format!(
                    "{title}: {name} is not exported (counters end in _total)"
                ));
                continue;
            };
            labels_here.extend(m.labels.iter().copied());
            let bucket = matches!(m.kind, Kind::Histogram) && name.ends_with("_bucket");
            if bucket {
                labels_here.push("le");
            }
            for l in labels {
                let le = bucket && l == "le";
                if !le && !m.labels.contains(&l.as_str()) && !SCRAPE_LABELS.contains(&l.as_str()) {
                    problems.push(format!("{title}: {name} has no label {l:?}"));
                }
            }
        }
        for l in grouped_by(expr) {
            if !labels_here.contains(&l.as_str()) {
                problems.push(format!(
                    "{title}: grouped by {l:?}, which no metric there has"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_checks_catch_a_wrong_name_and_a_wrong_label() {
    // The helpers above, on queries that must fail.
    assert!(
        metric_of("flrouter_commands_received").is_none(),
        "a counter needs _total"
    );
    assert!(metric_of("flrouter_commands_received_total").is_some());
    let s = series(r#"sum by (fl) (flrouter_fl_online{instance=~"$i", flx="a"})"#);
    assert_eq!(
        s,
        [(
            "flrouter_fl_online".to_string(),
            vec!["instance".to_string(), "flx".to_string()]
        )]
    );
    assert_eq!(grouped_by("sum by (fl, role) (x)"), ["fl", "role"]);
}
