//! Model lists answered through a key show only what that key may call: the upstream's list,
//! with the entries the key's policy would refuse removed, in each family's list shape
//! (OpenAI and Anthropic `data[].id`, Gemini `models[].name` as `models/{id}`).

use crate::family::Family;
use serde_json::{Map, Value};

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

    #[test]
    fn refuses_unknown_shapes() {
        assert_eq!(filter_models_list(Family::OpenAi, b"not json", |_| true), None);
        assert_eq!(filter_models_list(Family::OpenAi, br#"{"data":[{"name":"x"}]}"#, |_| true), None);
        assert_eq!(filter_models_list(Family::Gemini, br#"{"data":[]}"#, |_| true), None);
    }
}
