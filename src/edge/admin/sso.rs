//! Cloudflare Access at the edge: the team's keys fetched (and cached by the registry object,
//! [`KeyCache`]) and RS256 signatures checked with WebCrypto (`crypto.subtle`, through
//! `js_sys::Reflect`: no crypto crate in the wasm). The checks themselves are
//! [`crate::admin::sso`]'s.

use crate::admin::sso::{Jwk, Jwks, KeyCache, SignatureCheck, TeamKeys};
use std::cell::RefCell;
use wasm_bindgen::{JsCast, JsValue};
use worker::js_sys::{self, Array, Function, Object, Promise, Reflect, Uint8Array};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{Fetch, Method, Request};

/// The team's keys over `fetch`, from `cache` while it may answer.
pub struct FetchedKeys<'a> {
    pub cache: &'a RefCell<KeyCache>,
    /// A local test's certs URL ([`crate::admin::sso::certs_url_override`]).
    pub override_url: Option<String>,
}

impl TeamKeys for FetchedKeys<'_> {
    async fn keys(&self, url: &str, refresh: bool, now_ms: u64) -> Result<Jwks, String> {
        if let Some(keys) = self.cache.borrow().get(url, refresh, now_ms) {
            return Ok(keys.clone());
        }
        let target = self.override_url.as_deref().unwrap_or(url);
        let request = Request::new(target, Method::Get).map_err(|e| e.to_string())?;
        let mut response = Fetch::Request(request).send().await.map_err(|e| e.to_string())?;
        if response.status_code() != 200 {
            return Err(format!("the certs URL answered {}", response.status_code()));
        }
        let keys: Jwks = response.json().await.map_err(|e| e.to_string())?;
        self.cache.borrow_mut().put(url, now_ms, keys.clone());
        Ok(keys)
    }
}

/// RSASSA-PKCS1-v1_5 with SHA-256, by `crypto.subtle`.
pub struct WebCrypto;

fn js_error(e: JsValue) -> String {
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

fn set(object: &Object, name: &str, value: &JsValue) -> Result<(), String> {
    Reflect::set(object, &JsValue::from_str(name), value).map(drop).map_err(js_error)
}

/// `subtle[method](...args)`, awaited.
async fn call(subtle: &JsValue, method: &str, args: &Array) -> Result<JsValue, String> {
    let function: Function = Reflect::get(subtle, &JsValue::from_str(method))
        .map_err(js_error)?
        .dyn_into()
        .map_err(|_| format!("crypto.subtle.{method} is missing"))?;
    let promise: Promise = function.apply(subtle, args).map_err(js_error)?.dyn_into().map_err(js_error)?;
    JsFuture::from(promise).await.map_err(js_error)
}

impl SignatureCheck for WebCrypto {
    async fn rs256(&self, key: &Jwk, signed: &[u8], signature: &[u8]) -> Result<bool, String> {
        let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto")).map_err(js_error)?;
        let subtle = Reflect::get(&crypto, &JsValue::from_str("subtle")).map_err(js_error)?;
        let jwk = Object::new();
        for (name, value) in [("kty", "RSA"), ("n", key.n.as_str()), ("e", key.e.as_str()), ("alg", "RS256")] {
            set(&jwk, name, &JsValue::from_str(value))?;
        }
        let algorithm = Object::new();
        set(&algorithm, "name", &JsValue::from_str("RSASSA-PKCS1-v1_5"))?;
        set(&algorithm, "hash", &JsValue::from_str("SHA-256"))?;
        let usages = Array::of1(&JsValue::from_str("verify"));
        let import = Array::of5(&JsValue::from_str("jwk"), &jwk, &algorithm, &JsValue::FALSE, &usages);
        let public_key = call(&subtle, "importKey", &import).await?;
        let (signature, signed) = (Uint8Array::from(signature), Uint8Array::from(signed));
        let verify = Array::of4(&algorithm, &public_key, &signature, &signed);
        Ok(call(&subtle, "verify", &verify).await?.as_bool() == Some(true))
    }
}
