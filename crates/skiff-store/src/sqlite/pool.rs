//! A small pool of read-only SQLite connections, used off the async runtime.
//!
//! Owns: reader connections (WAL lets them read while the writer commits)
//! and running blocking queries on tokio's blocking threads.
//! Must not: write to the database.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

use super::schema::open_connection;
use crate::StoreError;

/// Idle connections kept for reuse; more are opened under load and closed after.
const MAX_IDLE: usize = 8;

/// Reader connections to one database file.
pub(crate) struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    /// A pool for the database at `path` (which must already exist).
    pub fn new(path: PathBuf) -> ReadPool {
        ReadPool {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` with a reader connection on a blocking thread.
    pub async fn run<T, F>(self: &std::sync::Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.idle().pop();
            let mut conn = match conn {
                Some(conn) => conn,
                None => open_connection(&pool.path, false)?,
            };
            let result = f(&mut conn);
            let mut idle = pool.idle();
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Backend(format!("sqlite reader task failed: {e}")))?
    }
}
