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
use super::{assets, ws};
use crate::app::App;
use crate::config::Config;
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

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
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
        "/ws/agent" => agent_upgrade(&t, client, req),
        "/ws/echo" if t.app.config.test_echo => {
            upgrade(&t, client, req, None, |t, upgraded, held| async move {
                ws::echo(upgraded, &t.app.config.limits).await;
                drop(held);
            })
        }
        p => match assets::get(p) {
            Some(a) => {
                let mut r = Response::new(Full::new(Bytes::from_static(a.body.as_bytes())));
                let h = r.headers_mut();
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(a.content_type),
                );
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                h.insert(
                    "x-content-type-options",
                    HeaderValue::from_static("nosniff"),
                );
                if let Some(policy) = a.policy {
                    for (name, value) in policy.headers(host.as_deref()) {
                        h.insert(name, value);
                    }
                }
                r
            }
            None => plain(StatusCode::NOT_FOUND, "not found"),
        },
    };
    Ok(resp)
}

fn query_param<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.uri()
        .query()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn header_str(req: &Request<Incoming>, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Whether `ip` is one of the configured reverse proxies.
pub fn is_trusted_proxy(config: &Config, ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    config.trusted_proxies.iter().any(|n| n.contains(&ip))
}

/// The client's address, for the per-address caps and for logs: the TCP peer, or,
/// when the peer is a trusted proxy, the client it names in `X-Forwarded-For` (or,
/// without that header, RFC 7239 `Forwarded: for=`). Read from the right, skipping
/// addresses that are trusted proxies themselves, so what a client put in front
/// is never taken; a header that does not parse, or names the client `unknown` or by
/// an obfuscated identifier, leaves the peer.
pub fn client_ip(t: &Transport, peer: SocketAddr, req: &Request<Incoming>) -> IpAddr {
    forwarded_client(&t.app.config, peer.ip(), req.headers())
}

fn forwarded_client(config: &Config, peer: IpAddr, headers: &header::HeaderMap) -> IpAddr {
    let peer = peer.to_canonical();
    if !is_trusted_proxy(config, peer) {
        return peer;
    }
    let hops = if headers.contains_key(X_FORWARDED_FOR) {
        joined(headers, X_FORWARDED_FOR).and_then(|v| x_forwarded_for(&v))
    } else if headers.contains_key(header::FORWARDED) {
        joined(headers, header::FORWARDED.as_str()).and_then(|v| forwarded(&v))
    } else {
        return peer;
    };
    let Some(hops) = hops else {
        return peer;
    };
    let mut nearest = peer;
    for hop in hops.iter().rev() {
        match hop {
            Hop::Unknown => return peer,
            Hop::Addr(ip) if is_trusted_proxy(config, *ip) => nearest = *ip,
            Hop::Addr(ip) => return *ip,
        }
    }
    nearest
}

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// One hop a proxy reported: an address, or a client it does not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    Addr(IpAddr),
    Unknown,
}

/// Every line of a header, joined as one list; `None` if one is not text.
fn joined(headers: &header::HeaderMap, name: &str) -> Option<String> {
    let mut parts = Vec::new();
    for v in headers.get_all(name) {
        parts.push(v.to_str().ok()?);
    }
    Some(parts.join(","))
}

/// `X-Forwarded-For: client, proxy1, proxy2`: addresses, perhaps with a port.
fn x_forwarded_for(v: &str) -> Option<Vec<Hop>> {
    v.split(',').map(|e| node(e.trim())).collect()
}

/// `Forwarded: for=192.0.2.1;proto=https, for="[2001:db8::1]:443"` (RFC 7239): the
/// `for` of every element, quoted or not.
fn forwarded(v: &str) -> Option<Vec<Hop>> {
    let mut hops = Vec::new();
    for element in split_unquoted(v, ',') {
        let mut found = None;
        for pair in split_unquoted(element, ';') {
            let (k, val) = pair.trim().split_once('=')?;
            if k.trim().eq_ignore_ascii_case("for") {
                let val = val.trim();
                let val = match val.strip_prefix('"') {
                    Some(q) => q.strip_suffix('"')?,
                    None => val,
                };
                found = Some(node(val)?);
            }
        }
        // An element that does not say whom it forwards for hides the client.
        hops.push(found.unwrap_or(Hop::Unknown));
    }
    Some(hops)
}

/// `s` split at `sep` outside double quotes; empty pieces dropped.
fn split_unquoted(s: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    s.split(move |c: char| {
        if c == '"' {
            quoted = !quoted;
        }
        c == sep && !quoted
    })
    .filter(|p| !p.trim().is_empty())
}

/// An RFC 7239 node (`192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]`, `[2001:db8::1]:80`,
/// `unknown`, `_hidden`), or a bare IPv6 address as `X-Forwarded-For` writes it.
fn node(s: &str) -> Option<Hop> {
    if s.eq_ignore_ascii_case("unknown") || s.starts_with('_') {
        return Some(Hop::Unknown);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(Hop::Addr(ip.to_canonical()));
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let port_ok = after.is_empty()
            || after
                .strip_prefix(':')
                .is_some_and(|p| p.parse::<u16>().is_ok() || p.starts_with('_'));
        return match (ip.parse::<std::net::Ipv6Addr>(), port_ok) {
            (Ok(ip), true) => Some(Hop::Addr(IpAddr::V6(ip).to_canonical())),
            _ => None,
        };
    }
    let (ip, port) = s.split_once(':')?;
    let ip = ip.parse::<std::net::Ipv4Addr>().ok()?;
    (port.parse::<u16>().is_ok() || port.starts_with('_')).then_some(Hop::Addr(IpAddr::V4(ip)))
}

fn visitor_upgrade(t: &Transport, client: IpAddr, req: Request<Incoming>) -> Response<Body> {
    let key = query_param(&req, "inbox")
        .unwrap_or(DEFAULT_INBOX)
        .to_string();
    let Some(inbox) = t.app.inboxes.get(&key) else {
        return plain(StatusCode::NOT_FOUND, "no such inbox");
    };
    if !inbox.origins.is_empty() {
        let origin = header_str(&req, header::ORIGIN).and_then(normalize_origin);
        if !origin.is_some_and(|o| inbox.origins.contains(&o)) {
            return plain(
                StatusCode::FORBIDDEN,
                "this page's origin may not use this inbox",
            );
        }
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

/// Cross-site WebSocket hijacking: a browser page may open the agent socket only from
/// this server's own origin or one configured for it. Non-browser clients send no Origin.
fn agent_origin_ok(t: &Transport, req: &Request<Incoming>) -> bool {
    let Some(origin) = header_str(req, header::ORIGIN) else {
        return true;
    };
    let Some(origin) = normalize_origin(origin) else {
        return false;
    };
    let host = header_str(req, header::HOST)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let own = [format!("http://{host}"), format!("https://{host}")];
    own.contains(&origin)
        || t.app
            .config
            .agent_origins
            .iter()
            .any(|o| normalize_origin(o).as_deref() == Some(origin.as_str()))
}

fn agent_upgrade(t: &Transport, client: IpAddr, req: Request<Incoming>) -> Response<Body> {
    if !agent_origin_ok(t, &req) {
        return plain(
            StatusCode::FORBIDDEN,
            "the agent endpoint does not accept this origin",
        );
    }
    upgrade(t, client, req, None, |t, upgraded, held| async move {
        if let Some(socket) = ws::accept(upgraded, &t.app.config.limits) {
            session::agent::run(t.app.clone(), socket, held).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn config(proxies: &[&str]) -> Config {
        let mut c = Config::new("127.0.0.1:0".parse().expect("addr"), PathBuf::new());
        c.trusted_proxies = proxies
            .iter()
            .map(|p| crate::config::parse_trusted_proxy(p).expect("net"))
            .collect();
        c
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    /// The client seen from `peer` with these header lines.
    fn client(c: &Config, peer: &str, lines: &[(&str, &str)]) -> IpAddr {
        let mut h = header::HeaderMap::new();
        for (k, v) in lines {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        forwarded_client(c, ip(peer), &h)
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let c = config(&["10.0.0.0/8"]);
        for lines in [
            &[("x-forwarded-for", "203.0.113.9")][..],
            &[("forwarded", "for=203.0.113.9")],
            &[
                ("x-forwarded-for", "10.0.0.1"),
                ("forwarded", "for=10.0.0.2"),
            ],
        ] {
            assert_eq!(client(&c, "198.51.100.7", lines), ip("198.51.100.7"));
        }
        assert_eq!(
            client(
                &config(&[]),
                "127.0.0.1",
                &[("x-forwarded-for", "203.0.113.9")]
            ),
            ip("127.0.0.1"),
            "no proxy is trusted unless configured"
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_client_read_from_the_right() {
        let c = config(&["127.0.0.1/32", "10.0.0.0/8", "::1/128"]);
        let xff = |v| client(&c, "127.0.0.1", &[("x-forwarded-for", v)]);
        assert_eq!(xff("203.0.113.9"), ip("203.0.113.9"));
        // What the client sent is on the left; the proxy appended what it saw.
        assert_eq!(
            xff("1.2.3.4, 203.0.113.9"),
            ip("203.0.113.9"),
            "spoof by prepending"
        );
        assert_eq!(
            xff("1.2.3.4, 203.0.113.9, 10.1.2.3"),
            ip("203.0.113.9"),
            "a chain of proxies"
        );
        assert_eq!(
            xff("10.9.9.9, 10.1.2.3"),
            ip("10.9.9.9"),
            "all proxies: the farthest"
        );
        assert_eq!(xff("2001:db8::5"), ip("2001:db8::5"));
        assert_eq!(xff("203.0.113.9:4711"), ip("203.0.113.9"));
        assert_eq!(xff("[2001:db8::5]:4711"), ip("2001:db8::5"));
        assert_eq!(xff("::ffff:203.0.113.9"), ip("203.0.113.9"));
        // Several header lines are one list, in order.
        assert_eq!(
            client(
                &c,
                "127.0.0.1",
                &[
                    ("x-forwarded-for", "6.6.6.6"),
                    ("x-forwarded-for", "203.0.113.9")
                ]
            ),
            ip("203.0.113.9")
        );
        // An IPv4-mapped peer address is the proxy's too.
        assert_eq!(
            client(
                &c,
                "::ffff:127.0.0.1",
                &[("x-forwarded-for", "203.0.113.9")]
            ),
            ip("203.0.113.9")
        );
        assert_eq!(
            client(&c, "127.0.0.1", &[]),
            ip("127.0.0.1"),
            "no header: the proxy"
        );
    }

    #[test]
    fn forwarded_is_read_when_there_is_no_x_forwarded_for() {
        let c = config(&["127.0.0.1", "10.0.0.0/8"]);
        let fwd = |v| client(&c, "127.0.0.1", &[("forwarded", v)]);
        assert_eq!(fwd("for=203.0.113.9"), ip("203.0.113.9"));
        assert_eq!(
            fwd("For=\"203.0.113.9:4711\";proto=https"),
            ip("203.0.113.9")
        );
        assert_eq!(
            fwd("for=\"[2001:db8:cafe::17]:4711\""),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(
            fwd("for=\"[2001:db8:cafe::17]\";by=10.0.0.1"),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(
            fwd("for=1.2.3.4, for=203.0.113.9;proto=https, for=10.0.0.3"),
            ip("203.0.113.9")
        );
        assert_eq!(
            fwd("proto=\"a,b\";for=203.0.113.9"),
            ip("203.0.113.9"),
            "a quoted comma"
        );
        // Unknown or obfuscated: nothing further left is believed.
        assert_eq!(fwd("for=1.2.3.4, for=unknown"), ip("127.0.0.1"));
        assert_eq!(fwd("for=1.2.3.4, for=_hidden"), ip("127.0.0.1"));
        assert_eq!(fwd("for=1.2.3.4, proto=https"), ip("127.0.0.1"), "no for=");
        // X-Forwarded-For wins: a client's own Forwarded passed through is not read.
        assert_eq!(
            client(
                &c,
                "127.0.0.1",
                &[
                    ("forwarded", "for=6.6.6.6"),
                    ("x-forwarded-for", "203.0.113.9")
                ]
            ),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn a_header_that_does_not_parse_leaves_the_peer() {
        let c = config(&["127.0.0.1"]);
        for (k, v) in [
            ("x-forwarded-for", "not an address"),
            ("x-forwarded-for", "203.0.113.9, "),
            ("x-forwarded-for", "203.0.113.9,,1.2.3.4"),
            ("x-forwarded-for", "203.0.113.9:99999"),
            ("x-forwarded-for", "[203.0.113.9]"),
            ("x-forwarded-for", "2001:db8::1:80:"),
            ("forwarded", "for=\"[2001:db8::1\""),
            ("forwarded", "for"),
            ("forwarded", "for=\"203.0.113.9"),
            ("forwarded", "for=203.0.113.9.7"),
        ] {
            assert_eq!(
                client(&c, "127.0.0.1", &[(k, v)]),
                ip("127.0.0.1"),
                "{k}: {v}"
            );
        }
    }
}
