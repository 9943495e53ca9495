//! The plaintext of an upstream credential, held only between its validation and its sealing
//! (admin path) or between its opening and the upstream header (request path).
//!
//! [`Secret`] has no `Serialize`, no `Clone`, and its `Debug` and `Display` print
//! `[redacted]`: the only way to the text is [`Secret::expose`], named so it stands out in
//! review.

use std::fmt;

/// Secrets shorter than this are masked entirely: showing seven characters of a short secret
/// would show most of it.
const MIN_CHARS_FOR_ENDS: usize = 20;
const SHOWN_HEAD: usize = 3;
const SHOWN_TAIL: usize = 4;
const ELLIPSIS: &str = "…";

/// A credential's plaintext. Invariant: printable ASCII (it is validated before it is built,
/// or was validated before it was sealed).
pub struct Secret(String);

impl Secret {
    /// Wraps text already checked by the caller (see the invariant).
    pub(super) fn new(text: String) -> Secret {
        Secret(text)
    }

    /// The plaintext, for the one place that needs it: the upstream request's header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The form shown to admins: the first 3 and last 4 characters, `sk-…abcd`; `…` alone for
    /// a secret shorter than 20 characters.
    pub fn mask(&self) -> String {
        let text = self.0.as_str();
        if text.len() < MIN_CHARS_FOR_ENDS {
            return ELLIPSIS.to_owned();
        }
        // ASCII by invariant, so byte offsets are character boundaries.
        format!("{}{ELLIPSIS}{}", &text[..SHOWN_HEAD], &text[text.len() - SHOWN_TAIL..])
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_show_three_and_four_characters_of_long_secrets_only() {
        let cases = [
            ("sk-proj-0123456789abcdefWXYZ", "sk-…WXYZ"),
            ("abcdefghijklmnopqrst", "abc…qrst"),
            ("abcdefghijklmnopqrs", "…"),
            ("x", "…"),
        ];
        for (secret, masked) in cases {
            assert_eq!(Secret::new(secret.to_owned()).mask(), masked, "{secret}");
        }
    }

    #[test]
    fn debug_and_display_hide_the_text() {
        let secret = Secret::new("sk-live-very-secret-value".to_owned());
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(secret.expose(), "sk-live-very-secret-value");
    }
}
