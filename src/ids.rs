//! The ids of what frontdesk keeps: one type per kind of thing, each a UUID.
//!
//! Records hold these types, so a conversation id cannot be passed where a visitor id is
//! meant and no code re-parses a string it has already checked. Each serializes as the
//! hyphenated UUID string (`serde(transparent)` over `Uuid`), exactly the JSON the
//! records have always had; on the wire (`widget-protocol`) ids stay strings, and the
//! sessions convert at the edge with [`parse`](ConversationId::parse), which answers
//! None for anything that is not a UUID, so the caller reports it as `not_found`, the
//! same as an unknown id. Keys in the engine are the 16 raw bytes (`store::keys`).

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $new:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, unique id.
            pub fn generate() -> Self {
                $name(Uuid::$new())
            }

            pub const fn from_uuid(id: Uuid) -> Self {
                $name(id)
            }

            pub const fn uuid(self) -> Uuid {
                self.0
            }

            /// A client-supplied or stored id; None unless it is a UUID.
            pub fn parse(s: &str) -> Option<Self> {
                Uuid::parse_str(s).ok().map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                $name(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.to_string()
            }
        }
    };
}

id_type!(
    /// A conversation: one visitor in one inbox. Time-ordered (UUID v7).
    ConversationId,
    now_v7
);
id_type!(
    /// A visitor, as their identity token names them.
    VisitorId,
    new_v4
);
id_type!(
    /// A contact: a person with an email, linked to visitors.
    ContactId,
    new_v4
);
id_type!(
    /// A team member who answers conversations.
    AgentId,
    new_v4
);
id_type!(
    /// An email in the outbox. Time-ordered (UUID v7).
    OutboxId,
    now_v7
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_encode_as_the_hyphenated_string() {
        let u = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let id = ConversationId::from_uuid(u);
        let json = serde_json::to_string(&id).expect("encodes");
        assert_eq!(json, format!("\"{u}\""));
        assert_eq!(
            serde_json::from_str::<ConversationId>(&json).expect("decodes"),
            id
        );
        assert_eq!(String::from(id), u.to_string());
        assert_eq!(ConversationId::parse(&id.to_string()), Some(id));
    }

    #[test]
    fn anything_but_a_uuid_does_not_parse() {
        for s in ["", "nope", "123", "0123456789abcdef0123456789abcdeg"] {
            assert_eq!(VisitorId::parse(s), None, "{s}");
        }
        assert!(serde_json::from_str::<VisitorId>("\"nope\"").is_err());
    }
}
