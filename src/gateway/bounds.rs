//! Upper bounds on what one call can be billed, in tokens: the reservation is made of them.
//!
//! - **Output**: the cap the gateway sends upstream ([`OutputCap`]), per choice, times the number
//!   of choices (`n`, `best_of`, `candidateCount`). OpenAI reasoning tokens are inside
//!   `max_completion_tokens` / `max_output_tokens`, and Anthropic's thinking `budget_tokens` is
//!   inside `max_tokens`, so the cap bounds them. Gemini's thinking is billed as output but not
//!   covered by `maxOutputTokens` on every model, so a Gemini call reserves its
//!   `thinkingConfig.thinkingBudget` on top, or [`GEMINI_MAX_THINKING_TOKENS`] when the budget is
//!   absent or dynamic (`-1`); a client lowers that reservation by sending its own budget.
//! - **Input**: text is never more tokens than its UTF-8 bytes (every token of these tokenizers
//!   covers at least one byte), and a JSON body holds every string of the prompt in at least as
//!   many bytes (escapes only lengthen it), with at least as many framing bytes per message as
//!   the provider adds framing tokens. So the body's bytes bound its text, less the bytes of
//!   inline images, which count at their family's published maximum per image
//!   ([`image_tokens_max`]) instead; plus [`REQUEST_OVERHEAD_TOKENS`] and
//!   [`TOOL_OVERHEAD_TOKENS`] per tool for the system prompts providers add for tools.
//! - Token windows reserve a tighter estimate (a quarter of those bytes), so a window can be
//!   passed by at most ¾ of the text bytes of the calls in flight until they settle; spend caps
//!   reserve the bound.

use crate::family::Family;

/// Output tokens per choice sent and reserved when neither the client nor the key sets a cap.
pub const DEFAULT_MAX_OUTPUT_TOKENS: u64 = 4096;

/// Thinking tokens reserved per Gemini candidate without a thinking budget: the largest budget
/// a Gemini model accepts (2.5 Pro).
pub const GEMINI_MAX_THINKING_TOKENS: u64 = 32_768;

/// Input tokens a provider may add to any request (chat framing, the reply's priming).
pub const REQUEST_OVERHEAD_TOKENS: u64 = 512;

/// Input tokens a provider may add per tool definition beyond its JSON (Anthropic's tool-use
/// system prompt is at most ~500 tokens, its built-in client tools at most ~750).
pub const TOOL_OVERHEAD_TOKENS: u64 = 1_024;

/// The most input tokens one image can be billed, whatever its size or detail:
/// - OpenAI: `gpt-4o-mini` at high detail, 2,833 + 8 tiles × 5,667 = 48,169; every other model at
///   most 10,000 32-px patches × its multiplier (≤ 2.46) < 24,600 (`detail: original`).
/// - Anthropic: images are scaled to fit 1,568 px (~1,600 tokens), 2,576 px on the newest models
///   (~4,784 tokens): 4,800.
/// - Gemini: 258 tokens per 768-px tile; no maximum tile count is published, 16 tiles assumed
///   (4,128, above Gemini 3's highest media resolution).
pub fn image_tokens_max(family: Family, model: Option<&str>) -> u64 {
    match family {
        Family::OpenAi if model.is_some_and(|m| m.starts_with("gpt-4o-mini")) => 48_169,
        Family::OpenAi => 24_600,
        Family::Anthropic => 4_800,
        Family::Gemini => 16 * 258,
    }
}

/// The output cap of a call: what is sent upstream per choice, and what is reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputCap {
    /// The cap the client sent (per choice), if any; it is forwarded as sent.
    pub client: Option<u64>,
    /// The cap sent when the client sent none: [`DEFAULT_MAX_OUTPUT_TOKENS`] until the key's
    /// `default_max_tokens` replaces it ([`OutputCap::with_key_default`]).
    pub default: u64,
    /// Choices the upstream generates and bills (≥ 1).
    pub choices: u64,
    /// Thinking tokens per choice that the cap does not cover (Gemini), else 0.
    pub thinking: u64,
}

impl OutputCap {
    pub fn new(client: Option<u64>, choices: Option<u64>, thinking: u64) -> OutputCap {
        OutputCap { client, default: DEFAULT_MAX_OUTPUT_TOKENS, choices: choices.unwrap_or(1).max(1), thinking }
    }

    /// The cap with the key's default output cap, if it has one. A tiny default (even 1) is
    /// harmless: it is sent upstream, so the answer is cut there, not billed beyond it.
    pub fn with_key_default(self, key_default: Option<u64>) -> OutputCap {
        OutputCap { default: key_default.unwrap_or(self.default), ..self }
    }

    /// The cap sent upstream, per choice.
    pub fn per_choice(&self) -> u64 {
        self.client.unwrap_or(self.default)
    }

    /// Output tokens reserved: (cap + thinking) × choices.
    pub fn reserved(&self) -> u64 {
        self.per_choice().saturating_add(self.thinking).saturating_mul(self.choices)
    }
}

/// What the input of a call is made of, for its bound and estimate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InputParts {
    /// Body bytes outside inline images.
    pub text_bytes: u64,
    pub images: u64,
    pub tools: u64,
}

impl InputParts {
    /// An upper bound on the input tokens (see the module doc).
    pub fn bound(&self, image_max: u64) -> u64 {
        self.text_bytes
            .saturating_add(self.images.saturating_mul(image_max))
            .saturating_add(self.tools.saturating_mul(TOOL_OVERHEAD_TOKENS))
            .saturating_add(REQUEST_OVERHEAD_TOKENS)
    }

    /// The estimate token windows reserve: text at four bytes a token, the rest as bounded.
    pub fn estimate(&self, image_max: u64) -> u64 {
        let text_bound = self.text_bytes;
        self.bound(image_max) - text_bound + text_bound.div_ceil(4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_cap_multiplies_choices_and_adds_thinking() {
        let cap = OutputCap::new(None, Some(3), 0);
        assert_eq!(cap.reserved(), 3 * DEFAULT_MAX_OUTPUT_TOKENS);
        assert_eq!(cap.with_key_default(Some(100)).reserved(), 300);
        assert_eq!(OutputCap::new(Some(10), Some(2), 5).with_key_default(Some(100)).reserved(), 30);
        assert_eq!(OutputCap::new(Some(10), Some(0), 0).reserved(), 10);
        assert_eq!(OutputCap::new(Some(u64::MAX), Some(2), 1).reserved(), u64::MAX);
    }

    #[test]
    fn cjk_text_is_bounded_by_its_bytes() {
        let text = "漢".repeat(1000);
        let body = format!(r#"{{"messages":[{{"role":"user","content":"{text}"}}]}}"#);
        let parts = InputParts { text_bytes: body.len() as u64, ..InputParts::default() };
        // No tokenizer makes more tokens than characters, nor than bytes.
        assert!(parts.bound(0) >= text.chars().count() as u64);
        assert!(parts.bound(0) >= text.len() as u64);
        assert!(parts.estimate(0) < parts.bound(0));
    }

    #[test]
    fn images_count_at_their_maximum() {
        let parts = InputParts { text_bytes: 100, images: 2, tools: 1 };
        let max = image_tokens_max(Family::Anthropic, None);
        assert_eq!(parts.bound(max), 100 + 2 * 4_800 + TOOL_OVERHEAD_TOKENS + REQUEST_OVERHEAD_TOKENS);
        assert_eq!(parts.estimate(max), 25 + 2 * 4_800 + TOOL_OVERHEAD_TOKENS + REQUEST_OVERHEAD_TOKENS);
        assert_eq!(image_tokens_max(Family::OpenAi, Some("gpt-4o-mini-2024-07-18")), 48_169);
    }
}
