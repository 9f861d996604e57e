//! An agent's connection: `auth`, then the inbox's conversations, replies, contacts,
//! chatflow settings, status and assignee, read cursors and typing; for admins, the
//! team's administration (agents and inboxes, checked by `team`).
//!
//! Owns access control for agents: every conversation id is checked against the agent's
//! inboxes, and an id from another inbox gets the same `not_found` as one that does not
//! exist. Only admins change chatflows and the team. A connection's access is what it
//! was at `auth`: a change to an agent's role or inboxes closes their connections
//! (4010) so they start again with a fresh `ready`, and a revoked agent's close (4001).
//! An `auth` without a token is signed in by the sign-in session whose cookie came with
//! the upgrade (`signin`); signing that session out closes its connections (4001).

use std::sync::Arc;
use std::time::Instant;

use widget_protocol::{
    close, AgentClient, AgentInfo, AgentServer, Chatflow, ErrorCode, ErrorFrame, Member, Role,
    Summary, SummaryUpdates, WidgetSettings,
};

use super::{admit, json_len, Input, Link, Socket};
use crate::agents::{self, AgentChange};
use crate::app::App;
use crate::canned;
use crate::chatflow;
use crate::clock;
use crate::contacts::{Link as ContactLink, Whom};
use crate::conversations::{self, AgentReply, Cut, Workflow};
use crate::error::{Error, Result};
use crate::fanout::{self, Event, SummaryNews};
use crate::followup;
use crate::hub::{Budget, Closing};
use crate::ids::{AgentId, ConversationId};
use crate::inboxes::InboxChange;
use crate::listing::{self, ListRequest, Page};
use crate::metrics::{ConnKind, Metrics};
use crate::reading::{self, MarkedRead};
use crate::signin::{self, Secret, SessionKey};
use crate::store::records::{AgentRecord, AssigneeRecord, ConversationRecord};
use crate::team;
use crate::typing::{Place, Told, Typing};
use crate::validate;

/// How a revoked agent's connections close: at once, nothing more written.
const REVOKED: Closing = Closing {
    code: close::BAD_TOKEN,
    reason: "agent revoked",
    flush: false,
};

/// How the connections of a sign-in session that was signed out close: at once.
pub const SIGNED_OUT: Closing = Closing {
    code: close::BAD_TOKEN,
    reason: "signed out",
    flush: false,
};

/// How connections of an agent whose role or inboxes changed close: after what was
/// queued for them (the `team` that says so), so they reconnect for a fresh `ready`.
const ACCESS_CHANGED: Closing = Closing {
    code: close::ACCESS_CHANGED,
    reason: "access changed, reconnect now",
    flush: true,
};

/// The conversations `ready` lists (the newest page).
const READY_PAGE: usize = listing::DEFAULT_LIMIT;

/// The longest cursor, in place of `next` while a frame's room is measured.
const LONGEST_CURSOR: &str = "18446744073709551615.00000000-0000-0000-0000-000000000000";

struct Session<S> {
    app: App,
    link: Link<S>,
    agent: AgentRecord,
    inboxes: Vec<Arc<str>>,
    conn_id: u64,
    /// The key of the per-agent reply limit.
    agent_key: Arc<str>,
    /// Where this connection's agent is typing (never stored).
    typing: Typing,
}

/// What the upgrade request brought for `auth`.
#[derive(Debug, Default)]
pub struct Handshake {
    /// The `fd_session` secrets of its cookie, when it may sign the connection in (the
    /// transport leaves them out for an upgrade from another origin).
    pub sign_in: Vec<Secret>,
}

/// Who `auth` signed in.
struct Authed {
    agent: AgentRecord,
    summaries: SummaryUpdates,
    /// The sign-in session it was by, if not by a token.
    sign_in: Option<SessionKey>,
}

/// Runs an agent connection: `auth` and `ready` here, the rest in a task of its own that
/// holds the session and `held` only (see `visitor::run` for why).
pub async fn run<S: Socket>(app: App, hs: Handshake, socket: S, held: impl Send + 'static) {
    app.metrics.connection_opened(ConnKind::Agent);
    match Box::pin(open(app.clone(), hs, socket)).await {
        Some(session) => drop(tokio::spawn(session.live(held))),
        None => app.metrics.connection_closed(ConnKind::Agent),
    }
}

/// `auth` and `ready`; None when the connection ended first.
async fn open<S: Socket>(app: App, hs: Handshake, socket: S) -> Option<Session<S>> {
    let mut link = Link::new(socket, &app);
    let Authed {
        agent,
        summaries,
        sign_in,
    } = await_auth(&app, &hs, &mut link).await?;
    // Only inboxes that exist; an agent may name one that was never created.
    let inboxes: Vec<Arc<str>> = agent
        .inboxes
        .iter()
        .filter(|k| app.inboxes.get(k).is_some())
        .map(|k| Arc::from(k.as_str()))
        .collect();
    let limits = &app.config.limits;
    let (mut conn, mailbox) = app.hub.connection(Budget {
        frames: limits.outbound_queue,
        bytes: limits.agent_queue_bytes,
    });
    conn.every_summary = summaries.is_every_message();
    conn.agent = Some(agent.id);
    conn.admin = agent.role == Role::Admin;
    conn.sign_in = sign_in;
    let conn_id = conn.id;
    app.hub.add_agent(&inboxes, conn);
    link.attach(mailbox);
    // A change made between `auth`'s read and the registration closed nothing here:
    // look again now that a change would.
    match app.admin.agent(agent.id) {
        Ok(Some(now)) if !now.revoked && !AgentChange::changes_access(&agent, &now) => {}
        Ok(now) => {
            let revoked = now.is_none_or(|a| a.revoked);
            let closing = if revoked { REVOKED } else { ACCESS_CHANGED };
            app.hub.close_agents(|c| c.id == conn_id, closing);
        }
        Err(e) => tracing::warn!(error = %e, "could not check an agent's access again"),
    }
    // Likewise a sign-out between `auth` and the registration.
    if let Some(key) = sign_in {
        match signin::still_valid(app.admin.as_ref(), app.sign_ins.as_ref(), &key, app.now()) {
            Ok(true) => {}
            Ok(false) => drop(app.hub.close_sign_in(key, SIGNED_OUT)),
            Err(e) => tracing::warn!(error = %e, "could not check a sign-in session again"),
        }
    }
    let mut s = Session {
        agent_key: agent.id.to_string().into(),
        app: app.clone(),
        link,
        agent,
        inboxes,
        conn_id,
        typing: Typing::default(),
    };
    s.ready().await;
    Some(s)
}

async fn await_auth<S: Socket>(app: &App, hs: &Handshake, link: &mut Link<S>) -> Option<Authed> {
    let deadline = tokio::time::Instant::now() + app.config.limits.hello_timeout;
    loop {
        let frame = link
            .first_frame::<AgentClient>(deadline, "no auth within the time limit")
            .await?;
        match frame {
            AgentClient::Auth { token, summaries } => {
                let found = match &token {
                    Some(token) => agents::authenticate(app.admin.as_ref(), token)
                        .map(|a| a.map(|agent| (agent, None))),
                    None => signin::authenticate(
                        app.admin.as_ref(),
                        app.sign_ins.as_ref(),
                        &hs.sign_in,
                        app.now(),
                    )
                    .map(|a| a.map(|(key, agent)| (agent, Some(key)))),
                };
                match found {
                    Ok(Some((agent, sign_in))) => {
                        return Some(Authed {
                            agent,
                            summaries,
                            sign_in,
                        })
                    }
                    Ok(None) => {
                        let reason = match token {
                            Some(_) => "bad agent token",
                            None => "not signed in",
                        };
                        link.close(close::BAD_TOKEN, reason).await;
                        return None;
                    }
                    Err(e) => {
                        link.send_error(e.to_frame(None)).await;
                        link.close(close::GOING_AWAY, "server error").await;
                        return None;
                    }
                }
            }
            _ => {
                link.send_error(ErrorFrame::new(
                    ErrorCode::NotAuthenticated,
                    "send auth first",
                ))
                .await
            }
        }
    }
}

impl<S: Socket> Session<S> {
    /// `ready`, with the newest page of conversations ([`READY_PAGE`], cut to what fits
    /// in one list frame) and `next` for the rest, and the inboxes' agents.
    async fn ready(&mut self) {
        match self.build_ready() {
            Ok(ready) => self.link.send(&ready).await,
            Err(e) => self.link.send_error(e.to_frame(None)).await,
        }
    }

    fn build_ready(&self) -> Result<AgentServer> {
        let mut ready = AgentServer::Ready {
            agent: AgentInfo {
                id: self.agent.id.into(),
                name: self.agent.name.clone(),
                role: self.agent.role,
                display_name: self.agent.display_name.clone(),
            },
            inboxes: self.inbox_names(),
            conversations: Vec::new(),
            next: Some(LONGEST_CURSOR.into()),
            agents: self.members()?,
        };
        let room = self.link.list_room(&ready);
        let page = self
            .app
            .store
            .list(&self.inbox_names(), &ListRequest::newest(READY_PAGE))?;
        let (listed, after) = self.fit(room, page)?;
        if let AgentServer::Ready {
            conversations,
            next,
            ..
        } = &mut ready
        {
            (*conversations, *next) = (listed, after);
        }
        Ok(ready)
    }

    fn inbox_names(&self) -> Vec<String> {
        self.inboxes.iter().map(|s| s.to_string()).collect()
    }

    /// The agents who may be assigned here: not revoked, members of one of this agent's
    /// inboxes (this one included), by name.
    fn members(&self) -> Result<Vec<Member>> {
        let mut members: Vec<Member> = self
            .app
            .admin
            .agents()?
            .into_iter()
            .filter(|a| !a.revoked)
            .filter_map(|a| {
                // Only inboxes this agent sees: another inbox's name is not theirs to learn.
                let inboxes: Vec<String> =
                    a.inboxes.into_iter().filter(|i| self.may_see(i)).collect();
                (!inboxes.is_empty()).then(|| Member {
                    id: a.id.into(),
                    name: a.name,
                    inboxes,
                })
            })
            .collect();
        members.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        Ok(members)
    }

    /// The summaries of `page` that fit in `room` bytes (the first one whatever its
    /// size, so paging always moves on), and the cursor of the rest: the page's own, or,
    /// when it was cut, the place of the last summary kept.
    fn fit(&self, mut room: usize, page: Page) -> Result<(Vec<Summary>, Option<String>)> {
        let (store, hub) = (self.app.store.as_ref(), &self.app.hub);
        let mut summaries = Vec::new();
        let mut next = page.next;
        let mut last = None;
        for (place, conv) in &page.conversations {
            let summary = conversations::summary(store, hub, conv, Some(self.agent.id))?;
            let size = json_len(&summary) + usize::from(!summaries.is_empty());
            if size > room && !summaries.is_empty() {
                next = last;
                break;
            }
            room = room.saturating_sub(size);
            summaries.push(summary);
            last = Some(*place);
        }
        Ok((summaries, next.map(|c| c.to_string())))
    }

    /// `list`: a page of this agent's conversations.
    async fn list(&mut self, request: ListRequest) -> Result<()> {
        let mut frame = AgentServer::Conversations {
            conversations: Vec::new(),
            next: Some(LONGEST_CURSOR.into()),
        };
        let room = self.link.list_room(&frame);
        // A search can read for tens of milliseconds: off the connection's worker.
        let (store, inboxes) = (self.app.store.clone(), self.inbox_names());
        let page = tokio::task::spawn_blocking(move || store.list(&inboxes, &request))
            .await
            .map_err(|_| Error::rejected(ErrorCode::Internal, "the list failed"))??;
        let (listed, after) = self.fit(room, page)?;
        if let AgentServer::Conversations {
            conversations,
            next,
        } = &mut frame
        {
            (*conversations, *next) = (listed, after);
        }
        self.link.send(&frame).await;
        Ok(())
    }

    /// The connection from `ready` on, in a task of its own.
    ///
    /// Not an `async fn`: one of those stores its arguments and then the local they are
    /// moved into, so the task would hold the session twice.
    #[allow(clippy::manual_async_fn)]
    fn live(mut self, held: impl Send + 'static) -> impl std::future::Future<Output = ()> + Send {
        async move {
            while let Some(input) = self.link.next_input::<AgentClient>().await {
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
            self.app.hub.remove_agent(&self.inboxes, self.conn_id);
            self.app.metrics.connection_closed(ConnKind::Agent);
            drop(held);
        }
    }

    /// Handles one frame, answering a failure with an `error` frame.
    async fn answer(&mut self, frame: AgentClient) {
        let reference = match &frame {
            AgentClient::Reply { client_msg_id, .. } => Some(client_msg_id.clone()),
            _ => None,
        };
        if let Err(e) = self.handle(frame).await {
            let f = e.to_frame(reference);
            self.link.send_error(f).await;
        }
    }

    /// The conversation, if this agent may see it; `not_found` otherwise, either way
    /// (an id that is not a UUID included, so ids cannot be probed).
    fn visible(&self, id: &str) -> Result<(ConversationId, ConversationRecord)> {
        let id = ConversationId::parse(id).ok_or_else(Error::not_found)?;
        let conv = self
            .app
            .store
            .conversation(id)?
            .ok_or_else(Error::not_found)?;
        if !self.may_see(&conv.inbox) {
            return Err(Error::not_found());
        }
        Ok((id, conv))
    }

    fn may_see(&self, inbox: &str) -> bool {
        self.inboxes.iter().any(|i| &**i == inbox)
    }

    async fn handle(&mut self, frame: AgentClient) -> Result<()> {
        let limits = self.app.config.limits.clone();
        match frame {
            AgentClient::Auth { .. } => Err(Error::rejected(
                ErrorCode::BadFrame,
                "already authenticated",
            )),
            AgentClient::Open {
                conversation_id,
                before,
                limit,
            } => {
                let (id, conv) = self.visible(&conversation_id)?;
                let limit = limit
                    .unwrap_or(limits.default_page)
                    .clamp(1, limits.max_history);
                let conversation = conversations::summary(
                    self.app.store.as_ref(),
                    &self.app.hub,
                    &conv,
                    Some(self.agent.id),
                )?;
                let mut frame = AgentServer::Conversation {
                    conversation,
                    messages: Vec::new(),
                    // `false`, the longer, while the room is measured.
                    has_more: false,
                };
                let cut = Cut {
                    limit: limit as usize,
                    bytes: self.link.list_room(&frame),
                };
                let (messages, more) = self.app.store.page(id, before, cut)?;
                if let AgentServer::Conversation { has_more, .. } = &mut frame {
                    *has_more = more;
                }
                self.link.send_with_messages(&frame, &messages).await;
                Ok(())
            }
            AgentClient::Reply {
                conversation_id,
                client_msg_id,
                text,
                attachments,
            } => {
                crate::attachments::not_yet(&attachments)?;
                self.reply(conversation_id, client_msg_id, text).await
            }
            AgentClient::LookupContact { email } => {
                let email = validate::email(&email, &limits)?;
                let contact = self.app.store.contact_by_email(&email)?;
                self.link
                    .send(&AgentServer::ContactLookup { email, contact })
                    .await;
                Ok(())
            }
            AgentClient::AssignVisitor {
                conversation_id,
                email,
            } => {
                let email = validate::email(&email, &limits)?;
                self.link_contact(&conversation_id, email, ContactLink::Assign)
                    .await
            }
            AgentClient::CreateContact {
                conversation_id,
                email,
                first_name,
                last_name,
            } => {
                let email = validate::email(&email, &limits)?;
                let first_name = validate::name(&first_name, "first name", &limits)?;
                let last_name = validate::name(&last_name, "last name", &limits)?;
                self.link_contact(
                    &conversation_id,
                    email,
                    ContactLink::Create {
                        first_name,
                        last_name,
                    },
                )
                .await
            }
            AgentClient::GetChatflow { inbox } => {
                let rec = self.inbox(&inbox)?;
                self.link
                    .send(&AgentServer::Chatflow {
                        inbox,
                        chatflow: rec.chatflow.clone(),
                    })
                    .await;
                Ok(())
            }
            AgentClient::UpdateChatflow { inbox, chatflow } => {
                self.update_chatflow(inbox, chatflow).await
            }
            AgentClient::SetStatus {
                conversation_id,
                status,
            } => {
                let (id, _) = self.visible(&conversation_id)?;
                self.set_workflow(id, Workflow::Status(status)).await
            }
            AgentClient::Assign {
                conversation_id,
                agent_id,
            } => {
                let (id, conv) = self.visible(&conversation_id)?;
                let who = match agent_id {
                    Some(agent) => Some(self.member(&agent, &conv.inbox)?),
                    None => None,
                };
                self.set_workflow(id, Workflow::Assign(who)).await
            }
            AgentClient::MarkRead {
                conversation_id,
                seq,
            } => self.mark_read(&conversation_id, seq).await,
            AgentClient::Typing {
                conversation_id,
                active,
            } => self.typing(&conversation_id, active),
            AgentClient::ListCanned { inbox } => {
                self.canned_frame(&inbox, false)?;
                let replies = self.app.admin.canned(&inbox)?;
                self.link
                    .send(&AgentServer::Canned { inbox, replies })
                    .await;
                Ok(())
            }
            AgentClient::SaveCanned {
                inbox,
                id,
                title,
                text,
                shortcut,
            } => {
                self.canned_frame(&inbox, true)?;
                let draft = canned::Draft::check(&title, &text, &shortcut)?;
                let create = id.is_none();
                let id = id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
                let reply = draft.into_reply(id, inbox.clone());
                let replies = self.app.admin.save_canned(reply, create).await??;
                self.canned_changed(&inbox, &replies);
                Ok(())
            }
            AgentClient::DeleteCanned { inbox, id } => {
                self.canned_frame(&inbox, true)?;
                let replies = self.app.admin.delete_canned(inbox.clone(), id).await??;
                self.canned_changed(&inbox, &replies);
                Ok(())
            }
            AgentClient::GetTeam {} => {
                self.admin_frame()?;
                let (agents, inboxes) = team::view(self.app.admin.as_ref(), &self.app.inboxes)?;
                self.link.send(&AgentServer::Team { agents, inboxes }).await;
                Ok(())
            }
            AgentClient::CreateAgent {
                name,
                display_name,
                role,
                inboxes,
            } => {
                self.admin_frame()?;
                self.create_agent(&name, display_name.as_deref(), role, &inboxes)
                    .await
            }
            AgentClient::ReissueInvite { agent_id } => {
                self.admin_frame()?;
                let id = team::agent_id(&agent_id)?;
                let (agent, token) = agents::reissue(self.app.admin.as_ref(), id)
                    .await?
                    .ok_or_else(team::no_such_agent)?;
                self.send_invite(&agent, &token).await;
                Ok(())
            }
            AgentClient::UpdateAgent {
                agent_id,
                name,
                display_name,
                role,
                inboxes,
            } => {
                self.admin_frame()?;
                let change = AgentChange {
                    name: name.map(|n| team::name(&n, "name", &limits)).transpose()?,
                    display_name: display_name
                        .map(|d| team::display_name(d.as_deref(), &limits))
                        .transpose()?,
                    role,
                    inboxes: inboxes
                        .map(|i| team::memberships(&i, &self.app.inboxes))
                        .transpose()?,
                };
                self.update_agent(&agent_id, change).await
            }
            AgentClient::RevokeAgent { agent_id } => {
                self.admin_frame()?;
                self.revoke_agent(&agent_id).await
            }
            AgentClient::CreateInbox { key, name, origins } => {
                self.admin_frame()?;
                self.create_inbox(&key, &name, &origins).await
            }
            AgentClient::UpdateInbox {
                inbox,
                name,
                origins,
                widget,
            } => {
                self.admin_frame()?;
                self.update_inbox(&inbox, name, origins, widget).await
            }
            AgentClient::List {
                status,
                assignee,
                query,
                before,
                limit,
            } => {
                self.app.throttle.list_per_connection.admit(&self.conn_id)?;
                let request = ListRequest::from_frame(
                    status,
                    assignee.as_deref(),
                    query.as_deref(),
                    before.as_deref(),
                    limit,
                    self.agent.id,
                )?;
                self.list(request).await
            }
        }
    }

    /// `mark_read`: moves this agent's read cursor of a conversation forward, durably.
    /// This agent's connections (this one included) hear their `unread`, moved or not;
    /// the visitor hears `seen` when the highest read `seq` moved.
    async fn mark_read(&mut self, conversation_id: &str, seq: u64) -> Result<()> {
        let (id, conv) = self.visible(conversation_id)?;
        let read = if reading::read_moves(&conv, self.agent.id, seq) {
            let cursor = if seq < conv.last_seq {
                // Counting reads the messages after `seq`: limited, and off this worker.
                self.app
                    .throttle
                    .count_reads_per_connection
                    .admit(&self.conn_id)?;
                let (store, conv) = (self.app.store.clone(), conv.clone());
                tokio::task::spawn_blocking(move || reading::cursor_at(&conv, seq, store.as_ref()))
                    .await
                    .map_err(|_| Error::rejected(ErrorCode::Internal, "mark_read failed"))??
            } else {
                reading::cursor_at(&conv, seq, self.app.store.as_ref())?
            };
            self.app.store.mark_read(id, self.agent.id, cursor).await?
        } else {
            // Not past the cursor: no write at all (a flood of these costs reads only).
            MarkedRead::unchanged(conv)
        };
        let conv = &read.conversation;
        if let Some(seq) = read.read_seq {
            fanout::publish(&self.app, &Event::ReadByTeam { conv, seq });
        }
        let agent = self.agent.id;
        // This connection is in the audience (its agent's): that is its answer.
        match fanout::publish(&self.app, &Event::ReadMoved { conv, agent }) {
            Some(_) => Ok(()),
            None => Err(Error::rejected(
                ErrorCode::Internal,
                "could not build the summary",
            )),
        }
    }

    /// `typing`: tells the visitor and the inbox's other agents, within the rate;
    /// never stored.
    fn typing(&mut self, conversation_id: &str, active: bool) -> Result<()> {
        let (id, conv) = self.visible(conversation_id)?;
        let place = Place {
            conversation: id,
            visitor: conversations::visitor_key(&conv),
        };
        let limits = &self.app.config.limits;
        for t in self.typing.frame(place, active, Instant::now(), limits) {
            self.tell_typing(Some(t));
        }
        Ok(())
    }

    /// Tells what became of this agent's typing, and sets the alarm for its end.
    fn tell_typing(&mut self, told: Option<Told>) {
        if let Some(t) = told {
            let shown = self
                .shown_name()
                .unwrap_or_else(|_| self.agent.shown_name().to_string());
            let names = (self.agent.name.as_str(), shown.as_str());
            fanout::agent_typing(&self.app, &t.place, self.agent.id, names, t.active);
        }
        self.link.set_alarm(self.typing.deadline());
    }

    /// The name visitors see on this agent's replies, as an admin last set it (a
    /// rename reaches open connections: it changes no access).
    fn shown_name(&self) -> Result<String> {
        let now = self.app.admin.agent(self.agent.id)?;
        let me = now.as_ref().unwrap_or(&self.agent);
        Ok(me.shown_name().to_string())
    }

    /// An admin frame's checks: the role (`forbidden` otherwise), then the rate.
    fn admin_frame(&self) -> Result<()> {
        if self.agent.role != Role::Admin {
            return Err(Error::rejected(
                ErrorCode::Forbidden,
                "only admins manage the team",
            ));
        }
        self.app.throttle.admin_per_connection.admit(&self.conn_id)
    }

    /// A canned reply frame about `inbox`: a member's, an admin's to change (`write`),
    /// within the connection's rate.
    fn canned_frame(&self, inbox: &str, write: bool) -> Result<()> {
        self.inbox(inbox)?;
        if write && self.agent.role != Role::Admin {
            return Err(Error::rejected(
                ErrorCode::Forbidden,
                "only admins change canned replies",
            ));
        }
        self.app.throttle.canned_per_connection.admit(&self.conn_id)
    }

    /// After a durable change: the inbox's canned replies to every agent connection of
    /// the inbox (this one included: that is its answer).
    fn canned_changed(&self, inbox: &str, replies: &[widget_protocol::CannedReply]) {
        fanout::publish(&self.app, &Event::CannedChanged { inbox, replies });
    }

    /// After a durable change: the team as it is now, to every admin connection (this
    /// one included: that is its answer).
    fn team_changed(&self) -> Result<()> {
        let (agents, inboxes) = team::view(self.app.admin.as_ref(), &self.app.inboxes)?;
        let agents = &agents;
        let inboxes = &inboxes;
        fanout::publish(&self.app, &Event::TeamChanged { agents, inboxes });
        Ok(())
    }

    /// `agent_created`, to this connection only: the token is in no other frame.
    async fn send_invite(&mut self, agent: &AgentRecord, token: &str) {
        self.link
            .send(&AgentServer::AgentCreated {
                agent: team::team_agent(agent),
                invite: team::invite_link(token),
            })
            .await;
    }

    async fn create_agent(
        &mut self,
        name: &str,
        display_name: Option<&str>,
        role: Role,
        inboxes: &[String],
    ) -> Result<()> {
        let limits = &self.app.config.limits;
        let name = team::name(name, "name", limits)?;
        let display_name = team::display_name(display_name, limits)?;
        let inboxes = team::memberships(inboxes, &self.app.inboxes)?;
        let now = self.app.now();
        let admin = self.app.admin.as_ref();
        let (agent, token) = agents::invite(admin, &name, display_name, role, inboxes, now).await?;
        self.send_invite(&agent, &token).await;
        self.team_changed()
    }

    async fn update_agent(&mut self, agent_id: &str, change: AgentChange) -> Result<()> {
        let id = team::agent_id(agent_id)?;
        team::guard_self(self.agent.id, id, team::demotes(&change), "demote")?;
        let (before, after) = agents::update(self.app.admin.as_ref(), id, change)
            .await?
            .ok_or_else(team::no_such_agent)?;
        self.team_changed()?;
        if AgentChange::changes_access(&before, &after) {
            self.app
                .hub
                .close_agents(|c| c.agent == Some(id), ACCESS_CHANGED);
        }
        Ok(())
    }

    async fn revoke_agent(&mut self, agent_id: &str) -> Result<()> {
        let id = team::agent_id(agent_id)?;
        team::guard_self(self.agent.id, id, true, "revoke")?;
        if !agents::revoke(self.app.admin.as_ref(), id).await? {
            return Err(team::no_such_agent());
        }
        // Durable: their connections end now, before anyone hears of it.
        self.app.hub.close_agents(|c| c.agent == Some(id), REVOKED);
        self.team_changed()
    }

    async fn create_inbox(&mut self, key: &str, name: &str, origins: &[String]) -> Result<()> {
        team::new_key(key, &self.app.inboxes)?;
        let name = team::name(name, "name", &self.app.config.limits)?;
        let origins = team::origins(origins)?;
        let me = self.agent.id;
        let created = self
            .app
            .inboxes
            .create_with_member(key, &name, origins, Some(me), self.app.now())
            .await?;
        if !created {
            return Err(Error::rejected(
                ErrorCode::BadFrame,
                "key: an inbox with this key exists already",
            ));
        }
        self.team_changed()?;
        // This admin is a member now: their connections start again to see it.
        self.app
            .hub
            .close_agents(|c| c.agent == Some(me), ACCESS_CHANGED);
        Ok(())
    }

    async fn update_inbox(
        &mut self,
        key: &str,
        name: Option<String>,
        origins: Option<Vec<String>>,
        widget: Option<WidgetSettings>,
    ) -> Result<()> {
        let no_such_inbox = || Error::rejected(ErrorCode::NotFound, "no such inbox");
        if self.app.inboxes.get(key).is_none() {
            return Err(no_such_inbox());
        }
        let limits = &self.app.config.limits;
        let change = InboxChange {
            name: name.map(|n| team::name(&n, "name", limits)).transpose()?,
            origins: origins.map(|o| team::origins(&o)).transpose()?,
            widget: widget.map(|w| team::widget(&w)).transpose()?,
        };
        self.app
            .inboxes
            .update(key, change)
            .await?
            .ok_or_else(no_such_inbox)?;
        self.team_changed()
    }

    /// The agent `id` as an assignee of a conversation in `inbox`: `not_found` unless
    /// they exist, are not revoked and are a member of that inbox.
    fn member(&self, id: &str, inbox: &str) -> Result<AssigneeRecord> {
        let no_such_agent = || Error::rejected(ErrorCode::NotFound, "no such agent in this inbox");
        let id = AgentId::parse(id).ok_or_else(no_such_agent)?;
        let agent = self.app.admin.agent(id)?.ok_or_else(no_such_agent)?;
        if agent.revoked || !agent.inboxes.iter().any(|i| i == inbox) {
            return Err(no_such_agent());
        }
        Ok(AssigneeRecord {
            id,
            name: agent.name,
        })
    }

    /// Stores a status or assignee change, then tells every agent of the inbox (this
    /// one included) with `conversation_updated`.
    async fn set_workflow(&mut self, id: ConversationId, change: Workflow) -> Result<()> {
        let conv = self.app.store.set_workflow(id, change).await?;
        // This connection is in the audience (no `except`): that is its answer.
        match fanout::publish(&self.app, &Event::WorkflowChanged { conv: &conv }) {
            Some(_) => Ok(()),
            None => Err(Error::rejected(
                ErrorCode::Internal,
                "could not build the summary",
            )),
        }
    }

    fn inbox(&self, key: &str) -> Result<Arc<crate::store::records::InboxRecord>> {
        if !self.may_see(key) {
            return Err(Error::rejected(ErrorCode::NotFound, "no such inbox"));
        }
        self.app
            .inboxes
            .get(key)
            .ok_or_else(|| Error::rejected(ErrorCode::NotFound, "no such inbox"))
    }

    async fn reply(
        &mut self,
        conversation_id: String,
        client_msg_id: String,
        text: String,
    ) -> Result<()> {
        let started = Instant::now();
        let limits = self.app.config.limits.clone();
        let throttle = &self.app.throttle;
        let text = admit(&client_msg_id, &text, &limits, || {
            throttle.reply_per_agent.admit(&self.agent_key)
        })?;
        let (id, conv) = self.visible(&conversation_id)?;
        let key = conversations::visitor_key(&conv);
        let follow_up = self
            .app
            .inboxes
            .get(&conv.inbox)
            .map(|i| i.chatflow.follow_up.clone())
            .filter(|f| f.enabled)
            .map(|f| clock::from_secs(f.delay_secs));
        let visitor_online = self.app.hub.visitor_online(&key);
        let appended = self
            .app
            .store
            .append_agent(AgentReply {
                conversation: id,
                agent_name: self.shown_name()?,
                client_msg_id: client_msg_id.clone(),
                text,
                now: self.app.now(),
                visitor_online,
                follow_up_delay_ms: follow_up,
            })
            .await?;
        self.link
            .send_ack(client_msg_id, appended.message.clone(), started)
            .await;
        if appended.duplicate {
            return Ok(());
        }
        // The reply is out: the agent is no longer typing it.
        let stopped = self.typing.stop_in(id);
        self.tell_typing(stopped);
        let conv = &appended.conversation;
        let reply = Event::AgentReply {
            conv,
            message: &appended.message,
            from: self.conn_id,
        };
        let reached = fanout::publish(&self.app, &reply).is_some_and(|d| d.visitors > 0);
        let news = SummaryNews::LastMessageOnly;
        fanout::publish(&self.app, &Event::SummaryChanged { conv, news });
        if let Some((due, kind)) = appended.deadline {
            self.app.deadlines.schedule(due, kind, id);
        }
        let seq = appended.message.seq;
        followup::reply_delivered(&self.app, id, seq, visitor_online, reached, follow_up).await;
        Ok(())
    }

    async fn link_contact(
        &mut self,
        conversation_id: &str,
        email: String,
        how: ContactLink,
    ) -> Result<()> {
        let (id, _) = self.visible(conversation_id)?;
        let linked = self
            .app
            .store
            .link_contact(Whom::Conversation(id), email, how, self.app.now())
            .await?;
        if linked.created {
            Metrics::inc(&self.app.metrics.contacts_created);
        }
        self.link
            .send(&AgentServer::VisitorAssigned {
                conversation_id: conversation_id.to_string(),
                contact: linked.contact.clone(),
            })
            .await;
        if let Some(conv) = &linked.conversation {
            let news = SummaryNews::More;
            fanout::publish(&self.app, &Event::SummaryChanged { conv, news });
        }
        Ok(())
    }

    async fn update_chatflow(&mut self, inbox: String, proposed: Chatflow) -> Result<()> {
        self.inbox(&inbox)?;
        if self.agent.role != Role::Admin {
            return Err(Error::rejected(
                ErrorCode::Forbidden,
                "only admins change chatflows",
            ));
        }
        let valid = chatflow::validate(proposed)?;
        let rec = self.app.inboxes.set_chatflow(&inbox, valid).await?;
        // Every agent of the inbox sees the new settings, this one included.
        let changed = Event::ChatflowChanged {
            inbox: &inbox,
            chatflow: &rec.chatflow,
            from: self.conn_id,
        };
        if let Some(sent) = fanout::publish(&self.app, &changed) {
            self.link.send_raw(sent.frame).await;
        }
        Ok(())
    }
}
