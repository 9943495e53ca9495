//! The admin API's use-cases on the host: the registry's core over real SQLite, with KV and the
//! ledger objects faked (and made to fail). Covers the walk from an empty deployment to a
//! rotated and deleted key, a few cells of the permission table, the pending work a KV or
//! object failure leaves (what the answer says, what is retried, in which order), and
//! boundaries that cannot be widened: project ceilings, required routing groups, IP allowlists
//! and expiry, and the request path holding the records the handlers write to them.

mod common;

use common::{ready, Clock, FakeKv, FakeLedgers, Seeded, Sqlite};
use serde_json::{json, Value};
use std::cell::RefCell;
use teamkeys::admin::api::ports::LedgerAddress;
use teamkeys::admin::api::propagate::{Drained, Targets};
use teamkeys::admin::api::step::Settings;
use teamkeys::admin::api::{Call, Registry, Surroundings};
use teamkeys::admin::retention::Retention;
use teamkeys::admin::session::Credential;
use teamkeys::admin::store::Store;
use teamkeys::credentials::BaseUrlPolicy;
use teamkeys::credentials::Keyring;
use teamkeys::events::pending::EventQueue;
use teamkeys::family::Family;
use teamkeys::naming::{ledger_object, DEFAULT_ORG};
use teamkeys::policy::key_hash::{record_name_of_hash, sha256_hex};
use teamkeys::policy::{authorize, CallFacts, KeyPolicy, RoutingConfig};

const ADMIN: &str = "admin-token-0123456789";
const START_MS: u64 = 1_750_000_000_000;

/// The registry as its Durable Object runs it, on the host.
struct Admin {
    sql: Sqlite,
    registry: Registry,
    events: EventQueue,
    kv: FakeKv,
    ledgers: FakeLedgers,
    clock: Clock,
    routing: RoutingConfig,
    random: RefCell<Seeded>,
    /// `CREDENTIALS_KEYS`, if set.
    keyring: Option<Keyring>,
}

/// What the client gets.
#[derive(Debug)]
struct Answered {
    status: u16,
    body: Value,
    /// `teamkeys-propagation: pending`.
    pending: bool,
    /// `idempotent-replayed: true`.
    replayed: bool,
    drained: Drained,
}

impl Answered {
    fn id(&self) -> String {
        self.body["id"].as_str().expect("an id").to_owned()
    }

    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl Admin {
    fn new() -> Admin {
        let sql = Sqlite::new();
        let clock = Clock::at(START_MS);
        Admin {
            registry: Registry::new(Store::open(sql.boxed()).unwrap()),
            events: EventQueue::open(sql.boxed()).unwrap(),
            sql,
            kv: FakeKv::default(),
            ledgers: FakeLedgers::new(&clock),
            clock,
            routing: routing(),
            random: RefCell::new(Seeded::new(7)),
            keyring: Some(Keyring::parse("k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=").unwrap()),
        }
    }

    /// `method path?query` with `token` (or a session id, `tks_…`), as the edge forwards it.
    fn call(&self, token: &str, method: &str, target: &str, body: Option<Value>) -> Answered {
        self.call_once(token, method, target, body, None)
    }

    /// [`Admin::call`] with an `Idempotency-Key`.
    fn call_once(
        &self,
        token: &str,
        method: &str,
        target: &str,
        body: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> Answered {
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        // A console session's id is passed as the worker forwards it, after its CSRF check.
        let credential = if token.starts_with("tks_") { Credential::Session(token) } else { Credential::Token(token) };
        let path = if path.starts_with('/') && !path.starts_with("/admin") && path != "/whoami" {
            format!("/admin/v1{path}")
        } else {
            path.to_owned()
        };
        let call = Call { method, path: &path, query, credential, body: &body, idempotency_key, org: DEFAULT_ORG };
        let clock = || self.clock.now();
        let around = Surroundings {
            settings: Settings {
                routing: Some(&self.routing),
                pricing_json: r#"[{"model": "gpt-4o", "input": 1, "output": 2}]"#,
                keyring: self.keyring.as_ref(),
                base_urls: BaseUrlPolicy::HttpsOnly,
            },
            admin_token: Some(ADMIN),
            events: &self.events,
            targets: Targets { records: &self.kv, ledgers: &self.ledgers, clock: &clock },
        };
        let mut random = self.random.borrow_mut();
        match ready(self.registry.serve(&call, &around, &mut *random)) {
            Ok(served) => Answered {
                status: served.answer.status,
                body: served.answer.body,
                pending: served.answer.propagation_pending,
                replayed: served.answer.replayed,
                drained: served.drained,
            },
            Err(error) => Answered {
                status: error.status(),
                body: serde_json::from_str(&error.body()).unwrap(),
                pending: false,
                replayed: false,
                drained: Drained::default(),
            },
        }
    }

    fn alarm(&self) -> Drained {
        let clock = || self.clock.now();
        ready(self.registry.alarm(&Targets { records: &self.kv, ledgers: &self.ledgers, clock: &clock }))
    }

    /// What the alarm answers with nothing to do: wake when the oldest audit entry's retention
    /// ends.
    fn idle(&self) -> Drained {
        let oldest = self.sql.raw("SELECT json_extract(doc, '$.at_ms') AS at FROM audit ORDER BY id LIMIT 1");
        let at = oldest[0]["at"].as_u64().expect("an audit entry");
        Drained { wake_at: Some(at + Retention::default().audit_ms), failures: vec![] }
    }

    fn pending_rows(&self) -> usize {
        self.sql.raw("SELECT id FROM pending_work").len()
    }

    /// An organisation with a project, its owner and a member; their tokens and the project id.
    fn team(&self) -> Team {
        let project = self.call(ADMIN, "POST", "/projects", Some(json!({"name": "search"})));
        assert_eq!(project.status, 201, "{:?}", project.body);
        let project = project.id();
        let principal = |token: &str, name: &str, role: &str| {
            let made = self.call(
                token,
                "POST",
                "/principals",
                Some(json!({"name": name, "role": role, "projects": [project]})),
            );
            assert_eq!(made.status, 201, "{:?}", made.body);
            (made.id(), made.body["token"].as_str().unwrap().to_owned())
        };
        let (_, owner) = principal(ADMIN, "Olga", "project_owner");
        let (member_id, member) = principal(&owner, "Max", "member");
        Team { project, owner, member, member_id }
    }

    fn create_key(&self, token: &str, body: Value) -> (String, String) {
        let made = self.call(token, "POST", "/keys", Some(body));
        assert_eq!(made.status, 201, "{:?}", made.body);
        (made.id(), made.body["key"].as_str().unwrap().to_owned())
    }
}

/// Three groups serving every OpenAI model, in this order: `default`, `us`, `eu`.
fn routing() -> RoutingConfig {
    let family = serde_json::to_value(Family::OpenAi).unwrap();
    let group = |name: &str| {
        json!({"name": name, "models": ["*"],
            "targets": [{"base_url": format!("https://{name}.test"), "family": family, "credential_secret": "S"}]})
    };
    RoutingConfig::from_json(&json!({"groups": [group("default"), group("us"), group("eu")]}).to_string()).unwrap()
}

struct Team {
    project: String,
    owner: String,
    member: String,
    member_id: String,
}

fn kv_name(secret: &str) -> String {
    record_name_of_hash(&sha256_hex(secret))
}

/// The first value under `field` anywhere in `value` (records and views nest policy fields).
fn find<'v>(value: &'v Value, field: &str) -> Option<&'v Value> {
    match value {
        Value::Object(fields) => fields.get(field).or_else(|| fields.values().find_map(|v| find(v, field))),
        Value::Array(items) => items.iter().find_map(|v| find(v, field)),
        _ => None,
    }
}

fn ids(list: &Answered) -> Vec<String> {
    list.body["data"].as_array().unwrap().iter().map(|k| k["id"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn from_an_empty_deployment_to_a_rotated_and_deleted_key() {
    let admin = Admin::new();
    assert_eq!(admin.call(ADMIN, "GET", "/me", None).body["role"], "admin");
    assert_eq!(admin.call("tka_unknown", "GET", "/me", None).code(), "invalid_admin_token");
    let policy = admin.call(ADMIN, "PUT", "/org/policy", Some(json!({"limits": {"rpm": 600}})));
    assert_eq!(policy.status, 200, "{:?}", policy.body);

    let team = admin.team();
    let me = admin.call(&team.member, "GET", "/me", None);
    assert_eq!(
        (me.body["role"].as_str(), me.body["projects"][0]["project"].as_str()),
        (Some("member"), Some(team.project.as_str()))
    );

    // Create: the plaintext once, the KV record and the ledger's limits before the answer.
    let body = json!({"name": "ci bot", "project": team.project, "tags": ["ci"], "limits": {"rpm": 60}});
    let created = admin.call(&team.member, "POST", "/keys", Some(body));
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert!(!created.pending);
    let (key_id, secret) = (created.id(), created.body["key"].as_str().unwrap().to_owned());
    assert!(secret.starts_with("tk_") && secret.len() == 43);
    assert_eq!(created.body["masked"], format!("tk_...{}", &secret[39..]));
    let record = admin.kv.record(&kv_name(&secret)).expect("the KV record is written");
    assert_eq!(record["id"], key_id.as_str());
    assert_eq!(find(&record, "rpm"), Some(&json!(60)));
    assert_eq!(admin.ledgers.ops(&key_id), ["push_limits"]);
    assert!(!admin.call(&team.member, "GET", &format!("/keys/{key_id}"), None).body.to_string().contains(&secret));

    // Above the project's boundary: refused, naming the field.
    let too_fast = json!({"name": "fast", "project": team.project, "limits": {"rpm": 601}});
    let refused = admin.call(&team.member, "POST", "/keys", Some(too_fast));
    assert_eq!((refused.status, refused.code()), (400, "boundary_exceeded"));
    assert!(refused.body["error"]["message"].as_str().unwrap().starts_with("limits.rpm"), "{:?}", refused.body);

    // Update.
    let patched = admin.call(
        &team.member,
        "PATCH",
        &format!("/keys/{key_id}"),
        Some(json!({"name": "ci", "limits": {"rpm": 30}})),
    );
    assert_eq!((patched.status, patched.body["name"].as_str()), (200, Some("ci")));
    assert_eq!(find(&admin.kv.record(&kv_name(&secret)).unwrap(), "rpm"), Some(&json!(30)));

    // Disable and enable reach the ledger object before the answer.
    for (action, status) in [("disable", "disabled"), ("enable", "active")] {
        let changed = admin.call(&team.member, "POST", &format!("/keys/{key_id}/{action}"), None);
        assert_eq!(
            (changed.status, changed.body["status"].as_str(), changed.pending),
            (200, Some(status), false),
            "{action}"
        );
    }
    assert_eq!(admin.ledgers.ops(&key_id), ["push_limits", "report", "push_limits", "control", "control"]);

    // Rotate with grace: both secrets in KV until the grace ends, then only the new one.
    let rotated =
        admin.call(&team.member, "POST", &format!("/keys/{key_id}/rotate"), Some(json!({"grace_seconds": 60})));
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let new_secret = rotated.body["key"].as_str().unwrap().to_owned();
    assert_eq!(rotated.body["previous_secret_valid_until"], START_MS + 60_000);
    assert_eq!(rotated.drained.wake_at, Some(START_MS), "the alarm is set at once, for the event hand-off");
    assert!(admin.kv.record(&kv_name(&secret)).is_some() && admin.kv.record(&kv_name(&new_secret)).is_some());
    assert_eq!(admin.alarm().wake_at, Some(START_MS + 60_000), "then for the end of the grace");
    admin.clock.advance(60_000);
    assert_eq!(admin.alarm(), admin.idle());
    assert!(admin.kv.record(&kv_name(&secret)).is_none(), "the old secret's record is deleted after its grace");
    assert_eq!(admin.kv.record(&kv_name(&new_secret)).unwrap()["secret_version"], 2);

    // Usage, from the ledger objects.
    let usage = admin.call(&team.member, "GET", &format!("/keys/{key_id}/usage"), None);
    assert_eq!((usage.status, usage.body["key_id"].as_str()), (200, Some(key_id.as_str())), "{:?}", usage.body);
    let project_usage = admin.call(&team.owner, "GET", &format!("/projects/{}/usage", team.project), None);
    assert_eq!(project_usage.body["keys"][0]["key_id"], key_id.as_str());
    let org_usage = admin.call(ADMIN, "GET", "/usage", None);
    assert_eq!(org_usage.status, 200, "{:?}", org_usage.body);

    // Delete: KV forgets the key, the list hides it unless asked for deleted keys.
    let deleted = admin.call(&team.member, "DELETE", &format!("/keys/{key_id}"), None);
    assert_eq!((deleted.status, deleted.body["status"].as_str()), (200, Some("deleted")));
    assert!(admin.kv.records.borrow().is_empty());
    assert!(ids(&admin.call(ADMIN, "GET", "/keys", None)).is_empty());
    assert_eq!(ids(&admin.call(ADMIN, "GET", "/keys?status=deleted", None)), [key_id.as_str()]);
    let again = admin.call(&team.member, "POST", &format!("/keys/{key_id}/rotate"), Some(json!({})));
    assert_eq!(again.status, 409, "{:?}", again.body);

    // Audit: every change, newest first, for Admins only.
    let audit = admin.call(ADMIN, "GET", "/audit?limit=3", None);
    let actions: Vec<&str> =
        audit.body["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["keys.delete", "keys.rotate", "keys.enable"]);
    assert!(audit.body["next_cursor"].is_string());
    assert_eq!(admin.call(&team.owner, "GET", "/audit", None).code(), "permission_denied");
    assert!(!audit.body.to_string().contains(&new_secret), "no secret in the audit log");

    // Events were queued for the outbox in the same steps.
    let waiting = admin.events.oldest(100).unwrap();
    let kinds: Vec<String> = waiting.events.iter().map(|e| e.kind.as_str().to_owned()).collect();
    assert_eq!(kinds, ["key.created", "key.updated", "key.disabled", "key.enabled", "key.rotated", "key.deleted"]);
    assert_eq!(admin.pending_rows(), 0);
}

#[test]
fn key_lists_page_and_filter_within_the_callers_scope() {
    let admin = Admin::new();
    let team = admin.team();
    let other = admin.call(ADMIN, "POST", "/projects", Some(json!({"name": "other"}))).id();
    let mut mine = Vec::new();
    for (i, tag) in ["a", "b", "a"].iter().enumerate() {
        let body = json!({"name": format!("k{i}"), "project": team.project, "tags": [tag]});
        mine.push(admin.create_key(&team.member, body).0);
    }
    let (owners, _) = admin.create_key(&team.owner, json!({"name": "owner's", "project": team.project}));
    let (elsewhere, _) = admin.create_key(ADMIN, json!({"name": "elsewhere", "project": other}));

    let first = admin.call(ADMIN, "GET", "/keys?limit=2", None);
    assert_eq!(ids(&first), mine[..2]);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = admin.call(ADMIN, "GET", &format!("/keys?limit=2&cursor={cursor}"), None);
    assert_eq!(ids(&second), [mine[2].clone(), owners.clone()]);
    let third = admin.call(
        ADMIN,
        "GET",
        &format!("/keys?limit=2&cursor={}", second.body["next_cursor"].as_str().unwrap()),
        None,
    );
    assert_eq!((ids(&third), &third.body["next_cursor"]), (vec![elsewhere.clone()], &Value::Null));

    assert_eq!(ids(&admin.call(ADMIN, "GET", "/keys?tag=a", None)), [mine[0].clone(), mine[2].clone()]);
    assert_eq!(ids(&admin.call(ADMIN, "GET", &format!("/keys?project={other}"), None)), [elsewhere.as_str()]);
    let by_member = admin.call(ADMIN, "GET", &format!("/keys?creator={}", team.member_id), None);
    assert_eq!(ids(&by_member), mine);
    admin.call(ADMIN, "POST", &format!("/keys/{}/disable", mine[1]), None);
    assert_eq!(ids(&admin.call(ADMIN, "GET", "/keys?status=disabled", None)), [mine[1].clone()]);

    // A member lists their own keys in their projects; an owner every key of their projects.
    assert_eq!(ids(&admin.call(&team.member, "GET", "/keys", None)), mine);
    assert_eq!(ids(&admin.call(&team.owner, "GET", "/keys", None)), [&mine[..], &[owners]].concat());
    let misspelt = admin.call(ADMIN, "GET", "/keys?tags=a", None);
    assert_eq!((misspelt.status, misspelt.code()), (400, "unknown_parameter"));
    assert_eq!(admin.call(ADMIN, "GET", "/keys?status=gone", None).code(), "invalid_field");
}

#[test]
fn the_permission_table_holds_over_the_handlers() {
    let admin = Admin::new();
    let team = admin.team();
    let (members_key, _) = admin.create_key(&team.member, json!({"name": "m", "project": team.project}));
    let (owners_key, _) = admin.create_key(&team.owner, json!({"name": "o", "project": team.project}));
    let finance = admin.call(ADMIN, "POST", "/principals", Some(json!({"name": "Fin", "role": "finance"})));
    let finance = finance.body["token"].as_str().unwrap().to_owned();
    let project = team.project.as_str();
    let cells: [(&str, &str, &str, Option<Value>, u16); 10] = [
        (&team.member, "POST", "/projects", Some(json!({"name": "x"})), 403),
        (&team.member, "GET", &format!("/keys/{owners_key}"), None, 403),
        (&team.member, "GET", &format!("/keys/{members_key}"), None, 200),
        (&team.owner, "POST", &format!("/keys/{members_key}/disable"), None, 200),
        (&team.owner, "PUT", "/org/policy", Some(json!({})), 403),
        (&team.owner, "POST", "/principals", Some(json!({"name": "A", "role": "admin"})), 403),
        (&finance, "GET", &format!("/projects/{project}/usage"), None, 200),
        (&finance, "POST", "/keys", Some(json!({"name": "f", "project": project})), 403),
        (&finance, "GET", &format!("/keys/{members_key}"), None, 200),
        (&team.member, "GET", "/org/policy", None, 403),
    ];
    for (token, method, path, body, status) in cells {
        let answered = admin.call(token, method, path, body);
        assert_eq!(answered.status, status, "{method} {path}: {:?}", answered.body);
        if status == 403 {
            assert_eq!(answered.code(), "permission_denied");
            assert!(answered.body["error"]["message"].as_str().unwrap().starts_with("Missing permission '"));
        }
    }
    let unknown = admin.call(&team.member, "GET", "/keys/key_0000000000000000", None);
    assert_eq!(unknown.status, 404);
}

#[test]
fn a_change_whose_kv_write_fails_is_answered_pending_and_applied_by_the_retry() {
    let admin = Admin::new();
    let team = admin.team();
    admin.kv.unreachable.set(true);
    let created = admin.call(&team.member, "POST", "/keys", Some(json!({"name": "k", "project": team.project})));
    assert_eq!((created.status, created.pending), (201, true), "the change is made; its propagation waits");
    let secret = created.body["key"].as_str().unwrap().to_owned();
    assert!(admin.kv.record(&kv_name(&secret)).is_none());
    assert_eq!(created.drained.wake_at, Some(START_MS), "the alarm is set at once, for the event hand-off");
    assert_eq!(created.drained.failures.len(), 1, "{:?}", created.drained.failures);
    assert_eq!(admin.alarm().wake_at, Some(START_MS + 1_000), "the retry is due after the first backoff");
    assert_eq!(admin.ledgers.ops(&created.id()), ["push_limits"], "the ledger lane is not held back by KV's");
    let last_error = admin.sql.raw("SELECT attempts, last_error FROM pending_work");
    assert_eq!(
        (last_error[0]["attempts"].clone(), last_error[0]["last_error"].clone()),
        (json!(1), json!("KV unreachable"))
    );

    // Still down at the retry: the backoff doubles.
    admin.clock.advance(1_000);
    assert_eq!(admin.alarm().wake_at, Some(START_MS + 1_000 + 2_000));

    // Back: the next retry writes the record; nothing waits.
    admin.kv.unreachable.set(false);
    admin.clock.advance(1_999);
    admin.alarm();
    assert!(admin.kv.record(&kv_name(&secret)).is_none(), "not due yet");
    admin.clock.advance(1);
    assert_eq!(admin.alarm(), admin.idle());
    assert!(admin.kv.record(&kv_name(&secret)).is_some());
    assert_eq!(admin.pending_rows(), 0);
    assert!(!admin.call(ADMIN, "POST", &format!("/keys/{}/disable", created.id()), None).pending);
}

#[test]
fn a_registry_write_that_did_not_reach_kv_is_repaired_with_the_newest_state() {
    let admin = Admin::new();
    let team = admin.team();
    let (key_id, secret) =
        admin.create_key(&team.member, json!({"name": "k", "project": team.project, "limits": {"rpm": 50}}));
    admin.kv.unreachable.set(true);
    for rpm in [40, 20] {
        let patched =
            admin.call(&team.member, "PATCH", &format!("/keys/{key_id}"), Some(json!({"limits": {"rpm": rpm}})));
        assert_eq!((patched.status, patched.pending), (200, true));
    }
    assert_eq!(
        find(&admin.call(ADMIN, "GET", &format!("/keys/{key_id}"), None).body, "rpm"),
        Some(&json!(20)),
        "the registry has it"
    );
    assert_eq!(find(&admin.kv.record(&kv_name(&secret)).unwrap(), "rpm"), Some(&json!(50)), "KV does not yet");
    let kv_rows = admin.sql.raw(&format!("SELECT id FROM pending_work WHERE lane = 'kv:{key_id}'"));
    assert_eq!(kv_rows.len(), 1, "a projection already pending is not queued twice");

    admin.kv.unreachable.set(false);
    admin.clock.advance(300_000);
    admin.alarm();
    assert_eq!(find(&admin.kv.record(&kv_name(&secret)).unwrap(), "rpm"), Some(&json!(20)));
    assert_eq!(admin.pending_rows(), 0);
}

#[test]
fn ledger_controls_wait_for_an_unreachable_object_and_arrive_in_order() {
    let admin = Admin::new();
    let team = admin.team();
    let (key_id, secret) = admin.create_key(&team.member, json!({"name": "k", "project": team.project}));
    admin.ledgers.unreachable.set(true);
    let disabled = admin.call(&team.member, "POST", &format!("/keys/{key_id}/disable"), None);
    assert_eq!((disabled.status, disabled.pending), (200, true));
    assert_eq!(admin.kv.record(&kv_name(&secret)).unwrap()["status"], "disabled", "the KV lane goes on");
    admin.ledgers.unreachable.set(false);
    let enabled = admin.call(&team.member, "POST", &format!("/keys/{key_id}/enable"), None);
    assert!(enabled.pending, "the enable waits behind the disable's retry, though the object is back");
    assert_eq!(admin.ledgers.ops(&key_id), ["push_limits"]);

    admin.clock.advance(300_000);
    assert_eq!(admin.alarm(), admin.idle());
    assert_eq!(admin.ledgers.ops(&key_id), ["push_limits", "control", "control"]);
    let controls: Vec<Value> = admin
        .ledgers
        .received
        .borrow()
        .iter()
        .skip(1)
        .map(|(_, c)| serde_json::to_value(c).unwrap()["control"].clone())
        .collect();
    assert_eq!(
        controls,
        [json!({"action": "disable"}), json!({"action": "enable"})],
        "a disable is never overtaken by a later enable"
    );
    assert_eq!(admin.pending_rows(), 0);
}

#[test]
fn tightening_a_boundary_re_projects_every_key_under_it() {
    let admin = Admin::new();
    let team = admin.team();
    let (key_id, secret) =
        admin.create_key(&team.member, json!({"name": "k", "project": team.project, "limits": {"rpm": 100}}));
    let rebounded = admin.call(
        &team.owner,
        "PATCH",
        &format!("/projects/{}", team.project),
        Some(json!({"boundary": {"limits": {"rpm": 10}}})),
    );
    assert_eq!(rebounded.status, 200, "{:?}", rebounded.body);
    let pushed = admin.ledgers.received.borrow().last().cloned().unwrap();
    assert_eq!(pushed.0, ledger_object(Some(DEFAULT_ORG), &key_id));
    assert_eq!(
        find(&serde_json::to_value(&pushed.1).unwrap(), "rpm"),
        Some(&json!(10)),
        "the ledger enforces the boundary at once"
    );
    assert!(admin.kv.record(&kv_name(&secret)).unwrap().to_string().contains("10"));
}

#[test]
fn a_usage_report_fails_closed_when_a_ledger_object_is_unreachable() {
    let admin = Admin::new();
    let team = admin.team();
    let (key_id, _) = admin.create_key(&team.member, json!({"name": "k", "project": team.project}));
    admin.ledgers.unreachable.set(true);
    for (token, path) in
        [(&team.member, format!("/keys/{key_id}/usage")), (&team.owner, format!("/projects/{}/usage", team.project))]
    {
        let usage = admin.call(token, "GET", &path, None);
        assert_eq!((usage.status, usage.code()), (503, "ledger_unavailable"), "{path}");
    }
    assert_eq!(admin.call(ADMIN, "GET", "/usage", None).status, 503);
}

const DAY_MS: u64 = 86_400_000;

/// A project boundary requiring every constrainable field.
fn strict_boundary() -> Value {
    json!({"models": {"allow": ["gpt-*"]}, "routing_groups": ["eu", "us"], "ip_allowlist": ["10.0.0.0/8"],
        "limits": {"rpm": 100}, "max_key_lifetime_days": 30})
}

/// `base` with `field` replaced by `value` (or removed, for `null`).
fn with(base: &Value, field: &str, value: Value) -> Value {
    let mut changed = base.clone();
    match value {
        Value::Null => changed.as_object_mut().unwrap().remove(field),
        value => changed.as_object_mut().unwrap().insert(field.to_owned(), value),
    };
    changed
}

impl Admin {
    /// A project whose boundary an Admin set (and so its ceiling), with an owner.
    fn bounded_team(&self, boundary: Value) -> Team {
        let team = self.team();
        let both = json!({"ceiling": boundary, "boundary": boundary});
        let set = self.call(ADMIN, "PATCH", &format!("/projects/{}", team.project), Some(both));
        assert_eq!(set.status, 200, "{:?}", set.body);
        team
    }

    /// Asserts a 400 `boundary_exceeded` whose message starts with `prefix`.
    fn refused(&self, answered: Answered, prefix: &str) {
        assert_eq!((answered.status, answered.code()), (400, "boundary_exceeded"), "{prefix}: {:?}", answered.body);
        let message = answered.body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(prefix), "expected '{prefix}…', got '{message}'");
    }
}

#[test]
fn an_admin_set_boundary_is_the_ceiling_and_owners_narrow_within_it() {
    let admin = Admin::new();
    let project = admin.call(ADMIN, "POST", "/projects", Some(json!({"name": "p", "boundary": strict_boundary()})));
    assert_eq!(project.status, 201, "{:?}", project.body);
    assert_eq!(project.body["ceiling"], project.body["boundary"], "the Admin's boundary becomes the ceiling");
    let id = project.id();
    let owner =
        admin.call(ADMIN, "POST", "/principals", Some(json!({"name": "O", "role": "project_owner", "projects": [id]})));
    let owner = owner.body["token"].as_str().unwrap().to_owned();
    let path = format!("/projects/{id}");

    // Narrowing every field is the owner's to do.
    let narrow = json!({"models": {"allow": ["gpt-4o*"]}, "routing_groups": ["eu"], "ip_allowlist": ["10.1.0.0/16"],
        "limits": {"rpm": 50}, "max_key_lifetime_days": 7});
    let narrowed = admin.call(&owner, "PATCH", &path, Some(json!({"boundary": narrow})));
    assert_eq!(narrowed.status, 200, "{:?}", narrowed.body);
    assert_eq!(narrowed.body["ceiling"]["limits"]["rpm"], 100, "the ceiling stays");

    // Widening any field past the ceiling is refused, naming the field.
    let ceiling = strict_boundary();
    for (field, value, prefix) in [
        ("limits", json!({"rpm": 101}), "boundary.limits.rpm: 101 is above the project's ceiling (rpm 100)"),
        ("limits", json!({}), ""),
        (
            "models",
            json!({"allow": ["claude-*"]}),
            "boundary.models.allow[0]: 'claude-*' is outside the project's ceiling",
        ),
        (
            "routing_groups",
            json!(["eu", "default"]),
            "boundary.routing_groups[1]: 'default' is outside the project's ceiling",
        ),
        ("routing_groups", json!([]), "boundary.routing_groups: empty means every group"),
        (
            "ip_allowlist",
            json!(["11.0.0.0/8"]),
            "boundary.ip_allowlist[0]: '11.0.0.0/8' is outside the project's ceiling",
        ),
        ("ip_allowlist", json!(["0.0.0.0/0"]), "boundary.ip_allowlist[0]"),
        ("ip_allowlist", json!([]), "boundary.ip_allowlist: empty means anywhere"),
        (
            "max_key_lifetime_days",
            json!(31),
            "boundary.max_key_lifetime_days: 31 is above the project's ceiling (30 days)",
        ),
        ("max_key_lifetime_days", Value::Null, "boundary.max_key_lifetime_days: is required"),
    ] {
        let answered =
            admin.call(&owner, "PATCH", &path, Some(json!({"boundary": with(&ceiling, field, value.clone())})));
        if prefix.is_empty() {
            assert_eq!(answered.status, 200, "limits left unset inherit the ceiling: {:?}", answered.body);
        } else {
            admin.refused(answered, prefix);
        }
    }
    admin.refused(admin.call(&owner, "PATCH", &path, Some(json!({"boundary": {}}))), "boundary.routing_groups");

    // The ceiling is the Admins' alone.
    let raised = admin.call(&owner, "PATCH", &path, Some(json!({"ceiling": {}, "boundary": {}})));
    assert_eq!((raised.status, raised.code()), (403, "permission_denied"));
    assert!(
        raised.body["error"]["message"].as_str().unwrap().contains("'projects.ceiling.write'"),
        "{:?}",
        raised.body
    );
    let kept = admin.call(&owner, "GET", &path, None);
    assert_eq!(kept.body["ceiling"], strict_boundary());
}

#[test]
fn an_admin_sets_the_ceiling_on_every_path() {
    let admin = Admin::new();
    admin.call(ADMIN, "PUT", "/org/policy", Some(json!({"limits": {"rpm": 1000}})));
    let create = |body: Value| admin.call(ADMIN, "POST", "/projects", Some(body));
    admin.refused(
        create(json!({"name": "p", "boundary": {"limits": {"rpm": 60}}, "ceiling": {"limits": {"rpm": 50}}})),
        "boundary.limits.rpm: 60 is above the project's ceiling (rpm 50)",
    );
    admin.refused(
        create(json!({"name": "p", "ceiling": {"limits": {"rpm": 2000}}})),
        "ceiling.limits.rpm: 2000 is above the organisation boundary (rpm 1000)",
    );
    // A ceiling above an open boundary: the keys get the ceiling where the boundary says nothing.
    let made = create(json!({"name": "p", "ceiling": {"limits": {"rpm": 100}}}));
    assert_eq!(made.status, 201, "{:?}", made.body);
    let id = made.id();
    let path = format!("/projects/{id}");
    let (key_id, secret) = admin.create_key(ADMIN, json!({"name": "k", "project": id}));
    assert_eq!(find(&admin.kv.record(&kv_name(&secret)).unwrap(), "rpm"), Some(&json!(100)));
    admin.refused(
        admin.call(ADMIN, "POST", "/keys", Some(json!({"name": "k", "project": id, "limits": {"rpm": 101}}))),
        &format!("limits.rpm: 101 is above the ceiling of project '{id}' (rpm 100)"),
    );

    // An Admin's boundary is held to the ceiling too; raising both in one request works.
    admin.refused(
        admin.call(ADMIN, "PATCH", &path, Some(json!({"boundary": {"limits": {"rpm": 150}}}))),
        "boundary.limits.rpm: 150 is above the project's ceiling (rpm 100)",
    );
    let both = json!({"ceiling": {"limits": {"rpm": 200}}, "boundary": {"limits": {"rpm": 150}}});
    assert_eq!(admin.call(ADMIN, "PATCH", &path, Some(both)).status, 200);
    // Lowering the ceiling below the boundary needs the boundary lowered with it.
    admin.refused(
        admin.call(ADMIN, "PATCH", &path, Some(json!({"ceiling": {"limits": {"rpm": 120}}}))),
        "boundary.limits.rpm: 150 is above the project's ceiling (rpm 120)",
    );
    let lowered = json!({"ceiling": {"limits": {"rpm": 20}}, "boundary": {"limits": {"rpm": 10}}});
    assert_eq!(admin.call(ADMIN, "PATCH", &path, Some(lowered)).status, 200);
    assert_eq!(find(&admin.kv.record(&kv_name(&secret)).unwrap(), "rpm"), Some(&json!(10)), "keys re-projected");
    let pushed = admin.ledgers.received.borrow().last().cloned().unwrap();
    assert_eq!(
        (pushed.0.as_str(), find(&serde_json::to_value(&pushed.1).unwrap(), "rpm")),
        (ledger_object(Some(DEFAULT_ORG), &key_id).as_str(), Some(&json!(10)))
    );
    admin.refused(
        admin.call(ADMIN, "PATCH", &path, Some(json!({"ceiling": {"limits": {"rpm": 5000}}}))),
        "ceiling.limits.rpm: 5000 is above the organisation boundary",
    );
}

#[test]
fn keys_cannot_clear_what_a_boundary_requires() {
    let admin = Admin::new();
    let team = admin.bounded_team(strict_boundary());
    let expires = START_MS + 30 * DAY_MS;
    let valid = json!({"name": "k", "project": team.project, "routing_groups": ["eu"], "ip_allowlist": ["10.2.0.0/16"],
        "expires_at": expires});
    let layer = format!("the boundary of project '{}'", team.project);
    for (field, value, prefix) in [
        (
            "routing_groups",
            Value::Null,
            format!("routing_groups: empty means every group, and {layer} allows only groups eu, us"),
        ),
        ("routing_groups", json!(["default"]), "routing_groups[0]: 'default' is outside".to_owned()),
        (
            "ip_allowlist",
            Value::Null,
            format!("ip_allowlist: empty means anywhere, and {layer} allows only 10.0.0.0/8"),
        ),
        ("ip_allowlist", json!(["10.0.0.1", "192.0.2.1"]), "ip_allowlist[1]: '192.0.2.1' is outside".to_owned()),
        ("expires_at", Value::Null, format!("expires_at: is required: {layer} allows keys at most 30 days of life")),
        ("expires_at", json!(expires + 1), "expires_at: ".to_owned()),
    ] {
        admin.refused(admin.call(&team.member, "POST", "/keys", Some(with(&valid, field, value))), &prefix);
    }
    let (key_id, secret) = admin.create_key(&team.member, valid);

    // The record carries the boundaries' constraints, marked critical (version 3: budgets came
    // after them).
    let record = admin.kv.record(&kv_name(&secret)).unwrap();
    assert_eq!(record["v"], 3);
    assert_eq!(record["boundary_routing_groups"], json!([["eu", "us"]]), "boundary and ceiling are equal: once");
    assert_eq!(record["boundary_ip_allowlists"], json!([["10.0.0.0/8"]]));
    assert_eq!(record["boundary_expires_at"], START_MS + 30 * DAY_MS);
    assert_eq!(
        record["critical"],
        json!(["org", "boundary_routing_groups", "boundary_ip_allowlists", "boundary_expires_at"])
    );
    let view = admin.call(&team.member, "GET", &format!("/keys/{key_id}"), None);
    assert_eq!(view.body["effective"]["boundary_routing_groups"], json!([["eu", "us"]]));

    // Every change of rules or expiry is checked; clearing a required value is refused.
    let path = format!("/keys/{key_id}");
    for (patch, prefix) in [
        (json!({"routing_groups": []}), "routing_groups: empty means every group"),
        (json!({"ip_allowlist": []}), "ip_allowlist: empty means anywhere"),
        (json!({"expires_at": null}), "expires_at: is required"),
        (json!({"expires_at": START_MS + 31 * DAY_MS}), "expires_at: "),
        (json!({"limits": {"rpm": 101}}), "limits.rpm: 101 is above"),
    ] {
        admin.refused(admin.call(&team.member, "PATCH", &path, Some(patch)), prefix);
    }
    let narrowed = admin.call(
        &team.member,
        "PATCH",
        &path,
        Some(json!({"routing_groups": ["us"], "expires_at": START_MS + DAY_MS, "name": "renamed"})),
    );
    assert_eq!(narrowed.status, 200, "{:?}", narrowed.body);

    // A boundary tightened later does not block renaming, and applies to the record at once.
    let tighter = with(&strict_boundary(), "max_key_lifetime_days", json!(1));
    let tighter = with(&tighter, "routing_groups", json!(["eu"]));
    assert_eq!(
        admin
            .call(&team.owner, "PATCH", &format!("/projects/{}", team.project), Some(json!({"boundary": tighter})))
            .status,
        200
    );
    assert_eq!(admin.call(&team.member, "PATCH", &path, Some(json!({"name": "again"}))).status, 200);
    let record = admin.kv.record(&kv_name(&secret)).unwrap();
    assert_eq!(record["boundary_routing_groups"], json!([["eu"], ["eu", "us"]]));
    assert_eq!(record["routing_groups"], json!(["us"]), "the key's own rules are left as its creator set them");
}

#[test]
fn the_request_path_holds_a_record_to_its_boundaries() {
    let admin = Admin::new();
    let team = admin.bounded_team(strict_boundary());
    let expires = START_MS + 30 * DAY_MS;
    let (_, secret) = admin.create_key(
        &team.member,
        json!({"name": "k", "project": team.project, "routing_groups": ["us", "eu"], "ip_allowlist": ["10.2.0.0/16"],
            "expires_at": expires}),
    );
    let record = admin.kv.record(&kv_name(&secret)).unwrap();
    let outcome = |record: &Value, ip: &str, now_ms: u64| {
        let policy = KeyPolicy::from_json(record.to_string().as_bytes()).expect("the handlers write valid records");
        let call = CallFacts { family: Family::OpenAi, model: Some("gpt-4o"), client_ip: Some(ip.parse().unwrap()) };
        match authorize(&policy, &call, &admin.routing, now_ms) {
            Ok(route) => Ok(route.group.to_owned()),
            Err(denial) => Err(teamkeys::error::ApiError::from(denial).code().as_str()),
        }
    };
    assert_eq!(outcome(&record, "10.2.0.1", START_MS), Ok("us".to_owned()));
    assert_eq!(outcome(&record, "10.3.0.1", START_MS), Err("ip_not_allowed"));

    // A record whose own rules are wider (written by hand, or stale) is still held to its
    // boundaries: routing groups, IP allowlist and lifetime.
    let mut widened = record.clone();
    for field in ["routing_groups", "ip_allowlist", "expires_at"] {
        widened.as_object_mut().unwrap().remove(field);
    }
    assert_eq!(outcome(&widened, "10.3.0.1", START_MS), Ok("us".to_owned()), "inside the boundary: passes");
    assert_eq!(outcome(&widened, "192.0.2.1", START_MS), Err("ip_not_allowed"));
    assert_eq!(outcome(&widened, "10.3.0.1", START_MS + 30 * DAY_MS), Err("key_expired"));
    widened["boundary_routing_groups"] = json!([["eu"]]);
    assert_eq!(
        outcome(&widened, "10.3.0.1", START_MS),
        Ok("eu".to_owned()),
        "`default` and `us` come first, but only eu is allowed"
    );
    widened["boundary_routing_groups"] = json!([["eu"], ["us"]]);
    assert_eq!(outcome(&widened, "10.3.0.1", START_MS), Err("routing_group_not_allowed"));

    // A boundary that appears after the key was made reaches its record, and the request path.
    let (_, open_secret) = admin.create_key(ADMIN, json!({"name": "open", "project": admin.team().project}));
    assert_eq!(
        outcome(&admin.kv.record(&kv_name(&open_secret)).unwrap(), "192.0.2.1", START_MS),
        Ok("default".to_owned())
    );
    let policy = admin.call(
        ADMIN,
        "PUT",
        "/org/policy",
        Some(json!({"ip_allowlist": ["10.0.0.0/8"], "max_key_lifetime_days": 1})),
    );
    assert_eq!(policy.status, 200, "{:?}", policy.body);
    let open = admin.kv.record(&kv_name(&open_secret)).unwrap();
    assert_eq!(outcome(&open, "192.0.2.1", START_MS), Err("ip_not_allowed"));
    assert_eq!(outcome(&open, "10.0.0.1", START_MS + DAY_MS), Err("key_expired"));
    assert_eq!(outcome(&open, "10.0.0.1", START_MS), Ok("default".to_owned()));
}

#[test]
fn a_failed_push_never_leaves_older_limits_in_force_than_the_kv_record() {
    use teamkeys::admin::api::ports::LedgerObjects;
    use teamkeys::ledger::{Command, Reply};
    use teamkeys::limits::{Ask, Limits};

    let admin = Admin::new();
    let team = admin.team();
    let (key_id, secret) =
        admin.create_key(&team.member, json!({"name": "k", "project": team.project, "limits": {"rpm": 50}}));
    let pushed_version = |admin: &Admin| {
        let received = admin.ledgers.received.borrow();
        let mut pushes = received.iter().filter_map(|(id, c)| match c {
            Command::PushLimits { policy_version, .. } if *id == ledger_object(Some(DEFAULT_ORG), &key_id) => {
                Some(*policy_version)
            }
            _ => None,
        });
        pushes.next_back().expect("a push reached the object")
    };
    let first = pushed_version(&admin);
    assert_eq!(admin.kv.record(&kv_name(&secret)).unwrap()["policy_version"], first, "KV and push agree");

    admin.ledgers.unreachable.set(true);
    let patched = admin.call(&team.member, "PATCH", &format!("/keys/{key_id}"), Some(json!({"limits": {"rpm": 1}})));
    assert_eq!((patched.status, patched.pending), (200, true));
    admin.ledgers.unreachable.set(false);
    let record = admin.kv.record(&kv_name(&secret)).unwrap();
    let newer = record["policy_version"].as_u64().unwrap();
    assert!(newer > first, "every change bumps the version: {first} → {newer}");

    let admit = |rpm: u64, policy_version: u64| {
        let limits: Limits = serde_json::from_value(json!({"rpm": rpm})).unwrap();
        let command = Command::Admit {
            secret_version: 1,
            limits,
            policy_version,
            ask: Ask::ZERO,
            scopes: Default::default(),
            model: None,
            end_user: None,
            budgets: vec![],
        };
        let ledger = LedgerAddress { object: ledger_object(Some(DEFAULT_ORG), &key_id), jurisdiction: None };
        ready(admin.ledgers.call(&ledger, &command)).unwrap()
    };
    assert!(matches!(admit(1, newer), Reply::Admitted { .. }), "the edge carrying the newer record");
    let stale = admit(50, first);
    assert!(
        matches!(&stale, Reply::Refused(refusal) if refusal.error.code() == "rate_limit_exceeded"),
        "a stale edge cannot loosen it: {stale:?}"
    );

    admin.clock.advance(300_000);
    admin.alarm();
    assert_eq!(pushed_version(&admin), newer, "the retried push carries the record's version");
    assert_eq!(admin.pending_rows(), 0);
}

// Idempotency keys, last use, principal tokens and retention.

impl Admin {
    fn count(&self, table: &str) -> usize {
        self.sql.raw(&format!("SELECT 1 FROM {table}")).len()
    }
}

#[test]
fn a_lost_create_answer_retried_with_its_idempotency_key_returns_the_same_key() {
    let admin = Admin::new();
    let team = admin.team();
    let body = json!({"name": "ci", "project": team.project});
    let first = admin.call_once(&team.member, "POST", "/keys", Some(body.clone()), Some("create-ci-1"));
    assert_eq!((first.status, first.replayed), (201, false), "{:?}", first.body);
    let keys_before = admin.count("keys");
    let audit_before = admin.count("audit");

    // The answer was lost; the client retries.
    let retry = admin.call_once(&team.member, "POST", "/keys", Some(body.clone()), Some("create-ci-1"));
    assert_eq!((retry.status, retry.replayed), (201, true));
    assert_eq!(retry.body, first.body, "the same answer, the same plaintext key");
    assert_eq!((admin.count("keys"), admin.count("audit")), (keys_before, audit_before), "nothing ran again");

    // The kept answer is sealed: the plaintext is nowhere in the registry's storage.
    let secret = first.body["key"].as_str().unwrap();
    let stored = admin.sql.raw("SELECT * FROM idempotency");
    assert_eq!(stored.len(), 1);
    assert!(!format!("{stored:?}").contains(secret) && !format!("{stored:?}").contains("create-ci-1"));

    // The same key with another body is refused; another caller's same key is its own.
    let other = json!({"name": "cd", "project": team.project});
    let reused = admin.call_once(&team.member, "POST", "/keys", Some(other), Some("create-ci-1"));
    assert_eq!((reused.status, reused.code()), (422, "idempotency_key_reused"));
    let by_owner = admin.call_once(&team.owner, "POST", "/keys", Some(body.clone()), Some("create-ci-1"));
    assert_eq!((by_owner.status, by_owner.replayed), (201, false));
    assert_ne!(by_owner.body["key"], first.body["key"]);
    assert_eq!(admin.count("keys"), keys_before + 1);

    // A refused request is not kept: fixed, the retry runs.
    let bad = json!({"name": "", "project": team.project});
    assert_eq!(admin.call_once(&team.member, "POST", "/keys", Some(bad), Some("k-2")).status, 400);
    let fixed = admin.call_once(
        &team.member,
        "POST",
        "/keys",
        Some(json!({"name": "x", "project": team.project})),
        Some("k-2"),
    );
    assert_eq!(fixed.status, 201, "{:?}", fixed.body);

    // A malformed key is refused before anything runs.
    let long = "k".repeat(256);
    assert_eq!(
        admin.call_once(&team.member, "POST", "/keys", Some(body), Some(&long)).code(),
        "invalid_idempotency_key"
    );
}

#[test]
fn rotations_and_principal_creation_are_idempotent_too() {
    let admin = Admin::new();
    let team = admin.team();
    let (key_id, _) = admin.create_key(&team.member, json!({"name": "ci", "project": team.project}));
    let rotate = |key: &str| {
        admin.call_once(
            &team.member,
            "POST",
            &format!("/keys/{key_id}/rotate"),
            Some(json!({"grace_seconds": 5})),
            Some(key),
        )
    };
    let first = rotate("rotate-1");
    let retry = rotate("rotate-1");
    assert_eq!((first.status, retry.status, retry.replayed), (200, 200, true));
    assert_eq!(retry.body["key"], first.body["key"]);
    assert_eq!(first.body["secret_version"], 2);
    let key = admin.call(&team.member, "GET", &format!("/keys/{key_id}"), None);
    assert_eq!(key.body["secret_version"], 2, "rotated once");
    assert_eq!(rotate("rotate-2").body["secret_version"], 3, "a new key is a new rotation");

    let new_principal = json!({"name": "Fin", "role": "finance"});
    let made = admin.call_once(ADMIN, "POST", "/principals", Some(new_principal.clone()), Some("p-1"));
    let again = admin.call_once(ADMIN, "POST", "/principals", Some(new_principal), Some("p-1"));
    assert_eq!((made.status, again.status, again.body["token"].clone()), (201, 201, made.body["token"].clone()));
    assert_eq!(admin.call(made.body["token"].as_str().unwrap(), "GET", "/me", None).body["name"], "Fin");
}

#[test]
fn without_credentials_keys_an_idempotency_key_is_refused_and_nothing_runs() {
    let mut admin = Admin::new();
    admin.keyring = None;
    let team = admin.team();
    let keys = admin.count("keys");
    let body = json!({"name": "ci", "project": team.project});
    let refused = admin.call_once(&team.member, "POST", "/keys", Some(body), Some("k"));
    assert_eq!((refused.status, refused.code()), (500, "invalid_config"));
    assert_eq!(admin.count("keys"), keys);
}

#[test]
fn kept_answers_expire_after_24_hours_and_the_alarm_purges_them() {
    let admin = Admin::new();
    let team = admin.team();
    let body = json!({"name": "ci", "project": team.project});
    let first = admin.call_once(&team.member, "POST", "/keys", Some(body.clone()), Some("k"));
    assert_eq!(first.drained.wake_at, Some(START_MS), "the event hand-off");
    admin.alarm();
    admin.clock.advance(86_400_000 - 1);
    assert_eq!(admin.alarm().wake_at, Some(START_MS + 86_400_000), "the alarm wakes for the expiry");
    assert_eq!(admin.count("idempotency"), 1);
    admin.clock.advance(1);
    // Expired, it is not used even before the purge: the request runs again.
    let late = admin.call_once(&team.member, "POST", "/keys", Some(body), Some("k"));
    assert_eq!((late.status, late.replayed), (201, false));
    assert_ne!(late.body["key"], first.body["key"]);
    admin.clock.advance(86_400_000);
    admin.alarm();
    assert_eq!(admin.count("idempotency"), 0, "purged");
}

/// Runs one admitted call through the key's ledger object, as the request path would.
fn admit(admin: &Admin, key_id: &str) {
    use teamkeys::admin::api::ports::LedgerObjects;
    use teamkeys::ledger::{Command, Reply};
    let ask = serde_json::from_value(json!({"tokens": 10, "cost_micros": 0})).unwrap();
    let command = Command::Admit {
        secret_version: 1,
        limits: Default::default(),
        policy_version: 0,
        ask,
        scopes: Default::default(),
        model: None,
        end_user: None,
        budgets: vec![],
    };
    assert!(matches!(ready(admin.ledgers.call(&ledger_address(key_id), &command)).unwrap(), Reply::Admitted { .. }));
}

#[test]
fn a_key_shows_when_its_ledger_object_last_admitted_a_call() {
    let admin = Admin::new();
    let team = admin.team();
    let (key_id, _) = admin.create_key(&team.member, json!({"name": "ci", "project": team.project}));
    let get = |path: &str| admin.call(&team.member, "GET", path, None);
    let key = get(&format!("/keys/{key_id}"));
    assert_eq!((key.status, key.body["last_used_at"].clone()), (200, Value::Null), "{:?}", key.body);
    admin.clock.advance(5_000);
    admit(&admin, &key_id);
    admin.clock.advance(1_000);
    assert_eq!(get(&format!("/keys/{key_id}")).body["last_used_at"], START_MS + 5_000);
    assert_eq!(get(&format!("/keys/{key_id}/usage")).body["last_used_at"], START_MS + 5_000);
    let project = admin.call(&team.owner, "GET", &format!("/projects/{}/usage", team.project), None);
    assert_eq!(project.body["keys"][0]["last_used_at"], START_MS + 5_000);
    // Lists do not ask the objects.
    let listed = get("/keys");
    assert!(listed.body["data"][0].get("last_used_at").is_none());
    // The key's view fails closed when its object cannot say.
    admin.ledgers.unreachable.set(true);
    assert_eq!(get(&format!("/keys/{key_id}")).code(), "ledger_unavailable");
}

#[test]
fn principal_tokens_expire_and_rotate_with_a_grace_period() {
    let admin = Admin::new();
    let team = admin.team();
    let expires = START_MS + 3_600_000;
    let made = admin.call(
        ADMIN,
        "POST",
        "/principals",
        Some(json!({"name": "Temp", "role": "member", "projects": [team.project], "token_expires_at": expires})),
    );
    assert_eq!((made.status, made.body["token_expires_at"].as_u64()), (201, Some(expires)), "{:?}", made.body);
    let (id, old) = (made.id(), made.body["token"].as_str().unwrap().to_owned());
    assert_eq!(admin.call(&old, "GET", "/me", None).status, 200);

    // Rotating one's own token: only as long-lived as the old one, unless an Admin says otherwise.
    let rotate = |token: &str, who: &str, body: Value| {
        admin.call(token, "POST", &format!("/principals/{who}/rotate-token"), Some(body))
    };
    let longer = rotate(&old, &id, json!({"token_expires_at": expires + 1}));
    assert_eq!((longer.status, longer.code()), (400, "invalid_field"));
    assert_eq!(rotate(&team.member, &id, json!({})).code(), "permission_denied", "not someone else's");
    let rotated = rotate(&old, &id, json!({"grace_seconds": 60}));
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let new = rotated.body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        (rotated.body["token_expires_at"].as_u64(), rotated.body["previous_token_valid_until"].as_u64()),
        (Some(expires), Some(START_MS + 60_000))
    );
    assert_eq!(rotated.body["masked_token"], format!("tka_...{}", &new[new.len() - 4..]));
    let audit = admin.call(ADMIN, "GET", "/audit", None);
    assert_eq!(audit.body["data"][0]["action"], "principals.rotate_token");
    assert!(!audit.body.to_string().contains(&new) && !audit.body.to_string().contains(&old));

    // Both work during the grace; then only the new one.
    assert_eq!((admin.call(&old, "GET", "/me", None).status, admin.call(&new, "GET", "/me", None).status), (200, 200));
    admin.clock.advance(60_000);
    assert_eq!(admin.call(&old, "GET", "/me", None).code(), "invalid_admin_token");
    assert_eq!(admin.call(&new, "GET", "/me", None).status, 200);
    assert_eq!(admin.count("previous_tokens"), 1);
    admin.alarm();
    assert_eq!(admin.count("previous_tokens"), 0, "purged after the grace");

    // At its expiry the token is refused with its own code; an Admin rotates it with a new life.
    admin.clock.advance(3_600_000);
    assert_eq!(admin.call(&new, "GET", "/me", None).code(), "token_expired");
    let renewed = rotate(ADMIN, &id, json!({"token_expires_at": admin.clock.now() + 86_400_000}));
    assert_eq!(renewed.status, 200, "{:?}", renewed.body);
    assert_eq!(renewed.body["previous_token_valid_until"], Value::Null);
    assert_eq!(admin.call(renewed.body["token"].as_str().unwrap(), "GET", "/me", None).status, 200);
}

#[test]
fn the_alarm_purges_audit_entries_past_their_retention() {
    let admin = Admin::new();
    admin.team();
    let old_entries = admin.count("audit");
    admin.clock.advance(Retention::default().audit_ms - 1);
    admin.call(ADMIN, "POST", "/projects", Some(json!({"name": "later"})));
    assert_eq!(admin.alarm().wake_at, Some(START_MS + Retention::default().audit_ms), "wakes for the oldest");
    assert_eq!(admin.count("audit"), old_entries + 1);
    admin.clock.advance(1);
    admin.alarm();
    assert_eq!(admin.count("audit"), 1, "only the entry within its retention is left");
    assert_eq!(admin.call(ADMIN, "GET", "/audit", None).body["data"][0]["target_type"], "project");
}

/// The ledger object of a key the registry created (in the organisation from before organisations).
fn ledger_address(key_id: &str) -> teamkeys::admin::api::ports::LedgerAddress {
    teamkeys::admin::api::ports::LedgerAddress {
        object: teamkeys::naming::ledger_object(Some(teamkeys::naming::DEFAULT_ORG), key_id),
        jurisdiction: None,
    }
}

impl Admin {
    /// A console session signed in with `token`: its id (which the worker keeps in the cookie).
    fn sign_in(&self, token: &str) -> String {
        let signed = self.call(token, "POST", "/sessions", Some(json!({})));
        assert_eq!(signed.status, 201, "{:?}", signed.body);
        signed.body["session_id"].as_str().unwrap().to_owned()
    }
}

#[test]
fn a_console_session_acts_for_its_principal_until_it_expires() {
    use teamkeys::admin::session::{csrf_token, ABSOLUTE_MS, IDLE_MS};
    let admin = Admin::new();
    let team = admin.team();
    let signed = admin.call(&team.member, "POST", "/sessions", Some(json!({})));
    let session = signed.body["session_id"].as_str().unwrap().to_owned();
    assert!(session.starts_with(&format!("tks_{DEFAULT_ORG}_")), "{session}");
    assert_eq!(signed.body["csrf_token"], json!(csrf_token(&session)));
    assert_eq!(signed.body["expires_at"], json!(START_MS + ABSOLUTE_MS));
    assert_eq!(signed.body["whoami"]["principal"]["role"], "member");
    assert!(signed.body["whoami"]["actions"].as_array().unwrap().contains(&json!("keys.create")));
    let stored = admin.sql.raw("SELECT * FROM sessions");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["hash"], json!(sha256_hex(&session)), "only the hash is kept");
    assert!(!serde_json::to_string(&stored).unwrap().contains(&session));

    let me = admin.call(&session, "GET", "/sessions/current", None);
    assert_eq!((me.status, me.body["principal"]["role"].as_str()), (200, Some("member")));
    assert_eq!(me.body["session"]["idle_expires_at"], json!(START_MS + IDLE_MS));
    let key = admin.call(&session, "POST", "/keys", Some(json!({"name": "k", "project": team.project})));
    assert_eq!(key.status, 201, "{:?}", key.body);
    assert_eq!(
        admin.call(&session, "POST", "/sessions", Some(json!({}))).code(),
        "invalid_body",
        "no session makes another"
    );

    // Used every 29 minutes, it lives until its absolute expiry, then never again.
    let mut used = 0;
    while used + IDLE_MS - 60_000 < ABSOLUTE_MS {
        admin.clock.advance(IDLE_MS - 60_000);
        used += IDLE_MS - 60_000;
        assert_eq!(admin.call(&session, "GET", "/me", None).status, 200, "at {used}");
    }
    admin.clock.advance(ABSOLUTE_MS - used);
    assert_eq!(admin.call(&session, "GET", "/me", None).code(), "session_expired");

    // Unused for the idle time: over.
    let idle = admin.sign_in(&team.member);
    admin.clock.advance(IDLE_MS);
    assert_eq!(admin.call(&idle, "GET", "/me", None).code(), "session_expired");
    assert!(admin.sql.raw("SELECT hash FROM sessions").is_empty(), "ended sessions are deleted when met");
}

#[test]
fn sign_out_sign_out_everywhere_rotation_and_deletion_revoke_sessions() {
    let admin = Admin::new();
    let team = admin.team();
    let one = admin.sign_in(&team.member);
    let two = admin.sign_in(&team.member);
    let owners = admin.sign_in(&team.owner);
    assert_eq!(admin.call(&one, "DELETE", "/sessions/current", None).status, 204);
    assert_eq!(admin.call(&one, "GET", "/me", None).code(), "session_expired");
    assert_eq!(admin.call(&two, "GET", "/me", None).status, 200, "only that session");

    let three = admin.sign_in(&team.member);
    assert_eq!(admin.call(&three, "DELETE", "/sessions", None).status, 204);
    for ended in [&two, &three] {
        assert_eq!(admin.call(ended, "GET", "/me", None).code(), "session_expired");
    }
    assert_eq!(admin.call(&owners, "GET", "/me", None).status, 200, "another principal's stays");

    let four = admin.sign_in(&team.member);
    let rotated = admin.call(ADMIN, "POST", &format!("/principals/{}/rotate-token", team.member_id), None);
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    assert_eq!(admin.call(&four, "GET", "/me", None).code(), "session_expired", "a rotation revokes sessions");
    let five = admin.sign_in(rotated.body["token"].as_str().unwrap());
    assert_eq!(admin.call(ADMIN, "DELETE", &format!("/principals/{}", team.member_id), None).status, 204);
    assert_eq!(admin.call(&five, "GET", "/me", None).code(), "session_expired", "a deletion too");

    // A principal keeps at most 20 sessions: the oldest goes first.
    let sessions: Vec<String> = (0..21).map(|_| admin.sign_in(&team.owner)).collect();
    for oldest in [&owners, &sessions[0]] {
        assert_eq!(admin.call(oldest, "GET", "/me", None).code(), "session_expired");
    }
    assert_eq!(admin.call(&sessions[1], "GET", "/me", None).status, 200);
    assert_eq!(admin.sql.raw("SELECT hash FROM sessions").len(), 20);
    assert_eq!(admin.call("tks_org_default_unknown0", "GET", "/me", None).code(), "session_expired");
}

#[test]
fn access_settings_and_emails_are_the_admins() {
    let admin = Admin::new();
    let team = admin.team();
    let settings = json!({"team_domain": "acme.cloudflareaccess.com", "audience": "aud-tag-1"});
    assert_eq!(admin.call(ADMIN, "GET", "/org/access", None).status, 404);
    assert_eq!(admin.call(&team.owner, "PUT", "/org/access", Some(settings.clone())).code(), "permission_denied");
    assert_eq!(admin.call(ADMIN, "PUT", "/org/access", Some(settings.clone())).status, 200);
    assert_eq!(admin.call(ADMIN, "GET", "/org/access", None).body, settings);
    let evil = json!({"team_domain": "evil.example.com/x?.cloudflareaccess.com", "audience": "a"});
    assert_eq!(admin.call(ADMIN, "PUT", "/org/access", Some(evil)).code(), "invalid_field");
    let made = admin.call(
        ADMIN,
        "POST",
        "/principals",
        Some(json!({"name": "Ann", "role": "finance", "email": "Ann@Example.com"})),
    );
    assert_eq!((made.status, made.body["email"].as_str()), (201, Some("ann@example.com")));
    let again = admin.call(
        ADMIN,
        "POST",
        "/principals",
        Some(json!({"name": "A2", "role": "finance", "email": "ann@example.com"})),
    );
    assert_eq!((again.status, again.code()), (409, "email_taken"));
    assert_eq!(admin.call(ADMIN, "DELETE", "/org/access", None).status, 204);
    assert_eq!(admin.call(ADMIN, "GET", "/org/access", None).status, 404);
}

#[test]
fn charts_sum_the_keys_the_caller_may_read_and_headroom_puts_the_fullest_first() {
    let admin = Admin::new();
    let team = admin.team();
    let (tight, _) =
        admin.create_key(&team.member, json!({"name": "tight", "project": team.project, "limits": {"rpm": 2}}));
    let (roomy, _) =
        admin.create_key(&team.owner, json!({"name": "roomy", "project": team.project, "limits": {"rpm": 100}}));
    let (bare, _) = admin.create_key(&team.owner, json!({"name": "bare", "project": team.project}));
    for (key_id, calls) in [(&tight, 1), (&roomy, 3)] {
        (0..calls).for_each(|_| admit(&admin, key_id));
    }
    let history = admin.call(ADMIN, "GET", "/history?days=90", None);
    assert_eq!(history.status, 200, "{:?}", history.body);
    assert_eq!(history.body["days"].as_array().unwrap().len(), 90);
    assert_eq!(history.body["days"][89]["requests"], 4);
    assert_eq!(history.body["hours"].as_array().unwrap().len(), 48);
    assert_eq!((history.body["keys_included"].as_u64(), history.body["keys_omitted"].as_u64()), (Some(3), Some(0)));
    let mine = admin.call(&team.member, "GET", "/history", None);
    assert_eq!(
        (mine.body["days"].as_array().unwrap().len(), mine.body["days"][29]["requests"].as_u64()),
        (30, Some(1)),
        "a member's own keys only"
    );
    assert_eq!(admin.call(&team.member, "GET", &format!("/keys/{roomy}/history"), None).code(), "permission_denied");
    let project = admin.call(&team.owner, "GET", &format!("/projects/{}/history?days=7", team.project), None);
    assert_eq!(
        (project.body["days"].as_array().unwrap().len(), project.body["days"][6]["requests"].as_u64()),
        (7, Some(4))
    );
    assert_eq!(admin.call(ADMIN, "GET", "/history?days=91", None).code(), "invalid_field");

    let headroom = admin.call(ADMIN, "GET", "/headroom", None);
    let order: Vec<&str> =
        headroom.body["keys"].as_array().unwrap().iter().map(|k| k["key_id"].as_str().unwrap()).collect();
    assert_eq!(order, [tight.as_str(), roomy.as_str(), bare.as_str()], "{:?}", headroom.body);
    assert_eq!(headroom.body["keys"][0]["nearest_permille"], 500);
    assert_eq!(headroom.body["keys"][0]["limits"][0]["scope"], "rpm");
    assert_eq!(headroom.body["keys"][2]["nearest_permille"], Value::Null);
}

#[test]
fn a_keys_scopes_are_set_validated_patched_and_pushed_with_its_limits() {
    use teamkeys::ledger::Command;

    let admin = Admin::new();
    let team = admin.team();
    let scoped = json!({
        "name": "saas", "project": team.project, "limits": {"rpm": 100},
        "model_limits": [{"pattern": "o3*", "limits": {"rpm": 10, "spend": [{"period": "daily", "limit_micros": 20_000_000}]}}],
        "end_user_limits": {"rpm": 5}
    });
    let (key_id, secret) = admin.create_key(&team.member, scoped.clone());
    let record = admin.kv.record(&kv_name(&secret)).unwrap();
    assert_eq!(record["model_limits"][0]["pattern"], "o3*");
    assert_eq!(record["end_user_limits"], json!({"rpm": 5}));
    let critical = record["critical"].as_array().unwrap();
    assert!(critical.contains(&json!("model_limits")) && critical.contains(&json!("end_user_limits")));
    let shown = admin.call(&team.member, "GET", &format!("/keys/{key_id}"), None);
    assert_eq!(shown.body["policy"]["model_limits"][0]["limits"]["rpm"], 10, "{:?}", shown.body);

    let pushed = |admin: &Admin| {
        let received = admin.ledgers.received.borrow();
        let last = received.iter().rev().find_map(|(id, command)| match command {
            Command::PushLimits { scopes, .. } if *id == ledger_object(Some(DEFAULT_ORG), &key_id) => {
                Some(scopes.clone())
            }
            _ => None,
        });
        last.expect("a push reached the object")
    };
    assert_eq!(pushed(&admin).model_limits[0].pattern, "o3*");
    assert_eq!(pushed(&admin).end_user_limits.rpm.map(|n| n.get()), Some(5));

    let path = format!("/keys/{key_id}");
    let patched = admin.call(&team.member, "PATCH", &path, Some(json!({"model_limits": [], "end_user_limits": {}})));
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert!(pushed(&admin).is_empty(), "cleared with their empty values, and pushed");
    let record = admin.kv.record(&kv_name(&secret)).unwrap();
    assert!(record.get("model_limits").is_none() && record.get("end_user_limits").is_none());

    for (body, field) in [
        (
            json!({"model_limits": [{"pattern": "o3*", "limits": {}}, {"pattern": "o3*", "limits": {}}]}),
            "model_limits[1].pattern",
        ),
        (json!({"model_limits": [{"pattern": "", "limits": {}}]}), "model_limits[0].pattern"),
        (json!({"end_user_limits": {"default_max_tokens": 5}}), "end_user_limits.default_max_tokens"),
        (json!({"model_limits": null}), "cannot be null"),
    ] {
        let refused = admin.call(&team.member, "PATCH", &path, Some(body.clone()));
        assert_eq!(refused.status, 400, "{body}");
        assert!(refused.body["error"]["message"].as_str().unwrap().contains(field), "{body}: {:?}", refused.body);
    }
    let boundary = admin.call(ADMIN, "PUT", "/org/policy", Some(json!({"end_user_limits": {"rpm": 1}})));
    assert_eq!((boundary.status, boundary.code()), (400, "invalid_field"), "{:?}", boundary.body);
}

/// Budgets: the Admin sets the organisation's and each project's ceiling, a project's owners
/// only narrow it, Finance reads; every change is audited, pushed to the budget's object
/// (retried while it is unreachable) and carried by the records of the keys below it.
#[test]
fn budgets_are_set_by_the_admin_narrowed_by_owners_and_read_by_finance() {
    let admin = Admin::new();
    let team = admin.team();
    let finance = admin.call(ADMIN, "POST", "/principals", Some(json!({"name": "Fay", "role": "finance"})));
    let finance = finance.body["token"].as_str().unwrap().to_owned();
    let (_, secret) = admin.create_key(&team.member, json!({"name": "k", "project": team.project}));
    let record = || admin.kv.record(&kv_name(&secret)).expect("the key's record");
    let policy = || KeyPolicy::from_json(&serde_json::to_vec(&record()).unwrap()).unwrap();
    assert!(record().get("budgets").is_none() && !policy().record().capped(None), "no budget yet");

    // The organisation's budget: the Admin's alone; Finance reads it.
    let org_budget = json!({"limits": {"rpm": 1000}, "location_hint": "weur"});
    for token in [&team.owner, &team.member, &finance] {
        assert_eq!(admin.call(token, "PUT", "/org/budget", Some(org_budget.clone())).code(), "permission_denied");
    }
    let set = admin.call(ADMIN, "PUT", "/org/budget", Some(org_budget));
    assert_eq!((set.status, set.body["version"].clone()), (200, json!(1)), "{:?}", set.body);
    assert_eq!(admin.call(&finance, "GET", "/org/budget", None).body["limits"], json!({"rpm": 1000}));
    assert_eq!(admin.call(&team.owner, "GET", "/org/budget", None).code(), "permission_denied");
    let pushed = admin.ledgers.budgets.borrow().get("budget:org_default").cloned().expect("pushed to its object");
    assert_eq!((pushed.1.rpm.map(|n| n.get()), pushed.2), (Some(1000), 1));
    assert_eq!(pushed.0.location_hint, Some(teamkeys::policy::LocationHint::Weur));
    assert_eq!(record()["budgets"][0]["level"], "organisation");
    assert_eq!(record()["budgets"][0]["object"], "budget:org_default");

    // A project's budget: the Admin's ceiling; the owner narrows it and cannot raise it.
    let path = format!("/projects/{}/budget", team.project);
    let ceiling = json!({"ceiling": {"rpm": 300, "spend": [{"period": "daily", "limit_micros": 5000000}]}});
    let refused = admin.call(&team.owner, "PATCH", &path, Some(ceiling.clone()));
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("budgets.projects.ceiling.write"));
    assert_eq!(admin.call(&team.member, "PATCH", &path, Some(json!({"narrowed": {"rpm": 1}}))).status, 403);
    assert_eq!(admin.call(&finance, "PATCH", &path, Some(json!({"narrowed": {"rpm": 1}}))).status, 403);
    assert_eq!(admin.call(ADMIN, "PATCH", &path, Some(ceiling)).body["limits"]["rpm"], 300);
    let raised = admin.call(&team.owner, "PATCH", &path, Some(json!({"narrowed": {"rpm": 900}})));
    assert_eq!((raised.status, raised.body["limits"]["rpm"].clone()), (200, json!(300)), "a raise is no raise");
    let narrowed = admin.call(&team.owner, "PATCH", &path, Some(json!({"narrowed": {"rpm": 100}})));
    assert_eq!(narrowed.body["limits"]["rpm"], 100);
    assert_eq!(narrowed.body["ceiling"]["rpm"], 300, "the Admin's ceiling is kept apart");
    let hint = admin.call(&team.owner, "PATCH", &path, Some(json!({"location_hint": "apac"})));
    assert_eq!(hint.code(), "permission_denied", "placement is the Admin's");
    let read = admin.call(&finance, "GET", &path, None);
    assert_eq!(read.body["limits"]["rpm"], 100);
    assert_eq!(
        (read.body["usage"][0]["scope"].clone(), read.body["usage"][0]["limit"].clone()),
        (json!("rpm"), json!(100))
    );
    assert_eq!(admin.call(&team.member, "GET", &path, None).code(), "permission_denied");
    assert_eq!(admin.call(ADMIN, "GET", "/projects/prj_elsewhere/budget", None).status, 404);
    let invalid = admin.call(ADMIN, "PATCH", &path, Some(json!({"ceiling": {"default_max_tokens": 5}})));
    assert_eq!((invalid.status, invalid.code()), (400, "invalid_field"));

    // The key's record carries both budgets; the project's hard spend cap makes it capped.
    let links = record()["budgets"].clone();
    assert_eq!(links[0]["level"], "project");
    assert_eq!(links[0]["limits"]["rpm"], 100);
    assert_eq!(links[1]["level"], "organisation");
    assert!(policy().record().capped(None));
    let object = format!("budget:{DEFAULT_ORG}/{}", team.project);
    assert_eq!(admin.ledgers.budgets.borrow()[&object].1.rpm.map(|n| n.get()), Some(100));

    // Every change is audited with its before and after.
    let audit = admin.call(ADMIN, "GET", "/audit?limit=1", None);
    let entry = &audit.body["data"][0];
    assert_eq!(
        (entry["action"].clone(), entry["target_type"].clone()),
        (json!("budgets.projects.write"), json!("project_budget"))
    );
    assert_eq!(
        (entry["before"]["limits"]["rpm"].clone(), entry["after"]["limits"]["rpm"].clone()),
        (json!(300), json!(100))
    );

    // A push that cannot reach the object waits and is retried with the newest limits.
    admin.ledgers.unreachable.set(true);
    let pending = admin.call(ADMIN, "PATCH", &path, Some(json!({"ceiling": {"rpm": 50}})));
    assert!(pending.pending, "the change is made; its push waits");
    admin.ledgers.unreachable.set(false);
    admin.clock.advance(1_000);
    admin.alarm();
    assert_eq!(admin.ledgers.budgets.borrow()[&object].1.rpm.map(|n| n.get()), Some(50));
    assert_eq!(admin.ledgers.budgets.borrow()[&object].2, 4, "the newest version");
    assert_eq!(record()["budgets"][0]["limits"]["rpm"], 50);
}

#[test]
fn a_keys_usage_report_shows_its_model_patterns_limits() {
    use teamkeys::admin::api::ports::LedgerObjects;
    use teamkeys::ledger::{Command, Reply};
    let admin = Admin::new();
    let team = admin.team();
    let scoped = json!({
        "name": "saas", "project": team.project, "limits": {"rpm": 100},
        "model_limits": [{"pattern": "o3*", "limits": {"rpm": 10}}, {"pattern": "gpt-4o*", "limits": {"tpm": 1000}}],
        "end_user_limits": {"rpm": 5}
    });
    let (key_id, _) = admin.create_key(&team.member, scoped);
    let scopes = serde_json::from_value(json!({"model_limits": [{"pattern": "o3*", "limits": {"rpm": 10}}],
                                               "end_user_limits": {"rpm": 5}}))
    .unwrap();
    let command = Command::Admit {
        secret_version: 1,
        limits: serde_json::from_value(json!({"rpm": 100})).unwrap(),
        policy_version: 0,
        ask: serde_json::from_value(json!({"tokens": 10, "cost_micros": 0})).unwrap(),
        scopes,
        model: Some("o3-mini".into()),
        end_user: Some("alice".into()),
        budgets: vec![],
    };
    assert!(matches!(ready(admin.ledgers.call(&ledger_address(&key_id), &command)).unwrap(), Reply::Admitted { .. }));
    let usage = admin.call(&team.member, "GET", &format!("/keys/{key_id}/usage"), None);
    assert_eq!(usage.status, 200, "{:?}", usage.body);
    let models = &usage.body["models"];
    assert_eq!((models[0]["pattern"].as_str(), models[1]["pattern"].as_str()), (Some("o3*"), Some("gpt-4o*")));
    assert_eq!(
        (models[0]["limits"][0]["scope"].as_str(), models[0]["limits"][0]["used"].as_u64()),
        (Some("rpm"), Some(1))
    );
    assert_eq!(models[1]["limits"][0]["used"], 0, "a pattern without calls has used nothing");
    assert!(usage.body.get("end_user").is_none() && usage.body.get("end_users").is_none(), "no end users listed");
}
