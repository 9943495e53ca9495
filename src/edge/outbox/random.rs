//! Randomness for ids, secrets and jitter, from the platform's CSPRNG.

use crate::events::EventId;

/// `N` random bytes.
pub fn random_bytes<const N: usize>() -> worker::Result<[u8; N]> {
    let mut bytes = [0; N];
    getrandom::fill(&mut bytes).map_err(|e| worker::Error::RustError(format!("no randomness: {e}")))?;
    Ok(bytes)
}

/// A uniformly random `u32`, for backoff jitter.
pub fn jitter() -> worker::Result<u32> {
    random_bytes().map(u32::from_le_bytes)
}

/// A fresh event id, for producers building an [`crate::events::Event`].
pub fn new_event_id() -> worker::Result<EventId> {
    random_bytes().map(EventId::new)
}
