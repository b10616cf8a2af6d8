use std::sync::{Arc, Mutex};

use super::*;

/// A whole minute, in ms (2027-01-15 08:00 UTC).
const T0: i64 = 1_800_000_000_000 / 60_000 * 60_000;

fn cron(name: &str, cron: &str, count: u32, from_s: i64, to_s: i64) -> ReservedCron {
    ReservedCron {
        name: name.into(),
        cron: cron.into(),
        count,
        start_time: from_s,
        expired_time: to_s,
    }
}

#[test]
fn bad_policies_are_refused() {
    let ok = cron("a", "0 * * * * *", 1, 0, 10);
    assert!(check(std::slice::from_ref(&ok)).is_ok());
    for bad in [
        vec![cron("", "0 * * * * *", 1, 0, 10)],
        vec![cron("a", "not a cron", 1, 0, 10)],
        vec![cron("a", "0 * * * * *", 1001, 0, 10)],
        vec![cron("a", "0 * * * * *", 1, 10, 10)],
        vec![ok.clone(), ok.clone()],
        vec![ok.clone(); POLICIES_MAX + 1],
    ] {
        assert!(check(&bad).is_err(), "{bad:?}");
    }
}

#[test]
fn the_latest_firing_in_the_window_wins() {
    let t0_s = T0 / 1000;
    let p = check(&[
        cron("tens", "*/10 * * * * *", 2, t0_s + 25, t0_s + 45),
        cron("minute", "0 * * * * *", 5, t0_s, t0_s + 3600),
    ])
    .expect("valid");
    assert_eq!(
        due(&p, T0, T0 + 29_000),
        None,
        "tens starts at +25s, fires at +30s"
    );
    assert_eq!(due(&p, T0, T0 + 30_000), Some(2));
    assert_eq!(
        due(&p, T0 + 30_000, T0 + 59_000),
        Some(2),
        "+40s; +50s is past its window"
    );
    assert_eq!(due(&p, T0 + 41_000, T0 + 59_000), None);
    assert_eq!(due(&p, T0, T0 + 60_000), Some(5), "+60s is the latest");
    assert_eq!(next_firing(&p, T0), Some(T0 + 30_000));
    assert_eq!(next_firing(&p, T0 + 40_000), Some(T0 + 60_000));
    assert_eq!(next_firing(&p, (t0_s + 3600) * 1000), None, "all expired");
}

#[tokio::test(start_paused = true)]
async fn counts_are_applied_at_their_times() {
    let t0_s = T0 / 1000;
    /// (ms since start, function, count) of each count applied.
    type Applied = Vec<(i64, &'static str, u32)>;
    let applied: Arc<Mutex<Applied>> = Arc::default();
    let start = tokio::time::Instant::now();
    let load = || async move {
        vec![Plan {
            key: "f",
            policies: check(&[
                cron("tens", "*/10 * * * * *", 2, t0_s + 25, t0_s + 45),
                cron("minute", "0 * * * * *", 5, t0_s, t0_s + 3600),
            ])
            .expect("valid"),
        }]
    };
    let seen = Arc::clone(&applied);
    let apply = move |key: &'static str, count: u32| {
        let seen = Arc::clone(&seen);
        async move {
            let at = start.elapsed().as_millis() as i64;
            seen.lock().expect("not poisoned").push((at, key, count));
        }
    };
    let ran = tokio::time::timeout(Duration::from_secs(70), drive(T0, load, apply)).await;
    assert!(ran.is_err(), "the runner runs until stopped");
    assert_eq!(
        *applied.lock().expect("not poisoned"),
        [(30_000, "f", 2), (40_000, "f", 2), (60_000, "f", 5)]
    );
}
