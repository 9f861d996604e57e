//! Follow-up emails to visitors who left before reading agent replies.
//! (Being built under issue 6; deadlines of these kinds are kept until then.)

use uuid::Uuid;

use crate::app::App;
use crate::store::keys::DeadlineKind;

pub fn fire(_app: &App, kind: DeadlineKind, subject: Uuid, due: u64) {
    tracing::debug!(?kind, %subject, due, "follow-up deadline fell due");
}
