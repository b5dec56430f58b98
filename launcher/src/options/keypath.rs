//! Where values are in a JSON file, as agent profiles name the settings that make the
//! agent run commands (`/shellPath`, `/apiKeys/*`, `/**`): a JSON pointer whose segment
//! `*` is any one key or index and whose last segment `**` is every value below, at any
//! depth, that is neither an object nor an array.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

/// A JSON pointer with wildcards (see the module's documentation).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub(crate) struct KeyPath {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    /// `*`: any one key or index.
    Any,
    /// `**`: every leaf below, at any depth.
    Below,
}

/// Why a string is not a [`KeyPath`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid key path {text:?}: {reason}")]
pub(crate) struct KeyPathError {
    text: String,
    reason: &'static str,
}

impl KeyPath {
    /// The values `self` names in `json`, each with the pointer to it (`/a/0/b`, keys
    /// escaped as JSON pointers escape them, control characters as Rust escapes them so
    /// that they can be shown on a terminal), in document order.
    pub(crate) fn find<'a>(&self, json: &'a Value) -> Vec<(String, &'a Value)> {
        let mut found = Vec::new();
        collect(&self.segments, json, &mut String::new(), &mut found);
        found
    }
}

fn collect<'a>(
    segments: &[Segment],
    value: &'a Value,
    at: &mut String,
    found: &mut Vec<(String, &'a Value)>,
) {
    let Some((segment, rest)) = segments.split_first() else {
        found.push((at.clone(), value));
        return;
    };
    let children: Vec<(String, &Value)> = match value {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ if *segment == Segment::Below => {
            found.push((at.clone(), value));
            return;
        }
        _ => return,
    };
    for (key, child) in children {
        let rest = match segment {
            Segment::Key(wanted) if *wanted != key => continue,
            Segment::Key(_) | Segment::Any => rest,
            Segment::Below => segments,
        };
        let len = at.len();
        at.push('/');
        at.push_str(&escape(&key));
        collect(rest, child, at, found);
        at.truncate(len);
    }
}

/// A key as a pointer segment: `~` and `/` as JSON pointers escape them, control
/// characters as Rust does.
fn escape(key: &str) -> String {
    key.replace('~', "~0")
        .replace('/', "~1")
        .chars()
        .flat_map(|c| {
            let escaped: Vec<char> = match c.is_control() {
                true => c.escape_default().collect(),
                false => vec![c],
            };
            escaped
        })
        .collect()
}

impl FromStr for KeyPath {
    type Err = KeyPathError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |reason| KeyPathError {
            text: text.to_owned(),
            reason,
        };
        let Some(rest) = text.strip_prefix('/') else {
            return Err(error("expected a JSON pointer starting with `/`"));
        };
        let mut segments: Vec<Segment> = rest
            .split('/')
            .map(|part| match part {
                "*" => Segment::Any,
                "**" => Segment::Below,
                _ => Segment::Key(part.replace("~1", "/").replace("~0", "~")),
            })
            .collect();
        let last = segments.pop();
        if segments.contains(&Segment::Below) {
            return Err(error("`**` may only be the last segment"));
        }
        segments.extend(last);
        Ok(Self { segments })
    }
}

impl TryFrom<String> for KeyPath {
    type Error = KeyPathError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for segment in &self.segments {
            match segment {
                Segment::Key(key) => write!(f, "/{}", key.replace('~', "~0").replace('/', "~1"))?,
                Segment::Any => f.write_str("/*")?,
                Segment::Below => f.write_str("/**")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn found(path: &str, json: &Value) -> Vec<(String, Value)> {
        let path: KeyPath = path.parse().unwrap();
        path.find(json)
            .into_iter()
            .map(|(at, value)| (at, value.clone()))
            .collect()
    }

    #[test]
    fn keys_wildcards_and_leaves_below() {
        let json = json!({
            "shellPath": "/bin/zsh",
            "packages": ["npm:a", {"source": "git:b"}],
            "apiKeys": {"x": "!op read", "y": "k"},
            "a/b": {"~c": 1},
        });
        assert_eq!(
            found("/shellPath", &json),
            [("/shellPath".into(), json!("/bin/zsh"))]
        );
        assert_eq!(
            found("/packages", &json),
            [("/packages".into(), json["packages"].clone())]
        );
        assert_eq!(
            found("/apiKeys/*", &json),
            [
                ("/apiKeys/x".into(), json!("!op read")),
                ("/apiKeys/y".into(), json!("k"))
            ]
        );
        assert_eq!(found("/a~1b/~0c", &json), [("/a~1b/~0c".into(), json!(1))]);
        let leaves: Vec<String> = found("/**", &json).into_iter().map(|(at, _)| at).collect();
        assert_eq!(
            leaves,
            [
                "/a~1b/~0c",
                "/apiKeys/x",
                "/apiKeys/y",
                "/packages/0",
                "/packages/1/source",
                "/shellPath"
            ]
        );
        assert!(found("/missing/*", &json).is_empty());
        assert!(found("/shellPath/x", &json).is_empty());
    }

    #[test]
    fn control_characters_in_keys_are_escaped() {
        let json = json!({"\u{1b}[2J": "!x"});
        assert_eq!(found("/**", &json)[0].0, "/\\u{1b}[2J");
    }

    #[test]
    fn paths_parse_and_print_back() {
        for text in ["/shellPath", "/apiKeys/*", "/**", "/a~1b/**"] {
            assert_eq!(text.parse::<KeyPath>().unwrap().to_string(), text);
        }
        for text in ["shellPath", "", "/**/key"] {
            let error = text.parse::<KeyPath>().unwrap_err().to_string();
            assert!(error.contains(&format!("{text:?}")), "{error}");
        }
    }
}
