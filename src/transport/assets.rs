//! The widget and the pages, compiled into the binary, and the security headers each
//! page is served with (its Content-Security-Policy, framing and referrer policy).
//! `widget.js` and `widget.css` get none of them: customers' pages load them from their
//! own origin.
//! How long each may be cached is here too; how they are compressed and validated is
//! `encoding`'s.

use hyper::header::{HeaderName, HeaderValue};

pub struct Asset {
    /// The path it is served at (the key of its encodings).
    pub path: &'static str,
    pub body: &'static str,
    pub content_type: &'static str,
    /// For the two HTML pages: what they may load and who may frame them.
    pub policy: Option<&'static Policy>,
    /// `Cache-Control`: the widget, loaded on every page view of a customer's site, is
    /// reused for 5 minutes and then revalidated (a `304` while unchanged), so a new
    /// version reaches every site within 5 minutes; the inbox's files are revalidated
    /// on every load.
    pub cache: &'static str,
}

/// What a page may load, who may frame it, and what it tells other sites.
pub struct Policy {
    /// The Content-Security-Policy without `connect-src`, which names this host's
    /// WebSocket URLs (see [`Policy::headers`]).
    pub csp: &'static str,
    pub frame_options: &'static str,
    pub referrer: &'static str,
}

/// The agent inbox: only its own script and stylesheet, its own WebSockets, framed by
/// nobody (it holds an agent's token and acts on clicks).
pub const INBOX: Policy = Policy {
    csp: "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
          base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    frame_options: "DENY",
    referrer: "no-referrer",
};

/// The demo page: its own inline stylesheet (the widget needs none: it links
/// `widget.css`); no inline script, framed only by its own origin.
pub const DEMO: Policy = Policy {
    csp: "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
          img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'self'",
    frame_options: "SAMEORIGIN",
    referrer: "same-origin",
};

/// Whether a `Host` header is a plain `host[:port]` (or `[v6]:port`), safe to repeat in
/// a header value.
fn plain_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

impl Policy {
    /// The page's headers for a request to `host`. `connect-src 'self'` covers the
    /// same-origin `ws:`/`wss:` URLs in current browsers; older ones need them named.
    pub fn headers(&self, host: Option<&str>) -> Vec<(HeaderName, HeaderValue)> {
        let connect = match host.filter(|h| plain_host(h)) {
            Some(h) => format!("connect-src 'self' ws://{h} wss://{h}"),
            None => "connect-src 'self'".to_string(),
        };
        let csp = format!("{}; {connect}", self.csp);
        let mut out = Vec::with_capacity(3);
        if let Ok(v) = HeaderValue::from_str(&csp) {
            out.push((hyper::header::CONTENT_SECURITY_POLICY, v));
        }
        out.push((
            hyper::header::X_FRAME_OPTIONS,
            HeaderValue::from_static(self.frame_options),
        ));
        out.push((
            hyper::header::REFERRER_POLICY,
            HeaderValue::from_static(self.referrer),
        ));
        out
    }
}

pub fn get(path: &str) -> Option<Asset> {
    const HTML: &str = "text/html; charset=utf-8";
    const JS: &str = "text/javascript; charset=utf-8";
    const REVALIDATE: &str = "no-cache";
    let (path, body, content_type, policy, cache) = match path {
        "/" => (
            "/",
            include_str!("../assets/demo.html"),
            HTML,
            Some(&DEMO),
            REVALIDATE,
        ),
        "/widget.js" => (
            "/widget.js",
            include_str!("../assets/widget.js"),
            JS,
            None,
            "public, max-age=300",
        ),
        "/widget.css" => (
            "/widget.css",
            include_str!("../assets/widget.css"),
            "text/css; charset=utf-8",
            None,
            "public, max-age=300",
        ),
        "/inbox" => (
            "/inbox",
            include_str!("../assets/inbox.html"),
            HTML,
            Some(&INBOX),
            REVALIDATE,
        ),
        "/inbox.js" => (
            "/inbox.js",
            include_str!("../assets/inbox.js"),
            JS,
            None,
            REVALIDATE,
        ),
        "/inbox.css" => (
            "/inbox.css",
            include_str!("../assets/inbox.css"),
            "text/css; charset=utf-8",
            None,
            REVALIDATE,
        ),
        _ => return None,
    };
    Some(Asset {
        path,
        body,
        content_type,
        policy,
        cache,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_have_no_inline_script_and_the_inbox_no_inline_style() {
        for path in ["/", "/inbox"] {
            let page = get(path).map(|a| a.body).unwrap_or_default();
            for tag in page.split("<script").skip(1) {
                assert!(
                    tag.trim_start().starts_with("src="),
                    "{path}: inline script"
                );
            }
        }
        let inbox = get("/inbox").map(|a| a.body).unwrap_or_default();
        assert!(!inbox.contains("<style") && !inbox.contains("style="));
        let js = get("/inbox.js").map(|a| a.body).unwrap_or_default();
        assert!(!js.contains("innerHTML") && !js.contains("setAttribute('style'"));
    }

    /// The widget links its stylesheet as `widget.css?v=HASH` (the first 8 hex digits of
    /// its SHA-256), so a new widget.js never meets an old sheet in a cache, and it sets
    /// no inline style a strict CSP would block.
    #[test]
    fn the_widget_links_this_version_of_its_stylesheet_and_has_no_inline_style() {
        use sha2::{Digest, Sha256};
        let css = get("/widget.css").map(|a| a.body).unwrap_or_default();
        let hash: String = Sha256::digest(css.as_bytes())[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let js = get("/widget.js").map(|a| a.body).unwrap_or_default();
        assert!(
            js.contains(&format!("/widget.css?v={hash}'")),
            "widget.js must link /widget.css?v={hash} (the stylesheet changed)"
        );
        for inline in [
            "innerHTML",
            "setAttribute('style'",
            "'style'",
            "<style",
            "cssText",
        ] {
            assert!(!js.contains(inline), "widget.js uses {inline}");
        }
    }

    #[test]
    fn a_host_header_cannot_add_directives() {
        let h = INBOX.headers(Some("evil.test; script-src *"));
        let csp = h[0].1.to_str().unwrap_or_default();
        assert!(csp.ends_with("connect-src 'self'"), "{csp}");
        let h = INBOX.headers(Some("127.0.0.1:8080"));
        let csp = h[0].1.to_str().unwrap_or_default();
        assert!(csp.ends_with("connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080"));
        assert!(csp.contains("frame-ancestors 'none'"));
    }
}
