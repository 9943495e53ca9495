//! The console's assets at the edge: a path under `/console/` is fetched from the `ASSETS`
//! binding; what to fetch and which headers to set are [`crate::console`]'s.

use super::respond::internal;
use crate::console::{cache_control, check_method, serves_index_on_miss, Route, INDEX, PREFIX, SECURITY_HEADERS};
use crate::error::ApiError;
use worker::{Env, Headers, Request, Response, Url};

/// The console's answer to `req`, or `None` if its path is not the console's.
pub async fn handle(req: &Request, env: &Env, url: &Url) -> Option<Result<Response, ApiError>> {
    match crate::console::route(url.path()) {
        Route::NotConsole => None,
        Route::Redirect => Some(redirect(url)),
        Route::Asset => Some(asset(req, env, url).await),
    }
}

fn redirect(url: &Url) -> Result<Response, ApiError> {
    let mut to = url.clone();
    to.set_path(PREFIX);
    let response = Response::redirect_with_status(to, 308).map_err(|e| internal("console", e))?;
    secured(response, PREFIX)
}

async fn asset(req: &Request, env: &Env, url: &Url) -> Result<Response, ApiError> {
    check_method(req.method().as_ref())?;
    let assets = env.assets("ASSETS").map_err(|e| internal("console assets", e))?;
    let fetch = |url: &Url| {
        let mut init = worker::RequestInit::new();
        init.with_method(req.method()).with_headers(req.headers().clone());
        Request::new_with_init(url.as_str(), &init)
    };
    let request = fetch(url).map_err(|e| internal("console assets", e))?;
    let mut response = assets.fetch_request(request).await.map_err(|e| internal("console assets", e))?;
    let mut path = url.path().to_owned();
    if response.status_code() == 404 && serves_index_on_miss(url.path()) {
        let mut index = url.clone();
        index.set_path(INDEX);
        index.set_query(None);
        let request = fetch(&index).map_err(|e| internal("console assets", e))?;
        response = assets.fetch_request(request).await.map_err(|e| internal("console assets", e))?;
        path = INDEX.to_owned();
    }
    secured(response, &path)
}

/// `response` with the console's security headers and the cache policy of `path`.
/// (The fetched answer's headers are immutable: they are copied.)
fn secured(response: Response, path: &str) -> Result<Response, ApiError> {
    let headers = Headers::new();
    let set = |name: &str, value: &str| headers.set(name, value).map_err(|e| internal("console", e));
    for (name, value) in response.headers().entries() {
        set(&name, &value)?;
    }
    for (name, value) in SECURITY_HEADERS.into_iter().chain([("cache-control", cache_control(path))]) {
        set(name, value)?;
    }
    Ok(response.with_headers(headers))
}
