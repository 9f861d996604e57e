//! Business hours: an inbox with `away.mode = "outside_hours"` is away exactly while its
//! schedule says closed (the welcome's `away` with `back_at`, the away answer to a first
//! message), its hours survive a restart, bad schedules are refused naming the field,
//! and a prompt due across a change from open to closed still comes. The server's clock
//! is set to known instants in Europe/Berlin.

use std::sync::Arc;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde_json::{json, Value};

use crate::support::{FakeClock, TestServer};

const ZONE: &str = "Europe/Berlin";
const CLOSED_TEXT: &str = "We're closed; back in the morning.";
const HOUR: i64 = 3_600_000;

/// The instant of a wall-clock time in Berlin.
fn berlin(local: &str) -> i64 {
    let dt: DateTime = local.parse().expect("a datetime");
    TimeZone::get(ZONE)
        .expect("zone")
        .to_ambiguous_timestamp(dt)
        .compatible()
        .expect("in range")
        .as_millisecond()
}

fn weekdays(holidays: &[&str]) -> Value {
    let day = json!([{"from":"09:00","to":"17:00"}]);
    json!({
        "time_zone": ZONE,
        "weekly": {"mon":day,"tue":day,"wed":day,"thu":day,"fri":day,"sat":[],"sun":[]},
        "holidays": holidays,
    })
}

fn outside_hours(hours: Value, when: &str, delay: u64) -> Value {
    json!({
        "email_capture": {"when": when, "delay_secs": delay, "message": null},
        "away": {"mode": "outside_hours", "message": CLOSED_TEXT},
        "follow_up": {"enabled": true, "delay_secs": 120},
        "hours": hours,
    })
}

/// A server at `at` (Berlin wall clock) whose default inbox has `chatflow`.
async fn server_at(at: &str, chatflow: Value) -> (TestServer, Arc<FakeClock>) {
    let clock = Arc::new(FakeClock::default());
    clock.set(berlin(at));
    let s = TestServer::start_with_clock(clock.clone(), |_| {}).await;
    s.set_chatflow(chatflow).await;
    (s, clock)
}

#[tokio::test]
async fn outside_hours_the_welcome_is_away_with_the_next_opening_and_inside_it_is_not() {
    // Monday 2026-12-07, before opening.
    let (s, clock) = server_at(
        "2026-12-07T08:30",
        outside_hours(weekdays(&[]), "never", 60),
    )
    .await;
    // An agent online changes nothing: the hours decide.
    let (_admin, _) = s.admin().await;
    let (mut v, w) = s.visitor().await;
    assert_eq!(
        w["away"],
        json!({"active":true,"message":CLOSED_TEXT,"back_at":berlin("2026-12-07T09:00")})
    );
    // The first message gets the away answer, as with `always`.
    v.say("Anyone there?").await;
    let sys = v.expect("message").await;
    assert_eq!(sys["message"]["author"]["kind"], "system");
    assert_eq!(sys["message"]["text"], CLOSED_TEXT);

    // An hour later it is open: not away, no back_at, no away answer.
    clock.advance(HOUR);
    let (mut v, w) = s.visitor().await;
    assert_eq!(w["away"], json!({"active":false,"message":null}));
    v.say("Hello").await;
    v.expect_silence(300, &[]).await;

    // After closing on Friday, back on Monday at 9:00 (a week wrap; Berlin is CET).
    clock.set(berlin("2026-12-11T17:00"));
    let (_v, w) = s.visitor().await;
    assert_eq!(w["away"]["active"], true);
    assert_eq!(w["away"]["back_at"], berlin("2026-12-14T09:00"));
    assert_eq!(
        berlin("2026-12-14T09:00") - berlin("2026-12-11T17:00"),
        64 * HOUR
    );
}

#[tokio::test]
async fn a_holiday_is_closed_all_day_and_back_at_skips_it() {
    let (s, _clock) = server_at(
        "2026-12-24T11:00",
        outside_hours(weekdays(&["2026-12-24", "2026-12-25"]), "never", 60),
    )
    .await;
    let (_v, w) = s.visitor().await;
    assert_eq!(w["away"]["active"], true);
    // Thursday and Friday off: Monday the 28th.
    assert_eq!(w["away"]["back_at"], berlin("2026-12-28T09:00"));
}

#[tokio::test]
async fn outside_hours_a_first_message_is_prompted_at_once() {
    let (s, _clock) = server_at(
        "2026-12-06T12:00",
        outside_hours(weekdays(&[]), "no_reply", 60),
    )
    .await;
    let (mut v, _) = s.visitor().await;
    v.say("Sunday question").await;
    assert_eq!(v.expect("message").await["message"]["text"], CLOSED_TEXT);
    assert!(v.expect("email_prompt").await["text"].is_string());
}

#[tokio::test]
async fn a_prompt_due_after_closing_time_still_comes_and_nothing_else_changes() {
    // Open at 16:30; the no_reply deadline is 2 s away.
    let (s, clock) = server_at(
        "2026-12-07T16:30",
        outside_hours(weekdays(&[]), "no_reply", 2),
    )
    .await;
    let (mut v, w) = s.visitor().await;
    assert_eq!(w["away"]["active"], false);
    v.say("Quick question").await;
    // Now it is after closing: the pending prompt still fires, and no away answer is
    // added to a conversation that began while open.
    clock.advance(HOUR);
    let p = v.expect("email_prompt").await;
    assert!(p["text"].is_string());
    v.expect_silence(300, &[]).await;
    let (_v2, w) = s.visitor().await;
    assert_eq!(w["away"]["back_at"], berlin("2026-12-08T09:00"));
}

#[tokio::test]
async fn hours_round_trip_and_survive_a_restart() {
    let (s, _clock) = server_at(
        "2026-12-07T10:00",
        outside_hours(weekdays(&["2026-12-24"]), "no_reply", 60),
    )
    .await;
    let (mut a, _) = s.admin().await;
    a.send(json!({"type":"get_chatflow","inbox":"default"}))
        .await;
    let before = a.expect_skipping("chatflow").await["chatflow"].clone();
    assert_eq!(before["hours"], weekdays(&["2026-12-24"]));
    assert_eq!(before["away"]["mode"], "outside_hours");
    drop(a);
    let s = s.restart().await;
    let (mut a, _) = s.admin().await;
    a.send(json!({"type":"get_chatflow","inbox":"default"}))
        .await;
    assert_eq!(a.expect_skipping("chatflow").await["chatflow"], before);
    // Leaving hours out removes them (the whole chatflow is replaced), and a mode
    // that needs them is then refused.
    a.send(
        json!({"type":"update_chatflow","inbox":"default","chatflow":{"away":{"mode":"always"}}}),
    )
    .await;
    assert!(a.expect_skipping("chatflow").await["chatflow"]
        .get("hours")
        .is_none());
}

#[tokio::test]
async fn bad_schedules_are_refused_naming_the_field_and_nothing_changes() {
    let (s, _clock) = server_at(
        "2026-12-07T10:00",
        outside_hours(weekdays(&[]), "no_reply", 60),
    )
    .await;
    let (mut a, _) = s.admin().await;
    let with_day = |day: Value| {
        let mut h = weekdays(&[]);
        h["weekly"]["tue"] = day;
        h
    };
    let many_holidays: Vec<String> = (0..201)
        .map(|i| format!("2027-{:02}-{:02}", 1 + i / 28, 1 + i % 28))
        .collect();
    let mut many_holidays_hours = weekdays(&[]);
    many_holidays_hours["holidays"] = json!(many_holidays);
    let cases = [
        (
            json!({"time_zone":"Mars/Olympus_Mons","weekly":{}}),
            "hours.time_zone",
        ),
        (json!({"time_zone":"","weekly":{}}), "hours.time_zone"),
        (
            with_day(json!([{"from":"9:00","to":"17:00"}])),
            "hours.weekly.tue",
        ),
        (
            with_day(json!([{"from":"09:00","to":"25:00"}])),
            "hours.weekly.tue",
        ),
        (
            with_day(json!([{"from":"22:00","to":"02:00"}])),
            "crosses midnight",
        ),
        (
            with_day(json!([{"from":"09:00","to":"12:00"},{"from":"11:30","to":"14:00"}])),
            "overlap",
        ),
        (
            with_day(json!((0..9)
                .map(|h| json!({"from":format!("0{h}:00"),"to":format!("0{h}:30")}))
                .collect::<Vec<_>>())),
            "limit is 8",
        ),
        (
            {
                let mut h = weekdays(&[]);
                h["holidays"] = json!(["2026-02-30"]);
                h
            },
            "hours.holidays",
        ),
        (many_holidays_hours, "limit is 200"),
    ];
    for (hours, says) in cases {
        a.send(json!({"type":"update_chatflow","inbox":"default","chatflow":outside_hours(hours, "never", 60)}))
            .await;
        let e = a.expect_error("bad_frame").await;
        assert!(
            e["message"].as_str().is_some_and(|m| m.contains(says)),
            "{e} should say {says}"
        );
    }
    a.send(json!({"type":"update_chatflow","inbox":"default","chatflow":{"away":{"mode":"outside_hours"}}}))
        .await;
    let e = a.expect_error("bad_frame").await;
    assert!(e["message"]
        .as_str()
        .is_some_and(|m| m.contains("needs hours")));
    // A wrong type is a bad frame too.
    a.send(
        json!({"type":"update_chatflow","inbox":"default","chatflow":{"hours":{"time_zone":5}}}),
    )
    .await;
    a.expect_error("bad_frame").await;
    a.send(json!({"type":"get_chatflow","inbox":"default"}))
        .await;
    let cf = a.expect_skipping("chatflow").await;
    assert_eq!(cf["chatflow"]["hours"], weekdays(&[]));
    assert_eq!(cf["chatflow"]["email_capture"]["when"], "no_reply");
}
