//! The life of one command for operators: the admin API's JSON (`GET /api/commands/{id}`) and
//! `fl-router trace <id>`, which prints it as a timeline. The lives themselves are recorded by
//! the engine (`fl_router_actors::runtime::traces`); this module only shows them.

use std::time::{Duration, UNIX_EPOCH};

use fl_router_actors::runtime::traces::{Life, Window};
use serde_json::{json, Value};

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// A kept life: its steps with their times (absolute and since the first step) and outcome.
pub fn life_json(life: &Life, window: &Window) -> Value {
    let first = life.steps.first().map_or(0, |s| s.at_ms);
    let steps: Vec<Value> = life
        .steps
        .iter()
        .map(|s| {
            let mut v = json!(s);
            v["at"] = json!(rfc3339(s.at_ms));
            v["after_ms"] = json!(s.at_ms.saturating_sub(first));
            v
        })
        .collect();
    json!({
        "correlation_id": life.correlation_id,
        "found": true,
        "outcome": life.outcome(),
        "steps": steps,
        "more_steps": life.more_steps,
        "window": window,
    })
}

/// No life kept for `cid`: say how far back the router remembers.
pub fn not_kept_json(cid: &str, window: &Window) -> Value {
    let message = if window.commands == 0 {
        "command traces are off (limits.traced_commands: 0)".to_string()
    } else {
        match window.complete_from_ms {
            Some(ms) => format!(
                "no command {cid:?} in the trace window: the router keeps about the last {} commands, complete from {} on; it is older than that or was never read by this instance",
                window.commands,
                rfc3339(ms)
            ),
            None => format!(
                "no command {cid:?} was read by this instance since it started (it keeps about the last {} commands)",
                window.commands
            ),
        }
    };
    json!({"correlation_id": cid, "found": false, "message": message, "window": window})
}

/// One step as a line: what happened and where, without the JSON's field names.
fn describe(step: &Value) -> String {
    let f = |k: &str| match &step[k] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    };
    match f("step").as_str() {
        "received" => {
            let key = match f("key") {
                k if k.is_empty() => String::new(),
                k => format!(", key {k}"),
            };
            format!(
                "received on {} partition {} offset {}{key}",
                f("topic"),
                f("partition"),
                f("offset")
            )
        }
        "forwarded" => format!(
            "forwarded to FL {} (switch {}) on {}",
            f("fl"),
            f("switch"),
            f("topic")
        ),
        "handed_over" => format!(
            "forwarded on {} for FL {}, owned by another router instance",
            f("topic"),
            f("fl")
        ),
        "adopted" => format!("adopted: pending here for FL {}", f("fl")),
        "fanned_out" => format!(
            "multi-switch: sent to {} FLs ({} switches with none to ask)",
            f("fls"),
            f("unsent")
        ),
        "assembled" => format!(
            "multi-switch result (complete: {}) sent to {}",
            f("complete"),
            f("topic")
        ),
        "waiting_for_reconnect" => format!(
            "switch {} lost recently: waiting up to {} ms for it to reconnect",
            f("switch"),
            f("up_to_ms")
        ),
        "delivered" => format!(
            "{} delivered by Kafka: {} partition {} offset {}",
            f("what"),
            f("topic"),
            f("partition"),
            f("offset")
        ),
        "delivery_failed" => format!(
            "{} refused by Kafka on {}: {} (dead-lettered)",
            f("what"),
            f("topic"),
            f("error")
        ),
        "acked_by_fl" => format!("acknowledged by FL {}", f("fl")),
        "answered" => format!(
            "{} from FL {} sent to {}",
            if f("last") == "true" {
                "answer"
            } else {
                "part of a chain"
            },
            f("fl"),
            f("topic")
        ),
        "router_answered" => format!(
            "the router answered {} ({}) on {}",
            f("error"),
            f("message"),
            f("topic")
        ),
        "late_answer_dropped" => format!("a late or second answer from FL {} dropped", f("fl")),
        "dead_lettered" => format!("dead-lettered: {}", f("reason")),
        "offset_committed" => format!(
            "input offset committed ({} partition {} at position {}{})",
            f("topic"),
            f("partition"),
            f("position"),
            if f("at_or_before") == "true" {
                ", at or before this time"
            } else {
                ""
            }
        ),
        other => format!("{other} {step}"),
    }
}

/// Renders the API's answer as `fl-router trace` prints it.
pub fn render(v: &Value) -> String {
    let cid = v["correlation_id"].as_str().unwrap_or_default();
    if v["found"] != json!(true) {
        return format!("{}\n", v["message"].as_str().unwrap_or("not found"));
    }
    let mut out = format!("command {cid}\n");
    for s in v["steps"].as_array().into_iter().flatten() {
        out += &format!(
            "  {}  +{:>6} ms  {}\n",
            s["at"].as_str().unwrap_or_default(),
            s["after_ms"].as_u64().unwrap_or(0),
            describe(s)
        );
    }
    if v["more_steps"].as_u64().unwrap_or(0) > 0 {
        out += &format!("  … {} more steps not kept\n", v["more_steps"]);
    }
    out += &format!("outcome: {}\n", v["outcome"].as_str().unwrap_or_default());
    out
}

/// `fl-router trace <id> --admin URL`: asks the running router and prints the life. Ok(true)
/// when the command was found.
pub fn run(cid: &str, admin: &str) -> anyhow::Result<bool> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    // The id goes into the path: escape what a URL path cannot hold as is.
    let escaped: String = cid
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let url = format!("{}/api/commands/{escaped}", admin.trim_end_matches('/'));
    let mut resp = agent
        .get(&url)
        .call()
        .map_err(|e| anyhow::anyhow!("cannot reach the router's admin API at {admin}: {e}"))?;
    let status = resp.status().as_u16();
    let body: Value = resp
        .body_mut()
        .read_json()
        .map_err(|e| anyhow::anyhow!("{url} answered {status} without JSON: {e}"))?;
    print!("{}", render(&body));
    Ok(status == 200)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fl_router_actors::runtime::traces::{Step, Traces};
    use std::sync::Arc;

    #[test]
    fn renders_a_timed_out_command_as_a_timeline() {
        let t = Traces::new(100);
        t.record_at(
            "c1",
            1_000,
            Step::Received {
                topic: Arc::from("kilda.speaker"),
                partition: 0,
                offset: 3,
                key: None,
            },
        );
        t.record_at(
            "c1",
            6_000,
            Step::RouterAnswered {
                error: "OPERATION_TIMED_OUT",
                message: "FL did not answer in time".into(),
                topic: Arc::from("my.reply"),
            },
        );
        let text = render(&life_json(&t.life("c1").unwrap(), &t.window()));
        assert!(
            text.contains("received on kilda.speaker partition 0 offset 3"),
            "{text}"
        );
        assert!(
            text.contains("+  5000 ms  the router answered OPERATION_TIMED_OUT"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "outcome: the router answered OPERATION_TIMED_OUT: FL did not answer in time\n"
            ),
            "{text}"
        );
        let missing = render(&not_kept_json("zz", &t.window()));
        assert!(
            missing.contains("no command \"zz\" was read by this instance"),
            "{missing}"
        );
    }
}
