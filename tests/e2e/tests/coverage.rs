//! The operations of FunctionGraph's API that fgs does not provide (issue 20, docs/api.md's
//! coverage table): each answers 501 `FSS.0501` naming the operation, behind the same
//! authentication as every `/v2` route, and a path no operation has is still `no such API path`.

use fgs_e2e::{json, Auth, Server, ServerOpts};

#[test]
fn cloud_only_operations_answer_501_naming_themselves() {
    let s = Server::start(ServerOpts::default());
    let cases = [
        ("GET", "/workflows", "ListWorkflow"),
        ("DELETE", "/workflows", "BatchDeleteWorkflows"),
        ("POST", "/workflows/w1/executions", "StartWorkflowExecution"),
        ("GET", "/applications/a1", "ShowFunctionApp"),
        ("GET", "/application/templates", "ListAppTemplates"),
        ("DELETE", "/vpc-endpoint/v1/s1", "DeleteVpcEndpoint"),
        ("GET", "/servicebridge/version", "ListBridgeVersions"),
        ("POST", "/functions/f1/snapshots/enable", "UpdateFuncSnapshot"),
        ("GET", "/functions/f1/snapshots/state", "ShowFuncSnapshotState"),
    ];
    for (method, rel, operation) in cases {
        let r = s.req(method, &s.api(rel)).json(&json!({})).send();
        r.expect_fss(501, "FSS.0501");
        let msg = r.json()["error_msg"].as_str().unwrap_or_default().to_owned();
        assert!(
            msg.starts_with(operation) && msg.contains("not provided by fgs"),
            "{method} {rel}: {msg}"
        );
    }
    s.get("/no-such-thing").expect_fss(404, "FSS.0404");
    // A path that exists, with a method it does not take: FunctionGraph's shape too.
    for (method, path) in [
        ("PATCH", s.api("/functions")),
        ("PUT", s.api("/workflows")),
        ("GET", format!("/v2/{}/functions/f1/tags/create", s.cred.project_id)),
    ] {
        s.req(method, &path)
            .send()
            .expect_fss(405, "FSS.0405");
    }
}

#[test]
fn a_501_needs_credentials_like_any_route() {
    let s = Server::start(ServerOpts::default());
    s.req("GET", &s.api("/workflows"))
        .auth(Auth::None)
        .send()
        .expect_fss(401, "FSS.0401");
}
