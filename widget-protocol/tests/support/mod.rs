//! Every example frame of the contract (`/work/shared/protocol.md`, mirrored in
//! `PROTOCOL.md`), with its `…` placeholders filled in and its `MESSAGE`, `SUMMARY`,
//! `CONTACT` and `CHATFLOW` shorthands expanded. Shared by `examples.rs` (round trips)
//! and `fuzz_corpus.rs` (every example is also a fuzz seed); each uses part of it.

#![allow(dead_code)]

/// Which decoder a frame is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    VisitorClient,
    VisitorServer,
    AgentClient,
    AgentServer,
}

pub struct Example {
    /// Unique; also the seed's file name in the fuzz corpus (`example-<name>.json`).
    pub name: &'static str,
    pub side: Side,
    /// The frame as the contract shows it.
    pub json: &'static str,
    /// What our encoder writes back when it differs from `json`: only where the crate
    /// adds an extension field with its default (`follow_up` in a chatflow).
    pub encoded: Option<&'static str>,
}

// `MESSAGE`, one per author kind.
macro_rules! message_visitor {
    () => {
        r#"{"id":"0193a7c2-6a10-7f21-8b3e-5d9c0a1f2e33","conversation_id":"0193a7c2-5b1e-7d44-9f00-3c2a1b0e9d51","seq":3,"author":{"kind":"visitor","name":null},"text":"Hallo","at":1764082800123}"#
    };
}
macro_rules! message_agent {
    () => {
        r#"{"id":"0193a7c2-7c55-7a08-b1d2-8e6f4a3b2c19","conversation_id":"0193a7c2-5b1e-7d44-9f00-3c2a1b0e9d51","seq":4,"author":{"kind":"agent","name":"Grace"},"text":"Hi! How can I help?","at":1764082805123}"#
    };
}
macro_rules! message_system {
    () => {
        r#"{"id":"0193a7c2-5b20-7c3e-a9d1-0f7e6d5c4b3a","conversation_id":"0193a7c2-5b1e-7d44-9f00-3c2a1b0e9d51","seq":2,"author":{"kind":"system","name":null},"text":"We're away right now.","at":1764082800001}"#
    };
}
// `CONTACT`, as email capture makes it (no names) and as an agent makes it.
macro_rules! contact_captured {
    () => {
        r#"{"id":"8d3f1a2b-4c5d-4e6f-8a7b-9c0d1e2f3a4b","email":"ada@example.com","first_name":null,"last_name":null,"source":"email_capture","created_at":1764082900000}"#
    };
}
macro_rules! contact_agent {
    () => {
        r#"{"id":"8d3f1a2b-4c5d-4e6f-8a7b-9c0d1e2f3a4b","email":"ada@example.com","first_name":"Ada","last_name":"Lovelace","source":"agent","created_at":1764082900000}"#
    };
}
// `SUMMARY`: a known visitor with a last message, and a fresh unknown one.
macro_rules! summary_known {
    () => {
        concat!(
            r#"{"id":"0193a7c2-5b1e-7d44-9f00-3c2a1b0e9d51","inbox":"default","visitor":{"id":"5f0c8e2a-1b3d-4c6e-9a7f-2d4b6e8f0a1c","label":"Ada Lovelace","online":true,"contact":"#,
            contact_agent!(),
            r#"},"last_message":"#,
            message_agent!(),
            r#","created_at":1764082800000,"updated_at":1764082805123,"status":"pending","assignee":{"id":"3e9b1c2d-4f5a-4b6c-8d7e-9f0a1b2c3d4e","name":"Ann"},"unread":2,"visitor_seen_seq":4}"#
        )
    };
}
macro_rules! summary_unknown {
    () => {
        r#"{"id":"0193a7c2-9e01-7b6a-8c5d-4f3e2d1c0b9a","inbox":"default","visitor":{"id":"1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d","label":"Unknown visitor","online":false,"contact":null},"last_message":null,"created_at":1764082700000,"updated_at":1764082700000,"status":"open","assignee":null,"unread":0,"visitor_seen_seq":0}"#
    };
}
// `CHATFLOW` exactly as the contract shapes it, and as our encoder writes it back
// (with the `follow_up` extension at its default).
macro_rules! chatflow_contract {
    () => {
        r#"{"email_capture":{"when":"first_message","delay_secs":60,"message":"Leave your email?"},"away":{"mode":"no_agents_online","message":"We're away right now."}}"#
    };
}
macro_rules! chatflow_encoded {
    () => {
        r#"{"email_capture":{"when":"first_message","delay_secs":60,"message":"Leave your email?"},"away":{"mode":"no_agents_online","message":"We're away right now."},"follow_up":{"enabled":true,"delay_secs":120}}"#
    };
}

const fn ex(name: &'static str, side: Side, json: &'static str) -> Example {
    Example {
        name,
        side,
        json,
        encoded: None,
    }
}

pub const EXAMPLES: &[Example] = &[
    // ---- errors, on both endpoints
    ex(
        "visitor_server-error",
        Side::VisitorServer,
        r#"{"type":"error","code":"invalid_email","message":"human readable text","ref":"3f2b8c1e-9d4a-4e7b-a6c5-1f0e2d3c4b5a"}"#,
    ),
    ex(
        "visitor_server-error-no_ref",
        Side::VisitorServer,
        r#"{"type":"error","code":"bad_frame","message":"human readable text","ref":null}"#,
    ),
    ex(
        "agent_server-error",
        Side::AgentServer,
        r#"{"type":"error","code":"not_found","message":"human readable text","ref":null}"#,
    ),
    // ---- visitor, client to server
    ex(
        "visitor_client-hello",
        Side::VisitorClient,
        r#"{"type":"hello","visitor_token":"Gx9mQ2v7TqXo0b1yH3kL8wZ5pR4sN6uV","resume_after":0,"page":{"url":"https://shop.example.com/pricing","title":"Pricing"}}"#,
    ),
    ex(
        "visitor_client-hello-no_token",
        Side::VisitorClient,
        r#"{"type":"hello","visitor_token":null,"resume_after":0,"page":{"url":"https://shop.example.com/","title":"Shop"}}"#,
    ),
    ex(
        "visitor_client-send",
        Side::VisitorClient,
        r#"{"type":"send","client_msg_id":"3f2b8c1e-9d4a-4e7b-a6c5-1f0e2d3c4b5a","text":"Hallo"}"#,
    ),
    ex(
        "visitor_client-send-attachments",
        Side::VisitorClient,
        r#"{"type":"send","client_msg_id":"3f2b8c1e-9d4a-4e7b-a6c5-1f0e2d3c4b5b","text":"","attachments":["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]}"#,
    ),
    ex(
        "visitor_client-submit_email",
        Side::VisitorClient,
        r#"{"type":"submit_email","email":"ada@example.com"}"#,
    ),
    ex(
        "visitor_client-history",
        Side::VisitorClient,
        r#"{"type":"history","before":51,"limit":50}"#,
    ),
    // ---- visitor, server to client
    ex(
        "visitor_server-welcome",
        Side::VisitorServer,
        concat!(
            r#"{"type":"welcome","protocol":1,"visitor_token":"Gx9mQ2v7TqXo0b1yH3kL8wZ5pR4sN6uV","visitor_id":"5f0c8e2a-1b3d-4c6e-9a7f-2d4b6e8f0a1c","conversation_id":"0193a7c2-5b1e-7d44-9f00-3c2a1b0e9d51","messages":["#,
            message_system!(),
            ",",
            message_visitor!(),
            ",",
            message_agent!(),
            r#"],"has_more":false,"email":"ada@example.com","away":{"active":false,"message":null}}"#
        ),
    ),
    ex(
        "visitor_server-welcome-new_visitor",
        Side::VisitorServer,
        r#"{"type":"welcome","protocol":1,"visitor_token":"Gx9mQ2v7TqXo0b1yH3kL8wZ5pR4sN6uV","visitor_id":"5f0c8e2a-1b3d-4c6e-9a7f-2d4b6e8f0a1c","conversation_id":null,"messages":[],"has_more":false,"email":null,"away":{"active":true,"message":"We're away right now."}}"#,
    ),
    ex(
        "visitor_server-welcome-widget",
        Side::VisitorServer,
        r##"{"type":"welcome","protocol":1,"visitor_token":"Gx9mQ2v7TqXo0b1yH3kL8wZ5pR4sN6uV","visitor_id":"5f0c8e2a-1b3d-4c6e-9a7f-2d4b6e8f0a1c","conversation_id":null,"messages":[],"has_more":false,"email":null,"away":{"active":false,"message":null},"widget":{"title":"Talk to Sales","color":"#0a5cff","greeting":null}}"##,
    ),
    ex(
        "visitor_server-welcome-back_at",
        Side::VisitorServer,
        r##"{"type":"welcome","protocol":1,"visitor_token":"Gx9mQ2v7TqXo0b1yH3kL8wZ5pR4sN6uV","visitor_id":"5f0c8e2a-1b3d-4c6e-9a7f-2d4b6e8f0a1c","conversation_id":null,"messages":[],"has_more":false,"email":null,"away":{"active":true,"message":"We're away right now.","back_at":1764576000000}}"##,
    ),
    ex(
        "visitor_server-ack",
        Side::VisitorServer,
        concat!(
            r#"{"type":"ack","client_msg_id":"3f2b8c1e-9d4a-4e7b-a6c5-1f0e2d3c4b5a","message":"#,
            message_visitor!(),
            "}"
        ),
    ),
    ex(
        "visitor_server-message",
        Side::VisitorServer,
        concat!(r#"{"type":"message","message":"#, message_agent!(), "}"),
    ),
    ex(
        "visitor_server-message-attachments",
        Side::VisitorServer,
        r#"{"type":"message","message":{"id":"0193a7c2-7c55-7a08-b1d2-8e6f4a3b2c20","conversation_id":"0193a7c2-5b1e-7d44-9f00-3c2a1b0e9d51","seq":5,"author":{"kind":"visitor","name":null},"text":"","at":1764082806123,"attachments":[{"id":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","name":"shot.png","size":48213,"type":"image/png"}]}}"#,
    ),
    ex(
        "visitor_server-email_prompt",
        Side::VisitorServer,
        r#"{"type":"email_prompt","text":"Leave your email and we'll get back to you."}"#,
    ),
    ex(
        "visitor_server-email_captured",
        Side::VisitorServer,
        r#"{"type":"email_captured","email":"ada@example.com"}"#,
    ),
    ex(
        "visitor_server-history",
        Side::VisitorServer,
        concat!(
            r#"{"type":"history","messages":["#,
            message_system!(),
            ",",
            message_visitor!(),
            r#"],"has_more":true}"#
        ),
    ),
    // ---- agent, client to server
    ex(
        "agent_client-auth",
        Side::AgentClient,
        r#"{"type":"auth","token":"fd_agent_2J8kq9XvT0mYb3LwZ6rN1pQ4"}"#,
    ),
    ex(
        "agent_client-auth-cookie",
        Side::AgentClient,
        r#"{"type":"auth"}"#,
    ),
    ex(
        "agent_client-open",
        Side::AgentClient,
        r#"{"type":"open","conversation_id":"0193a7c2-5b1e-7d44-9f00-3c2a1b0e9d51","before":null,"limit":50}"#,
    ),
    ex(
        "agent_client-reply",
        Side::AgentClient,
        r#"{"type":"reply","conversation_id":"0193a7c2-5b1e-7d44-9f00-3c2a1b0e9d51","client_msg_id":"7c6b5a49-3827-4165-9f0e-d1c2b3a49586","text":"Hi! How can I help?"}"#,
    ),
    ex(
        "agent_client-reply-attachments",
        Side::AgentClient,
        r#"{"type":"reply","conversation_id":"0193a7c2-5b1e-7d44-9f00-3c2a1b0e9d51","client_msg_id":"7c6b5a49-3827-4165-9f0e-d1c2b3a49587","text":"The manual","attachments":["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]}"#,
    ),
    ex(
        "agent_client-set_status",
        Side::AgentClient,
        r#"{"type":"set_status","conversation_id":"0193a7c2-5b1e-7d44-9f00-3c2a1b0e9d51","status":"resolved"}"#,
    ),
    ex(
        "agent_client-assign",
        Side::AgentClient,
        r#"{"type":"assign","conversation_id":"0193a7c2-5b1e-7d44-9f00-3c2a1b0e9d51","agent_id":"3e9b1c2d-4f5a-4b6c-8d7e-9f0a1b2c3d4e"}"#,
    ),
    ex(
        "agent_client-unassign",
        Side::AgentClient,
        r#"{"type":"assign","conversation_id":"0193a7c2-5b1e-7d44-9f00-3c2a1b0e9d51","agent_id":null}"#,
    ),
    ex(
        "agent_client-lookup_contact",
        Side::AgentClient,
        r#"{"type":"lookup_contact","email":"ada@example.com"}"#,
    ),
    ex(
        "agent_client-assign_visitor",
        Side::AgentClient,
        r#"{"type":"assign_visitor","conversation_id":"0193a7c2-5b1e-7d44-9f00-3c2a1b0e9d51","email":"ada@example.com"}"#,
    ),
    ex(
        "agent_client-create_contact",
        Side::AgentClient,
        r#"{"type":"create_contact","conversation_id":"0193a7c2-5b1e-7d44-9f00-3c2a1b0e9d51","email":"ada@example.com","first_name":"Ada","last_name":"Lovelace"}"#,
    ),
    ex(
        "agent_client-get_chatflow",
        Side::AgentClient,
        r#"{"type":"get_chatflow","inbox":"default"}"#,
    ),
    ex(
        "agent_client-update_chatflow-hours",
        Side::AgentClient,
        r#"{"type":"update_chatflow","inbox":"default","chatflow":{"email_capture":{"when":"no_reply","delay_secs":60,"message":null},"away":{"mode":"outside_hours","message":"We're closed right now."},"follow_up":{"enabled":true,"delay_secs":120},"hours":{"time_zone":"Europe/Berlin","weekly":{"mon":[{"from":"09:00","to":"17:00"}],"tue":[{"from":"09:00","to":"17:00"}],"wed":[{"from":"09:00","to":"12:30"},{"from":"13:30","to":"17:00"}],"thu":[{"from":"09:00","to":"17:00"}],"fri":[{"from":"09:00","to":"15:00"}],"sat":[],"sun":[]},"holidays":["2026-12-24","2026-12-25"]}}}"#,
    ),
    Example {
        name: "agent_client-update_chatflow",
        side: Side::AgentClient,
        json: concat!(
            r#"{"type":"update_chatflow","inbox":"default","chatflow":"#,
            chatflow_contract!(),
            "}"
        ),
        encoded: Some(concat!(
            r#"{"type":"update_chatflow","inbox":"default","chatflow":"#,
            chatflow_encoded!(),
            "}"
        )),
    },
    // ---- agent, server to client
    ex(
        "agent_server-ready",
        Side::AgentServer,
        concat!(
            r#"{"type":"ready","agent":{"id":"c4d5e6f7-0819-4a2b-9c3d-4e5f60718293","name":"Grace","role":"admin"},"inboxes":["default","support"],"conversations":["#,
            summary_known!(),
            ",",
            summary_unknown!(),
            r#"],"next":"1764082700000.0193a7c2-9e01-7b6a-8c5d-4f3e2d1c0b9a","agents":[{"id":"c4d5e6f7-0819-4a2b-9c3d-4e5f60718293","name":"Grace","inboxes":["default","support"]},{"id":"3e9b1c2d-4f5a-4b6c-8d7e-9f0a1b2c3d4e","name":"Ann","inboxes":["support"]}]}"#
        ),
    ),
    ex(
        "agent_server-ready-agent_role",
        Side::AgentServer,
        r#"{"type":"ready","agent":{"id":"d5e6f708-192a-4b3c-8d4e-5f6071829304","name":"Linus","role":"agent"},"inboxes":[],"conversations":[],"next":null}"#,
    ),
    ex(
        "agent_server-conversation",
        Side::AgentServer,
        concat!(
            r#"{"type":"conversation","conversation":"#,
            summary_known!(),
            r#","messages":["#,
            message_visitor!(),
            ",",
            message_agent!(),
            r#"],"has_more":false}"#
        ),
    ),
    ex(
        "agent_server-conversation_updated",
        Side::AgentServer,
        concat!(
            r#"{"type":"conversation_updated","conversation":"#,
            summary_unknown!(),
            "}"
        ),
    ),
    ex(
        "agent_server-message",
        Side::AgentServer,
        concat!(r#"{"type":"message","message":"#, message_visitor!(), "}"),
    ),
    ex(
        "agent_server-ack",
        Side::AgentServer,
        concat!(
            r#"{"type":"ack","client_msg_id":"7c6b5a49-3827-4165-9f0e-d1c2b3a49586","message":"#,
            message_agent!(),
            "}"
        ),
    ),
    ex(
        "agent_server-contact_lookup",
        Side::AgentServer,
        concat!(
            r#"{"type":"contact_lookup","email":"ada@example.com","contact":"#,
            contact_captured!(),
            "}"
        ),
    ),
    ex(
        "agent_server-contact_lookup-none",
        Side::AgentServer,
        r#"{"type":"contact_lookup","email":"nobody@example.com","contact":null}"#,
    ),
    ex(
        "agent_server-visitor_assigned",
        Side::AgentServer,
        concat!(
            r#"{"type":"visitor_assigned","conversation_id":"0193a7c2-5b1e-7d44-9f00-3c2a1b0e9d51","contact":"#,
            contact_agent!(),
            "}"
        ),
    ),
    Example {
        name: "agent_server-chatflow",
        side: Side::AgentServer,
        json: concat!(
            r#"{"type":"chatflow","inbox":"default","chatflow":"#,
            chatflow_contract!(),
            "}"
        ),
        encoded: Some(concat!(
            r#"{"type":"chatflow","inbox":"default","chatflow":"#,
            chatflow_encoded!(),
            "}"
        )),
    },
    // ---- inbox workflow: unread, seen, typing, list
    ex(
        "agent_client-mark_read",
        Side::AgentClient,
        r#"{"type":"mark_read","conversation_id":"0193a7c2-5b1e-7d44-9f00-3c2a1b0e9d51","seq":12}"#,
    ),
    ex(
        "agent_client-typing",
        Side::AgentClient,
        r#"{"type":"typing","conversation_id":"0193a7c2-5b1e-7d44-9f00-3c2a1b0e9d51","active":true}"#,
    ),
    ex(
        "agent_client-list",
        Side::AgentClient,
        r#"{"type":"list","status":"open","assignee":"me","query":"refund","before":null,"limit":50}"#,
    ),
    ex(
        "agent_client-list-all",
        Side::AgentClient,
        r#"{"type":"list","status":null,"assignee":null,"query":null,"before":"1764082700000.0193a7c2-9e01-7b6a-8c5d-4f3e2d1c0b9a","limit":50}"#,
    ),
    ex(
        "agent_server-conversations",
        Side::AgentServer,
        concat!(
            r#"{"type":"conversations","conversations":["#,
            summary_known!(),
            r#"],"next":null}"#
        ),
    ),
    ex(
        "agent_server-agent_typing",
        Side::AgentServer,
        r#"{"type":"agent_typing","conversation_id":"0193a7c2-5b1e-7d44-9f00-3c2a1b0e9d51","agent":{"id":"3e9b1c2d-4f5a-4b6c-8d7e-9f0a1b2c3d4e","name":"Ann"},"active":true}"#,
    ),
    ex(
        "agent_server-visitor_typing",
        Side::AgentServer,
        r#"{"type":"visitor_typing","conversation_id":"0193a7c2-5b1e-7d44-9f00-3c2a1b0e9d51","active":false}"#,
    ),
    ex(
        "visitor_client-typing",
        Side::VisitorClient,
        r#"{"type":"typing","active":true}"#,
    ),
    ex(
        "visitor_client-seen",
        Side::VisitorClient,
        r#"{"type":"seen","seq":7}"#,
    ),
    ex(
        "visitor_server-typing",
        Side::VisitorServer,
        r#"{"type":"typing","active":true,"name":"Ann"}"#,
    ),
    ex(
        "visitor_server-seen",
        Side::VisitorServer,
        r#"{"type":"seen","seq":12}"#,
    ),
    // ---- [ext] team administration (admins only)
    ex(
        "agent_client-get_team",
        Side::AgentClient,
        r#"{"type":"get_team"}"#,
    ),
    ex(
        "agent_client-create_agent",
        Side::AgentClient,
        r#"{"type":"create_agent","name":"Ann","display_name":"Ann from Support","role":"agent","inboxes":["default"]}"#,
    ),
    ex(
        "agent_client-reissue_invite",
        Side::AgentClient,
        r#"{"type":"reissue_invite","agent_id":"3e9b1c2d-4f5a-4b6c-8d7e-9f0a1b2c3d4e"}"#,
    ),
    ex(
        "agent_client-update_agent",
        Side::AgentClient,
        r#"{"type":"update_agent","agent_id":"3e9b1c2d-4f5a-4b6c-8d7e-9f0a1b2c3d4e","name":"Ann Smith","display_name":null,"role":"admin","inboxes":["default","sales"]}"#,
    ),
    ex(
        "agent_client-update_agent-rename",
        Side::AgentClient,
        r#"{"type":"update_agent","agent_id":"3e9b1c2d-4f5a-4b6c-8d7e-9f0a1b2c3d4e","display_name":"Ann"}"#,
    ),
    ex(
        "agent_client-revoke_agent",
        Side::AgentClient,
        r#"{"type":"revoke_agent","agent_id":"3e9b1c2d-4f5a-4b6c-8d7e-9f0a1b2c3d4e"}"#,
    ),
    ex(
        "agent_client-create_inbox",
        Side::AgentClient,
        r#"{"type":"create_inbox","key":"sales","name":"Sales","origins":["https://shop.example.com"]}"#,
    ),
    ex(
        "agent_client-update_inbox",
        Side::AgentClient,
        r##"{"type":"update_inbox","inbox":"sales","name":"Sales EU","origins":["https://shop.example.com","https://shop.example.de"],"widget":{"title":"Talk to Sales","color":"#0a5cff","greeting":null}}"##,
    ),
    ex(
        "agent_server-team",
        Side::AgentServer,
        r##"{"type":"team","agents":[{"id":"c4d5e6f7-0819-4a2b-9c3d-4e5f60718293","name":"Grace","display_name":null,"role":"admin","inboxes":["default","sales"],"revoked":false,"created_at":1764082600000},{"id":"3e9b1c2d-4f5a-4b6c-8d7e-9f0a1b2c3d4e","name":"Ann","display_name":"Ann from Support","role":"agent","inboxes":["default"],"revoked":false,"created_at":1764082650000}],"inboxes":[{"key":"default","name":"Support","origins":[],"widget":{"title":null,"color":null,"greeting":null},"created_at":1764082600000},{"key":"sales","name":"Sales","origins":["https://shop.example.com"],"widget":{"title":"Talk to Sales","color":"#0a5cff","greeting":"Hi! Questions about a plan?"},"created_at":1764082700000}]}"##,
    ),
    ex(
        "agent_client-list_canned",
        Side::AgentClient,
        r#"{"type":"list_canned","inbox":"default"}"#,
    ),
    ex(
        "agent_client-save_canned-new",
        Side::AgentClient,
        r#"{"type":"save_canned","inbox":"default","id":null,"title":"Shipping times","text":"We ship within 2 working days; delivery takes 3 to 5 more.","shortcut":"shipping"}"#,
    ),
    ex(
        "agent_client-save_canned",
        Side::AgentClient,
        r#"{"type":"save_canned","inbox":"default","id":"0193a7c3-1a2b-7c3d-8e4f-5a6b7c8d9e0f","title":"Shipping times","text":"We ship within 2 working days; delivery takes 3 to 5 more.","shortcut":"shipping"}"#,
    ),
    ex(
        "agent_client-delete_canned",
        Side::AgentClient,
        r#"{"type":"delete_canned","inbox":"default","id":"0193a7c3-1a2b-7c3d-8e4f-5a6b7c8d9e0f"}"#,
    ),
    ex(
        "agent_server-canned",
        Side::AgentServer,
        r#"{"type":"canned","inbox":"default","replies":[{"id":"0193a7c3-1a2b-7c3d-8e4f-5a6b7c8d9e0f","inbox":"default","title":"Shipping times","text":"We ship within 2 working days; delivery takes 3 to 5 more.","shortcut":"shipping"}]}"#,
    ),
    ex(
        "agent_server-agent_created",
        Side::AgentServer,
        r#"{"type":"agent_created","agent":{"id":"3e9b1c2d-4f5a-4b6c-8d7e-9f0a1b2c3d4e","name":"Ann","display_name":null,"role":"agent","inboxes":["default"],"revoked":false,"created_at":1764082650000},"invite":"/inbox#invite=fda_Q2hhdEludml0ZVRva2VuRXhhbXBsZU9ubHkxMjM0NTY"}"#,
    ),
    ex(
        "agent_server-ready-display_name",
        Side::AgentServer,
        r#"{"type":"ready","agent":{"id":"3e9b1c2d-4f5a-4b6c-8d7e-9f0a1b2c3d4e","name":"Ann","role":"agent","display_name":"Ann from Support"},"inboxes":["default"],"conversations":[],"next":null}"#,
    ),
];

/// The contract's chatflow object on its own (it is not a frame).
pub const CHATFLOW: &str = chatflow_contract!();
/// The contract's chatflow as our encoder writes it.
pub const CHATFLOW_ENCODED: &str = chatflow_encoded!();
