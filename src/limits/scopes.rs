//! The scopes inside a key, below its own limits: a model pattern's limits and each end user's.
//!
//! * A call to a model is counted in the ledger of the FIRST pattern of `model_limits` that
//!   matches the model name as the client sent it (globs as in model access,
//!   [`crate::policy::glob`]), and ALSO in the key's own ledger: the key's limits bound every call,
//!   a pattern's are extra, narrower limits for its models. A model no pattern matches (and a
//!   call without a model) counts in the key's ledger only.
//! * `end_user_limits` apply to each end user separately (one ledger each), named by the request
//!   header [`END_USER_HEADER`](crate::policy::end_user::END_USER_HEADER); every call of an end
//!   user also counts in the key's ledger and in its model pattern's.
//!
//! [`KeyScope`] names one of these ledgers (the key's, a pattern's, an end user's), as a refusal
//! names the limit it met.

use super::config::Limits;
use super::level::Level;
use crate::policy::glob::glob_match;
use serde::{Deserialize, Serialize};

/// The most model patterns a key may have.
pub const MAX_MODEL_PATTERNS: usize = 16;
/// The longest model pattern, in bytes.
pub const MAX_PATTERN_BYTES: usize = 128;

/// Extra limits for the calls of a key to the models `pattern` matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ModelLimits {
    /// A model glob (`*` matches any run of characters), matched against the model name as the
    /// client sends it.
    pub pattern: String,
    pub limits: Limits,
}

/// The limits of the scopes inside a key: per model pattern and per end user. Empty for most keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeLimits {
    /// In order: a call counts in the first pattern that matches its model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub model_limits: Vec<ModelLimits>,
    /// Limits each end user has separately; empty: end users are not tracked.
    #[serde(default, skip_serializing_if = "Limits::is_empty")]
    pub end_user_limits: Limits,
}

impl ScopeLimits {
    pub fn is_empty(&self) -> bool {
        self.model_limits.is_empty() && self.end_user_limits.is_empty()
    }

    /// The first pattern matching `model`, if any.
    pub fn for_model(&self, model: Option<&str>) -> Option<&ModelLimits> {
        ScopeLimits::for_model_in(&self.model_limits, model)
    }

    /// The first of `model_limits` matching `model`, if any.
    pub fn for_model_in<'a>(model_limits: &'a [ModelLimits], model: Option<&str>) -> Option<&'a ModelLimits> {
        let model = model?;
        model_limits.iter().find(|scope| glob_match(&scope.pattern, model))
    }

    /// Whether calls must name their end user (the key has end-user limits).
    pub fn tracks_end_users(&self) -> bool {
        !self.end_user_limits.is_empty()
    }
}

/// One ledger of a key: its own, a model pattern's, or an end user's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyScope {
    Key,
    Model(String),
    EndUser(String),
}

impl KeyScope {
    pub fn level(&self) -> Level {
        match self {
            KeyScope::Key => Level::Key,
            KeyScope::Model(_) => Level::Model,
            KeyScope::EndUser(_) => Level::EndUser,
        }
    }

    /// For people, after a limit's name: ` for models matching 'o3*'`, ` for end user 'u-1'`;
    /// empty for the key's own limits.
    pub fn describe(&self) -> String {
        match self {
            KeyScope::Key => String::new(),
            KeyScope::Model(pattern) => format!(" for models matching '{pattern}'"),
            KeyScope::EndUser(id) => format!(" for end user '{id}'"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU64;

    fn pattern(pattern: &str, rpm: u64) -> ModelLimits {
        ModelLimits { pattern: pattern.into(), limits: Limits { rpm: NonZeroU64::new(rpm), ..Limits::default() } }
    }

    #[test]
    fn the_first_matching_pattern_counts() {
        let scopes = ScopeLimits { model_limits: vec![pattern("o3-mini", 1), pattern("o3*", 2)], ..Default::default() };
        assert_eq!(scopes.for_model(Some("o3-mini")).map(|m| m.pattern.as_str()), Some("o3-mini"));
        assert_eq!(scopes.for_model(Some("o3-pro")).map(|m| m.pattern.as_str()), Some("o3*"));
        assert_eq!(scopes.for_model(Some("gpt-4o")), None);
        assert_eq!(scopes.for_model(None), None);
        assert!(!scopes.tracks_end_users() && !scopes.is_empty());
        assert!(ScopeLimits::default().is_empty());
    }

    #[test]
    fn scopes_describe_themselves() {
        assert_eq!(KeyScope::Key.describe(), "");
        assert_eq!(KeyScope::Model("o3*".into()).describe(), " for models matching 'o3*'");
        assert_eq!(KeyScope::EndUser("u-1".into()).level(), Level::EndUser);
    }
}
