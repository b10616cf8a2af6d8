//! Tags on functions (issue 20, docs/api.md): FunctionGraph's tag API outside `/fgs`, tags at
//! create time, filtering and counting by tags, and `fgs function list --tag`.

use fgs_e2e::fixture::{bootstrap_zip, custom_zip_body, RUNTIME};
use fgs_e2e::{client_cmd, json, Server, ServerOpts, Value};

fn tag_path(s: &Server, rest: &str) -> String {
    format!("/v2/{}/functions{rest}", s.cred.project_id)
}

fn create(s: &Server, name: &str, tags: Option<Value>) -> Value {
    let mut body = custom_zip_body(name, &bootstrap_zip(RUNTIME));
    if let Some(t) = tags {
        body["tags"] = t;
    }
    let r = s.post("/functions", &body);
    r.expect(200);
    r.json()
}

fn tags_of(s: &Server, id: &str) -> Value {
    let r = s.req("GET", &tag_path(s, &format!("/{id}/tags"))).send();
    r.expect(200);
    r.json()["tags"].clone()
}

fn filter(s: &Server, action: &str, body: &Value) -> Value {
    let r = s
        .req("POST", &tag_path(s, &format!("/resource-instances/{action}")))
        .json(body)
        .send();
    r.expect(200);
    r.json()
}

fn names(found: &Value) -> Vec<String> {
    let mut n: Vec<String> = found["resources"]
        .as_array()
        .unwrap_or_else(|| panic!("no resources in {found}"))
        .iter()
        .filter_map(|r| r["resource_name"].as_str().map(str::to_owned))
        .collect();
    n.sort();
    n
}

#[test]
fn tags_are_created_listed_filtered_and_deleted() {
    let s = Server::start(ServerOpts::default());
    // The SDK's `tags` is a string; a JSON array is taken too.
    let a = create(
        &s,
        "tag-a",
        Some(json!("[{\"key\":\"team\",\"value\":\"blue\"}]")),
    );
    create(&s, "tag-b", Some(json!([{"key": "team", "value": "red"}])));
    create(&s, "tag-c", None);
    assert_eq!(tags_of(&s, "tag-a"), json!([{"key": "team", "value": "blue"}]));

    // By URN and by func_id alike.
    let urn = a["func_urn"].as_str().expect("func_urn");
    let add = json!({"action": "create", "tags": [{"key": "env", "value": "prod"}]});
    s.req("POST", &tag_path(&s, &format!("/{urn}/tags/create")))
        .json(&add)
        .send()
        .expect(204);
    let id = a["func_id"].as_str().expect("func_id");
    assert_eq!(
        tags_of(&s, id),
        json!([{"key": "env", "value": "prod"}, {"key": "team", "value": "blue"}])
    );

    let project = s.req("GET", &tag_path(&s, "/tags")).send();
    project.expect(200);
    assert_eq!(
        project.json()["tags"],
        json!([{"key": "env", "values": ["prod"]}, {"key": "team", "values": ["blue", "red"]}])
    );

    let team = json!({"tags": [{"key": "team", "values": []}]});
    assert_eq!(names(&filter(&s, "filter", &team)), ["tag-a", "tag-b"]);
    let blue_prod = json!({"tags": [{"key": "team", "values": ["blue"]}, {"key": "env", "values": ["prod"]}]});
    let found = filter(&s, "filter", &blue_prod);
    assert_eq!(names(&found), ["tag-a"]);
    assert_eq!(found["resources"][0]["resource_id"], json!(urn));
    assert_eq!(filter(&s, "count", &team)["total_count"], json!(2));
    let untagged = filter(&s, "filter", &json!({"without_any_tag": true}));
    assert_eq!(names(&untagged), ["tag-c"]);

    // `fgs function list --tag` asks the same filter.
    let o = client_cmd(&s)
        .args(["function", "list", "--tag", "team=red", "--json"])
        .output()
        .expect("fgs runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let listed: Value = serde_json::from_slice(&o.stdout).expect("JSON out");
    assert_eq!(listed["count"], json!(1), "{listed}");
    assert_eq!(listed["functions"][0]["func_name"], json!("tag-b"));

    let gone = json!({"action": "delete", "tags": [{"key": "team", "value": ""}]});
    s.req("DELETE", &tag_path(&s, "/tag-a/tags/delete"))
        .json(&gone)
        .send()
        .expect(204);
    assert_eq!(tags_of(&s, "tag-a"), json!([{"key": "env", "value": "prod"}]));
}

#[test]
fn bad_tags_are_refused_and_change_nothing() {
    let s = Server::start(ServerOpts::default());
    create(&s, "tag-x", Some(json!({"team": "blue"})));
    for bad in [
        json!({"tags": [{"key": "", "value": "v"}]}),
        json!({"tags": [{"key": "a=b", "value": "v"}]}),
        json!({"tags": [{"key": "k", "value": "v/w"}]}),
        json!({"tags": [{"key": "k", "value": "1"}, {"key": "k", "value": "2"}]}),
    ] {
        s.req("POST", &tag_path(&s, "/tag-x/tags/create"))
            .json(&bad)
            .send()
            .expect_fss(400, "FSS.0400");
    }
    assert_eq!(tags_of(&s, "tag-x"), json!([{"key": "team", "value": "blue"}]));
    s.req("GET", &tag_path(&s, "/nope/tags"))
        .send()
        .expect_fss(404, "FSS.1051");
    s.req("GET", &format!("/v2/{}/servers/tag-x/tags", s.cred.project_id))
        .send()
        .expect_fss(400, "FSS.0400");
    s.req("POST", &tag_path(&s, "/resource-instances/sum"))
        .json(&json!({}))
        .send()
        .expect_fss(400, "FSS.0400");
    let mut body = custom_zip_body("tag-bad", &bootstrap_zip(RUNTIME));
    body["tags"] = json!("not json");
    s.post("/functions", &body).expect_fss(400, "FSS.0400");
    s.get("/functions/tag-bad/config").expect_fss(404, "FSS.1051");
}
