//! The cluster's statistics on PostgreSQL ([`crate::StatsStore`]): one row per run, function
//! version and minute (or month), replaced as the run's counts grow. Written with
//! `synchronous_commit = off`: a row lost in a crash of PostgreSQL is written again by the
//! node's next flush of that minute.

use super::{int, pg, Postgres};
use fgs_core::stats::{Minute, SeriesKey};
use tokio_postgres::Row;

use crate::{StatMinute, StatMonth, StoreError};

/// A count read back: never negative in practice.
fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The function version of a row whose first four columns are project, package, name and
/// version.
fn series_key(r: &Row) -> SeriesKey {
    SeriesKey {
        project: r.get(0),
        package: r.get(1),
        name: r.get(2),
        version: r.get(3),
    }
}

impl Postgres {
    pub(crate) async fn put_stats(
        &self,
        run: &str,
        minutes: Vec<StatMinute>,
        months: Vec<StatMonth>,
    ) -> Result<(), StoreError> {
        if minutes.is_empty() && months.is_empty() {
            return Ok(());
        }
        let mut client = self.client("store statistics").await?;
        let tx = client.transaction().await.map_err(pg("begin statistics"))?;
        tx.batch_execute("SET LOCAL synchronous_commit = off")
            .await
            .map_err(pg("relax commit"))?;
        let text =
            |f: fn(&SeriesKey) -> &str| minutes.iter().map(|m| f(&m.key)).collect::<Vec<_>>();
        let num = |f: fn(&Minute) -> u64| {
            minutes
                .iter()
                .map(|m| int(f(&m.minute)))
                .collect::<Vec<i64>>()
        };
        let real = |f: fn(&Minute) -> f64| minutes.iter().map(|m| f(&m.minute)).collect::<Vec<_>>();
        let starts: Vec<i64> = minutes.iter().map(|m| m.minute.start_ms).collect();
        tx.execute(
            "INSERT INTO stat_minutes (run, project, package, name, version, start_ms, count,
               function_errors, system_errors, rejected, duration_sum_ms, duration_max_ms,
               duration_min_ms, mb_ms)
             SELECT $1, u.* FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[],
               $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[],
               $11::float8[], $12::float8[], $13::float8[], $14::bigint[]) AS u
             ON CONFLICT (run, project, package, name, version, start_ms) DO UPDATE SET
               count = excluded.count, function_errors = excluded.function_errors,
               system_errors = excluded.system_errors, rejected = excluded.rejected,
               duration_sum_ms = excluded.duration_sum_ms,
               duration_max_ms = excluded.duration_max_ms,
               duration_min_ms = excluded.duration_min_ms, mb_ms = excluded.mb_ms",
            &[
                &run,
                &text(|k| &k.project),
                &text(|k| &k.package),
                &text(|k| &k.name),
                &text(|k| &k.version),
                &starts,
                &num(|m| m.count),
                &num(|m| m.function_errors),
                &num(|m| m.system_errors),
                &num(|m| m.rejected),
                &real(|m| m.duration_sum_ms),
                &real(|m| m.duration_max_ms),
                &real(|m| m.duration_min_ms),
                &num(|m| m.mb_ms),
            ],
        )
        .await
        .map_err(pg("store statistics minutes"))?;
        let mtext =
            |f: fn(&SeriesKey) -> &str| months.iter().map(|m| f(&m.key)).collect::<Vec<_>>();
        let month: Vec<i64> = months.iter().map(|m| m.month).collect();
        let counts: Vec<i64> = months.iter().map(|m| int(m.count)).collect();
        let mb: Vec<i64> = months.iter().map(|m| int(m.mb_ms)).collect();
        tx.execute(
            "INSERT INTO stat_months (run, project, package, name, version, month, count, mb_ms)
             SELECT $1, u.* FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[],
               $6::bigint[], $7::bigint[], $8::bigint[]) AS u
             ON CONFLICT (run, project, package, name, version, month) DO UPDATE SET
               count = excluded.count, mb_ms = excluded.mb_ms",
            &[
                &run,
                &mtext(|k| &k.project),
                &mtext(|k| &k.package),
                &mtext(|k| &k.name),
                &mtext(|k| &k.version),
                &month,
                &counts,
                &mb,
            ],
        )
        .await
        .map_err(pg("store statistics months"))?;
        tx.commit().await.map_err(pg("commit statistics"))
    }

    pub(crate) async fn other_minutes(
        &self,
        except_run: &str,
        project: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<StatMinute>, StoreError> {
        let client = self.client("read statistics").await?;
        let rows = client
            .query(
                "SELECT project, package, name, version, start_ms, count, function_errors,
                   system_errors, rejected, duration_sum_ms, duration_max_ms, duration_min_ms,
                   mb_ms
                 FROM stat_minutes
                 WHERE project = $1 AND start_ms >= $2 AND start_ms < $3 AND run <> $4",
                &[&project, &from_ms, &to_ms, &except_run],
            )
            .await
            .map_err(pg("read statistics minutes"))?;
        Ok(rows
            .iter()
            .map(|r| StatMinute {
                key: series_key(r),
                minute: Minute {
                    start_ms: r.get(4),
                    count: count(r.get(5)),
                    function_errors: count(r.get(6)),
                    system_errors: count(r.get(7)),
                    rejected: count(r.get(8)),
                    duration_sum_ms: r.get(9),
                    duration_max_ms: r.get(10),
                    duration_min_ms: r.get(11),
                    mb_ms: count(r.get(12)),
                },
            })
            .collect())
    }

    pub(crate) async fn other_months(
        &self,
        except_run: &str,
        project: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<StatMonth>, StoreError> {
        let client = self.client("read statistics").await?;
        let rows = client
            .query(
                "SELECT project, package, name, version, month, count, mb_ms FROM stat_months
                 WHERE project = $1 AND month >= $2 AND month <= $3 AND run <> $4",
                &[&project, &from, &to, &except_run],
            )
            .await
            .map_err(pg("read statistics months"))?;
        Ok(rows
            .iter()
            .map(|r| StatMonth {
                key: series_key(r),
                month: r.get(4),
                count: count(r.get(5)),
                mb_ms: count(r.get(6)),
            })
            .collect())
    }

    pub(crate) async fn purge_stats(&self, before_ms: i64) -> Result<usize, StoreError> {
        let client = self.client("purge statistics").await?;
        let n = client
            .execute(
                "DELETE FROM stat_minutes WHERE start_ms < $1",
                &[&before_ms],
            )
            .await
            .map_err(pg("purge statistics"))?;
        Ok(n as usize)
    }
}
