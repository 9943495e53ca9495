//! Query strings of list endpoints: decoding, refusing unknown parameters (a misspelt filter
//! must not silently list everything), and cursor pagination.
//!
//! Pagination: a list answers at most `limit` items (default [`DEFAULT_LIMIT`], at most
//! [`MAX_LIMIT`]) in a fixed order, and `next_cursor` when more follow; passing it back as
//! `cursor` continues after the last item answered. A cursor is opaque to clients: `c` and the
//! position of the last item in hexadecimal.

use crate::error::{ApiError, Code};

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;

/// A decoded query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Decodes `query` (`a=1&b=x%20y`), refusing parameters not in `allowed` and repeated ones.
    pub fn parse(query: Option<&str>, allowed: &[&str]) -> Result<Query, ApiError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let (name, value) = (decode(name)?, decode(value)?);
            if !allowed.contains(&name.as_str()) {
                return Err(ApiError::new(
                    Code::UnknownParameter,
                    format!("Unknown query parameter '{name}'; this list accepts: {}.", allowed.join(", ")),
                ));
            }
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(ApiError::new(
                    Code::RepeatedParameter,
                    format!("Query parameter '{name}' is given twice."),
                ));
            }
            pairs.push((name, value));
        }
        Ok(Query { pairs })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The page asked for by `limit` and `cursor`.
    pub fn page(&self) -> Result<Page, ApiError> {
        let limit = match self.get("limit") {
            None => DEFAULT_LIMIT,
            Some(text) => text.parse().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
                ApiError::new(Code::InvalidLimit, format!("limit must be a whole number from 1 to {MAX_LIMIT}."))
            })?,
        };
        let after = match self.get("cursor") {
            None => None,
            Some(text) => Some(
                text.strip_prefix('c')
                    .and_then(|hex| i64::from_str_radix(hex, 16).ok())
                    .filter(|&p| p >= 0)
                    .ok_or_else(|| ApiError::new(Code::InvalidCursor, "cursor is not one this API answered."))?,
            ),
        };
        Ok(Page { after, limit })
    }
}

/// Where a page starts and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Continue after the item at this position (in the list's order).
    pub after: Option<i64>,
    pub limit: usize,
}

impl Page {
    /// How many rows to fetch: one more than the page, to learn whether more follow.
    pub fn fetch(&self) -> usize {
        self.limit + 1
    }

    /// The page of `rows` (fetched with [`Page::fetch`]) and the cursor after its last item if
    /// more follow; `position` gives an item's position.
    pub fn cut<T>(&self, mut rows: Vec<T>, position: impl Fn(&T) -> i64) -> (Vec<T>, Option<String>) {
        let more = rows.len() > self.limit;
        rows.truncate(self.limit);
        let next = more.then(|| rows.last().map(|last| format!("c{:x}", position(last)))).flatten();
        (rows, next)
    }
}

/// Percent-decoding, `+` as space.
fn decode(text: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::new(Code::InvalidQuery, "The query string is not validly percent-encoded UTF-8.");
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).ok_or_else(invalid)?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| invalid())?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOWED: &[&str] = &["tag", "limit", "cursor"];

    #[test]
    fn decodes_and_refuses_unknown_or_repeated() {
        let q = Query::parse(Some("tag=team%3Asearch+ai&limit=5"), ALLOWED).unwrap();
        assert_eq!((q.get("tag"), q.get("limit"), q.get("cursor")), (Some("team:search ai"), Some("5"), None));
        assert_eq!(Query::parse(Some("tags=x"), ALLOWED).unwrap_err().code(), "unknown_parameter");
        assert_eq!(Query::parse(Some("tag=a&tag=b"), ALLOWED).unwrap_err().code(), "repeated_parameter");
        assert_eq!(Query::parse(Some("tag=%zz"), ALLOWED).unwrap_err().code(), "invalid_query");
        assert_eq!(Query::parse(Some("tag=%ff"), ALLOWED).unwrap_err().code(), "invalid_query");
        assert_eq!(Query::parse(None, ALLOWED).unwrap(), Query::default());
    }

    #[test]
    fn page_limits() {
        let page = |q: &str| Query::parse(Some(q), ALLOWED).unwrap().page();
        assert_eq!(page("").unwrap(), Page { after: None, limit: DEFAULT_LIMIT });
        assert_eq!(page("limit=200&cursor=c1f").unwrap(), Page { after: Some(31), limit: 200 });
        for bad in ["limit=0", "limit=201", "limit=x", "limit=-1"] {
            assert_eq!(page(bad).unwrap_err().code(), "invalid_limit", "{bad}");
        }
        for bad in ["cursor=1f", "cursor=c", "cursor=cxyz", "cursor=c-1"] {
            assert_eq!(page(bad).unwrap_err().code(), "invalid_cursor", "{bad}");
        }
    }

    #[test]
    fn cursors_walk_a_list_without_gaps_or_repeats() {
        let positions: Vec<i64> = (1..=7).map(|i| i * 10).collect();
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let query = match &cursor {
                Some(c) => format!("limit=3&cursor={c}"),
                None => "limit=3".to_owned(),
            };
            let page = Query::parse(Some(&query), ALLOWED).unwrap().page().unwrap();
            let rows: Vec<i64> =
                positions.iter().copied().filter(|&p| page.after.is_none_or(|a| p > a)).take(page.fetch()).collect();
            let (items, next) = page.cut(rows, |&p| p);
            seen.extend(items);
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, positions);
    }

    #[test]
    fn an_exact_last_page_has_no_cursor() {
        let page = Page { after: None, limit: 2 };
        assert_eq!(page.cut(vec![1, 2], |&p| p), (vec![1, 2], None));
        assert_eq!(page.cut(vec![1, 2, 3], |&p| p), (vec![1, 2], Some("c2".to_owned())));
    }
}
