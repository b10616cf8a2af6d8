//! The SQLite backend as the storage traits: each method boxes the backend's own `async fn`
//! ([`crate::forward`]); blobs are the node's own files, so nothing is kept here.

use super::Sqlite;
use crate::traits::BlobStore;
use crate::{StatMinute, StatMonth, StatsStore};

crate::forward::forward_store_traits!(Sqlite);

/// One node: its data dir holds every package, so nothing is kept here.
impl BlobStore for Sqlite {
    fn put_blob<'a>(&'a self, _sha256: &'a str, _bytes: &'a [u8]) -> StoreFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
    fn get_blob<'a>(&'a self, _sha256: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async { Ok(None) })
    }
    fn collect_blobs<'a>(
        &'a self,
        _used: &'a std::collections::HashSet<String>,
        _before_ms: i64,
    ) -> StoreFuture<'a, usize> {
        Box::pin(async { Ok(0) })
    }
}

/// One node: its statistics are all in its memory (crates/metrics); there is no other node's to
/// read, so nothing is written or kept.
impl StatsStore for Sqlite {
    fn put_stats<'a>(
        &'a self,
        _run: &'a str,
        _minutes: Vec<StatMinute>,
        _months: Vec<StatMonth>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
    fn other_minutes<'a>(
        &'a self,
        _except_run: &'a str,
        _project: &'a str,
        _from_ms: i64,
        _to_ms: i64,
    ) -> StoreFuture<'a, Vec<StatMinute>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn other_months<'a>(
        &'a self,
        _except_run: &'a str,
        _project: &'a str,
        _from: i64,
        _to: i64,
    ) -> StoreFuture<'a, Vec<StatMonth>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn purge_stats(&self, _before_ms: i64) -> StoreFuture<'_, usize> {
        Box::pin(async { Ok(0) })
    }
}
