//! What one change looks like on the stream: a subject per kind and a JSON body naming the
//! function. The revision is not in the body: it is the stream sequence NATS gave the message.

use fgs_store::{ChangeKind, FunctionKey};
use serde::{Deserialize, Serialize};

/// The stream every node publishes to and follows.
pub const STREAM: &str = "FGS_CHANGES";
/// The subjects of [`STREAM`]; a change is published on `fgs.changes.<kind>`.
pub const SUBJECTS: &str = "fgs.changes.>";

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Body {
    project: String,
    package: String,
    name: String,
    kind: String,
}

fn kind_name(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Function => "function",
        ChangeKind::Deleted => "deleted",
        ChangeKind::Version => "version",
        ChangeKind::Alias => "alias",
        ChangeKind::Trigger => "trigger",
    }
}

fn kind_of(name: &str) -> Option<ChangeKind> {
    Some(match name {
        "function" => ChangeKind::Function,
        "deleted" => ChangeKind::Deleted,
        "version" => ChangeKind::Version,
        "alias" => ChangeKind::Alias,
        "trigger" => ChangeKind::Trigger,
        _ => return None,
    })
}

/// The subject and body of a change.
pub fn encode(key: &FunctionKey, kind: ChangeKind) -> (String, Vec<u8>) {
    let body = Body {
        project: key.project.clone(),
        package: key.package.clone(),
        name: key.name.clone(),
        kind: kind_name(kind).to_owned(),
    };
    let bytes = serde_json::to_vec(&body).expect("a struct of strings always serialises");
    (format!("fgs.changes.{}", kind_name(kind)), bytes)
}

/// The change a body says, or `None` when it is not one this fgs understands (a newer node's
/// kind, or garbage): the follower must then reload, as for a lost change.
pub fn decode(bytes: &[u8]) -> Option<(FunctionKey, ChangeKind)> {
    let body: Body = serde_json::from_slice(bytes).ok()?;
    let kind = kind_of(&body.kind)?;
    Some((
        FunctionKey {
            project: body.project,
            package: body.package,
            name: body.name,
        },
        kind,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_and_garbage_is_refused() {
        let key = FunctionKey {
            project: "p".into(),
            package: "default".into(),
            name: "f\"n".into(),
        };
        for kind in [
            ChangeKind::Function,
            ChangeKind::Deleted,
            ChangeKind::Version,
            ChangeKind::Alias,
            ChangeKind::Trigger,
        ] {
            let (subject, body) = encode(&key, kind);
            assert!(subject.starts_with("fgs.changes."), "{subject}");
            assert_eq!(decode(&body), Some((key.clone(), kind)));
        }
        assert_eq!(decode(b"{}"), None);
        assert_eq!(decode(b"not json"), None);
        let unknown = br#"{"project":"p","package":"d","name":"n","kind":"quota"}"#;
        assert_eq!(decode(unknown), None, "an unknown kind is not guessed");
    }
}
