//! The server's side of frame decoding, as one function a fuzzer (and the corpus replay
//! in the tests) can call without sockets or a store: a client's bytes are decoded as a
//! visitor and as an agent frame, and every frame that decodes goes through the same
//! stateless checks the sessions apply (text, email, names, page, chatflow, the team's
//! names, origins and widget settings, business hours, canned replies). Whatever the
//! input, nothing may panic and every rejection must carry the code the protocol names
//! for it.

use widget_protocol::{decode, AgentClient, ErrorCode, VisitorClient};

use crate::config::Limits;
use crate::error::Error;
use crate::{canned, chatflow, session, team, validate};

fn expect_code(r: Result<String, Error>, allowed: &[ErrorCode]) {
    if let Err(e) = r {
        assert!(
            allowed.contains(&e.code()),
            "unexpected code {:?}: {e}",
            e.code()
        );
        assert!(e.to_string().len() < 400, "error text too long");
    }
}

/// Panics on a property violation; returns normally otherwise.
pub fn check_client_bytes(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        // The transport never hands a session invalid UTF-8 as text.
        return;
    };
    let limits = Limits::default();
    if let Ok(frame) = decode::<VisitorClient>(text) {
        match frame {
            VisitorClient::Send { text, .. } => expect_code(
                validate::text(&text, &limits),
                &[ErrorCode::EmptyMessage, ErrorCode::MessageTooLong],
            ),
            VisitorClient::SubmitEmail { email } => {
                expect_code(validate::email(&email, &limits), &[ErrorCode::InvalidEmail])
            }
            VisitorClient::Hello { page: Some(p), .. } => {
                let p = session::visitor::clean_page(p);
                assert!(p.url.as_ref().is_none_or(|u| u.chars().count() <= 2048));
                assert!(p.title.as_ref().is_none_or(|t| t.chars().count() <= 300));
            }
            _ => {}
        }
    }
    if let Ok(frame) = decode::<AgentClient>(text) {
        match frame {
            AgentClient::Reply { text, .. } => expect_code(
                validate::text(&text, &limits),
                &[ErrorCode::EmptyMessage, ErrorCode::MessageTooLong],
            ),
            AgentClient::LookupContact { email } | AgentClient::AssignVisitor { email, .. } => {
                expect_code(validate::email(&email, &limits), &[ErrorCode::InvalidEmail])
            }
            AgentClient::CreateContact {
                email,
                first_name,
                last_name,
                ..
            } => {
                expect_code(validate::email(&email, &limits), &[ErrorCode::InvalidEmail]);
                for n in [first_name, last_name] {
                    expect_code(
                        validate::name(&n, "name", &limits),
                        &[ErrorCode::InvalidName],
                    );
                }
            }
            AgentClient::UpdateChatflow { chatflow: c, .. } => expect_code(
                chatflow::validate(c).map(|c| format!("{c:?}")),
                &[ErrorCode::BadFrame],
            ),
            AgentClient::SaveCanned {
                title,
                text,
                shortcut,
                ..
            } => expect_code(
                canned::Draft::check(&title, &text, &shortcut)
                    .map(|d| d.shortcut)
                    .map_err(Error::from),
                &[ErrorCode::BadFrame],
            ),
            AgentClient::CreateAgent {
                name, display_name, ..
            } => {
                let names = [Some(name), display_name];
                for n in names.iter().flatten() {
                    let shown = team::display_name(Some(n), &limits).map(Option::unwrap_or_default);
                    expect_code(shown, &[ErrorCode::InvalidName]);
                }
            }
            AgentClient::CreateInbox { origins, .. } => expect_code(
                team::origins(&origins).map(|o| o.join(" ")),
                &[ErrorCode::BadFrame],
            ),
            AgentClient::UpdateInbox {
                origins, widget, ..
            } => {
                if let Some(o) = origins {
                    expect_code(
                        team::origins(&o).map(|o| o.join(" ")),
                        &[ErrorCode::BadFrame],
                    );
                }
                if let Some(w) = widget {
                    let checked = team::widget(&w).map(|w| format!("{w:?}"));
                    expect_code(checked, &[ErrorCode::BadFrame]);
                }
            }
            _ => {}
        }
    }
}
