//! Membership on PostgreSQL: one row per node, moved by its heartbeats.

use super::{pg, Postgres};
use crate::{NodeRecord, StoreError};

impl Postgres {
    pub(crate) async fn heartbeat(
        &self,
        node_id: &str,
        advertise_url: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let client = self.client("heartbeat").await?;
        client
            .execute(
                "INSERT INTO nodes (node_id, advertise_url, started_ms, last_seen_ms)
                 VALUES ($1, $2, $3, $3)
                 ON CONFLICT (node_id) DO UPDATE SET advertise_url = excluded.advertise_url,
                   last_seen_ms = GREATEST(nodes.last_seen_ms, excluded.last_seen_ms)",
                &[&node_id, &advertise_url, &now_ms],
            )
            .await
            .map_err(pg("heartbeat"))?;
        Ok(())
    }

    pub(crate) async fn live_nodes(
        &self,
        now_ms: i64,
        silence_ms: i64,
    ) -> Result<Vec<NodeRecord>, StoreError> {
        let client = self.client("list live nodes").await?;
        let rows = client
            .query(
                "SELECT node_id, advertise_url, started_ms, last_seen_ms FROM nodes
                 WHERE last_seen_ms >= $1 ORDER BY node_id",
                &[&now_ms.saturating_sub(silence_ms)],
            )
            .await
            .map_err(pg("list nodes"))?;
        Ok(rows
            .iter()
            .map(|r| NodeRecord {
                node_id: r.get(0),
                advertise_url: r.get(1),
                started_ms: r.get(2),
                last_seen_ms: r.get(3),
            })
            .collect())
    }

    pub(crate) async fn forget_dead(
        &self,
        now_ms: i64,
        silence_ms: i64,
    ) -> Result<usize, StoreError> {
        let client = self.client("forget dead nodes").await?;
        let n = client
            .execute(
                "DELETE FROM nodes WHERE last_seen_ms < $1",
                &[&now_ms.saturating_sub(silence_ms)],
            )
            .await
            .map_err(pg("forget dead nodes"))?;
        // Their places for instances went with them (they counted for nobody already).
        client
            .execute(
                "DELETE FROM instance_slots s
                 WHERE NOT EXISTS (SELECT 1 FROM nodes n WHERE n.node_id = s.node_id)",
                &[],
            )
            .await
            .map_err(pg("forget dead nodes' slots"))?;
        Ok(n as usize)
    }
}
