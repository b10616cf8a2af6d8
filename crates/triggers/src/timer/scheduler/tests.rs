//! The scheduler under paused tokio time, with an in-memory store and a recording [`Fire`].

use std::sync::Mutex;

use super::*;

/// 2024-05-01T10:00:00.250Z: a quarter second past a whole second, as a real start would be.
const T0: i64 = 1_714_557_600_250;

#[derive(Default)]
struct MemStore {
    /// trigger id -> (active, planned next firing)
    plans: Mutex<HashMap<String, (bool, Option<i64>)>>,
    fail_next: Mutex<u32>,
}

impl MemStore {
    fn plan(&self, id: &str) -> Option<i64> {
        self.plans.lock().unwrap().get(id).and_then(|p| p.1)
    }
}

impl TimerStore for Arc<MemStore> {
    async fn advance(&self, id: &str, due: i64, next: Option<i64>) -> Result<bool, String> {
        {
            let mut fail = self.fail_next.lock().unwrap();
            if *fail > 0 {
                *fail -= 1;
                return Err("database is locked".into());
            }
        }
        let mut plans = self.plans.lock().unwrap();
        match plans.get_mut(id) {
            Some((true, plan)) if *plan == Some(due) => {
                *plan = next;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn planned(&self, timer: &Timer) -> Result<Option<i64>, String> {
        let plans = self.plans.lock().unwrap();
        Ok(plans
            .get(&timer.trigger_id)
            .and_then(|(active, plan)| if *active { *plan } else { None }))
    }
}

#[derive(Default)]
struct Recorder {
    /// (trigger id, wall ms when fired, event)
    fired: Mutex<Vec<(String, i64, serde_json::Value)>>,
    clock: Mutex<Option<TokioClock>>,
}

impl Recorder {
    fn count(&self, id: &str) -> usize {
        self.fired
            .lock()
            .unwrap()
            .iter()
            .filter(|f| f.0 == id)
            .count()
    }
}

impl Fire for Recorder {
    async fn fire(&self, _t: &Target, id: &str, event: Vec<u8>) -> Result<(), String> {
        let now = self.clock.lock().unwrap().expect("clock set").now_ms();
        let ev = serde_json::from_slice(&event).map_err(|e| e.to_string())?;
        self.fired.lock().unwrap().push((id.to_string(), now, ev));
        Ok(())
    }
}

fn timer(id: &str, kind: &str, spec: &str, next: i64) -> Timer {
    Timer {
        trigger_id: id.to_string(),
        target: Target {
            project: "p".into(),
            package: "default".into(),
            function: "f".into(),
            qualifier: "latest".into(),
        },
        name: format!("{id}-name"),
        user_event: "ue".into(),
        schedule: Schedule::parse(kind, spec).unwrap(),
        next_fire_ms: next,
        updated_ms: 0,
    }
}

struct Harness {
    store: Arc<MemStore>,
    rec: Arc<Recorder>,
    handle: TimerHandle,
    clock: TokioClock,
    task: tokio::task::JoinHandle<()>,
}

fn start(initial: Vec<Timer>) -> Harness {
    let store = Arc::new(MemStore::default());
    for t in &initial {
        store
            .plans
            .lock()
            .unwrap()
            .insert(t.trigger_id.clone(), (true, Some(t.next_fire_ms)));
    }
    let clock = TokioClock::starting_at(T0);
    let rec = Arc::new(Recorder::default());
    *rec.clock.lock().unwrap() = Some(clock);
    let (handle, sched) = Scheduler::new();
    let task = tokio::spawn(sched.run(initial, Arc::clone(&store), Arc::clone(&rec), clock));
    Harness {
        store,
        rec,
        handle,
        clock,
        task,
    }
}

async fn advance_secs(s: u64) {
    // Step a second at a time so that spawned firings run between steps.
    for _ in 0..s {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tokio::task::yield_now().await;
}

#[tokio::test(start_paused = true)]
async fn cron_every_second_fires_once_per_second_on_time() {
    let s = Schedule::parse("Cron", "*/1 * * * * *").unwrap();
    let first = s.next_after(T0, None).unwrap();
    let h = start(vec![timer("c", "Cron", "*/1 * * * * *", first)]);
    advance_secs(10).await;
    let fired = h.rec.fired.lock().unwrap().clone();
    // T0 is 250 ms past a second: 10 s later the whole seconds T0+0.75 .. T0+9.75 have passed.
    assert_eq!(fired.len(), 10, "{fired:?}");
    for (i, (_, at, ev)) in fired.iter().enumerate() {
        let due = first + i as i64 * 1000;
        assert!(
            (0..=5).contains(&(at - due)),
            "firing {i} at {at}, due {due}"
        );
        assert_eq!(ev["time"], crate::schedule::event_time(due));
        assert_eq!(ev["trigger_type"], "TIMER");
        assert_eq!(ev["trigger_name"], "c-name");
        assert_eq!(ev["user_event"], "ue");
    }
    // The stored plan moved with every firing.
    assert_eq!(h.store.plan("c"), Some(first + 10_000));
    h.task.abort();
}

#[tokio::test(start_paused = true)]
async fn rate_fires_per_period_and_stops_when_removed() {
    let h = start(vec![timer("r", "Rate", "1m", T0 + 60_000)]);
    advance_secs(3 * 60).await;
    assert_eq!(h.rec.count("r"), 3);
    h.handle.remove("r");
    advance_secs(5 * 60).await;
    assert_eq!(h.rec.count("r"), 3, "a removed timer does not fire");
    h.task.abort();
}

#[tokio::test(start_paused = true)]
async fn a_disabled_trigger_in_storage_does_not_fire_from_a_stale_plan() {
    let h = start(vec![timer("d", "Rate", "1m", T0 + 60_000)]);
    // Disabled in storage, but the scheduler was not told (a lost message, another node).
    h.store.plans.lock().unwrap().get_mut("d").unwrap().0 = false;
    advance_secs(3 * 60).await;
    assert_eq!(h.rec.count("d"), 0);
    h.task.abort();
}

#[tokio::test(start_paused = true)]
async fn missed_firings_fire_once_then_stay_in_phase() {
    // Planned an hour ago, as after an hour of downtime.
    let planned = T0 - 3_600_000;
    let h = start(vec![timer("m", "Rate", "1m", planned)]);
    advance_secs(1).await;
    assert_eq!(h.rec.count("m"), 1, "one firing for the whole backlog");
    let next = h.store.plan("m").unwrap();
    assert!(next > T0 && next - T0 <= 60_000, "next {next}");
    assert_eq!((next - planned) % 60_000, 0, "phase kept");
    advance_secs(60).await;
    assert_eq!(h.rec.count("m"), 2);
    h.task.abort();
}

#[tokio::test(start_paused = true)]
async fn two_schedulers_on_one_store_fire_each_instant_once() {
    let first = T0 + 750;
    let h = start(vec![timer("x", "Cron", "*/1 * * * * *", first)]);
    // A second scheduler (a second node, or a restart racing the old process) on the same plans.
    let rec2 = Arc::new(Recorder::default());
    *rec2.clock.lock().unwrap() = Some(h.clock);
    let (_h2, s2) = Scheduler::new();
    let t2 = tokio::spawn(s2.run(
        vec![timer("x", "Cron", "*/1 * * * * *", first)],
        Arc::clone(&h.store),
        Arc::clone(&rec2),
        h.clock,
    ));
    advance_secs(10).await;
    let (a, b) = (h.rec.count("x"), rec2.count("x"));
    assert_eq!(a + b, 10, "each second fired exactly once: {a} + {b}");
    h.task.abort();
    t2.abort();
}

/// In a cluster the scheduler that fired last may die: the others must still have the timer.
#[tokio::test(start_paused = true)]
async fn a_timer_goes_on_when_the_scheduler_that_fired_it_stops() {
    let first = T0 + 750;
    let h = start(vec![timer("x", "Cron", "*/1 * * * * *", first)]);
    let rec2 = Arc::new(Recorder::default());
    *rec2.clock.lock().unwrap() = Some(h.clock);
    let (_h2, s2) = Scheduler::new();
    let t2 = tokio::spawn(s2.run(
        vec![timer("x", "Cron", "*/1 * * * * *", first)],
        Arc::clone(&h.store),
        Arc::clone(&rec2),
        h.clock,
    ));
    advance_secs(5).await;
    let last = |r: &Recorder| r.fired.lock().unwrap().last().map_or(0, |f| f.1);
    // Stop the scheduler that fired last; the other goes on alone, once per second.
    let (gone, kept) = if last(&h.rec) > last(&rec2) {
        h.task.abort();
        (&h.rec, &rec2)
    } else {
        t2.abort();
        (&rec2, &h.rec)
    };
    let (gone_before, kept_before) = (gone.count("x"), kept.count("x"));
    assert_eq!(
        gone_before + kept_before,
        5,
        "once per second while both ran"
    );
    advance_secs(5).await;
    assert_eq!(gone.count("x"), gone_before, "stopped");
    assert_eq!(
        kept.count("x") - kept_before,
        5,
        "the other fires every second"
    );
    h.task.abort();
    t2.abort();
}

#[tokio::test(start_paused = true)]
async fn upsert_replans_and_storage_errors_are_retried() {
    let h = start(vec![]);
    let next = T0 + 2_000;
    h.store
        .plans
        .lock()
        .unwrap()
        .insert("u".into(), (true, Some(next)));
    *h.store.fail_next.lock().unwrap() = 2;
    h.handle.upsert(timer("u", "Cron", "@every 5s", next));
    advance_secs(3).await;
    assert_eq!(h.rec.count("u"), 0, "storage failed twice: not fired yet");
    advance_secs(2).await;
    assert_eq!(h.rec.count("u"), 1, "fired once storage recovered");
    let fired = h.rec.fired.lock().unwrap().clone();
    assert_eq!(
        fired[0].2["time"],
        crate::schedule::event_time(next),
        "the event names the planned instant"
    );
    h.task.abort();
}

#[tokio::test(start_paused = true)]
async fn stops_when_every_handle_is_gone() {
    let h = start(vec![]);
    drop(h.handle);
    tokio::time::timeout(Duration::from_secs(60), h.task)
        .await
        .expect("scheduler stopped")
        .expect("no panic");
}

#[tokio::test(start_paused = true)]
async fn a_reload_keeps_the_schedulers_own_plan_and_takes_changed_and_removed_timers() {
    let h = start(vec![
        timer("kept", "Rate", "1m", T0 + 60_000),
        timer("gone", "Rate", "1m", T0 + 60_000),
    ]);
    advance_secs(90).await;
    assert_eq!(h.rec.count("kept"), 1);
    // A reload read before that firing: the same API update, an older plan. Taking it would
    // make the next compare-and-set fail and lose the timer.
    let stale = timer("kept", "Rate", "1m", T0 + 60_000);
    // A trigger of another function is not touched by a reload of this one.
    let other = Timer {
        target: Target {
            function: "g".into(),
            ..stale.target.clone()
        },
        ..timer("other", "Rate", "1m", T0 + 120_000)
    };
    h.store
        .plans
        .lock()
        .unwrap()
        .insert("other".into(), (true, Some(T0 + 120_000)));
    h.handle.upsert(other);
    h.handle.replace(
        Some(("p".into(), "default".into(), "f".into())),
        vec![stale],
    );
    advance_secs(60).await;
    assert_eq!(h.rec.count("kept"), 2, "the plan in memory was kept");
    assert_eq!(h.rec.count("gone"), 1, "a timer the reload lacks is gone");
    assert_eq!(h.rec.count("other"), 1);
    // Changed through the API (a later update time): the stored plan is taken.
    h.store
        .plans
        .lock()
        .unwrap()
        .insert("kept".into(), (true, Some(T0 + 600_000)));
    h.handle.replace(
        Some(("p".into(), "default".into(), "f".into())),
        vec![Timer {
            updated_ms: 1,
            ..timer("kept", "Rate", "10m", T0 + 600_000)
        }],
    );
    advance_secs(300).await;
    assert_eq!(h.rec.count("kept"), 2, "re-planned ten minutes out");
    // A resync of everything drops what storage no longer has.
    let others = h.rec.count("other");
    assert_eq!(others, 6, "every minute from 2 to 7");
    h.handle.replace(None, Vec::new());
    advance_secs(600).await;
    assert_eq!(h.rec.count("kept"), 2);
    assert_eq!(h.rec.count("other"), others);
    h.task.abort();
}
