//! The document: the fixed header, a path item per documented path made from the
//! [`operations`] table, and `components/schemas` as the generator collected them while the
//! operations named their bodies.

use super::operations::{operations, Access, Operation, Route};
use super::shapes;
use crate::admin::idempotency::MAX_KEY_CHARS;
use crate::admin::query::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::admin::route::PREFIX;
use schemars::generate::SchemaSettings;
use schemars::SchemaGenerator;
use serde_json::{json, Map, Value};

const DESCRIPTION: &str = "The control plane of teamkeys: principals, projects, keys, usage and the audit log. \
JSON in and out; errors are `{\"error\":{\"message\",\"type\",\"code\"}}`. An unknown or missing token is 401; a \
known principal lacking a permission is 403 `permission_denied`, the message naming the permission. Secrets (keys \
`tk_…`, tokens `tka_…`) appear once, in the answer that creates them. A change is answered once the key-value \
projection the request path reads and the affected keys' ledger objects have it; if either could not be reached, \
the change stands, the answer carries `teamkeys-propagation: pending`, and the registry retries until they have it. \
Every change the registry answers (every method but GET, webhooks and the operator's `/orgs` aside) takes an \
`Idempotency-Key` header: the first successful answer is kept for 24 hours and a retry of the same request by the \
same caller gets it again (the same plaintext included, with `idempotent-replayed: true`) without running again; the \
same key with another request is 422 `idempotency_key_reused`.";

/// The access of the operator's routes, in their descriptions.
const OPERATOR: &str = "Operator only: the bearer is the deploy-time `ADMIN_TOKEN` (any other token is 401).";

/// The OpenAPI 3.1 document of the admin API.
pub fn document() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|settings| {
            settings.definitions_path = "/components/schemas".into();
            settings.meta_schema = None;
        })
        .into_generator();
    let mut paths = Map::new();
    for operation in operations() {
        let item = paths.entry(operation.path).or_insert_with(|| json!({}));
        item[operation.method.to_lowercase()] = operation_object(&operation, &mut generator);
    }
    let error = shapes::error(&mut generator);
    json!({
        "openapi": "3.1.0",
        "info": { "title": "teamkeys admin API", "version": "1", "description": DESCRIPTION },
        "servers": [{ "url": PREFIX }],
        "security": [{ "bearer": [] }, { "session": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A principal's token (tka_<org_id>_…), or the deploy-time ADMIN_TOKEN: the platform operator on the /orgs routes, and the Admin of the organisation a deployment from before organisations became.",
                },
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "__Host-teamkeys_session",
                    "description": "A console session (POST /sessions). Every call but GET with it needs the X-CSRF-Token header (the sign-in's csrf_token) and a same-origin Origin / Sec-Fetch-Site when the browser sends them: 403 csrf_failed otherwise.",
                },
            },
            "responses": {
                "Error": { "description": "The error envelope.", "content": json_content(error) },
            },
            "schemas": generator.take_definitions(true),
        },
    })
}

fn operation_object(operation: &Operation, generator: &mut SchemaGenerator) -> Value {
    let mut object = json!({
        "summary": operation.summary,
        "tags": [format!("{:?}", operation.tag)],
        "responses": responses(operation, generator),
    });
    let access = match operation.access {
        Access::Public => None,
        Access::AnyPrincipal => Some("Permission: `none (any principal)`.".to_owned()),
        Access::Needs(action) => Some(format!("Permission: `{}`.", action.permission())),
        Access::Operator => Some(OPERATOR.to_owned()),
    };
    let description: Vec<String> =
        [operation.notes.to_owned()].into_iter().chain(access).filter(|paragraph| !paragraph.is_empty()).collect();
    if !description.is_empty() {
        object["description"] = description.join("\n\n").into();
    }
    if let Access::Public = operation.access {
        object["security"] = json!([]);
    }
    let parameters = parameters(operation);
    if !parameters.is_empty() {
        object["parameters"] = parameters.into();
    }
    if let Some(body) = operation.body {
        object["requestBody"] = json!({ "required": body.required, "content": json_content((body.schema)(generator)) });
    }
    object
}

fn responses(operation: &Operation, generator: &mut SchemaGenerator) -> Value {
    let success = &operation.success;
    let mut answer = json!({ "description": success.description });
    if let Some(schema) = success.schema {
        answer["content"] = json_content(schema(generator));
    }
    let mut responses = Map::new();
    responses.insert(success.status.to_string(), answer);
    let authenticated: &[u16] = match operation.access {
        Access::Public => &[],
        Access::AnyPrincipal | Access::Needs(_) => &[401, 403],
        Access::Operator => &[401],
    };
    let idempotent: &[u16] = if takes_idempotency_key(operation) { &[422] } else { &[] };
    for status in operation.errors.iter().chain(idempotent).chain(authenticated) {
        responses.insert(status.to_string(), json!({ "$ref": "#/components/responses/Error" }));
    }
    responses.into()
}

/// The path parameters the path names, then the list parameters.
fn parameters(operation: &Operation) -> Vec<Value> {
    let in_path = operation.path.split('/').filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'));
    let mut parameters: Vec<Value> = in_path
        .map(|name| {
            let description = if name == "principal" { "The principal's id." } else { "The resource id." };
            json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" }, "description": description })
        })
        .collect();
    for filter in operation.list.unwrap_or_default() {
        parameters.push(json!({
            "name": filter.name, "in": "query", "required": false, "schema": { "type": "string" },
            "description": filter.description,
        }));
    }
    if operation.list.is_some() {
        parameters.push(json!({
            "name": "limit", "in": "query", "required": false,
            "schema": { "type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT },
            "description": "Items per page.",
        }));
        parameters.push(json!({
            "name": "cursor", "in": "query", "required": false, "schema": { "type": "string" },
            "description": "The `next_cursor` of the previous page.",
        }));
    }
    if takes_idempotency_key(operation) {
        parameters.push(json!({
            "name": "Idempotency-Key", "in": "header", "required": false,
            "schema": { "type": "string", "minLength": 1, "maxLength": MAX_KEY_CHARS },
            "description": "Printable ASCII. A retry with the same key and request gets the first answer again, \
                            for 24 hours.",
        }));
    }
    parameters
}

/// Whether the registry honours an `Idempotency-Key` on the operation: every change it answers.
fn takes_idempotency_key(operation: &Operation) -> bool {
    operation.method != "GET" && matches!(operation.route, Route::Admin(_))
}

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}
