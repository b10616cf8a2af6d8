//! Reports (issue 20, docs/api.md): the SLA and instance reports of a function and the
//! project's top functions, counted from the same history as the statistics API; and pinning.

use fgs_e2e::{json, Server, ServerOpts, Value};

fn total(list: &Value) -> f64 {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .filter_map(|p| p["value"].as_f64())
        .sum()
}

#[test]
fn reports_count_invocations_and_errors_like_the_statistics() {
    let s = Server::start(ServerOpts::default());
    s.create_fixture("busy", "busy", &[], json!({}));
    s.create_fixture("quiet", "quiet", &[], json!({}));
    for _ in 0..3 {
        s.invoke("busy", &json!({})).expect(200);
    }
    s.invoke("busy", &json!({"op": "error"})).expect(200);
    s.invoke("quiet", &json!({})).expect(200);

    let sla = s.get("/functions/busy/slareports/15m");
    sla.expect(200);
    let sla = sla.json();
    let stats = s.get("/functions/busy/statistics/15");
    stats.expect(200);
    let stats = stats.json();
    assert_eq!(total(&sla["count"]), 4.0, "{sla}");
    assert_eq!(total(&sla["function_error_count"]), 1.0);
    for k in ["count", "fail_count", "function_error_count", "reject_count"] {
        assert_eq!(total(&sla[k]), total(&stats[k]), "{k}");
    }
    assert_eq!(total(&sla["instance_num"]), 1.0, "one instance started: {sla}");

    let inst = s.get("/functions/busy/instancereports");
    inst.expect(200);
    let inst = inst.json();
    assert_eq!(total(&inst["instance_num"]), 1.0, "{inst}");
    assert_eq!(total(&inst["reserved_instance_num"]), 0.0);

    let by_count = s.get("/function/report?type=count&limit=5");
    by_count.expect(200);
    let values = by_count.json()["values"].clone();
    assert_eq!(values[0]["key"], json!(s.urn("busy")), "{values}");
    assert_eq!(values[0]["value"], json!(4));
    assert_eq!(values[1]["value"], json!(1));
    let failing = s.get("/function/report");
    failing.expect(200);
    assert_eq!(failing.json()["values"][0]["value"], json!(1));
    let top1 = s.get("/function/report?type=count&limit=1");
    assert_eq!(top1.json()["count"], json!(1));

    s.get("/function/report?type=bogus").expect_fss(400, "FSS.0400");
    s.get("/functions/busy/slareports/3d").expect_fss(400, "FSS.0400");
    s.get("/functions/nope/slareports/5").expect_fss(404, "FSS.1051");
    s.get("/functions/nope/instancereports").expect_fss(404, "FSS.1051");
}

#[test]
fn a_function_is_pinned_and_unpinned() {
    let s = Server::start(ServerOpts::default());
    s.create_fixture("pin", "pin", &[], json!({}));
    assert_eq!(s.get("/functions/pin/config").json()["pinned"], json!(false));
    s.put("/functions/pin/collect/true", &json!({})).expect(200);
    assert_eq!(s.get("/functions/pin/config").json()["pinned"], json!(true));
    s.put("/functions/pin/collect/false", &json!({})).expect(200);
    assert_eq!(s.get("/functions/pin/config").json()["pinned"], json!(false));
    s.put("/functions/pin/collect/maybe", &json!({}))
        .expect_fss(400, "FSS.0400");
    s.put("/functions/nope/collect/true", &json!({}))
        .expect_fss(404, "FSS.1051");
}
