//! An in-memory [`Store`] with etcd semantics (revisions, CAS, watch from a
//! revision, list at a past revision, compaction), for tests only.

use std::collections::BTreeMap;
use std::sync::Mutex;

use bytes::Bytes;
use futures::StreamExt;
use skiff_store::{
    KeyValue, ListOptions, ListResult, Result, Revision, Store, StoreError, WatchEvent, WatchStream,
};
use tokio::sync::broadcast;

struct State {
    rev: Revision,
    compacted: Revision,
    kvs: BTreeMap<String, KeyValue>,
    log: Vec<WatchEvent>,
}

/// The in-memory store.
pub struct MemStore {
    state: Mutex<State>,
    tx: broadcast::Sender<WatchEvent>,
}

impl Default for MemStore {
    fn default() -> Self {
        MemStore {
            state: Mutex::new(State {
                rev: 1,
                compacted: 0,
                kvs: BTreeMap::new(),
                log: Vec::new(),
            }),
            tx: broadcast::channel(1 << 16).0,
        }
    }
}

impl MemStore {
    fn commit(&self, st: &mut State, ev: WatchEvent) {
        st.log.push(ev.clone());
        let _ = self.tx.send(ev);
    }
}

#[async_trait::async_trait]
impl Store for MemStore {
    async fn get(&self, key: &str) -> Result<(Option<KeyValue>, Revision)> {
        let st = self.state.lock().unwrap();
        Ok((st.kvs.get(key).cloned(), st.rev))
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult> {
        let st = self.state.lock().unwrap();
        let at = opts.revision.filter(|r| *r > 0).unwrap_or(st.rev);
        if at < st.compacted {
            return Err(StoreError::Compacted {
                requested: at,
                compacted: st.compacted,
            });
        }
        if at > st.rev {
            return Err(StoreError::FutureRevision {
                requested: at,
                current: st.rev,
            });
        }
        let mut view = st.kvs.clone();
        for ev in st.log.iter().rev().take_while(|e| e.revision() > at) {
            match ev {
                WatchEvent::Put { kv, prev } => match prev {
                    Some(p) => {
                        view.insert(kv.key.clone(), p.clone());
                    }
                    None => {
                        view.remove(&kv.key);
                    }
                },
                WatchEvent::Delete { prev, .. } => {
                    view.insert(prev.key.clone(), prev.clone());
                }
            }
        }
        let mut kvs: Vec<KeyValue> = view
            .into_iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| opts.start_after.as_ref().is_none_or(|s| k > s))
            .map(|(_, v)| v)
            .collect();
        let mut more = false;
        if let Some(limit) = opts.limit
            && kvs.len() > limit
        {
            kvs.truncate(limit);
            more = true;
        }
        Ok(ListResult {
            kvs,
            revision: at,
            more,
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision> {
        let mut st = self.state.lock().unwrap();
        if st.kvs.contains_key(key) {
            return Err(StoreError::AlreadyExists(key.into()));
        }
        st.rev += 1;
        let kv = KeyValue {
            key: key.into(),
            value,
            create_revision: st.rev,
            mod_revision: st.rev,
        };
        st.kvs.insert(key.into(), kv.clone());
        let rev = st.rev;
        self.commit(&mut st, WatchEvent::Put { kv, prev: None });
        Ok(rev)
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<Revision> {
        let mut st = self.state.lock().unwrap();
        let Some(cur) = st.kvs.get(key).cloned() else {
            return Err(StoreError::NotFound(key.into()));
        };
        if cur.mod_revision != expected {
            return Err(StoreError::Conflict {
                key: key.into(),
                expected,
                current: Some(Box::new(cur)),
            });
        }
        st.rev += 1;
        let kv = KeyValue {
            key: key.into(),
            value,
            create_revision: cur.create_revision,
            mod_revision: st.rev,
        };
        st.kvs.insert(key.into(), kv.clone());
        let rev = st.rev;
        self.commit(&mut st, WatchEvent::Put { kv, prev: Some(cur) });
        Ok(rev)
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(Revision, KeyValue)> {
        let mut st = self.state.lock().unwrap();
        let Some(cur) = st.kvs.get(key).cloned() else {
            return Err(StoreError::NotFound(key.into()));
        };
        if let Some(e) = expected
            && e != cur.mod_revision
        {
            return Err(StoreError::Conflict {
                key: key.into(),
                expected: e,
                current: Some(Box::new(cur)),
            });
        }
        st.rev += 1;
        st.kvs.remove(key);
        let rev = st.rev;
        self.commit(
            &mut st,
            WatchEvent::Delete {
                prev: cur.clone(),
                revision: rev,
            },
        );
        Ok((rev, cur))
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let st = self.state.lock().unwrap();
        if after < st.compacted {
            return Err(StoreError::Compacted {
                requested: after,
                compacted: st.compacted,
            });
        }
        let backlog: Vec<Result<WatchEvent>> = st
            .log
            .iter()
            .filter(|e| e.revision() > after && e.key().starts_with(prefix))
            .cloned()
            .map(Ok)
            .collect();
        let last = st.rev;
        let rx = self.tx.subscribe();
        drop(st);
        let prefix = prefix.to_string();
        let live = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |r| {
            let prefix = prefix.clone();
            async move {
                match r {
                    Ok(ev) if ev.revision() > last && ev.key().starts_with(&prefix) => Some(Ok(ev)),
                    Ok(_) => None,
                    Err(_) => Some(Err(StoreError::Backend("watcher lagged".into()))),
                }
            }
        });
        Ok(futures::stream::iter(backlog).chain(live).boxed())
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let mut st = self.state.lock().unwrap();
        st.compacted = st.compacted.max(revision);
        let c = st.compacted;
        st.log.retain(|e| e.revision() >= c);
        Ok(())
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.state.lock().unwrap().rev)
    }
}
