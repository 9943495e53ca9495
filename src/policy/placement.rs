//! Where an organisation's or a project's budget objects are placed: a Durable Object
//! [`LocationHint`], passed when an object is first created.
//!
//! Cloudflare's rules (Durable Objects, "Data location"): a location hint is best effort and is
//! honoured only when the object is first created (the first `get` of its id anywhere); once an
//! object exists it stays where it is, whatever hint later calls pass, so changing a hint moves
//! no object that already exists. The hints are `wnam`, `enam`, `sam`, `weur`, `eeur`, `apac`,
//! `oc`, `afr` and `me`. A jurisdiction is a guarantee, a hint only a preference: an
//! organisation kept in a jurisdiction may only name hints inside it ([`LocationHint::fits`]:
//! `eu` → `weur`, `eeur`; `fedramp` → `wnam`, `enam`).

use super::Jurisdiction;
use serde::{Deserialize, Serialize};

/// A Durable Object location hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum LocationHint {
    /// Western North America.
    Wnam,
    /// Eastern North America.
    Enam,
    /// South America.
    Sam,
    /// Western Europe.
    Weur,
    /// Eastern Europe.
    Eeur,
    /// Asia-Pacific.
    Apac,
    /// Oceania.
    Oc,
    /// Africa.
    Afr,
    /// Middle East.
    Me,
}

impl LocationHint {
    /// The name the platform takes (`get(id, { locationHint })`).
    pub fn as_str(self) -> &'static str {
        match self {
            LocationHint::Wnam => "wnam",
            LocationHint::Enam => "enam",
            LocationHint::Sam => "sam",
            LocationHint::Weur => "weur",
            LocationHint::Eeur => "eeur",
            LocationHint::Apac => "apac",
            LocationHint::Oc => "oc",
            LocationHint::Afr => "afr",
            LocationHint::Me => "me",
        }
    }

    /// Whether the hint lies inside `jurisdiction` (any hint does without one).
    pub fn fits(self, jurisdiction: Option<Jurisdiction>) -> bool {
        match jurisdiction {
            None => true,
            Some(Jurisdiction::Eu) => matches!(self, LocationHint::Weur | LocationHint::Eeur),
            Some(Jurisdiction::Fedramp) => matches!(self, LocationHint::Wnam | LocationHint::Enam),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_inside_a_jurisdiction_only() {
        assert!(LocationHint::Apac.fits(None));
        assert!(LocationHint::Weur.fits(Some(Jurisdiction::Eu)) && LocationHint::Eeur.fits(Some(Jurisdiction::Eu)));
        assert!(!LocationHint::Wnam.fits(Some(Jurisdiction::Eu)));
        assert!(
            LocationHint::Enam.fits(Some(Jurisdiction::Fedramp))
                && !LocationHint::Weur.fits(Some(Jurisdiction::Fedramp))
        );
        assert_eq!(serde_json::to_string(&LocationHint::Eeur).unwrap(), "\"eeur\"");
        assert_eq!(LocationHint::Me.as_str(), "me");
    }
}
