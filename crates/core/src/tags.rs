//! Tags on a function (FunctionGraph's `/{resource_type}/{resource_id}/tags` API): keys and
//! values users filter functions by. The rules are Huawei Cloud's tag rules; the limit of 20 a
//! function is fgs's own ([FGS], docs/api.md).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::validate::Invalid;

/// At most this many tags on one function.
pub const TAGS_PER_FUNCTION: usize = 20;
/// A key is 1 to this many characters.
pub const KEY_MAX: usize = 128;
/// A value is 0 to this many characters.
pub const VALUE_MAX: usize = 255;

/// Characters a key or a value may not hold (Huawei Cloud's tag rules).
const FORBIDDEN: &[char] = &['=', '*', '<', '>', '\\', ',', '|', '/'];

/// A function's tags, key to value, ordered by key.
pub type Tags = BTreeMap<String, String>;

/// One tag as FunctionGraph writes it (`KvItem`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

fn check_text(what: &str, text: &str, min: usize, max: usize) -> Result<(), Invalid> {
    let n = text.chars().count();
    if n < min || n > max {
        return Err(Invalid::Parameter(format!(
            "tag {what} {text:?} is invalid: use {min} to {max} characters"
        )));
    }
    if text.trim() != text {
        return Err(Invalid::Parameter(format!(
            "tag {what} {text:?} is invalid: it may not start or end with a space"
        )));
    }
    if let Some(c) = text
        .chars()
        .find(|c| FORBIDDEN.contains(c) || c.is_control())
    {
        return Err(Invalid::Parameter(format!(
            "tag {what} {text:?} is invalid: {c:?} is not allowed"
        )));
    }
    Ok(())
}

/// A tag's key and value, checked.
pub fn check(tag: &Tag) -> Result<(), Invalid> {
    check_text("key", &tag.key, 1, KEY_MAX)?;
    check_text("value", &tag.value, 0, VALUE_MAX)
}

/// Adds `new` onto `tags` (a key given again takes its new value), refusing the whole change
/// if one tag is invalid, a key appears twice in `new`, or the result is over the limit.
pub fn add(tags: &Tags, new: &[Tag]) -> Result<Tags, Invalid> {
    let mut out = tags.clone();
    let mut seen = std::collections::BTreeSet::new();
    for t in new {
        check(t)?;
        if !seen.insert(t.key.as_str()) {
            return Err(Invalid::Parameter(format!(
                "tag key {:?} is given twice",
                t.key
            )));
        }
        out.insert(t.key.clone(), t.value.clone());
    }
    if out.len() > TAGS_PER_FUNCTION {
        return Err(Invalid::Parameter(format!(
            "a function has at most {TAGS_PER_FUNCTION} tags"
        )));
    }
    Ok(out)
}

/// `tags` without the keys of `gone`; a key the function does not have is no error.
pub fn remove(tags: &Tags, gone: &[Tag]) -> Tags {
    let mut out = tags.clone();
    for t in gone {
        out.remove(&t.key);
    }
    out
}

/// The `tags` of a create body: a JSON array of `{"key","value"}`, a JSON object of key to
/// value, or either of them written as a string (the SDK's `tags` is a string).
pub fn parse_create(v: &serde_json::Value) -> Result<Vec<Tag>, Invalid> {
    let bad = |e: &dyn std::fmt::Display| {
        Invalid::Parameter(format!(
            "tags is invalid ({e}): use [{{\"key\":\"k\",\"value\":\"v\"}}] or {{\"k\":\"v\"}}"
        ))
    };
    match v {
        serde_json::Value::Null => Ok(Vec::new()),
        serde_json::Value::String(s) if s.trim().is_empty() => Ok(Vec::new()),
        serde_json::Value::String(s) => {
            let inner: serde_json::Value = serde_json::from_str(s).map_err(|e| bad(&e))?;
            if inner.is_string() {
                return Err(bad(&"a string in a string"));
            }
            parse_create(&inner)
        }
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok(Tag {
                    key: k.clone(),
                    value: s.clone(),
                }),
                _ => Err(bad(&format!("the value of {k:?} is not a string"))),
            })
            .collect(),
        other => serde_json::from_value(other.clone()).map_err(|e| bad(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn adding_replaces_a_value_and_keeps_the_rest() {
        let one = add(&Tags::new(), &[tag("team", "a"), tag("env", "dev")]).unwrap();
        let two = add(&one, &[tag("team", "b")]).unwrap();
        assert_eq!(two.get("team").map(String::as_str), Some("b"));
        assert_eq!(two.get("env").map(String::as_str), Some("dev"));
        assert_eq!(remove(&two, &[tag("env", ""), tag("absent", "")]).len(), 1);
    }

    #[test]
    fn bad_tags_are_refused_whole() {
        let base = add(&Tags::new(), &[tag("a", "1")]).unwrap();
        for bad in [
            vec![tag("", "v")],
            vec![tag(" k", "v")],
            vec![tag("k=1", "v")],
            vec![tag("k", "a/b")],
            vec![tag(&"k".repeat(KEY_MAX + 1), "v")],
            vec![tag("k", &"v".repeat(VALUE_MAX + 1))],
            vec![tag("ok", "1"), tag("ok", "2")],
        ] {
            assert!(add(&base, &bad).is_err(), "{bad:?}");
        }
        let many: Vec<Tag> = (0..TAGS_PER_FUNCTION)
            .map(|i| tag(&format!("k{i}"), ""))
            .collect();
        assert!(add(&base, &many).is_err(), "21 tags");
        assert_eq!(add(&Tags::new(), &many).unwrap().len(), TAGS_PER_FUNCTION);
    }

    #[test]
    fn create_bodies_take_every_written_form() {
        let want = vec![tag("team", "a")];
        for v in [
            json!([{"key": "team", "value": "a"}]),
            json!({"team": "a"}),
            json!("[{\"key\":\"team\",\"value\":\"a\"}]"),
            json!("{\"team\":\"a\"}"),
        ] {
            assert_eq!(parse_create(&v).unwrap(), want, "{v}");
        }
        assert!(parse_create(&json!("")).unwrap().is_empty());
        assert!(parse_create(&json!(5)).is_err());
        assert!(parse_create(&json!({"k": 1})).is_err());
        assert!(parse_create(&json!("\"x\"")).is_err());
    }
}
