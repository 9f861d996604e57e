//! `POST /api/uploads?inbox=KEY`: an attachment's bytes, streamed to disk.
//!
//! Who may upload: a visitor by their token (the `fd_visitor` cookie the visitor socket
//! uses, or an `X-Visitor-Token` header), with the inbox's origin rule applied exactly
//! as at the visitor upgrade (`http::origin_allowed`); or an agent of that inbox by
//! `Authorization: Bearer <token>`. The body is written chunk by chunk through
//! `attachments::files` (never whole in memory), `413` past `Limits::max_upload_bytes`
//! with nothing left behind, `429` past the uploader's or the address's rate. The
//! answer is `{"id","name","size","type"}`.
//!
//! This module knows HTTP and nothing of what an attachment is (that is
//! `attachments`); it must not decide a file's type or name itself.

use std::net::IpAddr;
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::http::{header_str, origin_allowed, plain, query_param, Body, Transport};
use crate::attachments::files::UploadError;
use crate::attachments::{sanitize_name, Kind};
use crate::inboxes::DEFAULT_INBOX;
use crate::throttle::address_key;

pub const UPLOADS_PATH: &str = "/api/uploads";

/// Who is uploading, as the rates and (later) the store's upload record key them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uploader {
    Visitor(crate::ids::VisitorId),
    Agent(crate::ids::AgentId),
}

impl Uploader {
    fn key(&self) -> Arc<str> {
        match self {
            Uploader::Visitor(v) => format!("v:{v}").into(),
            Uploader::Agent(a) => format!("a:{a}").into(),
        }
    }
}

/// The uploader, or the response that refuses them. An agent's `fd_session` cookie is
/// the next way in: check it here, beside the bearer token.
fn authenticate(
    t: &Transport,
    req: &Request<Incoming>,
    inbox: &crate::store::records::InboxRecord,
) -> Result<Uploader, Refused> {
    if let Some(token) =
        header_str(req, header::AUTHORIZATION).and_then(|a| a.strip_prefix("Bearer "))
    {
        return match crate::agents::authenticate(t.app.admin.as_ref(), token.trim()) {
            Ok(Some(agent)) if agent.inboxes.contains(&inbox.key) => Ok(Uploader::Agent(agent.id)),
            Ok(_) => Err(Refused::Unknown("not an agent of this inbox")),
            Err(_) => Err(Refused::Store),
        };
    }
    if !origin_allowed(inbox, req) {
        return Err(Refused::Origin);
    }
    let now = t.app.now();
    let visitor = header_str(req, header::COOKIE)
        .and_then(|c| t.app.identity.from_cookie_header(c, now))
        .or_else(|| {
            header_str(req, header::HeaderName::from_static("x-visitor-token"))
                .and_then(|tok| t.app.identity.verify(tok, now))
        });
    match visitor {
        Some(v) => Ok(Uploader::Visitor(v.visitor_id)),
        None => Err(Refused::Unknown("no visitor token")),
    }
}

/// Why `authenticate` refused.
#[derive(Debug, Clone, Copy)]
enum Refused {
    /// No valid token for this inbox (401).
    Unknown(&'static str),
    /// A visitor's page whose origin the inbox does not allow (403).
    Origin,
    /// The agent could not be looked up (503).
    Store,
}

impl Refused {
    fn response(self) -> Response<Body> {
        match self {
            Refused::Unknown(why) => plain(StatusCode::UNAUTHORIZED, why),
            Refused::Origin => plain(
                StatusCode::FORBIDDEN,
                "this page's origin may not use this inbox",
            ),
            Refused::Store => plain(StatusCode::SERVICE_UNAVAILABLE, "store unavailable"),
        }
    }
}

fn limited(text: String) -> Response<Body> {
    let mut r = plain(StatusCode::TOO_MANY_REQUESTS, &text);
    r.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(super::http::RETRY_AFTER_SECS),
    );
    r
}

/// Answers `POST /api/uploads`.
pub async fn upload(t: &Transport, client: IpAddr, req: Request<Incoming>) -> Response<Body> {
    if req.method() != Method::POST {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "uploads are POSTed");
    }
    let key = query_param(&req, "inbox")
        .unwrap_or(DEFAULT_INBOX)
        .to_string();
    let Some(inbox) = t.app.inboxes.get(&key) else {
        return plain(StatusCode::NOT_FOUND, "no such inbox");
    };
    let uploader = match authenticate(t, &req, &inbox) {
        Ok(u) => u,
        Err(r) => return r.response(),
    };
    let limit = t.app.config.limits.max_upload_bytes;
    let declared = header_str(&req, header::CONTENT_LENGTH).and_then(|l| l.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("at most {limit} bytes"),
        );
    }
    if let Err(e) = t
        .app
        .throttle
        .uploads_per_uploader
        .admit(&uploader.key())
        .and_then(|()| {
            t.app
                .throttle
                .uploads_per_address
                .admit(&address_key(client))
        })
    {
        return limited(e.to_string());
    }
    let raw_name = header_str(&req, header::HeaderName::from_static("x-filename"))
        .map(str::to_string)
        .or_else(|| query_param(&req, "name").map(decode));
    let name = sanitize_name(&raw_name.unwrap_or_default());
    let mut body = req.into_body();
    let mut up = match t.app.files.begin(limit).await {
        Ok(u) => u,
        Err(e) => return failed(&e),
    };
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            // The client went away midway: `up` is dropped and its temp removed.
            return plain(StatusCode::BAD_REQUEST, "the upload was cut off");
        };
        if let Some(chunk) = frame.data_ref() {
            if let Err(e) = up.write(chunk).await {
                return failed(&e);
            }
        }
    }
    let stored = match up.finish().await {
        Ok(s) => s,
        Err(e) => return failed(&e),
    };
    tracing::debug!(id = %stored.id, size = stored.size, ?uploader, "attachment stored");
    let json = serde_json::json!({
        "id": stored.id.as_str(),
        "name": name,
        "size": stored.size,
        "type": Kind::mime(stored.kind),
    });
    let mut r = Response::new(Body::new(json.to_string().into()));
    *r.status_mut() = StatusCode::CREATED;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn failed(e: &UploadError) -> Response<Body> {
    match e {
        UploadError::TooLarge { .. } => plain(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string()),
        UploadError::Empty => plain(StatusCode::BAD_REQUEST, &e.to_string()),
        UploadError::Io(io) => {
            tracing::error!(error = %io, "attachment storage failed");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the file could not be stored; please retry",
            )
        }
    }
}

/// `?name=` percent-decoded (lossily: the name is sanitised after).
fn decode(raw: &str) -> String {
    percent_encoding::percent_decode_str(&raw.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}
