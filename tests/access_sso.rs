//! Cloudflare Access sign-in's checks on the host, with a locally generated RSA key pair: the
//! assertion's signature (RS256, checked here with the `rsa` crate where the edge uses
//! WebCrypto), issuer, audience, expiry and not-before, the key chosen by `kid`, the team's keys
//! cached within their bounds, and the test-only certs URL refused outside local development.

mod common;

use base64ct::{Base64UrlUnpadded, Encoding};
use common::ready;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
use serde_json::{json, Value};
use sha2::Sha256;
use std::cell::{Cell, RefCell};
use std::sync::OnceLock;
use teamkeys::admin::sso::{
    certs_url_override, verify, AccessSettings, Jwk, Jwks, KeyCache, SignatureCheck, TeamKeys, KEYS_CACHE_MS, LEEWAY_S,
    MIN_REFRESH_MS,
};
use teamkeys::error::ApiError;

const NOW_MS: u64 = 1_796_121_000_000;
const NOW_S: u64 = NOW_MS / 1000;

fn settings() -> AccessSettings {
    AccessSettings { team_domain: "acme.cloudflareaccess.com".into(), audience: "aud-1".into() }
}

/// Two key pairs, generated once per run.
fn keys() -> &'static [RsaPrivateKey; 2] {
    static KEYS: OnceLock<[RsaPrivateKey; 2]> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = rsa::rand_core::OsRng;
        [RsaPrivateKey::new(&mut rng, 2048).unwrap(), RsaPrivateKey::new(&mut rng, 2048).unwrap()]
    })
}

fn b64(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

fn jwk(kid: &str, key: &RsaPrivateKey) -> Jwk {
    let public = key.to_public_key();
    Jwk { kid: kid.into(), kty: "RSA".into(), n: b64(&public.n().to_bytes_be()), e: b64(&public.e().to_bytes_be()) }
}

/// A JWT of `claims` with `header`, signed by `key`.
fn jwt(header: Value, claims: Value, key: &RsaPrivateKey) -> String {
    let signed = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let signature = SigningKey::<Sha256>::new(key.clone()).sign(signed.as_bytes());
    format!("{signed}.{}", b64(&signature.to_bytes()))
}

fn claims() -> Value {
    json!({"iss": "https://acme.cloudflareaccess.com", "aud": ["aud-1"], "exp": NOW_S + 3600, "nbf": NOW_S - 5,
        "iat": NOW_S - 5, "email": "Ann@Example.com", "sub": "u1"})
}

fn header(kid: &str) -> Value {
    json!({"alg": "RS256", "kid": kid, "typ": "JWT"})
}

/// RS256 by the `rsa` crate.
struct RsaCheck;

impl SignatureCheck for RsaCheck {
    async fn rs256(&self, key: &Jwk, signed: &[u8], signature: &[u8]) -> Result<bool, String> {
        let part = |text: &str| Base64UrlUnpadded::decode_vec(text).map_err(|e| e.to_string());
        let public = RsaPublicKey::new(BigUint::from_bytes_be(&part(&key.n)?), BigUint::from_bytes_be(&part(&key.e)?))
            .map_err(|e| e.to_string())?;
        let Ok(signature) = Signature::try_from(signature) else { return Ok(false) };
        Ok(VerifyingKey::<Sha256>::new(public).verify(signed, &signature).is_ok())
    }
}

/// The team's certs endpoint, behind the cache as the edge keeps it; counts its fetches.
struct Team {
    published: RefCell<Jwks>,
    cache: RefCell<KeyCache>,
    fetches: Cell<u32>,
}

impl Team {
    fn new(keys: Vec<Jwk>) -> Team {
        Team { published: RefCell::new(Jwks { keys }), cache: RefCell::default(), fetches: Cell::new(0) }
    }
}

impl TeamKeys for Team {
    async fn keys(&self, url: &str, refresh: bool, now_ms: u64) -> Result<Jwks, String> {
        assert_eq!(url, "https://acme.cloudflareaccess.com/cdn-cgi/access/certs");
        if let Some(keys) = self.cache.borrow().get(url, refresh, now_ms) {
            return Ok(keys.clone());
        }
        self.fetches.set(self.fetches.get() + 1);
        let keys = self.published.borrow().clone();
        self.cache.borrow_mut().put(url, now_ms, keys.clone());
        Ok(keys)
    }
}

fn check(team: &Team, jwt: &str, now_ms: u64) -> Result<String, ApiError> {
    ready(verify(jwt, &settings(), now_ms, team, &RsaCheck))
}

fn refused(team: &Team, jwt: &str, now_ms: u64) -> String {
    let error = check(team, jwt, now_ms).expect_err("refused");
    assert_eq!((error.status(), error.code().as_str()), (401, "access_denied"), "{}", error.message);
    error.message
}

#[test]
fn a_signed_current_assertion_for_the_team_and_audience_names_its_email() {
    let [key, _] = keys();
    let team = Team::new(vec![jwk("k1", key)]);
    assert_eq!(check(&team, &jwt(header("k1"), claims(), key), NOW_MS).unwrap(), "ann@example.com");
    let mut one_audience = claims();
    one_audience["aud"] = json!("aud-1");
    assert_eq!(check(&team, &jwt(header("k1"), one_audience, key), NOW_MS).unwrap(), "ann@example.com");
}

#[test]
fn every_check_refuses_on_its_own() {
    let [key, other] = keys();
    let team = Team::new(vec![jwk("k1", key)]);
    let with = |field: &str, value: Value| {
        let mut claims = claims();
        claims[field] = value;
        jwt(header("k1"), claims, key)
    };
    let cases = [
        (with("iss", json!("https://evil.cloudflareaccess.com")), "issuer"),
        (with("aud", json!(["aud-2"])), "audience"),
        (with("exp", json!(NOW_S - LEEWAY_S)), "expired"),
        (with("nbf", json!(NOW_S + LEEWAY_S + 1)), "not valid yet"),
        (with("email", Value::Null), "no email"),
        (jwt(header("k1"), claims(), other), "signature"),
        (jwt(json!({"alg": "HS256", "kid": "k1"}), claims(), key), "RS256"),
        (jwt(json!({"alg": "none", "kid": "k1"}), claims(), key), "RS256"),
        (jwt(json!({"alg": "RS256"}), claims(), key), "names no key"),
        (jwt(header("k9"), claims(), key), "not one of the team's"),
        ("a.b".to_owned(), "not a JWT"),
        ("x".repeat(9000), "too long"),
    ];
    for (assertion, why) in cases {
        let message = refused(&team, &assertion, NOW_MS);
        assert!(message.contains(why), "{why}: {message}");
    }
    // A payload changed after signing.
    let good = jwt(header("k1"), claims(), key);
    let parts: Vec<&str> = good.split('.').collect();
    let mut forged = claims();
    forged["email"] = json!("admin@example.com");
    let tampered = format!("{}.{}.{}", parts[0], b64(forged.to_string().as_bytes()), parts[2]);
    assert!(refused(&team, &tampered, NOW_MS).contains("signature"));
    // Within the clock skew allowed, an expired assertion still passes.
    assert!(check(&team, &with("exp", json!(NOW_S - LEEWAY_S + 1)), NOW_MS).is_ok());
}

#[test]
fn the_teams_keys_are_cached_within_their_bounds_and_a_new_kid_refreshes_them() {
    let [key, next] = keys();
    let team = Team::new(vec![jwk("k1", key)]);
    let assertion = jwt(header("k1"), claims(), key);
    check(&team, &assertion, NOW_MS).unwrap();
    check(&team, &assertion, NOW_MS + KEYS_CACHE_MS - 1).unwrap();
    assert_eq!(team.fetches.get(), 1, "cached");
    check(&team, &assertion, NOW_MS + KEYS_CACHE_MS).unwrap();
    assert_eq!(team.fetches.get(), 2, "fetched again once the cache is old");

    // The team rotates in a key: an assertion naming it refreshes the cache, at most every 30 s.
    team.published.borrow_mut().keys.push(jwk("k2", next));
    let rotated = jwt(header("k2"), claims(), next);
    let t = NOW_MS + KEYS_CACHE_MS;
    refused(&team, &rotated, t + MIN_REFRESH_MS - 1);
    refused(&team, &rotated, t + 1);
    assert_eq!(team.fetches.get(), 2, "no refresh within 30 s of a fetch");
    assert_eq!(check(&team, &rotated, t + MIN_REFRESH_MS).unwrap(), "ann@example.com");
    assert_eq!(team.fetches.get(), 3);
    let unknown = jwt(header("k3"), claims(), next);
    for _ in 0..5 {
        refused(&team, &unknown, t + MIN_REFRESH_MS + 1);
    }
    assert_eq!(team.fetches.get(), 3, "unknown kids cannot make the worker fetch on every call");
}

#[test]
fn settings_name_an_access_team_and_the_test_certs_url_is_local_only() {
    assert!(settings().check().is_ok());
    for team_domain in [
        "evil.example.com",
        "a.b.cloudflareaccess.com",
        ".cloudflareaccess.com",
        "-x.cloudflareaccess.com",
        "ACME.cloudflareaccess.com",
    ] {
        let bad = AccessSettings { team_domain: team_domain.into(), audience: "a".into() };
        assert_eq!(bad.check().unwrap_err().code(), "invalid_field", "{team_domain}");
    }
    assert!(AccessSettings { audience: String::new(), ..settings() }.check().is_err());
    assert_eq!(certs_url_override(None, true), Ok(None));
    assert_eq!(certs_url_override(Some("http://127.0.0.1:9/certs"), true), Ok(Some("http://127.0.0.1:9/certs".into())));
    assert!(certs_url_override(Some("http://127.0.0.1:9/certs"), false).is_err(), "not outside local development");
    assert!(certs_url_override(Some("https://evil.example/certs"), true).is_err(), "loopback only");
    assert!(certs_url_override(Some("http://127.0.0.1.evil.example/x"), true).is_err());
}
