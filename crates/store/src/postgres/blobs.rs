//! Code packages in PostgreSQL: one `packages` row per zip and its bytes in `package_chunks`
//! of at most [`CHUNK`] bytes, so that every durable byte of a cluster is in one engine
//! (`pg_dump` backs up everything) and a node that lacks a package reads it from here.

use std::collections::HashSet;

use deadpool_postgres::GenericClient;

use super::{pg, Postgres};
use crate::StoreError;

/// Bytes per chunk row.
pub(crate) const CHUNK: usize = 1024 * 1024;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Postgres {
    pub(crate) async fn put_blob(&self, sha256: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let mut client = self.client("store code package").await?;
        let tx = client
            .transaction()
            .await
            .map_err(pg("begin store package"))?;
        let chunks: Vec<&[u8]> = bytes.chunks(CHUNK).collect();
        // A second writer of the same package waits here for the first one's commit, then
        // finds it stored.
        let new = tx
            .query_opt(
                "INSERT INTO packages (sha256, size, chunks, created_ms) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (sha256) DO NOTHING RETURNING 1",
                &[
                    &sha256,
                    &(bytes.len() as i64),
                    &(chunks.len() as i64),
                    &now_ms(),
                ],
            )
            .await
            .map_err(pg("insert package"))?
            .is_some();
        if new {
            let stmt = tx
                .prepare_cached("INSERT INTO package_chunks (sha256, n, data) VALUES ($1, $2, $3)")
                .await
                .map_err(pg("prepare insert package chunk"))?;
            for (n, chunk) in chunks.iter().enumerate() {
                tx.execute(&stmt, &[&sha256, &(n as i64), chunk])
                    .await
                    .map_err(pg("insert package chunk"))?;
            }
        }
        tx.commit().await.map_err(pg("commit store package"))
    }

    pub(crate) async fn get_blob(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client("read code package").await?;
        let Some(head) = client
            .query_opt(
                "SELECT size, chunks FROM packages WHERE sha256 = $1",
                &[&sha256],
            )
            .await
            .map_err(pg("read package"))?
        else {
            return Ok(None);
        };
        let (size, chunks): (i64, i64) = (head.get(0), head.get(1));
        let rows = client
            .query(
                "SELECT data FROM package_chunks WHERE sha256 = $1 ORDER BY n",
                &[&sha256],
            )
            .await
            .map_err(pg("read package chunks"))?;
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        for row in &rows {
            bytes.extend_from_slice(row.get::<_, &[u8]>(0));
        }
        if rows.len() as i64 != chunks || bytes.len() as i64 != size {
            return Err(StoreError::Backend {
                op: "read package",
                source: format!(
                    "package {sha256} is stored as {} chunks of {} bytes, not {chunks} of {size}",
                    rows.len(),
                    bytes.len()
                )
                .into(),
            });
        }
        Ok(Some(bytes))
    }

    pub(crate) async fn collect_blobs(
        &self,
        used: &HashSet<String>,
        before_ms: i64,
    ) -> Result<usize, StoreError> {
        let client = self.client("collect code packages").await?;
        let used: Vec<&str> = used.iter().map(String::as_str).collect();
        let n = client
            .execute(
                "DELETE FROM packages WHERE created_ms < $2 AND NOT (sha256 = ANY($1))",
                &[&used, &before_ms],
            )
            .await
            .map_err(pg("collect packages"))?;
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::CHUNK;
    use crate::postgres::tests::TestDb;
    use crate::postgres::Postgres;

    #[tokio::test]
    async fn packages_are_chunked_read_back_whole_and_collected_by_use_and_age() {
        let Some(db) = TestDb::create().await else {
            return;
        };
        let pg = Postgres::open_config(db.config.clone(), "test")
            .await
            .expect("open");
        let big: Vec<u8> = (0..CHUNK * 2 + 7).map(|i| (i % 251) as u8).collect();
        pg.put_blob("big", &big).await.expect("put");
        pg.put_blob("big", &big)
            .await
            .expect("a second put is a no-op");
        pg.put_blob("small", b"zip").await.expect("put");
        assert_eq!(pg.get_blob("big").await.expect("get"), Some(big));
        assert_eq!(pg.get_blob("none").await.expect("get"), None);
        let client = pg.client("inspect").await.expect("client");
        let chunks: i64 = client
            .query_one(
                "SELECT COUNT(*) FROM package_chunks WHERE sha256 = 'big'",
                &[],
            )
            .await
            .expect("count")
            .get(0);
        assert_eq!(chunks, 3);
        drop(client);
        // Too young to go, however unused.
        assert_eq!(pg.collect_blobs(&HashSet::new(), 0).await.expect("gc"), 0);
        let used = HashSet::from(["big".to_owned()]);
        assert_eq!(pg.collect_blobs(&used, i64::MAX).await.expect("gc"), 1);
        assert_eq!(pg.get_blob("small").await.expect("get"), None);
        assert!(pg.get_blob("big").await.expect("get").is_some());
    }
}
