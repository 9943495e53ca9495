//! The API families the gateway fronts. Each family has its own path prefix, key header and
//! usage format; everything family-specific is keyed on this one enum.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// OpenAI-compatible, under `/openai/v1`; key in `Authorization: Bearer`.
    #[serde(rename = "openai")]
    OpenAi,
    /// Anthropic-compatible, under `/anthropic/v1`; key in `x-api-key` (Bearer accepted).
    Anthropic,
    /// Gemini-compatible, under `/gemini/v1beta`; key in Bearer or `x-goog-api-key`.
    Gemini,
}
