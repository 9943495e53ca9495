//! Where a team key is read from: the request header each family's clients send it in.
//!
//! | family    | headers, in order                        |
//! |-----------|------------------------------------------|
//! | OpenAI    | `Authorization: Bearer <key>`            |
//! | Anthropic | `x-api-key`, then `Authorization: Bearer` |
//! | Gemini    | `x-goog-api-key`, then `Authorization: Bearer` |
//!
//! The family's native header wins when both are sent. Keys are never read from the URL
//! (Gemini's `?key=`): URLs end up in access logs, proxy logs, browser history and `Referer`
//! headers, so a key passed there must be treated as leaked; refusing it keeps clients from
//! getting into the habit.

use crate::family::Family;

/// The team key of a request, or `None` if absent or empty.
///
/// `header` looks a header up by its lower-case name (as `Headers::get` does, case-insensitively).
/// The Bearer scheme is matched case-insensitively; surrounding whitespace is trimmed.
pub fn extract_key<'a>(family: Family, header: impl Fn(&str) -> Option<&'a str>) -> Option<&'a str> {
    let native = match family {
        Family::OpenAi => None,
        Family::Anthropic => Some("x-api-key"),
        Family::Gemini => Some("x-goog-api-key"),
    };
    native
        .and_then(|name| header(name).map(str::trim).filter(|key| !key.is_empty()))
        .or_else(|| header("authorization").and_then(bearer_token))
}

/// The token of an `Authorization: Bearer <token>` value.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(char::is_whitespace)?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Family::*;

    /// (family, headers, expected key)
    type Case = (Family, &'static [(&'static str, &'static str)], Option<&'static str>);

    const CASES: &[Case] = &[
        (OpenAi, &[("authorization", "Bearer tk-1")], Some("tk-1")),
        (OpenAi, &[("authorization", "bearer tk-1")], Some("tk-1")),
        (OpenAi, &[("authorization", "BEARER   tk-1  ")], Some("tk-1")),
        (OpenAi, &[("authorization", "  Bearer\ttk-1")], Some("tk-1")),
        (OpenAi, &[("authorization", "Bearer")], None),
        (OpenAi, &[("authorization", "Bearer   ")], None),
        (OpenAi, &[("authorization", "Basic dXNlcjpwYXNz")], None),
        (OpenAi, &[("authorization", "Bearertk-1")], None),
        (OpenAi, &[("authorization", "tk-1")], None),
        (OpenAi, &[("authorization", "")], None),
        (OpenAi, &[("x-api-key", "tk-1")], None),
        (OpenAi, &[("x-goog-api-key", "tk-1")], None),
        (OpenAi, &[], None),
        (Anthropic, &[("x-api-key", "tk-2")], Some("tk-2")),
        (Anthropic, &[("x-api-key", " tk-2 ")], Some("tk-2")),
        (Anthropic, &[("authorization", "Bearer tk-2")], Some("tk-2")),
        (Anthropic, &[("x-api-key", "tk-native"), ("authorization", "Bearer tk-bearer")], Some("tk-native")),
        (Anthropic, &[("x-api-key", ""), ("authorization", "Bearer tk-bearer")], Some("tk-bearer")),
        (Anthropic, &[("x-goog-api-key", "tk-2")], None),
        (Anthropic, &[], None),
        (Gemini, &[("x-goog-api-key", "tk-3")], Some("tk-3")),
        (Gemini, &[("authorization", "Bearer tk-3")], Some("tk-3")),
        (Gemini, &[("x-goog-api-key", "tk-native"), ("authorization", "Bearer tk-bearer")], Some("tk-native")),
        (Gemini, &[("x-goog-api-key", "  ")], None),
        (Gemini, &[("x-api-key", "tk-3")], None),
        (Gemini, &[], None),
    ];

    #[test]
    fn key_extraction() {
        for &(family, headers, expected) in CASES {
            let lookup = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
            assert_eq!(extract_key(family, lookup), expected, "{family:?} {headers:?}");
        }
    }
}
