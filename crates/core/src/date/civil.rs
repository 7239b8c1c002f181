//! Turning matched strftime fields into unix time, the way fail2ban's
//! `reGroupDictStrptime` does it.
//!
//! Receives the field texts of one match (year, month, day, … zone) plus the clock
//! (`now` and the default zone) and emits whole unix seconds, or `None` where fail2ban
//! raises (impossible date, unknown zone). fail2ban compares *naive* datetimes: a date
//! with its own zone is shifted to UTC-naive, then compared with `now` as naive local
//! time; we keep that quirk. Local conversion (mktime) caches the UTC offset of the last
//! local day without a transition (checked against the zone's transition list), so the
//! common case is integer arithmetic only; `day_span`/`date_span` hand a whole day (on a
//! transition day: an hour) of values to the detector's sticky cache at once.

use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::Timestamp;

/// strptime fields fail2ban knows about (group names of its time regexes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    /// `Y`: 4-digit year.
    Y,
    /// `y`: 2-digit year.
    LowY,
    /// `m`: month number.
    Mon,
    /// `B`: full month name.
    MonName,
    /// `b`: abbreviated month name.
    MonAbbr,
    /// `d`: day of month.
    Day,
    /// `H`: 24h hour.
    Hour,
    /// `I`: 12h hour.
    Hour12,
    /// `M`: minute.
    Min,
    /// `S`: second.
    Sec,
    /// `A`: full weekday name.
    WdayName,
    /// `a`: abbreviated weekday name.
    WdayAbbr,
    /// `w`: weekday number (0 = Sunday).
    Wday,
    /// `j`: day of year.
    Yday,
    /// `U`: week of year (Sunday first).
    WeekU,
    /// `W`: week of year (Monday first).
    WeekW,
    /// `z` or `Z`: zone.
    Zone,
    /// `p`: am/pm.
    AmPm,
}

impl Field {
    /// The field a regex group name stands for (fail2ban ignores the others).
    pub(crate) fn from_name(name: &str) -> Option<Field> {
        Some(match name {
            "Y" => Field::Y,
            "y" => Field::LowY,
            "m" => Field::Mon,
            "B" => Field::MonName,
            "b" => Field::MonAbbr,
            "d" => Field::Day,
            "H" => Field::Hour,
            "I" => Field::Hour12,
            "M" => Field::Min,
            "S" => Field::Sec,
            "A" => Field::WdayName,
            "a" => Field::WdayAbbr,
            "w" => Field::Wday,
            "j" => Field::Yday,
            "U" => Field::WeekU,
            "W" => Field::WeekW,
            "z" | "Z" => Field::Zone,
            "p" => Field::AmPm,
            _ => return None,
        })
    }
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Month number (1-based) of an English month abbreviation, any case.
pub(crate) fn month_abbr(s: &[u8]) -> Option<i64> {
    let &[a, b, c] = s else {
        return None;
    };
    // `| 0x20` lower-cases ASCII letters; only letters land in `a..=z` afterwards.
    Some(match [a | 0x20, b | 0x20, c | 0x20] {
        [b'j', b'a', b'n'] => 1,
        [b'f', b'e', b'b'] => 2,
        [b'm', b'a', b'r'] => 3,
        [b'a', b'p', b'r'] => 4,
        [b'm', b'a', b'y'] => 5,
        [b'j', b'u', b'n'] => 6,
        [b'j', b'u', b'l'] => 7,
        [b'a', b'u', b'g'] => 8,
        [b's', b'e', b'p'] => 9,
        [b'o', b'c', b't'] => 10,
        [b'n', b'o', b'v'] => 11,
        [b'd', b'e', b'c'] => 12,
        _ => return None,
    })
}

fn name_index(list: &[&str], s: &str, abbr: bool) -> Option<i64> {
    if s.is_ascii() {
        // common case without allocation
        return list
            .iter()
            .position(|m| {
                let m = if abbr { m.get(..3).unwrap_or(m) } else { m };
                m.eq_ignore_ascii_case(s)
            })
            .map(|i| i as i64);
    }
    let lower = s.to_lowercase();
    list.iter()
        .position(|m| {
            if abbr {
                m.get(..3) == Some(&lower)
            } else {
                *m == lower
            }
        })
        .map(|i| i as i64)
}

/// Local civil seconds as a jiff civil datetime.
fn civil_datetime(civil: i64) -> Option<jiff::civil::DateTime> {
    let day = civil.div_euclid(86_400);
    let sod = civil - day * 86_400;
    let (y, m, d) = civil_from_days(day);
    jiff::civil::DateTime::new(
        i16::try_from(y).ok()?,
        m as i8,
        d as i8,
        (sod / 3600) as i8,
        (sod / 60 % 60) as i8,
        (sod % 60) as i8,
        0,
    )
    .ok()
}

/// See [`Clock::day_span`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DaySpan {
    /// First second of the day (0..86_400) the span covers.
    pub lo: u32,
    /// Last second of the day the span covers.
    pub hi: u32,
    /// Unix seconds of the day's local midnight as seen from the span's offset.
    pub base: i64,
}

/// Python `int(text)`: optional surrounding whitespace, optional sign, digits.
fn py_int(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if !b.is_empty() && b.len() <= 12 && b.iter().all(u8::is_ascii_digit) {
        return Some(b.iter().fold(0, |a, c| a * 10 + i64::from(c - b'0')));
    }
    let t = s.trim();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut v: i64 = 0;
    for c in digits.bytes() {
        v = v * 10 + i64::from(c - b'0');
    }
    Some(if neg { -v } else { v })
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of days since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

pub(crate) fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Python `datetime(y, m, d, H, M, S)` validity.
fn valid(y: i64, m: i64, d: i64, h: i64, mi: i64, s: i64) -> bool {
    (1..=9999).contains(&y)
        && (1..=12).contains(&m)
        && d >= 1
        && d <= days_in_month(y, m)
        && (0..24).contains(&h)
        && (0..60).contains(&mi)
        && (0..60).contains(&s)
}

/// The raw fields of one match: `(field, text)` in regex group order.
pub(crate) type FieldTexts<'a> = &'a [(Field, &'a str)];

/// `now` and the default zone, with caches for local-time conversion.
#[derive(Clone, Debug)]
pub(crate) struct Clock {
    tz: TimeZone,
    now: i64,
    /// `now` as naive local seconds (civil seconds since 1970 in `tz`).
    now_civil: i64,
    now_ymd: (i64, i64, i64),
    /// Last local day converted and its offset (seconds), if the day has no transition.
    day_cache: Option<(i64, i64)>,
}

impl Clock {
    pub(crate) fn new(tz: TimeZone, now: i64) -> Clock {
        let mut c = Clock {
            tz,
            now: 0,
            now_civil: 0,
            now_ymd: (1970, 1, 1),
            day_cache: None,
        };
        c.set_now(now);
        c
    }

    pub(crate) fn now(&self) -> i64 {
        self.now
    }

    pub(crate) fn now_year(&self) -> i64 {
        self.now_ymd.0
    }

    pub(crate) fn set_now(&mut self, now: i64) {
        if now == self.now && self.now_civil != 0 {
            return;
        }
        self.now = now;
        let off = Timestamp::from_second(now)
            .map(|ts| i64::from(self.tz.to_offset(ts).seconds()))
            .unwrap_or(0);
        self.now_civil = now + off;
        self.now_ymd = civil_from_days(self.now_civil.div_euclid(86_400));
    }

    /// The UTC offset of local civil second `civil` if it is unambiguous (no gap, no fold).
    fn unambiguous_offset(&self, civil: i64) -> Option<i64> {
        let dt = civil_datetime(civil)?;
        match self.tz.to_ambiguous_timestamp(dt).offset() {
            AmbiguousOffset::Unambiguous { offset } => Some(i64::from(offset.seconds())),
            _ => None,
        }
    }

    /// The offset shared by every local civil second in `lo..=hi`, if there is one: both
    /// ends unambiguous with the same offset and no transition in between. (Checking
    /// only the ends would miss a day with two transitions; an unambiguous `hi` also
    /// rules out a fold reaching back into the span from a transition just after it.)
    fn constant_offset(&self, lo: i64, hi: i64) -> Option<i64> {
        let a = self.unambiguous_offset(lo)?;
        if self.unambiguous_offset(hi)? != a {
            return None;
        }
        let start = Timestamp::from_second(lo - a).ok()?;
        match self.tz.following(start).next() {
            Some(t) if t.timestamp().as_second() <= hi - a => None,
            _ => Some(a),
        }
    }

    /// `time.mktime`'s offset for naive local civil seconds `civil` (glibc: a time in
    /// a gap uses the offset before it, a time in a fold the offset after it).
    fn mktime_offset(&self, civil: i64) -> Option<i64> {
        let dt = civil_datetime(civil)?;
        let off = match self.tz.to_ambiguous_timestamp(dt).offset() {
            AmbiguousOffset::Unambiguous { offset } => offset,
            AmbiguousOffset::Gap { before, .. } => before,
            AmbiguousOffset::Fold { after, .. } => after,
        };
        Some(i64::from(off.seconds()))
    }

    /// A span of local civil seconds around `civil` over which `time.mktime` uses one
    /// offset: `(lo, hi, offset)`. The whole local day when it has no transition (the
    /// common case, cached), else the hour around `civil`, else `civil` alone.
    fn offset_span(&mut self, civil: i64) -> Option<(i64, i64, i64)> {
        let day = civil.div_euclid(86_400);
        let (d0, d1) = (day * 86_400, day * 86_400 + 86_399);
        if let Some((d, off)) = self.day_cache {
            if d == day {
                return Some((d0, d1, off));
            }
        }
        if let Some(off) = self.constant_offset(d0, d1) {
            self.day_cache = Some((day, off));
            return Some((d0, d1, off));
        }
        let h0 = civil - civil.rem_euclid(3600);
        if let Some(off) = self.constant_offset(h0, h0 + 3599) {
            return Some((h0, h0 + 3599, off));
        }
        Some((civil, civil, self.mktime_offset(civil)?))
    }

    /// `time.mktime` of naive local civil seconds (glibc: a time in a gap uses the
    /// offset before it, a time in a fold the offset after it).
    pub(crate) fn local_to_unix(&mut self, civil: i64) -> Option<i64> {
        let (_, _, off) = self.offset_span(civil)?;
        Some(civil - off)
    }

    /// The value of a full local date without zone (ISO `YYYY-MM-DD HH:MM:SS`) for every
    /// second of a day at once, like [`Clock::day_span`].
    pub(crate) fn date_span(
        &mut self,
        year: i64,
        month: i64,
        day: i64,
        tod: i64,
    ) -> Option<DaySpan> {
        if !valid(year, month, day, 0, 0, 0) {
            return None;
        }
        let c0 = days_from_civil(year, month, day) * 86_400;
        let (lo, hi, off) = self.offset_span(c0 + tod)?;
        Some(DaySpan {
            lo: u32::try_from(lo - c0).ok()?,
            hi: u32::try_from(hi - c0).ok()?,
            base: c0 - off,
        })
    }

    /// The value of a date without year and zone (syslog `Mmm dd HH:MM:SS`) for every
    /// second of a day at once: `compute` of month `month`, day `day` and a time of day
    /// `tod` (seconds, valid hour/minute/second) gives `base + t` for every `t` in
    /// `lo..=hi` (a range holding `tod`: same inferred year, same UTC offset).
    /// `None` where `compute` gives `None`.
    pub(crate) fn day_span(&mut self, month: i64, day: i64, tod: i64) -> Option<DaySpan> {
        let year = self.now_ymd.0;
        if !valid(year, month, day, 0, 0, 0) {
            return None;
        }
        let c0 = days_from_civil(year, month, day) * 86_400;
        // `compute`: a date more than a day ahead of now is last year's; the date is
        // replaced, the time of day kept.
        let limit = self.now_civil + 86_400 - c0;
        let (c0, lo, hi) = if tod <= limit {
            (c0, 0, limit.min(86_399))
        } else {
            if !valid(year - 1, month, day, 0, 0, 0) {
                return None;
            }
            let c0 = days_from_civil(year - 1, month, day) * 86_400;
            (c0, (limit + 1).max(0), 86_399)
        };
        let (olo, ohi, off) = self.offset_span(c0 + tod)?;
        Some(DaySpan {
            lo: u32::try_from(lo.max(olo - c0)).ok()?,
            hi: u32::try_from(hi.min(ohi - c0)).ok()?,
            base: c0 - off,
        })
    }

    /// fail2ban's `reGroupDictStrptime` (without fraction): unix seconds, or `None`
    /// where Python raises.
    pub(crate) fn compute(&mut self, fields: FieldTexts<'_>) -> Option<i64> {
        let mut year = None;
        let mut month = None;
        let mut day = None;
        let (mut hour, mut minute, mut second) = (0, 0, 0);
        let mut tzoff: Option<i64> = None;
        let mut weekday = None;
        let mut julian = None;
        let mut week: Option<(i64, bool)> = None;
        for &(f, val) in fields {
            match f {
                Field::LowY => {
                    let y = py_int(val)?;
                    year = Some(if y <= 2000 { y + 2000 } else { y });
                }
                Field::Y => year = Some(py_int(val)?),
                Field::Mon => month = Some(py_int(val)?),
                Field::MonName => month = Some(name_index(&MONTHS, val, false)? + 1),
                Field::MonAbbr => month = Some(name_index(&MONTHS, val, true)? + 1),
                Field::Day => day = Some(py_int(val)?),
                Field::Hour => hour = py_int(val)?,
                Field::Hour12 => {
                    hour = py_int(val)?;
                    let ampm = fields
                        .iter()
                        .find(|(f, _)| *f == Field::AmPm)
                        .map(|(_, v)| v.to_lowercase())
                        .unwrap_or_default();
                    if ampm.is_empty() || ampm == "am" {
                        if hour == 12 {
                            hour = 0;
                        }
                    } else if ampm == "pm" && hour != 12 {
                        hour += 12;
                    }
                }
                Field::Min => minute = py_int(val)?,
                Field::Sec => second = py_int(val)?,
                Field::WdayName => weekday = Some(name_index(&WEEKDAYS, val, false)?),
                Field::WdayAbbr => weekday = Some(name_index(&WEEKDAYS, val, true)?),
                Field::Wday => {
                    let w = py_int(val)? - 1;
                    weekday = Some(if w < 0 { 6 } else { w });
                }
                Field::Yday => julian = Some(py_int(val)?),
                Field::WeekU => week = Some((py_int(val)?, false)),
                Field::WeekW => week = Some((py_int(val)?, true)),
                Field::Zone => tzoff = Some(i64::from(crate::date::zone::zone_offset(val)?)),
                Field::AmPm => {}
            }
        }
        let assume_year = year.is_none();
        let mut year = year.unwrap_or(self.now_ymd.0);
        if month.is_none() || day.is_none() {
            if julian.is_none() {
                if let (Some((w, mon_first)), Some(wd)) = (week, weekday) {
                    julian = Some(julian_from_week(year, w, wd, mon_first));
                }
            }
            if let Some(j) = julian {
                if !(1..=9999).contains(&year) {
                    return None;
                }
                let (y, m, d) = civil_from_days(days_from_civil(year, 1, 1) + j - 1);
                if !(1..=9999).contains(&y) {
                    return None;
                }
                year = y;
                month = Some(m);
                day = Some(d);
            }
        }
        let assume_today = month.is_none() && day.is_none();
        if assume_today {
            month = Some(self.now_ymd.1);
            day = Some(self.now_ymd.2);
        }
        let (month, day) = (month?, day?);
        if !valid(year, month, day, hour, minute, second) {
            return None;
        }
        let mut cs =
            days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
        if let Some(off) = tzoff {
            cs -= off * 60;
        }
        if assume_today && cs > self.now_civil {
            cs -= 86_400;
        }
        if assume_year && cs > self.now_civil + 86_400 {
            // `date_result.replace(year=year-1, month=month, day=day)`: keeps the
            // (possibly zone-shifted) time of day, resets the date.
            let tod = cs.rem_euclid(86_400);
            let y = year - 1;
            if !valid(y, month, day, 0, 0, 0) {
                return None;
            }
            cs = days_from_civil(y, month, day) * 86_400 + tod;
        }
        match tzoff {
            Some(_) => Some(cs),
            None => self.local_to_unix(cs),
        }
    }
}

/// Python `_strptime._calc_julian_from_U_or_W`.
fn julian_from_week(year: i64, week: i64, weekday: i64, week_starts_mon: bool) -> i64 {
    // 1970-01-01 was a Thursday (Monday = 0).
    let mut first = (days_from_civil(year, 1, 1) + 3).rem_euclid(7);
    let mut wd = weekday;
    if !week_starts_mon {
        first = (first + 1) % 7;
        wd = (wd + 1) % 7;
    }
    let week0 = (7 - first) % 7;
    if week == 0 {
        1 + wd - first
    } else {
        1 + week0 + 7 * (week - 1) + wd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_roundtrip() {
        for z in [-800_000, -1, 0, 1, 59, 60, 10_000, 13_000, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(2005, 8, 14), 13_009);
    }
}
