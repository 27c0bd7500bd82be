//! A multi-switch command end to end on a real Kafka broker, with the simulator as three FLs.

mod common;

use std::sync::atomic::Ordering::Relaxed;

use common::*;
use fl_router::config::Config;
use fl_router_tools::sim::{SimConfig, Simulator};
use rdkafka::ClientConfig;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_assembled_result_lists_the_silent_fls_switches_as_timed_out_and_the_rest_as_successful(
) {
    let w = World::new(&["fl1", "fl2", "fl3"], "1s").await;
    let config = Config::load(&w.config_path).expect("test config");
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", brokers());
    let sim = Simulator::start(
        client,
        &config.settings(),
        &SimConfig {
            switches_per_fl: 4,
            ..SimConfig::default()
        },
    )
    .expect("simulator");
    let _router = w.start_router("router");
    let replies = Reader::new(&w.reply);
    let p = producer();

    // Ready when a single-switch probe to the last FL is answered by it.
    let fl3 = sim.fl("fl3").unwrap().switches.clone();
    send(
        &p,
        &w.commands,
        None,
        &command("probe", &fl3[0]),
        Some(&w.reply),
    )
    .await;
    let v = replies.expect(LONG).await.json();
    assert_eq!((cid_of(&v).as_str(), error_type(&v)), ("probe", None));

    // 10 switches: 4 of fl1, 3 of fl2, 3 of fl3; fl2 is silent.
    let mut switches = sim.fl("fl1").unwrap().switches.clone();
    let fl2: Vec<String> = sim.fl("fl2").unwrap().switches[..3].to_vec();
    switches.extend(fl2.iter().cloned());
    switches.extend(fl3[..3].iter().cloned());
    sim.fl("fl2").unwrap().knobs.silent.store(true, Relaxed);
    let cmd = json!({"clazz": "org.openkilda.messaging.command.CommandMessage", "correlation_id": "multi-1",
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
    assert_eq!(cid_of(&r), "multi-1");
    assert_eq!(
        r["payload"]["clazz"],
        "org.openkilda.flrouter.MultiSwitchResult"
    );
    assert_eq!(r["payload"]["complete"], false);
    let entries = r["payload"]["switches"].as_array().unwrap();
    assert_eq!(entries.len(), 10, "{r}");
    for e in entries {
        let sw = e["switch_id"].as_str().unwrap().to_string();
        if fl2.contains(&sw) {
            assert_eq!(
                (e["status"].as_str(), e["reason"].as_str()),
                (Some("failed"), Some("timed_out")),
                "{e}"
            );
        } else {
            assert_eq!(e["status"], "success", "{e}");
        }
    }
    assert!(r["payload"]["results"]["fl1"].is_array() && r["payload"]["results"]["fl3"].is_array());
    assert!(
        replies
            .next(std::time::Duration::from_millis(500))
            .await
            .is_none(),
        "exactly one result"
    );
}
