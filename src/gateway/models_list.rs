//! Model lists answered through a key show only what that key may call: the upstream's list,
//! with the entries the key's policy would refuse removed, in each family's list shape
//! (OpenAI and Anthropic `data[].id`, Gemini `models[].name` as `models/{id}`).
//!
//! A list is read whole to filter it, so it is bounded: at most [`MAX_LIST_BYTES`] per list
//! (past it the upstream's answer is unusable: 502), at most [`MAX_LISTS_AT_ONCE`] lists read at
//! once in an isolate (past it 503 `gateway_busy`, retry after 1 s): ≤ 16 MiB of an isolate's
//! memory in all.

use crate::error::{ApiError, Code};
use crate::family::Family;
use futures_util::{Stream, StreamExt};
use serde_json::{Map, Value};
use std::cell::Cell;

/// The most bytes of an upstream's model list read: OpenAI's and Anthropic's lists are tens of
/// KB, a Gemini page of its largest size (1,000 models) about 1 MB.
pub const MAX_LIST_BYTES: usize = 2 * 1024 * 1024;

/// The most model lists one isolate reads at once.
pub const MAX_LISTS_AT_ONCE: usize = 8;

/// How many model lists an isolate is reading.
#[derive(Debug, Default)]
pub struct ListReads(Cell<usize>);

impl ListReads {
    /// A place among the lists being read, held until the returned guard is dropped; 503
    /// `gateway_busy` when [`MAX_LISTS_AT_ONCE`] are.
    pub fn start(&self) -> Result<ListRead<'_>, ApiError> {
        if self.0.get() >= MAX_LISTS_AT_ONCE {
            return Err(ApiError::new(
                Code::GatewayBusy,
                "The gateway is reading too many model lists at once; retry shortly.",
            )
            .with_retry_after(1));
        }
        self.0.set(self.0.get() + 1);
        Ok(ListRead(&self.0))
    }
}

/// One list being read ([`ListReads::start`]).
pub struct ListRead<'a>(&'a Cell<usize>);

impl Drop for ListRead<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// The whole of `body`, or `None` when it fails or passes [`MAX_LIST_BYTES`] (read no further).
pub async fn read_list<E>(mut body: impl Stream<Item = Result<Vec<u8>, E>> + Unpin) -> Option<Vec<u8>> {
    let mut whole = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.ok()?;
        if whole.len() + chunk.len() > MAX_LIST_BYTES {
            return None;
        }
        whole.extend_from_slice(&chunk);
    }
    Some(whole)
}

/// `body` (the upstream's list) keeping only the models for which `visible` holds. A body that
/// is not a list of that shape is returned as `None`: the caller refuses to pass it on
/// unfiltered.
pub fn filter_models_list(family: Family, body: &[u8], visible: impl Fn(&str) -> bool) -> Option<Vec<u8>> {
    let (list_field, name_field) = match family {
        Family::OpenAi | Family::Anthropic => ("data", "id"),
        Family::Gemini => ("models", "name"),
    };
    let mut list: Map<String, Value> = serde_json::from_slice(body).ok()?;
    let entries = list.get_mut(list_field)?.as_array_mut()?;
    if entries.iter().any(|entry| entry.get(name_field).and_then(Value::as_str).is_none()) {
        return None;
    }
    entries.retain(|entry| entry.get(name_field).and_then(Value::as_str).is_some_and(&visible));
    // Anthropic pages name their first and last ids; keep them true to the filtered page.
    if family == Family::Anthropic {
        let ids: Vec<Value> = entries.iter().filter_map(|e| e.get("id").cloned()).collect();
        list.insert("first_id".to_owned(), ids.first().cloned().unwrap_or(Value::Null));
        list.insert("last_id".to_owned(), ids.last().cloned().unwrap_or(Value::Null));
    }
    serde_json::to_vec(&list).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(family: Family, body: &[u8]) -> Vec<String> {
        let v: Value = serde_json::from_slice(body).unwrap();
        let (list, name) = if family == Family::Gemini { ("models", "name") } else { ("data", "id") };
        v[list].as_array().unwrap().iter().map(|e| e[name].as_str().unwrap().to_owned()).collect()
    }

    #[test]
    fn filters_each_family_shape() {
        let openai = br#"{"object":"list","data":[{"id":"gpt-4o"},{"id":"o3"}]}"#;
        let out = filter_models_list(Family::OpenAi, openai, |m| m.starts_with("gpt")).unwrap();
        assert_eq!(names(Family::OpenAi, &out), ["gpt-4o"]);

        let anthropic = br#"{"data":[{"id":"claude-a"},{"id":"claude-b"}],"has_more":false,"first_id":"claude-a","last_id":"claude-b"}"#;
        let out = filter_models_list(Family::Anthropic, anthropic, |m| m == "claude-b").unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!((v["first_id"].as_str(), v["last_id"].as_str()), (Some("claude-b"), Some("claude-b")));

        let gemini = br#"{"models":[{"name":"models/gemini-2.5-pro"},{"name":"models/gemini-2.5-flash"}]}"#;
        let out = filter_models_list(Family::Gemini, gemini, |m| m.ends_with("flash")).unwrap();
        assert_eq!(names(Family::Gemini, &out), ["models/gemini-2.5-flash"]);
    }

    fn read(chunks: Vec<Vec<u8>>) -> Option<Vec<u8>> {
        let stream = futures_util::stream::iter(chunks.into_iter().map(Ok::<_, ()>));
        futures_util::FutureExt::now_or_never(read_list(stream)).expect("ready")
    }

    #[test]
    fn a_list_is_read_up_to_its_bound() {
        let half = vec![b' '; MAX_LIST_BYTES / 2];
        assert_eq!(read(vec![half.clone(), half.clone()]).map(|whole| whole.len()), Some(MAX_LIST_BYTES));
        assert_eq!(read(vec![half.clone(), half, vec![b' ']]), None, "one byte past the bound");
        let failed = futures_util::stream::iter([Ok(vec![b'{']), Err(())]);
        assert_eq!(futures_util::FutureExt::now_or_never(read_list(failed)), Some(None));
    }

    #[test]
    fn an_isolate_reads_a_bounded_number_of_lists_at_once() {
        let reads = ListReads::default();
        let held: Vec<ListRead> = (0..MAX_LISTS_AT_ONCE).map(|_| reads.start().expect("a place")).collect();
        let busy = reads.start().err().expect("all places held");
        assert_eq!((busy.code(), busy.status()), (Code::GatewayBusy, 503));
        drop(held);
        assert!(reads.start().is_ok(), "places come back when the reads end");
    }

    #[test]
    fn refuses_unknown_shapes() {
        assert_eq!(filter_models_list(Family::OpenAi, b"not json", |_| true), None);
        assert_eq!(filter_models_list(Family::OpenAi, br#"{"data":[{"name":"x"}]}"#, |_| true), None);
        assert_eq!(filter_models_list(Family::Gemini, br#"{"data":[]}"#, |_| true), None);
    }
}
