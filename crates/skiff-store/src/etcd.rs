//! The etcd v3 backend: a real etcd cluster through `etcd-client`.
//!
//! Owns: mapping the [`Store`] operations onto etcd transactions
//! (create = `create_revision == 0` → put; update/delete = `mod_revision ==
//! expected` → put/delete, else get the current value for the conflict),
//! ranged reads, watches with `prev_kv`, and etcd's errors onto [`StoreError`].
//! Keys are stored exactly as given (`/registry/pods/default/web`).
//! Must not: interpret values, or keep any state of its own beyond the client.

use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, EventType, GetOptions, KvClient, Txn, TxnOp, TxnOpResponse,
    TxnResponse, WatchOptions,
};
use futures::StreamExt;

use crate::keyrange::prefix_end;
use crate::{
    KeyValue, ListOptions, ListResult, Result, Revision, Store, StoreError, WatchEvent, WatchStream,
};

/// A range end meaning "every key from the start key on" in etcd's API.
const TO_THE_END: &[u8] = b"\0";

/// The largest gRPC response accepted (tonic's default of 4 MiB is less
/// than a list of a few thousand pods).
const MAX_RESPONSE_BYTES: usize = 1 << 30;

/// A [`Store`] backed by an etcd v3 cluster.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
}

impl EtcdStore {
    /// Connects to the cluster at `endpoints` (`http://127.0.0.1:2379`, ...).
    pub async fn connect(endpoints: &[String]) -> Result<EtcdStore> {
        let client = Client::connect(endpoints, None).await.map_err(map_err)?;
        Ok(EtcdStore { client })
    }

    fn kv(&self) -> KvClient {
        self.client
            .kv_client()
            .max_decoding_message_size(MAX_RESPONSE_BYTES)
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        self.kv().txn(txn).await.map_err(map_err)
    }
}

/// True when `key` exists. (A missing key has mod revision 0, so a compare on
/// the mod revision alone would let `expected == 0` write a missing key.)
fn exists(key: &str) -> Compare {
    Compare::create_revision(key, CompareOp::Greater, 0)
}

/// The first key of a prefix range; etcd refuses an empty key, and `"\0"` is the smallest one.
fn range_start(prefix: &str) -> Vec<u8> {
    if prefix.is_empty() {
        TO_THE_END.to_vec()
    } else {
        prefix.as_bytes().to_vec()
    }
}

/// Maps an etcd client error, recognising etcd's revision errors by their messages.
fn map_err(err: etcd_client::Error) -> StoreError {
    let text = err.to_string();
    if text.contains("required revision has been compacted") {
        return StoreError::Compacted {
            requested: 0,
            compacted: 0,
        };
    }
    if text.contains("required revision is a future revision") {
        return StoreError::FutureRevision {
            requested: 0,
            current: 0,
        };
    }
    StoreError::Backend(format!("etcd: {text}"))
}

fn convert_kv(kv: &etcd_client::KeyValue) -> Result<KeyValue> {
    let key = kv
        .key_str()
        .map_err(|e| StoreError::Backend(format!("etcd: key is not UTF-8: {e}")))?;
    Ok(KeyValue {
        key: key.to_owned(),
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    })
}

fn header_revision(resp: &TxnResponse) -> Result<Revision> {
    resp.header()
        .map(|h| h.revision())
        .ok_or_else(|| StoreError::Backend("etcd: response without header".into()))
}

/// The first key-value of the first get in a transaction's responses.
fn first_got(resp: &TxnResponse) -> Result<Option<KeyValue>> {
    for op in resp.op_responses() {
        if let TxnOpResponse::Get(get) = op {
            return get.kvs().first().map(convert_kv).transpose();
        }
    }
    Ok(None)
}

/// What the else-branch of a failed compare-and-swap says.
fn failed_cas(resp: &TxnResponse, key: &str, expected: Revision) -> StoreError {
    match first_got(resp) {
        Ok(Some(current)) => StoreError::Conflict {
            key: key.to_owned(),
            expected,
            current: Some(Box::new(current)),
        },
        Ok(None) => StoreError::NotFound(key.to_owned()),
        Err(e) => e,
    }
}

fn watch_event(event: &etcd_client::Event) -> Result<Option<WatchEvent>> {
    let Some(kv) = event.kv() else { return Ok(None) };
    let prev = event.prev_kv().map(convert_kv).transpose()?;
    Ok(Some(match event.event_type() {
        EventType::Put => {
            // A create (version 1) has no previous value.
            let prev = if kv.version() == 1 { None } else { prev };
            WatchEvent::Put {
                kv: convert_kv(kv)?,
                prev,
            }
        }
        EventType::Delete => {
            let revision = kv.mod_revision();
            // etcd omits prev_kv when the previous revision was compacted away.
            let prev = prev.unwrap_or_else(|| KeyValue {
                key: String::from_utf8_lossy(kv.key()).into_owned(),
                value: Bytes::new(),
                create_revision: 0,
                mod_revision: 0,
            });
            WatchEvent::Delete { prev, revision }
        }
    }))
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<(Option<KeyValue>, Revision)> {
        let resp = self.kv().get(key, None).await.map_err(map_err)?;
        let revision = resp.header().map_or(0, |h| h.revision());
        let kv = resp.kvs().first().map(convert_kv).transpose()?;
        Ok((kv, revision))
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult> {
        let end = prefix_end(prefix.as_bytes()).unwrap_or_else(|| TO_THE_END.to_vec());
        let start: Vec<u8> = match &opts.start_after {
            Some(after) if after.as_str() >= prefix => {
                let mut start = after.as_bytes().to_vec();
                start.push(0);
                start
            }
            _ => range_start(prefix),
        };
        let mut get = GetOptions::new().with_range(end);
        let revision = opts.revision.filter(|r| *r > 0);
        if let Some(rev) = revision {
            get = get.with_revision(rev);
        }
        if let Some(limit) = opts.limit.filter(|l| *l > 0) {
            get = get.with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        let resp = match self.kv().get(start, Some(get)).await.map_err(map_err) {
            Ok(resp) => resp,
            Err(StoreError::Compacted { compacted, .. }) => {
                return Err(StoreError::Compacted {
                    requested: revision.unwrap_or_default(),
                    compacted,
                });
            }
            Err(StoreError::FutureRevision { .. }) => {
                let current = self.current_revision().await?;
                return Err(StoreError::FutureRevision {
                    requested: revision.unwrap_or_default(),
                    current,
                });
            }
            Err(other) => return Err(other),
        };
        let kvs = resp.kvs().iter().map(convert_kv).collect::<Result<Vec<_>>>()?;
        let read_at = revision.unwrap_or_else(|| resp.header().map_or(0, |h| h.revision()));
        Ok(ListResult {
            kvs,
            revision: read_at,
            more: resp.more(),
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision> {
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value.to_vec(), None)]);
        let resp = self.txn(txn).await?;
        if !resp.succeeded() {
            return Err(StoreError::AlreadyExists(key.to_owned()));
        }
        header_revision(&resp)
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<Revision> {
        let txn = Txn::new()
            .when([
                exists(key),
                Compare::mod_revision(key, CompareOp::Equal, expected),
            ])
            .and_then([TxnOp::put(key, value.to_vec(), None)])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.txn(txn).await?;
        if !resp.succeeded() {
            return Err(failed_cas(&resp, key, expected));
        }
        header_revision(&resp)
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(Revision, KeyValue)> {
        let compare = match expected {
            Some(rev) => vec![exists(key), Compare::mod_revision(key, CompareOp::Equal, rev)],
            None => vec![exists(key)],
        };
        let txn = Txn::new()
            .when(compare)
            .and_then([TxnOp::delete(key, Some(DeleteOptions::new().with_prev_key()))])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.txn(txn).await?;
        if !resp.succeeded() {
            return Err(failed_cas(&resp, key, expected.unwrap_or_default()));
        }
        let revision = header_revision(&resp)?;
        for op in resp.op_responses() {
            if let TxnOpResponse::Delete(del) = op
                && let Some(prev) = del.prev_kvs().first()
            {
                return Ok((revision, convert_kv(prev)?));
            }
        }
        Err(StoreError::NotFound(key.to_owned()))
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let end = prefix_end(prefix.as_bytes()).unwrap_or_else(|| TO_THE_END.to_vec());
        let options = WatchOptions::new()
            .with_range(end)
            .with_start_revision(after + 1)
            .with_prev_key();
        // Same rule as the SQLite backend: history after a compacted revision
        // is gone. A range read at `after` fails exactly when it is compacted.
        if after > 0 {
            let probe = GetOptions::new().with_count_only().with_revision(after);
            match self.kv().get(TO_THE_END, Some(probe)).await.map_err(map_err) {
                Err(StoreError::Compacted { compacted, .. }) => {
                    return Err(StoreError::Compacted {
                        requested: after,
                        compacted,
                    });
                }
                Ok(_) | Err(StoreError::FutureRevision { .. }) => {}
                Err(other) => return Err(other),
            }
        }
        let stream = self
            .client
            .watch_client()
            .watch(range_start(prefix), Some(options))
            .await
            .map_err(map_err)?;
        let live = futures::stream::unfold(Some(stream), move |state| async move {
            let mut stream = state?;
            loop {
                match stream.message().await {
                    Ok(Some(resp)) if resp.canceled() => {
                        return Some((vec![Err(cancel_error(&resp, after))], None));
                    }
                    Ok(Some(resp)) => {
                        let events: Vec<_> = resp
                            .events()
                            .iter()
                            .filter_map(|e| watch_event(e).transpose())
                            .collect();
                        if !events.is_empty() {
                            return Some((events, Some(stream)));
                        }
                    }
                    Ok(None) => return None,
                    Err(e) => return Some((vec![Err(map_err(e))], None)),
                }
            }
        })
        .flat_map(futures::stream::iter);
        Ok(live.boxed())
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let current = self.current_revision().await?;
        self.kv()
            .compact(revision, None)
            .await
            .map_err(|e| match map_err(e) {
                StoreError::Compacted { compacted, .. } => StoreError::Compacted {
                    requested: revision,
                    compacted,
                },
                StoreError::FutureRevision { .. } => StoreError::FutureRevision {
                    requested: revision,
                    current,
                },
                other => other,
            })?;
        Ok(())
    }

    async fn current_revision(&self) -> Result<Revision> {
        let opts = GetOptions::new().with_count_only();
        let resp = self.kv().get(TO_THE_END, Some(opts)).await.map_err(map_err)?;
        resp.header()
            .map(|h| h.revision())
            .ok_or_else(|| StoreError::Backend("etcd: response without header".into()))
    }
}

/// The error for a watch that etcd cancelled.
fn cancel_error(resp: &etcd_client::WatchResponse, after: Revision) -> StoreError {
    if resp.compact_revision() > 0 {
        StoreError::Compacted {
            requested: after,
            compacted: resp.compact_revision(),
        }
    } else {
        StoreError::Backend(format!("etcd: watch cancelled: {}", resp.cancel_reason()))
    }
}
