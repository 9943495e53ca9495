//! The schemas of bodies: a type's own (derived from it, [`of`]), or a type wrapped the way a
//! handler wraps it: pages and `data` lists, and the answers that add a secret shown once.
//!
//! A named shape ([`Named`]) goes into `components/schemas` once and is referenced from there.

use crate::admin::key::KeyView;
use crate::admin::principal::{Membership, PrincipalView};
use crate::admin::role::Principal;
use crate::error::{ErrorType, LimitDetails};
use crate::platform::directory::OrgEntry;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Value};

/// A body's schema, made with the document's generator (which collects the named schemas).
pub type SchemaOf = fn(&mut SchemaGenerator) -> Value;

/// `T`'s schema: a reference to it in `components/schemas`.
pub fn of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Value {
    generator.subschema_for::<T>().to_value()
}

/// A page of a list: `{"data": [T], "next_cursor"}` ([`crate::admin::query`]).
pub fn page<T: JsonSchema>(generator: &mut SchemaGenerator) -> Value {
    json!({
        "type": "object",
        "required": ["data", "next_cursor"],
        "properties": {
            "data": { "type": "array", "items": of::<T>(generator) },
            "next_cursor": {
                "type": ["string", "null"],
                "description": "Pass as `cursor` for the next page; null on the last page.",
            },
        },
    })
}

/// A whole list: `{"data": [T]}`.
pub fn data<T: JsonSchema>(generator: &mut SchemaGenerator) -> Value {
    json!({
        "type": "object",
        "required": ["data"],
        "properties": { "data": { "type": "array", "items": of::<T>(generator) } },
    })
}

/// A schema kept in `components/schemas` under its name.
struct Named {
    name: &'static str,
    schema: fn(&mut SchemaGenerator) -> Value,
}

impl Named {
    /// Adds the schema (once) and answers a reference to it.
    fn reference(&self, generator: &mut SchemaGenerator) -> Value {
        if !generator.definitions().contains_key(self.name) {
            let schema = (self.schema)(generator);
            generator.definitions_mut().insert(self.name.to_owned(), schema);
        }
        json!({ "$ref": format!("#/components/schemas/{}", self.name) })
    }
}

/// `base` with more properties, all required.
fn extended(base: Value, properties: Value) -> Value {
    let required: Vec<&String> = properties.as_object().expect("properties are an object").keys().collect();
    json!({ "allOf": [base, { "type": "object", "required": required, "properties": properties }] })
}

const ME: Named = Named {
    name: "Me",
    schema: |generator| {
        extended(
            of::<Principal>(generator),
            json!({ "projects": { "type": "array", "items": of::<Membership>(generator) } }),
        )
    },
};

const CREATED_PRINCIPAL: Named = Named {
    name: "CreatedPrincipal",
    schema: |generator| {
        extended(
            of::<PrincipalView>(generator),
            json!({ "token": {
                "type": "string",
                "description": "The admin API token (`tka_…`). Shown this once; only its SHA-256 is stored.",
            } }),
        )
    },
};

const CREATED_KEY: Named = Named {
    name: "CreatedKey",
    schema: |generator| {
        extended(
            of::<KeyView>(generator),
            json!({ "key": {
                "type": "string",
                "pattern": "^tk_[0-9A-Za-z]{40}$",
                "description": "The key. Shown this once; only its SHA-256 is stored.",
            } }),
        )
    },
};

const ROTATED_KEY: Named = Named {
    name: "RotatedKey",
    schema: |generator| {
        extended(
            CREATED_KEY.reference(generator),
            json!({ "previous_secret_valid_until": {
                "type": ["integer", "null"],
                "description": "Unix ms until which the previous secret still works; null: it stopped at once.",
            } }),
        )
    },
};

const ROTATED_TOKEN: Named = Named {
    name: "RotatedToken",
    schema: |generator| {
        extended(
            CREATED_PRINCIPAL.reference(generator),
            json!({ "previous_token_valid_until": {
                "type": ["integer", "null"],
                "description": "Unix ms until which the previous token still works; null: it stopped at once.",
            } }),
        )
    },
};

const CREATED_ORG: Named = Named {
    name: "CreatedOrganisation",
    schema: |generator| {
        json!({
            "type": "object",
            "required": ["org", "admin"],
            "properties": {
                "org": of::<OrgEntry>(generator),
                "admin": CREATED_PRINCIPAL.reference(generator),
            },
        })
    },
};

/// The inner object of the envelope as [`crate::error::ApiError`] serializes it by hand.
#[derive(schemars::JsonSchema)]
#[schemars(rename = "ApiError")]
#[allow(dead_code)]
struct ErrorObject {
    message: String,
    #[schemars(rename = "type")]
    kind: ErrorType,
    /// The error's code (see the README's table of codes).
    code: String,
    /// Which limit tripped (429 answers of a limit only).
    limit: Option<LimitDetails>,
}

const ERROR: Named = Named {
    name: "Error",
    schema: |generator| {
        json!({
            "description": "The error envelope of every refusal and failure.",
            "type": "object",
            "required": ["error"],
            "properties": { "error": of::<ErrorObject>(generator) },
        })
    },
};

/// `GET /me`: the caller and its projects.
pub fn me(generator: &mut SchemaGenerator) -> Value {
    ME.reference(generator)
}

/// `POST /principals`: the principal and its token.
pub fn created_principal(generator: &mut SchemaGenerator) -> Value {
    CREATED_PRINCIPAL.reference(generator)
}

/// `POST /keys`: the key and its plaintext.
pub fn created_key(generator: &mut SchemaGenerator) -> Value {
    CREATED_KEY.reference(generator)
}

/// `POST /keys/{id}/rotate`: the key, its new plaintext and how long the previous one works.
pub fn rotated_key(generator: &mut SchemaGenerator) -> Value {
    ROTATED_KEY.reference(generator)
}

/// `POST /principals/{id}/rotate-token`: the principal, its new token and how long the
/// previous one works.
pub fn rotated_token(generator: &mut SchemaGenerator) -> Value {
    ROTATED_TOKEN.reference(generator)
}

/// `POST /orgs`: the organisation and its first Admin with their token.
pub fn created_org(generator: &mut SchemaGenerator) -> Value {
    CREATED_ORG.reference(generator)
}

/// The envelope of every error answer.
pub fn error(generator: &mut SchemaGenerator) -> Value {
    ERROR.reference(generator)
}

/// `DELETE /webhooks/{id}`: `{"id", "deleted": true}`.
pub fn deleted(_: &mut SchemaGenerator) -> Value {
    json!({
        "type": "object",
        "required": ["id", "deleted"],
        "properties": { "id": { "type": "string" }, "deleted": { "const": true } },
    })
}
