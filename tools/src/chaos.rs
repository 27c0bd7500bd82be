//! Scripted fault injection: `fl-router-tools chaos run <scenario> --admin <url>` applies a YAML
//! scenario of timed steps to a running router (and its in-process simulated FLs) through the
//! admin API, samples the router's state every 100 ms meanwhile, and checks the scenario's
//! `expect:` list at the end. It exits non-zero when an expectation fails. See scenarios/ and
//! the README's "Operating" section for the format.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::stage::ToolFault;

/// A fault a scenario injects: the service's own, or one of the tooling's (simulated FLs, the
/// embedded broker, the load), in the admin API's JSON either way.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Fault {
    Service(fl_router::admin::Fault),
    Tool(ToolFault),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// How long the scenario runs before the expectations are checked.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Written as one-key maps (`- fl_offline: {...}`), not YAML tags.
    #[serde(default, with = "serde_yaml_ng::with::singleton_map_recursive")]
    pub expect: Vec<Expect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Time from the scenario's start.
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    pub fault: Fault,
}

/// A window of scenario time: the event must first be seen in `[after, after + within]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    #[serde(with = "humantime_serde", default)]
    pub after: Duration,
    #[serde(with = "humantime_serde")]
    pub within: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Expect {
    /// The FL's status became `offline` within the window (outage detected).
    FlOffline {
        fl: String,
        #[serde(flatten)]
        window: Window,
    },
    /// The FL's status was `online` again within the window (recovered).
    FlOnline {
        fl: String,
        #[serde(flatten)]
        window: Window,
    },
    /// FL `fl` was the active FL of at least this many switches within the window (its commands
    /// go there: e.g. a standby after a failover).
    FlActiveSwitches {
        fl: String,
        at_least: u64,
        #[serde(flatten)]
        window: Window,
    },
    /// An engine counter (GET /api/stats) grew within the window, e.g. `sync_fl_complete` for a
    /// replayed sync, `ack_timeouts`, `failed_fast`.
    CounterIncreases {
        counter: String,
        #[serde(flatten)]
        window: Window,
    },
    /// An actor was restarted by its supervisor at least this often (GET /api/mailboxes).
    Restarts {
        kind: String,
        id: String,
        at_least: u64,
    },
    /// The in-process load is stopped and its report checked: every command accounted for.
    Load {
        #[serde(default)]
        lost: u64,
        /// At most this many answers by the router itself (errors); unlimited if absent.
        #[serde(default)]
        max_router_errors: Option<u64>,
    },
}

pub fn load(path: &Path) -> anyhow::Result<Scenario> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let de = serde_yaml_ng::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de)
        .map_err(|e| anyhow::anyhow!("{}: {}: {}", path.display(), e.path(), e.inner()))
}

struct Client {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
}

impl Client {
    fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let mut r = self.agent.get(format!("{}{path}", self.base)).call()?;
        let status = r.status().as_u16();
        let v = r.body_mut().read_json::<Value>().unwrap_or(Value::Null);
        Ok((status, v))
    }

    fn fault(&self, f: &Fault) -> anyhow::Result<()> {
        let mut req = self.agent.post(format!("{}/api/faults", self.base));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut r = req.send_json(f)?;
        let status = r.status().as_u16();
        anyhow::ensure!(
            status == 200,
            "fault {f:?} refused ({status}): {}",
            r.body_mut().read_to_string().unwrap_or_default()
        );
        Ok(())
    }
}

/// One sample of the router's state.
struct Sample {
    t: Duration,
    fls: Value,
    stats: Value,
}

/// Runs `scenario` against the router at `admin`; returns the report lines and whether all passed.
pub fn run(
    scenario: &Scenario,
    admin: &str,
    token: Option<String>,
) -> anyhow::Result<(Vec<String>, bool)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        .build()
        .into();
    let client = Arc::new(Client {
        agent,
        base: admin.trim_end_matches('/').to_string(),
        token,
    });
    // Nobody listening is said at once (the admin API is up from a router's first second);
    // a router that listens but does not route yet is waited for.
    if let Err(e) = client.get("/health") {
        anyhow::bail!(
            "no router at {admin}: {e} (is it running? its admin.bind says where it listens)"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.get("/ready").map(|(s, _)| s).unwrap_or(0) != 200 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "router at {admin} not ready within 60s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A scenario's times count from a settled router: no sync session running (the start-up
    // sync is over) and, when it runs a load in its process, the load's first answer in. A
    // fault timed for answers must not land on the start-up sync instead; ready comes before
    // both, by as much as a slow machine likes.
    while !settled(&client) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "router at {admin}: still syncing, or its load without an answer, after 60s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let start = Instant::now();
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (client, samples, stop) = (client.clone(), samples.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let (Ok((_, fls)), Ok((_, stats))) =
                    (client.get("/api/fls"), client.get("/api/stats"))
                {
                    if let Ok(mut s) = samples.lock() {
                        s.push(Sample {
                            t: start.elapsed(),
                            fls,
                            stats,
                        });
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let mut lines = vec![format!(
        "scenario {}: {}",
        scenario.name, scenario.description
    )];
    let mut ok = true;
    let mut steps: Vec<&Step> = scenario.steps.iter().collect();
    steps.sort_by_key(|s| s.at);
    for step in steps {
        if let Some(wait) = step.at.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        match client.fault(&step.fault) {
            Ok(()) => lines.push(format!(
                "  step @{:>6.1}s {:?}",
                start.elapsed().as_secs_f64(),
                step.fault
            )),
            Err(e) => {
                ok = false;
                lines.push(format!("  step FAILED: {e}"));
            }
        }
    }
    if let Some(wait) = scenario.duration.checked_sub(start.elapsed()) {
        std::thread::sleep(wait);
    }
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let samples = samples
        .lock()
        .map(|mut s| std::mem::take(&mut *s))
        .unwrap_or_default();

    for e in &scenario.expect {
        let (pass, what) = check(e, &samples, &client);
        ok &= pass;
        lines.push(format!("  {} {what}", if pass { "PASS" } else { "FAIL" }));
    }
    Ok((lines, ok))
}

/// No sync session alive, and the in-process load (if any) has had an answer.
fn settled(client: &Client) -> bool {
    let syncing = match client.get("/api/mailboxes") {
        Ok((200, Value::Array(rows))) => rows.iter().any(|r| r["kind"] == "sync_session"),
        _ => true,
    };
    let load_waits = match client.get("/api/load") {
        Ok((200, v)) => {
            v["starting"] == true
                || (v["running"] == true && v["live"]["answered"].as_u64() == Some(0))
        }
        _ => false,
    };
    !syncing && !load_waits
}

fn fl_status(sample: &Sample, fl: &str) -> Option<String> {
    sample.fls.as_array()?.iter().find(|f| f["fl"] == fl)?["status"]
        .as_str()
        .map(str::to_string)
}

/// First sample time at or after `w.after` where `pred` holds.
fn first_seen(samples: &[Sample], w: &Window, pred: impl Fn(&Sample) -> bool) -> Option<Duration> {
    samples
        .iter()
        .filter(|s| s.t >= w.after)
        .find(|s| pred(s))
        .map(|s| s.t)
}

fn verdict(name: &str, w: &Window, seen: Option<Duration>) -> (bool, String) {
    let limit = w.after + w.within;
    match seen {
        Some(t) if t <= limit => (
            true,
            format!(
                "{name} at {:.1}s (allowed {:.1}s..{:.1}s)",
                t.as_secs_f64(),
                w.after.as_secs_f64(),
                limit.as_secs_f64()
            ),
        ),
        Some(t) => (
            false,
            format!(
                "{name} only at {:.1}s (allowed until {:.1}s)",
                t.as_secs_f64(),
                limit.as_secs_f64()
            ),
        ),
        None => (
            false,
            format!("{name} never seen after {:.1}s", w.after.as_secs_f64()),
        ),
    }
}

fn check(e: &Expect, samples: &[Sample], client: &Client) -> (bool, String) {
    match e {
        Expect::FlOffline { fl, window } => {
            let seen = first_seen(samples, window, |s| {
                fl_status(s, fl).as_deref() == Some("offline")
            });
            verdict(&format!("{fl} offline"), window, seen)
        }
        Expect::FlOnline { fl, window } => {
            let seen = first_seen(samples, window, |s| {
                fl_status(s, fl).as_deref() == Some("online")
            });
            verdict(&format!("{fl} online"), window, seen)
        }
        Expect::FlActiveSwitches {
            fl,
            at_least,
            window,
        } => {
            let seen = first_seen(samples, window, |s| {
                s.fls
                    .as_array()
                    .and_then(|a| a.iter().find(|f| f["fl"] == fl.as_str()))
                    .and_then(|f| f["switches"].as_u64())
                    .is_some_and(|n| n >= *at_least)
            });
            verdict(
                &format!("{fl} active for at least {at_least} switches"),
                window,
                seen,
            )
        }
        Expect::CounterIncreases { counter, window } => {
            let value = |s: &Sample| s.stats[counter.as_str()].as_u64();
            let base = samples
                .iter()
                .rev()
                .find(|s| s.t <= window.after)
                .and_then(value)
                .unwrap_or(0);
            let seen = first_seen(samples, window, |s| value(s).is_some_and(|v| v > base));
            verdict(&format!("{counter} > {base}"), window, seen)
        }
        Expect::Restarts { kind, id, at_least } => {
            let restarts = client.get("/api/mailboxes").ok().and_then(|(_, v)| {
                v.as_array()?
                    .iter()
                    .find(|m| m["kind"] == kind.as_str() && m["id"] == id.as_str())?["restarts"]
                    .as_u64()
            });
            match restarts {
                Some(n) => (
                    n >= *at_least,
                    format!("{kind} {id} restarted {n} time(s) (at least {at_least})"),
                ),
                None => (false, format!("no actor {kind} {id}")),
            }
        }
        Expect::Load {
            lost,
            max_router_errors,
        } => {
            if let Err(e) = client.fault(&Fault::Tool(ToolFault::StopLoad)) {
                return (false, format!("cannot stop the load: {e}"));
            }
            let report = client
                .get("/api/load")
                .ok()
                .map(|(_, v)| v["report"].clone())
                .unwrap_or(Value::Null);
            let (got_lost, errors) = (
                report["lost"].as_u64(),
                report["router_errors"].as_u64().unwrap_or(0),
            );
            let summary = report
                .get("sent")
                .map(|_| report.to_string())
                .unwrap_or_else(|| "no report".into());
            let pass = got_lost == Some(*lost) && max_router_errors.is_none_or(|m| errors <= m);
            let summary = summary.chars().take(200).collect::<String>();
            (pass, format!("load lost={got_lost:?} (want {lost}), router_errors={errors} (max {max_router_errors:?}): {summary}"))
        }
    }
}
