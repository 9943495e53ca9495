//! Organisation ids and the organisation a principal's token names.
//!
//! - An organisation id is `org_` + 16 base62 characters, or `org_<jurisdiction>_` + 16 for an
//!   organisation created in a jurisdiction (`org_eu_…`): the id alone says where its objects
//!   live, so the worker addresses its registry from a token without a lookup (an object created
//!   in a jurisdiction has another id than the same name without one). Not secret.
//! - A principal's token is `tka_<org_id>_<secret>` ([`new_token`]); a token from before
//!   organisations (`tka_<secret>`), or any other bearer (the deploy-time `ADMIN_TOKEN`), names
//!   [`DEFAULT_ORG`]. The secret is base62, so the organisation is everything before the last `_`.
//!
//! A token naming an organisation that does not exist reaches a registry that was never opened,
//! which answers 401 as for any unknown token.

use crate::admin::secret::{new_id, new_token_with_prefix, Random, TOKEN_PREFIX};
use crate::naming::DEFAULT_ORG;
use crate::policy::Jurisdiction;

const ORG_PREFIX: &str = "org_";
const RANDOM_CHARS: usize = 16;
const JURISDICTIONS: [Jurisdiction; 2] = [Jurisdiction::Eu, Jurisdiction::Fedramp];

/// A fresh organisation id, carrying its jurisdiction.
pub fn new_org_id(jurisdiction: Option<Jurisdiction>, random: &mut impl Random) -> String {
    match jurisdiction {
        None => new_id("org", random),
        Some(jurisdiction) => new_id(&format!("org_{jurisdiction}"), random),
    }
}

/// A fresh principal token of `org_id`.
pub fn new_token(org_id: &str, random: &mut impl Random) -> String {
    new_token_with_prefix(&format!("{TOKEN_PREFIX}{org_id}_"), random)
}

/// The organisation a bearer token names ([`DEFAULT_ORG`] unless it is `tka_<org_id>_<secret>`
/// with a well-formed id).
pub fn org_of_token(token: &str) -> &str {
    token
        .strip_prefix(TOKEN_PREFIX)
        .and_then(|rest| rest.rsplit_once('_'))
        .map(|(org_id, _)| org_id)
        .filter(|org_id| is_org_id(org_id))
        .unwrap_or(DEFAULT_ORG)
}

/// Whether `id` has the form of an organisation id (or is [`DEFAULT_ORG`]).
pub fn is_org_id(id: &str) -> bool {
    if id == DEFAULT_ORG {
        return true;
    }
    let Some(rest) = id.strip_prefix(ORG_PREFIX) else { return false };
    let random = match rest.split_once('_') {
        Some((jurisdiction, random)) if JURISDICTIONS.iter().any(|j| j.as_str() == jurisdiction) => random,
        Some(_) => return false,
        None => rest,
    };
    random.len() == RANDOM_CHARS && random.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The jurisdiction an organisation id carries.
pub fn jurisdiction_of(org_id: &str) -> Option<Jurisdiction> {
    let rest = org_id.strip_prefix(ORG_PREFIX)?;
    let (name, _) = rest.split_once('_')?;
    JURISDICTIONS.into_iter().find(|j| j.as_str() == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::secret::counting;

    #[test]
    fn ids_carry_their_jurisdiction() {
        let plain = new_org_id(None, &mut counting());
        let eu = new_org_id(Some(Jurisdiction::Eu), &mut counting());
        assert_eq!((plain.as_str(), eu.as_str()), ("org_0123456789ABCDEF", "org_eu_0123456789ABCDEF"));
        assert!(is_org_id(&plain) && is_org_id(&eu) && is_org_id(DEFAULT_ORG));
        assert_eq!((jurisdiction_of(&plain), jurisdiction_of(&eu)), (None, Some(Jurisdiction::Eu)));
        assert_eq!(jurisdiction_of(DEFAULT_ORG), None);
        for bad in ["org_", "org_short", "org_xx_0123456789ABCDEF", "prj_0123456789ABCDEF", "org_0123456789ABCDE!"] {
            assert!(!is_org_id(bad), "{bad}");
        }
    }

    #[test]
    fn tokens_name_their_organisation() {
        let eu = new_org_id(Some(Jurisdiction::Eu), &mut counting());
        let token = new_token(&eu, &mut counting());
        assert!(token.starts_with(&format!("tka_{eu}_")) && token.len() == "tka_".len() + eu.len() + 1 + 40);
        assert_eq!(org_of_token(&token), eu);
        assert_eq!(org_of_token("tka_0123456789abcdefghij0123456789abcdefghij"), DEFAULT_ORG, "a token from before");
        assert_eq!(org_of_token("the-operators-admin-token"), DEFAULT_ORG);
        assert_eq!(org_of_token("tka_org_nope_secret"), DEFAULT_ORG, "a malformed id names no organisation");
    }
}
