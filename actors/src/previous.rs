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

use crate::switch_map::FlIndex;

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
    pub fn load(&self, records: Vec<PriorRecord>, fl_ids: &[&str], keep: Duration) -> LoadReport {
        let mut report = LoadReport::default();
        let Ok(mut st) = self.state.lock() else {
            return report;
        };
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
                    report.answered += 1;
                    let e = st.by_cid.entry(cid).or_insert(Prior::Answered);
                    if !matches!(e, Prior::Error { .. }) {
                        *e = Prior::Answered;
                    }
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
        st.until = Some(Instant::now() + keep);
        self.active.store(!st.by_cid.is_empty(), Relaxed);
        report
    }

    /// The state of `cid`, while the index lives (one atomic load once it is gone).
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Prior>) -> Option<T>) -> Option<T> {
        if !self.active.load(Relaxed) {
            return None;
        }
        let mut st = self.state.lock().ok()?;
        if st.until.is_some_and(|u| Instant::now() >= u) {
            st.by_cid = HashMap::new();
            self.active.store(false, Relaxed);
            return None;
        }
        f(&mut st.by_cid)
    }

    /// A single-switch command with this correlation id was read (again).
    pub fn command(&self, cid: &str) -> Option<Replay> {
        self.with(|m| {
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
        self.with(|m| {
            let prior = m.get_mut(cid)?;
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

    /// A pending command with this id got its final answer in this incarnation.
    pub fn settled(&self, cid: &str) {
        self.with(|m| {
            if let Some(p) = m.get_mut(cid) {
                *p = Prior::Answered;
            }
            Some(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            ],
            &["a", "b"],
            Duration::from_secs(60),
        );
        assert_eq!(r.errors, 1);
        assert_eq!(p.command("a"), Some(Replay::AlreadyAnswered));
        assert!(matches!(p.command("e"), Some(Replay::Repeat { .. })));
        assert_eq!(
            p.command("o"),
            Some(Replay::Adopt {
                fl: 1,
                reply_to: Some("r".into()),
                at_ms: 7
            })
        );
        assert_eq!(p.command("new"), None);
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
    }

    #[tokio::test]
    async fn the_index_is_dropped_after_its_time() {
        tokio::time::pause();
        let p = Previous::default();
        p.load(vec![fwd("a")], &["b"], Duration::from_secs(60));
        assert!(p.command("a").is_some());
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(p.command("a").is_none());
        assert!(!p.active.load(Relaxed));
    }
}
