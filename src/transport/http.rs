//! The HTTP side: routes, and the checks a WebSocket handshake must pass.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::limiter::{Limiter, Refused, Slot};
use super::{assets, encoding, proxy, sign_in, uploads, ws};
use crate::app::App;
use crate::inboxes::{normalize_origin, DEFAULT_INBOX};
use crate::metrics::Metrics;
use crate::session;
use crate::throttle::address_key;

pub type Body = Full<Bytes>;

/// What every request handler shares.
#[derive(Clone)]
pub struct Transport {
    pub app: App,
    pub limiter: Arc<Limiter>,
    /// Counts WebSocket tasks, so shutdown can wait for them to finish.
    pub active: Arc<Active>,
}

pub(super) fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// An asset in the coding the request accepts, or `304` when it holds that one.
fn asset(a: &assets::Asset, req: &Request<Incoming>, host: Option<&str>) -> Response<Body> {
    let wanted = encoding::negotiate(header_str(req, header::ACCEPT_ENCODING));
    let encoded = encoding::encoded(a.path, a.body);
    let (coding, body) = encoded.body(wanted);
    let etag = encoded.etag(coding);
    let fresh = encoding::holds(header_str(req, header::IF_NONE_MATCH), &etag);
    let mut r = if fresh {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(Full::new(Bytes::from_static(body)))
    };
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    if let Some(c) = coding.header().filter(|_| !fresh) {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(c));
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(a.cache));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if let Some(policy) = a.policy {
        for (name, value) in policy.headers(host) {
            h.insert(name, value);
        }
    }
    r
}

pub async fn handle(
    t: Transport,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let client = client_ip(&t, peer, &req);
    let host = header_str(&req, header::HOST).map(str::to_string);
    if path == uploads::UPLOADS_PATH {
        return Ok(uploads::upload(&t, client, req).await);
    }
    if path == "/api/session" {
        return Ok(sign_in::handle(&t, peer, req).await);
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET is served here",
        ));
    }
    let resp = match path.as_str() {
        "/healthz" => match t
            .app
            .kv()
            .get(crate::store::Tree::Meta, crate::store::keys::SCHEMA_KEY)
        {
            Ok(_) => plain(StatusCode::OK, "ok"),
            Err(_) => plain(StatusCode::SERVICE_UNAVAILABLE, "store unavailable"),
        },
        "/metrics" => {
            let mut r = Response::new(Full::new(Bytes::from(
                t.app.metrics.render(t.app.writer.stats()),
            )));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            r
        }
        "/ws/visitor" => visitor_upgrade(&t, client, req),
        "/ws/agent" => agent_upgrade(&t, peer, client, req),
        "/ws/echo" if t.app.config.test_echo => {
            upgrade(&t, client, req, None, |t, upgraded, held| async move {
                ws::echo(upgraded, &t.app.config.limits).await;
                drop(held);
            })
        }
        p => match assets::get(p) {
            Some(a) => asset(&a, &req, host.as_deref()),
            None => plain(StatusCode::NOT_FOUND, "not found"),
        },
    };
    Ok(resp)
}

pub(super) fn query_param<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.uri()
        .query()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub(super) fn header_str(req: &Request<Incoming>, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The client's address, for the per-address caps and for logs: the TCP peer, or,
/// when the peer is a trusted proxy, the client it names in `X-Forwarded-For` (or,
/// without that header, RFC 7239 `Forwarded: for=`). Read from the right, skipping
/// addresses that are trusted proxies themselves, so what a client put in front
/// is never taken; a header that does not parse, or names the client `unknown` or by
/// an obfuscated identifier, leaves the peer.
pub fn client_ip(t: &Transport, peer: SocketAddr, req: &Request<Incoming>) -> IpAddr {
    proxy::forwarded_client(&t.app.config, peer.ip(), req.headers())
}

fn visitor_upgrade(t: &Transport, client: IpAddr, req: Request<Incoming>) -> Response<Body> {
    let key = query_param(&req, "inbox")
        .unwrap_or(DEFAULT_INBOX)
        .to_string();
    let Some(inbox) = t.app.inboxes.get(&key) else {
        return plain(StatusCode::NOT_FOUND, "no such inbox");
    };
    if !origin_allowed(&inbox, &req) {
        // The contract's answer is close 4003, which a browser's page can read (an
        // HTTP 403 it cannot tell from a network failure): the upgrade completes,
        // with no cookie and no session, and the close follows at once.
        return upgrade(t, client, req, None, |t, upgraded, held| async move {
            if let Some(socket) = ws::accept(upgraded, &t.app.config.limits) {
                let reason = "this page's origin may not use this inbox";
                session::refuse(
                    &t.app,
                    socket,
                    widget_protocol::close::ORIGIN_NOT_ALLOWED,
                    reason,
                )
                .await;
            }
            drop(held);
        });
    }
    let now = t.app.now();
    let from_cookie =
        header_str(&req, header::COOKIE).and_then(|c| t.app.identity.from_cookie_header(c, now));
    // A new visitor is counted when their token is minted. Over the limit, the
    // connection still opens (a widget with a token in its `hello` is unaffected), but
    // without one: a `hello` without a token is then refused.
    let identity = match from_cookie {
        Some(id) => Ok(id),
        None => t
            .app
            .throttle
            .new_visitors_per_address
            .admit(&address_key(client))
            .map(|()| t.app.identity.mint(now)),
    };
    // A cookie that verified as it was needs no new one; a renewed or new token does.
    let set_cookie = identity
        .as_ref()
        .ok()
        .filter(|id| id.fresh)
        .map(|id| t.app.identity.set_cookie(&id.token));
    let hs = session::visitor::Handshake {
        inbox,
        client,
        cookie_identity: identity,
    };
    upgrade(
        t,
        client,
        req,
        set_cookie,
        move |t, upgraded, held| async move {
            if let Some(socket) = ws::accept(upgraded, &t.app.config.limits) {
                session::visitor::run(t.app.clone(), hs, socket, held).await
            }
        },
    )
}

/// The inbox's origin rule, for the visitor upgrade and for uploads alike: with origins
/// configured, the request's `Origin` must be one of them.
pub fn origin_allowed(inbox: &crate::store::records::InboxRecord, req: &Request<Incoming>) -> bool {
    inbox.origins.is_empty()
        || header_str(req, header::ORIGIN)
            .and_then(normalize_origin)
            .is_some_and(|o| inbox.origins.contains(&o))
}

/// The request's `Origin`, normalized; `Ok(None)` without one, `Err` for one that is
/// not an origin.
fn origin(req: &Request<Incoming>) -> Result<Option<String>, ()> {
    match header_str(req, header::ORIGIN) {
        None => Ok(None),
        Some(o) => normalize_origin(o).map(Some).ok_or(()),
    }
}

/// Whether `origin` is this server's own: `http://` or `https://` and the host the
/// request was sent to (its `Host`, or the one a trusted proxy forwards).
fn is_own(t: &Transport, peer: SocketAddr, req: &Request<Incoming>, origin: &str) -> bool {
    let host = header_str(req, header::HOST).map(str::to_ascii_lowercase);
    let forwarded = proxy::forwarded_host(&t.app.config, peer.ip(), req.headers());
    [host, forwarded]
        .into_iter()
        .flatten()
        .any(|h| origin == format!("http://{h}") || origin == format!("https://{h}"))
}

/// Whether the request has no `Origin` (not from a browser's page, or a same-origin
/// GET) or this server's own: what a request that uses or makes the sign-in cookie must
/// show.
pub(super) fn own_origin(t: &Transport, peer: SocketAddr, req: &Request<Incoming>) -> bool {
    match origin(req) {
        Ok(None) => true,
        Ok(Some(o)) => is_own(t, peer, req, &o),
        Err(()) => false,
    }
}

/// Cross-site WebSocket hijacking: a browser page may open the agent socket only from
/// this server's own origin or one configured for it. Non-browser clients send no Origin.
fn agent_origin_ok(t: &Transport, peer: SocketAddr, req: &Request<Incoming>) -> bool {
    match origin(req) {
        Ok(None) => true,
        Ok(Some(o)) => {
            is_own(t, peer, req, &o)
                || t.app
                    .config
                    .agent_origins
                    .iter()
                    .any(|a| normalize_origin(a).as_deref() == Some(o.as_str()))
        }
        Err(()) => false,
    }
}

fn agent_upgrade(
    t: &Transport,
    peer: SocketAddr,
    client: IpAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    if !agent_origin_ok(t, peer, &req) {
        return plain(
            StatusCode::FORBIDDEN,
            "the agent endpoint does not accept this origin",
        );
    }
    // The sign-in cookie counts only from the server's own pages: an origin configured
    // for the agent endpoint signs in with a token.
    let sign_in = match (own_origin(t, peer, &req), header_str(&req, header::COOKIE)) {
        (true, Some(cookie)) => crate::signin::from_cookie_header(cookie),
        _ => Vec::new(),
    };
    let hs = session::agent::Handshake { sign_in };
    upgrade(t, client, req, None, |t, upgraded, held| async move {
        if let Some(socket) = ws::accept(upgraded, &t.app.config.limits) {
            session::agent::run(t.app.clone(), hs, socket, held).await
        }
    })
}

/// Seconds a refused client is told to wait (`Retry-After`).
pub const RETRY_AFTER_SECS: &str = "5";

/// The status and line of a refusal at a cap.
pub fn refusal(refused: Refused) -> (StatusCode, &'static str) {
    match refused {
        Refused::Full => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is at its connection limit",
        ),
        Refused::PerAddress => (
            StatusCode::TOO_MANY_REQUESTS,
            "too many connections from this address",
        ),
    }
}

/// Checks the handshake, takes a connection slot, answers 101 and runs `then` on the
/// upgraded connection in a task of its own.
fn upgrade<F, Fut>(
    t: &Transport,
    client: IpAddr,
    req: Request<Incoming>,
    set_cookie: Option<String>,
    then: F,
) -> Response<Body>
where
    F: FnOnce(Transport, hyper::upgrade::Upgraded, Admission) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let upgrade_ok = header_str(&req, header::UPGRADE)
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
        && header_str(&req, header::CONNECTION).is_some_and(|c| {
            c.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("upgrade"))
        })
        && header_str(&req, header::SEC_WEBSOCKET_VERSION) == Some("13");
    let Some(key) = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|_| upgrade_ok)
    else {
        return plain(
            StatusCode::BAD_REQUEST,
            "expected a WebSocket upgrade (version 13)",
        );
    };
    let accept = derive_accept_key(key.as_bytes());
    let slot: Slot = match t.limiter.upgrade(client) {
        Ok(s) => s,
        Err(refused) => {
            Metrics::inc(&t.app.metrics.connections_refused);
            tracing::debug!(%client, ?refused, "websocket refused at its cap");
            let (status, text) = refusal(refused);
            let mut r = plain(status, text);
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
            return r;
        }
    };
    let task_t = t.clone();
    tokio::spawn(async move {
        let admission = Admission {
            _slot: slot,
            _active: task_t.active.enter(),
        };
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => then(task_t, upgraded, admission).await,
            Err(e) => tracing::debug!(error = %e, "upgrade failed"),
        }
    });
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Some(c) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::SET_COOKIE, c);
    }
    r
}

/// What a WebSocket connection holds for as long as it lives: its slot under the
/// connection limits and its place among the connections shutdown waits for. The
/// session moves it into the task that outlives the handshake.
pub struct Admission {
    _slot: Slot,
    _active: ActiveGuard,
}

/// The number of running WebSocket tasks.
#[derive(Default)]
pub struct Active {
    count: AtomicUsize,
    idle: Notify,
}

pub struct ActiveGuard(Arc<Active>);

impl Active {
    pub fn enter(self: &Arc<Self>) -> ActiveGuard {
        self.count.fetch_add(1, Ordering::AcqRel);
        ActiveGuard(self.clone())
    }

    /// Resolves when no WebSocket task is running.
    pub async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
