//! The types of events: the `type` of every delivered event and the names endpoints subscribe to.

use super::text_enum::text_enum;

text_enum! {
    /// What happened. `key.*` events come from the admin API when a key changes; `usage.*`
    /// events from a key's ledger object, or a project's or the organisation's budget object,
    /// when its committed spend crosses a threshold.
    pub enum EventType {
        KeyCreated => "key.created",
        KeyUpdated => "key.updated",
        KeyDisabled => "key.disabled",
        KeyEnabled => "key.enabled",
        KeyRotated => "key.rotated",
        KeyDeleted => "key.deleted",
        /// A spend warning threshold (below 100 % of a cap) was reached.
        UsageAlert => "usage.alert",
        /// Spend reached a cap (a threshold of 100 % or more).
        UsageLimitReached => "usage.limit_reached",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_json() {
        for &kind in EventType::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<EventType>(&json).unwrap(), kind);
        }
        assert!(serde_json::from_str::<EventType>("\"key.exploded\"").is_err());
    }
}
