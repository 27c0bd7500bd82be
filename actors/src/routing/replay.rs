//! What the previous incarnation of the router did with the commands a restart reads again.
//!
//! A router killed hard (or whose offset commit was lost) reads its uncommitted commands again,
//! and the FLs' answers to commands it had forwarded arrive with no pending entry. Judging
//! those commands anew could give a second, *different* outcome (an FL answer, then NOT_FOUND),
//! and routing those answers "by kind" would send them to a consumer that never asked. Kafka
//! holds what the router needs to know instead (the shell reads it back at start, see
//! `src/kafka/replay.rs`):
//!
//! - the commands it forwarded are on the FL read topics, with their `reply_to` header;
//! - the FL answers it routed *and committed* are on the FL write topics, before the FL
//!   consumer group's committed offset (a committed answer was delivered);
//! - the errors it answered itself are on its journal topic (`topics.journal`), byte for byte.
//!
//! With that, a replayed command is: repeated with the same error if the router had answered
//! it itself; skipped if the FL's answer was delivered; adopted (pending again, no second
//! forward, deadline from the original forward) if it was forwarded and not answered; judged
//! normally otherwise. An FL answer to an adopted or forwarded command goes to its stored
//! reply-to; a second answer is a counted duplicate. The index lives for the longest a command
//! can stay pending (or the blacklist TTL), then it is dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::routing::routes::FlIndex;
use crate::runtime::outbox::Origin;

/// One fact read back from Kafka at start.
#[derive(Debug, Clone)]
pub enum PriorRecord {
    /// A command forwarded to FL `fl` at `at_ms` (record timestamp, ms since the epoch).
    Forwarded {
        fl: String,
        cid: String,
        reply_to: Option<String>,
        at_ms: u64,
    },
    /// An FL answer that was routed and committed (so delivered).
    Answered { cid: String },
    /// An error the router sent itself: where to and its exact bytes.
    RouterError {
        cid: String,
        topic: String,
        key: Option<Bytes>,
        body: Bytes,
    },
}

#[derive(Debug, Clone)]
enum Prior {
    Open {
        fl: FlIndex,
        reply_to: Option<String>,
        at_ms: u64,
    },
    Answered,
    Error {
        topic: String,
        key: Option<Bytes>,
        body: Bytes,
    },
}

/// What to do with a command read again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// Its answer was delivered: nothing more to send.
    AlreadyAnswered,
    /// The router answered it itself: send the same answer again.
    Repeat {
        topic: String,
        key: Option<Bytes>,
        body: Bytes,
    },
    /// Forwarded and not answered yet: pending at `fl` again, deadline from `at_ms`.
    Adopt {
        fl: FlIndex,
        reply_to: Option<String>,
        at_ms: u64,
    },
}

/// What to do with an FL answer that no pending command claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriorAnswer {
    /// The answer to a command the previous incarnation forwarded: to its reply-to.
    Route { reply_to: Option<String> },
    /// That command has its outcome already: drop it and count it.
    Duplicate,
}

#[derive(Default)]
pub struct Previous {
    active: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    by_cid: HashMap<String, Prior>,
    until: Option<Instant>,
    /// Per command partition, the end offset when the router started: only a command below it
    /// is one read *again*; a later one with a known correlation id is a new command.
    replay_until: HashMap<(String, i32), i64>,
}

/// How many records of each kind were loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadReport {
    pub forwarded: usize,
    pub answered: usize,
    pub errors: usize,
}

impl Previous {
    /// Loads what Kafka says; kept for `keep` from now.
    pub fn load(
        &self,
        records: Vec<PriorRecord>,
        replay_until: HashMap<(String, i32), i64>,
        fl_ids: &[&str],
        keep: Duration,
    ) -> LoadReport {
        if let Ok(mut st) = self.state.lock() {
            st.replay_until = replay_until;
        }
        self.add(records, fl_ids, keep)
    }

    /// Adds what Kafka says about more commands (a cluster instance taking an FL over), keeping
    /// what is known and where replays end; all of it kept for `keep` from now.
    pub fn add(&self, records: Vec<PriorRecord>, fl_ids: &[&str], keep: Duration) -> LoadReport {
        let mut report = LoadReport::default();
        let Ok(mut st) = self.state.lock() else {
            return report;
        };
        // Only commands are indexed: a forward or a router error makes an entry; an FL
        // message with a correlation id no forwarded command had (an event, a poll answer)
        // says nothing about commands and must not be taken for a duplicate later.
        let mut answered = std::collections::HashSet::new();
        for r in records {
            match r {
                PriorRecord::Forwarded {
                    fl,
                    cid,
                    reply_to,
                    at_ms,
                } => {
                    let Some(fl) = fl_ids.iter().position(|f| *f == fl) else {
                        continue;
                    };
                    report.forwarded += 1;
                    st.by_cid.entry(cid).or_insert(Prior::Open {
                        fl,
                        reply_to,
                        at_ms,
                    });
                }
                PriorRecord::Answered { cid } => {
                    answered.insert(cid);
                }
                PriorRecord::RouterError {
                    cid,
                    topic,
                    key,
                    body,
                } => {
                    report.errors += 1;
                    st.by_cid.insert(cid, Prior::Error { topic, key, body });
                }
            }
        }
        for cid in answered {
            if let Some(e @ Prior::Open { .. }) = st.by_cid.get_mut(&cid) {
                *e = Prior::Answered;
                report.answered += 1;
            }
        }
        st.until = Some(Instant::now() + keep);
        self.active.store(!st.by_cid.is_empty(), Relaxed);
        report
    }

    /// The state of `cid`, while the index lives (one atomic load once it is gone).
    fn with<T>(&self, f: impl FnOnce(&mut State) -> Option<T>) -> Option<T> {
        if !self.active.load(Relaxed) {
            return None;
        }
        let mut st = self.state.lock().ok()?;
        if st.until.is_some_and(|u| Instant::now() >= u) {
            st.by_cid = HashMap::new();
            self.active.store(false, Relaxed);
            return None;
        }
        f(&mut st)
    }

    /// A single-switch command with this correlation id was read at `origin`; when it is one
    /// read again (below the partition's end at start), what to do with it.
    pub fn command(&self, cid: &str, origin: Option<&Origin>) -> Option<Replay> {
        self.with(|st| {
            let o = origin?;
            let until = st.replay_until.get(&(o.topic.to_string(), o.partition))?;
            if o.offset >= *until {
                return None; // a new command that happens to reuse a correlation id
            }
            let m = &st.by_cid;
            Some(match m.get(cid)? {
                Prior::Answered => Replay::AlreadyAnswered,
                Prior::Error { topic, key, body } => Replay::Repeat {
                    topic: topic.clone(),
                    key: key.clone(),
                    body: body.clone(),
                },
                Prior::Open {
                    fl,
                    reply_to,
                    at_ms,
                } => Replay::Adopt {
                    fl: *fl,
                    reply_to: reply_to.clone(),
                    at_ms: *at_ms,
                },
            })
        })
    }

    /// An FL answer that no pending command claimed. `is_final`: it completes the answer.
    pub fn answer(&self, cid: &str, is_final: bool) -> Option<PriorAnswer> {
        self.with(|st| {
            let prior = st.by_cid.get_mut(cid)?;
            Some(match prior {
                Prior::Open { reply_to, .. } => {
                    let route = PriorAnswer::Route {
                        reply_to: reply_to.clone(),
                    };
                    if is_final {
                        *prior = Prior::Answered;
                    }
                    route
                }
                _ => PriorAnswer::Duplicate,
            })
        })
    }

    /// Whether the command with this id already has its outcome (its FL's answer delivered, or
    /// the router's own answer journaled): a forward of it read back needs no adoption.
    pub fn has_outcome(&self, cid: &str) -> bool {
        self.with(|st| {
            Some(matches!(
                st.by_cid.get(cid)?,
                Prior::Answered | Prior::Error { .. }
            ))
        })
        .unwrap_or(false)
    }

    /// A pending command with this id got its final answer in this incarnation.
    pub fn settled(&self, cid: &str) {
        self.with(|st| {
            if let Some(p) = st.by_cid.get_mut(cid) {
                *p = Prior::Answered;
            }
            Some(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The command partition ended at offset 10 when the router started.
    fn until() -> HashMap<(String, i32), i64> {
        [(("cmds".to_string(), 0), 10)].into_iter().collect()
    }

    fn at(offset: i64) -> Option<&'static Origin> {
        let o = Box::new(Origin {
            topic: "cmds".into(),
            partition: 0,
            offset,
            timestamp_ms: None,
        });
        Some(Box::leak(o))
    }

    fn fwd(cid: &str) -> PriorRecord {
        PriorRecord::Forwarded {
            fl: "b".into(),
            cid: cid.into(),
            reply_to: Some("r".into()),
            at_ms: 7,
        }
    }

    #[tokio::test]
    async fn errors_win_over_answers_which_win_over_forwards() {
        let p = Previous::default();
        let err = PriorRecord::RouterError {
            cid: "e".into(),
            topic: "t".into(),
            key: None,
            body: Bytes::from_static(b"x"),
        };
        let r = p.load(
            vec![
                fwd("a"),
                PriorRecord::Answered { cid: "a".into() },
                fwd("e"),
                err,
                PriorRecord::Answered { cid: "e".into() },
                fwd("o"),
                fwd("gone-fl"),
                PriorRecord::Answered {
                    cid: "an-event".into(),
                },
            ],
            until(),
            &["a", "b"],
            Duration::from_secs(60),
        );
        assert_eq!(r.errors, 1);
        assert_eq!(p.command("a", at(3)), Some(Replay::AlreadyAnswered));
        assert!(matches!(p.command("e", at(3)), Some(Replay::Repeat { .. })));
        assert_eq!(
            p.command("a", at(10)),
            None,
            "read after the start: a new command reusing the id"
        );
        assert_eq!(p.command("a", None), None);
        assert_eq!(
            p.command("o", at(9)),
            Some(Replay::Adopt {
                fl: 1,
                reply_to: Some("r".into()),
                at_ms: 7
            })
        );
        assert_eq!(p.command("new", at(3)), None);
        // The first final answer to an open command is routed; the next is a duplicate.
        assert_eq!(
            p.answer("o", false),
            Some(PriorAnswer::Route {
                reply_to: Some("r".into())
            })
        );
        assert!(matches!(
            p.answer("o", true),
            Some(PriorAnswer::Route { .. })
        ));
        assert_eq!(p.answer("o", true), Some(PriorAnswer::Duplicate));
        assert_eq!(p.answer("e", true), Some(PriorAnswer::Duplicate));
        assert_eq!(p.answer("unknown", true), None);
        assert_eq!(
            p.answer("an-event", true),
            None,
            "an FL message no command was forwarded for is not a duplicate"
        );
    }

    #[tokio::test]
    async fn the_index_is_dropped_after_its_time() {
        tokio::time::pause();
        let p = Previous::default();
        p.load(vec![fwd("a")], until(), &["b"], Duration::from_secs(60));
        assert!(p.command("a", at(0)).is_some());
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(p.command("a", at(0)).is_none());
        assert!(!p.active.load(Relaxed));
    }
}
