//! A project as the registry holds it: a name, the boundary its keys stay within (its owners
//! narrow it), the ceiling that boundary stays within (its Admins set it), and members.
//!
//! Projects stored before ceilings existed have no `ceiling`: they read their `boundary` as
//! their ceiling, so the boundary as it stood (an Admin's, or one its owners narrowed) is the
//! most the owners can give back; an Admin can raise it.

use super::boundary::Boundary;
use super::membership::ProjectRole;
use crate::versioned::{self, Format};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

// Stored as a versioned document ([`PROJECT_FORMAT`]), and shown as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Project {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Narrows the organisation's boundary for this project's keys; always within `ceiling`
    /// when written.
    #[serde(default)]
    pub boundary: Boundary,
    /// The widest `boundary` may be; only Admins change it.
    pub ceiling: Boundary,
    pub created_at: u64,
    pub created_by: String,
}

/// The stored format of a project's row: version 1 (projects stored before ceilings existed
/// have none: they read with their boundary as ceiling).
pub const PROJECT_FORMAT: Format = Format {
    version: 1,
    members: &["id", "name", "description", "boundary", "ceiling", "created_at", "created_by"],
    critical: &[],
};

impl Serialize for Project {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        versioned::serialize(&PROJECT_FORMAT, Project::serialize(self, serde_json::value::Serializer), serializer)
    }
}

impl<'de> Deserialize<'de> for Project {
    /// Reads a stored project through its format; one without `ceiling` gets its `boundary` as
    /// ceiling.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Project, D::Error> {
        let doc = Map::<String, Value>::deserialize(deserializer)?;
        let mut doc = PROJECT_FORMAT.read(doc).map_err(serde::de::Error::custom)?;
        if !doc.contains_key("ceiling") {
            let boundary = doc.get("boundary").cloned().unwrap_or_else(|| Value::Object(Map::new()));
            doc.insert("ceiling".to_owned(), boundary);
        }
        Project::deserialize(Value::Object(doc)).map_err(serde::de::Error::custom)
    }
}

/// One member of a project, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Member {
    pub principal: String,
    pub name: String,
    pub role: ProjectRole,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::versioned::check;
    use serde_json::json;

    #[test]
    fn a_project_stored_before_ceilings_reads_its_boundary_as_its_ceiling() {
        let stored = json!({"id": "prj_1", "name": "p", "boundary": {"limits": {"rpm": 50}},
            "created_at": 1, "created_by": "admin"});
        let project: Project = serde_json::from_value(stored).unwrap();
        assert_eq!(project.ceiling, project.boundary);
        assert_eq!(project.ceiling.rules.limits.rpm.map(|n| n.get()), Some(50));
        let bare: Project =
            serde_json::from_value(json!({"id": "prj_2", "name": "p", "created_at": 1, "created_by": "a"})).unwrap();
        assert_eq!(bare.ceiling, Boundary::default(), "no boundary: no ceiling");
    }

    #[test]
    fn the_row_is_a_versioned_document() {
        let project: Project = serde_json::from_value(json!({"id": "prj_1", "name": "p", "description": "d",
            "boundary": {"limits": {"rpm": 5}}, "ceiling": {"limits": {"rpm": 50}},
            "created_at": 1, "created_by": "admin"}))
        .unwrap();
        check::members_match(&PROJECT_FORMAT, &project);
        check::version_rule(&PROJECT_FORMAT, &project, "later", json!("x"));
    }

    #[test]
    fn projects_round_trip_with_their_ceiling() {
        let project: Project = serde_json::from_value(json!({"id": "prj_1", "name": "p",
            "boundary": {"limits": {"rpm": 5}}, "ceiling": {"limits": {"rpm": 50}},
            "created_at": 1, "created_by": "admin"}))
        .unwrap();
        assert_eq!(project.ceiling.rules.limits.rpm.map(|n| n.get()), Some(50));
        let again: Project = serde_json::from_value(serde_json::to_value(&project).unwrap()).unwrap();
        assert_eq!(again, project);
    }
}
