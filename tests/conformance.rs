//! OpenKilda conformance: every fixture of `tests/fixtures/openkilda.json` (one per class,
//! both directions, realistic keys and headers) goes through a real broker and the router
//! running the shipped profile `config/openkilda.yaml` (only the broker address and the admin
//! port changed). Each lands on the topic OpenKilda's own floodlightrouter would use,
//! byte-identical, with the same key and the same headers; broadcasts are wrapped per region
//! with that region's switches; a controller's sync request reaches every region unchanged.
//! A simulated FL per region answers the router's alive requests, as a Floodlight would.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use fl_router::config::Config;
use fl_router_actors::settings::Classes;
use fl_router_tools::sim::fl::Speaker;
use fl_router_tools::sim::{SimConfig, Simulator};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};

const FIXTURES: &str = include_str!("fixtures/openkilda.json");

fn bytes_of(f: &Value) -> Vec<u8> {
    serde_json::to_vec(&f["message"]).expect("fixture message")
}

fn headers_of(f: &Value) -> Vec<(String, Vec<u8>)> {
    f["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().unwrap_or_default().as_bytes().to_vec(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn produce(p: &FutureProducer, topic: &str, f: &Value) -> Vec<u8> {
    let body = bytes_of(f);
    let mut rec = FutureRecord::<str, [u8]>::to(topic).payload(&body);
    if let Some(k) = f["key"].as_str() {
        rec = rec.key(k);
    }
    let hdrs = headers_of(f);
    if !hdrs.is_empty() {
        let mut h = OwnedHeaders::new();
        for (k, v) in &hdrs {
            h = h.insert(Header {
                key: k,
                value: Some(v.as_slice()),
            });
        }
        rec = rec.headers(h);
    }
    p.send(rec, Duration::from_secs(10))
        .await
        .expect("produce fixture");
    body
}

/// The next message on `reader` whose bytes are `body` (others are skipped).
async fn find(reader: &Reader, body: &[u8], name: &str) -> Received {
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let m = reader
            .next(left)
            .await
            .unwrap_or_else(|| panic!("{name}: not on {} byte for byte", reader.topic));
        if m.payload == body {
            return m;
        }
    }
}

fn assert_same_key_and_headers(name: &str, f: &Value, got: &Received) {
    assert_eq!(
        got.key.as_deref(),
        f["key"].as_str().map(str::as_bytes),
        "{name}: same key"
    );
    assert_eq!(got.headers, headers_of(f), "{name}: same headers");
}

/// Stand-ins for the profile's regions: they answer the router's alive requests.
/// Stand-ins for the regions: each answers commands, alive and sync requests, and reports the
/// fixtures' switches of its region in its sync chain (as a real region would: a sync after
/// an outage must not drop the switches the region announced).
fn regions(config: &Config, fixtures: &Value) -> Simulator {
    let switches = serde_json::from_value(fixtures["switches"].clone()).expect("fixture switches");
    Simulator::start(
        sim_client(),
        &config.settings(),
        &SimConfig {
            switches_per_fl: 0,
            switches,
            // Today's Floodlight, whose switches connected before the test: the fixtures'
            // events announce them.
            speaker: Speaker::OpenKilda,
            announce: false,
            ..SimConfig::default()
        },
    )
    .expect("simulator")
}

/// The regions announce their switches (Floodlight's SwitchInfoData with the switch's view): the
/// network topology hears of each as OpenKilda's router tells it, one SwitchConnectNotification
/// keyed by the switch with its view (from this event, or from a region's dump that came first:
/// in a cluster each instance syncs the regions it takes over); the raw event does not go on.
async fn announce(p: &FutureProducer, fixtures: &Value) {
    let connect = Classes::default().switch_connect_notification;
    for f in fixtures["announce"].as_array().unwrap() {
        let to = Reader::new(f["expect_topic"].as_str().unwrap());
        let body = produce(p, f["topic"].as_str().unwrap(), f).await;
        let sw = f["key"].as_str().unwrap();
        let deadline = tokio::time::Instant::now() + LONG;
        let notice = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let m = to
                .next(left)
                .await
                .unwrap_or_else(|| panic!("no connect notice for {sw}"));
            assert_ne!(m.payload, body, "the raw connection event went on");
            let v: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
            if v["payload"]["clazz"] == connect.as_str() && m.key.as_deref() == Some(sw.as_bytes())
            {
                break v;
            }
        };
        assert_eq!(notice["payload"]["speakerData"]["datapath"], sw);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_openkilda_class_is_routed_as_openkildas_router_does_with_bytes_key_and_headers_kept()
{
    // Every run in its own namespace: OpenKilda's topic names with a per-run prefix.
    let ns = namespace();
    let mut fixtures: Value = serde_json::from_str(FIXTURES).expect("fixtures");
    prefix_topics(&mut fixtures, &ns);
    let mut profile = openkilda_profile(&ns);
    // No periodic sync: it runs on the minute's boundary, and the stand-ins' chains do not list
    // the standby and read-only connections the fixtures announce (tests/network_dump.rs has
    // the syncs).
    profile["sync"]["periodic"] = Value::String("0s".into());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openkilda.yaml");
    std::fs::write(&path, serde_yaml_ng::to_string(&profile).unwrap()).unwrap();
    let config = Config::load(&path).expect("the shipped profile loads");
    let router = Router::spawn(&path, &dir.path().join("router.log"), &[]);
    router.ready().await;
    // The router created the profile's topics; the regions' stand-ins answer alive requests.
    let _sim = regions(&config, &fixtures);
    let p = producer();

    announce(&p, &fixtures).await;
    // Other regions connect to a switch too: announced, not forwarded (the switch was managed
    // already; a second connect event would tell the controller nothing true).
    let availability = Classes::default().switch_availability_notification;
    for f in fixtures["standby"].as_array().unwrap() {
        let events = Reader::at_end(&format!("{ns}kilda.topo.disco.storm"));
        let body = produce(&p, f["topic"].as_str().unwrap(), f).await;
        // Everything on the events topic up to the notice, and a little after it.
        let mut seen = Vec::new();
        let notice = loop {
            let m = events.expect(LONG).await;
            let v: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
            seen.push(m.payload);
            if v["payload"]["clazz"] == availability.as_str() {
                break v;
            }
        };
        while let Some(m) = events.next(Duration::from_millis(300)).await {
            seen.push(m.payload);
        }
        let listed: Vec<Value> = notice["payload"]["availabilityData"]["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| json!([c["regionName"], c["connectMode"], c["master"]]))
            .collect();
        assert_eq!(Value::Array(listed), f["expect_connections"], "{}", f["fl"]);
        assert_eq!(notice["payload"]["switchId"], f["key"]);
        assert!(
            seen.iter().all(|m| *m != body),
            "a standby's connect event is not forwarded"
        );
    }
    let switches: HashMap<String, Vec<String>> =
        serde_json::from_value(fixtures["switches"].clone()).unwrap();
    let url = router.admin_url().await;
    for (fl, sws) in &switches {
        for sw in sws {
            let (status, body) = tokio::task::spawn_blocking({
                let u = format!("{url}/api/switches/{sw}");
                move || {
                    let mut r = ureq::get(&u).call().expect("admin");
                    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
                }
            })
            .await
            .unwrap();
            assert_eq!(status, 200, "{sw}: {body}");
            assert!(body.contains(&format!("\"{fl}\"")), "{sw} on {fl}: {body}");
        }
    }

    let t = &config.topics;
    for f in fixtures["commands"].as_array().unwrap() {
        let name = f["name"].as_str().unwrap();
        let from = f["topic"].as_str().unwrap();
        let lane = t
            .command_lanes()
            .into_iter()
            .find(|l| l.from == from)
            .unwrap_or_else(|| panic!("{name}: {from} is a command lane"));
        match f["expect"].as_str() {
            None => {
                let to = Reader::at_end(f["expect_topic"].as_str().unwrap());
                let body = produce(&p, from, f).await;
                let got = find(&to, &body, name).await;
                assert_same_key_and_headers(name, f, &got);
            }
            Some("broadcast") => {
                let readers: Vec<(String, Reader)> = config
                    .fls
                    .iter()
                    .map(|fl| {
                        (
                            fl.id.clone(),
                            Reader::at_end(&lane.to.replace("{fl}", &fl.id)),
                        )
                    })
                    .collect();
                produce(&p, from, f).await;
                let cid = f["message"]["correlation_id"].as_str().unwrap();
                let every_fl = name.contains("PortsCommandData");
                // A poll goes to read-only regions first (region 1.stats sees SW_A), so the
                // fixture may say which region polls what.
                let scopes: HashMap<String, Vec<String>> =
                    serde_json::from_value(f["expect_scopes"].clone())
                        .unwrap_or_else(|_| switches.clone());
                for (fl, r) in &readers {
                    let mine = scopes.get(fl).cloned().unwrap_or_default();
                    if !every_fl && mine.is_empty() {
                        continue; // nothing to poll there
                    }
                    let v = r
                        .until(LONG, |v| {
                            v["correlation_id"] == cid
                                && v["payload"]["clazz"]
                                    == "org.openkilda.messaging.command.BroadcastWrapper"
                        })
                        .await;
                    let mut scope: Vec<String> =
                        serde_json::from_value(v["payload"]["scope"].clone()).unwrap();
                    scope.sort();
                    let mut want = mine.clone();
                    want.sort();
                    assert_eq!(scope, want, "{name}: region {fl}'s scope");
                    assert_eq!(
                        v["payload"]["payload"], f["message"]["payload"],
                        "{name}: the original payload inside"
                    );
                }
            }
            Some("sync") => {
                let readers: Vec<Reader> = config
                    .fls
                    .iter()
                    .map(|fl| Reader::at_end(&t.control_topic(&fl.id)))
                    .collect();
                let body = produce(&p, from, f).await;
                for r in &readers {
                    find(r, &body, name).await;
                }
            }
            Some(other) => panic!("{name}: unknown expectation {other}"),
        }
    }

    for f in fixtures["outputs"].as_array().unwrap() {
        let name = f["name"].as_str().unwrap();
        let from = f["topic"].as_str().unwrap();
        let to = Reader::at_end(f["expect_topic"].as_str().unwrap());
        let body = produce(&p, from, f).await;
        let got = find(&to, &body, name).await;
        assert_same_key_and_headers(name, f, &got);
    }

    // A network dump entry as today's Floodlight writes it, serialised by OpenKilda's own
    // mapper (the oracle's example): region 1's plain InfoMessage, outside any sync session.
    // It maps its switch to region 1 and reaches the network topology byte for byte.
    let example = oracle::example("NetworkDumpSwitchData");
    let entry = json!({
        "topic": format!("{ns}{}", example["topic"].as_str().unwrap()),
        "key": example["key"],
        "message": example["value"],
    });
    let sw = example["key"].as_str().unwrap();
    let to = Reader::at_end(&format!("{ns}kilda.topo.disco.storm"));
    let bytes = oracle::example_bytes("NetworkDumpSwitchData");
    send(&p, entry["topic"].as_str().unwrap(), Some(sw), &bytes, None).await;
    let got = find(&to, &bytes, "NetworkDumpSwitchData").await;
    assert_eq!(
        got.key.as_deref(),
        Some(sw.as_bytes()),
        "keyed by its switch"
    );
    let view = admin_get(&url, &format!("/api/switches/{sw}")).await;
    assert_eq!(
        view["fl_id"], "1",
        "the entry mapped its switch to its region: {view}"
    );
}

async fn admin_get(url: &str, path: &str) -> Value {
    let u = format!("{url}{path}");
    tokio::task::spawn_blocking(move || {
        let mut r = ureq::get(&u).call().expect("admin");
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).expect("JSON")
    })
    .await
    .unwrap()
}

/// The same OpenKilda shapes through two router instances of one cluster (`cluster.enabled`):
/// the regions are owned by either instance, the commands read by whichever holds the command
/// partition; every unicast command still reaches its region's topic with its bytes, key and
/// headers, and every region's output its controller topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openkilda_messages_through_a_cluster_of_two_keep_bytes_keys_and_headers() {
    let ns = namespace();
    let mut fixtures: Value = serde_json::from_str(FIXTURES).expect("fixtures");
    prefix_topics(&mut fixtures, &ns);
    let mut profile = openkilda_profile(&ns);
    profile["cluster"] = json!({
        "enabled": true,
        "owners_topic": format!("{ns}kilda.flrouter.owners"),
        "leader_topic": format!("{ns}kilda.flrouter.leader"),
        "collect_topic": format!("{ns}kilda.flrouter.collect"),
    });
    profile["kafka"]["consumer"] =
        json!({"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"});
    // No periodic sync: it runs on the minute's boundary, and the stand-ins' chains do not list
    // the standby and read-only connections the fixtures announce (tests/network_dump.rs has
    // the syncs).
    profile["sync"]["periodic"] = Value::String("0s".into());
    let dir = tempfile::tempdir().unwrap();
    let mut routers = Vec::new();
    let mut config = None;
    for name in ["ok1", "ok2"] {
        let mut p = profile.clone();
        p["kafka"]["instance_id"] = Value::String(name.into());
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, serde_yaml_ng::to_string(&p).unwrap()).unwrap();
        config.get_or_insert_with(|| Config::load(&path).expect("the profile loads"));
        let r = Router::spawn(&path, &dir.path().join(format!("{name}.log")), &[]);
        r.ready().await;
        routers.push(r);
    }
    let config = config.unwrap();
    let _sim = regions(&config, &fixtures);
    let p = producer();
    announce(&p, &fixtures).await;
    // Both instances route every switch (facts on the switch-map topic) before commands go.
    let switches: HashMap<String, Vec<String>> =
        serde_json::from_value(fixtures["switches"].clone()).unwrap();
    for r in &routers {
        let url = r.admin_url().await;
        for (fl, sws) in &switches {
            for sw in sws {
                let u = format!("{url}/api/switches/{sw}");
                let want = format!("\"{fl}\"");
                let deadline = tokio::time::Instant::now() + LONG;
                loop {
                    let u = u.clone();
                    let body = tokio::task::spawn_blocking(move || {
                        ureq::get(&u)
                            .call()
                            .ok()
                            .and_then(|mut r| r.body_mut().read_to_string().ok())
                            .unwrap_or_default()
                    })
                    .await
                    .unwrap();
                    if body.contains(&want) {
                        break;
                    }
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "{sw} not known on {fl} at {url}: {body}\n{}",
                        routers
                            .iter()
                            .map(|r| r.log_text())
                            .collect::<Vec<_>>()
                            .join("\n----\n")
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    for f in fixtures["commands"].as_array().unwrap() {
        if f["expect"].is_string() {
            continue; // broadcasts and the sync request: their cluster tests are elsewhere
        }
        let name = f["name"].as_str().unwrap();
        let to = Reader::at_end(f["expect_topic"].as_str().unwrap());
        let body = produce(&p, f["topic"].as_str().unwrap(), f).await;
        let got = find(&to, &body, name).await;
        assert_same_key_and_headers(name, f, &got);
    }
    for f in fixtures["outputs"].as_array().unwrap() {
        let name = f["name"].as_str().unwrap();
        let to = Reader::at_end(f["expect_topic"].as_str().unwrap());
        let body = produce(&p, f["topic"].as_str().unwrap(), f).await;
        let got = find(&to, &body, name).await;
        assert_same_key_and_headers(name, f, &got);
    }
    drop(routers);
}

/// The fixtures are OpenKilda's messages, not our notes of them: each reads, as the OpenKilda
/// component that reads its topic reads it, through OpenKilda's own classes
/// (`../shared/openkilda-oracle`).
#[test]
fn every_fixture_is_a_message_openkilda_reads() {
    let fixtures: Value = serde_json::from_str(FIXTURES).expect("fixtures");
    let mut names = Vec::new();
    let mut records = Vec::new();
    for section in ["announce", "standby", "commands", "outputs"] {
        for f in fixtures[section].as_array().unwrap() {
            names.push(format!(
                "{section}: {}",
                f["name"].as_str().or(f["key"].as_str()).unwrap_or("?")
            ));
            records.push(oracle::Record {
                topic: f["topic"].as_str().unwrap().to_string(),
                key: f["key"].as_str().map(|k| k.as_bytes().to_vec()),
                value: bytes_of(f),
                headers: headers_of(f),
                role: None,
            });
        }
    }
    let verdicts = oracle::judge(&records, None);
    let refused: Vec<String> = names
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| v["ok"] != true)
        .map(|(n, v)| format!("{n}: {}", v["error"]))
        .collect();
    assert!(
        refused.is_empty(),
        "{} fixtures OpenKilda cannot read:\n{}",
        refused.len(),
        refused.join("\n")
    );
}
