//! The instance pool: warm reuse, scale-out, max instances and the wait queue, idle reclaim,
//! and reserved instances.

use std::collections::BTreeSet;
use std::thread;
use std::time::{Duration, Instant};

use fgs_e2e::{alive, host_pid, instances, json, unique, wait_until, Server, ServerOpts};

#[test]
fn a_warm_instance_is_reused() {
    let s = Server::start(ServerOpts::default());
    let mark = unique("warm");
    s.create_fixture("warm", &mark, &[], json!({}));
    let first = s.invoke_pid("warm");
    let second = s.invoke_pid("warm");
    let third = s.invoke_pid("warm");
    assert_eq!(
        (first, first),
        (second, third),
        "sequential calls did not reuse the instance"
    );
    assert_eq!(instances(&mark), vec![first]);
}

#[test]
fn concurrent_calls_scale_out() {
    let s = Server::start(ServerOpts::default());
    let mark = unique("scale");
    s.create_fixture("scale", &mark, &[], json!({}));
    let pids: Vec<u32> = thread::scope(|sc| {
        let handles: Vec<_> = (0..4)
            .map(|_| sc.spawn(|| s.invoke("scale", &json!({"op": "sleep", "secs": "1.5"}))))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                let r = h.join().expect("invoke thread");
                r.expect_ok();
                host_pid(&r)
            })
            .collect()
    });
    let distinct: BTreeSet<u32> = pids.iter().copied().collect();
    assert!(
        distinct.len() >= 2,
        "4 concurrent 1.5 s calls ran on one instance: {pids:?}"
    );
    assert!(instances(&mark).len() >= 2);
}

#[test]
fn max_instances_zero_disables_the_function() {
    let s = Server::start(ServerOpts::default());
    s.create_fixture("off", &unique("off"), &[], json!({}));
    s.invoke_pid("off");
    s.put(
        "/functions/off/config-max-instance",
        &json!({"max_instance_num": 0}),
    )
    .expect(200);
    s.invoke("off", &json!({})).expect_fss(429, "FSS.0429");
    s.put(
        "/functions/off/config-max-instance",
        &json!({"max_instance_num": -1}),
    )
    .expect(200);
    s.invoke_pid("off");
}

/// With one instance busy, callers wait in a queue of `--queue-limit`; one more is refused.
#[test]
fn max_one_instance_queues_then_throttles() {
    let s = Server::start(ServerOpts::default().queue_limit(1));
    let mark = unique("q");
    s.create_fixture("q", &mark, &[], json!({}));
    s.put(
        "/functions/q/config-max-instance",
        &json!({"max_instance_num": 1}),
    )
    .expect(200);
    let warm = s.invoke_pid("q");

    thread::scope(|sc| {
        let busy = sc.spawn(|| {
            let t = Instant::now();
            (
                s.invoke("q", &json!({"op": "sleep", "secs": "3"})),
                t.elapsed(),
            )
        });
        thread::sleep(Duration::from_millis(700));
        let queued = sc.spawn(|| {
            let t = Instant::now();
            (s.invoke("q", &json!({"op": "pid"})), t.elapsed())
        });
        thread::sleep(Duration::from_millis(700));
        let t = Instant::now();
        let refused = s.invoke("q", &json!({"op": "pid"}));
        refused.expect_fss(429, "FSS.0429");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "the refusal waited {:?}",
            t.elapsed()
        );

        let (busy, _) = busy.join().expect("busy thread");
        let (queued, waited) = queued.join().expect("queued thread");
        busy.expect(200);
        queued.expect(200);
        assert_eq!(host_pid(&busy), warm, "{}", busy.text());
        assert_eq!(
            host_pid(&queued),
            warm,
            "a second instance was started: {}",
            queued.text()
        );
        assert!(
            waited >= Duration::from_millis(1000),
            "the queued call did not wait: {waited:?}"
        );
    });
    assert_eq!(instances(&mark), vec![warm]);
}

#[test]
fn idle_instances_are_reclaimed() {
    let s = Server::start(ServerOpts::default().idle_timeout("1s"));
    let mark = unique("idle");
    s.create_fixture("idle", &mark, &[], json!({}));
    let pid = s.invoke_pid("idle");
    assert!(alive(pid));
    let t = Instant::now();
    assert!(
        wait_until(Duration::from_secs(15), || !alive(pid)),
        "instance {pid} still alive {:?} after a 1 s idle timeout",
        t.elapsed()
    );
    assert!(
        wait_until(Duration::from_secs(5), || instances(&mark).is_empty()),
        "{:?}",
        instances(&mark)
    );
    // A cold start brings it back.
    let fresh = s.invoke_pid("idle");
    assert_ne!(fresh, pid);
}

#[test]
fn reserved_instances_start_ahead_and_stay() {
    let s = Server::start(ServerOpts::default().idle_timeout("1s"));
    let mark = unique("rsv");
    s.create_fixture("rsv", &mark, &[], json!({}));
    assert!(instances(&mark).is_empty());
    s.put(
        "/functions/rsv/reservedinstances",
        &json!({"count": 2, "idle_mode": false}),
    )
    .expect(200);
    assert!(
        wait_until(Duration::from_secs(20), || instances(&mark).len() == 2),
        "2 reserved instances not started before any invocation: {:?}",
        instances(&mark)
    );
    let reserved: BTreeSet<u32> = instances(&mark).into_iter().collect();

    let cfg = s.get("/functions/rsv/config").json();
    assert_eq!(cfg["reserved_instance_count"], 2, "{cfg}");
    let list = s.get("/functions/reservedinstances");
    list.expect(200);
    assert!(
        list.text().contains(&s.urn("rsv").replace(":latest", "")),
        "{}",
        list.text()
    );

    // Reserved instances outlive the idle timeout, and serve calls warm.
    thread::sleep(Duration::from_secs(3));
    assert_eq!(
        instances(&mark).into_iter().collect::<BTreeSet<_>>(),
        reserved,
        "reserved instances were reclaimed"
    );
    let pid = s.invoke_pid("rsv");
    assert!(
        reserved.contains(&pid),
        "served by {pid}, not a reserved instance {reserved:?}"
    );

    // Releasing them lets idle reclaim take them.
    s.put(
        "/functions/rsv/reservedinstances",
        &json!({"count": 0, "idle_mode": false}),
    )
    .expect(200);
    assert!(
        wait_until(Duration::from_secs(20), || instances(&mark).is_empty()),
        "released reserved instances never reclaimed: {:?}",
        instances(&mark)
    );
}

#[test]
fn every_serving_thread_reuses_the_one_warm_instance() {
    // Each call on a new connection lands on the next of the three threads: a thread without
    // an instance of its own takes another thread's idle one rather than starting a new one.
    let s = Server::start(
        ServerOpts::default()
            .flag("--threads", "3")
            .flag("--poll-window", "0s"),
    );
    let mark = unique("threads");
    s.create_fixture("threads", &mark, &[], json!({}));
    let first = s.invoke_pid("threads");
    for _ in 0..6 {
        let r = s.invoke_with("threads", &json!({"op": "pid"}), &[("Connection", "close")]);
        r.expect(200);
        assert_eq!(host_pid(&r), first, "a call started another instance");
    }
    assert_eq!(instances(&mark), vec![first]);
}

/// Three instances, two idle and one busy; `max_instance_num` lowered to 1: the idle ones stop
/// at once, the busy one answers its call and is the one left.
#[test]
fn a_lowered_limit_stops_the_idle_instances_past_it() {
    let s = Server::start(ServerOpts::default());
    let mark = unique("low");
    s.create_fixture("low", &mark, &[], json!({}));
    let s = &s;
    thread::scope(|sc| {
        let calls: Vec<_> = ["2", "2", "6"]
            .into_iter()
            .map(|secs| sc.spawn(move || s.invoke("low", &json!({"op": "sleep", "secs": secs}))))
            .collect();
        let mut calls = calls.into_iter();
        let short: Vec<u32> = calls
            .by_ref()
            .take(2)
            .map(|h| host_pid(&h.join().expect("short call")))
            .collect();
        let long = calls.next().expect("the long call");
        assert_eq!(instances(&mark).len(), 3, "one instance per concurrent call");
        s.put(
            "/functions/low/config-max-instance",
            &json!({"max_instance_num": 1}),
        )
        .expect(200);
        assert!(
            wait_until(Duration::from_secs(2), || short.iter().all(|&p| !alive(p))),
            "the idle instances past the limit stopped: {:?}",
            instances(&mark)
        );
        let busy = long.join().expect("long call");
        busy.expect_ok();
        assert_eq!(instances(&mark), [host_pid(&busy)], "the busy one is left");
    });
    assert_eq!(instances(&mark).len(), 1);
}
