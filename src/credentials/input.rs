//! What an organisation's Admin sends to store an upstream credential, and its validation.
//!
//! `{"provider": "openai" | "anthropic" | "gemini" | "openai_compatible", "secret": "…",
//! "base_url": "https://…"}`; `base_url` is required for `openai_compatible` and an optional
//! override for the others. Unknown fields are refused. A refusal is 400 `invalid_credential`
//! and names the field and the rule; it never repeats the value (a secret pasted into the wrong
//! field, or a URL carrying a password, must not come back in an answer or a log line).

use super::secret::Secret;
use crate::error::{ApiError, Code};
use crate::family::Family;
use serde::{Deserialize, Serialize};
use std::fmt;
use url::Url;

const MAX_SECRET_CHARS: usize = 512;
const MAX_BASE_URL_CHARS: usize = 2048;
const MAX_NAME_CHARS: usize = 64;
/// The hosts plain `http` may reach under [`BaseUrlPolicy::AllowInsecureLocal`].
const LOCAL_HOSTS: [&str; 2] = ["127.0.0.1", "localhost"];

/// The upstream a credential is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum Provider {
    #[serde(rename = "openai")]
    OpenAi,
    #[serde(rename = "anthropic")]
    Anthropic,
    #[serde(rename = "gemini")]
    Gemini,
    /// Any upstream speaking the OpenAI API at its own `base_url`.
    #[serde(rename = "openai_compatible")]
    OpenAiCompatible,
}

impl Provider {
    /// The API family its upstream speaks.
    pub fn family(self) -> Family {
        match self {
            Provider::OpenAi | Provider::OpenAiCompatible => Family::OpenAi,
            Provider::Anthropic => Family::Anthropic,
            Provider::Gemini => Family::Gemini,
        }
    }

    /// Where a credential without its own `base_url` is sent: the provider's public API (its
    /// family's base, as routing targets write it). `None` for `openai_compatible`, whose
    /// credentials always carry a base URL.
    pub fn public_base_url(self) -> Option<&'static str> {
        match self {
            Provider::OpenAi => Some("https://api.openai.com/v1"),
            Provider::Anthropic => Some("https://api.anthropic.com/v1"),
            Provider::Gemini => Some("https://generativelanguage.googleapis.com/v1beta"),
            Provider::OpenAiCompatible => None,
        }
    }

    /// The name it is written with (the same as its JSON form).
    pub fn name(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Gemini => "gemini",
            Provider::OpenAiCompatible => "openai_compatible",
        }
    }
}

/// Which base URLs are accepted besides `https` ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseUrlPolicy {
    /// Production: `https` only.
    HttpsOnly,
    /// Local development and tests: also `http://127.0.0.1` and `http://localhost`, any port.
    AllowInsecureLocal,
}

/// The request body, as parsed; [`CredentialInput::validate`] makes it a [`ValidCredential`].
#[derive(Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CredentialInput {
    pub provider: Provider,
    pub secret: String,
    #[serde(default)]
    pub base_url: Option<String>,
}

/// A credential whose every field passed validation: the secret 1 to 512 printable ASCII
/// characters without whitespace; the base URL (present for `openai_compatible`) absolute,
/// `https` (or local `http` where allowed), without user info, query or fragment, and without
/// a trailing `/`.
pub struct ValidCredential {
    pub(super) provider: Provider,
    pub(super) secret: Secret,
    pub(super) base_url: Option<String>,
}

fn invalid(field: &str, rule: &str) -> ApiError {
    ApiError::new(Code::InvalidCredential, format!("{field}: {rule}"))
}

impl CredentialInput {
    pub fn validate(self, policy: BaseUrlPolicy) -> Result<ValidCredential, ApiError> {
        check_secret(&self.secret)?;
        let base_url = match (self.base_url, self.provider) {
            (None, Provider::OpenAiCompatible) => {
                return Err(invalid("base_url", "is required for provider openai_compatible"))
            }
            (None, _) => None,
            (Some(url), _) => Some(check_base_url(&url, policy)?),
        };
        Ok(ValidCredential { provider: self.provider, secret: Secret::new(self.secret), base_url })
    }
}

fn check_secret(secret: &str) -> Result<(), ApiError> {
    if secret.is_empty() {
        return Err(invalid("secret", "must not be empty"));
    }
    if secret.len() > MAX_SECRET_CHARS {
        return Err(invalid("secret", "must be at most 512 characters"));
    }
    if !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid("secret", "must be printable ASCII without whitespace"));
    }
    Ok(())
}

/// The base URL in its stored form (the `url` crate's serialization without a trailing `/`).
pub fn check_base_url(text: &str, policy: BaseUrlPolicy) -> Result<String, ApiError> {
    if text.len() > MAX_BASE_URL_CHARS {
        return Err(invalid("base_url", "must be at most 2048 characters"));
    }
    let url = Url::parse(text).map_err(|_| invalid("base_url", "must be an absolute URL"))?;
    let local_http = policy == BaseUrlPolicy::AllowInsecureLocal
        && url.scheme() == "http"
        && url.host_str().is_some_and(|host| LOCAL_HOSTS.contains(&host));
    if url.scheme() != "https" && !local_http {
        return Err(match policy {
            BaseUrlPolicy::HttpsOnly => invalid("base_url", "must use https"),
            BaseUrlPolicy::AllowInsecureLocal => {
                invalid("base_url", "must use https (or http to 127.0.0.1 or localhost)")
            }
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("base_url", "must not carry a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("base_url", "must not have a query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// A credential's name (its id within the organisation): 1 to 64 characters of `a-z 0-9 _ -`.
/// It is bound into the sealed value, so it is not renamed: a new name is a new credential.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-';
    if !(1..=MAX_NAME_CHARS).contains(&name.len()) || !name.bytes().all(allowed) {
        return Err(invalid("name", "must be 1 to 64 characters of a-z 0-9 _ -"));
    }
    Ok(())
}

/// The provider and whether a base URL was sent; the secret and the unchecked URL (which may
/// hold a password) are left out.
impl fmt::Debug for CredentialInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialInput")
            .field("provider", &self.provider)
            .field("secret", &"[redacted]")
            .field("has_base_url", &self.base_url.is_some())
            .finish()
    }
}

impl fmt::Debug for ValidCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidCredential")
            .field("provider", &self.provider)
            .field("secret", &self.secret)
            .field("base_url", &self.base_url)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BaseUrlPolicy::*;

    const KEY: &str = "sk-proj-0123456789abcdefghijWXYZ";

    fn input(provider: Provider, secret: &str, base_url: Option<&str>) -> CredentialInput {
        CredentialInput { provider, secret: secret.to_owned(), base_url: base_url.map(str::to_owned) }
    }

    /// (provider, secret, base_url, policy, expected: Ok(stored base_url) or Err(message)).
    type Row =
        (Provider, &'static str, Option<&'static str>, BaseUrlPolicy, Result<Option<&'static str>, &'static str>);

    #[rustfmt::skip]
    const ROWS: &[Row] = &[
        // Accepted.
        (Provider::OpenAi, KEY, None, HttpsOnly, Ok(None)),
        (Provider::Anthropic, "x", None, HttpsOnly, Ok(None)),
        (Provider::Gemini, KEY, Some("https://eu.example.com/v1beta/"), HttpsOnly, Ok(Some("https://eu.example.com/v1beta"))),
        (Provider::OpenAiCompatible, KEY, Some("https://LLM.example.com"), HttpsOnly, Ok(Some("https://llm.example.com"))),
        (Provider::OpenAiCompatible, KEY, Some("http://127.0.0.1:8787/v1"), AllowInsecureLocal, Ok(Some("http://127.0.0.1:8787/v1"))),
        (Provider::OpenAiCompatible, KEY, Some("http://localhost:9000"), AllowInsecureLocal, Ok(Some("http://localhost:9000"))),
        // The secret: non-empty, bounded, printable ASCII without whitespace.
        (Provider::OpenAi, "", None, HttpsOnly, Err("secret: must not be empty")),
        (Provider::OpenAi, LONG_SECRET, None, HttpsOnly, Err("secret: must be at most 512 characters")),
        (Provider::OpenAi, "sk-abc def", None, HttpsOnly, Err("secret: must be printable ASCII without whitespace")),
        (Provider::OpenAi, "sk-abc\n", None, HttpsOnly, Err("secret: must be printable ASCII without whitespace")),
        (Provider::OpenAi, "sk-abc\t", None, HttpsOnly, Err("secret: must be printable ASCII without whitespace")),
        (Provider::OpenAi, "sk-\u{7}abc", None, HttpsOnly, Err("secret: must be printable ASCII without whitespace")),
        (Provider::OpenAi, "sk-ébc", None, HttpsOnly, Err("secret: must be printable ASCII without whitespace")),
        // The base URL: required for openai_compatible.
        (Provider::OpenAiCompatible, KEY, None, HttpsOnly, Err("base_url: is required for provider openai_compatible")),
        // Bounded, absolute.
        (Provider::OpenAi, KEY, Some(LONG_URL), HttpsOnly, Err("base_url: must be at most 2048 characters")),
        (Provider::OpenAi, KEY, Some(""), HttpsOnly, Err("base_url: must be an absolute URL")),
        (Provider::OpenAi, KEY, Some("/v1"), HttpsOnly, Err("base_url: must be an absolute URL")),
        (Provider::OpenAi, KEY, Some("https://"), HttpsOnly, Err("base_url: must be an absolute URL")),
        // https, local http only where allowed.
        (Provider::OpenAi, KEY, Some("http://api.example.com"), HttpsOnly, Err("base_url: must use https")),
        (Provider::OpenAi, KEY, Some("http://127.0.0.1:8787"), HttpsOnly, Err("base_url: must use https")),
        (Provider::OpenAi, KEY, Some("ftp://api.example.com"), HttpsOnly, Err("base_url: must use https")),
        (Provider::OpenAi, KEY, Some("http://api.example.com"), AllowInsecureLocal, Err("base_url: must use https (or http to 127.0.0.1 or localhost)")),
        (Provider::OpenAi, KEY, Some("http://127.0.0.2"), AllowInsecureLocal, Err("base_url: must use https (or http to 127.0.0.1 or localhost)")),
        (Provider::OpenAi, KEY, Some("http://localhost.example.com"), AllowInsecureLocal, Err("base_url: must use https (or http to 127.0.0.1 or localhost)")),
        // No user info, query or fragment.
        (Provider::OpenAi, KEY, Some("https://user@api.example.com"), HttpsOnly, Err("base_url: must not carry a user name or password")),
        (Provider::OpenAi, KEY, Some("https://user:hunter2@api.example.com"), HttpsOnly, Err("base_url: must not carry a user name or password")),
        (Provider::OpenAi, KEY, Some("https://:hunter2@api.example.com"), HttpsOnly, Err("base_url: must not carry a user name or password")),
        (Provider::OpenAi, KEY, Some("https://api.example.com/v1?key=hunter2"), HttpsOnly, Err("base_url: must not have a query or fragment")),
        (Provider::OpenAi, KEY, Some("https://api.example.com/v1?"), HttpsOnly, Err("base_url: must not have a query or fragment")),
        (Provider::OpenAi, KEY, Some("https://api.example.com/v1#hunter2"), HttpsOnly, Err("base_url: must not have a query or fragment")),
    ];

    const LONG_SECRET: &str = ascii(&[b'a'; 513]);
    /// Refused for its length before it is parsed.
    const LONG_URL: &str = ascii(&[b'a'; 2049]);

    const fn ascii(bytes: &'static [u8]) -> &'static str {
        match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) => panic!("not UTF-8"),
        }
    }

    #[test]
    fn validation_table() {
        for &(provider, secret, base_url, policy, expected) in ROWS {
            let row = format!("{provider:?} {:?} {base_url:?} {policy:?}", &secret[..secret.len().min(20)]);
            match (input(provider, secret, base_url).validate(policy), expected) {
                (Ok(valid), Ok(stored)) => {
                    assert_eq!(valid.provider, provider, "{row}");
                    assert_eq!(valid.secret.expose(), secret, "{row}");
                    assert_eq!(valid.base_url.as_deref(), stored, "{row}");
                }
                (Err(error), Err(message)) => {
                    assert_eq!(
                        (error.status(), error.code().as_str(), error.message.as_str()),
                        (400, "invalid_credential", message)
                    );
                    assert!(!error.message.contains("hunter2"), "{row}");
                }
                (got, _) => panic!("{row}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn names_are_short_lowercase_identifiers() {
        for good in ["openai", "openai-prod_2", &"a".repeat(64)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "OpenAI", "open ai", "a/b", "é", &"a".repeat(65)] {
            let error = check_name(bad).expect_err(bad);
            assert_eq!(
                (error.code().as_str(), error.message.as_str()),
                ("invalid_credential", "name: must be 1 to 64 characters of a-z 0-9 _ -")
            );
        }
    }

    #[test]
    fn bodies_parse_and_refuse_unknown_fields() {
        let parsed: CredentialInput =
            serde_json::from_str(r#"{"provider":"openai_compatible","secret":"k","base_url":"https://x.example"}"#)
                .unwrap();
        assert_eq!(
            (parsed.provider, parsed.base_url.as_deref()),
            (Provider::OpenAiCompatible, Some("https://x.example"))
        );
        assert!(serde_json::from_str::<CredentialInput>(r#"{"provider":"openai","secret":"k","secert":"k"}"#).is_err());
        assert!(serde_json::from_str::<CredentialInput>(r#"{"provider":"azure","secret":"k"}"#).is_err());
        for provider in [Provider::OpenAi, Provider::Anthropic, Provider::Gemini, Provider::OpenAiCompatible] {
            assert_eq!(serde_json::to_value(provider).unwrap(), provider.name());
        }
    }
}
