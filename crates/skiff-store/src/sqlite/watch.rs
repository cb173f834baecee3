//! Watches on the SQLite store: the in-process hub the writer publishes
//! committed events to, and the per-watch stream that first replays the log
//! and then follows the hub.
//!
//! Owns: the hand-over from replay to live events. A watcher subscribes first
//! and learns the last revision the hub published (`live_from`); the hub
//! then delivers exactly the events after `live_from`, and the replay reads
//! `(after, live_from]` from the log, so there is no gap and no duplicate. A
//! watcher whose buffer overflows is dropped by the hub and falls back to
//! replaying from the log from its own position, so a slow consumer never
//! stalls the writer and never loses events.
//! Must not: block the writer (publishing never waits).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::StreamExt;
use tokio::sync::mpsc;

use super::pool::ReadPool;
use super::reads;
use crate::{Revision, StoreError, WatchEvent, WatchStream};

/// Events a live watcher may have buffered before it is sent back to replay.
const LIVE_BUFFER: usize = 4096;
/// Events read from the log per replay query.
const REPLAY_PAGE: usize = 1000;

/// Fan-out of committed events to live watchers.
#[derive(Default)]
pub(crate) struct Hub {
    state: Mutex<HubState>,
}

#[derive(Default)]
struct HubState {
    /// The revision of the last published batch.
    last: Revision,
    closed: bool,
    subs: Vec<Subscriber>,
}

struct Subscriber {
    prefix: String,
    tx: mpsc::Sender<WatchEvent>,
    lagged: Arc<AtomicBool>,
}

/// A live subscription: events after `live_from`, until the hub drops it.
pub(crate) struct Subscription {
    rx: mpsc::Receiver<WatchEvent>,
    lagged: Arc<AtomicBool>,
    live_from: Revision,
}

impl Hub {
    /// A hub whose first published batch follows `current`.
    pub fn new(current: Revision) -> Hub {
        Hub {
            state: Mutex::new(HubState {
                last: current,
                ..HubState::default()
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // A panic while holding the lock cannot leave the state half-updated
        // in a way that matters more than losing the hub, so recover it.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Delivers one committed batch (in revision order) ending at `upto`.
    pub fn publish(&self, events: Vec<WatchEvent>, upto: Revision) {
        let mut state = self.lock();
        state.last = upto;
        state.subs.retain(|sub| {
            if sub.tx.is_closed() {
                return false;
            }
            for event in events.iter().filter(|e| e.key().starts_with(&sub.prefix)) {
                match sub.tx.try_send(event.clone()) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        sub.lagged.store(true, Ordering::SeqCst);
                        return false;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return false,
                }
            }
            true
        });
    }

    /// Subscribes to events under `prefix` after the last published revision.
    /// `None` once the store has shut down.
    pub fn subscribe(&self, prefix: &str) -> Option<Subscription> {
        let mut state = self.lock();
        if state.closed {
            return None;
        }
        let (tx, rx) = mpsc::channel(LIVE_BUFFER);
        let lagged = Arc::new(AtomicBool::new(false));
        state.subs.push(Subscriber {
            prefix: prefix.to_owned(),
            tx,
            lagged: lagged.clone(),
        });
        Some(Subscription {
            rx,
            lagged,
            live_from: state.last,
        })
    }

    /// Ends every live watch (the store is shutting down).
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.subs.clear();
    }
}

/// Where a watch stream is.
enum Phase {
    /// Replaying `(cursor, upto]` from the log, then going live on `sub`.
    Replay {
        upto: Revision,
        sub: Subscription,
    },
    Live(Subscription),
    Done,
}

struct WatchState {
    pool: Arc<ReadPool>,
    hub: Arc<Hub>,
    prefix: String,
    /// The revision of the last event delivered (or the watch's `after`).
    cursor: Revision,
    buffer: VecDeque<WatchEvent>,
    phase: Phase,
}

/// Starts a watch of `prefix` for events after `after`.
pub(crate) fn start(pool: Arc<ReadPool>, hub: Arc<Hub>, prefix: &str, after: Revision) -> WatchStream {
    let phase = match hub.subscribe(prefix) {
        Some(sub) => replay_or_live(sub, after),
        None => Phase::Done,
    };
    let state = WatchState {
        pool,
        hub,
        prefix: prefix.to_owned(),
        cursor: after,
        buffer: VecDeque::new(),
        phase,
    };
    futures::stream::unfold(state, next_event).boxed()
}

fn replay_or_live(sub: Subscription, cursor: Revision) -> Phase {
    if cursor < sub.live_from {
        Phase::Replay {
            upto: sub.live_from,
            sub,
        }
    } else {
        Phase::Live(sub)
    }
}

async fn next_event(mut st: WatchState) -> Option<(Result<WatchEvent, StoreError>, WatchState)> {
    loop {
        if let Some(event) = st.buffer.pop_front() {
            st.cursor = event.revision();
            return Some((Ok(event), st));
        }
        match std::mem::replace(&mut st.phase, Phase::Done) {
            Phase::Done => return None,
            Phase::Replay { upto, sub } => {
                if st.cursor >= upto {
                    st.phase = Phase::Live(sub);
                    continue;
                }
                let (prefix, after) = (st.prefix.clone(), st.cursor);
                let page = st
                    .pool
                    .run(move |conn| reads::events(conn, &prefix, after, upto, REPLAY_PAGE))
                    .await;
                match page {
                    Ok(events) if events.is_empty() => {
                        st.cursor = upto;
                        st.phase = Phase::Live(sub);
                    }
                    Ok(events) => {
                        st.buffer.extend(events);
                        st.phase = Phase::Replay { upto, sub };
                    }
                    Err(err) => return Some((Err(err), st)),
                }
            }
            Phase::Live(mut sub) => match sub.rx.recv().await {
                Some(event) if event.revision() <= st.cursor => st.phase = Phase::Live(sub),
                Some(event) => {
                    st.cursor = event.revision();
                    st.phase = Phase::Live(sub);
                    return Some((Ok(event), st));
                }
                None if sub.lagged.load(Ordering::SeqCst) => {
                    // Dropped for being slow: replay what was missed from the log.
                    if let Some(sub) = st.hub.subscribe(&st.prefix) {
                        st.phase = replay_or_live(sub, st.cursor);
                    }
                }
                None => return None,
            },
        }
    }
}
