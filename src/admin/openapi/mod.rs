//! The admin API's OpenAPI document, generated from the code (host tests only: nothing here is
//! in the wasm). The document served at `/admin/v1/openapi.json` is the committed
//! `src/admin/openapi.json` ([`super::OPENAPI_JSON`]); a test keeps it equal to what this
//! module generates, so it always says what the types say.
//!
//! Flow: [`operations::operations`] is the table of operations (route, permission, parameters,
//! body, answer, refusals) → [`document::document`] turns each row into a path item, naming the
//! bodies through [`shapes`] → the request and answer types' schemas come from their
//! `JsonSchema` derives (doc comments become descriptions) and land in `components/schemas`.
//!
//! After changing a type the API reads or answers, or the table: `UPDATE_OPENAPI=1 cargo test
//! --lib openapi` rewrites the committed document; review its diff.

mod document;
mod operations;
mod shapes;

use super::permission::Action;
use super::route::{classify, Endpoint, PREFIX};
use crate::events::webhook_route;
use crate::platform::route::{classify as classify_operator, is_operator_path};
use operations::{every_route, operations, Access, Route, SAMPLE_ID, SAMPLE_PRINCIPAL};
use serde_json::Value;
use std::collections::BTreeSet;

/// The committed document's path, for `UPDATE_OPENAPI=1`.
const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/admin/openapi.json");

fn generated() -> String {
    serde_json::to_string_pretty(&document::document()).expect("the document serializes") + "\n"
}

#[test]
fn the_committed_document_is_the_generated_one() {
    let generated = generated();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &generated).expect("the committed document is writable");
        return;
    }
    if generated == super::OPENAPI_JSON {
        return;
    }
    let (line, (committed, wanted)) = super::OPENAPI_JSON
        .lines()
        .chain(std::iter::repeat("<end of file>"))
        .zip(generated.lines().chain(std::iter::repeat("<end of file>")))
        .enumerate()
        .find(|(_, (committed, wanted))| committed != wanted)
        .expect("the documents differ in some line");
    panic!(
        "src/admin/openapi.json is not what the types and the operations table say; first difference at line {}:\n  \
         committed: {committed}\n  generated: {wanted}\nRegenerate it with `UPDATE_OPENAPI=1 cargo test --lib openapi` \
         and review the diff.",
        line + 1
    );
}

/// Every `"$ref"` in `value`.
fn references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (name, member) in map {
                match (name.as_str(), member) {
                    ("$ref", Value::String(target)) => found.push(target.clone()),
                    _ => references(member, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, found)),
        _ => {}
    }
}

/// The structure of an OpenAPI 3.1 document, as far as this one uses it: every reference
/// resolves inside the document, every path has operations, every operation has responses
/// with descriptions, and every path parameter is declared.
#[test]
fn the_document_is_well_formed() {
    let doc = document::document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let mut found = Vec::new();
    references(&doc, &mut found);
    assert!(found.len() > 50, "{} references", found.len());
    for target in found {
        let pointer = target.strip_prefix('#').unwrap_or_else(|| panic!("{target} points outside the document"));
        assert!(doc.pointer(pointer).is_some(), "{target} does not resolve");
    }
    let methods = ["get", "put", "post", "delete", "patch"];
    for (path, item) in doc["paths"].as_object().expect("paths") {
        assert!(path.starts_with('/'), "{path}");
        let item = item.as_object().expect("a path item");
        assert!(!item.is_empty(), "{path} has no operations");
        for (method, operation) in item {
            assert!(methods.contains(&method.as_str()), "{method} {path}");
            let responses = operation["responses"].as_object().expect("responses");
            assert!(responses.keys().any(|status| status.starts_with('2')), "{method} {path} has no success");
            for (status, response) in responses {
                assert!(status.len() == 3 && status.parse::<u16>().is_ok(), "{method} {path} {status}");
                assert!(response["description"].is_string() || response["$ref"].is_string(), "{method} {path}");
            }
            let declared: BTreeSet<&str> = operation["parameters"]
                .as_array()
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().expect("a name"))
                .collect();
            let named: BTreeSet<&str> =
                path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).collect();
            assert_eq!(declared, named, "{method} {path}");
        }
    }
    for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
        assert!(schema.is_object(), "{name}");
    }
}

/// The route an operation's path and method reach, choosing between the platform object and
/// the registry as the worker does.
fn routed(method: &str, path: &str) -> Route {
    if is_operator_path(path) {
        return Route::Operator(classify_operator(method, path).unwrap_or_else(|e| panic!("{path}: {}", e.message)));
    }
    match classify(method, path).unwrap_or_else(|e| panic!("{path}: {}", e.message)) {
        Endpoint::Webhooks => Route::Webhook(webhook_route(method, path).expect("a webhook route")),
        endpoint => Route::Admin(endpoint),
    }
}

/// Every operation is routed where the table says (the registry's, the outbox's and the
/// operator's routes alike), and every route has exactly one operation.
#[test]
fn the_table_and_the_routers_agree() {
    let operations = operations();
    for operation in &operations {
        let path =
            format!("{PREFIX}{}", operation.path.replace("{id}", SAMPLE_ID).replace("{principal}", SAMPLE_PRINCIPAL));
        let route = routed(operation.method, &path);
        assert_eq!(route, operation.route, "{} {}", operation.method, operation.path);
    }
    for route in every_route() {
        let documented = operations.iter().filter(|operation| operation.route == route).count();
        assert_eq!(documented, 1, "{route:?} has {documented} operations");
    }
    assert_eq!(operations.len(), every_route().len());
}

#[test]
fn every_permission_is_documented() {
    let operations = operations();
    for action in Action::ALL {
        // An operation needs it, or names it as what one of its fields needs.
        let documented = operations.iter().any(|operation| {
            matches!(operation.access, Access::Needs(a) if a == action) || operation.notes.contains(action.permission())
        });
        assert!(documented, "{} is not needed by any operation", action.permission());
    }
}
