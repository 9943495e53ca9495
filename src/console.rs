//! The console: the web interface served by the worker itself, as Workers static assets under
//! [`PREFIX`]. The worker runs first for every path (`run_worker_first`), so a path outside the
//! prefix is never answered by the assets, and unknown paths stay refused by the gateway.
//!
//! Flow of a console request: [`route`] → `/console` is redirected to `/console/` → a method
//! other than GET/HEAD is 405 ([`check_method`]) → any other path under the prefix is fetched
//! from the `ASSETS` binding as is (the built files live under `build/assets/console/`, so a
//! file's path is its URL path) → a miss on a path that names no
//! file ([`serves_index_on_miss`]) is answered with the console's `index.html`, for client-side
//! routes → every answer gets [`SECURITY_HEADERS`] and the [`cache_control`] of its path.

use crate::error::ApiError;

/// Where the console lives.
pub const PREFIX: &str = "/console/";

/// The console's entry page, answered for client-side routes.
pub const INDEX: &str = "/console/index.html";

/// Content-hashed files: cached for a year; everything else is revalidated on every use.
pub const IMMUTABLE_PREFIX: &str = "/console/assets/";

/// The console's policy: everything from the worker's own origin, nothing inline, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

/// Set on every console answer.
pub const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
];

/// What the worker does with a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Not the console's: the gateway or the admin API answers it.
    NotConsole,
    /// `/console`: 308 to [`PREFIX`].
    Redirect,
    /// A path under [`PREFIX`]: the assets answer it.
    Asset,
}

pub fn route(path: &str) -> Route {
    if path == "/console" {
        Route::Redirect
    } else if path.starts_with(PREFIX) {
        Route::Asset
    } else {
        Route::NotConsole
    }
}

/// The console is read only: GET and HEAD; anything else is 405 (with `Allow`).
pub fn check_method(method: &str) -> Result<(), ApiError> {
    match method {
        "GET" | "HEAD" => Ok(()),
        _ => Err(ApiError::method_not_allowed(&["GET", "HEAD"], format!("{method} is not allowed here; use GET."))),
    }
}

/// Whether a miss on `path` is answered with [`INDEX`]: a console path whose last segment names
/// no file (has no `.`), so a client-side route survives a reload while a missing file stays 404.
pub fn serves_index_on_miss(path: &str) -> bool {
    path.starts_with(PREFIX) && !path.rsplit('/').next().unwrap_or_default().contains('.')
}

/// The `Cache-Control` of a console answer for `path`.
pub fn cache_control(path: &str) -> &'static str {
    if path.starts_with(IMMUTABLE_PREFIX) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_prefix_is_the_consoles() {
        assert_eq!(route("/console"), Route::Redirect);
        assert_eq!(route("/console/"), Route::Asset);
        assert_eq!(route("/console/assets/app-1a2b.js"), Route::Asset);
        for other in
            ["/", "/consoles", "/console.html", "/index.html", "/admin/v1/me", "/v1/chat/completions", "/x/console/"]
        {
            assert_eq!(route(other), Route::NotConsole, "{other}");
        }
    }

    #[test]
    fn the_console_is_read_only() {
        assert!(check_method("GET").is_ok() && check_method("HEAD").is_ok());
        let refused = check_method("POST").unwrap_err();
        assert_eq!((refused.status(), refused.allow()), (405, Some("GET, HEAD")));
    }

    #[test]
    fn client_routes_fall_back_to_the_index_and_files_do_not() {
        assert!(serves_index_on_miss("/console/keys/key_1"));
        assert!(serves_index_on_miss("/console/"));
        assert!(!serves_index_on_miss("/console/assets/missing.js"));
        assert!(!serves_index_on_miss("/elsewhere/keys"));
    }

    #[test]
    fn hashed_assets_are_immutable_and_pages_revalidate() {
        assert_eq!(cache_control("/console/assets/app-1a2b.js"), "public, max-age=31536000, immutable");
        assert_eq!(cache_control("/console/"), "no-cache");
        assert_eq!(cache_control("/console/index.html"), "no-cache");
        assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
    }
}
