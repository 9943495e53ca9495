//! Which models a key may call: an allow list or a block list of globs ([`crate::policy::glob`]).
//!
//! Globs match the model name exactly as the client sends it (case-sensitive), so block lists are
//! the weaker tool: a model added upstream later is callable until someone blocks it. Prefer
//! allow lists.

use crate::policy::glob::glob_match;
use serde::{Deserialize, Serialize};
use std::fmt;

/// `"all"` (the default: every model), `{"allow":[globs]}` or `{"block":[globs]}`; a glob's `*`
/// matches any run of characters. Lists are not empty and hold no empty glob.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ModelAccess {
    #[default]
    All,
    /// Only models matching one of these globs.
    Allow(Vec<String>),
    /// Every model except those matching one of these globs.
    Block(Vec<String>),
}

impl ModelAccess {
    pub fn is_all(&self) -> bool {
        *self == ModelAccess::All
    }

    pub fn permits(&self, model: &str) -> bool {
        let matches = |globs: &[String]| globs.iter().any(|glob| glob_match(glob, model));
        match self {
            ModelAccess::All => true,
            ModelAccess::Allow(globs) => matches(globs),
            ModelAccess::Block(globs) => !matches(globs),
        }
    }

    /// Lists must be non-empty (an empty allow list would silently refuse everything; disable
    /// the key instead) and hold no empty glob.
    pub fn validate(&self) -> Result<(), String> {
        let (list, globs) = match self {
            ModelAccess::All => return Ok(()),
            ModelAccess::Allow(globs) => ("allow", globs),
            ModelAccess::Block(globs) => ("block", globs),
        };
        if globs.is_empty() {
            Err(format!("models.{list} is empty"))
        } else if globs.iter().any(String::is_empty) {
            Err(format!("models.{list} holds an empty glob"))
        } else {
            Ok(())
        }
    }
}

/// For people: `all models`, `allowed: a, b`, `blocked: c`.
impl fmt::Display for ModelAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelAccess::All => f.write_str("all models"),
            ModelAccess::Allow(globs) => write!(f, "allowed: {}", globs.join(", ")),
            ModelAccess::Block(globs) => write!(f, "blocked: {}", globs.join(", ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(json: &str) -> ModelAccess {
        serde_json::from_str(json).unwrap()
    }

    /// (access JSON, model, permitted)
    const CASES: &[(&str, &str, bool)] = &[
        (r#""all""#, "anything", true),
        (r#"{"allow":["claude-*"]}"#, "claude-sonnet-4-5", true),
        (r#"{"allow":["claude-*"]}"#, "gpt-4o", false),
        (r#"{"allow":["claude-*"]}"#, "Claude-sonnet", false),
        (r#"{"allow":["gpt-4o","o3*"]}"#, "o3-mini", true),
        (r#"{"allow":["gpt-4o","o3*"]}"#, "gpt-4o-mini", false),
        (r#"{"allow":["*"]}"#, "x", true),
        (r#"{"block":["gpt-4*"]}"#, "gpt-4o", false),
        (r#"{"block":["gpt-4*"]}"#, "gpt-5", true),
        (r#"{"block":["*-preview","o1"]}"#, "gemini-2.5-pro-preview", false),
        (r#"{"block":["*-preview","o1"]}"#, "o1-mini", true),
    ];

    #[test]
    fn allow_and_block_globs() {
        for &(json, model, expected) in CASES {
            assert_eq!(access(json).permits(model), expected, "{json} {model}");
        }
    }

    #[test]
    fn validation() {
        assert!(access(r#""all""#).validate().is_ok());
        assert!(access(r#"{"allow":["a"]}"#).validate().is_ok());
        assert_eq!(access(r#"{"allow":[]}"#).validate().unwrap_err(), "models.allow is empty");
        assert_eq!(access(r#"{"block":["a",""]}"#).validate().unwrap_err(), "models.block holds an empty glob");
        assert!(serde_json::from_str::<ModelAccess>(r#"{"allow":["a"],"block":["b"]}"#).is_err());
        assert!(serde_json::from_str::<ModelAccess>(r#"{"deny":["a"]}"#).is_err());
    }

    #[test]
    fn describes_itself() {
        assert_eq!(access(r#"{"allow":["claude-*","gemini-*"]}"#).to_string(), "allowed: claude-*, gemini-*");
        assert_eq!(access(r#"{"block":["gpt-4*"]}"#).to_string(), "blocked: gpt-4*");
    }
}
