//! The single-switch path end to end on a real Kafka broker: the `fl-router` binary in the
//! middle, the test playing both the controller and the FL.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_reaches_the_fl_unchanged_and_its_answer_the_reply_to_topic() {
    let w = World::new(&["fl1"], "5s").await;
    let p = producer();
    let _router = w.start_router("router");
    let events = Reader::new(&w.events);
    let fl_in = Reader::new(&w.fl_read("fl1"));
    let replies = Reader::new(&w.reply);

    let ev = switch_event(SW1, "ACTIVATED");
    send(&p, &w.fl_write("fl1"), Some(SW1), &ev, None).await;
    let fwd = events.expect(LONG).await;
    assert_eq!(fwd.payload, ev, "switch event forwarded byte for byte");
    assert_eq!(fwd.key.as_deref(), Some(SW1.as_bytes()));

    let cmd = command("c-1", SW1);
    send(&p, &w.commands, Some("c-1"), &cmd, Some(&w.reply)).await;
    let got = fl_in.expect(LONG).await;
    assert_eq!(got.payload, cmd, "command forwarded byte for byte");
    assert_eq!(
        got.key.as_deref(),
        Some(&b"c-1"[..]),
        "the requester's key kept"
    );
    assert_eq!(
        got.header("reply_to"),
        Some(w.reply.as_bytes()),
        "the reply-to header travels with the command"
    );

    send(&p, &w.fl_write("fl1"), Some("c-1"), &ack("c-1"), None).await;
    let ans = answer("c-1");
    send(&p, &w.fl_write("fl1"), Some("c-1"), &ans, None).await;
    let reply = replies.expect(LONG).await;
    assert_eq!(
        reply.payload, ans,
        "the FL's answer, not the ack, reaches the reply-to topic"
    );
    assert_eq!(reply.key.as_deref(), Some(&b"c-1"[..]), "the FL's key kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_switch_is_answered_not_found() {
    let w = World::new(&["fl1"], "5s").await;
    let p = producer();
    let _router = w.start_router("router");
    let replies = Reader::new(&w.reply);
    send(&p, &w.commands, None, &command("c-nf", SW2), Some(&w.reply)).await;
    let v = replies.expect(LONG).await.json();
    assert_eq!(cid_of(&v), "c-nf");
    assert_eq!(error_type(&v), Some("NOT_FOUND"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_fl_gets_one_timeout_and_its_late_answer_never_reaches_the_controller() {
    let w = World::new(&["fl1"], "1s").await;
    let p = producer();
    let _router = w.start_router("router");
    let events = Reader::new(&w.events);
    let fl_in = Reader::new(&w.fl_read("fl1"));
    let replies = Reader::new(&w.reply);
    announce(&p, &w, "fl1", SW1, &events).await;

    send(
        &p,
        &w.commands,
        None,
        &command("c-slow", SW1),
        Some(&w.reply),
    )
    .await;
    fl_in.expect(LONG).await; // the FL got it, and stays silent
    let v = replies.expect(LONG).await.json();
    assert_eq!(cid_of(&v), "c-slow");
    assert_eq!(error_type(&v), Some("OPERATION_TIMED_OUT"));

    // The FL wakes up and answers late, then answers a second command promptly. Both answers
    // travel the same FL topic partition in order, so once the second one is on the reply
    // topic the first one has been dealt with: it must not be there.
    send(&p, &w.fl_write("fl1"), Some(SW1), &ack("c-slow"), None).await;
    send(&p, &w.fl_write("fl1"), Some(SW1), &answer("c-slow"), None).await;
    send(
        &p,
        &w.commands,
        None,
        &command("c-next", SW1),
        Some(&w.reply),
    )
    .await;
    fl_in.expect(LONG).await;
    send(&p, &w.fl_write("fl1"), Some(SW1), &answer("c-next"), None).await;
    let next = replies.expect(LONG).await.json();
    assert_eq!(
        cid_of(&next),
        "c-next",
        "the late answer for c-slow was dropped"
    );
    assert!(
        replies.next(Duration::from_millis(500)).await.is_none(),
        "nothing else on the reply topic"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_command_is_dead_lettered_and_answered_request_invalid() {
    let w = World::new(&["fl1"], "5s").await;
    let p = producer();
    let _router = w.start_router("router");
    let replies = Reader::new(&w.reply);
    let dead = Reader::new(&w.dead_letter);
    send(
        &p,
        &w.commands,
        None,
        b"{\"correlation_id\": \"c-bad\", oops",
        Some(&w.reply),
    )
    .await;
    let v = replies.expect(LONG).await.json();
    assert_eq!(error_type(&v), Some("REQUEST_INVALID"));
    let d = dead.expect(LONG).await;
    assert_eq!(d.payload, b"{\"correlation_id\": \"c-bad\", oops");
    let reason =
        String::from_utf8_lossy(d.header("flrouter_reason").expect("reason header")).to_string();
    assert!(reason.contains("malformed JSON"), "{reason}");
}

/// The FL side for the restart test: acks and answers every command it reads, counting them.
async fn answering_fl(
    read: String,
    out: String,
    seen: Arc<AtomicUsize>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let p = producer();
    let reader = Reader::new(&read);
    while !*stop.borrow() {
        let Some(m) = reader.next(Duration::from_millis(200)).await else {
            continue;
        };
        let cid = cid_of(&m.json());
        send(&p, &out, Some(SW1), &ack(&cid), None).await;
        send(&p, &out, Some(SW1), &answer(&cid), None).await;
        seen.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_killed_hard_and_restarted_loses_no_command() {
    const N: usize = 300;
    let w = World::new(&["fl1"], "5s").await;
    let p = producer();
    let mut router = w.start_router("router-1");
    let events = Reader::new(&w.events);
    let replies = Reader::new(&w.reply);
    announce(&p, &w, "fl1", SW1, &events).await;

    let seen = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let fl = tokio::spawn(answering_fl(
        w.fl_read("fl1"),
        w.fl_write("fl1"),
        seen.clone(),
        stop_rx,
    ));
    for i in 0..N {
        send(
            &p,
            &w.commands,
            Some(SW1),
            &command(&format!("c-{i}"), SW1),
            Some(&w.reply),
        )
        .await;
    }
    // Kill the router while it is busy: some commands answered, some in flight, some unread.
    tokio::time::timeout(LONG, async {
        while seen.load(Ordering::SeqCst) < N / 5 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the FL saw commands");
    router.kill_hard();
    let at_kill = seen.load(Ordering::SeqCst);
    // This test FL does not speak sync (startup sync is off in routing tests), so it
    // re-announces its switch; the new router reads that backlog before it routes commands.
    send(
        &p,
        &w.fl_write("fl1"),
        Some(SW1),
        &switch_event(SW1, "ACTIVATED"),
        None,
    )
    .await;
    let _router2 = w.start_router("router-2");

    let mut answers: HashMap<String, usize> = HashMap::new();
    let want: HashSet<String> = (0..N).map(|i| format!("c-{i}")).collect();
    while answers.len() < N {
        let Some(m) = replies.next(Duration::from_secs(60)).await else {
            let missing: Vec<_> = want
                .iter()
                .filter(|c| !answers.contains_key(*c))
                .take(10)
                .collect();
            panic!(
                "{} of {N} commands answered; missing e.g. {missing:?}",
                answers.len()
            );
        };
        let v = m.json();
        assert!(
            error_type(&v).is_none(),
            "every command answered by the FL, got {v}"
        );
        *answers.entry(cid_of(&v)).or_default() += 1;
    }
    let _ = stop_tx.send(true);
    let _ = fl.await;
    let dups: usize = answers.values().map(|n| n - 1).sum();
    assert_eq!(answers.keys().cloned().collect::<HashSet<_>>(), want);
    eprintln!("killed after the FL saw {at_kill} commands; {N} answered, {dups} duplicates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_in_flight_bound_reading_pauses_until_answers_free_room() {
    let w = World::with(
        &["fl1"],
        serde_json::json!({
            "kafka": {"max_inflight_commands": 5},
            "timeouts": {"ack": "2s", "alive_interval": "1h", "alive_timeout": "2h"},
            "sync": {"at_start": false, "periodic": "0s"},
        }),
    )
    .await;
    let p = producer();
    let _router = w.start_router("router");
    let events = Reader::new(&w.events);
    let fl_in = Reader::new(&w.fl_read("fl1"));
    let replies = Reader::new(&w.reply);
    announce(&p, &w, "fl1", SW1, &events).await;
    for i in 0..20 {
        send(
            &p,
            &w.commands,
            Some(SW1),
            &command(&format!("b-{i}"), SW1),
            Some(&w.reply),
        )
        .await;
    }
    // The FL stays silent: five commands reach it, then the router stops reading...
    for _ in 0..5 {
        fl_in.expect(LONG).await;
    }
    assert!(
        fl_in.next(Duration::from_millis(1500)).await.is_none(),
        "no sixth command before any answer"
    );
    // ...until the router's own answers (timeouts) free room; in the end all 20 are answered.
    let mut answered = HashSet::new();
    while answered.len() < 20 {
        let v = replies.expect(LONG).await.json();
        assert_eq!(error_type(&v), Some("OPERATION_TIMED_OUT"));
        answered.insert(cid_of(&v));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_chained_answer_keeps_its_command_alive_until_the_chain_is_complete() {
    const CHUNKS: u64 = 20;
    let w = World::new(&["fl1"], "1s").await;
    let p = producer();
    let _router = w.start_router("router");
    let events = Reader::new(&w.events);
    let fl_in = Reader::new(&w.fl_read("fl1"));
    let replies = Reader::new(&w.reply);
    announce(&p, &w, "fl1", SW1, &events).await;
    send(&p, &w.commands, None, &command("dump", SW1), Some(&w.reply)).await;
    fl_in.expect(LONG).await;
    // 20 chunks 250 ms apart: 5 s in all, five times the ack timeout, each chunk within it.
    let started = std::time::Instant::now();
    for i in 0..CHUNKS {
        let chunk = serde_json::json!({
            "clazz": "org.openkilda.messaging.info.ChunkedInfoMessage", "correlation_id": "dump",
            "timestamp": 3, "message_id": format!("{i} : dump"), "total_messages": CHUNKS,
            "payload": {"clazz": "org.openkilda.messaging.info.rule.FlowEntry", "cookie": i},
        });
        send(
            &p,
            &w.fl_write("fl1"),
            Some(SW1),
            chunk.to_string().as_bytes(),
            None,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(started.elapsed() > Duration::from_secs(4));
    for i in 0..CHUNKS {
        let v = replies.expect(LONG).await.json();
        assert_eq!(error_type(&v), None, "chunk {i}, not a timeout: {v}");
        assert_eq!(v["message_id"], format!("{i} : dump"));
    }
    // The chain is complete: the command is final, no timeout follows it.
    assert!(
        replies.next(Duration::from_secs(3)).await.is_none(),
        "nothing after the complete chain"
    );
}
