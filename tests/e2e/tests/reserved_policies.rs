//! Reserved-instance policies (issue 20, docs/api.md): a cron policy changes the reserved
//! instance count at its time, through the real binary, and the configs list says so.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fgs_e2e::{json, wait_until, Server, ServerOpts};

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[test]
fn a_cron_policy_sets_the_reserved_count_at_its_time() {
    let s = Server::start(ServerOpts::default());
    s.create_fixture("sched", "sched", &[], json!({}));
    let policy = json!({"name": "soon", "cron": "*/2 * * * * *", "count": 1,
                        "start_time": now_s() - 10, "expired_time": now_s() + 600});
    let r = s.put(
        "/functions/sched/reservedinstances",
        &json!({"count": 0, "tactics_config": {"cron_configs": [policy]}}),
    );
    r.expect(200);
    assert_eq!(r.json()["tactics_config"]["cron_configs"][0]["name"], "soon");
    assert_eq!(
        s.get("/functions/sched/config").json()["reserved_instance_count"],
        json!(0)
    );
    // The runner rereads policies at least every 5 s and fires every 2 s.
    assert!(
        wait_until(Duration::from_secs(15), || {
            s.get("/functions/sched/config").json()["reserved_instance_count"] == json!(1)
        }),
        "the policy did not fire"
    );
    // The invoker starts the reserved instance the count now asks for.
    assert!(wait_until(Duration::from_secs(15), || {
        let r = s.get("/functions/sched/instancereports");
        r.json()["instance_num"][0]["value"] == json!(1.0)
    }));

    let listed = s.get("/functions/reservedinstanceconfigs");
    listed.expect(200);
    let listed = listed.json();
    assert_eq!(listed["count"], json!(1), "{listed}");
    let one = &listed["reserved_instances"][0];
    assert_eq!(one["min_count"], json!(1));
    assert_eq!(one["qualifier_name"], "latest");
    assert_eq!(one["tactics_config"]["cron_configs"][0]["cron"], "*/2 * * * * *");
    let by_urn = s.get("/functions/reservedinstanceconfigs?function_urn=sched");
    by_urn.expect(200);
    assert_eq!(by_urn.json()["count"], json!(1));
}

#[test]
fn bad_policies_are_refused_and_change_nothing() {
    let s = Server::start(ServerOpts::default());
    s.create_fixture("sched2", "sched2", &[], json!({}));
    let p = |cron: &str, from: i64, to: i64| {
        json!({"count": 2, "tactics_config": {"cron_configs": [
            {"name": "p", "cron": cron, "count": 1, "start_time": from, "expired_time": to}]}})
    };
    for bad in [
        p("not a cron", 0, 10),
        p("0 * * * * *", 10, 5),
        json!({"count": 2, "tactics_config": {"metric_configs": [{"name": "m", "type": "Concurrency", "threshold": 60, "min": 1}]}}),
    ] {
        s.put("/functions/sched2/reservedinstances", &bad)
            .expect_fss(400, "FSS.0400");
    }
    assert_eq!(
        s.get("/functions/sched2/config").json()["reserved_instance_count"],
        json!(0)
    );
    s.get("/functions/reservedinstanceconfigs?function_urn=nope")
        .expect_fss(404, "FSS.1051");
}
