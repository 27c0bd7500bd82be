//! The shipped Prometheus rules (`deploy/prometheus/fl-router.rules.yml`) name only metrics the
//! router exports, with their exposed names (`_total` on counters), and every counter whose help
//! says "Alert on any" has a rule.

use fl_router::metrics::{Kind, SPEC};

fn rules() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/prometheus/fl-router.rules.yml"
    ))
    .expect("the rules file");
    serde_yaml_ng::from_str(&text).expect("the rules file is YAML")
}

/// The metric names an expression uses.
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("flrouter_") {
        let name: String = rest[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[i + name.len()..];
        out.push(name);
    }
    out
}

/// What the router exposes: counters with `_total`, gauges as named, histograms as their
/// `_bucket`, `_sum` and `_count` series.
fn exposed() -> Vec<String> {
    SPEC.iter()
        .flat_map(|m| match m.kind {
            Kind::Counter => vec![format!("{}_total", m.name)],
            Kind::Gauge => vec![m.name.to_string()],
            Kind::Histogram => ["_bucket", "_sum", "_count"]
                .iter()
                .map(|s| format!("{}{s}", m.name))
                .collect(),
        })
        .collect()
}

#[test]
fn every_rule_names_exported_metrics() {
    let exposed = exposed();
    let rules = rules();
    let all: Vec<&serde_json::Value> = rules["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").iter())
        .collect();
    assert!(all.len() >= 5, "rules not read");
    for r in &all {
        let alert = r["alert"].as_str().expect("an alert name");
        let expr = r["expr"].as_str().expect("an expression");
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{alert}: no fl-router metric in {expr}");
        for n in names {
            assert!(exposed.contains(&n), "{alert}: {n} is not exported");
        }
        assert!(
            r["annotations"]["summary"].is_string(),
            "{alert}: no summary"
        );
    }
}

#[test]
fn every_alert_on_any_counter_has_a_rule() {
    let text = serde_json::to_string(&rules()).unwrap();
    let wanted: Vec<String> = SPEC
        .iter()
        .filter(|m| m.help.contains("Alert on any"))
        .map(|m| format!("{}_total", m.name))
        .collect();
    assert!(
        wanted.len() >= 3,
        "the spec's alert-on-any counters: {wanted:?}"
    );
    for w in wanted {
        assert!(text.contains(&w), "no rule for {w}");
    }
}
