//! Several router instances as one router (`docs/design/cluster.md`), on the real broker: two
//! instances split the FLs and one leads; every command is answered by its FL whichever
//! instance read it and whichever owns the FL; kill -9 one instance under load and the other
//! takes its FLs (and its command partition, if it had it) over: nothing lost, no false answer.

mod common;

use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use common::*;
use fl_router_actors::settings::Classes;
use fl_router_tools::load::{LoadConfig, LoadRun};
use serde_json::{json, Value};

const RATE: f64 = 200.0;

fn start(w: &World, name: &str) -> Router {
    start_instance(w, name, name)
}

async fn cluster_view(r: &Router) -> Value {
    let base = r.admin_url().await;
    tokio::task::spawn_blocking(move || {
        ureq::get(format!("{base}/api/cluster"))
            .call()
            .expect("admin reachable")
            .body_mut()
            .read_json::<Value>()
            .expect("json")
    })
    .await
    .unwrap()
}

fn owned(v: &Value) -> Vec<String> {
    v["fls_owned"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Two simulated FLs, cluster mode, the world's own cluster topics; and the simulator.
async fn cluster_world() -> (World, fl_router_tools::sim::Simulator) {
    cluster_world_of(&["fl1", "fl2"], 1).await
}

/// Simulated `fls`, `command_partitions` partitions of the command topic, cluster mode.
async fn cluster_world_of(
    fls: &[&str],
    command_partitions: usize,
) -> (World, fl_router_tools::sim::Simulator) {
    let w = World::with(
        fls,
        json!({
            "cluster": {"enabled": true},
            // A killed instance's FLs wait for its session to expire (6 s here) and for their
            // history to be read back: the deadlines are well beyond that.
            "timeouts": {"alive_interval": "1s", "alive_timeout": "20s", "ack": "30s"},
            "sync": {"at_start": false, "periodic": "0s"},
        }),
    )
    .await;
    // The cluster topics are the world's own.
    cluster_mode(&w);
    if command_partitions > 1 {
        add_partitions(&w.commands, command_partitions).await;
    }
    let config = fl_router::config::Config::load(&w.config_path).expect("test config");
    let sim = fl_router_tools::sim::Simulator::start(
        sim_client(),
        &config.settings(),
        &fl_router_tools::sim::SimConfig {
            switches_per_fl: 4,
            ..Default::default()
        },
    )
    .expect("simulator");
    (w, sim)
}

/// Instances r1 (ready first) and r2, once they have split the FLs and one leads.
async fn two_instances(w: &World) -> (Router, Router) {
    let r1 = start(w, "r1");
    r1.ready().await;
    let r2 = start(w, "r2");
    split(&r1, &r2).await;
    (r1, r2)
}

/// Waits until the two instances split the FLs and one leads; returns their views.
async fn split(r1: &Router, r2: &Router) -> (Value, Value) {
    let deadline = Instant::now() + LONG * 2;
    loop {
        let (v1, v2) = (cluster_view(r1).await, cluster_view(r2).await);
        let leaders = [&v1, &v2].iter().filter(|v| v["leader"] == true).count();
        if owned(&v1).len() == 1 && owned(&v2).len() == 1 && leaders == 1 {
            return (v1, v2);
        }
        assert!(
            Instant::now() < deadline,
            "FLs not split, or not one leader: r1 {v1} r2 {v2}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn load(w: &World, sim: &fl_router_tools::sim::Simulator) -> LoadRun {
    load_at(w, sim, RATE)
}

fn load_at(w: &World, sim: &fl_router_tools::sim::Simulator, rate: f64) -> LoadRun {
    LoadRun::start(
        sim_client(),
        w.commands.clone(),
        sim.switches(),
        LoadConfig {
            rate,
            grace: Duration::from_secs(40),
            reply_topic: w.reply.clone(),
            unknown_switch_fraction: 0.0,
            ..LoadConfig::default()
        },
        Classes::default(),
    )
    .expect("load")
}

/// Waits until the load has sent `n` commands.
async fn until_sent(load: &LoadRun, n: f64) {
    while (load.stats().sent.load(Relaxed) as f64) < n {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The lines of the instances' logs that tell what moved (for a failure's message).
fn what_moved(routers: &[(&Router, &str)]) -> String {
    const KEYS: [&str; 7] = [
        "WARN",
        "ERROR",
        "owned",
        "leadership",
        "read back",
        "assigned",
        "revoked",
    ];
    routers
        .iter()
        .map(|(r, name)| {
            let lines: Vec<String> = r
                .log_text()
                .lines()
                .filter(|l| KEYS.iter().any(|k| l.contains(k)))
                .map(String::from)
                .collect();
            format!("--- {name}:\n{}\n", lines.join("\n"))
        })
        .collect()
}

/// Finishes the load; every command got exactly one outcome, its FL's answer, at its
/// requester. Returns the report (for the run's own bounds).
async fn every_command_answered_by_its_fl(
    w: &World,
    load: LoadRun,
    what: &str,
    routers: &[(&Router, &str)],
) -> fl_router_tools::load::LoadReport {
    let report = tokio::task::spawn_blocking(move || load.finish())
        .await
        .unwrap()
        .unwrap();
    let on_default_topic = Reader::new(&w.default_reply).read_to_end().await.len();
    eprintln!(
        "{what}: {} conflicting={} on_default_topic={on_default_topic} longest_answer_gap_ms={} errors={:?}",
        report.summary_line(),
        report.conflicting_outcomes,
        report.max_answer_gap_ms,
        report.errors_by_type
    );
    let logs = what_moved(routers);
    assert_eq!(report.lost, 0, "{}\n{logs}", report.summary_line());
    assert_eq!(
        report.router_errors, 0,
        "no false answers: {:?}\n{logs}",
        report.errors_by_type
    );
    assert_eq!(report.conflicting_outcomes, 0, "{logs}");
    assert_eq!(
        on_default_topic, 0,
        "every answer found its requester\n{logs}"
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_fls_and_survive_a_kill() {
    let (w, sim) = cluster_world().await;
    let mut r1 = start(&w, "r1");
    r1.ready().await;
    let mut r2 = start(&w, "r2");
    // Both members of every group: the FLs split between them, one leads.
    let (v1, v2) = split(&r1, &r2).await;
    let mut all = [owned(&v1), owned(&v2)].concat();
    all.sort();
    assert_eq!(all, vec!["fl1", "fl2"], "each FL owned once");

    let load = load(&w, &sim);
    until_sent(&load, RATE * 3.0).await;
    // The instance that reads the commands (one partition) is the one killed: its FL, the
    // command partition and perhaps the leadership move.
    let commands_at_r1 = v1["groups"][0]["partitions"]
        .as_array()
        .is_some_and(|p| !p.is_empty());
    let killed_at = Instant::now();
    let (survivor, name) = if commands_at_r1 {
        r1.kill_hard();
        (&r2, "r2")
    } else {
        r2.kill_hard();
        (&r1, "r1")
    };
    let deadline = Instant::now() + LONG * 3;
    loop {
        let v = cluster_view(survivor).await;
        if owned(&v).len() == 2 && v["leader"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "FLs not taken over: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took_over = killed_at.elapsed();
    eprintln!("took over {} ms after the kill", took_over.as_millis());
    until_sent(&load, RATE * 12.0).await;
    let report =
        every_command_answered_by_its_fl(&w, load, "kill -9, not restarted", &[(survivor, name)])
            .await;
    // Commands became pending only by adoption from the FL read topics, on both instances.
    let base = survivor.admin_url().await;
    let metrics = tokio::task::spawn_blocking(move || {
        ureq::get(format!("{base}/metrics"))
            .call()
            .expect("admin reachable")
            .body_mut()
            .read_to_string()
            .unwrap_or_default()
    })
    .await
    .unwrap();
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(value("flrouter_forwards_adopted_total") > 0.0, "{metrics}");
    // What the survivor holds, in its metrics too.
    assert_eq!(
        value(r#"flrouter_cluster_owned{what="fls"}"#),
        2.0,
        "{metrics}"
    );
    assert_eq!(
        value(r#"flrouter_cluster_owned{what="leader"}"#),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        value(r#"flrouter_cluster_fl_owned{fl="fl1"}"#),
        1.0,
        "{metrics}"
    );
    assert!(
        value("flrouter_commands_handed_over_total") > 0.0,
        "{metrics}"
    );
    // A kill replays what was read and not committed: at most a commit interval's and a
    // takeover's worth of commands.
    let in_flight = RATE * (2.0 + took_over.as_secs_f64());
    assert!(
        (report.duplicates as f64) <= in_flight,
        "duplicates {} > {in_flight:.0}",
        report.duplicates
    );
    drop(sim);
}

/// SIGTERM each of three instances in turn under load and start it again (same instance id):
/// each hands its FLs over on the way out and takes them back on return.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_three_loses_nothing_and_answers_nothing_falsely() {
    let (w, sim) = cluster_world_of(&["fl1", "fl2", "fl3"], 3).await;
    let mut routers = three_instances(&w).await;
    let load = load(&w, &sim);
    for (i, (router, name)) in routers.iter_mut().enumerate() {
        until_sent(&load, RATE * (2.0 + 5.0 * i as f64)).await;
        let status = router.terminate();
        assert!(
            status.success(),
            "{name} stopped cleanly:\n{}",
            router.log_text()
        );
        *router = start(&w, name);
        router.ready().await;
    }
    all_owned_once(&routers).await;
    until_sent(&load, RATE * 19.0).await;
    let views: Vec<(&Router, &str)> = routers.iter().map(|(r, n)| (r, n.as_str())).collect();
    every_command_answered_by_its_fl(&w, load, "rolling restart of three", &views).await;
    drop(sim);
}

/// Duties that must run once cluster-wide, over a run with two instances: AliveRequests (one
/// per FL per interval: only its owner asks), switch events (each forwarded once, by the FL's
/// owner), the sync of an FL taken over (by its new owner, with `sync.at_start`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duties_run_once_cluster_wide() {
    let (w, sim) = cluster_world().await;
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(&w.config_path).unwrap()).unwrap();
    cfg["sync"]["at_start"] = json!(true);
    std::fs::write(&w.config_path, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
    let events = Reader::new(&w.events);
    let (r1, r2) = two_instances(&w).await;
    // A window with both instances in place.
    let reads: Vec<Reader> = ["fl1", "fl2"]
        .iter()
        .map(|fl| Reader::at_end(&w.fl_read(fl)))
        .collect();
    let window = Duration::from_secs(5);
    tokio::time::sleep(window).await;
    let classes = Classes::default();
    for (fl, r) in ["fl1", "fl2"].iter().zip(&reads) {
        let asked = r
            .read_to_end()
            .await
            .iter()
            .filter(|m| m.json()["payload"]["clazz"] == classes.alive_request.as_str())
            .count();
        // One per second (alive_interval) from its one owner; two owners would make ten.
        assert!(
            (3..=7).contains(&asked),
            "{fl}: {asked} AliveRequests in {window:?}"
        );
    }
    let seen = events.read_to_end().await;
    let mut per_switch = std::collections::HashMap::<String, usize>::new();
    for m in &seen {
        let v = m.json();
        if v["payload"]["clazz"] == "org.openkilda.messaging.info.event.SwitchInfoData" {
            *per_switch
                .entry(v["payload"]["switch_id"].as_str().unwrap_or("").to_string())
                .or_default() += 1;
        }
    }
    assert_eq!(
        per_switch.len(),
        sim.switches().len(),
        "every switch announced: {per_switch:?}"
    );
    assert!(
        per_switch.values().all(|&n| n == 1),
        "each switch event forwarded once: {per_switch:?}"
    );
    // Each FL's chain was requested by whoever took the FL over, and both instances route
    // every switch.
    let p = producer();
    for (i, sw) in sim.switches().iter().enumerate() {
        let reply = Reader::new(&w.reply);
        send(
            &p,
            &w.commands,
            None,
            &command(&format!("d{i}"), sw),
            Some(&w.reply),
        )
        .await;
        let v = reply.expect(LONG).await.json();
        assert_eq!(error_type(&v), None, "{sw} answered by its FL: {v}");
    }
    drop((r1, r2, sim));
}

/// Commands per second of the three-instance run: `CLUSTER_RATE` overrides it (the issue's
/// figure is 1,000/s; the default keeps CI's debug build on two cores honest).
fn cluster_rate() -> f64 {
    std::env::var("CLUSTER_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300.0)
}

/// Instances r1, r2, r3 (started in turn), once every FL of fl1..fl3 is owned once and one
/// instance leads.
async fn three_instances(w: &World) -> Vec<(Router, String)> {
    let mut routers: Vec<(Router, String)> = Vec::new();
    for name in ["r1", "r2", "r3"] {
        let r = start(w, name);
        r.ready().await;
        routers.push((r, name.to_string()));
    }
    all_owned_once(&routers).await;
    routers
}

/// Waits until every FL of fl1..fl3 is owned once among `routers` and one of them leads.
async fn all_owned_once(routers: &[(Router, String)]) {
    let deadline = Instant::now() + LONG * 3;
    loop {
        let mut views = Vec::new();
        for (r, _) in routers {
            views.push(cluster_view(r).await);
        }
        let mut fls: Vec<String> = views.iter().flat_map(owned).collect();
        fls.sort();
        let leaders = views.iter().filter(|v| v["leader"] == true).count();
        if fls == ["fl1", "fl2", "fl3"] && leaders == 1 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "FLs not owned once each: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Seconds of the three-instance run, the kills at a third and two thirds of it:
/// `CLUSTER_SECONDS` overrides it (the issue's run is 60 s, kills at 20 s and 40 s).
fn cluster_seconds() -> f64 {
    std::env::var("CLUSTER_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30.0)
}

/// Three instances under load; kill -9 one at a third of the run and another at two thirds
/// (10 s and 20 s by default), each started again at once (same instance id): every command
/// answered by its FL, nothing false, duplicates bounded by what was in flight at the kills;
/// the time until each killed instance routes again is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_survive_two_kills() {
    let (w, sim) = cluster_world_of(&["fl1", "fl2", "fl3"], 3).await;
    let mut routers = three_instances(&w).await;
    let rate = cluster_rate();
    let seconds = cluster_seconds();
    let events = Reader::new(&w.events);
    let load = load_at(&w, &sim, rate);
    // Switch events all through the kills: every 50 ms one more from a switch's FL (a repeat
    // from its active FL, which the router forwards), each with an id of its own.
    let stop_events = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let emitter = {
        let stop = stop_events.clone();
        let per_fl: Vec<(String, Vec<String>)> = sim
            .fls
            .iter()
            .map(|f| (w.fl_write(&f.id), f.switches.clone()))
            .collect();
        tokio::spawn(async move {
            let p = producer();
            let mut n = 0usize;
            while !stop.load(Relaxed) {
                let (topic, sws) = &per_fl[n % per_fl.len()];
                let sw = &sws[(n / per_fl.len()) % sws.len()];
                let ev = json!({"clazz": "org.openkilda.messaging.info.InfoMessage",
                    "correlation_id": format!("tev-{n}"), "timestamp": 1,
                    "payload": {"clazz": "org.openkilda.messaging.info.event.SwitchInfoData",
                                "switch_id": sw, "state": "ACTIVATED"}});
                send(&p, topic, Some(sw), ev.to_string().as_bytes(), None).await;
                n += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            n
        })
    };
    let mut back_in = Vec::new();
    for (i, at) in [(0usize, seconds / 3.0), (1, seconds * 2.0 / 3.0)] {
        until_sent(&load, rate * at).await;
        let (router, name) = &mut routers[i];
        let killed = Instant::now();
        router.kill_hard();
        *router = start(&w, name);
        router.ready().await;
        back_in.push((name.clone(), killed.elapsed()));
    }
    until_sent(&load, rate * seconds).await;
    stop_events.store(true, Relaxed);
    let emitted = emitter.await.expect("events emitted");
    eprintln!("routing again after {back_in:?}");
    let views: Vec<(&Router, &str)> = routers.iter().map(|(r, n)| (r, n.as_str())).collect();
    let what = format!("three instances, two kills at {rate}/s");
    let report = every_command_answered_by_its_fl(&w, load, &what, &views).await;
    // Each kill replays what its instance had read and not committed: a commit interval's
    // worth and what waited for its return.
    let in_flight: f64 = back_in
        .iter()
        .map(|(_, d)| rate * (1.0 + d.as_secs_f64()))
        .sum();
    assert!(
        (report.duplicates as f64) <= in_flight,
        "duplicates {} > {in_flight:.0}",
        report.duplicates
    );
    // Every switch event reached the controller; repeats only from the kills' replays.
    let mut seen = std::collections::HashMap::<String, usize>::new();
    let deadline = Instant::now() + LONG;
    loop {
        for m in events.read_to_end().await {
            if let Some(id) = m.json()["correlation_id"].as_str() {
                if id.starts_with("tev-") {
                    *seen.entry(id.to_string()).or_default() += 1;
                }
            }
        }
        if seen.len() >= emitted || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let missing: Vec<String> = (0..emitted)
        .map(|n| format!("tev-{n}"))
        .filter(|id| !seen.contains_key(id))
        .collect();
    let repeated: usize = seen.values().map(|&c| c - 1).sum();
    eprintln!(
        "switch events: {emitted} emitted, {} missing, {repeated} repeated",
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "switch events missing on the events topic: {missing:?}"
    );
    drop(sim);
}

/// A multi-switch command whose switches are on FLs owned by two instances: each part is
/// adopted by its FL's owner, whose results go to the collecting instance's collect topic, and
/// one assembled result lists every switch as successful.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_switch_command_is_assembled_across_instances() {
    let (w, sim) = cluster_world().await;
    let (r1, r2) = two_instances(&w).await;
    // Both instances route every switch (a probe per switch answered by its FL).
    probe_every_switch(&w, &sim.switches(), LONG).await;
    let p = producer();
    let replies = Reader::at_end(&w.reply);
    let switches = sim.switches();
    let cmd = json!({"clazz": "org.openkilda.messaging.command.CommandMessage", "correlation_id": "multi-c",
                     "timestamp": 1, "payload": {"clazz": "DumpRules", "switch_id": switches}});
    send(
        &p,
        &w.commands,
        None,
        cmd.to_string().as_bytes(),
        Some(&w.reply),
    )
    .await;
    let r = replies.expect(LONG).await.json();
    assert_eq!(cid_of(&r), "multi-c", "{r}");
    assert_eq!(r["payload"]["complete"], true, "{r}");
    let entries = r["payload"]["switches"].as_array().unwrap();
    assert_eq!(entries.len(), switches.len(), "{r}");
    assert!(entries.iter().all(|e| e["status"] == "success"), "{r}");
    assert!(
        replies.next(Duration::from_millis(500)).await.is_none(),
        "exactly one result"
    );
    drop((r1, r2, sim));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controllers_sync_request_syncs_every_fl_once_across_instances() {
    let (w, sim) = cluster_world().await;
    let (r1, r2) = two_instances(&w).await;
    let classes = Classes::default();
    let events = Reader::new(&w.events);
    let replies = Reader::new(&w.reply);
    let req = json!({"clazz": classes.command_message, "correlation_id": "ctl-sync-1", "timestamp": 1,
                     "payload": {"clazz": classes.sync_request, "dump_id": "d1"}});
    send(
        &producer(),
        &w.commands,
        None,
        req.to_string().as_bytes(),
        Some(&w.reply),
    )
    .await;
    // Whichever instance read it, each FL's owner syncs that FL: one summary per FL.
    let mut summaries = Vec::new();
    for _ in 0..2 {
        summaries.push(replies.expect(LONG).await.json());
    }
    let mut fls: Vec<String> = summaries
        .iter()
        .map(|v| {
            assert_eq!(cid_of(v), "ctl-sync-1", "{v}");
            let p = &v["payload"];
            assert_eq!(p["complete"], true, "{v}");
            assert_eq!(p["fls"].as_array().map(Vec::len), Some(1), "{v}");
            assert_eq!(p["fls"][0]["switches"], 4, "{v}");
            p["fls"][0]["fl_id"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    fls.sort();
    assert_eq!(fls, ["fl1", "fl2"]);
    assert!(
        replies.next(Duration::from_millis(1000)).await.is_none(),
        "one summary per FL, no more"
    );
    // Every chain message proxied to the controller once.
    let chain: Vec<Value> = events
        .read_to_end()
        .await
        .iter()
        .map(|m| m.json())
        .filter(|v| {
            v["correlation_id"] == "ctl-sync-1" && v["clazz"] == classes.chunked_info_message
        })
        .collect();
    let ids: std::collections::HashSet<String> = chain
        .iter()
        .map(|v| format!("{}", v["payload"]["switch_record"]["datapath"]))
        .collect();
    assert_eq!(ids.len(), chain.len(), "no chain message twice: {chain:?}");
    assert_eq!(chain.len(), sim.switches().len(), "{chain:?}");
    drop((r1, r2, sim));
}

/// `name`'s config: the world's, with `change` applied to it.
fn instance_config_with(w: &World, name: &str, change: impl FnOnce(&mut Value)) -> PathBuf {
    let path = instance_config(w, name);
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    change(&mut v);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_routing_settings_differ_from_a_running_peers_is_refused() {
    let (w, _sim) = cluster_world().await;
    let r1 = start(&w, "r1");
    r1.ready().await;
    let log = |name: &str| w.dir.path().join(format!("{name}.log"));
    // The FLs in another order: FL f would be a different FL on each instance.
    let cfg = instance_config_with(&w, "r2", |v| {
        let fls = v["fls"].as_array_mut().unwrap();
        fls.reverse();
    });
    let mut r2 = Router::spawn(&cfg, &log("r2"), &[]);
    let deadline = Instant::now() + LONG;
    while !r2.exited() {
        assert!(
            Instant::now() < deadline,
            "r2 still running:\n{}",
            r2.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = r2.log_text();
    assert!(
        text.contains("settings fls differ from running instance r1's"),
        "the refusal names the key and the peer:\n{text}"
    );
    // A timeout may differ for the length of a rolling change: started, and shown.
    let cfg = instance_config_with(&w, "r3", |v| v["timeouts"]["answer"] = json!("61s"));
    let r3 = Router::spawn(&cfg, &log("r3"), &[]);
    r3.ready().await;
    let view = cluster_view(&r3).await;
    let peers = view["peers_at_start"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(peers.len(), 1, "{view}");
    assert_eq!(peers[0]["instance"], "r1", "{view}");
    assert_eq!(
        peers[0]["differences"]["may_differ"],
        json!(["timeouts.answer"]),
        "{view}"
    );
    assert!(r3
        .log_text()
        .contains("settings differ from a running instance's"));
    drop((r1, r3));
}

/// An instance frozen (SIGSTOP) under load longer than `cluster.lapse` (a false suspicion: it
/// is not dead): the other removes it from the groups and takes its FLs over; when it resumes
/// it has lost them (its consumers hear they are out) and must not act on them — no false
/// answer, nothing lost, one more rebalance to share again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_paused_past_its_lapse_loses_its_share_and_answers_nothing_falsely() {
    let (w, sim) = cluster_world().await;
    let (r1, r2) = two_instances(&w).await;
    let load = load(&w, &sim);
    until_sent(&load, RATE * 3.0).await;
    r1.pause();
    let paused = Instant::now();
    let deadline = paused + LONG * 3;
    loop {
        let v = cluster_view(&r2).await;
        if owned(&v).len() == 2 && v["leader"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "FLs not taken over: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "taken over {} ms after the pause",
        paused.elapsed().as_millis()
    );
    assert!(
        r2.log_text().contains("removed a silent peer from a group"),
        "the survivor removed the frozen r1 from the groups:\n{}",
        r2.log_text()
    );
    // Frozen a while longer, with the survivor routing everything.
    tokio::time::sleep(Duration::from_secs(2)).await;
    r1.resume();
    split(&r1, &r2).await;
    let frozen = paused.elapsed();
    until_sent(&load, RATE * 20.0).await;
    let report = every_command_answered_by_its_fl(
        &w,
        load,
        "paused past the lapse",
        &[(&r1, "r1"), (&r2, "r2")],
    )
    .await;
    // On resuming, the frozen instance answers what it held before it hears that it lost its
    // FLs, as the new owner does: duplicates, bounded by what was sent while it was frozen.
    let bound = RATE * (2.0 + frozen.as_secs_f64());
    assert!(
        (report.duplicates as f64) <= bound,
        "duplicates {} > {bound:.0}",
        report.duplicates
    );
    drop(sim);
}

/// With `cluster.lapse` (1 s by default) a killed instance's work moves when its heartbeats
/// stop, not when its session expires: the session here is 60 s and the survivor must hold
/// everything well before that (30 s at most), having removed the dead member itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_is_taken_over_on_its_lapse_not_its_session() {
    let (w, sim) = cluster_world().await;
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(&w.config_path).unwrap()).unwrap();
    cfg["kafka"]["consumer"]["session.timeout.ms"] = json!("60000");
    std::fs::write(&w.config_path, cfg.to_string()).unwrap();
    let (mut r1, r2) = two_instances(&w).await;
    let load = load(&w, &sim);
    until_sent(&load, RATE * 3.0).await;
    r1.kill_hard();
    let killed = Instant::now();
    let deadline = killed + Duration::from_secs(30);
    loop {
        let v = cluster_view(&r2).await;
        let commands = v["groups"][0]["partitions"]
            .as_array()
            .is_some_and(|p| !p.is_empty());
        if owned(&v).len() == 2 && v["leader"] == true && commands {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not taken over 30 s after the kill (the session is 60 s): {v}\n{}",
            r2.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "taken over {} ms after the kill",
        killed.elapsed().as_millis()
    );
    let log = r2.log_text();
    assert!(
        log.contains("removed a silent peer from a group"),
        "the survivor removed r1 itself:\n{log}"
    );
    until_sent(&load, RATE * 10.0).await;
    every_command_answered_by_its_fl(&w, load, "kill -9, taken over on lapse", &[(&r2, "r2")])
        .await;
    drop(sim);
}
