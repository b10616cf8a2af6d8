//! Membership on SQLite: the one node's heartbeats, in the same table shape as a cluster's.

use rusqlite::params;

use super::{db, Sqlite};
use crate::{NodeRecord, StoreError};

impl Sqlite {
    pub(crate) async fn heartbeat(
        &self,
        node_id: &str,
        advertise_url: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let (id, url) = (node_id.to_owned(), advertise_url.to_owned());
        // Relaxed: a heartbeat lost in a crash is replaced by the next one.
        self.run_relaxed("heartbeat", move |conn| {
            conn.execute(
                "INSERT INTO nodes (node_id, advertise_url, started_ms, last_seen_ms)
                 VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT (node_id) DO UPDATE SET advertise_url = excluded.advertise_url,
                   last_seen_ms = MAX(nodes.last_seen_ms, excluded.last_seen_ms)",
                params![id, url, now_ms],
            )
            .map(drop)
            .map_err(db("heartbeat"))
        })
        .await
    }

    pub(crate) async fn live_nodes(
        &self,
        now_ms: i64,
        silence_ms: i64,
    ) -> Result<Vec<NodeRecord>, StoreError> {
        self.run("list live nodes", move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT node_id, advertise_url, started_ms, last_seen_ms FROM nodes
                     WHERE last_seen_ms >= ?1 ORDER BY node_id",
                )
                .map_err(db("prepare list nodes"))?;
            let rows = stmt
                .query_map(params![now_ms.saturating_sub(silence_ms)], |r| {
                    Ok(NodeRecord {
                        node_id: r.get(0)?,
                        advertise_url: r.get(1)?,
                        started_ms: r.get(2)?,
                        last_seen_ms: r.get(3)?,
                    })
                })
                .map_err(db("list nodes"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db("read node"));
            rows
        })
        .await
    }

    pub(crate) async fn forget_dead(
        &self,
        now_ms: i64,
        silence_ms: i64,
    ) -> Result<usize, StoreError> {
        self.run("forget dead nodes", move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM nodes WHERE last_seen_ms < ?1",
                    params![now_ms.saturating_sub(silence_ms)],
                )
                .map_err(db("forget dead nodes"))?;
            // Their places for instances went with them (they counted for nobody already).
            conn.execute(
                "DELETE FROM instance_slots
                 WHERE node_id NOT IN (SELECT node_id FROM nodes)",
                [],
            )
            .map_err(db("forget dead nodes' slots"))?;
            Ok(n)
        })
        .await
    }
}
