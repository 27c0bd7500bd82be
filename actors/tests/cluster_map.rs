//! One switch map over several cluster instances (`docs/design/cluster.md`, step 4), two
//! engines in one process with the switch-map topic played by the test: each instance
//! publishes its own FLs' connections as facts, applies the others', routes every switch; only
//! the leader announces and decides, and the others follow its decisions.

use std::time::Duration;

use fl_router_actors::settings::FlOwnership;
use fl_router_actors::testkit::{body, class_of, quiet_settings, start_recorded, Recorded};
use fl_router_actors::{Engine, Inbound, Outgoing, Settings};
use serde_json::json;

const S1: &str = "00:00:00:00:00:00:00:01";
const S2: &str = "00:00:00:00:00:00:00:02";
const S3: &str = "00:00:00:00:00:00:00:03";
const WAIT: Duration = Duration::from_secs(2);

fn settings() -> Settings {
    let mut s = quiet_settings(&["a", "b"]);
    s.engine.ownership = FlOwnership::Assigned;
    s.failover.grace = Duration::ZERO;
    s
}

/// Instance A owns FL a and leads; instance B owns FL b.
fn cluster() -> ((Engine, Recorded), (Engine, Recorded)) {
    let a = start_recorded(settings());
    a.0.set_fl_owned("a", true).unwrap();
    a.0.set_leader(true).unwrap();
    let b = start_recorded(settings());
    b.0.set_fl_owned("b", true).unwrap();
    (a, b)
}

fn event(sw: &str, state: &str) -> Inbound {
    Inbound::new(
        json!({"clazz":"org.openkilda.messaging.info.InfoMessage","correlation_id":"ev","timestamp":1,
            "payload":{"clazz":"org.openkilda.messaging.info.event.SwitchInfoData","switch_id":sw,"state":state}})
        .to_string(),
    )
}

fn command(cid: &str, sw: &str) -> Inbound {
    Inbound::new(
        json!({"clazz":"org.openkilda.messaging.command.CommandMessage","correlation_id":cid,
            "timestamp":1,"payload":{"clazz":"org.example.DumpRules","switch_id":sw}})
        .to_string(),
    )
}

fn is_map(e: &Engine, o: &Outgoing) -> bool {
    *o.topic == *e.settings().topics.switch_map
}

fn key(o: &Outgoing) -> String {
    String::from_utf8_lossy(o.key.as_deref().unwrap_or_default()).into_owned()
}

/// Everything `from` produced until its `nth` record with key `last` (inclusive): map records
/// are handed to `to` as the switch-map topic would, the rest returned.
async fn pipe(
    from: &mut Recorded,
    from_engine: &Engine,
    to: &Engine,
    last: &str,
    nth: usize,
) -> Vec<Outgoing> {
    let mut left = nth;
    let seen = from
        .until(WAIT, |o| {
            if is_map(from_engine, o) && key(o) == last {
                left -= 1;
            }
            left == 0
        })
        .await;
    let mut records = Vec::new();
    let mut rest = Vec::new();
    for o in seen {
        if is_map(from_engine, &o) {
            let value = (!o.null_value).then(|| o.payload.clone());
            records.push((key(&o), value));
        } else {
            rest.push(o);
        }
    }
    to.map_records(records).await.unwrap();
    rest
}

/// The FL whose read topic the next forward of `e` goes to.
async fn routed_to(e: &Engine, rec: &mut Recorded, cid: &str, sw: &str) -> String {
    e.command(command(cid, sw)).await.unwrap();
    let fwd = rec
        .until(WAIT, |o| body(o)["correlation_id"] == cid)
        .await
        .pop()
        .unwrap();
    ["a", "b"]
        .into_iter()
        .find(|fl| e.settings().topics.fl_read_topics(fl)[0] == *fwd.topic)
        .unwrap_or_else(|| panic!("{cid} went to {}", fwd.topic))
        .to_string()
}

fn notices(out: &[Outgoing]) -> Vec<String> {
    out.iter()
        .filter(|o| class_of(o).ends_with("Notification"))
        .map(|o| {
            format!(
                "{} {}",
                class_of(o).rsplit('.').next().unwrap_or(""),
                key(o)
            )
        })
        .collect()
}

#[actix_rt::test]
async fn two_instances_route_every_switch_and_only_the_leader_speaks() {
    let ((ea, mut ra), (eb, mut rb)) = cluster();
    // Each instance reads its own FL: b has S2 and S3, a has S1 and S3. B hears b's S3
    // connection first, A hears a's: each instance alone would make its own FL active.
    eb.fl_output("b", event(S2, "ACTIVATED")).await.unwrap();
    eb.fl_output("b", event(S3, "ACTIVATED")).await.unwrap();
    ea.fl_output("a", event(S1, "ACTIVATED")).await.unwrap();
    ea.fl_output("a", event(S3, "ACTIVATED")).await.unwrap();
    // The topic carries B's facts to A, then A's facts and decisions (S3: its own, then after
    // b's fact, the availability decision) to B.
    let b_out = pipe(&mut rb, &eb, &ea, &format!("fact/b/{S3}"), 1).await;
    let a_out = pipe(&mut ra, &ea, &eb, S2, 1).await;
    let a_rest = pipe(&mut ra, &ea, &eb, S3, 1).await;

    // Each owner forwarded its own FL's events (each made its switch managed where it was
    // read); the leader announced S3's second connection; B announced nothing.
    let forwarded = |out: &[Outgoing]| {
        out.iter()
            .filter(|o| class_of(o).ends_with("SwitchInfoData"))
            .count()
    };
    assert_eq!((forwarded(&a_out), forwarded(&b_out)), (2, 2));
    assert_eq!(
        notices(&b_out),
        Vec::<String>::new(),
        "only the leader speaks"
    );
    let mut announced = notices(&a_out);
    announced.extend(notices(&a_rest));
    assert_eq!(
        announced,
        vec![format!("SwitchAvailabilityUpdateNotification {S3}")]
    );

    // Every switch routes from either instance; S3 to a, the leader's decision (B saw b's
    // connection first and follows the decision, not its own view).
    assert_eq!(routed_to(&eb, &mut rb, "b-s1", S1).await, "a");
    assert_eq!(routed_to(&ea, &mut ra, "a-s2", S2).await, "b");
    assert_eq!(routed_to(&ea, &mut ra, "a-s3", S3).await, "a");
    assert_eq!(routed_to(&eb, &mut rb, "b-s3", S3).await, "a");

    // a loses S3: both instances fail it over to b; the leader announces it once.
    ea.fl_output("a", event(S3, "DEACTIVATED")).await.unwrap();
    let a_out3 = pipe(&mut ra, &ea, &eb, S3, 1).await;
    assert_eq!(
        notices(&a_out3),
        vec![format!("SwitchAvailabilityUpdateNotification {S3}")]
    );
    assert_eq!(routed_to(&ea, &mut ra, "a-s3-2", S3).await, "b");
    assert_eq!(routed_to(&eb, &mut rb, "b-s3-2", S3).await, "b");
    let view = eb.switch_view(S3).await.unwrap().unwrap();
    assert_eq!(view.active.as_deref(), Some("b"));
    assert_eq!(
        view.connections.len(),
        1,
        "a's connection gone at B too: {view:?}"
    );
    assert!(
        notices(&rb.drain()).is_empty(),
        "B announced nothing of the failover"
    );
}
