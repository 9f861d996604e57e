use super::*;

/// A queue bounded in frames only.
fn frames(n: usize) -> Budget {
    Budget {
        frames: n,
        bytes: usize::MAX,
    }
}

fn key(inbox: &str) -> VisitorKey {
    VisitorKey {
        visitor: crate::ids::VisitorId::from_uuid(uuid::Uuid::nil()),
        inbox: inbox.into(),
    }
}

#[test]
fn presence_follows_the_first_and_last_connection() {
    let hub = Hub::default();
    let (a, _ma) = hub.connection(frames(4));
    let (b, _mb) = hub.connection(frames(4));
    let (aid, bid) = (a.id, b.id);
    assert_eq!(hub.add_visitor(key("x"), a), Presence::CameOnline);
    assert_eq!(hub.add_visitor(key("x"), b), Presence::Unchanged);
    assert!(hub.visitor_online(&key("x")));
    assert!(!hub.visitor_online(&key("y")));
    assert_eq!(hub.remove_visitor(&key("x"), aid), Presence::Unchanged);
    assert_eq!(hub.remove_visitor(&key("x"), bid), Presence::WentOffline);
    assert!(!hub.visitor_online(&key("x")));
}

#[test]
fn a_return_within_the_grace_period_is_no_change_and_a_departure_falls_due_once() {
    let hub = Hub::new(Duration::from_millis(200), 100);
    let conn = |hub: &Hub| {
        let (c, m) = hub.connection(frames(4));
        (c.id, c, m)
    };
    let (a, ca, _ma) = conn(&hub);
    assert_eq!(hub.add_visitor(key("x"), ca), Presence::CameOnline);
    assert_eq!(hub.remove_visitor(&key("x"), a), Presence::Leaving);
    assert!(!hub.visitor_online(&key("x")));
    assert!(hub.visitor_shown_online(&key("x")));
    // Back within the grace period: nothing for agents, and nothing falls due.
    let (b, cb, _mb) = conn(&hub);
    assert_eq!(hub.add_visitor(key("x"), cb), Presence::Unchanged);
    let later = Instant::now() + Duration::from_secs(1);
    assert_eq!(hub.take_departures(later).0, Vec::<VisitorKey>::new());
    // Gone for good: due once, after the grace period.
    assert_eq!(hub.remove_visitor(&key("x"), b), Presence::Leaving);
    let (now, next) = hub.take_departures(Instant::now());
    assert!(now.is_empty());
    assert!(next.is_some());
    let later = Instant::now() + Duration::from_secs(1);
    assert_eq!(hub.take_departures(later).0, vec![key("x")]);
    assert!(hub.take_departures(later).0.is_empty());
    assert!(!hub.visitor_shown_online(&key("x")));
    // Then coming back is news.
    let (_, cc, _mc) = conn(&hub);
    assert_eq!(hub.add_visitor(key("x"), cc), Presence::CameOnline);
}

#[test]
fn held_departures_are_bounded() {
    let hub = Hub::new(Duration::from_secs(60), 2);
    let mut boxes = Vec::new();
    let mut outcomes = Vec::new();
    for inbox in ["a", "b", "c"] {
        let (c, m) = hub.connection(frames(4));
        let id = c.id;
        boxes.push(m);
        hub.add_visitor(key(inbox), c);
        outcomes.push(hub.remove_visitor(&key(inbox), id));
    }
    assert_eq!(
        outcomes,
        [Presence::Leaving, Presence::Leaving, Presence::WentOffline]
    );
}

#[tokio::test]
async fn a_reader_rides_out_a_burst_and_one_that_stopped_is_kicked() {
    let hub = Hub::default();
    let (slow, slow_box) = hub.connection(frames(2));
    let (fast, fast_box) = hub.connection(frames(2));
    hub.add_agent(&["i".into()], slow);
    hub.add_agent(&["i".into()], fast);
    let f: Frame = "{}".into();
    // A burst past both queues' capacity, within the room a connection may hold.
    for _ in 0..2 * BURST_ROOM {
        assert_eq!(hub.to_agents("i", &f, None), 2);
    }
    assert_eq!(hub.slow_dropped(), 0);
    // The fast one takes its frames; the slow one took nothing and is full.
    for _ in 0..2 * BURST_ROOM {
        assert_eq!(&*fast_box.recv().await, "{}");
    }
    assert_eq!(hub.to_agents("i", &f, None), 1);
    assert_eq!(slow_box.ended().await, Ended::Kicked);
    assert_eq!(hub.slow_dropped(), 1);
    assert_eq!(&*fast_box.recv().await, "{}");
    assert!(fast_box.try_recv().is_none());
}

#[tokio::test]
async fn a_full_queue_that_takes_nothing_for_a_while_is_kicked() {
    let hub = Hub::default();
    let (stuck, stuck_box) = hub.connection(frames(2));
    let (taking, taking_box) = hub.connection(frames(2));
    hub.add_agent(&["i".into()], stuck);
    hub.add_agent(&["i".into()], taking);
    let f: Frame = "{}".into();
    for _ in 0..3 {
        assert_eq!(hub.to_agents("i", &f, None), 2);
    }
    std::thread::sleep(STALLED + Duration::from_millis(50));
    // Both are over capacity and far from the burst room; only the one that took
    // a frame in the meantime is still reading.
    assert!(taking_box.try_recv().is_some());
    assert_eq!(hub.to_agents("i", &f, None), 1);
    assert_eq!(stuck_box.ended().await, Ended::Kicked);
    assert_eq!(hub.slow_dropped(), 1);
    let mut got = 0;
    while taking_box.try_recv().is_some() {
        got += 1;
    }
    assert_eq!(got, 3);
}

#[tokio::test]
async fn a_waiting_connection_is_woken_and_a_burst_leaves_no_room_behind() {
    let hub = Hub::default();
    let (conn, mailbox) = hub.connection(frames(4096));
    hub.add_agent(&["i".into()], conn);
    let waiting = tokio::spawn(async move {
        let first = mailbox.recv().await;
        (first, mailbox)
    });
    tokio::task::yield_now().await;
    let f: Frame = "{}".into();
    for _ in 0..1000 {
        assert_eq!(hub.to_agents("i", &f, None), 1);
    }
    let (first, mailbox) = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
        .await
        .expect("woken")
        .expect("task");
    assert_eq!(&*first, "{}");
    let mut rest = 0;
    while mailbox.try_recv().is_some() {
        rest += 1;
    }
    assert_eq!(rest, 999);
    assert_eq!(
        mailbox.queue.frames().list.capacity(),
        0,
        "the burst's room is freed"
    );
    // Once the connection's side is gone, frames for it are dropped, not counted.
    drop(mailbox);
    assert_eq!(hub.to_agents("i", &f, None), 0);
    assert_eq!(hub.slow_dropped(), 0);
}

#[tokio::test]
async fn a_queue_is_bounded_in_bytes_as_well_as_frames() {
    let hub = Hub::default();
    let budget = Budget {
        frames: 4096,
        bytes: 1000,
    };
    let (stuck, stuck_box) = hub.connection(budget);
    let (reading, reading_box) = hub.connection(budget);
    hub.add_agent(&["i".into()], stuck);
    hub.add_agent(&["i".into()], reading);
    let big: Frame = "x".repeat(300).into();
    // Three fit in the bytes (far from the frame count); the reader takes each.
    for _ in 0..3 {
        assert_eq!(hub.to_agents("i", &big, None), 2);
        assert_eq!(reading_box.try_recv().as_deref(), Some(&*big));
    }
    assert_eq!(stuck_box.queue.frames().bytes, 900);
    assert_eq!(reading_box.queue.frames().bytes, 0);
    // A fourth would take the one that took nothing past its bytes: it is kicked,
    // the reader is not.
    assert_eq!(hub.to_agents("i", &big, None), 1);
    assert_eq!(stuck_box.ended().await, Ended::Kicked);
    assert_eq!(hub.slow_dropped(), 1);
    assert_eq!(
        stuck_box.queue.frames().bytes,
        900,
        "nothing past the budget"
    );
    assert_eq!(reading_box.try_recv().as_deref(), Some(&*big));
    // Taking gives the bytes back.
    while stuck_box.try_recv().is_some() {}
    assert_eq!(stuck_box.queue.frames().bytes, 0);
    // An empty queue takes one frame larger than its budget: a reader is never
    // kicked for one big frame.
    let huge: Frame = "y".repeat(5000).into();
    assert_eq!(hub.to_agents("i", &huge, None), 2);
    assert!(!reading_box.queue.kicked.load(Ordering::Acquire));
    assert_eq!(reading_box.try_recv().as_deref(), Some(&*huge));
    // Closing empties the count with the list.
    drop(stuck_box);
    assert_eq!(hub.to_agents("i", &big, None), 1);
}

#[tokio::test]
async fn a_queue_a_quarter_full_in_bytes_that_takes_nothing_is_kicked() {
    let hub = Hub::default();
    let (stuck, stuck_box) = hub.connection(Budget {
        frames: 4096,
        bytes: 4000,
    });
    hub.add_agent(&["i".into()], stuck);
    let f: Frame = "z".repeat(600).into();
    // 1200 bytes: past a quarter of the budget, not past the budget.
    for _ in 0..2 {
        assert_eq!(hub.to_agents("i", &f, None), 1);
    }
    assert_eq!(hub.to_agents("i", &f, None), 1, "full: the clock starts");
    std::thread::sleep(STALLED + Duration::from_millis(50));
    assert_eq!(hub.to_agents("i", &f, None), 0);
    assert_eq!(stuck_box.ended().await, Ended::Kicked);
}

#[tokio::test]
async fn an_agents_connections_are_told_to_close_whatever_their_inboxes_and_admins_hear_the_team() {
    let hub = Hub::default();
    let ann = crate::ids::AgentId::generate();
    let bob = crate::ids::AgentId::generate();
    let (mut a1, a1_box) = hub.connection(frames(8));
    let (mut a2, a2_box) = hub.connection(frames(8));
    let (mut b, b_box) = hub.connection(frames(8));
    (a1.agent, a2.agent, b.agent) = (Some(ann), Some(ann), Some(bob));
    b.admin = true;
    // Ann's second connection belongs to no inbox: it is still hers.
    hub.add_agent(&["i".into()], a1);
    hub.add_agent(&[], a2);
    hub.add_agent(&["i".into()], b);
    let team: Frame = "team".into();
    assert_eq!(hub.to_admins(&team), 1);
    assert_eq!(b_box.try_recv().as_deref(), Some("team"));
    assert_eq!(a1_box.try_recv(), None);
    let closing = Closing {
        code: 4010,
        reason: "access changed",
        flush: true,
    };
    assert_eq!(hub.close_agents(|c| c.agent == Some(ann), closing), 2);
    assert_eq!(a1_box.ended().await, Ended::Closed(closing));
    assert_eq!(a2_box.ended().await, Ended::Closed(closing));
    // Told once; Bob is untouched.
    assert_eq!(hub.close_agents(|c| c.agent == Some(ann), closing), 0);
    assert!(b_box.queue.closing.get().is_none());
}

#[tokio::test]
async fn signing_out_closes_only_that_sessions_connections() {
    let hub = Hub::default();
    let ann = crate::ids::AgentId::generate();
    let (phone, laptop) = (
        crate::signin::SessionKey([1; 32]),
        crate::signin::SessionKey([2; 32]),
    );
    let (mut a1, a1_box) = hub.connection(frames(8));
    let (mut a2, a2_box) = hub.connection(frames(8));
    let (mut a3, a3_box) = hub.connection(frames(8));
    let (mut by_token, token_box) = hub.connection(frames(8));
    for c in [&mut a1, &mut a2, &mut a3, &mut by_token] {
        c.agent = Some(ann);
    }
    // Two tabs of the phone's session, one of the laptop's, one by token.
    (a1.sign_in, a2.sign_in, a3.sign_in) = (Some(phone), Some(phone), Some(laptop));
    for c in [a1, a2, a3, by_token] {
        hub.add_agent(&["i".into()], c);
    }
    let closing = Closing {
        code: 4001,
        reason: "signed out",
        flush: false,
    };
    assert_eq!(hub.close_sign_in(phone, closing), 2);
    assert_eq!(a1_box.ended().await, Ended::Closed(closing));
    assert_eq!(a2_box.ended().await, Ended::Closed(closing));
    assert!(a3_box.queue.closing.get().is_none());
    assert!(token_box.queue.closing.get().is_none());
}
