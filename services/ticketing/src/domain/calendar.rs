//! Business-hours calendars: weekly opening ranges in an IANA zone, holidays, and the
//! two sums SLA clocks need: business time between two instants, and the instant a
//! given amount of business time has passed.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use helpdesk_kit::grpc::Violations;
use serde::{Deserialize, Serialize};

type Instant = DateTime<Utc>;

/// Days a sum looks ahead before giving up (a calendar with no opening at all).
const HORIZON_DAYS: i64 = 800;

/// A calendar as stored: `weekly` ranges (weekday 1 = Monday … 7, "HH:MM", "HH:MM"),
/// `holidays` ("YYYY-MM-DD", closed all day).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarSpec {
    pub time_zone: String,
    pub weekly: Vec<(u32, String, String)>,
    pub holidays: Vec<String>,
}

fn minutes(s: &str) -> Option<u32> {
    let t = NaiveTime::parse_from_str(s, "%H:%M").ok()?;
    Some(chrono::Timelike::hour(&t) * 60 + chrono::Timelike::minute(&t))
}

/// "24:00" ends a day.
fn end_minutes(s: &str) -> Option<u32> {
    if s == "24:00" {
        Some(24 * 60)
    } else {
        minutes(s)
    }
}

impl CalendarSpec {
    /// Checks a calendar's fields (named under `calendar.`).
    pub fn check(&self, v: &mut Violations) {
        if self.time_zone.parse::<Tz>().is_err() {
            v.add(
                "calendar.time_zone",
                "an IANA time zone, e.g. Europe/Berlin",
            );
        }
        v.check(
            self.weekly.is_empty() || self.weekly.len() > 70,
            "calendar.weekly",
            "1-70 ranges",
        );
        for (i, (day, start, end)) in self.weekly.iter().enumerate() {
            let field = format!("calendar.weekly[{i}]");
            v.check(
                !(1..=7).contains(day),
                &format!("{field}.weekday"),
                "1 (Monday) to 7",
            );
            match (minutes(start), end_minutes(end)) {
                (Some(s), Some(e)) if s < e => {}
                _ => v.add(field, "start and end \"HH:MM\", start before end"),
            }
        }
        v.check(
            self.holidays.len() > 400,
            "calendar.holidays",
            "at most 400",
        );
        for (i, d) in self.holidays.iter().enumerate() {
            v.check(
                NaiveDate::parse_from_str(d, "%Y-%m-%d").is_err(),
                &format!("calendar.holidays[{i}]"),
                "a date, YYYY-MM-DD",
            );
        }
    }

    /// Ready to sum; `None` when the spec is not valid.
    pub fn compile(&self) -> Option<Calendar> {
        let tz = self.time_zone.parse::<Tz>().ok()?;
        let mut weekly: [Vec<(u32, u32)>; 7] = Default::default();
        for (day, start, end) in &self.weekly {
            let slot = weekly.get_mut((*day as usize).checked_sub(1)?)?;
            slot.push((minutes(start)?, end_minutes(end)?));
        }
        for ranges in &mut weekly {
            ranges.sort_unstable();
            // Overlapping ranges join.
            let mut joined: Vec<(u32, u32)> = Vec::new();
            for (s, e) in ranges.drain(..) {
                match joined.last_mut() {
                    Some(last) if s <= last.1 => last.1 = last.1.max(e),
                    _ => joined.push((s, e)),
                }
            }
            *ranges = joined;
        }
        let holidays = self
            .holidays
            .iter()
            .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .collect::<Option<HashSet<_>>>()?;
        Some(Calendar {
            tz,
            weekly,
            holidays,
        })
    }
}

/// A compiled calendar.
#[derive(Debug, Clone)]
pub struct Calendar {
    tz: Tz,
    weekly: [Vec<(u32, u32)>; 7],
    holidays: HashSet<NaiveDate>,
}

impl Calendar {
    /// The instant of local `date` at `minute` of the day (a time skipped by a DST
    /// change counts from the first instant after it).
    fn at(&self, date: NaiveDate, minute: u32) -> Option<Instant> {
        let local = date.and_hms_opt(0, 0, 0)? + Duration::minutes(i64::from(minute));
        // A skipped local time (a DST gap, at most a few hours) opens at the first
        // local minute that exists.
        let mut probe = local;
        for _ in 0..=180 {
            if let Some(t) = self.tz.from_local_datetime(&probe).earliest() {
                return Some(t.with_timezone(&Utc));
            }
            probe += Duration::minutes(1);
        }
        None
    }

    /// The open spans of local `date`, as instants.
    fn spans(&self, date: NaiveDate) -> Vec<(Instant, Instant)> {
        if self.holidays.contains(&date) {
            return Vec::new();
        }
        let day = date.weekday().num_days_from_monday() as usize;
        self.weekly[day]
            .iter()
            .filter_map(|&(s, e)| Some((self.at(date, s)?, self.at(date, e)?)))
            .filter(|(s, e)| s < e)
            .collect()
    }

    /// Open spans from `from` on, clipped to start at `from`, in order.
    fn open_from(&self, from: Instant) -> impl Iterator<Item = (Instant, Instant)> + '_ {
        // The local day before too: its spans may run past midnight in UTC terms.
        let first = from.with_timezone(&self.tz).date_naive() - Duration::days(1);
        (0..HORIZON_DAYS)
            .filter_map(move |i| first.checked_add_signed(Duration::days(i)))
            .flat_map(move |date| self.spans(date))
            .filter(move |(_, e)| *e > from)
            .map(move |(s, e)| (s.max(from), e))
    }

    /// Business time in `[a, b)`.
    pub fn between(&self, a: Instant, b: Instant) -> Duration {
        let mut total = Duration::zero();
        for (s, e) in self.open_from(a) {
            if s >= b {
                break;
            }
            total += e.min(b) - s;
        }
        total
    }

    /// The instant `amount` of business time after `from`; `None` beyond the horizon.
    pub fn add(&self, from: Instant, amount: Duration) -> Option<Instant> {
        let mut left = amount;
        if left <= Duration::zero() {
            return Some(from);
        }
        for (s, e) in self.open_from(from) {
            let span = e - s;
            if span >= left {
                return Some(s + left);
            }
            left -= span;
        }
        None
    }
}

/// Business time in `[a, b)` on `calendar`, or all of it around the clock.
pub fn elapsed(calendar: Option<&Calendar>, a: Instant, b: Instant) -> Duration {
    match calendar {
        _ if b <= a => Duration::zero(),
        Some(c) => c.between(a, b),
        None => b - a,
    }
}

/// The instant `amount` of (business) time after `from`.
pub fn after(calendar: Option<&Calendar>, from: Instant, amount: Duration) -> Option<Instant> {
    match calendar {
        Some(c) => c.add(from, amount),
        None => from.checked_add_signed(amount),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokyo_weekdays_with_a_holiday() -> Calendar {
        CalendarSpec {
            time_zone: "Asia/Tokyo".into(),
            weekly: (1..=5)
                .map(|d| (d, "09:00".into(), "18:00".into()))
                .collect(),
            // Monday 2026-11-23 (Labour Thanksgiving Day).
            holidays: vec!["2026-11-23".into()],
        }
        .compile()
        .expect("valid")
    }

    fn utc(s: &str) -> Instant {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn business_time_skips_nights_weekends_and_holidays_in_the_zone() {
        let c = tokyo_weekdays_with_a_holiday();
        // Friday 2026-11-20 17:00 Tokyo = 08:00 UTC. Eight business hours later:
        // 1 h on Friday, nothing on the weekend or the Monday holiday, 7 h on Tuesday.
        let from = utc("2026-11-20T08:00:00Z");
        let due = c.add(from, Duration::hours(8)).expect("due");
        assert_eq!(due, utc("2026-11-24T07:00:00Z"), "Tuesday 16:00 Tokyo");
        assert_eq!(c.between(from, due), Duration::hours(8));
        // Around the clock it is Saturday 01:00 Tokyo.
        assert_eq!(
            after(None, from, Duration::hours(8)),
            Some(utc("2026-11-20T16:00:00Z"))
        );
        // From a closed moment, the clock starts at the next opening.
        let sunday = utc("2026-11-22T03:00:00Z");
        assert_eq!(
            c.add(sunday, Duration::minutes(30)),
            Some(utc("2026-11-24T00:30:00Z"))
        );
    }

    #[test]
    fn a_day_across_a_dst_change_counts_its_real_hours() {
        let c = CalendarSpec {
            time_zone: "Europe/Berlin".into(),
            weekly: (1..=7)
                .map(|d| (d, "00:00".into(), "24:00".into()))
                .collect(),
            holidays: vec![],
        }
        .compile()
        .expect("valid");
        // Sunday 2026-03-29: clocks go forward, the day has 23 hours.
        let a = utc("2026-03-28T23:00:00Z");
        let b = utc("2026-03-29T22:00:00Z");
        assert_eq!(c.between(a, b), Duration::hours(23));
    }

    #[test]
    fn bad_calendars_name_their_fields() {
        let mut v = Violations::new();
        CalendarSpec {
            time_zone: "Mars/Olympus".into(),
            weekly: vec![(8, "09:00".into(), "08:00".into())],
            holidays: vec!["2026-13-01".into()],
        }
        .check(&mut v);
        let e = v.into_result().expect_err("bad");
        assert_eq!(
            helpdesk_kit::grpc::violated_fields(&e),
            vec![
                "calendar.time_zone",
                "calendar.weekly[0].weekday",
                "calendar.weekly[0]",
                "calendar.holidays[0]"
            ]
        );
    }
}
