//! Typing indicators, per connection: never stored, limited, and ending by themselves.
//!
//! [`Typing::frame`] takes a connection's `typing` frame and says what to tell (through
//! `fanout`): at most `Limits::typing` frames are forwarded (a token bucket per
//! connection; more are dropped silently), and a state not renewed within
//! `Limits::typing_expiry` ends by itself
//! ([`Typing::expire`], at [`Typing::deadline`]), as it does when the typist's message is
//! sent or their connection closes ([`Typing::stop`]); an ending is told as
//! `active: false`. A pure state machine over an injected `Instant`: it never touches
//! the store, the hub or a socket.

use std::time::Instant;

use crate::config::{Limits, Rate};
use crate::hub::VisitorKey;
use crate::ids::ConversationId;

/// Where someone is typing: a conversation, and whose it is (its visitor, its inbox).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub conversation: ConversationId,
    pub visitor: VisitorKey,
}

impl Place {
    pub fn inbox(&self) -> &str {
        &self.visitor.inbox
    }
}

/// What to tell: typing at `place` started (or was renewed), or ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Told {
    pub place: Place,
    pub active: bool,
}

/// One connection's typing: its rate bucket and the state it is in. Small while idle
/// (every connection has one): the active state is boxed.
#[derive(Debug, Default)]
pub struct Typing {
    /// The bucket's theoretical arrival time (GCRA): full again once it has passed.
    tat: Option<Instant>,
    active: Option<Box<(Place, Instant)>>,
}

impl Typing {
    /// A `typing` frame at `place` at `now`: what to tell, in order (nothing when it is
    /// over `rate`, or says `active: false` where nothing is active). Starting at
    /// another place ends the one before. A stop of the active state always passes (and
    /// takes no token): there is one per start, so it cannot flood, and dropping it
    /// would leave the others reading "typing…" until the state expires.
    pub fn frame(
        &mut self,
        place: Place,
        active: bool,
        now: Instant,
        limits: &Limits,
    ) -> Vec<Told> {
        let expiry = limits.typing_expiry;
        let here = self.active.as_ref().is_some_and(|a| a.0 == place);
        if !active && here {
            return self.stop().into_iter().collect();
        }
        if !self.admit(now, limits.typing) {
            return Vec::new();
        }
        let mut told = Vec::new();
        if !here && active {
            told.extend(self.stop());
        }
        if active {
            self.active = Some(Box::new((place.clone(), now + expiry)));
            told.push(Told {
                place,
                active: true,
            });
        } else if here {
            told.extend(self.stop());
        }
        told
    }

    /// When the active state ends by itself, if one is active.
    pub fn deadline(&self) -> Option<Instant> {
        self.active.as_ref().map(|a| a.1)
    }

    /// The state ended by itself, if it was due by `now`.
    pub fn expire(&mut self, now: Instant) -> Option<Told> {
        match self.deadline() {
            Some(due) if due <= now => self.stop(),
            _ => None,
        }
    }

    /// Ends the active state (the typist's message was sent, or they left).
    pub fn stop(&mut self) -> Option<Told> {
        self.active.take().map(|a| Told {
            place: a.0,
            active: false,
        })
    }

    /// Ends the active state if it is at `conversation`.
    pub fn stop_in(&mut self, conversation: ConversationId) -> Option<Told> {
        let here = self
            .active
            .as_ref()
            .is_some_and(|a| a.0.conversation == conversation);
        if here {
            self.stop()
        } else {
            None
        }
    }

    /// One token from the bucket: `rate.count` at once, then one every
    /// `rate.window / rate.count`. A count of 0 means no limit.
    fn admit(&mut self, now: Instant, rate: Rate) -> bool {
        if rate.count == 0 {
            return true;
        }
        let step = rate.window / rate.count;
        let tolerance = rate.window.saturating_sub(step);
        let start = self.tat.map_or(now, |t| t.max(now));
        if start.duration_since(now) > tolerance {
            return false;
        }
        self.tat = Some(start + step);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const EXPIRY: Duration = Duration::from_secs(6);

    /// The protocol's: 2 a second, 6 s.
    fn limits() -> Limits {
        Limits::default()
    }

    fn place(n: u128) -> Place {
        Place {
            conversation: ConversationId::from_uuid(uuid::Uuid::from_u128(n)),
            visitor: VisitorKey {
                visitor: crate::ids::VisitorId::from_uuid(uuid::Uuid::from_u128(n + 100)),
                inbox: "default".into(),
            },
        }
    }

    fn told(n: u128, active: bool) -> Told {
        Told {
            place: place(n),
            active,
        }
    }

    #[test]
    fn a_burst_is_cut_to_the_rate_and_the_bucket_refills() {
        let (mut t, start) = (Typing::default(), Instant::now());
        let forwarded = (0..50)
            .filter(|_| !t.frame(place(1), true, start, &limits()).is_empty())
            .count();
        assert_eq!(forwarded, 2);
        let later = start + Duration::from_millis(500);
        assert_eq!(t.frame(place(1), true, later, &limits()), [told(1, true)]);
        assert!(t.frame(place(1), true, later, &limits()).is_empty());
        let unlimited = Limits {
            typing: Rate::new(0, Duration::from_secs(1)),
            ..limits()
        };
        assert_eq!(t.frame(place(1), true, later, &unlimited), [told(1, true)]);
    }

    #[test]
    fn a_stop_after_a_burst_still_passes_once() {
        let (mut t, start) = (Typing::default(), Instant::now());
        for _ in 0..50 {
            t.frame(place(1), true, start, &limits());
        }
        // The bucket is empty, yet the stop is told, once.
        assert_eq!(t.frame(place(1), false, start, &limits()), [told(1, false)]);
        assert!(t.frame(place(1), false, start, &limits()).is_empty());
        assert_eq!(t.deadline(), None);
    }

    #[test]
    fn a_state_not_renewed_ends_by_itself() {
        let (mut t, start) = (Typing::default(), Instant::now());
        assert_eq!(t.frame(place(1), true, start, &limits()), [told(1, true)]);
        assert_eq!(t.deadline(), Some(start + EXPIRY));
        assert_eq!(t.expire(start + EXPIRY - Duration::from_millis(1)), None);
        // Renewed: the end moves.
        let renewed = start + Duration::from_secs(4);
        t.frame(place(1), true, renewed, &limits());
        assert_eq!(t.expire(start + EXPIRY), None);
        assert_eq!(t.expire(renewed + EXPIRY), Some(told(1, false)));
        assert_eq!((t.deadline(), t.expire(renewed + EXPIRY * 2)), (None, None));
    }

    #[test]
    fn stopping_says_false_once_and_only_where_it_was_typing() {
        let (mut t, now) = (Typing::default(), Instant::now());
        assert!(
            t.frame(place(1), false, now, &limits()).is_empty(),
            "nothing active"
        );
        let now = now + Duration::from_secs(1);
        t.frame(place(1), true, now, &limits());
        assert_eq!(t.stop_in(place(2).conversation), None);
        assert_eq!(t.stop_in(place(1).conversation), Some(told(1, false)));
        assert_eq!(t.stop(), None);
        let now = now + Duration::from_secs(1);
        t.frame(place(1), true, now, &limits());
        assert_eq!(t.frame(place(1), false, now, &limits()), [told(1, false)]);
        assert_eq!(t.deadline(), None);
    }

    #[test]
    fn typing_elsewhere_ends_the_state_before() {
        let (mut t, now) = (Typing::default(), Instant::now());
        t.frame(place(1), true, now, &limits());
        assert_eq!(
            t.frame(place(2), true, now, &limits()),
            [told(1, false), told(2, true)]
        );
        let now = now + Duration::from_secs(1);
        assert!(
            t.frame(place(1), false, now, &limits()).is_empty(),
            "not typing there"
        );
        assert_eq!(t.stop(), Some(told(2, false)));
    }
}
