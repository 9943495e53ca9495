//! The levels a limit can belong to, from the narrowest to the widest: a refusal names its level
//! (and the scope inside it: `rpm`, `spend_daily`, …) so a caller knows whose limit it met.
//!
//! * `end_user`: one end user of a key, named by the request header the tenant's server sets;
//! * `model`: the calls of a key to the models one pattern matches;
//! * `key`: every call of a key (the limits keys have always had);
//! * `project`: every key of a project together;
//! * `organisation`: every key of an organisation together.

use serde::{Deserialize, Serialize};

/// The level a limit belongs to; written in JSON as `end_user`, `model`, `key`, `project`,
/// `organisation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Level {
    EndUser,
    Model,
    Key,
    Project,
    Organisation,
}

impl Level {
    /// As written in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Level::EndUser => "end_user",
            Level::Model => "model",
            Level::Key => "key",
            Level::Project => "project",
            Level::Organisation => "organisation",
        }
    }
}
