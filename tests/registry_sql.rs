//! The registry's statements ([`teamkeys::admin::store::Store`]) run against real SQLite, as
//! the Durable Object runs them: schema, list order and cursors, filters and scopes, secrets
//! and grace ends, the audit log, and the pending-work queue's lanes.

mod common;

use common::Sqlite;
use serde_json::json;
use teamkeys::admin::audit::Change;
use teamkeys::admin::boundary::Boundary;
use teamkeys::admin::key::Key;
use teamkeys::admin::lifecycle::{Secret, SecretState};
use teamkeys::admin::membership::ProjectRole;
use teamkeys::admin::permission::Scope;
use teamkeys::admin::principal::PrincipalDoc;
use teamkeys::admin::query::Page;
use teamkeys::admin::store::{KeyFilter, Store};
use teamkeys::admin::work::Work;
use teamkeys::ledger::revocation::Control;

fn store() -> (Sqlite, Store) {
    let sql = Sqlite::new();
    let store = Store::open(sql.boxed()).unwrap();
    (sql, store)
}

fn key(id: &str, project: &str, creator: &str, status: &str, tags: &[&str]) -> Key {
    serde_json::from_value(json!({
        "id": id, "project": project, "creator": creator, "name": id, "tags": tags, "status": status,
        "created_at": 1, "updated_at": 1, "secret_version": 1, "masked": "tk_...abcd", "policy": {}
    }))
    .expect("a key document")
}

fn ids(keys: &[Key]) -> Vec<&str> {
    keys.iter().map(|k| k.id.as_str()).collect()
}

fn page(after: Option<i64>, limit: usize) -> Page {
    Page { after, limit }
}

fn cursor_position(cursor: &str) -> i64 {
    i64::from_str_radix(cursor.strip_prefix('c').unwrap(), 16).unwrap()
}

const EVERYTHING: Scope = Scope { all: true, projects: Vec::new(), created_in: Vec::new() };

#[test]
fn opening_twice_keeps_the_data() {
    let (sql, store) = store();
    store.put_key(&key("k1", "p", "a", "active", &[])).unwrap();
    let again = Store::open(sql.boxed()).unwrap();
    assert_eq!(again.key("k1").unwrap().unwrap().id, "k1");
    assert!(again.key("k2").unwrap().is_none());
}

#[test]
fn keys_list_in_creation_order_with_cursors_filters_and_scopes() {
    let (_, store) = store();
    let keys = [
        key("k1", "p1", "alice", "active", &["ci", "prod"]),
        key("k2", "p1", "bob", "disabled", &["ci"]),
        key("k3", "p2", "alice", "active", &[]),
        key("k4", "p2", "bob", "deleted", &["ci"]),
        key("k5", "p3", "alice", "active", &["prod"]),
    ];
    for k in &keys {
        store.put_key(k).unwrap();
    }
    // An update keeps the key's place in the list.
    store.put_key(&Key { name: "renamed".into(), ..keys[0].clone() }).unwrap();

    let all = |filter: &KeyFilter| store.list_keys(filter, &EVERYTHING, "x", page(None, 50)).unwrap();
    let (listed, next) = all(&KeyFilter::default());
    assert_eq!((ids(&listed), next), (vec!["k1", "k2", "k3", "k5"], None), "deleted keys only when asked for");
    assert_eq!(listed[0].name, "renamed");

    let (first, next) = store.list_keys(&KeyFilter::default(), &EVERYTHING, "x", page(None, 2)).unwrap();
    assert_eq!(ids(&first), ["k1", "k2"]);
    let after = cursor_position(&next.unwrap());
    let (second, next) = store.list_keys(&KeyFilter::default(), &EVERYTHING, "x", page(Some(after), 2)).unwrap();
    assert_eq!((ids(&second), next), (vec!["k3", "k5"], None));

    assert_eq!(ids(&all(&KeyFilter { tag: Some("ci"), ..KeyFilter::default() }).0), ["k1", "k2"]);
    assert_eq!(
        ids(&all(&KeyFilter { tag: Some("c"), ..KeyFilter::default() }).0),
        Vec::<&str>::new(),
        "tags match whole"
    );
    assert_eq!(ids(&all(&KeyFilter { status: Some("deleted"), ..KeyFilter::default() }).0), ["k4"]);
    assert_eq!(ids(&all(&KeyFilter { project: Some("p2"), ..KeyFilter::default() }).0), ["k3"]);
    let alice_in_p1 = KeyFilter { creator: Some("alice"), project: Some("p1"), ..KeyFilter::default() };
    assert_eq!(ids(&all(&alice_in_p1).0), ["k1"]);

    // Every key of p1, and the keys bob created in p2 and p3.
    let scope = Scope { all: false, projects: vec!["p1".into()], created_in: vec!["p2".into(), "p3".into()] };
    let (scoped, _) = store.list_keys(&KeyFilter::default(), &scope, "bob", page(None, 50)).unwrap();
    assert_eq!(ids(&scoped), ["k1", "k2"], "bob's k4 in p2 is deleted");
    let (scoped, _) = store.list_keys(&KeyFilter::default(), &scope, "alice", page(None, 50)).unwrap();
    assert_eq!(ids(&scoped), ["k1", "k2", "k3", "k5"]);
    let nothing = Scope { all: false, projects: vec![], created_in: vec![] };
    assert!(store.list_keys(&KeyFilter::default(), &nothing, "alice", page(None, 50)).unwrap().0.is_empty());

    assert_eq!(store.live_key_ids().unwrap(), ["k1", "k2", "k3", "k5"]);
    assert_eq!(store.live_keys_in("p2").unwrap(), ["k3"]);
    assert_eq!(ids(&store.keys_of_project("p2").unwrap()), ["k3", "k4"]);
}

#[test]
fn principals_memberships_and_projects() {
    let (_, store) = store();
    let principal = |id: &str| -> PrincipalDoc {
        serde_json::from_value(json!({
            "id": id, "name": id, "role": "member", "created_at": 1, "created_by": "admin", "masked_token": "tka_...abcd"
        }))
        .unwrap()
    };
    for (id, hash) in [("a", "ha"), ("b", "hb"), ("c", "hc")] {
        store.insert_principal(&principal(id), hash).unwrap();
    }
    assert!(store.insert_principal(&principal("d"), "ha").is_err(), "a token hash belongs to one principal");
    assert_eq!(store.principal_by_token("hb").unwrap().unwrap().id, "b");
    store.put_membership("p1", "a", ProjectRole::Member).unwrap();
    store.put_membership("p1", "b", ProjectRole::Owner).unwrap();
    store.put_membership("p2", "c", ProjectRole::Member).unwrap();
    store.put_membership("p1", "a", ProjectRole::Owner).unwrap();
    assert_eq!(store.memberships("a").unwrap().role_in("p1"), Some(ProjectRole::Owner), "replaced");
    let members: Vec<String> = store.members("p1").unwrap().into_iter().map(|m| m.principal).collect();
    assert_eq!(members, ["b", "a"]);

    let scope = Scope { all: false, projects: vec!["p1".into()], created_in: vec![] };
    let (listed, _) = store.list_principals(&scope, "b", page(None, 50)).unwrap();
    assert_eq!(listed.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    let (everyone, next) = store.list_principals(&EVERYTHING, "b", page(None, 2)).unwrap();
    assert_eq!((everyone.len(), next.is_some()), (2, true));

    store.delete_principal("a").unwrap();
    assert!(store.principal("a").unwrap().is_none());
    assert!(store.memberships_of("a").unwrap().is_empty(), "memberships go with the principal");
    store.delete_project("p2").unwrap();
    assert!(store.memberships_of("c").unwrap().is_empty(), "and with the project");

    assert_eq!(store.org_policy().unwrap(), Boundary::default(), "no policy is the empty boundary");
    let policy: Boundary = serde_json::from_value(json!({"limits": {"rpm": 10}})).unwrap();
    store.set_org_policy(&policy).unwrap();
    store.set_org_policy(&policy).unwrap();
    assert_eq!(store.org_policy().unwrap(), policy);
}

#[test]
fn secrets_and_grace_ends() {
    let (_, store) = store();
    let state = SecretState {
        secrets: vec![
            Secret { hash: "old".into(), version: 1, valid_until_ms: Some(5_000) },
            Secret { hash: "new".into(), version: 2, valid_until_ms: None },
        ],
    };
    store.set_secrets("k1", &state).unwrap();
    store
        .set_secrets(
            "k2",
            &SecretState { secrets: vec![Secret { hash: "x".into(), version: 1, valid_until_ms: Some(9_000) }] },
        )
        .unwrap();
    assert_eq!(store.secrets("k1").unwrap(), state);
    assert_eq!(store.next_grace_end(1_000).unwrap(), Some(5_000));
    assert_eq!(store.next_grace_end(5_000).unwrap(), Some(9_000));
    assert_eq!(store.next_grace_end(9_000).unwrap(), None);
    assert_eq!(store.keys_with_ended_grace(4_999).unwrap(), Vec::<String>::new());
    assert_eq!(store.keys_with_ended_grace(5_000).unwrap(), ["k1"]);
    store.forget_secrets(&["old".to_owned()]).unwrap();
    assert_eq!(store.secrets("k1").unwrap().secrets.len(), 1);
    assert!(store.keys_with_ended_grace(5_000).unwrap().is_empty());
}

#[test]
fn the_audit_log_lists_newest_first_and_pages_backwards() {
    let (_, store) = store();
    for (i, action) in ["keys.create", "keys.update", "keys.disable"].iter().enumerate() {
        let change = Change::new(action, "key", "k1", None::<&serde_json::Value>, Some(&json!({"n": i})));
        store.audit(&change, "alice", 1_000 + i as u64).unwrap();
    }
    let (entries, next) = store.list_audit(page(None, 2)).unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["keys.disable", "keys.update"]);
    assert_eq!((entries[0].id, entries[0].at_ms, entries[0].actor.as_str()), (3, 1_002, "alice"));
    let (rest, next) = store.list_audit(page(Some(cursor_position(&next.unwrap())), 2)).unwrap();
    assert_eq!((rest.len(), rest[0].action.as_str(), next), (1, "keys.create", None));
}

#[test]
fn pending_work_runs_lane_by_lane_and_a_failure_holds_back_its_lane_only() {
    let (_, store) = store();
    let disable = Work::Control { key_id: "k1".into(), control: Control::Disable };
    let enable = Work::Control { key_id: "k1".into(), control: Control::Enable };
    for work in [
        Work::sync("k1").to_vec(),
        vec![disable.clone(), enable.clone()],
        Work::sync("k1").to_vec(),
        Work::sync("k2").to_vec(),
    ]
    .concat()
    {
        store.push_work(&work).unwrap();
    }
    let due = store.due_work(0, 50).unwrap();
    let lanes: Vec<(&str, Work)> =
        due.iter().map(|row| (row.lane.as_str(), serde_json::from_str(&row.work).unwrap())).collect();
    assert_eq!(
        lanes,
        [
            ("ledger:k1", Work::PushLimits { key_id: "k1".into() }),
            ("kv:k1", Work::Project { key_id: "k1".into() }),
            ("ledger:k1", disable),
            ("ledger:k1", enable),
            ("ledger:k2", Work::PushLimits { key_id: "k2".into() }),
            ("kv:k2", Work::Project { key_id: "k2".into() }),
        ],
        "state-based work already pending is not queued twice; controls are"
    );
    assert_eq!(store.due_work(0, 2).unwrap().len(), 2, "the limit holds");

    // The first ledger row of k1 fails: the rest of its lane waits for its retry; other lanes go on.
    let first = &due[0];
    store.work_failed(first.id, "object unreachable", 10_000).unwrap();
    let lanes_due = |now| store.due_work(now, 50).unwrap().into_iter().map(|row| row.lane).collect::<Vec<_>>();
    assert_eq!(lanes_due(5_000), ["kv:k1", "ledger:k2", "kv:k2"]);
    assert_eq!(store.next_work().unwrap(), Some(0), "other lanes are due now");
    for row in store.due_work(5_000, 50).unwrap() {
        store.work_done(row.id).unwrap();
    }
    assert_eq!(store.next_work().unwrap(), Some(10_000), "the failed row's retry");
    let retried = store.due_work(10_000, 50).unwrap();
    assert_eq!((retried.len(), retried[0].id, retried[0].attempts), (3, first.id, 1));
    for row in retried {
        store.work_done(row.id).unwrap();
    }
    assert_eq!(store.next_work().unwrap(), None);
}

#[test]
fn retention_purges_in_bounded_batches_oldest_first() {
    let (sql, store) = store();
    let change = Change::new::<serde_json::Value>("keys.update", "key", "k", None, None);
    for at in 0..450u64 {
        store.audit(&change, "admin", 1_000 + at).unwrap();
    }
    store.audit(&change, "admin", 10_000).unwrap();
    let count = |table: &str| sql.raw(&format!("SELECT 1 FROM {table}")).len();
    let retention_ms = 5_000;
    assert_eq!(store.next_expiry(retention_ms).unwrap(), Some(6_000), "the oldest entry's end");
    // Just before 15,000 every entry but the last is past its retention: three batches of at
    // most 200.
    for left in [251, 51, 1] {
        store.purge(14_999, 14_999 - retention_ms, 200).unwrap();
        assert_eq!(count("audit"), left);
    }
    assert_eq!(store.next_expiry(retention_ms).unwrap(), Some(15_000));
    store.purge(15_000, 15_000 - retention_ms, 200).unwrap();
    assert_eq!(count("audit"), 0, "the last entry's retention ends at 15,000");

    // A previous token goes once its grace ends, not before.
    let doc: PrincipalDoc = serde_json::from_value(json!({
        "id": "p", "name": "p", "role": "member", "created_at": 1, "created_by": "admin", "masked_token": "tka_...abcd"
    }))
    .unwrap();
    store.insert_principal(&doc, "old").unwrap();
    store.rotate_token(&doc, "new", Some(20_000)).unwrap();
    assert_eq!(store.principal_by_previous_token("old", 19_999).unwrap().map(|p| p.id), Some("p".to_owned()));
    assert!(store.principal_by_previous_token("old", 20_000).unwrap().is_none());
    assert_eq!(store.principal_by_token("new").unwrap().map(|p| p.id), Some("p".to_owned()));
    assert!(store.principal_by_token("old").unwrap().is_none());
    assert_eq!(store.next_expiry(retention_ms).unwrap(), Some(20_000));
    store.purge(19_999, 0, 200).unwrap();
    assert_eq!(count("previous_tokens"), 1);
    store.purge(20_000, 0, 200).unwrap();
    assert_eq!(count("previous_tokens"), 0);
}

#[test]
fn budgets_read_as_none_until_set_and_leave_with_their_project() {
    use teamkeys::admin::budget::{OrgBudget, ProjectBudget};
    let (_sql, store) = store();
    assert_eq!(store.org_budget().unwrap(), OrgBudget::default());
    assert_eq!(store.project_budget("prj_1").unwrap(), ProjectBudget::default());
    let limits = serde_json::from_value(json!({"rpm": 300})).unwrap();
    let org = OrgBudget { limits, location_hint: None, version: 1 };
    store.set_org_budget(&org).unwrap();
    let project: ProjectBudget =
        serde_json::from_value(json!({"ceiling": {"rpm": 50}, "narrowed": {"rpm": 10}, "version": 2})).unwrap();
    let doc = json!({"id": "prj_1", "name": "p", "created_at": 1, "created_by": "a"});
    store.put_project(&serde_json::from_value(doc).unwrap()).unwrap();
    store.set_project_budget("prj_1", &project).unwrap();
    assert_eq!((store.org_budget().unwrap(), store.project_budget("prj_1").unwrap()), (org.clone(), project));
    assert_eq!(store.project_budget("prj_2").unwrap(), ProjectBudget::default(), "each project its own");
    store.delete_project("prj_1").unwrap();
    assert_eq!(store.project_budget("prj_1").unwrap(), ProjectBudget::default(), "gone with its project");
    assert_eq!(store.org_budget().unwrap(), org);
}
