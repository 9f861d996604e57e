//! Sign-in sessions over real HTTP and sockets: `POST /api/session` trades a token for
//! the `fd_session` cookie (its exact text, `Secure` only over a trusted proxy's TLS),
//! `auth` without a token signs in by it in every tab, `DELETE /api/session` ends it
//! and closes its connections; expiry, a revoked agent, a restart, the per-agent cap,
//! and every refusal with its status (origin, size, type, JSON, rate, method).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use frontdesk::config::Rate;
use frontdesk::ids::AgentId;
use widget_protocol::Role;

use crate::support::http::{self, Response};
use crate::support::{refusal, Client, Closed, Connect, FakeClock, TestServer};

const JSON: &[(&str, &str)] = &[("content-type", "application/json")];
/// The attributes of every session cookie after its value (over plain HTTP).
const ATTRIBUTES: &str = "; HttpOnly; SameSite=Strict; Path=/; Max-Age=2592000";
const CLEARED: &str = "fd_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0";

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// The server's own origin, as its pages send it.
fn own(s: &TestServer) -> String {
    format!("http://{}", s.addr)
}

fn body(token: &str) -> String {
    json!({ "token": token }).to_string()
}

/// A request to `/api/session`.
async fn session(s: &TestServer, how: Connect<'_>, method: &str, body: &str) -> Response {
    http::request(s.addr, how, method, "/api/session", body.as_bytes()).await
}

/// A sign-in with `token` as the server's own page makes it.
async fn try_sign_in(s: &TestServer, token: &str) -> Response {
    let origin = own(s);
    let how = Connect::default().origin(origin.as_str()).headers(JSON);
    session(s, how, "POST", &body(token)).await
}

/// Signs in with `token` as the server's own page does: the `Set-Cookie`.
async fn sign_in(s: &TestServer, token: &str) -> String {
    let r = try_sign_in(s, token).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    r.header("set-cookie").expect("a Set-Cookie").to_string()
}

/// The `name=value` of a `Set-Cookie`, for a `Cookie` header.
fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().expect("a pair").to_string()
}

/// Signs out with `cookie` (a `Cookie` header, or none) from the server's own page.
async fn sign_out(s: &TestServer, cookie: Option<&str>) -> Response {
    let origin = own(s);
    session(
        s,
        Connect::default().origin(origin.as_str()).cookie(cookie),
        "DELETE",
        "",
    )
    .await
}

/// An agent socket opened as `how` says that sent `auth` without a token.
async fn by_cookie(s: &TestServer, how: Connect<'_>) -> Client {
    let mut c = Client::open(&s.ws_url("/ws/agent"), how)
        .await
        .expect("agent connects");
    c.send(json!({"type":"auth"})).await;
    c
}

/// An agent socket signed in by `cookie` from the server's own page, after `ready`.
async fn signed_in(s: &TestServer, cookie: &str) -> (Client, Value) {
    let origin = own(s);
    let mut c = by_cookie(s, Connect::default().origin(origin.as_str()).cookie(cookie)).await;
    let ready = c.expect("ready").await;
    (c, ready)
}

/// How an `auth` without a token by `cookie` ends (a signed-in one fails this).
async fn refused(s: &TestServer, cookie: &str) -> Closed {
    let origin = own(s);
    by_cookie(s, Connect::default().origin(origin.as_str()).cookie(cookie))
        .await
        .expect_closed()
        .await
}

/// The connection is open and answered: a non-admin's `get_team` is `forbidden`.
async fn still_open(c: &mut Client) {
    c.send(json!({"type":"get_team"})).await;
    c.expect_error("forbidden").await;
}

fn agent_id(ready: &Value) -> AgentId {
    AgentId::parse(ready["agent"]["id"].as_str().expect("id")).expect("an agent id")
}

fn sessions_of(s: &TestServer, agent: AgentId) -> usize {
    s.app.sign_ins.sign_ins_of(agent).expect("read").len()
}

/// The session value of a `Set-Cookie` with `attributes` after it: 256 bits in
/// URL-safe base64.
fn secret_of<'a>(set_cookie: &'a str, attributes: &str) -> &'a str {
    let secret = set_cookie
        .strip_prefix("fd_session=")
        .and_then(|c| c.strip_suffix(attributes))
        .unwrap_or_else(|| panic!("{set_cookie:?} is not fd_session=…{attributes}"));
    assert_eq!(secret.len(), 43, "{secret}");
    assert!(secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    secret
}

#[tokio::test]
async fn the_cookie_is_http_only_strict_and_secure_only_over_a_trusted_proxys_tls() {
    let s = TestServer::start_with(|c| {
        c.trusted_proxies = vec!["127.0.0.20/32".parse().expect("net")];
    })
    .await;
    let token = s.create_agent("Ann", &["default"], Role::Agent).await;
    let plain = sign_in(&s, &token).await;
    let first = secret_of(&plain, ATTRIBUTES);
    assert_ne!(first, secret_of(&sign_in(&s, &token).await, ATTRIBUTES));
    let secure = "; HttpOnly; SameSite=Strict; Secure; Path=/; Max-Age=2592000";
    // Through the proxy, from its public origin.
    let proxied: &[(&str, &str)] = &[
        ("content-type", "application/json"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "chat.example.com"),
    ];
    let how = Connect::default()
        .origin("https://chat.example.com")
        .headers(proxied);
    let r = session(&s, how.bind(ip(20)), "POST", &body(&token)).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let cookie = r.header("set-cookie").expect("Set-Cookie");
    secret_of(cookie, secure);
    // `Forwarded: proto=https` says the same.
    let forwarded: &[(&str, &str)] = &[
        ("content-type", "application/json"),
        ("forwarded", "for=203.0.113.7;proto=https"),
    ];
    let origin = own(&s);
    let how = Connect::default()
        .origin(origin.as_str())
        .headers(forwarded)
        .bind(ip(20));
    let r = session(&s, how, "POST", &body(&token)).await;
    secret_of(r.header("set-cookie").expect("Set-Cookie"), secure);
    // The same headers from a peer that is not trusted: its own host is not the
    // forwarded one, and https is not believed.
    let how = Connect::default()
        .origin("https://chat.example.com")
        .headers(proxied)
        .bind(ip(21));
    assert_eq!(session(&s, how, "POST", &body(&token)).await.status, 403);
    let untrusted: &[(&str, &str)] = &[
        ("content-type", "application/json"),
        ("x-forwarded-proto", "https"),
    ];
    let how = Connect::default()
        .origin(origin.as_str())
        .headers(untrusted)
        .bind(ip(21));
    let r = session(&s, how, "POST", &body(&token)).await;
    secret_of(r.header("set-cookie").expect("Set-Cookie"), ATTRIBUTES);
}

#[tokio::test]
async fn auth_without_a_token_is_signed_in_by_the_cookie_in_every_tab() {
    let s = TestServer::start().await;
    let token = s.create_agent("Ann", &["default"], Role::Agent).await;
    let (_, by_token) = s.agent(&token).await;
    let cookie = pair(&sign_in(&s, &token).await);
    let (mut tab1, ready) = signed_in(&s, &cookie).await;
    assert_eq!(ready["agent"]["name"], "Ann");
    assert_eq!(ready["agent"]["id"], by_token["agent"]["id"]);
    // A new tab of the same browser, with `"token":null` this time.
    let origin = own(&s);
    let mut tab2 = Client::open(
        &s.ws_url("/ws/agent"),
        Connect::default()
            .origin(origin.as_str())
            .cookie(cookie.as_str()),
    )
    .await
    .expect("connects");
    tab2.send(json!({"type":"auth","token":null})).await;
    assert_eq!(tab2.expect("ready").await["agent"]["name"], "Ann");
    // Without an Origin (not a browser page) the cookie counts too, among others.
    let among = format!("fd_visitor=x; fd_session=garbage; {cookie}; a=b");
    let mut c = by_cookie(&s, Connect::default().cookie(among.as_str())).await;
    assert_eq!(c.expect("ready").await["agent"]["name"], "Ann");
    still_open(&mut tab1).await;
    still_open(&mut tab2).await;
    // No cookie, or a made-up one: 4001.
    let mut none = by_cookie(&s, Connect::default()).await;
    assert_eq!(none.expect_closed().await, Closed::Code(4001));
    let made_up = format!("fd_session={}", "A".repeat(43));
    assert_eq!(refused(&s, &made_up).await, Closed::Code(4001));
    // A token in `auth` wins over the cookie.
    let mut admin = Client::open(
        &s.ws_url("/ws/agent"),
        Connect::default().cookie(cookie.as_str()),
    )
    .await
    .expect("connects");
    admin
        .send(json!({"type":"auth","token":s.admin_token}))
        .await;
    assert_eq!(admin.expect("ready").await["agent"]["role"], "admin");
    let mut bad = Client::open(
        &s.ws_url("/ws/agent"),
        Connect::default().cookie(cookie.as_str()),
    )
    .await
    .expect("connects");
    bad.send(json!({"type":"auth","token":"fda_nope"})).await;
    assert_eq!(bad.expect_closed().await, Closed::Code(4001));
}

#[tokio::test]
async fn signing_out_closes_that_sessions_connections_and_clears_the_cookie() {
    let s = TestServer::start().await;
    let token = s.create_agent("Ann", &["default"], Role::Agent).await;
    let here = pair(&sign_in(&s, &token).await);
    let elsewhere = pair(&sign_in(&s, &token).await);
    let (mut tab1, ready) = signed_in(&s, &here).await;
    let (mut tab2, _) = signed_in(&s, &here).await;
    let (mut other_browser, _) = signed_in(&s, &elsewhere).await;
    let (mut by_token, _) = s.agent(&token).await;
    assert_eq!(sessions_of(&s, agent_id(&ready)), 2);
    // A foreign page cannot sign anyone out.
    let r = session(
        &s,
        Connect::default()
            .origin("https://evil.example")
            .cookie(here.as_str()),
        "DELETE",
        "",
    )
    .await;
    assert_eq!(r.status, 403);
    still_open(&mut tab1).await;

    let r = sign_out(&s, Some(&here)).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(r.header("set-cookie"), Some(CLEARED));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(tab1.expect_closed().await, Closed::Code(4001));
    assert_eq!(tab2.expect_closed().await, Closed::Code(4001));
    assert_eq!(refused(&s, &here).await, Closed::Code(4001));
    assert_eq!(sessions_of(&s, agent_id(&ready)), 1);
    // The other browser's session and the token's connection are untouched.
    still_open(&mut other_browser).await;
    still_open(&mut by_token).await;
    signed_in(&s, &elsewhere).await;
    // Signing out again, or with no session at all, is the same answer.
    for cookie in [Some(here.as_str()), None, Some("fd_session=garbage")] {
        let r = sign_out(&s, cookie).await;
        assert_eq!(r.status, 204, "{cookie:?}: {}", r.body);
        assert_eq!(r.header("set-cookie"), Some(CLEARED));
    }
    still_open(&mut other_browser).await;
}

#[tokio::test]
async fn a_session_ends_at_the_configured_lifetime_and_is_dropped_at_the_next_sign_in() {
    let clock = Arc::new(FakeClock::default());
    let s = TestServer::start_with_clock(clock.clone(), |c| {
        c.sign_in_lifetime = Duration::from_secs(60);
    })
    .await;
    let token = s.create_agent("Ann", &["default"], Role::Agent).await;
    let set = sign_in(&s, &token).await;
    secret_of(&set, "; HttpOnly; SameSite=Strict; Path=/; Max-Age=60");
    let cookie = pair(&set);
    let (_, ready) = signed_in(&s, &cookie).await;
    clock.advance(59_000);
    signed_in(&s, &cookie).await;
    clock.advance(1_000);
    assert_eq!(refused(&s, &cookie).await, Closed::Code(4001));
    // Not extended by use, and gone from the store at the agent's next sign-in.
    assert_eq!(sessions_of(&s, agent_id(&ready)), 1);
    let fresh = pair(&sign_in(&s, &token).await);
    assert_eq!(sessions_of(&s, agent_id(&ready)), 1);
    signed_in(&s, &fresh).await;
    assert_eq!(refused(&s, &cookie).await, Closed::Code(4001));
}

#[tokio::test]
async fn a_revoked_agents_sessions_never_work_again() {
    let s = TestServer::start().await;
    let token = s.create_agent("Ann", &["default"], Role::Agent).await;
    let cookie = pair(&sign_in(&s, &token).await);
    let other = pair(&sign_in(&s, &token).await);
    let (mut ann, ready) = signed_in(&s, &cookie).await;
    let (mut admin, _) = s.admin().await;
    admin
        .send(json!({"type":"revoke_agent","agent_id":ready["agent"]["id"]}))
        .await;
    admin.expect_skipping("team").await;
    assert_eq!(ann.expect_closed().await, Closed::Code(4001));
    for c in [&cookie, &other] {
        assert_eq!(refused(&s, c).await, Closed::Code(4001));
    }
    assert_eq!(sessions_of(&s, agent_id(&ready)), 0);
    // Nor can the token make a new one.
    let r = try_sign_in(&s, &token).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("set-cookie"), None);
}

#[tokio::test]
async fn every_refusal_has_its_status_and_a_one_line_reason() {
    let s =
        TestServer::start_with(|c| c.agent_origins = vec!["https://ops.example.com".into()]).await;
    let token = s.create_agent("Ann", &["default"], Role::Agent).await;
    let origin = own(&s);
    let own_json = Connect::default().origin(origin.as_str()).headers(JSON);
    let good = body(&token);
    let check = |r: Response, status: u16| {
        assert_eq!(r.status, status, "{}", r.body);
        assert_eq!(r.header("set-cookie"), None, "{status}");
        assert!(
            !r.body.trim().is_empty() && !r.body.trim().contains('\n'),
            "{status}: {:?}",
            r.body
        );
        r
    };
    for method in ["GET", "PUT", "PATCH", "OPTIONS"] {
        let r = check(session(&s, own_json, method, &good).await, 405);
        assert_eq!(r.header("allow"), Some("POST, DELETE"), "{method}");
    }
    for foreign in ["https://evil.example", "null", "https://ops.example.com"] {
        let how = Connect::default().origin(foreign).headers(JSON);
        check(session(&s, how, "POST", &good).await, 403);
    }
    // From here on every POST of 127.0.0.1 counts against its rate.
    let text: &[(&str, &str)] = &[("content-type", "text/plain")];
    let how = Connect::default().origin(origin.as_str());
    check(session(&s, how, "POST", &good).await, 415);
    check(session(&s, how.headers(text), "POST", &good).await, 415);
    let huge = body(&"x".repeat(4 * 1024));
    check(session(&s, own_json, "POST", &huge).await, 413);
    for bad in ["not json", r#"{"token":5}"#, "[]", "{}"] {
        check(session(&s, own_json, "POST", bad).await, 400);
    }
    for unknown in ["fda_nope", ""] {
        check(session(&s, own_json, "POST", &body(unknown)).await, 401);
    }
    // A charset is still JSON, and a body of exactly 4 KiB is not too large.
    let charset: &[(&str, &str)] = &[("content-type", "application/json; charset=utf-8")];
    let padded = format!("{good:<4096}");
    assert_eq!(padded.len(), 4096);
    let r = session(&s, how.headers(charset), "POST", &padded).await;
    assert_eq!(r.status, 204, "{}", r.body);
    // That was the 10th; the 11th is over the rate, even with a good token.
    let r = check(session(&s, own_json, "POST", &good).await, 429);
    let wait: u64 = r
        .header("retry-after")
        .and_then(|w| w.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=60).contains(&wait), "{wait}");
    // Another address is not held back.
    let r = session(&s, own_json.bind(ip(2)), "POST", &good).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let cookie = pair(r.header("set-cookie").expect("Set-Cookie"));

    // An upgrade from an origin only configured for the agent endpoint does not carry
    // the cookie's authority; a foreign one is refused outright.
    let ops = Connect::default()
        .origin("https://ops.example.com")
        .cookie(cookie.as_str());
    assert_eq!(
        by_cookie(&s, ops).await.expect_closed().await,
        Closed::Code(4001)
    );
    let mut with_token = Client::open(&s.ws_url("/ws/agent"), ops)
        .await
        .expect("connects");
    with_token.send(json!({"type":"auth","token":token})).await;
    with_token.expect("ready").await;
    let evil = Connect::default()
        .origin("https://evil.example")
        .cookie(cookie.as_str());
    assert_eq!(
        refusal(Client::open(&s.ws_url("/ws/agent"), evil).await).0,
        403
    );
    signed_in(&s, &cookie).await;
}

#[tokio::test]
async fn a_session_survives_a_restart_and_a_sign_out_stays_out() {
    let s = TestServer::start().await;
    let token = s.create_agent("Ann", &["default"], Role::Agent).await;
    let kept = pair(&sign_in(&s, &token).await);
    let ended = pair(&sign_in(&s, &token).await);
    assert_eq!(sign_out(&s, Some(&ended)).await.status, 204);
    let s = s.restart().await;
    let (_, ready) = signed_in(&s, &kept).await;
    assert_eq!(ready["agent"]["name"], "Ann");
    assert_eq!(refused(&s, &ended).await, Closed::Code(4001));
}

#[tokio::test]
async fn past_fifty_sessions_an_agent_loses_the_oldest() {
    let s = TestServer::start_with(|c| {
        c.limits.sign_in_per_address = Rate::new(1_000, Duration::from_secs(60));
    })
    .await;
    let token = s.create_agent("Ann", &["default"], Role::Agent).await;
    let mut cookies = Vec::new();
    for _ in 0..frontdesk::signin::MAX_PER_AGENT {
        cookies.push(pair(&sign_in(&s, &token).await));
    }
    let (_, ready) = signed_in(&s, &cookies[0]).await;
    let ann = agent_id(&ready);
    assert_eq!(sessions_of(&s, ann), 50);
    // Sign-ins in one millisecond still have an order: "the oldest" is the first made.
    let mut made: Vec<_> = s.app.sign_ins.sign_ins_of(ann).expect("read");
    made.sort_by_key(|(_, r)| r.created_at);
    made.dedup_by_key(|(_, r)| r.created_at);
    assert_eq!(made.len(), 50, "no two sessions share a creation time");
    cookies.push(pair(&sign_in(&s, &token).await));
    assert_eq!(sessions_of(&s, ann), 50);
    assert_eq!(refused(&s, &cookies[0]).await, Closed::Code(4001));
    for kept in [&cookies[1], &cookies[25], &cookies[50]] {
        signed_in(&s, kept).await;
    }
}
