//! `POST /api/session` and `DELETE /api/session`: an agent's browser trades a token for
//! the `fd_session` cookie, and gives it back.
//!
//! Owns the HTTP side of a sign-in: the request's checks in order (its origin is the
//! server's own, the per-address rate, `application/json`, at most [`MAX_BODY`] bytes
//! arriving within the handshake timeout, a `{"token"}` object), the status of each
//! refusal, and the cookie's `Secure` (the request came over TLS by a trusted proxy's
//! word, or the server is configured for it). What a session is and when one
//! authenticates is `signin`'s; this module must not decide it.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::http::{client_ip, header_str, own_origin, plain, Body, Transport};
use super::proxy;
use crate::session::agent::SIGNED_OUT;
use crate::signin;
use crate::throttle::address_key;

/// The most bytes of a sign-in's body (a token is under 50).
pub const MAX_BODY: usize = 4 * 1024;

#[derive(serde::Deserialize)]
struct SignInBody {
    token: String,
}

/// Answers a request to `/api/session`.
pub async fn handle(t: &Transport, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    if method != Method::POST && method != Method::DELETE {
        let mut r = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST signs in, DELETE signs out",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST, DELETE"));
        return r;
    }
    if !own_origin(t, peer, &req) {
        return plain(
            StatusCode::FORBIDDEN,
            "sign in from this server's own pages only",
        );
    }
    let secure = t.app.config.secure_cookie
        || proxy::forwarded_https(&t.app.config, peer.ip(), req.headers());
    let mut r = if method == Method::POST {
        post(t, peer, req, secure).await
    } else {
        delete(t, req, secure).await
    };
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `204` with `Set-Cookie: set_cookie`.
fn no_content(set_cookie: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    if let Ok(v) = HeaderValue::from_str(set_cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

fn failed(e: &dyn std::fmt::Display) -> Response<Body> {
    tracing::warn!(error = %e, "sign-in session store failed");
    plain(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the server failed; try again",
    )
}

async fn post(
    t: &Transport,
    peer: SocketAddr,
    req: Request<Incoming>,
    secure: bool,
) -> Response<Body> {
    let client = client_ip(t, peer, &req);
    if let Err(wait) = t
        .app
        .throttle
        .sign_in_per_address
        .check(&address_key(client), Instant::now())
    {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let mut r = plain(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("too many sign-in attempts from this address; try again in {secs} s"),
        );
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let json = header_str(&req, header::CONTENT_TYPE)
        .and_then(|c| c.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the token as application/json",
        );
    }
    let declared = header_str(&req, header::CONTENT_LENGTH).and_then(|n| n.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return too_large();
    }
    let deadline = t.app.config.limits.handshake_timeout;
    let read = Limited::new(req.into_body(), MAX_BODY).collect();
    let body = match tokio::time::timeout(deadline, read).await {
        Err(_) => return plain(StatusCode::REQUEST_TIMEOUT, "the body took too long"),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
        Ok(Err(_)) => return plain(StatusCode::BAD_REQUEST, "the body did not arrive"),
        Ok(Ok(b)) => b.to_bytes(),
    };
    let Ok(SignInBody { token }) = serde_json::from_slice::<SignInBody>(&body) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "expected a JSON object with a string token",
        );
    };
    let app = &t.app;
    match signin::sign_in(
        app.admin.as_ref(),
        app.sign_ins.as_ref(),
        &token,
        app.now(),
        app.config.sign_in_lifetime,
    )
    .await
    {
        Ok(Some(signed)) => {
            tracing::info!(agent = %signed.agent.id, "agent signed in");
            no_content(&signin::set_cookie(
                &signed.secret,
                app.config.sign_in_lifetime,
                secure,
            ))
        }
        Ok(None) => plain(
            StatusCode::UNAUTHORIZED,
            "that token is not an agent's (or the agent was revoked)",
        ),
        Err(e) => failed(&e),
    }
}

fn too_large() -> Response<Body> {
    plain(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("the body is over {MAX_BODY} bytes"),
    )
}

async fn delete(t: &Transport, req: Request<Incoming>, secure: bool) -> Response<Body> {
    let secrets = header_str(&req, header::COOKIE)
        .map(signin::from_cookie_header)
        .unwrap_or_default();
    match signin::sign_out(t.app.sign_ins.as_ref(), &secrets).await {
        Ok(ended) => {
            for key in ended {
                let closed = t.app.hub.close_sign_in(key, SIGNED_OUT);
                tracing::info!(connections = closed, "agent signed out");
            }
            no_content(&signin::clear_cookie(secure))
        }
        Err(e) => failed(&e),
    }
}
