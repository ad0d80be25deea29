//! Business hours: validation of the proto form, the stored form and evaluation
//! (open now? next opening?) in the hours' own time zone, DST included.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::grpc::Violations;
use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta,
    TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use helpdesk_proto::routing::v1::{BusinessHours, DaySchedule, SpecialDay, TimeRange};

type Instant = DateTime<Utc>;
/// A valid range in minutes of the day, [start, end), with the field it came from.
type Checked = (u32, u32, String);

/// Stored form (serde JSON), close to the proto.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HoursSpec {
    /// IANA zone, e.g. "Europe/Berlin".
    pub time_zone: String,
    /// (weekday 1=Mon..7=Sun, "HH:MM", "HH:MM")
    pub weekly: Vec<(u32, String, String)>,
    /// "YYYY-MM-DD", closed all day.
    pub holidays: Vec<String>,
    /// Date -> ranges replacing the weekly ones (empty = closed).
    pub special_days: Vec<(String, Vec<(String, String)>)>,
}

impl HoursSpec {
    /// Validates `hours` (fields under `hours.`) and returns the spec, sorted; violations are
    /// added to `v`.
    pub fn from_proto(hours: &BusinessHours, v: &mut Violations) -> HoursSpec {
        let time_zone = hours.time_zone.clone();
        if time_zone.is_empty() {
            v.add("hours.time_zone", "is required");
        } else if time_zone.parse::<Tz>().is_err() {
            v.add("hours.time_zone", "unknown IANA time zone");
        }
        let mut weekly = Vec::new();
        let mut per_day: BTreeMap<u32, Vec<Checked>> = BTreeMap::new();
        for (i, day) in hours.weekly.iter().enumerate() {
            let field = format!("hours.weekly[{i}]");
            let Ok(weekday @ 1..=7) = u32::try_from(day.weekday) else {
                v.add(format!("{field}.weekday"), "must be 1 (Monday) to 7");
                continue;
            };
            let checked = check_ranges(&day.ranges, &field, v);
            per_day.entry(weekday).or_default().extend(checked);
            weekly.extend(day.ranges.iter().map(pair).map(|(s, e)| (weekday, s, e)));
        }
        per_day.into_values().for_each(|r| check_overlaps(r, v));
        weekly.sort();

        let mut seen = HashSet::new();
        for (i, date) in hours.holidays.iter().enumerate() {
            check_date(date, format!("hours.holidays[{i}]"), &mut seen, v);
        }
        let mut holidays = hours.holidays.clone();
        holidays.sort();

        let mut seen = HashSet::new();
        let mut special_days = Vec::new();
        for (i, day) in hours.special_days.iter().enumerate() {
            let field = format!("hours.special_days[{i}]");
            check_date(&day.date, format!("{field}.date"), &mut seen, v);
            check_overlaps(check_ranges(&day.ranges, &field, v), v);
            let mut ranges: Vec<_> = day.ranges.iter().map(pair).collect();
            ranges.sort();
            special_days.push((day.date.clone(), ranges));
        }
        special_days.sort();
        HoursSpec {
            time_zone,
            weekly,
            holidays,
            special_days,
        }
    }

    /// Back to proto fields (weekly grouped by weekday, sorted), leaving account/team/inbox/
    /// message/policy default.
    pub fn to_proto(&self) -> BusinessHours {
        let mut grouped: BTreeMap<u32, Vec<(String, String)>> = BTreeMap::new();
        for (day, start, end) in &self.weekly {
            let range = (start.clone(), end.clone());
            grouped.entry(*day).or_default().push(range);
        }
        let weekly = grouped.into_iter().map(|(day, ranges)| DaySchedule {
            weekday: i32::try_from(day).unwrap_or_default(),
            ranges: time_ranges(ranges),
        });
        let special_days = self.special_days.iter().map(|(date, ranges)| SpecialDay {
            date: date.clone(),
            ranges: time_ranges(ranges.clone()),
        });
        BusinessHours {
            time_zone: self.time_zone.clone(),
            weekly: weekly.collect(),
            holidays: self.holidays.clone(),
            special_days: special_days.collect(),
            ..Default::default()
        }
    }

    /// Compiles for evaluation; None if the spec is invalid (should not happen after validation).
    pub fn compile(&self) -> Option<Hours> {
        let tz = self.time_zone.parse::<Tz>().ok()?;
        let mut weekly: [Vec<(u32, u32)>; 7] = Default::default();
        for (day, start, end) in &self.weekly {
            let ranges = weekly.get_mut(day.checked_sub(1)? as usize)?;
            ranges.push(parse_range(start, end)?);
        }
        for ranges in &mut weekly {
            sort_disjoint(ranges)?;
        }
        let holidays = self.holidays.iter().map(|d| parse_date(d));
        let holidays = holidays.collect::<Option<_>>()?;
        let mut special = HashMap::new();
        for (date, ranges) in &self.special_days {
            let ranges = ranges.iter().map(|(s, e)| parse_range(s, e));
            let mut ranges = ranges.collect::<Option<Vec<_>>>()?;
            sort_disjoint(&mut ranges)?;
            if special.insert(parse_date(date)?, ranges).is_some() {
                return None;
            }
        }
        Some(Hours {
            tz,
            weekly,
            holidays,
            special,
        })
    }
}

/// Evaluable business hours.
#[derive(Debug, Clone)]
pub struct Hours {
    tz: Tz,
    /// Monday first; minutes of the day, [start, end), sorted and disjoint.
    weekly: [Vec<(u32, u32)>; 7],
    holidays: HashSet<NaiveDate>,
    special: HashMap<NaiveDate, Vec<(u32, u32)>>,
}

impl Hours {
    /// Open at this instant? Local date/time in the zone: a holiday is closed all day; a special
    /// day uses its own ranges (empty = closed); otherwise the weekday's ranges, each
    /// [start, end).
    pub fn is_open(&self, at: Instant) -> bool {
        local(at, self.offset(at)).is_some_and(|l| self.open_local(l))
    }

    /// The first instant >= `at` at which it is open (== at if open now); None if it does not open
    /// within 400 days. A local opening time skipped by DST opens at the first valid instant after
    /// it; a repeated one uses the earlier instant.
    pub fn next_open(&self, at: Instant) -> Option<Instant> {
        let limit = at.checked_add_signed(TimeDelta::days(400));
        let limit = limit.unwrap_or(DateTime::<Utc>::MAX_UTC);
        // Spans of constant UTC offset, in which local time moves with UTC.
        let mut from = at;
        while from < limit {
            let offset = self.offset(from);
            let until = self.offset_change(from, offset, limit);
            if let Some(t) = self.first_open_in(from, until, offset) {
                return Some(t);
            }
            from = until;
        }
        None
    }

    fn offset(&self, at: Instant) -> FixedOffset {
        self.tz.offset_from_utc_datetime(&at.naive_utc()).fix()
    }

    fn ranges(&self, date: NaiveDate) -> &[(u32, u32)] {
        if self.holidays.contains(&date) {
            return &[];
        }
        let weekday = date.weekday().num_days_from_monday() as usize;
        let ranges = self.special.get(&date).or(self.weekly.get(weekday));
        ranges.map_or(&[], Vec::as_slice)
    }

    fn open_local(&self, at: NaiveDateTime) -> bool {
        let minute = at.hour() * 60 + at.minute();
        let ranges = self.ranges(at.date());
        ranges.iter().any(|&(s, e)| s <= minute && minute < e)
    }

    /// First open instant in `[from, until)`, the offset being `offset` throughout.
    fn first_open_in(&self, from: Instant, until: Instant, offset: FixedOffset) -> Option<Instant> {
        let start = local(from, offset)?;
        if self.open_local(start) {
            return Some(from);
        }
        let mut date = start.date();
        loop {
            let midnight = date.and_time(NaiveTime::MIN);
            if utc(midnight, offset)? >= until {
                return None;
            }
            for &(s, _) in self.ranges(date) {
                let opens = midnight.checked_add_signed(TimeDelta::minutes(i64::from(s)))?;
                if opens > start {
                    return utc(opens, offset).filter(|t| *t < until);
                }
            }
            date = date.succ_opt()?;
        }
    }

    /// The first instant after `from` whose offset is not `offset`, or `limit`.
    fn offset_change(&self, from: Instant, offset: FixedOffset, limit: Instant) -> Instant {
        let mut lo = from;
        loop {
            let probe = lo.checked_add_signed(TimeDelta::hours(6));
            let probe = probe.map_or(limit, |p| p.min(limit));
            if self.offset(probe) != offset {
                // Offsets change on whole seconds: bisect to the first one.
                let (mut lo_s, mut hi_s) = (lo.timestamp(), probe.timestamp());
                while hi_s - lo_s > 1 {
                    let mid = lo_s + (hi_s - lo_s) / 2;
                    match DateTime::from_timestamp(mid, 0) {
                        Some(m) if self.offset(m) == offset => lo_s = mid,
                        _ => hi_s = mid,
                    }
                }
                return DateTime::from_timestamp(hi_s, 0).map_or(probe, |t| t.max(from));
            }
            if probe >= limit {
                return limit;
            }
            lo = probe;
        }
    }
}

fn local(at: Instant, offset: FixedOffset) -> Option<NaiveDateTime> {
    let shift = TimeDelta::seconds(i64::from(offset.local_minus_utc()));
    at.naive_utc().checked_add_signed(shift)
}

fn utc(local: NaiveDateTime, offset: FixedOffset) -> Option<Instant> {
    let shift = TimeDelta::seconds(i64::from(offset.local_minus_utc()));
    local.checked_sub_signed(shift).map(|n| n.and_utc())
}

fn pair(r: &TimeRange) -> (String, String) {
    (r.start.clone(), r.end.clone())
}

fn time_ranges(mut ranges: Vec<(String, String)>) -> Vec<TimeRange> {
    ranges.sort();
    let range = |(start, end): (String, String)| TimeRange { start, end };
    ranges.into_iter().map(range).collect()
}

/// "HH:MM" as minutes of the day; "24:00" only when `end`.
fn parse_time(s: &str, end: bool) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let minutes = h.parse::<u32>().ok()? * 60 + m.parse::<u32>().ok().filter(|m| *m < 60)?;
    (minutes < 24 * 60 || (end && minutes == 24 * 60)).then_some(minutes)
}

fn parse_range(start: &str, end: &str) -> Option<(u32, u32)> {
    let (s, e) = (parse_time(start, false)?, parse_time(end, true)?);
    (e > s).then_some((s, e))
}

/// A strict "YYYY-MM-DD" date.
fn parse_date(s: &str) -> Option<NaiveDate> {
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    (date.format("%Y-%m-%d").to_string() == s).then_some(date)
}

/// Sorts `ranges`; None if two overlap.
fn sort_disjoint(ranges: &mut [(u32, u32)]) -> Option<()> {
    ranges.sort_unstable();
    ranges.windows(2).all(|w| w[1].0 >= w[0].1).then_some(())
}

fn check_date(date: &str, field: String, seen: &mut HashSet<NaiveDate>, v: &mut Violations) {
    match parse_date(date) {
        None => v.add(field, "must be a date YYYY-MM-DD"),
        Some(d) if !seen.insert(d) => v.add(field, "duplicate date"),
        Some(_) => {}
    }
}

/// Validates the `ranges` of the entry at `prefix`; returns the valid ones.
fn check_ranges(ranges: &[TimeRange], prefix: &str, v: &mut Violations) -> Vec<Checked> {
    let mut valid = Vec::new();
    for (j, r) in ranges.iter().enumerate() {
        let field = format!("{prefix}.ranges[{j}]");
        let (start, end) = (parse_time(&r.start, false), parse_time(&r.end, true));
        if start.is_none() {
            v.add(format!("{field}.start"), "must be HH:MM, 00:00 to 23:59");
        }
        if end.is_none() {
            v.add(format!("{field}.end"), "must be HH:MM, 00:01 to 24:00");
        }
        match (start, end) {
            (Some(s), Some(e)) if e > s => valid.push((s, e, field)),
            (Some(_), Some(_)) => v.add(format!("{field}.end"), "must be after start"),
            _ => {}
        }
    }
    valid
}

/// Reports each range overlapping one that starts earlier the same day.
fn check_overlaps(mut ranges: Vec<Checked>, v: &mut Violations) {
    ranges.sort_by_key(|r| (r.0, r.1));
    let mut reach = 0;
    for (s, e, field) in ranges {
        if s < reach {
            v.add(field, "overlapping hours");
        }
        reach = reach.max(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Ranges<'a> = &'a [(&'a str, &'a str)];
    const NINE_TO_FIVE: Ranges = &[("09:00", "17:00")];
    /// Mon–Fri 09:00–17:00.
    fn office() -> Vec<(i32, Ranges<'static>)> {
        (1..=5).map(|d| (d, NINE_TO_FIVE)).collect()
    }

    fn ranges(r: Ranges) -> Vec<TimeRange> {
        let range = |(s, e): &(&str, &str)| TimeRange {
            start: s.to_string(),
            end: e.to_string(),
        };
        r.iter().map(range).collect()
    }

    /// Proto hours: one weekly entry per (weekday, ranges), holidays, special days.
    fn proto(
        tz: &str,
        weekly: &[(i32, Ranges)],
        holidays: &[&str],
        special: &[(&str, Ranges)],
    ) -> BusinessHours {
        let day = |&(weekday, r): &(i32, Ranges)| DaySchedule {
            weekday,
            ranges: ranges(r),
        };
        let special_day = |(d, r): &(&str, Ranges)| SpecialDay {
            date: d.to_string(),
            ranges: ranges(r),
        };
        BusinessHours {
            time_zone: tz.into(),
            weekly: weekly.iter().map(day).collect(),
            holidays: holidays.iter().map(|d| d.to_string()).collect(),
            special_days: special.iter().map(special_day).collect(),
            ..Default::default()
        }
    }

    /// Validates (expecting no violations) and compiles.
    fn compile(hours: &BusinessHours) -> Hours {
        let mut v = Violations::new();
        let spec = HoursSpec::from_proto(hours, &mut v);
        assert!(v.into_result().is_ok(), "unexpected violations");
        spec.compile().expect("valid spec compiles")
    }

    /// Whitespace-separated cases, instants in UTC: `+T` open at T, `-T` closed at T,
    /// `T>U` next_open(T) is U (or `none`).
    fn check(h: &Hours, cases: &str) {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).expect(s).to_utc();
        for case in cases.split_whitespace() {
            if let Some((from, to)) = case.split_once('>') {
                let next = h.next_open(at(from)).map(|t| t.format("%FT%TZ"));
                let next = next.map_or("none".into(), |t| t.to_string());
                assert_eq!(next, to, "next_open({from})");
            } else {
                assert_eq!(h.is_open(at(&case[1..])), case.starts_with('+'), "{case}");
            }
        }
    }

    /// Asserts exactly `expected` (field, part of the description) were reported.
    fn assert_violations(hours: &BusinessHours, expected: &[(&str, &str)]) {
        let mut v = Violations::new();
        HoursSpec::from_proto(hours, &mut v);
        let status = v.into_result().expect_err("violations expected");
        let message = status.message().trim_start_matches("invalid argument: ");
        let pairs = message.split("; ").flat_map(|p| p.split_once(": "));
        let v: Vec<_> = pairs.collect();
        for (field, needle) in expected {
            let found = v.iter().any(|(f, d)| f == field && d.contains(needle));
            assert!(found, "{field} {needle}: {v:?}");
        }
        assert_eq!(v.len(), expected.len(), "{v:?}");
    }

    #[test]
    fn open_at_boundaries_in_berlin_and_new_york() {
        // Monday 2024-06-03, Berlin UTC+2: 09:00 open, 17:00 closed; Saturday closed.
        let h = compile(&proto("Europe/Berlin", &office(), &[], &[]));
        let cases = "-2024-06-03T06:59:59Z +2024-06-03T07:00:00Z +2024-06-03T14:59:59Z \
                     -2024-06-03T15:00:00Z +2024-06-07T08:00:00Z -2024-06-08T10:00:00Z";
        check(&h, cases);
        // Monday 2024-01-08, New York UTC-5; Friday 20:00 local is Saturday in UTC.
        let h = compile(&proto("America/New_York", &office(), &[], &[]));
        let cases = "-2024-01-08T13:59:59Z +2024-01-08T14:00:00Z +2024-01-08T21:59:59Z \
                     -2024-01-08T22:00:00Z +2024-01-12T21:30:00Z -2024-01-13T01:00:00Z";
        check(&h, cases);
    }

    #[test]
    fn holiday_and_special_days() {
        let special: &[(&str, Ranges)] = &[
            ("2024-06-05", &[("10:00", "12:00")]),
            ("2024-06-06", &[]),
            ("2024-06-08", &[("10:00", "14:00")]),
        ];
        let h = compile(&proto("Europe/Berlin", &office(), &["2024-06-04"], special));
        // Tuesday holiday; Wednesday 10:00-12:00 only; Thursday closed; Saturday 10:00-14:00.
        let cases = "+2024-06-03T08:00:00Z -2024-06-04T07:00:00Z -2024-06-04T12:00:00Z \
                     -2024-06-05T07:30:00Z +2024-06-05T08:00:00Z +2024-06-05T09:59:59Z \
                     -2024-06-05T10:00:00Z -2024-06-06T08:00:00Z +2024-06-08T09:00:00Z \
                     2024-06-03T16:00:00Z>2024-06-05T08:00:00Z \
                     2024-06-05T10:00:00Z>2024-06-07T07:00:00Z";
        check(&h, cases);
    }

    #[test]
    fn next_open_now_across_weekend_and_dst() {
        let h = compile(&proto("America/New_York", &office(), &[], &[]));
        let now = DateTime::parse_from_rfc3339("2024-01-10T15:00:00.5Z").expect("instant");
        assert_eq!(h.next_open(now.to_utc()), Some(now.to_utc()));
        // Friday 17:00 -> Monday 09:00; early Monday -> same day; Friday EST -> Monday EDT
        // (2024-03-10), Friday EDT -> Monday EST (2024-11-03).
        let cases = "2024-01-12T22:00:00Z>2024-01-15T14:00:00Z \
                     2024-01-15T05:00:00Z>2024-01-15T14:00:00Z \
                     2024-03-08T22:00:00Z>2024-03-11T13:00:00Z \
                     2024-11-01T21:00:00Z>2024-11-04T14:00:00Z";
        check(&h, cases);
        // Berlin: Saturday CET evening -> Monday 09:00 CEST (2024-03-31).
        let h = compile(&proto("Europe/Berlin", &office(), &[], &[]));
        check(&h, "2024-03-30T17:00:00Z>2024-04-01T07:00:00Z");
    }

    #[test]
    fn openings_in_dst_gap_or_overlap() {
        let h = |date, r| compile(&proto("Europe/Berlin", &[], &[], &[(date, r)]));
        // 2024-03-31: 02:00 CET -> 03:00 CEST at 01:00 UTC; 02:30 opens at 03:00 CEST.
        let cases = "2024-03-30T20:00:00Z>2024-03-31T01:00:00Z -2024-03-31T00:59:59Z";
        check(&h("2024-03-31", &[("02:30", "04:00")]), cases);
        let gap = h("2024-03-31", &[("02:00", "02:30")]);
        check(&gap, "2024-03-30T20:00:00Z>none");
        // 2024-10-27: 03:00 CEST -> 02:00 CET at 01:00 UTC; 02:30 uses the earlier instant.
        let cases = "2024-10-26T20:00:00Z>2024-10-27T00:30:00Z";
        check(&h("2024-10-27", &[("02:30", "04:00")]), cases);
        // After a first 02:00-02:30 the clock falls back into it.
        let cases = "2024-10-27T00:45:00Z>2024-10-27T01:00:00Z -2024-10-27T01:30:00Z";
        check(&h("2024-10-27", &[("02:00", "02:30")]), cases);
    }

    #[test]
    fn end_of_day_and_never_open() {
        let weekly: &[(i32, Ranges)] = &[(6, &[("20:00", "24:00")]), (7, &[("00:00", "02:00")])];
        let h = compile(&proto("Europe/Berlin", weekly, &[], &[]));
        let cases = "+2024-06-08T21:59:59Z +2024-06-08T22:00:00Z -2024-06-09T00:00:00Z \
                     2024-06-09T00:00:00Z>2024-06-15T18:00:00Z";
        check(&h, cases);
        let h = compile(&proto("UTC", &[], &[], &[]));
        check(&h, "-2024-06-03T10:00:00Z 2024-06-03T10:00:00Z>none");
        assert_eq!(h.next_open(DateTime::<Utc>::MAX_UTC), None);
        let h = compile(&proto("UTC", &[], &[], &[("2026-01-01", NINE_TO_FIVE)]));
        let cases = "2024-06-03T10:00:00Z>none 2025-06-03T10:00:00Z>2026-01-01T09:00:00Z";
        check(&h, cases);
    }

    #[test]
    fn overlapping_ranges_are_reported() {
        let mut weekly = office();
        weekly.push((3, &[("16:00", "18:00")]));
        let expected = [("hours.weekly[5].ranges[0]", "overlapping")];
        assert_violations(&proto("Europe/Berlin", &weekly, &[], &[]), &expected);
        // Within one entry; touching ranges are fine.
        let day: Ranges = &[("12:00", "14:00"), ("09:00", "12:00"), ("13:00", "15:00")];
        let expected = [("hours.weekly[0].ranges[2]", "overlapping")];
        assert_violations(&proto("UTC", &[(1, day)], &[], &[]), &expected);
    }

    #[test]
    fn bad_zone_times_and_dates_are_reported() {
        let expected = [("hours.time_zone", "unknown")];
        assert_violations(&proto("Mars/Olympus", &office(), &[], &[]), &expected);
        let expected = [("hours.time_zone", "required")];
        assert_violations(&proto("", &office(), &[], &[]), &expected);
        let monday: Ranges = &[("9:00", "17:00"), ("24:00", "24:00"), ("10:60", "25:00")];
        let tuesday: Ranges = &[("12:00", "12:00"), ("13:00", "11:00"), ("00:00", "24:00")];
        let weekly = [(1, monday), (2, tuesday), (0, NINE_TO_FIVE), (8, &[])];
        let holidays = ["2024-02-30", "2024-12-25", "2024-12-25", "2024-1-5"];
        let overlapping: Ranges = &[("08:00", "12:00"), ("11:00", "13:00")];
        let special = [
            ("bad", &[][..]),
            ("2024-12-24", &[]),
            ("2024-12-24", overlapping),
        ];
        let expected = [
            ("hours.weekly[0].ranges[0].start", "HH:MM"),
            ("hours.weekly[0].ranges[1].start", "HH:MM"),
            ("hours.weekly[0].ranges[2].start", "HH:MM"),
            ("hours.weekly[0].ranges[2].end", "HH:MM"),
            ("hours.weekly[1].ranges[0].end", "after start"),
            ("hours.weekly[1].ranges[1].end", "after start"),
            ("hours.weekly[2].weekday", "1 (Monday)"),
            ("hours.weekly[3].weekday", "1 (Monday)"),
            ("hours.holidays[0]", "date"),
            ("hours.holidays[2]", "duplicate"),
            ("hours.holidays[3]", "date"),
            ("hours.special_days[0].date", "date"),
            ("hours.special_days[2].date", "duplicate"),
            ("hours.special_days[2].ranges[1]", "overlapping"),
        ];
        assert_violations(&proto("UTC", &weekly, &holidays, &special), &expected);
    }

    #[test]
    fn round_trip_and_storage() {
        let wednesday: Ranges = &[("13:00", "17:00"), ("08:00", "12:00")];
        let weekly = [
            (3, wednesday),
            (1, NINE_TO_FIVE),
            (3, &[("18:00", "24:00")][..]),
        ];
        let special = [("2024-12-31", wednesday), ("2024-11-29", &[][..])];
        let holidays = ["2024-12-25", "2024-07-04"];
        let mut hours = proto("America/New_York", &weekly, &holidays, &special);
        hours.account_id = "acc".into();
        hours.outside_hours_policy = 2;
        let mut v = Violations::new();
        let spec = HoursSpec::from_proto(&hours, &mut v);
        let back = spec.to_proto();
        let mut expected = proto("America/New_York", &[(1, NINE_TO_FIVE), (3, &[])], &[], &[]);
        expected.weekly[1].ranges =
            ranges(&[("08:00", "12:00"), ("13:00", "17:00"), ("18:00", "24:00")]);
        assert_eq!(back.weekly, expected.weekly);
        assert!(back.account_id.is_empty() && back.outside_hours_policy == 0);
        assert_eq!(back.holidays, ["2024-07-04", "2024-12-25"]);
        assert_eq!(HoursSpec::from_proto(&back, &mut v), spec);
        assert!(v.into_result().is_ok());
        let json = serde_json::to_string(&spec).expect("serializes");
        let stored: HoursSpec = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(stored, spec);
    }

    #[test]
    fn invalid_spec_does_not_compile() {
        let spec = HoursSpec {
            time_zone: "Europe/Berlin".into(),
            weekly: vec![(1, "09:00".into(), "17:00".into())],
            holidays: vec![],
            special_days: vec![],
        };
        assert!(spec.compile().is_some());
        let broken = |change: fn(&mut HoursSpec)| {
            let mut s = spec.clone();
            change(&mut s);
            assert!(s.compile().is_none(), "{s:?}");
        };
        broken(|s| s.time_zone = "Nowhere/City".into());
        broken(|s| s.weekly[0].0 = 8);
        broken(|s| s.weekly[0].0 = 0);
        broken(|s| s.weekly[0].2 = "08:00".into());
        broken(|s| s.weekly.push((1, "16:00".into(), "18:00".into())));
        broken(|s| s.holidays.push("2024-13-01".into()));
        broken(|s| {
            s.special_days
                .push(("2024-01-01".into(), vec![("x".into(), "".into())]))
        });
    }
}
