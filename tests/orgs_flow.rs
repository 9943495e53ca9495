//! Organisations on the host: the platform's directory and the organisations' registries over
//! real SQLite, KV and the ledger objects faked, the worker's routing by token reproduced
//! ([`org_of_token`]). Covers the operator's endpoints and bad input, isolation (every
//! cross-organisation attempt answered like a missing id, writes audited), suspension told to
//! every key's object, stored credentials never shown, and the migration of a registry written
//! before organisations.

mod common;

use common::{ready, Clock, FakeKv, FakeLedgers, Seeded, Sqlite};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use teamkeys::admin::api::propagate::Targets;
use teamkeys::admin::api::step::{Answer, Settings};
use teamkeys::admin::api::{Call, Registry, Surroundings};
use teamkeys::admin::session::Credential;
use teamkeys::admin::store::Store;
use teamkeys::credentials::{BaseUrlPolicy, Keyring};
use teamkeys::error::ApiError;
use teamkeys::events::pending::EventQueue;
use teamkeys::ledger::revocation::Control;
use teamkeys::ledger::Command;
use teamkeys::naming::{ledger_object, registry_object, DEFAULT_ORG};
use teamkeys::platform::api::{Platform, Registries};
use teamkeys::platform::directory::OrgEntry;
use teamkeys::platform::order::{Order, ORDER_PATH};
use teamkeys::platform::org_id::org_of_token;
use teamkeys::platform::store::PlatformStore;
use teamkeys::policy::{Jurisdiction, RoutingConfig};

const OPERATOR: &str = "operator-token-0123456789";
const START_MS: u64 = 1_750_000_000_000;
const SECRET: &str = "sk-proj-TopSecretCredential0123456789";
const KEYS: &str = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

/// One registry object and its storage.
struct RegistryObject {
    sql: Sqlite,
    registry: Registry,
    events: EventQueue,
}

impl RegistryObject {
    fn new(sql: Sqlite) -> RegistryObject {
        RegistryObject {
            registry: Registry::new(Store::open(sql.boxed()).unwrap()),
            events: EventQueue::open(sql.boxed()).unwrap(),
            sql,
        }
    }
}

/// A registry object's name, jurisdiction and location hint.
type Addressed = (String, Option<Jurisdiction>, Option<String>);

/// The deployment: the platform object, the registry objects by name (created on first use,
/// as Durable Objects are), KV and the ledger objects.
struct Deployment {
    platform: Platform,
    registries: RefCell<HashMap<String, std::rc::Rc<RegistryObject>>>,
    /// The jurisdiction and location hint each registry object was addressed with.
    addressed: RefCell<Vec<Addressed>>,
    kv: FakeKv,
    ledgers: FakeLedgers,
    clock: Clock,
    routing: RoutingConfig,
    keyring: Keyring,
    random: RefCell<Seeded>,
}

#[derive(Debug)]
struct Answered {
    status: u16,
    body: Value,
}

impl Answered {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    fn id(&self) -> String {
        self.body["id"].as_str().expect("an id").to_owned()
    }
}

fn answered(result: Result<Answer, ApiError>) -> Answered {
    match result {
        Ok(answer) => Answered { status: answer.status, body: answer.body },
        Err(error) => Answered { status: error.status(), body: serde_json::from_str(&error.body()).unwrap() },
    }
}

impl Deployment {
    fn new() -> Deployment {
        Deployment::with_legacy(Sqlite::new())
    }

    /// A deployment whose registry object "org" holds `legacy`'s storage.
    fn with_legacy(legacy: Sqlite) -> Deployment {
        let clock = Clock::at(START_MS);
        let deployment = Deployment {
            platform: Platform::new(PlatformStore::open(Sqlite::new().boxed()).unwrap()),
            registries: RefCell::default(),
            addressed: RefCell::default(),
            kv: FakeKv::default(),
            ledgers: FakeLedgers::new(&clock),
            clock,
            routing: RoutingConfig::default_for("https://up.example", "UPSTREAM_API_KEY"),
            keyring: Keyring::parse(KEYS).unwrap(),
            random: RefCell::new(Seeded::new(11)),
        };
        let object = std::rc::Rc::new(RegistryObject::new(legacy));
        deployment.registries.borrow_mut().insert("org".to_owned(), object);
        deployment
    }

    fn object(&self, name: &str) -> std::rc::Rc<RegistryObject> {
        let mut registries = self.registries.borrow_mut();
        registries
            .entry(name.to_owned())
            .or_insert_with(|| std::rc::Rc::new(RegistryObject::new(Sqlite::new())))
            .clone()
    }

    /// A call to organisation `org`'s registry, as the worker or the platform sends it.
    fn registry_call(&self, org: &str, token: &str, method: &str, target: &str, body: &[u8]) -> Answered {
        let (path, query) = target.split_once('?').map_or((target, None), |(p, q)| (p, Some(q)));
        let object = self.object(&registry_object(org));
        let call = Call { method, path, query, credential: Credential::Token(token), body, org, idempotency_key: None };
        let clock = || self.clock.now();
        let around = Surroundings {
            settings: Settings {
                routing: Some(&self.routing),
                pricing_json: "{}",
                keyring: Some(&self.keyring),
                base_urls: BaseUrlPolicy::HttpsOnly,
            },
            admin_token: Some(OPERATOR),
            events: &object.events,
            targets: Targets { records: &self.kv, ledgers: &self.ledgers, clock: &clock },
        };
        let mut random = Seeded::new(self.random.borrow_mut().next());
        answered(ready(object.registry.serve(&call, &around, &mut random)).map(|served| served.answer))
    }

    /// An admin call, routed by the organisation its token names.
    fn call(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> Answered {
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        self.registry_call(org_of_token(token), token, method, &format!("/admin/v1{path}"), &body)
    }

    /// An operator call to the platform.
    fn operator(&self, method: &str, path: &str, body: Option<Value>) -> Answered {
        self.operator_as(OPERATOR, method, path, body)
    }

    /// An operator call with `token`, or with an operator session's id (`tks_…`).
    fn operator_as(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> Answered {
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let target = format!("/admin/v1{path}");
        let (path, query) = target.split_once('?').map_or((target.as_str(), None), |(p, q)| (p, Some(q)));
        let call = Call {
            method,
            path,
            query,
            credential: if token.starts_with("tks_") { Credential::Session(token) } else { Credential::Token(token) },
            body: &body,
            org: "",
            idempotency_key: None,
        };
        let mut random = Seeded::new(self.random.borrow_mut().next());
        answered(ready(self.platform.serve(&call, Some(OPERATOR), self, self.clock.now(), &mut random)))
    }

    /// Creates an organisation; its id and its first Admin's token.
    fn org(&self, name: &str, extra: Value) -> (String, String) {
        let mut body = json!({"name": name, "admin": {"name": format!("{name} admin")}});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let made = self.operator("POST", "/orgs", Some(body));
        assert_eq!(made.status, 201, "{:?}", made.body);
        let token = made.body["admin"]["token"].as_str().unwrap().to_owned();
        (made.body["org"]["id"].as_str().unwrap().to_owned(), token)
    }

    /// Every text an admin or the audit log of `org` could read, and every KV value.
    fn everything_stored(&self) -> String {
        let kv: Vec<String> = self.kv.records.borrow().values().cloned().collect();
        let mut all = kv.join("\n");
        for object in self.registries.borrow().values() {
            for table in ["audit", "principals", "keys", "org_state"] {
                all += &format!("{:?}", object.sql.raw(&format!("SELECT * FROM {table}")));
            }
        }
        all
    }
}

impl Registries for Deployment {
    async fn order(&self, org: &OrgEntry, order: &Order) -> Result<Answer, ApiError> {
        self.addressed.borrow_mut().push((org.registry.clone(), org.jurisdiction, org.location_hint.clone()));
        let body = serde_json::to_vec(order).unwrap();
        let answer = self.registry_call(&org.id, OPERATOR, "POST", ORDER_PATH, &body);
        match answer.status {
            200..=299 => {
                Ok(Answer { status: answer.status, body: answer.body, propagation_pending: false, replayed: false })
            }
            _ => Err(serde_json::from_value(answer.body["error"].clone()).unwrap()),
        }
    }
}

trait Next {
    fn next(&mut self) -> u64;
}

impl Next for Seeded {
    fn next(&mut self) -> u64 {
        use teamkeys::admin::secret::Random;
        let mut bytes = [0; 8];
        self.fill(&mut bytes);
        u64::from_le_bytes(bytes)
    }
}

/// A project and a key in an organisation, by its Admin; the project's and the key's ids.
fn project_and_key(d: &Deployment, admin: &str) -> (String, String) {
    let project = d.call(admin, "POST", "/projects", Some(json!({"name": "search"})));
    assert_eq!(project.status, 201, "{:?}", project.body);
    let key = d.call(admin, "POST", "/keys", Some(json!({"name": "ci", "project": project.id()})));
    assert_eq!(key.status, 201, "{:?}", key.body);
    (project.id(), key.id())
}

#[test]
fn the_operator_creates_lists_and_reads_organisations() {
    let d = Deployment::new();
    let (eu, eu_admin) = d.org("acme", json!({"jurisdiction": "eu", "location_hint": "weur"}));
    assert!(eu.starts_with("org_eu_") && eu_admin.starts_with(&format!("tka_{eu}_")), "{eu} {eu_admin}");
    assert_eq!(
        d.addressed.borrow().last().unwrap(),
        &(format!("org:{eu}"), Some(Jurisdiction::Eu), Some("weur".to_owned())),
        "the registry is created in the jurisdiction, with the hint"
    );
    let me = d.call(&eu_admin, "GET", "/me", None);
    assert_eq!((me.status, me.body["role"].as_str()), (200, Some("admin")));

    let record = d.kv.record(&format!("org:{eu}")).expect("the organisation's record is projected");
    assert_eq!((record["status"].as_str(), record["jurisdiction"].as_str()), (Some("active"), Some("eu")));

    let (other, _) = d.org("globex", json!({}));
    let listed = d.operator("GET", "/orgs?limit=2", None);
    let ids: Vec<&str> = listed.body["data"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [DEFAULT_ORG, eu.as_str()], "the organisation from before organisations is listed first");
    let cursor = listed.body["next_cursor"].as_str().unwrap();
    let rest = d.operator("GET", &format!("/orgs?cursor={cursor}"), None);
    assert_eq!(rest.body["data"][0]["id"].as_str(), Some(other.as_str()));
    assert_eq!(d.operator("GET", &format!("/orgs/{other}"), None).body["name"], "globex");
    assert_eq!(d.operator("GET", "/orgs/org_0000000000000000", None).status, 404);
}

#[test]
fn bad_input_stores_nothing() {
    let d = Deployment::new();
    for (body, code) in [
        (json!({"name": "a", "jurisdiction": "mars", "admin": {"name": "x"}}), "invalid_jurisdiction"),
        (json!({"name": "a", "location_hint": "moon", "admin": {"name": "x"}}), "invalid_location_hint"),
        (json!({"name": "a"}), "invalid_body"),
    ] {
        let refused = d.operator("POST", "/orgs", Some(body));
        assert_eq!((refused.status, refused.code()), (400, code));
    }
    assert_eq!(d.operator("GET", "/orgs", None).body["data"].as_array().unwrap().len(), 1, "the default only");
    assert_eq!(d.registries.borrow().len(), 1, "no registry was opened");
    let (_, admin) = d.org("acme", json!({}));
    assert_eq!(d.operator_as(&admin, "GET", "/orgs", None).code(), "invalid_admin_token", "admins are not operators");
    assert_eq!(d.operator_as("nope", "GET", "/orgs", None).status, 401);
}

#[test]
fn the_operator_token_is_no_admin_of_new_organisations() {
    let d = Deployment::new();
    let (acme, _) = d.org("acme", json!({}));
    let refused = d.registry_call(&acme, OPERATOR, "GET", "/admin/v1/projects", b"");
    assert_eq!((refused.status, refused.code()), (401, "invalid_admin_token"));
    let forged = format!("tka_{acme}_0123456789012345678901234567890123456789");
    assert_eq!(d.call(&forged, "GET", "/me", None).status, 401);
    let unknown = "tka_org_ZZZZZZZZZZZZZZZZ_0123456789012345678901234567890123456789";
    assert_eq!(d.call(unknown, "GET", "/me", None).status, 401, "a registry never opened knows no one");
}

/// Two organisations with identically named projects and keys: each admin sees only its own;
/// every id of the other is answered like a missing one, and each write attempt is audited.
#[test]
fn cross_organisation_ids_answer_like_missing_ones() {
    let d = Deployment::new();
    let (_, a) = d.org("a", json!({}));
    let (_, b) = d.org("b", json!({}));
    let (a_project, a_key) = project_and_key(&d, &a);
    let (b_project, b_key) = project_and_key(&d, &b);
    let a_member = d.call(&a, "POST", "/principals", Some(json!({"name": "m", "role": "member"}))).id();

    for (admin, own_key, own_project) in [(&a, &a_key, &a_project), (&b, &b_key, &b_project)] {
        let keys = d.call(admin, "GET", "/keys", None).body["data"].clone();
        assert_eq!(keys.as_array().unwrap().len(), 1);
        assert_eq!(&keys[0]["id"], own_key);
        let projects = d.call(admin, "GET", "/projects", None).body["data"].clone();
        assert_eq!((projects.as_array().unwrap().len(), &projects[0]["id"]), (1, &json!(own_project)));
    }
    let reads = [
        format!("/keys/{a_key}"),
        format!("/keys/{a_key}/usage"),
        format!("/projects/{a_project}"),
        format!("/projects/{a_project}/usage"),
        format!("/projects/{a_project}/members"),
        format!("/principals/{a_member}"),
    ];
    for path in &reads {
        let refused = d.call(&b, "GET", path, None);
        assert_eq!((refused.status, refused.code()), (404, "not_found"), "GET {path}");
    }
    let listed = d.call(&b, "GET", &format!("/keys?project={a_project}"), None);
    assert_eq!(listed.body["data"], json!([]), "a list filtered by the other's project is empty");
    let writes = [
        ("PATCH", format!("/keys/{a_key}"), Some(json!({"name": "x"}))),
        ("POST", format!("/keys/{a_key}/rotate"), Some(json!({}))),
        ("POST", format!("/keys/{a_key}/disable"), None),
        ("DELETE", format!("/keys/{a_key}"), None),
        ("PATCH", format!("/projects/{a_project}"), Some(json!({"name": "x"}))),
        ("DELETE", format!("/projects/{a_project}"), None),
        ("PUT", format!("/projects/{a_project}/members/{a_member}"), Some(json!({"role": "member"}))),
        ("DELETE", format!("/principals/{a_member}"), None),
    ];
    for (method, path, body) in &writes {
        let refused = d.call(&b, method, path, body.clone());
        assert_eq!((refused.status, refused.code()), (404, "not_found"), "{method} {path}");
    }
    let audit = d.call(&b, "GET", "/audit?limit=100", None).body["data"].clone();
    let denied: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "denied")
        .map(|e| e["target_id"].as_str().unwrap())
        .collect();
    assert_eq!(denied.len(), writes.len(), "every write attempt is audited: {denied:?}");
    let a_audit = d.call(&a, "GET", "/audit?limit=100", None).body["data"].clone();
    assert!(a_audit.as_array().unwrap().iter().all(|e| e["action"] != "denied"), "nothing lands in the other's log");
    assert_eq!(d.call(&a, "GET", &format!("/keys/{a_key}"), None).body["name"], "ci", "nothing changed");
    let usage = d.call(&b, "GET", "/usage", None);
    assert_eq!(usage.body["projects"].as_array().map(Vec::len), Some(1), "{:?}", usage.body);
}

#[test]
fn suspension_refuses_changes_and_tells_every_key_object() {
    let d = Deployment::new();
    let (org, admin) = d.org("acme", json!({"jurisdiction": "eu"}));
    let (project, key) = project_and_key(&d, &admin);
    let (_, disabled) = {
        let k = d.call(&admin, "POST", "/keys", Some(json!({"name": "off", "project": project})));
        (project.clone(), k.id())
    };
    assert_eq!(d.call(&admin, "POST", &format!("/keys/{disabled}/disable"), None).status, 200);

    let suspended = d.operator("POST", &format!("/orgs/{org}/suspend"), None);
    assert_eq!((suspended.status, suspended.body["status"].as_str()), (200, Some("suspended")));
    assert_eq!(d.kv.record(&format!("org:{org}")).unwrap()["status"], "suspended");
    for id in [&key, &disabled] {
        let object = ledger_object(Some(&org), id);
        assert!(d
            .ledgers
            .received
            .borrow()
            .iter()
            .any(|(o, c)| o == &object && *c == Command::Control { control: Control::Suspend }));
        assert_eq!(d.ledgers.jurisdictions.borrow()[&object], Some(Jurisdiction::Eu), "addressed in its jurisdiction");
    }
    let refused = d.call(&admin, "POST", "/projects", Some(json!({"name": "x"})));
    assert_eq!((refused.status, refused.code()), (403, "organisation_suspended"));
    assert_eq!(d.call(&admin, "GET", &format!("/keys/{key}"), None).status, 200, "reads still answer");

    assert_eq!(d.operator("POST", &format!("/orgs/{org}/resume"), None).status, 200);
    assert_eq!(d.kv.record(&format!("org:{org}")).unwrap()["status"], "active");
    let state = d.ledgers.state_of(&disabled).unwrap();
    let admit = state.clone().handle(
        Command::Admit {
            secret_version: 1,
            limits: Default::default(),
            policy_version: 0,
            ask: teamkeys::limits::Ask::ZERO,
            scopes: Default::default(),
            model: None,
            end_user: None,
        },
        START_MS,
    );
    assert!(
        format!("{:?}", admit.reply).contains("KeyDisabled"),
        "resuming does not enable a disabled key: {:?}",
        admit.reply
    );
    assert_eq!(d.call(&admin, "POST", "/projects", Some(json!({"name": "x"}))).status, 201);
}

#[test]
fn credentials_are_write_only_and_routing_names_them() {
    let d = Deployment::new();
    let (org, admin) = d.org("acme", json!({"platform_routing": false}));
    assert_eq!(d.call(&admin, "GET", "/org/routing", None).body, json!({"groups": []}));
    let put = |name: &str, body: Value| d.call(&admin, "PUT", &format!("/org/credentials/{name}"), Some(body));

    let stored = put("main", json!({"provider": "openai", "secret": SECRET}));
    assert_eq!((stored.status, stored.body["masked"].as_str()), (200, Some("sk-…6789")), "{:?}", stored.body);
    for (body, why) in [
        (json!({"provider": "openai_compatible", "secret": SECRET, "base_url": "http://llm.example"}), "http"),
        (json!({"provider": "nope", "secret": SECRET}), "provider"),
        (json!({"provider": "openai", "secret": ""}), "empty"),
    ] {
        let refused = put("other", body);
        assert_eq!((refused.status, refused.code()), (400, "invalid_credential"), "{why}");
        assert!(!refused.body.to_string().contains(SECRET), "{why}");
    }
    let listed = d.call(&admin, "GET", "/org/credentials", None);
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1, "nothing stored by refusals");

    let routing = |credential: Value| {
        json!({"groups": [{"name": "main", "models": ["*"], "targets": [
            {"family": "openai", "credential": credential}]}]})
    };
    let worker_secret = json!({"groups": [{"name": "main", "models": ["*"], "targets": [
        {"base_url": "https://api.openai.com/v1", "family": "openai", "credential_secret": "UPSTREAM_API_KEY"}]}]});
    for (body, why) in [(routing(json!("missing")), "unknown credential"), (worker_secret, "a worker secret")] {
        let refused = d.call(&admin, "PUT", "/org/routing", Some(body));
        assert_eq!((refused.status, refused.code()), (400, "invalid_routing"), "{why}: {:?}", refused.body);
    }
    assert_eq!(d.call(&admin, "PUT", "/org/routing", Some(routing(json!("main")))).status, 200);
    let record = d.kv.record(&format!("org:{org}")).unwrap();
    assert_eq!(record["routing"]["groups"][0]["targets"][0]["credential"], "main");
    assert!(record["credentials"]["main"]["sealed"].is_object());
    let key_groups = d.call(&admin, "GET", "/org/routing", None).body["groups"][0]["name"].clone();
    assert_eq!(key_groups, "main");
    let in_use = d.call(&admin, "DELETE", "/org/credentials/main", None);
    assert_eq!((in_use.status, in_use.code()), (400, "invalid_routing"));

    let audit = d.call(&admin, "GET", "/audit?limit=100", None);
    assert!(audit.body.to_string().contains("sk-…6789"), "the audit log holds the mask");
    assert!(!d.everything_stored().contains(SECRET), "the plaintext is in no KV value, row or audit entry");
    assert!(!audit.body.to_string().contains(SECRET) && !listed.body.to_string().contains(SECRET));
}

#[test]
fn deleting_an_organisation_removes_what_it_holds() {
    let d = Deployment::new();
    let (org, admin) = d.org("acme", json!({}));
    let (_, key) = project_and_key(&d, &admin);
    assert!(d.kv.records.borrow().keys().any(|name| name.starts_with("key:")));
    assert_eq!(d.operator("DELETE", &format!("/orgs/{org}"), None).body["status"], "deleted");
    assert!(d.kv.records.borrow().is_empty(), "key records and the org record are gone: {:?}", d.kv.records);
    assert!(d.ledgers.ops(&key).contains(&"control".to_owned()));
    let object = d.object(&registry_object(&org));
    assert!(object.sql.raw("SELECT * FROM keys").is_empty() && object.sql.raw("SELECT * FROM audit").is_empty());
    assert_eq!(d.call(&admin, "GET", "/me", None).status, 401);
    assert_eq!(d.operator("POST", &format!("/orgs/{org}/resume"), None).status, 404);
    assert_eq!(d.operator("GET", &format!("/orgs/{org}"), None).body["status"], "deleted", "the id stays taken");
}

/// A registry written before organisations (no organisation state, a token without an
/// organisation, a key record without `org`) serves on as the default organisation.
#[test]
fn a_single_organisation_deployment_upgrades_in_place() {
    let legacy = Sqlite::new();
    legacy.raw("CREATE TABLE principals (id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, doc TEXT NOT NULL)");
    legacy.raw("CREATE TABLE projects (id TEXT PRIMARY KEY, doc TEXT NOT NULL)");
    legacy.raw("CREATE TABLE keys (id TEXT PRIMARY KEY, project TEXT NOT NULL, creator TEXT NOT NULL, status TEXT NOT NULL, doc TEXT NOT NULL)");
    legacy.raw("CREATE TABLE key_secrets (hash TEXT PRIMARY KEY, key_id TEXT NOT NULL, version INTEGER NOT NULL, valid_until INTEGER)");
    let old_token = "tka_0123456789abcdefghijABCDEFGHIJ0123456789";
    let hash = teamkeys::policy::key_hash::sha256_hex(old_token);
    legacy.raw(&format!(
        r#"INSERT INTO principals VALUES ('prn_old', '{hash}', '{{"id":"prn_old","name":"Old","role":"admin","created_at":1,"created_by":"admin","masked_token":"tka_...6789"}}')"#
    ));
    legacy.raw(r#"INSERT INTO projects VALUES ('prj_old', '{"id":"prj_old","name":"search","created_at":1,"created_by":"admin"}')"#);
    legacy.raw(r#"INSERT INTO keys VALUES ('key_old', 'prj_old', 'prn_old', 'active', '{"id":"key_old","project":"prj_old","creator":"prn_old","name":"ci","tags":[],"status":"active","created_at":1,"updated_at":1,"secret_version":1,"masked":"tk_...abcd","policy":{}}')"#);
    let key_hash = teamkeys::policy::key_hash::sha256_hex("tk_old");
    legacy.raw(&format!("INSERT INTO key_secrets VALUES ('{key_hash}', 'key_old', 1, NULL)"));

    let d = Deployment::with_legacy(legacy);
    // The old ledger object holds counters: it must be the one still addressed.
    let old_object = ledger_object(None, "key_old");
    d.ledgers.states.borrow_mut().insert(old_object.clone(), Default::default());

    let me = d.call(old_token, "GET", "/me", None);
    assert_eq!((me.status, me.body["id"].as_str()), (200, Some("prn_old")), "{:?}", me.body);
    assert_eq!(d.call(OPERATOR, "GET", "/keys/key_old", None).status, 200, "ADMIN_TOKEN stays its Admin");
    let patched = d.call(old_token, "PATCH", "/keys/key_old", Some(json!({"limits": {"rpm": 5}})));
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    let record = d.kv.record(&teamkeys::policy::key_hash::record_name_of_hash(&key_hash)).unwrap();
    assert!(record.get("org").is_none(), "the old key keeps naming its ledger object by its id: {record}");
    assert!(d.ledgers.received.borrow().iter().all(|(object, _)| object == &old_object), "no counter is lost");
    let usage = d.call(old_token, "GET", "/keys/key_old/usage", None);
    assert_eq!(usage.status, 200, "{:?}", usage.body);

    let listed = d.operator("GET", "/orgs", None);
    assert_eq!(listed.body["data"][0]["registry"], "org", "the platform lists it, pointing at the old object");
    let new_key = d.call(old_token, "POST", "/keys", Some(json!({"name": "new", "project": "prj_old"})));
    assert_eq!(new_key.body["org"], DEFAULT_ORG, "new keys name their organisation");
    let suspended = d.operator("POST", &format!("/orgs/{DEFAULT_ORG}/suspend"), None);
    assert_eq!(suspended.status, 200, "{:?}", suspended.body);
    assert_eq!(d.call(old_token, "POST", "/projects", Some(json!({"name": "x"}))).code(), "organisation_suspended");
    assert!(d
        .ledgers
        .received
        .borrow()
        .iter()
        .any(|(object, c)| object == &old_object && *c == Command::Control { control: Control::Suspend }));
}

#[test]
fn the_operator_signs_in_to_a_session_kept_by_the_platform() {
    let deployment = Deployment::new();
    let signed = deployment.operator("POST", "/sessions", Some(json!({})));
    assert_eq!(signed.status, 201, "{:?}", signed.body);
    let session = signed.body["session_id"].as_str().unwrap().to_owned();
    assert!(session.starts_with("tks_platform_"));
    assert_eq!(signed.body["whoami"]["operator"], true);
    assert!(signed.body["whoami"]["actions"].as_array().unwrap().contains(&json!("orgs.manage")));
    let listed = deployment.operator_as(&session, "GET", "/orgs", None);
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    assert_eq!(
        deployment.operator_as(&session, "POST", "/sessions", Some(json!({}))).status,
        400,
        "no session makes another"
    );
    assert_eq!(deployment.operator_as(&session, "DELETE", "/sessions/current", None).status, 204);
    assert_eq!(deployment.operator_as(&session, "GET", "/orgs", None).body["error"]["code"], "session_expired");
    assert_eq!(deployment.operator_as("tka_not_the_operator_token", "POST", "/sessions", None).status, 401);
}
