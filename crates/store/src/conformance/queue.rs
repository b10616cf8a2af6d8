//! The async queue's part of the conformance suite: acceptance, claims under leases, two owners
//! on one store, outcomes that only the current lease may write, retries, cancel and listing.

use std::collections::BTreeSet;

use fgs_core::flows::AsyncStatus;
use fgs_core::Qualifier;

use super::record;
use crate::{AsyncFilter, AsyncRow, Lease, Store, StoreError};

/// A WAIT event of `rec` accepted and due at `at`.
pub fn async_row(id: &str, rec: &fgs_core::FunctionRecord, at: i64) -> AsyncRow {
    AsyncRow {
        request_id: id.to_owned(),
        project: rec.project.clone(),
        package: rec.package.clone(),
        name: rec.name.clone(),
        qualifier: Qualifier::Alias("blue".into()),
        status: AsyncStatus::Wait,
        attempts: 0,
        created_ms: at,
        next_attempt_ms: at,
        started_ms: None,
        ended_ms: None,
        error_code: None,
        error_message: String::new(),
        body: b"{\"k\":1}".to_vec(),
        extra: "{\"source\":\"api\"}".to_owned(),
        lease: None,
    }
}

/// A function `p/default/f` with events `ids`, accepted at 10, 20, 30...
async fn queued(store: &Store, ids: &[&str]) -> fgs_core::FunctionRecord {
    let rec = record("p", "default", "f", 1);
    store
        .create_function(rec.clone(), 10)
        .await
        .expect("create");
    let rows = ids
        .iter()
        .enumerate()
        .map(|(i, id)| async_row(id, &rec, 10 * (i as i64 + 1)))
        .collect();
    let res = store.queue().accept(rows).await.expect("accept");
    assert!(res.iter().all(Result::is_ok), "{res:?}");
    rec
}

fn ids(rows: &[AsyncRow]) -> Vec<&str> {
    rows.iter().map(|r| r.request_id.as_str()).collect()
}

async fn status_of(store: &Store, id: &str) -> AsyncRow {
    let (rows, _) = store
        .list_async(AsyncFilter {
            project: "p".into(),
            package: "default".into(),
            name: "f".into(),
            request_id: Some(id.into()),
            limit: 10,
            ..AsyncFilter::default()
        })
        .await
        .expect("list");
    rows.into_iter().next().expect("the event is listed")
}

fn done(mut row: AsyncRow, status: AsyncStatus, at: i64) -> AsyncRow {
    row.status = status;
    row.attempts += 1;
    row.ended_ms = Some(at);
    row
}

pub async fn queue_accepts_each_row_on_its_own(store: &Store) {
    let rec = queued(store, &["a"]).await;
    let mut ghost = async_row("g", &rec, 5);
    ghost.name = "nosuch".into();
    let res = store
        .queue()
        .accept(vec![
            ghost,
            async_row("a", &rec, 6),
            async_row("b", &rec, 7),
        ])
        .await
        .expect("accept");
    assert!(
        matches!(res[0], Err(StoreError::FunctionNotFound { .. })),
        "{res:?}"
    );
    assert!(res[1].is_err(), "a request id is accepted once: {res:?}");
    assert!(res[2].is_ok(), "{res:?}");
    let b = status_of(store, "b").await;
    assert_eq!(b.qualifier, Qualifier::Alias("blue".into()));
    assert_eq!(
        (b.body.as_slice(), b.extra.as_str()),
        (&b"{\"k\":1}"[..], "{\"source\":\"api\"}")
    );
    assert_eq!((b.status, b.lease), (AsyncStatus::Wait, None));
}

pub async fn queue_claims_due_events_once_in_due_order(store: &Store) {
    queued(store, &["a", "b", "c"]).await;
    let q = store.queue();
    let claimed = q.claim("n1", 25, 1025, 10).await.expect("claim");
    assert_eq!(ids(&claimed), ["a", "b"]);
    for r in &claimed {
        assert_eq!(r.status, AsyncStatus::Running);
        let lease = r.lease.as_ref().expect("a claimed row carries its lease");
        assert_eq!((lease.owner.as_str(), lease.until_ms), ("n1", 1025));
    }
    assert!(q.claim("n1", 25, 1025, 10).await.expect("claim").is_empty());
    assert_eq!(q.next_due().await.expect("next due"), Some(30));
    assert_eq!(
        ids(&q.claim("n1", 30, 1030, 1).await.expect("claim")),
        ["c"]
    );
    assert_eq!(
        q.next_due().await.expect("next due"),
        Some(1025),
        "lease ends"
    );
    let listed = status_of(store, "a").await;
    assert_eq!(listed.status, AsyncStatus::Running);
    assert_eq!(listed.lease, claimed[0].lease);
}

/// A restarted node (same owner) does not take back its own events while their lease holds.
pub async fn queue_takes_back_only_expired_leases(store: &Store) {
    queued(store, &["a"]).await;
    let q = store.queue();
    let first = q.claim("n1", 10, 100, 10).await.expect("claim");
    assert!(q.claim("n1", 99, 199, 10).await.expect("claim").is_empty());
    let again = q.claim("n1", 100, 200, 10).await.expect("claim");
    assert_eq!(ids(&again), ["a"]);
    let (old, new) = (first[0].lease.clone(), again[0].lease.clone());
    let (old, new) = (old.expect("lease"), new.expect("lease"));
    assert!(new.seq > old.seq, "{old:?} then {new:?}");
    assert_eq!(
        again[0].attempts, 0,
        "a taken-back run is not a counted attempt"
    );
}

pub async fn queue_two_owners_never_share_a_held_lease(store: &Store) {
    queued(store, &["a", "b"]).await;
    let q = store.queue();
    assert_eq!(
        ids(&q.claim("n1", 20, 100, 10).await.expect("claim")),
        ["a", "b"]
    );
    assert!(q.claim("n2", 99, 199, 10).await.expect("claim").is_empty());
    let taken = q.claim("n2", 100, 200, 10).await.expect("claim");
    assert_eq!(ids(&taken), ["a", "b"]);
    assert!(taken
        .iter()
        .all(|r| r.lease.as_ref().is_some_and(|l| l.owner == "n2")));
    assert!(q.claim("n1", 150, 250, 10).await.expect("claim").is_empty());
}

pub async fn queue_late_outcome_of_an_old_lease_is_dropped(store: &Store) {
    queued(store, &["a"]).await;
    let q = store.queue();
    let old = q.claim("n1", 10, 100, 1).await.expect("claim").remove(0);
    let new = q.claim("n2", 100, 200, 1).await.expect("claim").remove(0);
    let lease = old.lease.clone().expect("lease");
    assert_eq!(
        q.extend("n1", vec![(old.request_id.clone(), lease.seq)], 300)
            .await
            .expect("extend"),
        [false]
    );
    let late = done(old, AsyncStatus::Success, 150);
    assert_eq!(q.settle(vec![late]).await.expect("settle"), [false]);
    let mut failed = done(new, AsyncStatus::Fail, 160);
    failed.error_message = "boom".into();
    assert_eq!(q.settle(vec![failed]).await.expect("settle"), [true]);
    let row = status_of(store, "a").await;
    assert_eq!(
        (row.status, row.error_message.as_str()),
        (AsyncStatus::Fail, "boom")
    );
    assert_eq!(row.lease, None, "a settled event holds no lease");
    // The same owner's earlier run is an old lease too.
    queued_more(store, "b").await;
    let first = q.claim("n1", 1000, 1100, 1).await.expect("claim").remove(0);
    let second = q.claim("n1", 1100, 1200, 1).await.expect("claim").remove(0);
    assert_eq!(
        q.settle(vec![done(first, AsyncStatus::Success, 1150)])
            .await
            .expect("settle"),
        [false]
    );
    assert_eq!(
        q.settle(vec![done(second, AsyncStatus::Success, 1160)])
            .await
            .expect("settle"),
        [true]
    );
}

async fn queued_more(store: &Store, id: &str) {
    let rec = record("p", "default", "f", 1);
    let res = store
        .queue()
        .accept(vec![async_row(id, &rec, 500)])
        .await
        .expect("accept");
    assert!(res[0].is_ok(), "{res:?}");
}

pub async fn queue_extension_keeps_the_event(store: &Store) {
    queued(store, &["a"]).await;
    let q = store.queue();
    let row = q.claim("n1", 10, 100, 1).await.expect("claim").remove(0);
    let seq = row.lease.as_ref().expect("lease").seq;
    let held = q
        .extend("n1", vec![("a".into(), seq), ("nosuch".into(), 1)], 200)
        .await
        .expect("extend");
    assert_eq!(held, [true, false]);
    assert!(
        q.extend("n2", vec![("a".into(), seq)], 300)
            .await
            .expect("extend")
            == [false]
    );
    assert!(q.claim("n2", 150, 250, 1).await.expect("claim").is_empty());
    assert_eq!(q.next_due().await.expect("next due"), Some(200));
    assert_eq!(
        ids(&q.claim("n2", 200, 300, 1).await.expect("claim")),
        ["a"]
    );
}

pub async fn queue_retry_waits_until_its_time(store: &Store) {
    queued(store, &["a"]).await;
    let q = store.queue();
    let mut row = q.claim("n1", 10, 100, 1).await.expect("claim").remove(0);
    row.status = AsyncStatus::Wait;
    row.attempts = 1;
    row.next_attempt_ms = 500;
    row.error_code = Some(4002);
    row.error_message = "try again".into();
    assert_eq!(q.settle(vec![row]).await.expect("settle"), [true]);
    assert_eq!(q.next_due().await.expect("next due"), Some(500));
    assert!(q.claim("n2", 499, 600, 1).await.expect("claim").is_empty());
    let again = q.claim("n2", 500, 600, 1).await.expect("claim").remove(0);
    assert_eq!((again.attempts, again.error_code), (1, Some(4002)));
    assert_eq!(again.error_message, "try again");
}

/// The request id is the idempotency key: a finished event is never claimed again, however its
/// run started (claimed, or accepted already leased by the accepting node).
pub async fn queue_never_claims_a_finished_event(store: &Store) {
    let rec = queued(store, &["a"]).await;
    let q = store.queue();
    let row = q.claim("n1", 10, 100, 1).await.expect("claim").remove(0);
    assert_eq!(
        q.settle(vec![done(row, AsyncStatus::Success, 20)])
            .await
            .expect("settle"),
        [true]
    );
    let mut direct = async_row("d", &rec, 30);
    direct.status = AsyncStatus::Running;
    direct.started_ms = Some(30);
    direct.lease = Some(Lease {
        owner: "n1".into(),
        until_ms: 130,
        seq: 1,
    });
    let res = q.accept(vec![direct.clone()]).await.expect("accept");
    assert!(res[0].is_ok(), "{res:?}");
    assert!(q.claim("n2", 129, 229, 10).await.expect("claim").is_empty());
    assert_eq!(
        q.settle(vec![done(direct, AsyncStatus::Discard, 40)])
            .await
            .expect("settle"),
        [true]
    );
    assert!(q
        .claim("n2", i64::MAX / 2, i64::MAX / 2, 10)
        .await
        .expect("claim")
        .is_empty());
    assert_eq!(q.next_due().await.expect("next due"), None);
    let row = status_of(store, "a").await;
    let written = q.settle(vec![done(row, AsyncStatus::Fail, 50)]).await;
    assert_eq!(
        written.expect("settle"),
        [false],
        "a finished event stays finished"
    );
    assert_eq!(status_of(store, "a").await.status, AsyncStatus::Success);
}

pub async fn queue_cancels_only_waiting_events(store: &Store) {
    queued(store, &["a", "b"]).await;
    let q = store.queue();
    assert_eq!(ids(&q.claim("n1", 10, 100, 1).await.expect("claim")), ["a"]);
    let cancel = |id: &'static str| q.cancel("p", "default", "f", id, 50);
    assert_eq!(cancel("b").await.expect("cancel"), AsyncStatus::Wait);
    assert_eq!(cancel("a").await.expect("cancel"), AsyncStatus::Running);
    assert_eq!(cancel("b").await.expect("cancel"), AsyncStatus::Discard);
    assert!(matches!(
        cancel("zz").await,
        Err(StoreError::AsyncNotFound { .. })
    ));
    let b = status_of(store, "b").await;
    assert_eq!((b.status, b.ended_ms), (AsyncStatus::Discard, Some(50)));
    assert_eq!(status_of(store, "a").await.status, AsyncStatus::Running);
    assert!(q
        .claim("n1", 1000, 1100, 10)
        .await
        .expect("claim")
        .iter()
        .all(|r| r.request_id == "a"));
}

pub async fn queue_lists_newest_first_with_filters(store: &Store) {
    queued(store, &["a", "b", "c"]).await;
    let q = store.queue();
    assert_eq!(q.stats().await.expect("stats"), (3, Some(10)));
    let row = q.claim("n1", 10, 100, 1).await.expect("claim").remove(0);
    q.settle(vec![done(row, AsyncStatus::Success, 40)])
        .await
        .expect("settle");
    assert_eq!(q.stats().await.expect("stats"), (2, Some(20)));
    let filter = AsyncFilter {
        project: "p".into(),
        package: "default".into(),
        name: "f".into(),
        limit: 2,
        ..AsyncFilter::default()
    };
    let (page, count) = q.list(filter.clone()).await.expect("list");
    assert_eq!((ids(&page), count), (vec!["c", "b"], 3));
    let (page, _) = q
        .list(AsyncFilter {
            marker: 2,
            ..filter.clone()
        })
        .await
        .expect("list");
    assert_eq!(ids(&page), ["a"]);
    let (page, count) = q
        .list(AsyncFilter {
            status: Some(AsyncStatus::Success),
            ..filter.clone()
        })
        .await
        .expect("list");
    assert_eq!((ids(&page), count, page[0].attempts), (vec!["a"], 1, 1));
    let (page, count) = q
        .list(AsyncFilter {
            begin_ms: Some(15),
            end_ms: Some(25),
            ..filter.clone()
        })
        .await
        .expect("list");
    assert_eq!((ids(&page), count), (vec!["b"], 1));
    assert!(matches!(
        q.list(AsyncFilter {
            name: "nosuch".into(),
            ..filter
        })
        .await,
        Err(StoreError::FunctionNotFound { .. })
    ));
}

/// Four owners claiming at once from one store: every event is claimed by exactly one.
pub async fn queue_concurrent_claims_never_overlap(store: &Store) {
    let names: Vec<String> = (0..60).map(|i| format!("e{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    queued(store, &refs).await;
    let tasks: Vec<_> = (0..4)
        .map(|n| {
            let q = store.queue().clone();
            tokio::spawn(async move {
                let owner = format!("n{n}");
                let mut got = Vec::new();
                loop {
                    let rows = q.claim(&owner, 1000, 10_000, 4).await.expect("claim");
                    if rows.is_empty() {
                        return got;
                    }
                    got.extend(rows.into_iter().map(|r| r.request_id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("claimer joins"));
    }
    let unique: BTreeSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), 60, "each event claimed once: {all:?}");
    assert_eq!(unique.len(), 60);
}

/// One owner extending its leases while outcomes of the same events are recorded at once, the
/// two batches naming the events in opposite orders (as the extension's map and the finishing
/// order do): neither fails, and every outcome is recorded.
pub async fn queue_extensions_and_outcomes_at_once_both_succeed(store: &Store) {
    let names: Vec<String> = (0..200).map(|i| format!("e{i:03}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    queued(store, &refs).await;
    let q = store.queue().clone();
    let mut claimed = q.claim("n1", 5000, 60_000, 200).await.expect("claim");
    assert_eq!(claimed.len(), 200);
    // Four rounds of 50: each a settle and an extension racing over the same rows.
    for round in claimed.chunks_mut(50) {
        let leases: Vec<(String, i64)> = round
            .iter()
            .rev()
            .map(|r| (r.request_id.clone(), r.lease.as_ref().map_or(0, |l| l.seq)))
            .collect();
        let done: Vec<AsyncRow> = round
            .iter()
            .map(|r| AsyncRow {
                status: AsyncStatus::Success,
                attempts: 1,
                ended_ms: Some(6000),
                ..r.clone()
            })
            .collect();
        let (qa, qb) = (q.clone(), q.clone());
        let extend = tokio::spawn(async move { qa.extend("n1", leases, 90_000).await });
        let settle = tokio::spawn(async move { qb.settle(done).await });
        let extended = extend.await.expect("joins").expect("extend succeeds");
        let settled = settle.await.expect("joins").expect("settle succeeds");
        assert_eq!(extended.len(), 50);
        assert!(
            settled.iter().all(|s| *s),
            "every outcome recorded: {settled:?}"
        );
    }
    for id in ["e000", "e199"] {
        assert_eq!(status_of(store, id).await.status, AsyncStatus::Success);
    }
}
