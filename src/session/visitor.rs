//! A visitor's connection: `hello`, then messages, history, their email, what they have
//! seen and their typing.
//!
//! Owns the order of a visitor session (nothing before `hello`, one `welcome`, then any
//! frame): the sender gets `ack`, and the rest hear of it through `fanout`. It must
//! never send a visitor anything of another visitor, nor contact data they did not type.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use widget_protocol::{
    close, ErrorCode, Page, VisitorClient, VisitorServer, Welcome, PROTOCOL_VERSION,
};

use super::{admit, Input, Link, Socket};
use crate::app::App;
use crate::capture;
use crate::chatflow;
use crate::contacts::{Link as ContactLink, Whom};
use crate::conversations::{Appended, Cut, StoredMessages, VisitorSend};
use crate::error::{Error, Result};
use crate::fanout::{self, Event, SummaryNews};
use crate::followup;
use crate::hub::{Budget, Presence, VisitorKey};
use crate::identity::VisitorIdentity;
use crate::ids::ConversationId;
use crate::metrics::{ConnKind, Metrics};
use crate::reading;
use crate::store::records::{ConversationRecord, InboxRecord};
use crate::throttle::address_key;
use crate::typing::{Place, Told, Typing};
use crate::validate;

/// What the transport learned at the handshake.
pub struct Handshake {
    pub inbox: Arc<InboxRecord>,
    /// The client's address, for per-address limits.
    pub client: IpAddr,
    /// From the `fd_visitor` cookie, or minted for the `Set-Cookie` of this handshake;
    /// or why none was minted (too many new visitors from this address), which refuses
    /// a `hello` that brings no token of its own.
    pub cookie_identity: Result<VisitorIdentity, Error>,
}

struct Session<S> {
    app: App,
    link: Link<S>,
    inbox: Arc<InboxRecord>,
    key: VisitorKey,
    conn_id: u64,
    page: Option<Page>,
    /// The key of per-address limits (see `throttle::address_key`).
    address: IpAddr,
    /// The visitor's conversation in this inbox, once known (so a `send` does not
    /// start one, and typing has a place).
    conversation_id: Option<ConversationId>,
    /// Where the visitor is typing (never stored).
    typing: Typing,
}

/// Runs a visitor connection: `hello` and the welcome here, the rest in a task of its own
/// (see [`Session::live`]). `held` lives as long as the connection. A task is as big as
/// the largest state of its future and lives as long as the connection, so what runs
/// once or briefly (the handshake, handling a frame, writing) is boxed or left behind.
pub async fn run<S: Socket>(app: App, hs: Handshake, socket: S, held: impl Send + 'static) {
    app.metrics.connection_opened(ConnKind::Visitor);
    match Box::pin(open(app.clone(), hs, socket)).await {
        Some(session) => drop(tokio::spawn(session.live(held))),
        None => app.metrics.connection_closed(ConnKind::Visitor),
    }
}

/// `hello` and the welcome; None when the connection ended first.
async fn open<S: Socket>(app: App, hs: Handshake, socket: S) -> Option<Session<S>> {
    let mut link = Link::new(socket, &app);
    let (identity, resume_after, page) = await_hello(&app, &mut link, &hs).await?;
    let limits = &app.config.limits;
    let (conn, mailbox) = app.hub.connection(Budget {
        frames: limits.outbound_queue,
        bytes: limits.visitor_queue_bytes,
    });
    let key = VisitorKey {
        visitor: identity.visitor_id,
        inbox: hs.inbox.key.as_str().into(),
    };
    let conn_id = conn.id;
    let presence = app.hub.add_visitor(key.clone(), conn);
    link.attach(mailbox);
    let mut s = Session {
        app: app.clone(),
        link,
        inbox: hs.inbox.clone(),
        key,
        conn_id,
        page,
        address: address_key(hs.client),
        conversation_id: None,
        typing: Typing::default(),
    };
    s.welcome(&identity, resume_after, presence).await;
    Some(s)
}

/// Waits for `hello`, answering anything else with an error. None: the connection ended.
async fn await_hello<S: Socket>(
    app: &App,
    link: &mut Link<S>,
    hs: &Handshake,
) -> Option<(VisitorIdentity, Option<u64>, Option<Page>)> {
    let deadline = tokio::time::Instant::now() + app.config.limits.hello_timeout;
    loop {
        let frame = link
            .first_frame::<VisitorClient>(deadline, "no hello within the time limit")
            .await?;
        match frame {
            VisitorClient::Hello {
                visitor_token,
                resume_after,
                page,
            } => {
                // The hello token wins when it verifies; a bad one silently falls back.
                let from_hello = visitor_token
                    .as_deref()
                    .and_then(|t| app.identity.verify(t, app.now()));
                let identity = match (from_hello, &hs.cookie_identity) {
                    // The same visitor as the cookie's keeps the cookie's token when the
                    // handshake renewed it, so the page and the cookie agree.
                    (Some(h), Ok(c)) if h.visitor_id == c.visitor_id && c.fresh => c.clone(),
                    (Some(h), _) => h,
                    (None, Ok(c)) => c.clone(),
                    (None, Err(refused)) => {
                        link.send_error(refused.to_frame(None)).await;
                        link.close(close::TRY_AGAIN_LATER, "too many new visitors")
                            .await;
                        return None;
                    }
                };
                return Some((identity, resume_after, page.map(clean_page)));
            }
            _ => {
                link.send_error(widget_protocol::ErrorFrame::new(
                    ErrorCode::NotAuthenticated,
                    "send hello first",
                ))
                .await
            }
        }
    }
}

/// Keeps what the widget reports about the page to sane sizes.
pub(crate) fn clean_page(p: Page) -> Page {
    let cut = |s: Option<String>, n: usize| s.map(|s| s.chars().take(n).collect::<String>());
    Page {
        url: cut(p.url, 2048).filter(|u| u.starts_with("http://") || u.starts_with("https://")),
        title: cut(p.title, 300),
    }
}

impl<S: Socket> Session<S> {
    fn conversation(&self) -> Result<Option<ConversationRecord>> {
        Ok(self
            .app
            .store
            .conversation_for_visitor(self.key.visitor, &self.inbox.key)?)
    }

    async fn welcome(
        &mut self,
        identity: &VisitorIdentity,
        resume_after: Option<u64>,
        presence: Presence,
    ) {
        let built = self.build_welcome(identity, resume_after);
        match built {
            Ok((welcome, messages, conv)) => {
                self.conversation_id = conv.as_ref().map(|c| c.id);
                let frame = VisitorServer::Welcome(welcome);
                self.link.send_with_messages(&frame, &messages).await;
                if let Some(conv) = conv {
                    if presence == Presence::CameOnline {
                        fanout::publish(&self.app, &Event::PresenceChanged { conv: &conv });
                    }
                    followup::visitor_back(&self.app, &self.key, &conv).await;
                }
            }
            Err(e) => {
                let frame = e.to_frame(None);
                self.link.send_error(frame).await;
            }
        }
    }

    fn build_welcome(
        &self,
        identity: &VisitorIdentity,
        resume_after: Option<u64>,
    ) -> Result<(Welcome, StoredMessages, Option<ConversationRecord>)> {
        let store = self.app.store.as_ref();
        let conv = self.conversation()?;
        let visitor = store.visitor(identity.visitor_id)?;
        let limits = &self.app.config.limits;
        let email_prompt = conv
            .as_ref()
            .and_then(|c| capture::still_open(c, visitor.as_ref()));
        let cf = &self.inbox.chatflow;
        let away = chatflow::away(
            cf,
            self.app.hub.agents_online(&self.inbox.key),
            self.app.now(),
        );
        let mut welcome = Welcome {
            protocol: PROTOCOL_VERSION,
            visitor_token: identity.token.clone(),
            visitor_id: identity.visitor_id.to_string(),
            conversation_id: conv.as_ref().map(|c| c.id.into()),
            messages: Vec::new(),
            // `false`, the longer, while the room is measured.
            has_more: false,
            email: visitor.and_then(|v| v.email),
            away,
            email_prompt,
            read_seq: conv.as_ref().map_or(0, |c| c.read_seq()),
            seen_seq: conv.as_ref().map_or(0, |c| c.visitor_seen_seq),
            widget: Some(self.inbox.widget.clone()).filter(|w| !w.is_default()),
        };
        let room = self
            .link
            .list_room(&VisitorServer::Welcome(welcome.clone()));
        let (messages, has_more) = match conv.as_ref().map(|c| c.id) {
            None => (StoredMessages::default(), false),
            Some(id) => match resume_after {
                Some(after) if after > 0 => {
                    let cut = Cut {
                        limit: limits.max_history as usize * 5,
                        bytes: room,
                    };
                    store.after(id, after, cut, limits.default_page as usize)?
                }
                _ => {
                    let cut = Cut {
                        limit: limits.default_page as usize,
                        bytes: room,
                    };
                    store.page(id, None, cut)?
                }
            },
        };
        welcome.has_more = has_more;
        Ok((welcome, messages, conv))
    }

    /// The connection from its welcome on, in a task of its own that holds this session
    /// and `held` and nothing else, so an idle connection costs only those.
    ///
    /// Not an `async fn`: one of those stores its arguments and then the local they are
    /// moved into, so the task would hold the session twice.
    #[allow(clippy::manual_async_fn)]
    fn live(mut self, held: impl Send + 'static) -> impl std::future::Future<Output = ()> + Send {
        async move {
            while let Some(input) = self.link.next_input::<VisitorClient>().await {
                match input {
                    Input::Frame(frame) => Box::pin(self.answer(frame)).await,
                    Input::Alarm => {
                        let ended = self.typing.expire(Instant::now());
                        self.tell_typing(ended);
                    }
                }
            }
            let left = self.typing.stop();
            self.tell_typing(left);
            // A departure held for the grace period is announced by `run_departures`.
            if self.app.hub.remove_visitor(&self.key, self.conn_id) == Presence::WentOffline {
                announce_presence(&self.app, &self.key);
            }
            self.app.metrics.connection_closed(ConnKind::Visitor);
            drop(held);
        }
    }

    /// Handles one frame, answering a failure with an `error` frame.
    async fn answer(&mut self, frame: VisitorClient) {
        let reference = match &frame {
            VisitorClient::Send { client_msg_id, .. } => Some(client_msg_id.clone()),
            _ => None,
        };
        if let Err(e) = self.handle(frame).await {
            let f = e.to_frame(reference);
            self.link.send_error(f).await;
        }
    }

    async fn handle(&mut self, frame: VisitorClient) -> Result<()> {
        match frame {
            VisitorClient::Hello { .. } => Err(Error::rejected(
                ErrorCode::BadFrame,
                "hello was already received",
            )),
            VisitorClient::Send {
                client_msg_id,
                text,
                attachments,
            } => {
                crate::attachments::not_yet(&attachments)?;
                self.send(client_msg_id, text).await
            }
            VisitorClient::SubmitEmail { email } => self.submit_email(email).await,
            VisitorClient::History { before, limit } => {
                let limits = &self.app.config.limits;
                let limit = limit
                    .unwrap_or(limits.default_page)
                    .clamp(1, limits.max_history);
                let mut frame = VisitorServer::History {
                    messages: Vec::new(),
                    // `false`, the longer, while the room is measured.
                    has_more: false,
                };
                let cut = Cut {
                    limit: limit as usize,
                    bytes: self.link.list_room(&frame),
                };
                let (messages, more) = match self.conversation()?.map(|c| c.id) {
                    Some(id) => self.app.store.page(id, before, cut)?,
                    None => (StoredMessages::default(), false),
                };
                if let VisitorServer::History { has_more, .. } = &mut frame {
                    *has_more = more;
                }
                self.link.send_with_messages(&frame, &messages).await;
                Ok(())
            }
            VisitorClient::Typing { active } => self.typing(active),
            VisitorClient::Seen { seq } => self.seen(seq).await,
        }
    }

    /// `typing`: tells the inbox's agents, within the rate, once there is a
    /// conversation (before, it is ignored); never stored.
    fn typing(&mut self, active: bool) -> Result<()> {
        let Some(conversation) = self.known_conversation()? else {
            return Ok(());
        };
        let place = Place {
            conversation,
            visitor: self.key.clone(),
        };
        let limits = &self.app.config.limits;
        for t in self.typing.frame(place, active, Instant::now(), limits) {
            self.tell_typing(Some(t));
        }
        Ok(())
    }

    /// The visitor's conversation in this inbox: as known, or looked up while none is
    /// (another tab may have started it since this one's welcome).
    fn known_conversation(&mut self) -> Result<Option<ConversationId>> {
        if self.conversation_id.is_none() {
            self.conversation_id = self.conversation()?.map(|c| c.id);
        }
        Ok(self.conversation_id)
    }

    /// Tells what became of the visitor's typing, and sets the alarm for its end.
    fn tell_typing(&mut self, told: Option<Told>) {
        if let Some(t) = told {
            let event = Event::VisitorTyping {
                place: &t.place,
                active: t.active,
            };
            fanout::publish(&self.app, &event);
        }
        self.link.set_alarm(self.typing.deadline());
    }

    /// `seen`: moves the visitor's seen cursor forward, durably (a pending follow-up
    /// email loses the replies now seen); the agents hear `visitor_seen_seq`. Nothing
    /// moves, nothing is said: no conversation yet, or not past the cursor.
    async fn seen(&mut self, seq: u64) -> Result<()> {
        let Some(id) = self.known_conversation()? else {
            return Ok(());
        };
        // Not past the cursor: no write at all (a flood of these costs reads only).
        let known = self.app.store.conversation(id)?;
        if !known.is_some_and(|c| reading::seen_moves(&c, seq)) {
            return Ok(());
        }
        if let Some(conv) = self.app.store.visitor_seen(id, seq).await? {
            let news = SummaryNews::More;
            fanout::publish(&self.app, &Event::SummaryChanged { conv: &conv, news });
        }
        Ok(())
    }

    async fn send(&mut self, client_msg_id: String, text: String) -> Result<()> {
        let started = Instant::now();
        let app = &self.app;
        let throttle = &app.throttle;
        let text = admit(&client_msg_id, &text, &app.config.limits, || {
            throttle.send_per_visitor.admit(&self.key.visitor)?;
            throttle.send_per_address.admit(&self.address)
        })?;
        // The inbox's settings as they are now (an admin may have changed them).
        if let Some(fresh) = self.app.inboxes.get(&self.inbox.key) {
            self.inbox = fresh;
        }
        if self.conversation_id.is_none() && self.conversation()?.is_none() {
            // This message would start a conversation.
            let throttle = &self.app.throttle;
            throttle
                .new_conversations_per_address
                .admit(&self.address)?;
            throttle
                .new_conversations_per_inbox
                .admit(&self.key.inbox)?;
        }
        let appended = self
            .app
            .store
            .append_visitor(VisitorSend {
                visitor: self.key.visitor,
                inbox: self.inbox.key.clone(),
                client_msg_id: client_msg_id.clone(),
                text,
                page: self.page.clone(),
                now: self.app.now(),
                plan: capture::plan(&self.app, &self.inbox),
            })
            .await?;
        self.conversation_id = Some(appended.conversation.id);
        self.link
            .send_ack(client_msg_id, appended.message.clone(), started)
            .await;
        if !appended.duplicate {
            // The message is out: the visitor is no longer typing it.
            let stopped = self.typing.stop();
            self.tell_typing(stopped);
            self.fan_out(&appended);
        }
        Ok(())
    }

    /// Everyone else who should see a new message, and what it started.
    fn fan_out(&self, a: &Appended) {
        let (app, conv) = (&self.app, &a.conversation);
        fanout::publish(
            app,
            &Event::VisitorMessage {
                conv,
                message: &a.message,
                from: self.conn_id,
            },
        );
        if let Some(message) = &a.system {
            fanout::publish(app, &Event::SystemMessage { conv, message });
        }
        let news = if a.created || a.visitor_changed || a.reopened {
            SummaryNews::More
        } else {
            SummaryNews::LastMessageOnly
        };
        fanout::publish(app, &Event::SummaryChanged { conv, news });
        if let Some(text) = &a.prompt_now {
            capture::push(&self.app, &self.key, text.clone());
        }
        if let Some((due, kind)) = a.deadline {
            self.app.deadlines.schedule(due, kind, a.conversation.id);
        }
    }

    async fn submit_email(&mut self, email: String) -> Result<()> {
        let email = validate::email(&email, &self.app.config.limits)?;
        let throttle = &self.app.throttle;
        throttle.email_per_visitor.admit(&self.key.visitor)?;
        throttle.email_per_address.admit(&self.address)?;
        let linked = self
            .app
            .store
            .link_contact(
                Whom::Visitor {
                    visitor: self.key.visitor,
                    inbox: self.inbox.key.clone(),
                },
                email.clone(),
                ContactLink::Captured,
                self.app.now(),
            )
            .await?;
        if linked.created {
            Metrics::inc(&self.app.metrics.contacts_created);
        }
        let captured = Event::EmailCaptured {
            key: &self.key,
            email: &email,
            from: self.conn_id,
        };
        if let Some(sent) = fanout::publish(&self.app, &captured) {
            self.link.send_raw(sent.frame).await;
        }
        if let Some(conv) = &linked.conversation {
            let news = SummaryNews::More;
            fanout::publish(&self.app, &Event::SummaryChanged { conv, news });
        }
        Ok(())
    }
}

/// Tells the inbox's agents that a visitor left (their conversation's summary).
fn announce_presence(app: &App, key: &VisitorKey) {
    match app.store.conversation_for_visitor(key.visitor, &key.inbox) {
        Ok(Some(conv)) => {
            fanout::publish(app, &Event::PresenceChanged { conv: &conv });
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "could not announce a visitor leaving"),
    }
}

/// Announces the departures the hub held once their grace period ends without the
/// visitor coming back: one task for all of them, until shutdown.
pub async fn run_departures(app: App) {
    let mut stop = app.shutdown.clone();
    loop {
        // Register interest before looking, so a departure held in between is seen.
        let held = app.hub.departure_held().notified();
        tokio::pin!(held);
        held.as_mut().enable();
        let (gone, next) = app.hub.take_departures(Instant::now());
        for key in gone {
            if !app.hub.visitor_online(&key) {
                announce_presence(&app, &key);
            }
        }
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = held => {}
            _ = sleep => {}
        }
    }
}
