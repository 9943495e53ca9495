//! The [`KeyStore`] adapter: key and organisation records from the `KEYS` KV namespace, cached
//! at the edge.

use crate::gateway::ports::{KeyStore, Unreachable};
use crate::gateway::record_memo::KV_CACHE_TTL_MS;
use worker::Env;

/// How long an edge location may serve a key or organisation record from its cache: 30 s, KV's
/// minimum. With the isolate's memo on top, a change to a key's model rules, IP allowlist,
/// routing groups or expiry, or to its organisation's status, routing or credentials, reaches
/// every call within [`RECORD_STALENESS_MS`](crate::gateway::record_memo::RECORD_STALENESS_MS)
/// plus KV's own propagation. Revocation and limits do not wait for it: the key's key ledger
/// refuses revoked secrets and enforces the control plane's pushed limits.
const KEY_RECORD_CACHE_TTL_S: u64 = KV_CACHE_TTL_MS / 1_000;

pub struct KvKeyStore<'a>(pub &'a Env);

impl KeyStore for KvKeyStore<'_> {
    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, Unreachable> {
        let kv = self.0.kv("KEYS").map_err(|_| Unreachable)?;
        kv.get(name).cache_ttl(KEY_RECORD_CACHE_TTL_S).bytes().await.map_err(|e| {
            worker::console_error!("key store unreachable: {e}");
            Unreachable
        })
    }
}
