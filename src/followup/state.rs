//! The follow-up email's state machine: what a visitor has seen of a conversation, and
//! the one email pending for the agent replies after that.
//!
//! [`FollowUp::step`] is a pure function from the state and an event to the new state
//! and at most one effect (arm or disarm the `FollowUp` deadline, or write the email).
//! The writes that carry the events (an agent's reply and a visitor's message in
//! `conversations`'s plans, the visitor's `seen` in `reading`'s, the welcome, a reply
//! reached or missed and the deadline in the store's `follow_up_event` and
//! `follow_up_due`) call it and apply the effect;
//! none of them decides anything about follow-ups itself.

use widget_protocol::Millis;

use crate::deadlines::Change;
use crate::store::records::ConversationRecord;

/// A conversation's follow-up state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowUp {
    /// The highest seq the visitor is known to have seen.
    pub seen_seq: u64,
    /// When the email for the replies after `seen_seq` is due, if one is pending.
    pub due: Option<Millis>,
}

/// What happens to a conversation, as far as its follow-up is concerned. `last_seq` is
/// the conversation's last message after the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUpEvent {
    /// The visitor wrote, or read a message as it was stored: they see everything.
    VisitorRead { last_seq: u64 },
    /// An agent's reply `seq` was stored. `online`: the visitor has a connection (they
    /// see it live); `delay`: the inbox's follow-up delay, when follow-ups are on;
    /// `reachable`: the team has the visitor's email.
    AgentReplied {
        seq: u64,
        online: bool,
        delay: Option<Millis>,
        reachable: bool,
        now: Millis,
    },
    /// A `welcome`: the visitor sees every message up to `last_seq`.
    Welcomed { last_seq: u64 },
    /// Reply `seq`, stored while the visitor was offline, reached a connection of theirs.
    Reached { seq: u64, last_seq: u64 },
    /// The visitor said (`seen`) they have seen every message up to `seq`: a pending
    /// email keeps only the replies after it, and is cancelled when that is all.
    Seen { seq: u64, last_seq: u64 },
    /// Reply `seq`, stored as seen, reached none of their connections; `online`: they
    /// are back by now (their welcome had it).
    Missed {
        seq: u64,
        online: bool,
        delay: Millis,
        reachable: bool,
        now: Millis,
    },
    /// The deadline armed for `due` fell due.
    Due { due: Millis, last_seq: u64 },
}

/// What a session learns about the visitor and a conversation's replies, before the
/// write that finds the rest: [`FollowUpNews::event`] makes it an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUpNews {
    /// A `welcome` went to the visitor with every message.
    Welcomed,
    /// Reply `seq`, stored while the visitor was offline, reached a connection of theirs.
    Reached { seq: u64 },
    /// Reply `seq`, stored as seen, reached none of their connections; `delay`: the
    /// inbox's follow-up delay.
    Missed {
        seq: u64,
        delay: Millis,
        now: Millis,
    },
}

impl FollowUpNews {
    /// The event, given what the write finds: the conversation's last seq, whether the
    /// visitor is online now, and whether the team has their email (each asked only when
    /// the event needs it).
    pub fn event(
        self,
        last_seq: u64,
        online: impl FnOnce() -> bool,
        reachable: impl FnOnce() -> bool,
    ) -> FollowUpEvent {
        match self {
            FollowUpNews::Welcomed => FollowUpEvent::Welcomed { last_seq },
            FollowUpNews::Reached { seq } => FollowUpEvent::Reached { seq, last_seq },
            FollowUpNews::Missed { seq, delay, now } => {
                let online = online();
                FollowUpEvent::Missed {
                    seq,
                    online,
                    delay,
                    reachable: !online && reachable(),
                    now,
                }
            }
        }
    }
}

/// What the write that made a step must do besides storing the new state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUpEffect {
    /// Arm or disarm the `FollowUp` deadline.
    Deadline(Change),
    /// Write one email with the agent replies after `after` (nothing if there are none
    /// or the visitor cannot be mailed now).
    Email { after: u64 },
}

impl FollowUp {
    pub fn of(c: &ConversationRecord) -> FollowUp {
        FollowUp {
            seen_seq: c.seen_seq,
            due: c.follow_up_due,
        }
    }

    pub fn store(self, c: &mut ConversationRecord) {
        c.seen_seq = self.seen_seq;
        c.follow_up_due = self.due;
    }

    /// Whether a welcome has anything to record.
    pub fn has_unseen(self, last_seq: u64) -> bool {
        self.due.is_some() || self.seen_seq < last_seq
    }

    /// Whether the welcome of conversation `c` has anything to record.
    pub fn unseen_in(c: &ConversationRecord) -> bool {
        FollowUp::of(c).has_unseen(c.last_seq)
    }

    /// The follow-up's state machine. An event that does not apply leaves the state as
    /// it is, with no effect.
    pub fn step(self, event: FollowUpEvent) -> (FollowUp, Option<FollowUpEffect>) {
        use FollowUpEvent::*;
        match event {
            VisitorRead { last_seq } => (
                FollowUp {
                    seen_seq: last_seq,
                    ..self
                },
                None,
            ),
            AgentReplied {
                seq, online: true, ..
            } => (
                FollowUp {
                    seen_seq: seq,
                    ..self
                },
                None,
            ),
            AgentReplied {
                online: false,
                delay: Some(delay),
                reachable,
                now,
                ..
            } => self.arm(delay, reachable, now),
            AgentReplied { delay: None, .. } => (self, None),
            Welcomed { last_seq } => FollowUp {
                seen_seq: last_seq,
                ..self
            }
            .disarm(),
            // Delivered or said seen, a reply is seen: the same rule.
            Reached { seq, .. } | Seen { seq, .. } if self.seen_seq >= seq => (self, None),
            Reached { seq, last_seq } | Seen { seq, last_seq } => {
                let seen = FollowUp {
                    seen_seq: seq,
                    ..self
                };
                if seq >= last_seq {
                    seen.disarm()
                } else {
                    (seen, None)
                }
            }
            Missed { online: true, .. } => (self, None),
            Missed {
                seq,
                delay,
                reachable,
                now,
                ..
            } => FollowUp {
                seen_seq: self.seen_seq.min(seq.saturating_sub(1)),
                ..self
            }
            .arm(delay, reachable, now),
            Due { due, last_seq } if self.due == Some(due) => (
                FollowUp {
                    seen_seq: last_seq,
                    due: None,
                },
                Some(FollowUpEffect::Email {
                    after: self.seen_seq,
                }),
            ),
            Due { .. } => (self, None),
        }
    }

    /// An email `delay` after `now`, unless one is pending or the visitor has no address.
    fn arm(
        self,
        delay: Millis,
        reachable: bool,
        now: Millis,
    ) -> (FollowUp, Option<FollowUpEffect>) {
        if self.due.is_some() || !reachable {
            return (self, None);
        }
        let due = now.saturating_add(delay);
        (
            FollowUp {
                due: Some(due),
                ..self
            },
            Some(FollowUpEffect::Deadline(Change::Arm(due))),
        )
    }

    /// No email pending any more.
    fn disarm(self) -> (FollowUp, Option<FollowUpEffect>) {
        match self.due {
            Some(due) => (
                FollowUp { due: None, ..self },
                Some(FollowUpEffect::Deadline(Change::Disarm(due))),
            ),
            None => (self, None),
        }
    }
}

/// Applies `event` to a conversation's follow-up: whether it changed, what to do with
/// its `FollowUp` deadline (the store writes that with the conversation), and whether to
/// write the email.
pub fn apply(conv: &mut ConversationRecord, event: FollowUpEvent) -> Applied {
    let before = FollowUp::of(conv);
    let (next, effect) = before.step(event);
    next.store(conv);
    let mut out = Applied {
        changed: next != before,
        deadline: None,
        email_after: None,
    };
    match effect {
        Some(FollowUpEffect::Deadline(change)) => out.deadline = Some(change),
        Some(FollowUpEffect::Email { after }) => out.email_after = Some(after),
        None => {}
    }
    out
}

/// The outcome of [`apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub changed: bool,
    pub deadline: Option<Change>,
    /// Write the email for the agent replies after this seq.
    pub email_after: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::FollowUpEffect::{Deadline, Email};
    use super::FollowUpEvent::*;
    use super::*;

    const LAST: u64 = 5;
    const DUE: Millis = 9_000;
    const NOW: Millis = 100;
    const DELAY: Millis = 10;

    fn states() -> Vec<FollowUp> {
        let mut all = Vec::new();
        for seen_seq in [3, 4, LAST] {
            for due in [None, Some(DUE)] {
                all.push(FollowUp { seen_seq, due });
            }
        }
        all
    }

    fn events() -> Vec<FollowUpEvent> {
        let mut all = vec![
            VisitorRead { last_seq: LAST },
            Welcomed { last_seq: LAST },
            Reached {
                seq: 4,
                last_seq: LAST,
            },
            Reached {
                seq: LAST,
                last_seq: LAST,
            },
            Seen {
                seq: 4,
                last_seq: LAST,
            },
            Seen {
                seq: LAST,
                last_seq: LAST,
            },
            Due {
                due: DUE,
                last_seq: LAST,
            },
            Due {
                due: DUE + 1,
                last_seq: LAST,
            },
        ];
        for online in [false, true] {
            for reachable in [false, true] {
                for delay in [None, Some(DELAY)] {
                    all.push(AgentReplied {
                        seq: LAST,
                        online,
                        delay,
                        reachable,
                        now: NOW,
                    });
                }
                all.push(Missed {
                    seq: LAST,
                    online,
                    delay: DELAY,
                    reachable,
                    now: NOW,
                });
            }
        }
        all
    }

    /// The rules, written out per event: what each event does to any state.
    fn expected(s: FollowUp, event: FollowUpEvent) -> (FollowUp, Option<FollowUpEffect>) {
        let all_seen = |due| FollowUp {
            seen_seq: LAST,
            due,
        };
        let armed = |seen_seq| {
            (
                FollowUp {
                    seen_seq,
                    due: Some(NOW + DELAY),
                },
                Some(Deadline(Change::Arm(NOW + DELAY))),
            )
        };
        let disarm = s.due.map(|d| Deadline(Change::Disarm(d)));
        match event {
            VisitorRead { .. } => (all_seen(s.due), None),
            AgentReplied { online: true, .. } => (all_seen(s.due), None),
            AgentReplied {
                delay: Some(_),
                reachable: true,
                ..
            } if s.due.is_none() => armed(s.seen_seq),
            AgentReplied { .. } => (s, None),
            Welcomed { .. } => (all_seen(None), disarm),
            Reached { seq, .. } | Seen { seq, .. } if s.seen_seq >= seq => (s, None),
            Reached { seq: LAST, .. } | Seen { seq: LAST, .. } => (all_seen(None), disarm),
            Reached { seq, .. } | Seen { seq, .. } => (FollowUp { seen_seq: seq, ..s }, None),
            Missed { online: true, .. } => (s, None),
            Missed {
                reachable: true, ..
            } if s.due.is_none() => armed(s.seen_seq.min(LAST - 1)),
            Missed { .. } => (
                FollowUp {
                    seen_seq: s.seen_seq.min(LAST - 1),
                    ..s
                },
                None,
            ),
            Due { due, .. } if s.due == Some(due) => {
                (all_seen(None), Some(Email { after: s.seen_seq }))
            }
            Due { .. } => (s, None),
        }
    }

    #[test]
    fn every_state_and_every_event() {
        for state in states() {
            for event in events() {
                assert_eq!(
                    state.step(event),
                    expected(state, event),
                    "{state:?} on {event:?}"
                );
            }
        }
    }

    #[test]
    fn one_batch_of_replies_is_one_email_and_the_next_starts_fresh() {
        let replied = |seq| AgentReplied {
            seq,
            online: false,
            delay: Some(DELAY),
            reachable: true,
            now: NOW,
        };
        let start = FollowUp {
            seen_seq: 1,
            due: None,
        };
        let (s, effect) = start.step(replied(2));
        assert_eq!(effect, Some(Deadline(Change::Arm(NOW + DELAY))));
        let (s, effect) = s.step(replied(3));
        assert_eq!(
            (s.due, effect),
            (Some(NOW + DELAY), None),
            "one email pending"
        );
        let (s, effect) = s.step(Due {
            due: NOW + DELAY,
            last_seq: 3,
        });
        assert_eq!(effect, Some(Email { after: 1 }));
        assert_eq!(
            s,
            FollowUp {
                seen_seq: 3,
                due: None
            }
        );
        let (_, effect) = s.step(replied(4));
        assert!(
            matches!(effect, Some(Deadline(Change::Arm(_)))),
            "the next batch"
        );
    }

    #[test]
    fn a_reply_the_visitor_has_seen_is_never_mailed() {
        // Replies 2 and 3 to an offline visitor who had seen 1: one email pending.
        let pending = FollowUp {
            seen_seq: 1,
            due: Some(DUE),
        };
        let (s, effect) = pending.step(Seen {
            seq: 2,
            last_seq: 3,
        });
        assert_eq!((s.seen_seq, s.due, effect), (2, Some(DUE), None));
        let (_, effect) = s.step(Due {
            due: DUE,
            last_seq: 3,
        });
        assert_eq!(effect, Some(Email { after: 2 }), "only reply 3 is mailed");

        let (s, effect) = pending.step(Seen {
            seq: 3,
            last_seq: 3,
        });
        assert_eq!(effect, Some(Deadline(Change::Disarm(DUE))), "nothing left");
        assert_eq!(
            s,
            FollowUp {
                seen_seq: 3,
                due: None
            }
        );
        let (_, effect) = s.step(Due {
            due: DUE,
            last_seq: 3,
        });
        assert_eq!(effect, None, "the deadline finds nothing to mail");
        // Seen again, or less: nothing changes.
        assert_eq!(
            s.step(Seen {
                seq: 2,
                last_seq: 3
            }),
            (s, None)
        );
    }

    #[test]
    fn a_welcome_has_something_to_record_only_when_replies_are_unseen_or_mail_pending() {
        for s in states() {
            let (next, _) = s.step(Welcomed { last_seq: LAST });
            assert_eq!(s.has_unseen(LAST), next != s, "{s:?}");
        }
    }
}
