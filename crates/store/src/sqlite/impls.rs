//! The SQLite backend as the storage traits: each method boxes the backend's own `async fn`
//! ([`crate::forward`]); blobs are the node's own files, so nothing is kept here.

use super::Sqlite;
use crate::traits::BlobStore;

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
