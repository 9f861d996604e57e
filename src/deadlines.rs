//! The deadline queue: one sleeper task for every pending deadline in the process.
//!
//! Deadlines are persisted by whoever sets them (in the same write as the state they
//! belong to) in the `deadlines` tree; this module keeps a sorted in-memory copy, sleeps
//! until the earliest, and hands due ones to their owner (`capture` for prompts,
//! `followup` for follow-up emails and deliveries). A `Notify` wakes it when an earlier
//! deadline arrives. Thousands of pending deadlines cost one task and one B-tree entry
//! each, not a task or a timer each. Stale entries (cancelled in the store) are
//! harmless: owners re-check the stored state when one fires.

use std::collections::BTreeSet;
use std::sync::Mutex;

use tokio::sync::Notify;
use uuid::Uuid;
use widget_protocol::Millis;

use crate::clock;
use crate::store::keys::{self, DeadlineKind};
use crate::store::{Batch, Tree};

pub type Entry = (Millis, DeadlineKind, Uuid);

/// What a state machine asks of its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Persist (and then schedule) a deadline at this time.
    Arm(Millis),
    /// Drop the persisted deadline of this time.
    Disarm(Millis),
}

/// Applies `change` to the `kind` deadline of `subject` with `b`, the write that sets the
/// state it belongs to; an armed one is returned, to hand to [`Deadlines::schedule`] once
/// `b` is durable. A disarmed copy still queued in memory fires harmlessly: its owner
/// re-checks the stored state.
pub fn apply(
    b: &mut Batch,
    kind: DeadlineKind,
    subject: impl Into<Uuid>,
    change: Change,
) -> Option<(Millis, DeadlineKind)> {
    let subject = subject.into();
    match change {
        Change::Arm(due) => {
            b.put(
                Tree::Deadlines,
                keys::deadline(due, kind, subject),
                Vec::new(),
            );
            Some((due, kind))
        }
        Change::Disarm(due) => {
            b.delete(Tree::Deadlines, keys::deadline(due, kind, subject));
            None
        }
    }
}

#[derive(Default)]
pub struct Deadlines {
    queue: Mutex<BTreeSet<Entry>>,
    wake: Notify,
}

impl Deadlines {
    /// The queue of the persisted deadlines (`Store::deadlines`). Start-up cost grows
    /// with pending deadlines, not with stored messages.
    pub fn new(pending: Vec<Entry>) -> Self {
        Deadlines {
            queue: Mutex::new(pending.into_iter().collect()),
            wake: Notify::new(),
        }
    }

    pub fn schedule(&self, due: Millis, kind: DeadlineKind, subject: impl Into<Uuid>) {
        let subject = subject.into();
        let earliest = {
            let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            q.insert((due, kind, subject));
            q.first().is_some_and(|f| f.0 == due && f.2 == subject)
        };
        if earliest {
            self.wake.notify_one();
        }
    }

    pub fn len(&self) -> usize {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes and returns everything due at `now`.
    fn take_due(&self, now: Millis) -> (Vec<Entry>, Option<Millis>) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let mut due = Vec::new();
        while let Some(first) = q.first().copied() {
            if first.0 > now {
                return (due, Some(first.0));
            }
            q.pop_first();
            due.push(first);
        }
        (due, None)
    }

    /// Sleeps until deadlines fall due and passes each to `fire`, until `stop` resolves.
    pub async fn run<F>(
        &self,
        now_ms: impl Fn() -> Millis,
        mut fire: F,
        stop: impl std::future::Future<Output = ()>,
    ) where
        F: FnMut(Entry),
    {
        tokio::pin!(stop);
        loop {
            // Register interest before looking, so a schedule() in between is not missed.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let (due, next) = self.take_due(now_ms());
            for e in due {
                fire(e);
            }
            let sleep = async {
                match next {
                    Some(at) => tokio::time::sleep(clock::until(at, now_ms())).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut stop => return,
                _ = woken => {}
                _ = sleep => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    fn now() -> Millis {
        use crate::clock::Clock;
        crate::clock::SystemClock.now_ms()
    }

    #[tokio::test]
    async fn ten_thousand_deadlines_each_fire_once_in_order_from_one_task() {
        let d = Arc::new(Deadlines::default());
        let start = now();
        let n = 10_000u64;
        for i in 0..n {
            d.schedule(
                start + 50 + (i % 200) as Millis,
                DeadlineKind::Prompt,
                Uuid::from_u128(i as u128),
            );
        }
        let fired = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicU64::new(0));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let runner = {
            let (d, fired, count) = (d.clone(), fired.clone(), count.clone());
            tokio::spawn(async move {
                d.run(
                    now,
                    |e| {
                        fired.lock().expect("lock").push(e);
                        count.fetch_add(1, Ordering::Relaxed);
                    },
                    async {
                        let _ = rx.await;
                    },
                )
                .await
            })
        };
        while count.load(Ordering::Relaxed) < n {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let _ = tx.send(());
        runner.await.expect("runner");
        let fired = fired.lock().expect("lock");
        assert_eq!(fired.len(), n as usize, "each fires exactly once");
        let mut subjects: Vec<_> = fired.iter().map(|e| e.2).collect();
        subjects.sort();
        subjects.dedup();
        assert_eq!(subjects.len(), n as usize);
        assert!(fired.windows(2).all(|w| w[0].0 <= w[1].0), "in due order");
        assert!(d.is_empty());
    }

    #[tokio::test]
    async fn an_earlier_deadline_wakes_the_sleeper() {
        let d = Arc::new(Deadlines::default());
        d.schedule(now() + 60_000, DeadlineKind::Prompt, Uuid::from_u128(1));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let runner = {
            let d = d.clone();
            tokio::spawn(async move {
                d.run(
                    now,
                    move |e| {
                        let _ = tx.send(e);
                    },
                    std::future::pending(),
                )
                .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        d.schedule(now() + 20, DeadlineKind::FollowUp, Uuid::from_u128(2));
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
            .await
            .expect("woken in time");
        assert_eq!(got.map(|e| e.2), Some(Uuid::from_u128(2)));
        runner.abort();
    }
}
