//! The [`Outbox`] over the key-value engine: an email is a row of `outbox` keyed by its
//! id, and its pending attempt a `Delivery` key of `deadlines`. Each call loads the
//! record, runs `mail::delivery`'s step on it and writes what the step says.

use async_trait::async_trait;
use widget_protocol::Millis;

use super::KvStore;
use crate::deadlines::{self, Change};
use crate::ids::OutboxId;
use crate::mail::{self, delivery, Begin, Delivery, Email, Ended, Step};
use crate::store::api::Outbox;
use crate::store::keys::{self, DeadlineKind};
use crate::store::records::OutboxRecord;
use crate::store::{Batch, Kv, StoreError, Tree};

fn get(kv: &dyn Kv, id: OutboxId) -> Result<Option<OutboxRecord>, StoreError> {
    crate::store::get_json(kv, Tree::Outbox, &keys::id(id))
}

/// Writes what a step does to email `id` into `b`; what the step tells the caller.
fn write_step<T>(b: &mut Batch, id: OutboxId, step: Step<T>) -> T {
    if let Some(r) = &step.record {
        b.put_json(Tree::Outbox, keys::id(id), r);
    }
    for change in step.deadlines {
        deadlines::apply(b, DeadlineKind::Delivery, id, change);
    }
    step.out
}

/// Adds `email` to the outbox in `b`, due at once. Its id and deadline, for the caller to
/// schedule once the batch is written.
pub(super) fn put_email(b: &mut Batch, email: Email, now: Millis) -> (OutboxId, Millis) {
    let (id, record) = mail::queued(email, now);
    b.put_json(Tree::Outbox, keys::id(id), &record);
    let due = now.max(0);
    deadlines::apply(b, DeadlineKind::Delivery, id, Change::Arm(due));
    (id, due)
}

#[async_trait]
impl Outbox for KvStore {
    async fn claim_delivery(
        &self,
        id: OutboxId,
        due: Millis,
        configured: bool,
        now: Millis,
    ) -> Result<Begin, StoreError> {
        self.writer
            .write(move |kv| {
                let mut b = Batch::default();
                let step = delivery::begin(get(kv, id)?, due, configured, now);
                let begin = write_step(&mut b, id, step);
                Ok((b, begin))
            })
            .await
    }

    async fn record_attempt(&self, id: OutboxId, ended: Ended) -> Result<Delivery, StoreError> {
        self.writer
            .write(move |kv| {
                let mut b = Batch::default();
                let step = delivery::record_outcome(get(kv, id)?, ended);
                let delivery = write_step(&mut b, id, step);
                Ok((b, delivery))
            })
            .await
    }

    fn outbox(&self) -> Result<Vec<OutboxRecord>, StoreError> {
        self.all(Tree::Outbox)
    }
}
