use super::*;

fn write(p: &Path, body: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

#[test]
fn discovery_order_and_replacement() {
    let t = tempfile::tempdir().unwrap();
    let d1 = t.path().join("d1");
    let d2 = t.path().join("d2");
    let merged = t.path().join("merged");
    let code = t.path().join("code");
    write(&d1.join("extension/extensionB.sh"), "");
    write(&d1.join("extension/extensionA.sh"), "");
    write(&d1.join("extension/readme.txt"), "");
    write(&d2.join("extension/extensionA.sh"), "");
    write(&code.join("extension/extensionZ.sh"), "");
    let found = discover(&[d1, d2], Some(&merged), &code).unwrap();
    let names: Vec<_> = found.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["extensionB.sh", "extensionA.sh", "extensionZ.sh"]);
    assert_eq!(found[1].host_path, merged.join("extension/extensionA.sh"));
    assert_eq!(found[2].host_path, code.join("extension/extensionZ.sh"));
}

#[test]
fn an_empty_extension_folder_is_4216() {
    let t = tempfile::tempdir().unwrap();
    let code = t.path().join("code");
    write(&code.join("extension/notes.md"), "");
    let e = discover(&[], None, &code).unwrap_err();
    assert_eq!(e.code, 4216);
    assert!(e.message.starts_with("extension shell file is not found"));
}

#[test]
fn registration_rules() {
    let x = Extensions::new(
        vec!["extensionA.sh".into(), "extensionB.sh".into()],
        "f".into(),
        "latest".into(),
    );
    let r = x.register(None, Some("127.0.0.1:8081"));
    assert_eq!(
        (r.status, r.error_type),
        (StatusCode::BAD_REQUEST, "MissingHeader")
    );
    let r = x.register(Some("extensionC.sh"), Some("127.0.0.1:8081"));
    assert_eq!(
        (r.status, r.error_type),
        (StatusCode::FORBIDDEN, "UnknownExtension")
    );
    for bad in [
        "127.0.0.1:8080",
        "127.0.0.1:8091",
        "0.0.0.0:8081",
        "localhost:8081",
        "127.0.0.1",
    ] {
        let r = x.register(Some("extensionA.sh"), Some(bad));
        assert_eq!(
            (r.status, r.error_type),
            (StatusCode::BAD_REQUEST, "InvalidAddress"),
            "{bad}"
        );
    }
}
