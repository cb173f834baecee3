//! The store conformance suite: one set of behaviour checks (in `cases`) run
//! against every backend — embedded SQLite in a temp dir, and a real etcd
//! (Debian's `etcd-server`) started per test by `skiff_testkit::etcd`.

// Test code: a failed unwrap is a failed test with the error in its message.
#![allow(clippy::unwrap_used)]

mod cases;

use std::any::Any;
use std::sync::Arc;

use skiff_store::Store;
use skiff_store::etcd::EtcdStore;
use skiff_store::sqlite::SqliteStore;

/// A fresh, empty store and whatever keeps it alive (temp dir, etcd process).
pub struct Backend {
    pub store: Arc<dyn Store>,
    _guard: Box<dyn Any + Send>,
}

async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
    Backend {
        store: Arc::new(store),
        _guard: Box::new(dir),
    }
}

async fn etcd() -> Backend {
    let fixture = tokio::task::spawn_blocking(skiff_testkit::etcd::EtcdFixture::start)
        .await
        .unwrap()
        .unwrap();
    let store = EtcdStore::connect(&[fixture.endpoint()]).await.unwrap();
    Backend {
        store: Arc::new(store),
        _guard: Box::new(fixture),
    }
}

macro_rules! conformance_suite {
    ($backend:ident: $($case:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let backend = super::$backend().await;
                    super::cases::$case(backend.store.clone()).await;
                }
            )*
        }
    };
}

macro_rules! for_each_backend {
    ($($case:ident),* $(,)?) => {
        conformance_suite!(sqlite: $($case),*);
        conformance_suite!(etcd: $($case),*);
    };
}

for_each_backend!(
    revisions_increase_by_one_per_write,
    get_and_list_at_a_revision,
    list_pages_with_limit_and_start_after,
    list_stays_inside_the_prefix,
    create_on_existing_key_is_already_exists,
    stale_update_and_delete_conflict_with_the_current_value,
    missing_keys_are_not_found,
    delete_then_create_starts_a_new_life,
    watch_replays_history_then_goes_live_without_gap_or_duplicate,
    watch_reports_prev_values_for_updates_and_deletes,
    watch_only_sees_its_prefix,
    compaction_makes_old_revisions_compacted,
    concurrent_writers_produce_a_gapless_sequence,
    future_revision_is_rejected,
    large_lists_come_back_whole,
    keys_and_values_are_opaque_bytes,
    random_operations_match_a_model,
);
