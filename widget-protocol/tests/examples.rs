//! The contract's examples round-trip through the types, and the rules of the envelope
//! hold: unknown fields ignored, missing fields and unknown types named in the error,
//! chatflow defaults, wire names of codes and `ref`, errors that never echo the input.

mod support;

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use support::{Example, Side, CHATFLOW, CHATFLOW_ENCODED, EXAMPLES};
use widget_protocol::*;

// The wire name of each variant, written out by hand (not through serde) so that a
// renamed or mis-tagged variant shows up. The matches are exhaustive: a new variant
// does not compile until it is named here and in the lists below.
fn visitor_client_type(f: &VisitorClient) -> &'static str {
    match f {
        VisitorClient::Hello { .. } => "hello",
        VisitorClient::Send { .. } => "send",
        VisitorClient::SubmitEmail { .. } => "submit_email",
        VisitorClient::History { .. } => "history",
        VisitorClient::Typing { .. } => "typing",
        VisitorClient::Seen { .. } => "seen",
    }
}
fn visitor_server_type(f: &VisitorServer) -> &'static str {
    match f {
        VisitorServer::Welcome(_) => "welcome",
        VisitorServer::Ack { .. } => "ack",
        VisitorServer::Message { .. } => "message",
        VisitorServer::EmailPrompt { .. } => "email_prompt",
        VisitorServer::EmailCaptured { .. } => "email_captured",
        VisitorServer::History { .. } => "history",
        VisitorServer::Typing { .. } => "typing",
        VisitorServer::Seen { .. } => "seen",
        VisitorServer::Error(_) => "error",
    }
}
fn agent_client_type(f: &AgentClient) -> &'static str {
    match f {
        AgentClient::Auth { .. } => "auth",
        AgentClient::Open { .. } => "open",
        AgentClient::Reply { .. } => "reply",
        AgentClient::LookupContact { .. } => "lookup_contact",
        AgentClient::AssignVisitor { .. } => "assign_visitor",
        AgentClient::CreateContact { .. } => "create_contact",
        AgentClient::GetChatflow { .. } => "get_chatflow",
        AgentClient::UpdateChatflow { .. } => "update_chatflow",
        AgentClient::SetStatus { .. } => "set_status",
        AgentClient::Assign { .. } => "assign",
        AgentClient::MarkRead { .. } => "mark_read",
        AgentClient::Typing { .. } => "typing",
        AgentClient::List { .. } => "list",
        AgentClient::GetTeam { .. } => "get_team",
        AgentClient::CreateAgent { .. } => "create_agent",
        AgentClient::ReissueInvite { .. } => "reissue_invite",
        AgentClient::UpdateAgent { .. } => "update_agent",
        AgentClient::RevokeAgent { .. } => "revoke_agent",
        AgentClient::CreateInbox { .. } => "create_inbox",
        AgentClient::UpdateInbox { .. } => "update_inbox",
        AgentClient::ListCanned { .. } => "list_canned",
        AgentClient::SaveCanned { .. } => "save_canned",
        AgentClient::DeleteCanned { .. } => "delete_canned",
    }
}
fn agent_server_type(f: &AgentServer) -> &'static str {
    match f {
        AgentServer::Ready { .. } => "ready",
        AgentServer::Conversation { .. } => "conversation",
        AgentServer::ConversationUpdated { .. } => "conversation_updated",
        AgentServer::Message { .. } => "message",
        AgentServer::Ack { .. } => "ack",
        AgentServer::ContactLookup { .. } => "contact_lookup",
        AgentServer::VisitorAssigned { .. } => "visitor_assigned",
        AgentServer::Chatflow { .. } => "chatflow",
        AgentServer::Conversations { .. } => "conversations",
        AgentServer::AgentTyping { .. } => "agent_typing",
        AgentServer::VisitorTyping { .. } => "visitor_typing",
        AgentServer::Team { .. } => "team",
        AgentServer::AgentCreated { .. } => "agent_created",
        AgentServer::Canned { .. } => "canned",
        AgentServer::Error(_) => "error",
    }
}

/// Every frame type the contract lists, per direction.
const CONTRACT_TYPES: &[(Side, &[&str])] = &[
    (
        Side::VisitorClient,
        &["hello", "send", "submit_email", "history", "typing", "seen"],
    ),
    (
        Side::VisitorServer,
        &[
            "welcome",
            "ack",
            "message",
            "email_prompt",
            "email_captured",
            "history",
            "typing",
            "seen",
            "error",
        ],
    ),
    (
        Side::AgentClient,
        &[
            "auth",
            "open",
            "reply",
            "lookup_contact",
            "assign_visitor",
            "create_contact",
            "get_chatflow",
            "update_chatflow",
            "set_status",
            "assign",
            "mark_read",
            "typing",
            "list",
            "get_team",
            "create_agent",
            "reissue_invite",
            "update_agent",
            "revoke_agent",
            "create_inbox",
            "update_inbox",
            "list_canned",
            "save_canned",
            "delete_canned",
        ],
    ),
    (
        Side::AgentServer,
        &[
            "ready",
            "conversation",
            "conversation_updated",
            "message",
            "ack",
            "contact_lookup",
            "visitor_assigned",
            "chatflow",
            "conversations",
            "agent_typing",
            "visitor_typing",
            "team",
            "agent_created",
            "canned",
            "error",
        ],
    ),
];

fn value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("bad JSON in the test: {e}: {text}"))
}

/// Decodes `text` as `T`, checks the variant's wire name, and returns the re-encoding.
fn round_trip<T>(text: &str, type_of: fn(&T) -> &'static str) -> Value
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let frame: T = decode(text).unwrap_or_else(|e| panic!("does not decode: {e}: {text}"));
    assert_eq!(
        Some(type_of(&frame)),
        value(text)["type"].as_str(),
        "decoded into the wrong variant: {text}"
    );
    let encoded = encode(&frame);
    let again: T = decode(&encoded).expect("our own encoding decodes");
    assert_eq!(again, frame);
    value(&encoded)
}

fn decode_example(ex: &Example) -> Value {
    match ex.side {
        Side::VisitorClient => round_trip(ex.json, visitor_client_type),
        Side::VisitorServer => round_trip(ex.json, visitor_server_type),
        Side::AgentClient => round_trip(ex.json, agent_client_type),
        Side::AgentServer => round_trip(ex.json, agent_server_type),
    }
}

#[test]
fn every_contract_example_round_trips() {
    for ex in EXAMPLES {
        let expected = value(ex.encoded.unwrap_or(ex.json));
        assert_eq!(decode_example(ex), expected, "example {}", ex.name);
    }
}

#[test]
fn every_frame_type_has_an_example_and_names_are_unique() {
    for (side, types) in CONTRACT_TYPES {
        for t in *types {
            assert!(
                EXAMPLES
                    .iter()
                    .any(|ex| ex.side == *side && value(ex.json)["type"] == *t),
                "no example of {t} for {side:?}"
            );
        }
    }
    let names: BTreeSet<_> = EXAMPLES.iter().map(|ex| ex.name).collect();
    assert_eq!(names.len(), EXAMPLES.len(), "example names must be unique");
}

#[test]
fn frames_of_one_direction_are_refused_by_the_other() {
    // A client frame sent to the wrong endpoint fails with `unknown variant`, except
    // where both directions share a name (`history`, `message`, `ack`, `error`).
    let err = decode::<VisitorClient>(r#"{"type":"auth","token":"t"}"#).expect_err("auth");
    assert!(err.0.contains("unknown variant"), "{err}");
    let err = decode::<AgentClient>(r#"{"type":"send","client_msg_id":"a","text":"x"}"#)
        .expect_err("send");
    assert!(err.0.contains("unknown variant"), "{err}");
}

#[test]
fn the_contract_chatflow_object_and_its_enum_values() {
    let c: Chatflow = decode(CHATFLOW).expect("chatflow");
    assert_eq!(value(&encode(&c)), value(CHATFLOW_ENCODED));
    for (when, expected) in [
        ("first_message", CaptureWhen::FirstMessage),
        ("no_reply", CaptureWhen::NoReply),
        ("never", CaptureWhen::Never),
    ] {
        let c: Chatflow =
            decode(&format!(r#"{{"email_capture":{{"when":"{when}"}}}}"#)).expect("when value");
        assert_eq!(c.email_capture.when, expected);
    }
    for (mode, expected) in [
        ("off", AwayMode::Off),
        ("always", AwayMode::Always),
        ("no_agents_online", AwayMode::NoAgentsOnline),
        ("outside_hours", AwayMode::OutsideHours),
    ] {
        let c: Chatflow =
            decode(&format!(r#"{{"away":{{"mode":"{mode}"}}}}"#)).expect("mode value");
        assert_eq!(c.away.mode, expected);
    }
}

#[test]
fn a_partial_chatflow_gets_the_defaults() {
    let defaults = Chatflow {
        email_capture: EmailCapture {
            when: CaptureWhen::NoReply,
            delay_secs: 60,
            message: None,
        },
        away: Away {
            mode: AwayMode::Off,
            message: None,
        },
        follow_up: FollowUp {
            enabled: true,
            delay_secs: 120,
        },
        hours: None,
    };
    assert_eq!(Chatflow::default(), defaults);
    assert_eq!(decode::<Chatflow>("{}").expect("empty"), defaults);
    assert_eq!(
        value(&encode(&defaults)),
        json!({
            "email_capture": {"when": "no_reply", "delay_secs": 60, "message": null},
            "away": {"mode": "off", "message": null},
            "follow_up": {"enabled": true, "delay_secs": 120}
        })
    );

    let c: Chatflow = decode(
        r#"{"email_capture":{"when":"never"},"away":{"message":"Back at 9"},"follow_up":{"enabled":false}}"#,
    )
    .expect("partial");
    assert_eq!(c.email_capture.when, CaptureWhen::Never);
    assert_eq!(c.email_capture.delay_secs, 60);
    assert_eq!(c.away.mode, AwayMode::Off);
    assert_eq!(c.away.message.as_deref(), Some("Back at 9"));
    assert_eq!(
        c.follow_up,
        FollowUp {
            enabled: false,
            delay_secs: 120
        }
    );

    // Inside a frame, a missing chatflow field is the same as an empty one.
    let f: AgentClient =
        decode(r#"{"type":"update_chatflow","inbox":"default","chatflow":{"email_capture":{"delay_secs":5}}}"#)
            .expect("frame");
    let AgentClient::UpdateChatflow { chatflow, .. } = f else {
        panic!("wrong variant")
    };
    assert_eq!(chatflow.email_capture.delay_secs, 5);
    assert_eq!(chatflow.email_capture.when, CaptureWhen::NoReply);
    assert_eq!(chatflow.follow_up, FollowUp::default());
}

/// Adds `"zz_unknown"` fields to every object in `v`, at every depth.
fn with_unknown_fields(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for child in map.values_mut() {
                with_unknown_fields(child);
            }
            map.insert(
                "zz_unknown".into(),
                json!({"nested": [1, "two", null, {"three": 3.5}], "type": "not_a_type"}),
            );
        }
        Value::Array(items) => items.iter_mut().for_each(with_unknown_fields),
        _ => {}
    }
}

#[test]
fn unknown_fields_are_ignored_at_every_depth() {
    for ex in EXAMPLES {
        let mut grown = value(ex.json);
        with_unknown_fields(&mut grown);
        let grown = grown.to_string();
        let plain = decode_example(ex);
        let fake = Example {
            name: ex.name,
            side: ex.side,
            json: Box::leak(grown.into_boxed_str()),
            encoded: None,
        };
        assert_eq!(decode_example(&fake), plain, "example {}", ex.name);
    }
}

#[test]
fn a_missing_required_field_is_named() {
    let cases: &[(&str, &str)] = &[
        (r#"{"client_msg_id":"a","text":"x"}"#, "type"),
        (r#"{"type":"send","client_msg_id":"a"}"#, "text"),
        (r#"{"type":"send","text":"x"}"#, "client_msg_id"),
        (r#"{"type":"submit_email"}"#, "email"),
    ];
    for (text, field) in cases {
        let err = decode::<VisitorClient>(text).expect_err(text);
        assert!(
            err.0.contains(&format!("missing field `{field}`")),
            "{text}: {err}"
        );
    }
    let cases: &[(&str, &str)] = &[
        (
            r#"{"type":"create_contact","conversation_id":"c","email":"e","first_name":"A"}"#,
            "last_name",
        ),
        (r#"{"type":"update_chatflow","chatflow":{}}"#, "inbox"),
    ];
    for (text, field) in cases {
        let err = decode::<AgentClient>(text).expect_err(text);
        assert!(
            err.0.contains(&format!("missing field `{field}`")),
            "{text}: {err}"
        );
    }
    // Inside a nested object.
    let text = r#"{"type":"message","message":{"id":"m","conversation_id":"c","author":{"kind":"agent"},"text":"x","at":1}}"#;
    let err = decode::<VisitorServer>(text).expect_err("no seq");
    assert!(err.0.contains("missing field `seq`"), "{err}");
}

#[test]
fn optional_fields_may_be_left_out() {
    let f: VisitorClient = decode(r#"{"type":"hello"}"#).expect("bare hello");
    assert_eq!(
        f,
        VisitorClient::Hello {
            visitor_token: None,
            resume_after: None,
            page: None
        }
    );
    let f: VisitorClient = decode(r#"{"type":"history"}"#).expect("bare history");
    assert_eq!(
        f,
        VisitorClient::History {
            before: None,
            limit: None
        }
    );
    let f: AgentClient = decode(r#"{"type":"open","conversation_id":"c"}"#).expect("bare open");
    assert_eq!(
        f,
        AgentClient::Open {
            conversation_id: "c".into(),
            before: None,
            limit: None
        }
    );
    // [ext] An `auth` without a token (or with a null one) signs in by the cookie.
    for text in [r#"{"type":"auth"}"#, r#"{"type":"auth","token":null}"#] {
        let f: AgentClient = decode(text).expect(text);
        assert_eq!(
            f,
            AgentClient::Auth {
                token: None,
                summaries: SummaryUpdates::EveryMessage
            }
        );
        assert_eq!(encode(&f), r#"{"type":"auth"}"#);
    }
    let f: VisitorServer =
        decode(r#"{"type":"error","code":"internal","message":"m"}"#).expect("no ref");
    assert_eq!(
        f,
        VisitorServer::Error(ErrorFrame::new(ErrorCode::Internal, "m"))
    );
}

#[test]
fn an_unknown_type_fails() {
    for text in [
        r#"{"type":"nope"}"#,
        r#"{"type":"Send","client_msg_id":"a","text":"x"}"#,
        r#"{"type":"","text":"x"}"#,
        r#"{"type":7}"#,
        r#"{"type":null}"#,
    ] {
        let err = decode::<VisitorClient>(text).expect_err(text);
        assert!(
            err.0.starts_with("frame does not match the protocol"),
            "{text}: {err}"
        );
        assert!(decode::<AgentClient>(text).is_err(), "{text}");
        assert!(decode::<VisitorServer>(text).is_err(), "{text}");
        assert!(decode::<AgentServer>(text).is_err(), "{text}");
    }
    let err = decode::<VisitorClient>(r#"{"type":"nope"}"#).expect_err("nope");
    assert_eq!(
        err.0,
        "frame does not match the protocol: unknown variant, expected one of `hello`, `send`, `submit_email`, `history`, `typing`, `seen`"
    );
}

#[test]
fn text_that_is_not_a_json_object_fails() {
    for text in ["", "hello", "{", r#"{"type":"send""#, "[1,2]", "null", "42"] {
        let err = decode::<VisitorClient>(text).expect_err(text);
        assert!(err.0.starts_with("frame "), "{text}: {err}");
    }
    let err = decode::<VisitorClient>("{not json").expect_err("syntax");
    assert_eq!(err.0, "frame is not valid JSON");
    // serde alone would read these arrays as a `send` and a `hello`.
    for text in [r#"["send","a","x"]"#, r#" ["hello"]"#] {
        let err = decode::<VisitorClient>(text).expect_err(text);
        assert_eq!(
            err.0,
            "frame does not match the protocol: a frame is a JSON object"
        );
    }
    let err = decode::<VisitorClient>(r#"["send","a""#).expect_err("both");
    assert_eq!(err.0, "frame is not valid JSON");
    // Leading JSON whitespace is fine.
    assert!(decode::<VisitorClient>(" \r\n\t{\"type\":\"hello\"}").is_ok());
}

#[test]
fn error_codes_serialize_snake_case() {
    // In the contract's order.
    let contract = [
        "bad_frame",
        "not_authenticated",
        "invalid_email",
        "invalid_name",
        "message_too_long",
        "empty_message",
        "rate_limited",
        "not_found",
        "forbidden",
        "contact_not_found",
        "contact_exists",
        "internal",
    ];
    assert_eq!(ErrorCode::ALL.len(), contract.len());
    for (code, wire) in ErrorCode::ALL.iter().zip(contract) {
        assert_eq!(serde_json::to_value(code).expect("code"), json!(wire));
        assert_eq!(code.as_str(), wire);
        let back: ErrorCode = serde_json::from_value(json!(wire)).expect("decodes");
        assert_eq!(back, *code);
    }
}

#[test]
fn ref_serializes_as_ref() {
    let f = ErrorFrame::new(ErrorCode::RateLimited, "slow down").with_ref(Some("m-1".into()));
    let v = value(&encode(&VisitorServer::Error(f.clone())));
    assert_eq!(
        v,
        json!({"type":"error","code":"rate_limited","message":"slow down","ref":"m-1"})
    );
    let v = value(&encode(&AgentServer::Error(f.with_ref(None))));
    assert_eq!(
        v,
        json!({"type":"error","code":"rate_limited","message":"slow down","ref":null})
    );
    assert!(v.get("reference").is_none());
}

#[test]
fn close_codes_match_the_contract() {
    assert_eq!(close::BAD_TOKEN, 4001);
    assert_eq!(close::ORIGIN_NOT_ALLOWED, 4003);
    assert_eq!(close::HELLO_TIMEOUT, 4008);
    assert_eq!(close::TOO_BIG, 1009);
    // Outside the contract: the standard "going away", and our extension.
    assert_eq!(close::GOING_AWAY, 1001);
    assert_eq!(close::TOO_SLOW, 4029);
    assert_eq!(close::ACCESS_CHANGED, 4010);
    assert_eq!(close::TRY_AGAIN_LATER, 1013);
    assert_eq!(close::MESSAGE_TIMEOUT, 1008);
    assert_eq!(PROTOCOL_VERSION, 1);
}

#[test]
fn extensions_round_trip_and_stay_optional() {
    // `SummaryVisitor.page`: left out when unknown, carried when known.
    let mut s: Summary = decode(
        r#"{"id":"c","inbox":"default","visitor":{"id":"v","label":"Unknown visitor","online":true,"contact":null},"last_message":null,"created_at":1,"updated_at":2}"#,
    )
    .expect("summary");
    assert_eq!(s.visitor.page, None);
    assert!(value(&encode(&s))["visitor"].get("page").is_none());
    s.visitor.page = Some(Page {
        url: Some("https://shop.example.com/".into()),
        title: Some("Shop".into()),
    });
    let v = value(&encode(&s));
    assert_eq!(
        v["visitor"]["page"],
        json!({"url":"https://shop.example.com/","title":"Shop"})
    );
    assert_eq!(decode::<Summary>(&v.to_string()).expect("again"), s);

    // `welcome.email_prompt`: absent (the contract's welcome) unless a prompt is open.
    let w = r#"{"type":"welcome","protocol":1,"visitor_token":"t","visitor_id":"v","conversation_id":"c","messages":[],"has_more":false,"email":null,"away":{"active":false,"message":null}}"#;
    let VisitorServer::Welcome(mut welcome) = decode(w).expect("welcome") else {
        panic!("not a welcome");
    };
    assert_eq!(welcome.email_prompt, None);
    assert!(value(&encode(&VisitorServer::Welcome(welcome.clone())))
        .get("email_prompt")
        .is_none());
    welcome.email_prompt = Some("Your email?".into());
    let v = value(&encode(&VisitorServer::Welcome(welcome.clone())));
    assert_eq!(v["email_prompt"], "Your email?");
    assert_eq!(
        decode::<VisitorServer>(&v.to_string()).expect("again"),
        VisitorServer::Welcome(welcome)
    );

    // `history.before` null: the newest page.
    let f: VisitorClient =
        decode(r#"{"type":"history","before":null,"limit":20}"#).expect("null before");
    assert_eq!(
        f,
        VisitorClient::History {
            before: None,
            limit: Some(20)
        }
    );
}

/// Frames whose bad values are one distinctive marker: the error must not contain it.
#[test]
fn decode_errors_never_echo_the_input() {
    const M: &str = "SECRET-7f3a";
    let cases = [
        format!(r#"{{"type":"{M}"}}"#),
        format!(r#"{{"type":"{M}, expected evil `x`"}}"#),
        format!(r#"{{"type":"send","client_msg_id":"a","text":["{M}"]}}"#),
        format!(r#"{{"type":"send","client_msg_id":{{"{M}":1}},"text":"x"}}"#),
        format!(r#"{{"type":"history","before":"{M}"}}"#),
        format!(r#"{{"type":"history","before":"a\", expected {M}"}}"#),
        format!(r#"{{"type":"hello","page":"{M}"}}"#),
        format!(r#"{{"type":"hello","resume_after":-{M}}}"#),
        format!(r#"{{"{M}":"send"}}"#),
        format!(r#"["{M}"]"#),
        format!(r#""{M}""#),
        format!(r#"{{"type":"send","client_msg_id":"a","text":"{M}""#),
        format!(
            r#"{{"type":"update_chatflow","inbox":"x","chatflow":{{"away":{{"mode":"{M}"}}}}}}"#
        ),
        format!(
            r#"{{"type":"update_chatflow","inbox":"x","chatflow":{{"email_capture":{{"delay_secs":"{M}"}}}}}}"#
        ),
    ];
    for text in &cases {
        for err in [
            decode::<VisitorClient>(text).err(),
            decode::<VisitorServer>(text).err(),
            decode::<AgentClient>(text).err(),
            decode::<AgentServer>(text).err(),
        ]
        .into_iter()
        .flatten()
        {
            assert!(!err.0.contains(M), "{text} echoed in: {err}");
            assert!(!err.0.contains("evil"), "{text} echoed in: {err}");
        }
    }
    // Numbers and booleans too: serde would quote them in backticks.
    for text in [
        r#"{"type":"history","before":-987654321}"#,
        r#"{"type":"history","before":987654321.5}"#,
        r#"{"type":"history","limit":98765432109}"#,
        r#"{"type":"send","client_msg_id":true,"text":"x"}"#,
    ] {
        let err = decode::<VisitorClient>(text).expect_err(text);
        assert!(!err.0.contains("98765"), "{text} echoed in: {err}");
        assert!(!err.0.contains("true"), "{text} echoed in: {err}");
        assert!(err.0.contains("invalid "), "{text}: {err}");
    }
    // What is kept: the kind of value and what was expected, for the developer.
    let err = decode::<VisitorClient>(r#"{"type":"history","before":"51"}"#).expect_err("str");
    assert_eq!(
        err.0,
        "frame does not match the protocol: invalid type: string, expected u64"
    );
}

#[test]
fn wrong_types_fail_with_bad_frame_wording() {
    for text in [
        r#"{"type":"send","client_msg_id":1,"text":"x"}"#,
        r#"{"type":"send","client_msg_id":"a","text":null}"#,
        r#"{"type":"history","before":-1}"#,
        r#"{"type":"history","limit":1e400}"#,
        r#"{"type":"history","limit":4294967296}"#,
        r#"{"type":"hello","page":"https://example.com/"}"#,
        r#"{"type":"hello","visitor_token":{}}"#,
        r#"{"type":"send","client_msg_id":"a","text":"x","text":"y"}"#,
        r#"{"type":"send","type":"send","client_msg_id":"a","text":"x"}"#,
    ] {
        let err = decode::<VisitorClient>(text).expect_err(text);
        assert!(err.0.starts_with("frame "), "{text}: {err}");
    }
}

/// True when every field of `shown` is in `full` with the same value (`full` may have more).
fn is_subset(shown: &Value, full: &Value) -> bool {
    match (shown, full) {
        (Value::Object(a), Value::Object(b)) => a
            .iter()
            .all(|(k, v)| b.get(k).is_some_and(|w| is_subset(v, w))),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(v, w)| is_subset(v, w))
        }
        _ => shown == full,
    }
}

/// Decodes `v` as `T` and checks that no field shown was lost or changed on the way back:
/// a misspelled field would decode (unknown fields are ignored) but not survive.
fn survives<T: DeserializeOwned + Serialize>(v: &Value) -> bool {
    decode::<T>(&v.to_string()).is_ok_and(|t| is_subset(v, &value(&encode(&t))))
}

/// PROTOCOL.md is the project's reference: every JSON it shows must be real.
#[test]
fn every_json_block_of_protocol_md_is_real() {
    let doc = include_str!("../PROTOCOL.md");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim()) {
            (None, "```json") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "unclosed json block");
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut values = 0;
    for block in &blocks {
        for v in serde_json::Deserializer::from_str(block).into_iter::<Value>() {
            let v = v.unwrap_or_else(|e| panic!("PROTOCOL.md: bad JSON ({e}) in:\n{block}"));
            values += 1;
            let ok = match v.get("type").and_then(Value::as_str) {
                Some(t) => {
                    let sides = [
                        (
                            format!("{:?}", Side::VisitorClient),
                            survives::<VisitorClient>(&v),
                        ),
                        (
                            format!("{:?}", Side::VisitorServer),
                            survives::<VisitorServer>(&v),
                        ),
                        (
                            format!("{:?}", Side::AgentClient),
                            survives::<AgentClient>(&v),
                        ),
                        (
                            format!("{:?}", Side::AgentServer),
                            survives::<AgentServer>(&v),
                        ),
                    ];
                    let mut any = false;
                    for (side, ok) in sides {
                        if ok {
                            seen.insert((side, t.to_string()));
                            any = true;
                        }
                    }
                    any
                }
                None => {
                    survives::<Message>(&v)
                        || survives::<Summary>(&v)
                        || survives::<Contact>(&v)
                        || survives::<Chatflow>(&v)
                        || survives::<TeamAgent>(&v)
                        || survives::<TeamInbox>(&v)
                        || survives::<WidgetSettings>(&v)
                        || survives::<Hours>(&v)
                        || survives::<CannedReply>(&v)
                }
            };
            assert!(
                ok,
                "PROTOCOL.md: not a frame or object of the protocol: {v}"
            );
        }
    }
    assert!(values >= 30, "only {values} JSON values in PROTOCOL.md");
    for (side, types) in CONTRACT_TYPES {
        for t in *types {
            assert!(
                seen.contains(&(format!("{side:?}"), t.to_string())),
                "PROTOCOL.md shows no {t} frame for {side:?}"
            );
        }
    }
}

/// `update_agent.display_name` has three states: absent (unchanged), null (visitors see
/// `name`) and a string; each survives a round trip.
#[test]
fn update_agent_tells_an_absent_display_name_from_a_null_one() {
    let display = |text: &str| match decode::<AgentClient>(text) {
        Ok(AgentClient::UpdateAgent { display_name, .. }) => display_name,
        other => panic!("not an update_agent: {other:?}"),
    };
    let absent = r#"{"type":"update_agent","agent_id":"a"}"#;
    let null = r#"{"type":"update_agent","agent_id":"a","display_name":null}"#;
    let set = r#"{"type":"update_agent","agent_id":"a","display_name":"Ann"}"#;
    assert_eq!(display(absent), None);
    assert_eq!(display(null), Some(None));
    assert_eq!(display(set), Some(Some("Ann".into())));
    for text in [absent, null, set] {
        let again = encode(&decode::<AgentClient>(text).expect("decodes"));
        assert_eq!(value(&again), value(text));
    }
}
