//! Business hours: whether an inbox is open at an instant, and when it next opens.
//!
//! Owns the checks of an inbox's `hours` (time zone, intervals, holidays, limits) and
//! the one rule for open and closed: [`is_open`], with [`next_opening`] defined through
//! it, so the two never disagree. Time zones and daylight saving come from `jiff`'s
//! bundled tz database, never from hand-written offsets or the system's tzdata.
//! It does not decide what "away" means for an inbox (that is `chatflow::away`) and
//! never reads a clock: the instant is always an argument.

use std::collections::BTreeSet;

use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::Timestamp;
use widget_protocol::{Hours, Interval, Millis};

/// The most intervals on one weekday.
pub const MAX_INTERVALS_PER_DAY: usize = 8;
/// The most holidays an inbox keeps.
pub const MAX_HOLIDAYS: usize = 200;
/// The longest time zone name accepted (the longest IANA name is about 30).
pub const MAX_ZONE_CHARS: usize = 64;
const DAY_MINUTES: u16 = 24 * 60;
/// How far [`next_opening`] looks ahead: past every holiday and a whole week more.
const LOOKAHEAD_DAYS: usize = MAX_HOLIDAYS + 8;

/// What is wrong with an inbox's hours; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    #[error("hours.time_zone {0:?} is not a known IANA time zone (e.g. Europe/Berlin)")]
    UnknownZone(String),
    #[error("hours.weekly.{day}: {value:?} is not a time; use HH:MM from 00:00 to 24:00")]
    BadTime { day: &'static str, value: String },
    #[error(
        "hours.weekly.{day}: {from}-{to} does not end after it starts; an interval \
         never crosses midnight (write {from}-24:00 and the next day's 00:00-{to})"
    )]
    Backwards {
        day: &'static str,
        from: String,
        to: String,
    },
    #[error("hours.weekly.{day}: the intervals {a} and {b} overlap")]
    Overlap {
        day: &'static str,
        a: String,
        b: String,
    },
    #[error("hours.weekly.{day} has {n} intervals; the limit is {MAX_INTERVALS_PER_DAY}")]
    TooManyIntervals { day: &'static str, n: usize },
    #[error("hours.holidays: {0:?} is not a date; use YYYY-MM-DD")]
    BadDate(String),
    #[error("hours.holidays has {0} dates; the limit is {MAX_HOLIDAYS}")]
    TooManyHolidays(usize),
}

/// At most 40 characters of a client's value, for an error message that quotes it.
fn quoted(s: &str) -> String {
    s.chars().take(40).collect()
}

/// An inbox's hours, checked and ready to answer [`is_open`].
#[derive(Debug, Clone)]
pub struct Schedule {
    tz: TimeZone,
    /// Monday first: each day's `[from, to)` in minutes after midnight, sorted, disjoint.
    week: [Vec<(u16, u16)>; 7],
    holidays: BTreeSet<Date>,
}

impl Schedule {
    /// Checks `hours`; the error says which field is wrong.
    pub fn compile(hours: &Hours) -> Result<Schedule, HoursError> {
        let zone = hours.time_zone.trim();
        if zone.is_empty() || zone.chars().count() > MAX_ZONE_CHARS {
            return Err(HoursError::UnknownZone(quoted(&hours.time_zone)));
        }
        let tz = TimeZone::get(zone).map_err(|_| HoursError::UnknownZone(quoted(zone)))?;
        let mut week: [Vec<(u16, u16)>; 7] = Default::default();
        for (slot, (day, intervals)) in week.iter_mut().zip(hours.weekly.days()) {
            *slot = day_intervals(day, intervals)?;
        }
        if hours.holidays.len() > MAX_HOLIDAYS {
            return Err(HoursError::TooManyHolidays(hours.holidays.len()));
        }
        let holidays = hours
            .holidays
            .iter()
            .map(|d| {
                d.trim()
                    .parse::<Date>()
                    .ok()
                    .filter(|_| d.trim().len() == 10)
                    .ok_or_else(|| HoursError::BadDate(quoted(d)))
            })
            .collect::<Result<_, _>>()?;
        Ok(Schedule { tz, week, holidays })
    }

    fn intervals(&self, date: Date) -> &[(u16, u16)] {
        if self.holidays.contains(&date) {
            return &[];
        }
        let day = usize::try_from(date.weekday().to_monday_zero_offset()).unwrap_or(0);
        &self.week[day % 7]
    }

    fn local(&self, at: Timestamp) -> DateTime {
        self.tz.to_datetime(at)
    }
}

/// One weekday's intervals, parsed, sorted and checked for overlaps.
fn day_intervals(day: &'static str, list: &[Interval]) -> Result<Vec<(u16, u16)>, HoursError> {
    if list.len() > MAX_INTERVALS_PER_DAY {
        return Err(HoursError::TooManyIntervals { day, n: list.len() });
    }
    let mut out = Vec::with_capacity(list.len());
    for i in list {
        let from = minutes(&i.from).filter(|m| *m < DAY_MINUTES);
        let from = from.ok_or_else(|| HoursError::BadTime {
            day,
            value: quoted(&i.from),
        })?;
        let to = minutes(&i.to).ok_or_else(|| HoursError::BadTime {
            day,
            value: quoted(&i.to),
        })?;
        if to <= from {
            return Err(HoursError::Backwards {
                day,
                from: span((from, from))[..5].to_string(),
                to: span((to, to))[..5].to_string(),
            });
        }
        out.push((from, to));
    }
    out.sort_unstable();
    for pair in out.windows(2) {
        if let [a, b] = pair {
            if b.0 < a.1 {
                return Err(HoursError::Overlap {
                    day,
                    a: span(*a),
                    b: span(*b),
                });
            }
        }
    }
    Ok(out)
}

/// `HH:MM` (two digits each) as minutes after midnight; `24:00` is the end of the day.
fn minutes(s: &str) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    let total = h.checked_mul(60)?.checked_add(m)?;
    (m < 60 && total <= DAY_MINUTES).then_some(total)
}

fn span((from, to): (u16, u16)) -> String {
    format!(
        "{:02}:{:02}-{:02}:{:02}",
        from / 60,
        from % 60,
        to / 60,
        to % 60
    )
}

fn timestamp(at: Millis) -> Timestamp {
    Timestamp::from_millisecond(at).unwrap_or(if at < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// Whether the inbox is open at `now`: the wall-clock time there falls in one of its
/// weekday's intervals, and the date is not a holiday.
pub fn is_open(schedule: &Schedule, now: Millis) -> bool {
    let local = schedule.local(timestamp(now));
    let minute =
        u16::try_from(i32::from(local.hour()) * 60 + i32::from(local.minute())).unwrap_or(u16::MAX);
    schedule
        .intervals(local.date())
        .iter()
        .any(|(from, to)| (*from..*to).contains(&minute))
}

/// The first instant at or after `now` when [`is_open`] holds (`now` itself when open),
/// to the millisecond; None when the schedule never opens in the weeks ahead.
pub fn next_opening(schedule: &Schedule, now: Millis) -> Option<Millis> {
    if is_open(schedule, now) {
        return Some(now);
    }
    let mut date = schedule.local(timestamp(now)).date();
    for _ in 0..LOOKAHEAD_DAYS {
        let mut first: Option<Millis> = None;
        for (from, _) in schedule.intervals(date) {
            let start = date.at(
                i8::try_from(from / 60).unwrap_or(0),
                i8::try_from(from % 60).unwrap_or(0),
                0,
                0,
            );
            for at in starts(&schedule.tz, start) {
                let at = at.as_millisecond();
                if at > now && is_open(schedule, at) && first.is_none_or(|f| at < f) {
                    first = Some(at);
                }
            }
        }
        if first.is_some() {
            return first;
        }
        date = date.tomorrow().ok()?;
    }
    None
}

/// The instants a wall-clock start can mean: one; in a fold, both; in a gap (the clock
/// jumped over it), the jump itself, when the day's wall clock reaches past it.
fn starts(tz: &TimeZone, dt: DateTime) -> Vec<Timestamp> {
    let ambiguous = tz.to_ambiguous_timestamp(dt);
    match ambiguous.offset() {
        AmbiguousOffset::Unambiguous { offset } => {
            offset.to_timestamp(dt).ok().into_iter().collect()
        }
        AmbiguousOffset::Fold { before, after } => [before, after]
            .into_iter()
            .filter_map(|o| o.to_timestamp(dt).ok())
            .collect(),
        AmbiguousOffset::Gap { .. } => ambiguous
            .compatible()
            .ok()
            .and_then(|later| tz.preceding(later).next())
            .map(|t| t.timestamp())
            .into_iter()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use widget_protocol::Weekly;

    fn iv(from: &str, to: &str) -> Interval {
        Interval {
            from: from.into(),
            to: to.into(),
        }
    }

    fn nine_to_five(zone: &str) -> Hours {
        let day = vec![iv("09:00", "17:00")];
        Hours {
            time_zone: zone.into(),
            weekly: Weekly {
                mon: day.clone(),
                tue: day.clone(),
                wed: day.clone(),
                thu: day.clone(),
                fri: day,
                ..Weekly::default()
            },
            holidays: Vec::new(),
        }
    }

    /// The instant of a wall-clock time in `zone` (the earlier one in a fold).
    fn at(zone: &str, s: &str) -> Millis {
        let dt: DateTime = s.parse().expect("a datetime");
        TimeZone::get(zone)
            .expect("zone")
            .to_ambiguous_timestamp(dt)
            .earlier()
            .expect("in range")
            .as_millisecond()
    }

    fn compile(h: &Hours) -> Schedule {
        Schedule::compile(h).expect("valid")
    }

    #[test]
    fn open_on_weekdays_within_the_interval_only() {
        let z = "Europe/Berlin";
        let s = compile(&nine_to_five(z));
        // 2026-12-02 is a Wednesday.
        assert!(is_open(&s, at(z, "2026-12-02T09:00")));
        assert!(is_open(&s, at(z, "2026-12-02T16:59:59")));
        assert!(!is_open(&s, at(z, "2026-12-02T17:00")));
        assert!(!is_open(&s, at(z, "2026-12-02T08:59")));
        assert!(!is_open(&s, at(z, "2026-12-05T12:00")), "Saturday");
        assert_eq!(
            next_opening(&s, at(z, "2026-12-02T12:00")),
            Some(at(z, "2026-12-02T12:00")),
            "open now: now"
        );
        assert_eq!(
            next_opening(&s, at(z, "2026-12-02T08:00")),
            Some(at(z, "2026-12-02T09:00"))
        );
    }

    #[test]
    fn the_week_wraps_from_friday_evening_to_monday() {
        let z = "America/New_York";
        let s = compile(&nine_to_five(z));
        // Friday 2026-12-04 after closing, and Sunday night.
        for from in ["2026-12-04T17:00", "2026-12-06T23:59"] {
            assert_eq!(
                next_opening(&s, at(z, from)),
                Some(at(z, "2026-12-07T09:00")),
                "from {from}"
            );
        }
        let mut h = nine_to_five(z);
        h.weekly = Weekly {
            sun: vec![iv("22:00", "24:00")],
            mon: vec![iv("00:00", "02:00")],
            ..Weekly::default()
        };
        let s = compile(&h);
        assert!(is_open(&s, at(z, "2026-12-06T23:30")));
        assert!(is_open(&s, at(z, "2026-12-07T01:59")), "across midnight");
        assert!(!is_open(&s, at(z, "2026-12-07T02:00")));
        assert_eq!(
            next_opening(&s, at(z, "2026-12-07T03:00")),
            Some(at(z, "2026-12-13T22:00")),
            "the next Sunday"
        );
    }

    #[test]
    fn holidays_are_closed_all_day_in_the_zone() {
        let z = "Europe/Berlin";
        let mut h = nine_to_five(z);
        h.holidays = vec!["2026-12-24".into(), "2026-12-25".into()];
        let s = compile(&h);
        assert!(!is_open(&s, at(z, "2026-12-24T10:00")));
        assert!(is_open(&s, at(z, "2026-12-23T10:00")));
        // Thursday and Friday are holidays, so Monday the 28th.
        assert_eq!(
            next_opening(&s, at(z, "2026-12-23T18:00")),
            Some(at(z, "2026-12-28T09:00"))
        );
        // The holiday is the zone's date: 00:30 in Berlin on the 24th is 23:30 UTC on the 23rd.
        h.weekly.wed = vec![iv("00:00", "24:00")];
        h.weekly.thu = vec![iv("00:00", "24:00")];
        let s = compile(&h);
        assert!(!is_open(&s, at(z, "2026-12-24T00:30")));
    }

    #[test]
    fn daylight_saving_changes_keep_the_wall_clock_hours() {
        // Berlin springs forward on 2026-03-29 (Sunday) and falls back on 2026-10-25.
        let z = "Europe/Berlin";
        let s = compile(&nine_to_five(z));
        let friday = at(z, "2026-03-27T17:00");
        let monday = next_opening(&s, friday).expect("opens");
        assert_eq!(monday, at(z, "2026-03-30T09:00"));
        // 64 hours less the hour skipped.
        assert_eq!(monday - friday, (64 - 1) * 3_600_000);
        let friday = at(z, "2026-10-23T17:00");
        assert_eq!(
            next_opening(&s, friday).expect("opens") - friday,
            (64 + 1) * 3_600_000
        );
        // New York: 2026-03-08 and 2026-11-01.
        let z = "America/New_York";
        let s = compile(&nine_to_five(z));
        assert!(is_open(&s, at(z, "2026-03-09T09:00")));
        assert!(!is_open(&s, at(z, "2026-03-09T08:59")));
        assert_eq!(
            jiff::Timestamp::from_millisecond(at(z, "2026-03-09T09:00"))
                .expect("ts")
                .to_string(),
            "2026-03-09T13:00:00Z",
            "EDT"
        );
        assert_eq!(
            jiff::Timestamp::from_millisecond(at(z, "2026-11-02T09:00"))
                .expect("ts")
                .to_string(),
            "2026-11-02T14:00:00Z",
            "EST"
        );
    }

    #[test]
    fn intervals_inside_a_gap_or_a_fold() {
        let z = "Europe/Berlin";
        let sunday = |from: &str, to: &str| {
            let mut h = nine_to_five(z);
            h.weekly = Weekly {
                sun: vec![iv(from, to)],
                ..Weekly::default()
            };
            compile(&h)
        };
        // 02:00-03:00 does not exist on 2026-03-29: open from the jump (03:00 CEST).
        let s = sunday("02:30", "04:00");
        let jump = at(z, "2026-03-29T03:00");
        assert_eq!(next_opening(&s, at(z, "2026-03-29T01:00")), Some(jump));
        assert!(is_open(&s, jump) && !is_open(&s, jump - 1));
        // Wholly inside the gap: never open that day.
        let s = sunday("02:10", "02:50");
        let next = next_opening(&s, at(z, "2026-03-29T00:00")).expect("opens");
        assert_eq!(next, at(z, "2026-04-05T02:10"));
        // 02:00-03:00 happens twice on 2026-10-25: open in both passes.
        let s = sunday("02:00", "02:30");
        let first = at(z, "2026-10-25T02:00");
        let second = first + 3_600_000;
        assert!(is_open(&s, first) && is_open(&s, second));
        assert_eq!(next_opening(&s, first + 45 * 60_000), Some(second));
    }

    #[test]
    fn a_schedule_that_never_opens_has_no_next_opening() {
        let mut h = nine_to_five("UTC");
        h.weekly = Weekly::default();
        assert_eq!(next_opening(&compile(&h), 0), None);
    }

    #[test]
    fn bad_hours_are_refused_naming_the_field() {
        let check = |h: &Hours| Schedule::compile(h).expect_err("refused").to_string();
        assert!(check(&nine_to_five("Mars/Olympus")).contains("hours.time_zone"));
        assert!(check(&nine_to_five("")).contains("hours.time_zone"));
        let mut h = nine_to_five("Europe/Berlin");
        for bad in ["9:00", "25:00", "12:60", "24:01", "ab:cd", ""] {
            h.weekly.tue = vec![iv(bad, "17:00")];
            assert!(check(&h).contains("hours.weekly.tue"), "{bad}");
        }
        h.weekly.tue = vec![iv("24:00", "24:00")];
        assert!(check(&h).contains("hours.weekly.tue"));
        h.weekly.tue = vec![iv("22:00", "02:00")];
        assert!(check(&h).contains("crosses midnight"));
        h.weekly.tue = vec![iv("09:00", "12:00"), iv("11:00", "13:00")];
        assert!(check(&h).contains("overlap"));
        h.weekly.tue = vec![iv("12:00", "13:00"), iv("09:00", "12:00")];
        assert!(Schedule::compile(&h).is_ok(), "touching is not overlapping");
        h.weekly.tue = (0..9)
            .map(|i| iv(&format!("0{i}:00"), &format!("0{i}:30")))
            .collect();
        assert!(check(&h).contains("limit is 8"));
        h.weekly.tue = vec![];
        h.holidays = vec!["2026-02-30".into()];
        assert!(check(&h).contains("hours.holidays"));
        h.holidays = vec!["2026-1-1".into()];
        assert!(check(&h).contains("hours.holidays"));
        h.holidays = (0..201).map(|i| format!("2027-01-01+{i}")).collect();
        assert!(check(&h).contains("limit is 200"));
    }
}
