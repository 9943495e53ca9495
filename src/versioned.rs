//! Versions of the JSON documents the core stores (the KV key and organisation records, the key
//! ledger's state, stored credentials, the registry's rows of principals, projects and keys), so
//! that two builds of the worker can read each other's documents during a gradual deployment or
//! after a rollback.
//!
//! The rule, for a document type whose current [`Format::version`] is `N`:
//! - a document carries `"v": n`; absent means 1 (every document written before versions
//!   existed). Writers write `N`, and leave `v` out while `N` is 1, so builds from before
//!   versions existed read what this one writes;
//! - a version only *adds* top-level members (each with a default, so a document of an older
//!   version reads as the current one). A change of meaning is a new member under a new name;
//! - a reader of `N` reads documents of version `n ≤ N` refusing unknown members (a misspelt
//!   member must never be ignored), and documents of version `N + 1`, written by a newer build,
//!   ignoring the members it does not know — unless the document lists one of them in
//!   `"critical": [..]`: then it refuses the document (it fails closed). A member that narrows
//!   what the document grants (a new restriction on a key) must be critical; one whose loss
//!   only costs information (a new counter, a label) need not be;
//! - a reader refuses versions above `N + 1`: only adjacent builds run side by side.
//!
//! A build that rewrites a document of version `N + 1` writes version `N` and drops the members
//! it does not know; that is why a member that must not be dropped is critical.
//!
//! Nested values (`limits` of a key record) are not versioned on their own: a newer version
//! adds a top-level member rather than a member inside one.
//!
//! How a type adopts it: derive `Serialize` and `Deserialize` with `#[serde(remote = "Self",
//! deny_unknown_fields)]` (the derived code becomes the inherent `Type::serialize` and
//! `Type::deserialize`, which read and write the members of the current version), declare a
//! [`Format`] listing those members, and invoke `stored_serde!`, which implements the serde
//! traits by way of the format. The registry's rows (`Key`, `PrincipalDoc`, `Project`) do
//! exactly this; rows stored before versions existed read as version 1.

use serde::de::{DeserializeOwned, Error as _};
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::de::SliceRead;
use serde_json::{Map, Value};

/// The member holding the version.
const VERSION_MEMBER: &str = "v";
/// The member listing members a reader must know to use the document.
const CRITICAL_MEMBER: &str = "critical";

/// One stored document type's current version and members.
#[derive(Debug)]
pub struct Format {
    /// The version this build writes; at least 1.
    pub version: u64,
    /// Every top-level member of the current version.
    pub members: &'static [&'static str],
    /// The members a reader must know (see the module doc); each is also in `members`.
    pub critical: &'static [&'static str],
}

impl Format {
    /// The members of a stored document, ready for the derived deserializer of the current
    /// version: `v` and `critical` removed and, for version `N + 1`, the members this version
    /// does not know removed. The error says why the document cannot be read.
    pub fn read(&self, mut doc: Map<String, Value>) -> Result<Map<String, Value>, String> {
        let version = match doc.remove(VERSION_MEMBER) {
            None => 1,
            Some(v) => v.as_u64().filter(|&v| v >= 1).ok_or_else(|| format!("`v` is {v}, not a version (1, 2, …)"))?,
        };
        if version > self.version + 1 {
            return Err(format!("version {version} is newer than this build reads (at most {})", self.version + 1));
        }
        let critical: Vec<String> = match doc.remove(CRITICAL_MEMBER) {
            None => Vec::new(),
            Some(list) => serde_json::from_value(list).map_err(|_| "`critical` is not a list of names".to_owned())?,
        };
        if let Some(unknown) = critical.iter().find(|name| !self.members.contains(&name.as_str())) {
            return Err(format!("critical member `{unknown}` of version {version} is unknown to this build"));
        }
        if version == self.version + 1 {
            doc.retain(|name, _| self.members.contains(&name.as_str()));
        }
        Ok(doc)
    }

    /// The stored form of a document's members: `v` added from version 2 on, `critical`
    /// listing the critical members present.
    pub fn write(&self, mut doc: Map<String, Value>) -> Map<String, Value> {
        let present: Vec<Value> =
            self.critical.iter().filter(|name| doc.contains_key(**name)).map(|name| Value::from(*name)).collect();
        if !present.is_empty() {
            doc.insert(CRITICAL_MEMBER.to_owned(), Value::Array(present));
        }
        if self.version > 1 {
            doc.insert(VERSION_MEMBER.to_owned(), Value::from(self.version));
        }
        doc
    }
}

/// Reads a document through `format`; `members` is the derived deserializer of its current
/// version. Used by `stored_serde!`.
pub fn deserialize<'de, D, T>(
    format: &Format,
    deserializer: D,
    members: fn(Value) -> Result<T, serde_json::Error>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let doc = format.read(Map::deserialize(deserializer)?).map_err(D::Error::custom)?;
    members(Value::Object(doc)).map_err(D::Error::custom)
}

/// Reads a document from JSON text. While the format's version is 1 nearly every document has
/// no `v`, so `members` (the derived deserializer of the current version, which refuses `v`,
/// `critical` and unknown members) reads it first, in one pass; a document it refuses is read
/// again by way of `format` (the answer and any error are then those of [`deserialize`]).
/// Worth it on a hot path only: the way by `format` costs a second walk of the document.
pub fn from_slice<T: DeserializeOwned>(
    format: &Format,
    json: &[u8],
    members: impl FnOnce(&mut serde_json::Deserializer<SliceRead<'_>>) -> Result<T, serde_json::Error>,
) -> Result<T, serde_json::Error> {
    if format.version == 1 {
        let mut direct = serde_json::Deserializer::from_slice(json);
        if let Ok(doc) = members(&mut direct).and_then(|doc| direct.end().map(|()| doc)) {
            return Ok(doc);
        }
    }
    serde_json::from_slice(json)
}

/// Writes a document through `format`; `members` is what its derived serializer made of it.
/// Used by `stored_serde!`.
pub fn serialize<S: Serializer>(
    format: &Format,
    members: Result<Value, serde_json::Error>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match members.map_err(S::Error::custom)? {
        Value::Object(doc) => format.write(doc).serialize(serializer),
        _ => Err(S::Error::custom("a stored document serializes as a JSON object")),
    }
}

/// Implements `Serialize` and `Deserialize` for a type whose derived impls are inherent
/// (`#[serde(remote = "Self")]`), by way of its [`Format`].
macro_rules! stored_serde {
    ($type:ty, $format:expr) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                $crate::versioned::serialize(
                    &$format,
                    <$type>::serialize(self, serde_json::value::Serializer),
                    serializer,
                )
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $crate::versioned::deserialize(&$format, deserializer, |members| <$type>::deserialize(members))
            }
        }
    };
}
pub(crate) use stored_serde;

/// Test helpers for a stored type.
#[cfg(test)]
pub mod check {
    use super::*;

    /// `doc` serialized, with `extra` members added and `v` set to `version`.
    pub fn with_members<T: Serialize>(doc: &T, version: u64, extra: &[(&str, Value)]) -> Value {
        let mut json = serde_json::to_value(doc).unwrap();
        let map = json.as_object_mut().unwrap();
        map.extend(extra.iter().map(|(name, value)| ((*name).to_owned(), value.clone())));
        map.insert(VERSION_MEMBER.to_owned(), Value::from(version));
        json
    }

    /// The members of a full document (every optional member present) are exactly the
    /// format's, and the critical ones are among them.
    pub fn members_match<T: Serialize>(format: &Format, full: &T) {
        let json = serde_json::to_value(full).unwrap();
        let mut written: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        written.retain(|name| ![VERSION_MEMBER, CRITICAL_MEMBER].contains(name));
        let mut declared = format.members.to_vec();
        written.sort_unstable();
        declared.sort_unstable();
        assert_eq!(written, declared, "the format's members are those the type writes");
        assert!(format.critical.iter().all(|name| format.members.contains(name)));
    }

    /// The version rule for one document of type `T` (see the module doc).
    pub fn version_rule<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
        format: &Format,
        doc: &T,
        new_member: &str,
        value: Value,
    ) {
        let read = |json: Value| serde_json::from_value::<T>(json);
        let next = format.version + 1;
        let newer = with_members(doc, next, &[(new_member, value.clone())]);
        assert_eq!(&read(newer).expect("a newer version's unknown member is ignored"), doc);
        let critical =
            with_members(doc, next, &[(new_member, value.clone()), ("critical", Value::from(vec![new_member]))]);
        let refused = read(critical).expect_err("a critical unknown member is refused").to_string();
        assert!(refused.contains(new_member), "{refused}");
        let own = with_members(doc, format.version, &[(new_member, value.clone())]);
        assert!(read(own).is_err(), "an unknown member of the reader's own version is refused");
        assert!(read(with_members(doc, next + 1, &[])).is_err(), "two versions ahead is refused");
        assert!(read(with_members(doc, 0, &[])).is_err(), "0 is not a version");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields)]
    struct Doc {
        name: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        narrows: Vec<String>,
    }

    const DOC_V2: Format = Format { version: 2, members: &["name", "narrows"], critical: &["narrows"] };
    stored_serde!(Doc, DOC_V2);

    fn doc(narrows: &[&str]) -> Doc {
        Doc { name: "d".into(), narrows: narrows.iter().map(|s| (*s).to_owned()).collect() }
    }

    #[test]
    fn writers_write_their_version_and_the_critical_members_present() {
        assert_eq!(serde_json::to_value(doc(&[])).unwrap(), json!({"v": 2, "name": "d"}));
        assert_eq!(
            serde_json::to_value(doc(&["x"])).unwrap(),
            json!({"v": 2, "name": "d", "narrows": ["x"], "critical": ["narrows"]})
        );
    }

    #[test]
    fn version_1_is_written_without_v() {
        let v1 = Format { version: 1, ..DOC_V2 };
        let members = serde_json::from_value(json!({"name": "d"})).unwrap();
        assert_eq!(Value::Object(v1.write(members)), json!({"name": "d"}));
    }

    #[test]
    fn older_and_current_versions_read() {
        for json in [json!({"name": "d"}), json!({"v": 1, "name": "d"}), json!({"v": 2, "name": "d"})] {
            assert_eq!(serde_json::from_value::<Doc>(json).unwrap(), doc(&[]));
        }
        let own = serde_json::to_value(doc(&["x"])).unwrap();
        assert_eq!(serde_json::from_value::<Doc>(own).unwrap(), doc(&["x"]), "its own critical members are known");
    }

    #[test]
    fn the_version_rule() {
        check::version_rule(&DOC_V2, &doc(&["x"]), "later", json!({"any": ["value"]}));
        check::members_match(&DOC_V2, &doc(&["x"]));
    }

    #[test]
    fn malformed_versions_and_critical_lists_are_refused() {
        for json in [
            json!({"v": "2", "name": "d"}),
            json!({"v": -1, "name": "d"}),
            json!({"v": 1.5, "name": "d"}),
            json!({"v": 2, "name": "d", "critical": "narrows"}),
            json!({"v": 2, "name": "d", "critical": [1]}),
        ] {
            assert!(serde_json::from_value::<Doc>(json.clone()).is_err(), "{json}");
        }
    }
}
