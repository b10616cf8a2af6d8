//! The PostgreSQL backend as the storage traits: each method boxes the backend's own
//! `async fn` ([`crate::forward`]).

use super::Postgres;
use crate::traits::BlobStore;

crate::forward::forward_store_traits!(Postgres);

impl BlobStore for Postgres {
    fn put_blob<'a>(&'a self, sha256: &'a str, bytes: &'a [u8]) -> StoreFuture<'a, ()> {
        Box::pin(Postgres::put_blob(self, sha256, bytes))
    }
    fn get_blob<'a>(&'a self, sha256: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(Postgres::get_blob(self, sha256))
    }
    fn collect_blobs<'a>(
        &'a self,
        used: &'a std::collections::HashSet<String>,
        before_ms: i64,
    ) -> StoreFuture<'a, usize> {
        Box::pin(Postgres::collect_blobs(self, used, before_ms))
    }
}
