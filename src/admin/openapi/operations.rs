//! The admin API's operations, one row each: the route the router answers for it, what it
//! needs, what it reads and what it answers. The document's `paths` are made from this table
//! alone ([`super::document`]); the tests in [`super`] check it against the router both ways.

use super::shapes::{self, of, SchemaOf};
use crate::admin::api::charts::{HeadroomReport, HistoryReport};
use crate::admin::audit::AuditEntry;
use crate::admin::boundary::Boundary;
use crate::admin::input::{
    KeyPatch, MemberPut, NewKey, NewPrincipal, NewProject, ProjectPatch, RotateRequest, TokenRotation,
};
use crate::admin::key::{KeyDetail, KeyView};
use crate::admin::lifecycle::Transition;
use crate::admin::permission::Action;
use crate::admin::principal::{Membership, PrincipalView};
use crate::admin::project::{Member, Project};
use crate::admin::report::{KeyReport, OrgReport, ProjectReport};
use crate::admin::route::Endpoint;
use crate::admin::session::request::SignIn;
use crate::admin::session::whoami::WhoAmI;
use crate::admin::sso::AccessSettings;
use crate::credentials::{CredentialInput, CredentialView};
use crate::events::outbox_store::DeliveryView;
use crate::events::{EndpointRequest, EndpointView, WebhookRoute};
use crate::platform::directory::{NewOrg, OrgEntry, OrgPatch};
use crate::platform::route::OperatorEndpoint;

/// What the routers answer for an operation's path (with [`SAMPLE_ID`] and
/// [`SAMPLE_PRINCIPAL`] in place of the path parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Admin(Endpoint),
    /// Under `/webhooks`: the router answers [`Endpoint::Webhooks`], the outbox this route.
    Webhook(WebhookRoute),
    /// Under `/orgs`: the worker hands the call to the platform object, which answers it.
    Operator(OperatorEndpoint),
}

/// The value of `{id}` when a documented path is handed to the router (it has the form of
/// every id, a webhook endpoint's included).
pub const SAMPLE_ID: &str = "wh_0123456789abcdef";
/// The value of `{principal}` when a documented path is handed to the router.
pub const SAMPLE_PRINCIPAL: &str = "prn_1";

/// Who may call an operation.
#[derive(Debug, Clone, Copy)]
pub enum Access {
    /// Anyone, without a token.
    Public,
    /// Any principal with a valid token.
    AnyPrincipal,
    /// A principal whose role grants this permission.
    Needs(Action),
    /// The platform operator: the bearer is the deploy-time `ADMIN_TOKEN`, and nothing else.
    Operator,
}

/// A query parameter beside the page parameters.
#[derive(Debug, Clone, Copy)]
pub struct Filter {
    pub name: &'static str,
    pub description: &'static str,
}

/// The answer when the operation succeeds.
#[derive(Debug, Clone, Copy)]
pub struct Success {
    pub status: u16,
    pub description: &'static str,
    /// The body's schema; `None` when the body is not described by a type (or there is none).
    pub schema: Option<SchemaOf>,
}

/// A request body.
#[derive(Debug, Clone, Copy)]
pub struct Body {
    pub schema: SchemaOf,
    /// Whether an empty body is refused (otherwise it reads as `{}`).
    pub required: bool,
}

/// The group an operation is listed under (the name as written).
#[derive(Debug, Clone, Copy)]
pub enum Tag {
    Meta,
    Organisation,
    Projects,
    Principals,
    Keys,
    Usage,
    Audit,
    Webhooks,
    /// The platform operator's directory of organisations.
    Organisations,
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub method: &'static str,
    /// Under the server URL `/admin/v1`; `{id}` and `{principal}` are path parameters.
    pub path: &'static str,
    pub route: Route,
    pub tag: Tag,
    pub summary: &'static str,
    /// What a caller must know beyond the summary; empty when nothing.
    pub notes: &'static str,
    pub access: Access,
    /// `Some` for lists: their filters (the page parameters `limit` and `cursor` are implied).
    pub list: Option<&'static [Filter]>,
    pub body: Option<Body>,
    pub success: Success,
    /// Refusals besides 401 and 403 (which every operation with a token may answer).
    pub errors: &'static [u16],
}

/// A bare row: `GET`-like, no body, no list, no notes; the table fills in the rest.
fn op(method: &'static str, path: &'static str, route: Route, tag: Tag, access: Access) -> Operation {
    Operation {
        method,
        path,
        route,
        tag,
        summary: "",
        notes: "",
        access,
        list: None,
        body: None,
        success: Success { status: 200, description: "", schema: None },
        errors: &[],
    }
}

impl Operation {
    fn summary(self, summary: &'static str) -> Self {
        Operation { summary, ..self }
    }

    fn notes(self, notes: &'static str) -> Self {
        Operation { notes, ..self }
    }

    fn list(self, filters: &'static [Filter]) -> Self {
        Operation { list: Some(filters), ..self }
    }

    fn body(self, schema: SchemaOf) -> Self {
        Operation { body: Some(Body { schema, required: true }), ..self }
    }

    fn optional_body(self, schema: SchemaOf) -> Self {
        Operation { body: Some(Body { schema, required: false }), ..self }
    }

    fn answers(self, status: u16, description: &'static str, schema: Option<SchemaOf>) -> Self {
        Operation { success: Success { status, description, schema }, ..self }
    }

    fn errors(self, errors: &'static [u16]) -> Self {
        Operation { errors, ..self }
    }
}

const KEY_FILTERS: &[Filter] = &[
    Filter { name: "project", description: "Only this project's keys." },
    Filter { name: "tag", description: "Only keys with this tag." },
    Filter { name: "status", description: "active, disabled or deleted (default: all but deleted)." },
    Filter { name: "creator", description: "Only keys this principal created." },
];

/// What every history answer says about its query and bounds.
const HISTORY_NOTES: &str = "Query: `days`, 1 to 90 (default 30): the days answered, oldest first, today last, \
    zeros included; `hours` are the last 48 UTC hours' requests. Each key's object keeps 90 days and 48 hours. \
    Sums ask at most 200 keys' objects (`keys_omitted` counts those past the bound, not in the sums).";

/// Every operation of the admin API, in the order the document lists them.
pub fn operations() -> Vec<Operation> {
    use Access::{AnyPrincipal, Needs, Operator, Public};
    use Action::*;
    use Endpoint::*;
    use OperatorEndpoint::*;
    use Route::{Admin, Webhook};
    let id = || SAMPLE_ID.to_owned();
    vec![
        op("GET", "/openapi.json", Admin(OpenApi), Tag::Meta, Public).summary("This document").answers(
            200,
            "The OpenAPI document.",
            None,
        ),
        op("GET", "/me", Admin(Me), Tag::Meta, AnyPrincipal).summary("Who the token belongs to").answers(
            200,
            "The caller and its projects.",
            Some(shapes::me),
        ),
        op("POST", "/sessions", Admin(CreateSession), Tag::Meta, Public)
            .summary("Sign in to the console: a session for a token or a Cloudflare Access assertion")
            .notes(
                "Send `{\"token\"}` (a principal's token, or ADMIN_TOKEN for the operator), or `{\"org\"}` with the \
                 `Cf-Access-Jwt-Assertion` header Access adds (RS256 against the team's keys, issuer and audience of \
                 the organisation's /org/access settings, exp/nbf with 60 s of skew; the email names the principal). \
                 The answer sets the HttpOnly, Secure, SameSite=Strict cookie `__Host-teamkeys_session` (idle 30 min, \
                 absolute 12 h) and carries `csrf_token`, `expires_at`, `idle_timeout_ms` and `whoami`; the session id \
                 is never in the body. Failed sign-ins: 10 per client address per minute, then 429 `too_many_sign_ins` \
                 with Retry-After. A cross-site Origin / Sec-Fetch-Site is 403 `csrf_failed`.",
            )
            .body(of::<SignIn>)
            .answers(201, "The session's CSRF token, expiry and who-am-I.", None)
            .errors(&[400, 401, 403, 429]),
        op("GET", "/sessions/current", Admin(CurrentSession), Tag::Meta, AnyPrincipal)
            .summary("Who am I: the caller, its organisation and what its role may do")
            .notes("`actions` are the permissions the role has somewhere; `access` says where each applies. With a session: its expiries and CSRF token.")
            .answers(200, "Who-am-I.", Some(of::<WhoAmI>)),
        op("DELETE", "/sessions/current", Admin(EndSession), Tag::Meta, AnyPrincipal)
            .summary("Sign out: revoke this session")
            .answers(204, "Revoked; the cookie is cleared.", None),
        op("DELETE", "/sessions", Admin(EndSessions), Tag::Meta, AnyPrincipal)
            .summary("Sign out everywhere: revoke every session of the caller")
            .answers(204, "Revoked.", None),
        op("GET", "/org/access", Admin(GetAccess), Tag::Organisation, Needs(OrgPolicyRead))
            .summary("The organisation's Cloudflare Access sign-in settings")
            .answers(200, "The settings.", Some(of::<AccessSettings>))
            .errors(&[404]),
        op("PUT", "/org/access", Admin(PutAccess), Tag::Organisation, Needs(OrgPolicyWrite))
            .summary("Set the Cloudflare Access sign-in settings (team domain, audience tag)")
            .notes("The team's keys are read from https://<team_domain>/cdn-cgi/access/certs and cached for 10 minutes (refreshed, at most every 30 s, for an unknown key id).")
            .body(of::<AccessSettings>)
            .answers(200, "The settings.", Some(of::<AccessSettings>))
            .errors(&[400]),
        op("DELETE", "/org/access", Admin(DeleteAccess), Tag::Organisation, Needs(OrgPolicyWrite))
            .summary("Turn Cloudflare Access sign-in off")
            .answers(204, "Removed.", None),
        op("GET", "/org/policy", Admin(GetOrgPolicy), Tag::Organisation, Needs(OrgPolicyRead))
            .summary("The organisation boundary")
            .answers(200, "The boundary.", Some(of::<Boundary>)),
        op("PUT", "/org/policy", Admin(PutOrgPolicy), Tag::Organisation, Needs(OrgPolicyWrite))
            .summary("Replace the organisation boundary")
            .notes(
                "Every key is re-projected under the new boundary: limits apply from each key's next request \
                 (pushed to its ledger object); model rules when edge caches of the key's record expire (up to 60 s).",
            )
            .body(of::<Boundary>)
            .answers(200, "The boundary.", Some(of::<Boundary>))
            .errors(&[400]),
        op("GET", "/org/routing", Admin(GetRouting), Tag::Organisation, Needs(OrgRoutingRead))
            .summary("The routing groups that serve the organisation's keys")
            .notes(
                "The organisation's own (PUT /org/routing), else the platform's ROUTING if the operator allows \
                 it, else none (`{\"groups\": []}`: every call is refused).",
            )
            .answers(200, "The routing configuration.", None),
        op("PUT", "/org/routing", Admin(PutRouting), Tag::Organisation, Needs(OrgRoutingWrite))
            .summary("Replace the organisation's routing groups")
            .notes(
                "As the ROUTING var's format, but each target names one of the organisation's stored credentials in \
                 `credential` (never a Worker secret in `credential_secret`); its base_url must be https (outside \
                 local development) and lie under the credential's base_url when it has one.",
            )
            .answers(200, "The routing configuration.", None)
            .errors(&[400]),
        op("GET", "/org/credentials", Admin(ListCredentials), Tag::Organisation, Needs(OrgCredentialsRead))
            .summary("The organisation's upstream credentials, masked")
            .answers(200, "`{\"data\": [credentials]}`.", None),
        op("PUT", "/org/credentials/{id}", Admin(PutCredential(id())), Tag::Organisation, Needs(OrgCredentialsWrite))
            .summary("Store an upstream credential (write-only)")
            .notes(
                "The secret is sealed (AES-256-GCM, CREDENTIALS_KEYS) and never shown again: the answer and the \
                 audit log carry its mask. `{id}` is the credential's name: 1 to 64 characters of a-z 0-9 _ -.",
            )
            .body(of::<CredentialInput>)
            .answers(200, "The credential, masked.", Some(of::<CredentialView>))
            .errors(&[400]),
        op(
            "DELETE",
            "/org/credentials/{id}",
            Admin(DeleteCredential(id())),
            Tag::Organisation,
            Needs(OrgCredentialsWrite),
        )
        .summary("Delete an upstream credential")
        .notes("Refused while a routing target names it.")
        .answers(204, "Deleted.", None)
        .errors(&[400, 404]),
        op("GET", "/org/pricing", Admin(GetPricing), Tag::Organisation, Needs(OrgPricingRead))
            .summary("The deployed pricing table (read-only: set by the PRICING var)")
            .answers(200, "`{\"data\": [entries]}`.", None),
        op("POST", "/projects", Admin(CreateProject), Tag::Projects, Needs(ProjectsCreate))
            .summary("Create a project")
            .body(of::<NewProject>)
            .answers(201, "The project.", Some(of::<Project>))
            .errors(&[400]),
        op("GET", "/projects", Admin(ListProjects), Tag::Projects, Needs(ProjectsRead))
            .summary("List projects")
            .list(&[])
            .answers(200, "A page of projects the caller may read.", Some(shapes::page::<Project>))
            .errors(&[400]),
        op("GET", "/projects/{id}", Admin(GetProject(id())), Tag::Projects, Needs(ProjectsRead))
            .summary("Get a project")
            .answers(200, "The project.", Some(of::<Project>))
            .errors(&[404]),
        op("PATCH", "/projects/{id}", Admin(UpdateProject(id())), Tag::Projects, Needs(ProjectsUpdate))
            .summary("Update a project (name, description, boundary, ceiling)")
            .notes(
                "A new boundary must lie within the organisation's and the project's ceiling, and re-projects the \
                 project's keys. Changing `ceiling` also needs `projects.ceiling.write` (Admins only).",
            )
            .body(of::<ProjectPatch>)
            .answers(200, "The project.", Some(of::<Project>))
            .errors(&[400, 404]),
        op("DELETE", "/projects/{id}", Admin(DeleteProject(id())), Tag::Projects, Needs(ProjectsDelete))
            .summary("Delete a project without keys")
            .answers(204, "Deleted.", None)
            .errors(&[404, 409]),
        op("GET", "/projects/{id}/members", Admin(ListMembers(id())), Tag::Projects, Needs(ProjectsRead))
            .summary("List a project's members")
            .answers(200, "The members.", Some(shapes::data::<Member>))
            .errors(&[404]),
        op(
            "PUT",
            "/projects/{id}/members/{principal}",
            Admin(PutMember { project: id(), principal: SAMPLE_PRINCIPAL.to_owned() }),
            Tag::Projects,
            Needs(MembersManage),
        )
        .summary("Add or change a member")
        .notes("Owners manage members of their projects; giving or taking an owner's place is for Admins.")
        .body(of::<MemberPut>)
        .answers(200, "The membership.", Some(of::<Membership>))
        .errors(&[400, 404]),
        op(
            "DELETE",
            "/projects/{id}/members/{principal}",
            Admin(DeleteMember { project: id(), principal: SAMPLE_PRINCIPAL.to_owned() }),
            Tag::Projects,
            Needs(MembersManage),
        )
        .summary("Remove a member")
        .answers(204, "Removed.", None)
        .errors(&[404]),
        op("GET", "/projects/{id}/usage", Admin(ProjectUsage(id())), Tag::Usage, Needs(ProjectUsageRead))
            .summary("A project's usage: the sum over its keys")
            .answers(200, "The report.", Some(of::<ProjectReport>))
            .errors(&[404, 503]),
        op("POST", "/principals", Admin(CreatePrincipal), Tag::Principals, Needs(PrincipalsCreate))
            .summary("Create a principal")
            .notes("Admins create any role; project owners create `member`s of projects they own.")
            .body(of::<NewPrincipal>)
            .answers(201, "The principal and its token, shown once.", Some(shapes::created_principal))
            .errors(&[400]),
        op("GET", "/principals", Admin(ListPrincipals), Tag::Principals, Needs(PrincipalsRead))
            .summary("List principals")
            .list(&[])
            .answers(
                200,
                "A page of principals (owners: the members of their projects).",
                Some(shapes::page::<PrincipalView>),
            )
            .errors(&[400]),
        op("GET", "/principals/{id}", Admin(GetPrincipal(id())), Tag::Principals, Needs(PrincipalsRead))
            .summary("Get a principal (anyone may read themselves)")
            .answers(200, "The principal.", Some(of::<PrincipalView>))
            .errors(&[404]),
        op("DELETE", "/principals/{id}", Admin(DeletePrincipal(id())), Tag::Principals, Needs(PrincipalsDelete))
            .summary("Delete a principal (its token stops working; its keys stay)")
            .answers(204, "Deleted.", None)
            .errors(&[404]),
        op(
            "POST",
            "/principals/{id}/rotate-token",
            Admin(RotatePrincipalToken(id())),
            Tag::Principals,
            Needs(PrincipalsRotateToken),
        )
        .summary("Rotate a principal's token (anyone may rotate their own)")
        .notes(
            "The previous token keeps working for the grace period (never past its own expiry), then is \
             refused. The new token expires when the previous one would have unless `token_expires_at` says \
             otherwise; only an Admin may set a later one.",
        )
        .optional_body(of::<TokenRotation>)
        .answers(200, "The principal and its new token, shown once.", Some(shapes::rotated_token))
        .errors(&[400, 404]),
        op("POST", "/keys", Admin(CreateKey), Tag::Keys, Needs(KeysCreate))
            .summary("Create a key")
            .notes(
                "The caller becomes the key's creator. Policy values above the project's or organisation's \
                 boundary are refused with 400 `boundary_exceeded` naming the field.",
            )
            .body(of::<NewKey>)
            .answers(201, "The key and its plaintext, shown once.", Some(shapes::created_key))
            .errors(&[400]),
        op("GET", "/keys", Admin(ListKeys), Tag::Keys, Needs(KeysRead))
            .summary("List keys")
            .list(KEY_FILTERS)
            .answers(200, "A page of keys the caller may read, oldest first.", Some(shapes::page::<KeyView>))
            .errors(&[400]),
        op("GET", "/keys/{id}", Admin(GetKey(id())), Tag::Keys, Needs(KeysRead))
            .summary("Get a key, with when it was last used")
            .notes("`last_used_at` comes from the key's ledger object: 503 if it cannot be reached.")
            .answers(200, "The key (masked).", Some(of::<KeyDetail>))
            .errors(&[404, 503]),
        op("PATCH", "/keys/{id}", Admin(UpdateKey(id())), Tag::Keys, Needs(KeysUpdate))
            .summary("Update a key's metadata and rules")
            .body(of::<KeyPatch>)
            .answers(200, "The key.", Some(of::<KeyView>))
            .errors(&[400, 404, 409]),
        op("DELETE", "/keys/{id}", Admin(ChangeKeyStatus(id(), Transition::Delete)), Tag::Keys, Needs(KeysDelete))
            .summary("Delete a key (final)")
            .notes("Refused from the next request on (the key's ledger object is told before the answer).")
            .answers(200, "The deleted key.", Some(of::<KeyView>))
            .errors(&[404, 409]),
        op(
            "POST",
            "/keys/{id}/disable",
            Admin(ChangeKeyStatus(id(), Transition::Disable)),
            Tag::Keys,
            Needs(KeysDisable),
        )
        .summary("Disable a key")
        .notes("Refused from the next request on.")
        .answers(200, "The key.", Some(of::<KeyView>))
        .errors(&[404, 409]),
        op("POST", "/keys/{id}/enable", Admin(ChangeKeyStatus(id(), Transition::Enable)), Tag::Keys, Needs(KeysEnable))
            .summary("Enable a key")
            .answers(200, "The key.", Some(of::<KeyView>))
            .errors(&[404, 409]),
        op("POST", "/keys/{id}/rotate", Admin(RotateKey(id())), Tag::Keys, Needs(KeysRotate))
            .summary("Rotate a key's secret")
            .notes(
                "Same id, same counters and usage. After the grace period the previous secret is refused even \
                 where an edge still caches its record.",
            )
            .optional_body(of::<RotateRequest>)
            .answers(200, "The key and its new plaintext, shown once.", Some(shapes::rotated_key))
            .errors(&[400, 404, 409]),
        op("GET", "/keys/{id}/usage", Admin(KeyUsage(id())), Tag::Usage, Needs(KeyUsageRead))
            .summary("A key's usage and the state of each of its limits")
            .answers(200, "The report.", Some(of::<KeyReport>))
            .errors(&[404, 503]),
        op("GET", "/usage", Admin(OrgUsage), Tag::Usage, Needs(ProjectUsageRead))
            .summary("The organisation's usage: per project and in sum")
            .answers(
                200,
                "The report over the projects the caller may read (all for admins and finance, owned ones for \
                 project owners).",
                Some(of::<OrgReport>),
            )
            .errors(&[503]),
        op("GET", "/keys/{id}/history", Admin(KeyHistory(id())), Tag::Usage, Needs(KeyUsageRead))
            .summary("A key's daily history: per UTC day and per hour, for charts")
            .notes(HISTORY_NOTES)
            .answers(200, "The history.", Some(of::<HistoryReport>))
            .errors(&[400, 404, 503]),
        op("GET", "/projects/{id}/history", Admin(ProjectHistory(id())), Tag::Usage, Needs(ProjectUsageRead))
            .summary("A project's daily history: the sum over its keys (deleted ones included)")
            .notes(HISTORY_NOTES)
            .answers(200, "The history.", Some(of::<HistoryReport>))
            .errors(&[400, 404, 503]),
        op("GET", "/history", Admin(OrgHistory), Tag::Usage, Needs(KeyUsageRead))
            .summary("The organisation's daily history: the sum over the live keys the caller may read")
            .notes(HISTORY_NOTES)
            .answers(200, "The history.", Some(of::<HistoryReport>))
            .errors(&[400, 503]),
        op("GET", "/headroom", Admin(Headroom), Tag::Usage, Needs(KeyUsageRead))
            .summary("Each live key's limits and how full they are, nearest to a cap first")
            .notes(
                "Query: `project` (only its keys). The keys the caller may read, at most 200 (`keys_omitted` says \
                 more exist); keys without limits last.",
            )
            .answers(200, "The keys' headroom.", Some(of::<HeadroomReport>))
            .errors(&[400, 503]),
        op("GET", "/audit", Admin(Audit), Tag::Audit, Needs(AuditRead))
            .summary("The audit log, newest first")
            .list(&[])
            .answers(
                200,
                "A page of changes: who, what, when, before and after (secrets masked).",
                Some(shapes::page::<AuditEntry>),
            )
            .errors(&[400]),
        op("GET", "/webhooks", Webhook(WebhookRoute::List), Tag::Webhooks, Needs(WebhooksManage))
            .summary("List webhook endpoints (served by the outbox)")
            .answers(200, "The endpoints (no secrets).", Some(shapes::data::<EndpointView>)),
        op("POST", "/webhooks", Webhook(WebhookRoute::Create), Tag::Webhooks, Needs(WebhooksManage))
            .summary("Create a webhook endpoint (served by the outbox)")
            .body(of::<EndpointRequest>)
            .answers(201, "The endpoint and its signing secret, shown once.", Some(of::<EndpointView>))
            .errors(&[400]),
        op(
            "DELETE",
            "/webhooks/{id}",
            Webhook(WebhookRoute::Delete { id: id() }),
            Tag::Webhooks,
            Needs(WebhooksManage),
        )
        .summary("Delete a webhook endpoint and its pending deliveries")
        .answers(200, "The endpoint is gone.", Some(shapes::deleted))
        .errors(&[404]),
        op(
            "GET",
            "/webhooks/{id}/deliveries",
            Webhook(WebhookRoute::Deliveries { id: id() }),
            Tag::Webhooks,
            Needs(WebhooksManage),
        )
        .summary("Recent deliveries to an endpoint, newest first")
        .answers(200, "The deliveries.", Some(shapes::data::<DeliveryView>))
        .errors(&[404]),
        op("POST", "/orgs", Route::Operator(CreateOrg), Tag::Organisations, Operator)
            .summary("Create an organisation and its first Admin")
            .notes(
                "Its registry is opened (in its jurisdiction, with its location hint) before the entry is stored; \
                 if the registry cannot be reached nothing is stored. An unknown jurisdiction is 400 \
                 `invalid_jurisdiction`, an unknown location hint 400 `invalid_location_hint`.",
            )
            .body(of::<NewOrg>)
            .answers(201, "The organisation and its first Admin's token, shown once.", Some(shapes::created_org))
            .errors(&[400, 503]),
        op("GET", "/orgs", Route::Operator(ListOrgs), Tag::Organisations, Operator)
            .summary("List organisations, oldest first (deleted ones included)")
            .list(&[])
            .answers(200, "A page of organisations.", Some(shapes::page::<OrgEntry>))
            .errors(&[400]),
        op("GET", "/orgs/{id}", Route::Operator(GetOrg(id())), Tag::Organisations, Operator)
            .summary("Get an organisation")
            .answers(200, "The organisation.", Some(of::<OrgEntry>))
            .errors(&[404]),
        op("PATCH", "/orgs/{id}", Route::Operator(UpdateOrg(id())), Tag::Organisations, Operator)
            .summary("Change an organisation's name or platform routing")
            .notes("A change of `platform_routing` is told to its registry first. A deleted organisation is 404.")
            .body(of::<OrgPatch>)
            .answers(200, "The organisation.", Some(of::<OrgEntry>))
            .errors(&[400, 404, 503]),
        op("DELETE", "/orgs/{id}", Route::Operator(DeleteOrg(id())), Tag::Organisations, Operator)
            .summary("Delete an organisation")
            .notes(
                "Its registry removes what it holds and every later call of its principals is 401; the \
                 entry stays, `deleted`, so its id is never handed out again.",
            )
            .answers(200, "The organisation, deleted.", Some(of::<OrgEntry>))
            .errors(&[404, 503]),
        op("POST", "/orgs/{id}/suspend", Route::Operator(SuspendOrg(id())), Tag::Organisations, Operator)
            .summary("Suspend an organisation")
            .notes("Its keys are refused and its admins may only read, until it is resumed.")
            .answers(200, "The organisation.", Some(of::<OrgEntry>))
            .errors(&[404, 503]),
        op("POST", "/orgs/{id}/resume", Route::Operator(ResumeOrg(id())), Tag::Organisations, Operator)
            .summary("Resume a suspended organisation")
            .answers(200, "The organisation.", Some(of::<OrgEntry>))
            .errors(&[404, 503]),
    ]
}

/// One route of each kind the routers answer. The `match` below has no wildcard arm: a route
/// added to [`Endpoint`], [`Transition`], [`WebhookRoute`] or [`OperatorEndpoint`] does not
/// compile until it is named there, and belongs in this list beside it (the tests then demand
/// its operation).
pub fn every_route() -> Vec<Route> {
    use Endpoint::*;
    use OperatorEndpoint::*;
    use Route::{Admin, Operator, Webhook};
    let id = || SAMPLE_ID.to_owned();
    let principal = || SAMPLE_PRINCIPAL.to_owned();
    let routes = vec![
        Admin(OpenApi),
        Admin(Me),
        Admin(CreateSession),
        Admin(CurrentSession),
        Admin(EndSession),
        Admin(EndSessions),
        Admin(GetAccess),
        Admin(PutAccess),
        Admin(DeleteAccess),
        Admin(KeyHistory(id())),
        Admin(ProjectHistory(id())),
        Admin(OrgHistory),
        Admin(Headroom),
        Admin(GetOrgPolicy),
        Admin(PutOrgPolicy),
        Admin(GetRouting),
        Admin(PutRouting),
        Admin(ListCredentials),
        Admin(PutCredential(id())),
        Admin(DeleteCredential(id())),
        Admin(GetPricing),
        Admin(CreateProject),
        Admin(ListProjects),
        Admin(GetProject(id())),
        Admin(UpdateProject(id())),
        Admin(DeleteProject(id())),
        Admin(ListMembers(id())),
        Admin(PutMember { project: id(), principal: principal() }),
        Admin(DeleteMember { project: id(), principal: principal() }),
        Admin(ProjectUsage(id())),
        Admin(CreatePrincipal),
        Admin(ListPrincipals),
        Admin(GetPrincipal(id())),
        Admin(DeletePrincipal(id())),
        Admin(RotatePrincipalToken(id())),
        Admin(CreateKey),
        Admin(ListKeys),
        Admin(GetKey(id())),
        Admin(UpdateKey(id())),
        Admin(ChangeKeyStatus(id(), Transition::Disable)),
        Admin(ChangeKeyStatus(id(), Transition::Enable)),
        Admin(ChangeKeyStatus(id(), Transition::Delete)),
        Admin(RotateKey(id())),
        Admin(KeyUsage(id())),
        Admin(OrgUsage),
        Admin(Audit),
        Webhook(WebhookRoute::Create),
        Webhook(WebhookRoute::List),
        Webhook(WebhookRoute::Delete { id: id() }),
        Webhook(WebhookRoute::Deliveries { id: id() }),
        Operator(CreateOrg),
        Operator(ListOrgs),
        Operator(GetOrg(id())),
        Operator(UpdateOrg(id())),
        Operator(DeleteOrg(id())),
        Operator(SuspendOrg(id())),
        Operator(ResumeOrg(id())),
    ];
    for route in &routes {
        match route {
            Admin(
                OpenApi
                | Me
                | CreateSession
                | CurrentSession
                | EndSession
                | EndSessions
                | GetAccess
                | PutAccess
                | DeleteAccess
                | KeyHistory(_)
                | ProjectHistory(_)
                | OrgHistory
                | Headroom
                | GetOrgPolicy
                | PutOrgPolicy
                | GetRouting
                | PutRouting
                | ListCredentials
                | PutCredential(_)
                | DeleteCredential(_)
                | GetPricing
                | CreateProject
                | ListProjects
                | GetProject(_)
                | UpdateProject(_)
                | DeleteProject(_)
                | ListMembers(_)
                | PutMember { .. }
                | DeleteMember { .. }
                | ProjectUsage(_)
                | CreatePrincipal
                | ListPrincipals
                | GetPrincipal(_)
                | DeletePrincipal(_)
                | RotatePrincipalToken(_)
                | CreateKey
                | ListKeys
                | GetKey(_)
                | UpdateKey(_)
                | RotateKey(_)
                | KeyUsage(_)
                | OrgUsage
                | Audit,
            )
            | Admin(ChangeKeyStatus(_, Transition::Disable | Transition::Enable | Transition::Delete))
            | Webhook(
                WebhookRoute::Create
                | WebhookRoute::List
                | WebhookRoute::Delete { .. }
                | WebhookRoute::Deliveries { .. },
            )
            | Operator(CreateOrg | ListOrgs | GetOrg(_) | UpdateOrg(_) | DeleteOrg(_) | SuspendOrg(_) | ResumeOrg(_)) =>
                {}
            // The router hands every webhook path to the outbox: those routes are the `Webhook` ones.
            Admin(Webhooks) => unreachable!("webhook routes are listed as Route::Webhook"),
        }
    }
    routes
}
