//! The PostgreSQL backend as the storage traits: each method boxes the backend's own
//! `async fn` ([`crate::forward`]).

use super::Postgres;
use crate::traits::BlobStore;
use crate::{StatMinute, StatMonth, StatsStore};

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

impl StatsStore for Postgres {
    fn put_stats<'a>(
        &'a self,
        run: &'a str,
        minutes: Vec<StatMinute>,
        months: Vec<StatMonth>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(Postgres::put_stats(self, run, minutes, months))
    }
    fn other_minutes<'a>(
        &'a self,
        except_run: &'a str,
        project: &'a str,
        from_ms: i64,
        to_ms: i64,
    ) -> StoreFuture<'a, Vec<StatMinute>> {
        Box::pin(Postgres::other_minutes(
            self, except_run, project, from_ms, to_ms,
        ))
    }
    fn other_months<'a>(
        &'a self,
        except_run: &'a str,
        project: &'a str,
        from: i64,
        to: i64,
    ) -> StoreFuture<'a, Vec<StatMonth>> {
        Box::pin(Postgres::other_months(self, except_run, project, from, to))
    }
    fn purge_stats(&self, before_ms: i64) -> StoreFuture<'_, usize> {
        Box::pin(Postgres::purge_stats(self, before_ms))
    }
}
