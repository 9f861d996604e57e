//! Hostile text frames: valid UTF-8, anything at all inside. Each kind of hostility is
//! a function of its own; `hostile_text` picks one with the test's seeded generator.

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Map, Value};

use crate::support::seed::pick;

const CLIENT_TYPES: [&str; 12] = [
    "hello",
    "send",
    "submit_email",
    "history",
    "auth",
    "open",
    "reply",
    "lookup_contact",
    "assign_visitor",
    "create_contact",
    "get_chatflow",
    "update_chatflow",
];
const FIELDS: [&str; 20] = [
    "type",
    "visitor_token",
    "resume_after",
    "page",
    "client_msg_id",
    "text",
    "email",
    "before",
    "limit",
    "token",
    "conversation_id",
    "first_name",
    "last_name",
    "inbox",
    "chatflow",
    "url",
    "title",
    "__proto__",
    "constructor",
    "",
];
const NUMBERS: [&str; 12] = [
    "1e400",
    "-1e400",
    "-1",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "1.5",
    "-0",
    "1e-400",
    "9007199254740993",
    "0x10",
    "NaN",
    "Infinity",
];

/// A string with whatever a hostile client likes: controls, bidi overrides, NUL, quotes,
/// astral characters, lone surrogates' neighbours; usually short, sometimes huge.
fn hostile_string(rng: &mut StdRng) -> String {
    const PIECES: [&str; 16] = [
        "a", "\0", "\u{1}", "\u{1f}", "\u{7f}", "\"", "\\", "\u{202e}", "\u{200b}", "\u{2028}",
        "\u{feff}", "😀", "日", "\r\n", "<script>", "%00",
    ];
    let n = if rng.gen_range(0..20) == 0 {
        rng.gen_range(1_000..8_000)
    } else {
        rng.gen_range(0..40)
    };
    (0..n).map(|_| *pick(rng, &PIECES)).collect()
}

fn hostile_value(rng: &mut StdRng, depth: usize) -> Value {
    match rng.gen_range(0..if depth > 3 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.gen::<bool>()),
        2 => match rng.gen_range(0..4) {
            0 => json!(rng.gen::<i64>()),
            1 => json!(u64::MAX),
            2 => json!(rng.gen::<f64>() * 1e300),
            _ => json!(rng.gen_range(-3..300)),
        },
        3 | 4 => json!(hostile_string(rng)),
        5 => Value::Array(
            (0..rng.gen_range(0..5))
                .map(|_| hostile_value(rng, depth + 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.gen_range(0..6))
                .map(|_| {
                    (
                        pick(rng, &FIELDS).to_string(),
                        hostile_value(rng, depth + 1),
                    )
                })
                .collect(),
        ),
    }
}

/// One hostile text message, valid UTF-8 and under 64 KiB.
pub(super) fn hostile_text(rng: &mut StdRng, conv: &str) -> String {
    loop {
        let t = hostile_text_any_size(rng, conv);
        if t.len() < 64 * 1024 {
            return t;
        }
    }
}

/// The start of a long text, for failure messages.
pub(super) fn excerpt(t: &str) -> String {
    t.chars().take(200).collect()
}

/// A hostile text of any size: a client type to dress it as, then one kind of hostility.
fn hostile_text_any_size(rng: &mut StdRng, conv: &str) -> String {
    let kind = *pick(rng, &CLIENT_TYPES);
    match rng.gen_range(0..10) {
        0 => any_json(rng),
        1 | 2 => random_fields(rng, kind, conv),
        3 => numbers_no_integer_holds(rng, kind, conv),
        4 => deep_nesting(rng),
        5 => broken_escapes(rng),
        6 => giant_string(rng, kind, conv),
        7 => mangled(rng, kind, conv),
        _ => unknown_field(rng, kind, conv),
    }
}

/// Any JSON at all.
fn any_json(rng: &mut StdRng) -> String {
    hostile_value(rng, 0).to_string()
}

/// A known type with random fields of random types.
fn random_fields(rng: &mut StdRng, kind: &str, conv: &str) -> String {
    let mut o = Map::new();
    o.insert("type".into(), json!(kind));
    for _ in 0..rng.gen_range(0..6) {
        o.insert(pick(rng, &FIELDS).to_string(), hostile_value(rng, 1));
    }
    if rng.gen() {
        o.insert("conversation_id".into(), json!(conv));
    }
    Value::Object(o).to_string()
}

/// Numbers no integer type holds, where integers belong.
fn numbers_no_integer_holds(rng: &mut StdRng, kind: &str, conv: &str) -> String {
    let field = *pick(rng, &["before", "limit", "resume_after", "delay_secs"]);
    let num = *pick(rng, &NUMBERS);
    format!(
        r#"{{"type":"{kind}","{field}":{num},"conversation_id":"{conv}","client_msg_id":"n","text":"t"}}"#
    )
}

/// Deep nesting, bare or where a string belongs.
fn deep_nesting(rng: &mut StdRng) -> String {
    let depth = rng.gen_range(10..30_000);
    let (open, close) = if rng.gen() {
        ("[", "]")
    } else {
        ("{\"a\":", "}")
    };
    let nested = format!("{}1{}", open.repeat(depth), close.repeat(depth));
    if nested.len() > 60_000 || rng.gen() {
        format!(
            "{}{}",
            "[".repeat(depth.min(30_000)),
            "]".repeat(depth.min(30_000))
        )
    } else {
        format!(r#"{{"type":"send","client_msg_id":"d","text":{nested}}}"#)
    }
}

/// Raw control characters and broken escapes inside strings (invalid JSON), or lone
/// surrogates in escapes.
fn broken_escapes(rng: &mut StdRng) -> String {
    let c = *pick(
        rng,
        &[
            "\u{0}", "\u{8}", "\n", "\u{1b}", "\\ud800", "\\udfff", "\\u12", "\\x41", "\\",
        ],
    );
    format!(r#"{{"type":"send","client_msg_id":"c","text":"a{c}b"}}"#)
}

/// A giant string under the frame limit, in one field.
fn giant_string(rng: &mut StdRng, kind: &str, conv: &str) -> String {
    let field = *pick(
        rng,
        &[
            "text",
            "email",
            "client_msg_id",
            "type",
            "conversation_id",
            "visitor_token",
            "first_name",
            "inbox",
        ],
    );
    let n = rng.gen_range(10_000..60_000);
    let mut o = Map::new();
    o.insert("type".into(), json!(kind));
    o.insert("client_msg_id".into(), json!("g"));
    o.insert("conversation_id".into(), json!(conv));
    o.insert(field.into(), json!("é".repeat(n / 2)));
    Value::Object(o).to_string()
}

/// A valid frame truncated, padded, doubled or otherwise mangled, or no object at all.
fn mangled(rng: &mut StdRng, kind: &str, conv: &str) -> String {
    let valid = json!({"type":kind,"client_msg_id":"t","text":"hi","conversation_id":conv,"email":"a@b.example","before":3,"limit":2}).to_string();
    match rng.gen_range(0..7) {
        0 => valid[..rng.gen_range(0..valid.len())].to_string(),
        1 => format!("{valid}garbage"),
        2 => format!("\u{feff}{valid}"),
        3 => format!("{valid}{valid}"),
        4 => valid.replacen("{", r#"{"type":"hello","#, 1),
        5 => (*pick(
            rng,
            &[
                "",
                " ",
                "null",
                "true",
                "0",
                "\"send\"",
                "[]",
                "{}",
                "{\"type\":null}",
            ],
        ))
        .to_string(),
        _ => String::from_utf8_lossy(
            &(0..rng.gen_range(1..200))
                .map(|_| rng.gen::<u8>())
                .collect::<Vec<_>>(),
        )
        .to_string(),
    }
}

/// A plausible frame with an unknown field: this may well be valid.
fn unknown_field(rng: &mut StdRng, kind: &str, conv: &str) -> String {
    let mut o = Map::new();
    o.insert("type".into(), json!(kind));
    for (k, v) in [
        ("client_msg_id", json!(format!("u{}", rng.gen::<u16>()))),
        ("text", json!("hello")),
        ("conversation_id", json!(conv)),
        ("email", json!(format!("x{}@example.com", rng.gen::<u16>()))),
        ("inbox", json!("default")),
        ("limit", json!(5)),
    ] {
        o.insert(k.into(), v);
    }
    o.insert(hostile_string(rng), hostile_value(rng, 2));
    Value::Object(o).to_string()
}
