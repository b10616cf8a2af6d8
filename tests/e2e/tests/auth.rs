//! Authentication (SPEC.md 2): SDK-HMAC-SHA256 signatures, projects, static tokens, and where
//! the server's credentials come from.

use fgs_e2e::{test_credential, Auth, Credential, Server, ServerOpts};
use time::{Duration, OffsetDateTime};

fn list(s: &Server, auth: Auth) -> fgs_e2e::Resp {
    s.req("GET", &s.api("/functions")).auth(auth).send()
}

#[test]
fn healthz_needs_no_credentials() {
    let s = Server::start(ServerOpts::default());
    let r = s.req("GET", "/healthz").auth(Auth::None).send();
    r.expect(200);
    assert!(r.json().is_object());
}

#[test]
fn bad_signatures_are_401() {
    let s = Server::start(ServerOpts::default());
    let cred = test_credential();
    list(&s, Auth::Signed(cred.clone())).expect(200);

    list(&s, Auth::None).expect_fss(401, "FSS.0401");
    list(&s, Auth::Tampered(cred.clone())).expect_fss(401, "FSS.0401");
    let wrong_sk = Credential {
        secret_key: "not-the-secret".into(),
        ..cred.clone()
    };
    list(&s, Auth::Signed(wrong_sk)).expect_fss(401, "FSS.0401");
    let unknown = Credential {
        access_key: "UNKNOWNAK".into(),
        ..cred.clone()
    };
    list(&s, Auth::Signed(unknown)).expect_fss(401, "FSS.0401");

    let now = OffsetDateTime::now_utc();
    list(
        &s,
        Auth::SignedAt(cred.clone(), now - Duration::minutes(20)),
    )
    .expect_fss(401, "FSS.0401");
    list(
        &s,
        Auth::SignedAt(cred.clone(), now + Duration::minutes(20)),
    )
    .expect_fss(401, "FSS.0401");
    // Inside the 15-minute window is fine.
    list(&s, Auth::SignedAt(cred.clone(), now - Duration::minutes(5))).expect(200);

    // A token is refused when the server has none configured.
    list(&s, Auth::Token("anything".into())).expect_fss(401, "FSS.0401");

    // A signed body that is changed afterwards.
    let path = s.api("/functions");
    let r = s
        .req("POST", &path)
        .header(
            "X-Sdk-Content-Sha256",
            "0000000000000000000000000000000000000000000000000000000000000000",
        )
        .raw(r#"{"func_name":"x"}"#)
        .send();
    r.expect_fss(401, "FSS.0401");

    // Invocations are guarded too.
    let r = s
        .req("POST", &s.api("/functions/any/invocations"))
        .auth(Auth::None)
        .raw("{}")
        .send();
    r.expect_fss(401, "FSS.0401");
}

#[test]
fn another_projects_path_is_403() {
    let s = Server::start(ServerOpts::default());
    let r = s
        .req("GET", "/v2/ffffffffffffffffffffffffffffffff/fgs/functions")
        .send();
    r.expect_fss(403, "FSS.0403");
    let r = s
        .req(
            "POST",
            "/v2/ffffffffffffffffffffffffffffffff/fgs/functions/x/invocations",
        )
        .raw("{}")
        .send();
    r.expect_fss(403, "FSS.0403");
}

#[test]
fn credentials_file_maps_each_key_to_its_project() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("creds");
    let a = Credential {
        access_key: "AKONE".into(),
        secret_key: "sk-one".into(),
        project_id: "projectone".into(),
    };
    let b = Credential {
        access_key: "AKTWO".into(),
        secret_key: "sk-two".into(),
        project_id: "projecttwo".into(),
    };
    let s = Server::start(ServerOpts::default().credentials_file(&file, &[&a, &b]));
    let get = |cred: &Credential, project: &str| {
        s.req("GET", &format!("/v2/{project}/fgs/functions"))
            .auth(Auth::Signed(cred.clone()))
            .send()
    };
    get(&a, "projectone").expect(200);
    get(&b, "projecttwo").expect(200);
    get(&a, "projecttwo").expect_fss(403, "FSS.0403");
    get(&b, "projectone").expect_fss(403, "FSS.0403");
    get(&test_credential(), "projectone").expect_fss(401, "FSS.0401");
}

#[test]
fn static_token_from_env_is_accepted() {
    let s = Server::start(ServerOpts::default().env("FGS_AUTH_TOKEN", "e2e-static-token"));
    list(&s, Auth::Token("e2e-static-token".into())).expect(200);
    list(&s, Auth::Token("wrong-token".into())).expect_fss(401, "FSS.0401");
    // Signatures still work beside the token.
    list(&s, Auth::Signed(test_credential())).expect(200);
}

#[test]
fn static_token_from_flag_is_accepted() {
    let s = Server::start(ServerOpts::default().flag("--auth-token", "flag-token"));
    list(&s, Auth::Token("flag-token".into())).expect(200);
}

#[test]
fn first_start_generates_and_keeps_a_credential() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let s = Server::start(
        ServerOpts::default()
            .without_env_credential()
            .data_dir(&data),
    );
    let text = std::fs::read_to_string(data.join("credentials"))
        .expect("<data-dir>/credentials was written");
    let fields: Vec<&str> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(fields.len(), 3, "credentials line {text:?}");
    let cred = Credential {
        access_key: fields[0].into(),
        secret_key: fields[1].into(),
        project_id: fields[2].into(),
    };
    let printed = s.stdout_lines().join("\n") + &s.stderr();
    assert!(
        printed.contains(&cred.access_key),
        "the generated key was not printed:\n{printed}"
    );
    s.req("GET", &format!("/v2/{}/fgs/functions", cred.project_id))
        .auth(Auth::Signed(cred.clone()))
        .send()
        .expect(200);
    drop(s);

    // A restart keeps it, and does not print the secret again.
    let s = Server::start(
        ServerOpts::default()
            .without_env_credential()
            .data_dir(&data),
    );
    assert_eq!(
        std::fs::read_to_string(data.join("credentials")).expect("still there"),
        text
    );
    s.req("GET", &format!("/v2/{}/fgs/functions", cred.project_id))
        .auth(Auth::Signed(cred.clone()))
        .send()
        .expect(200);
    let printed = s.stdout_lines().join("\n") + &s.stderr();
    assert!(
        !printed.contains(&cred.secret_key),
        "the secret key was printed again:\n{printed}"
    );
}
