//! Dates and instants, with one explicit parser per wire format. A [`Timestamp`] is a UTC
//! instant in milliseconds and a [`Date`] a civil date without a zone; the two meet only through
//! an explicit [`ZoneOffset`]. No parser guesses a format or a zone: the caller picks the parser
//! that matches what the sender writes, so `03/04/2025` is read day-first or month-first because
//! the caller said which, never because of its digits.
//!
//! | Wire format | Parser | Formatter | Seen in |
//! |---|---|---|---|
//! | `2025-03-14 16:02:11`, UTC by contract | [`Timestamp::parse_naive_utc`] | [`Timestamp::format_naive_utc`] | Odoo `write_date` |
//! | `2025-03-14` | [`Date::parse_iso`] | [`Date::format_iso`] | Odoo, Siigo, SAP B1 v2, HubSpot filters |
//! | `2025-03-14` or `2025-03-14T00:00:00Z`, time discarded | [`Date::parse_iso_date_part`] | [`Date::format_iso`] | SAP B1 `UpdateDate` |
//! | `16:02:11`, `1602`, `160211` in a local offset | [`TimeOfDay`] parsers + [`Date::at_time`] | [`Timestamp::time_of_day_in`] | SAP B1 `UpdateTime` |
//! | RFC 3339 with `Z` or `±hh:mm` | [`Timestamp::parse_rfc3339`] | [`Timestamp::format_rfc3339`] | HubSpot, Siigo |
//! | epoch milliseconds | [`Timestamp::parse_epoch_millis`], [`Timestamp::from_epoch_millis`] | [`Timestamp::format_epoch_millis`] | HubSpot `occurredAt`, signatures, search filters |
//! | `dd/mm/yyyy`, `dd-mm-yyyy` | [`Date::parse_day_first`] | [`Date::format_day_first`] | spreadsheets, file ERPs |
//! | `mm/dd/yyyy`, `mm-dd-yyyy` | [`Date::parse_month_first`] | [`Date::format_month_first`] | only when a file is known to be month-first |
//!
//! Calendar arithmetic is done here with integer formulas (proleptic Gregorian calendar), so the
//! domain depends on std only; the tests cross-check it against the `time` crate.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

const MS_PER_SECOND: i64 = 1_000;
const MS_PER_MINUTE: i64 = 60 * MS_PER_SECOND;
const MS_PER_DAY: i64 = 24 * 60 * MS_PER_MINUTE;

const MIN_MILLIS: i64 = days_from_civil(0, 1, 1) * MS_PER_DAY;
const MAX_MILLIS: i64 = days_from_civil(10_000, 1, 1) * MS_PER_DAY - 1;
const TIMESTAMP_RANGE: &str = "0000-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z";
const DATE_RANGE: &str = "0001-01-01 to 9999-12-31";
const OFFSET_RANGE: &str = "-18:00 to +18:00";
const MAX_OFFSET_MINUTES: i16 = 18 * 60;

const EXPECT_RFC3339: &str =
    "an RFC 3339 timestamp such as 2025-03-14T16:02:11.356Z or 2025-03-14T11:02:11-05:00";
const EXPECT_NAIVE_UTC: &str = "yyyy-mm-dd hh:mm:ss (UTC)";
const EXPECT_EPOCH_MILLIS: &str = "epoch milliseconds such as 1741968000000";
const EXPECT_ISO_DATE: &str = "yyyy-mm-dd";
const EXPECT_ISO_DATE_PART: &str = "yyyy-mm-dd, optionally followed by a time such as T00:00:00Z";
const EXPECT_DAY_FIRST: &str = "dd/mm/yyyy or dd-mm-yyyy";
const EXPECT_MONTH_FIRST: &str = "mm/dd/yyyy or mm-dd-yyyy";
const EXPECT_HH_MM_SS: &str = "hh:mm:ss or hh:mm";
const EXPECT_HHMM_DIGITS: &str = "a time of day as the number hhmm such as 1602";
const EXPECT_HHMMSS_DIGITS: &str = "a time of day as the number hhmmss such as 160211";
const EXPECT_OFFSET: &str = "a zone offset such as -05:00, +00:00 or Z";

/// Why a date, time or offset was rejected. Every variant means the value cannot be used as
/// sent: reject the record (or fix the configuration), retrying will not help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateTimeError {
    /// The text does not have the shape the chosen parser reads.
    #[error("expected {expected}, got {input:?}")]
    UnexpectedFormat {
        expected: &'static str,
        input: String,
    },
    /// The shape is right but the day does not exist (`31/02/2025`, month 13).
    #[error("{input} is not a calendar date")]
    NotACalendarDate { input: String },
    /// The shape is right but the time does not exist (`24:00:00`, `16:60`, a leap second).
    #[error("{input} is not a time of day (00:00:00 to 23:59:59)")]
    NotATimeOfDay { input: String },
    /// A timestamp without `Z` or an offset: its instant is unknown.
    #[error("timestamp {input:?} has no time zone; expected Z or an offset such as -05:00")]
    MissingTimeZone { input: String },
    /// A real value that puente cannot represent (or an offset beyond ±18:00).
    #[error("{input} is outside the supported range {range}")]
    OutOfRange { input: String, range: &'static str },
}

/// A fixed offset from UTC, whole minutes between -18:00 and +18:00. It is not a time zone: a
/// zone with daylight saving time (America/Santiago) needs the offset in force at each date.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ZoneOffset {
    minutes: i16,
}

impl ZoneOffset {
    pub const UTC: ZoneOffset = ZoneOffset { minutes: 0 };

    /// `from_hours_minutes(-5, 0)` is Bogotá's -05:00; the minutes take the sign of the hours,
    /// so `(-3, 30)` is -03:30. An offset between -01:00 and 00:00 needs [`Self::from_minutes`].
    pub fn from_hours_minutes(hours: i8, minutes: u8) -> Result<Self, DateTimeError> {
        if minutes >= 60 {
            return Err(DateTimeError::UnexpectedFormat {
                expected: "minutes 0 to 59",
                input: minutes.to_string(),
            });
        }
        let magnitude = i16::from(hours).abs() * 60 + i16::from(minutes);
        Self::from_minutes(if hours < 0 { -magnitude } else { magnitude })
    }

    /// An offset of `minutes` east of UTC (negative for the Americas).
    pub fn from_minutes(minutes: i16) -> Result<Self, DateTimeError> {
        if minutes.unsigned_abs() > MAX_OFFSET_MINUTES.unsigned_abs() {
            return Err(DateTimeError::OutOfRange {
                input: format_offset(minutes),
                range: OFFSET_RANGE,
            });
        }
        Ok(Self { minutes })
    }

    /// Reads `±hh:mm` (`-05:00`) or `Z`; `-00:00` is UTC.
    pub fn parse(input: &str) -> Result<Self, DateTimeError> {
        let format_error = || DateTimeError::UnexpectedFormat {
            expected: EXPECT_OFFSET,
            input: echo(input),
        };
        let minutes = parse_offset(input.as_bytes()).ok_or_else(format_error)?;
        Self::from_minutes(minutes)
    }

    pub fn total_minutes(self) -> i16 {
        self.minutes
    }

    fn millis(self) -> i64 {
        i64::from(self.minutes) * MS_PER_MINUTE
    }
}

impl fmt::Display for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_offset(self.minutes))
    }
}

impl fmt::Debug for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ZoneOffset({self})")
    }
}

impl std::str::FromStr for ZoneOffset {
    type Err = DateTimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for ZoneOffset {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ZoneOffset {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A time of day on a wall clock, to the second, without a date or zone.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay {
    hour: u8,
    minute: u8,
    second: u8,
}

impl TimeOfDay {
    pub const MIDNIGHT: TimeOfDay = TimeOfDay {
        hour: 0,
        minute: 0,
        second: 0,
    };

    pub fn from_hms(hour: u8, minute: u8, second: u8) -> Result<Self, DateTimeError> {
        Self::checked(hour, minute, second).ok_or_else(|| DateTimeError::NotATimeOfDay {
            input: format!("{hour:02}:{minute:02}:{second:02}"),
        })
    }

    /// Reads `hh:mm:ss` or `hh:mm` (24-hour clock, two digits each), e.g. `16:02:11`.
    pub fn parse_hh_mm_ss(input: &str) -> Result<Self, DateTimeError> {
        let b = input.as_bytes();
        let fields = match b.len() {
            8 if b[5] == b':' => Some((two_digits(b, 0), two_digits(b, 3), two_digits(b, 6))),
            5 => Some((two_digits(b, 0), two_digits(b, 3), Some(0))),
            _ => None,
        };
        match fields {
            Some((Some(h), Some(m), Some(s))) if b[2] == b':' => time_of_day(h, m, s, input),
            _ => Err(DateTimeError::UnexpectedFormat {
                expected: EXPECT_HH_MM_SS,
                input: echo(input),
            }),
        }
    }

    /// Reads a clock time written as the decimal number `hhmm` without leading zeros:
    /// `1602` is 16:02, `902` is 09:02, `0` is midnight.
    pub fn parse_hhmm_digits(input: &str) -> Result<Self, DateTimeError> {
        let value = clock_number(input, 4).ok_or_else(|| DateTimeError::UnexpectedFormat {
            expected: EXPECT_HHMM_DIGITS,
            input: echo(input),
        })?;
        time_of_day(value / 100, value % 100, 0, input)
    }

    /// Reads a clock time written as the decimal number `hhmmss` without leading zeros:
    /// `160211` is 16:02:11, `90211` is 09:02:11, `1602` is 00:16:02.
    pub fn parse_hhmmss_digits(input: &str) -> Result<Self, DateTimeError> {
        let value = clock_number(input, 6).ok_or_else(|| DateTimeError::UnexpectedFormat {
            expected: EXPECT_HHMMSS_DIGITS,
            input: echo(input),
        })?;
        time_of_day(value / 10_000, value / 100 % 100, value % 100, input)
    }

    pub fn hour(self) -> u8 {
        self.hour
    }

    pub fn minute(self) -> u8 {
        self.minute
    }

    pub fn second(self) -> u8 {
        self.second
    }

    /// `16:02:11`.
    pub fn format_hh_mm_ss(self) -> String {
        self.to_string()
    }

    fn checked(hour: u8, minute: u8, second: u8) -> Option<Self> {
        (hour < 24 && minute < 60 && second < 60).then_some(Self {
            hour,
            minute,
            second,
        })
    }

    fn millis(self) -> i64 {
        (i64::from(self.hour) * 3_600 + i64::from(self.minute) * 60 + i64::from(self.second))
            * MS_PER_SECOND
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}:{:02}", self.hour, self.minute, self.second)
    }
}

impl fmt::Debug for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimeOfDay({self})")
    }
}

/// A civil date (proleptic Gregorian) without a zone, from 0001-01-01 to 9999-12-31: an
/// invoice date, a due date. Serialized as `2025-03-14`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    // Field order gives the derived `Ord` calendar order.
    year: u16,
    month: u8,
    day: u8,
}

impl Date {
    pub const MIN: Date = Date {
        year: 1,
        month: 1,
        day: 1,
    };
    pub const MAX: Date = Date {
        year: 9999,
        month: 12,
        day: 31,
    };

    pub fn from_ymd(year: u16, month: u8, day: u8) -> Result<Self, DateTimeError> {
        let input = format!("{year:04}-{month:02}-{day:02}");
        date(i64::from(year), month, day, &input)
    }

    pub fn year(self) -> u16 {
        self.year
    }

    pub fn month(self) -> u8 {
        self.month
    }

    pub fn day(self) -> u8 {
        self.day
    }

    /// Reads exactly `yyyy-mm-dd` (ISO 8601 calendar date), e.g. `2025-03-14`.
    pub fn parse_iso(input: &str) -> Result<Self, DateTimeError> {
        let b = input.as_bytes();
        match (b.len(), ymd_at(b, 0)) {
            (10, Some((y, m, d))) => date(y, m, d, input),
            _ => Err(DateTimeError::UnexpectedFormat {
                expected: EXPECT_ISO_DATE,
                input: echo(input),
            }),
        }
    }

    /// Reads the date of `yyyy-mm-dd` or of an ISO date-time `yyyy-mm-ddThh:mm:ss[.fff][Z|±hh:mm]`
    /// and discards the time and zone after checking their shape. For systems that render a
    /// civil date as midnight with a `Z` (or repeat the time in the date field) although the
    /// date is local: taking the instant at face value would shift the day.
    pub fn parse_iso_date_part(input: &str) -> Result<Self, DateTimeError> {
        let b = input.as_bytes();
        let shape_ok = b.len() == 10
            || (b.len() >= 19 && matches!(b[10], b'T' | b't') && hh_mm_ss_at(b, 11).is_some() && {
                let rest = skip_fraction(&b[19..]);
                rest.is_empty() || parse_offset(rest).is_some()
            });
        match ymd_at(b, 0) {
            Some((y, m, d)) if shape_ok => date(y, m, d, &input[..10]),
            _ => Err(DateTimeError::UnexpectedFormat {
                expected: EXPECT_ISO_DATE_PART,
                input: echo(input),
            }),
        }
    }

    /// Reads a day-first date, `dd/mm/yyyy` or `dd-mm-yyyy` (one separator throughout), for
    /// files the caller knows to be day-first. Day and month may have one or two digits
    /// (`3/4/2025` is 3 April 2025, as some spreadsheet locales write it); the year must have
    /// four.
    pub fn parse_day_first(input: &str) -> Result<Self, DateTimeError> {
        match split_numeric_date(input) {
            Some((day, month, year)) => date(year, month, day, input),
            None => Err(DateTimeError::UnexpectedFormat {
                expected: EXPECT_DAY_FIRST,
                input: echo(input),
            }),
        }
    }

    /// Reads a month-first date, `mm/dd/yyyy` or `mm-dd-yyyy`, with the same rules as
    /// [`Self::parse_day_first`]. Use it only for a file known to be month-first.
    pub fn parse_month_first(input: &str) -> Result<Self, DateTimeError> {
        match split_numeric_date(input) {
            Some((month, day, year)) => date(year, month, day, input),
            None => Err(DateTimeError::UnexpectedFormat {
                expected: EXPECT_MONTH_FIRST,
                input: echo(input),
            }),
        }
    }

    /// `2025-03-14`.
    pub fn format_iso(self) -> String {
        self.to_string()
    }

    /// `14/03/2025`.
    pub fn format_day_first(self) -> String {
        format!("{:02}/{:02}/{:04}", self.day, self.month, self.year)
    }

    /// `03/14/2025`.
    pub fn format_month_first(self) -> String {
        format!("{:02}/{:02}/{:04}", self.month, self.day, self.year)
    }

    /// The instant this date begins where `offset` applies: 2025-03-14 in Bogotá (-05:00)
    /// begins at 2025-03-14T05:00:00Z.
    pub fn at_start_of_day(self, offset: ZoneOffset) -> Timestamp {
        // Dates start at 0001-01-01 and offsets stay within ±18 h, so this is always within
        // the timestamp range (which starts at 0000-01-01).
        Timestamp {
            millis: self.days() * MS_PER_DAY - offset.millis(),
        }
    }

    /// The instant the clock reads `time` on this date where `offset` applies, e.g. an ERP
    /// that stores the date and the server-local time of a change in two fields.
    pub fn at_time(self, time: TimeOfDay, offset: ZoneOffset) -> Result<Timestamp, DateTimeError> {
        let millis = self.days() * MS_PER_DAY + time.millis() - offset.millis();
        Timestamp::from_epoch_millis(millis).map_err(|_| DateTimeError::OutOfRange {
            input: format!("{self}T{time}{offset}"),
            range: TIMESTAMP_RANGE,
        })
    }

    fn days(self) -> i64 {
        days_from_civil(i64::from(self.year), self.month, self.day)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Date({self})")
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse_iso(&text).map_err(serde::de::Error::custom)
    }
}

/// An instant in UTC with millisecond precision, from 0000-01-01T00:00:00.000Z to
/// 9999-12-31T23:59:59.999Z (what a four-digit-year RFC 3339 string can carry). Serialized as
/// RFC 3339 in UTC with milliseconds, `2025-03-14T16:02:11.356Z`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    millis: i64,
}

impl Timestamp {
    pub const MIN: Timestamp = Timestamp { millis: MIN_MILLIS };
    pub const MAX: Timestamp = Timestamp { millis: MAX_MILLIS };

    /// The system clock's time (1970-01-01 if the clock is before it).
    pub fn now() -> Self {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(MAX_MILLIS))
            .unwrap_or_default();
        Timestamp {
            millis: millis.min(MAX_MILLIS),
        }
    }

    /// Milliseconds since 1970-01-01T00:00:00Z (negative before).
    pub fn from_epoch_millis(millis: i64) -> Result<Self, DateTimeError> {
        if (MIN_MILLIS..=MAX_MILLIS).contains(&millis) {
            Ok(Self { millis })
        } else {
            Err(DateTimeError::OutOfRange {
                input: format!("epoch millisecond {millis}"),
                range: TIMESTAMP_RANGE,
            })
        }
    }

    pub fn epoch_millis(self) -> i64 {
        self.millis
    }

    /// Reads RFC 3339: `yyyy-mm-ddThh:mm:ss[.f…]` followed by `Z` or `±hh:mm`, e.g.
    /// `2024-09-11T13:27:39.356Z` or `2025-03-14T11:02:11-05:00`. `T` and `Z` may be lower
    /// case. The fraction has 1 to 9 digits; digits past the millisecond are truncated (never
    /// rounded, so an instant never moves into the next second). Seconds are required, a
    /// leap second (`:60`) is rejected, and a value without a zone is an error, never UTC.
    pub fn parse_rfc3339(input: &str) -> Result<Self, DateTimeError> {
        let b = input.as_bytes();
        let format_error = || DateTimeError::UnexpectedFormat {
            expected: EXPECT_RFC3339,
            input: echo(input),
        };
        if b.len() < 19 || !matches!(b[10], b'T' | b't') {
            return Err(format_error());
        }
        let (y, m, d) = ymd_at(b, 0).ok_or_else(format_error)?;
        let (h, mi, s) = hh_mm_ss_at(b, 11).ok_or_else(format_error)?;
        let (fraction_ms, rest) = match b[19..].split_first() {
            Some((b'.', tail)) => {
                let digits = tail.iter().take_while(|c| c.is_ascii_digit()).count();
                if !(1..=9).contains(&digits) {
                    return Err(format_error());
                }
                let ms = tail[..digits.min(3)]
                    .iter()
                    .chain(std::iter::repeat(&b'0'))
                    .take(3)
                    .fold(0, |acc, c| acc * 10 + i64::from(c - b'0'));
                (ms, &tail[digits..])
            }
            _ => (0, &b[19..]),
        };
        if rest.is_empty() {
            return Err(DateTimeError::MissingTimeZone { input: echo(input) });
        }
        let offset_minutes = parse_offset(rest).ok_or_else(format_error)?;
        let day = date_days(y, m, d, &input[..10])?;
        let time = time_of_day(h, mi, s, &input[11..19])?;
        let millis = day * MS_PER_DAY + time.millis() + fraction_ms
            - i64::from(offset_minutes) * MS_PER_MINUTE;
        Self::in_range(millis, input)
    }

    /// Reads `yyyy-mm-dd hh:mm:ss` that the sender defines as UTC although it carries no zone
    /// (Odoo's server datetime format). Exactly that shape: no `T`, fraction or suffix.
    pub fn parse_naive_utc(input: &str) -> Result<Self, DateTimeError> {
        let b = input.as_bytes();
        let parts = (b.len() == 19 && b[10] == b' ')
            .then(|| ymd_at(b, 0).zip(hh_mm_ss_at(b, 11)))
            .flatten();
        let Some(((y, m, d), (h, mi, s))) = parts else {
            return Err(DateTimeError::UnexpectedFormat {
                expected: EXPECT_NAIVE_UTC,
                input: echo(input),
            });
        };
        let day = date_days(y, m, d, &input[..10])?;
        let time = time_of_day(h, mi, s, &input[11..])?;
        Self::in_range(day * MS_PER_DAY + time.millis(), input)
    }

    /// Reads epoch milliseconds written as decimal text: digits with an optional leading `-`,
    /// nothing else (no spaces, `+`, decimal point or exponent). Epoch *seconds* are not
    /// detected: `1741968000` reads as 1970-01-21, so use this only where the sender writes
    /// milliseconds.
    pub fn parse_epoch_millis(input: &str) -> Result<Self, DateTimeError> {
        let digits = input.strip_prefix('-').unwrap_or(input);
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return Err(DateTimeError::UnexpectedFormat {
                expected: EXPECT_EPOCH_MILLIS,
                input: echo(input),
            });
        }
        match input.parse::<i64>() {
            Ok(millis) => Self::in_range(millis, input),
            Err(_) => Err(DateTimeError::OutOfRange {
                input: echo(input),
                range: TIMESTAMP_RANGE,
            }),
        }
    }

    /// `2025-03-14T16:02:11.356Z`: UTC, always three fraction digits.
    pub fn format_rfc3339(self) -> String {
        self.to_string()
    }

    /// `2025-03-14 16:02:11` in UTC. The milliseconds are dropped (truncated).
    pub fn format_naive_utc(self) -> String {
        let (date, time, _) = self.local_parts(ZoneOffset::UTC);
        let (y, m, d) = date;
        format!("{y:04}-{m:02}-{d:02} {time}")
    }

    /// `1741968000000`.
    pub fn format_epoch_millis(self) -> String {
        self.millis.to_string()
    }

    /// The calendar date at this instant where `offset` applies: 2025-03-15T03:00:00Z is
    /// 2025-03-14 in Bogotá (-05:00). Fails only when that date is outside
    /// 0001-01-01..=9999-12-31 (instants in year 0000, or on 9999-12-31 east of UTC).
    pub fn date_in(self, offset: ZoneOffset) -> Result<Date, DateTimeError> {
        let ((year, month, day), _, _) = self.local_parts(offset);
        match u16::try_from(year) {
            Ok(year @ 1..=9999) => Ok(Date { year, month, day }),
            _ => Err(DateTimeError::OutOfRange {
                input: format!("the date at {self} in {offset}"),
                range: DATE_RANGE,
            }),
        }
    }

    /// The wall-clock time at this instant where `offset` applies, to the second.
    pub fn time_of_day_in(self, offset: ZoneOffset) -> TimeOfDay {
        self.local_parts(offset).1
    }

    fn in_range(millis: i64, input: &str) -> Result<Self, DateTimeError> {
        Self::from_epoch_millis(millis).map_err(|_| DateTimeError::OutOfRange {
            input: echo(input),
            range: TIMESTAMP_RANGE,
        })
    }

    /// (year, month, day), time of day and milliseconds of the wall clock at `offset`.
    fn local_parts(self, offset: ZoneOffset) -> ((i64, u8, u8), TimeOfDay, i64) {
        let local = self.millis + offset.millis();
        let days = local.div_euclid(MS_PER_DAY);
        let in_day = local.rem_euclid(MS_PER_DAY);
        let seconds = in_day / MS_PER_SECOND;
        // Each component is bounded by the euclidean remainder (hour < 24, minute and
        // second < 60), so the narrowing casts cannot truncate.
        let time = TimeOfDay {
            hour: (seconds / 3_600) as u8,
            minute: (seconds / 60 % 60) as u8,
            second: (seconds % 60) as u8,
        };
        (civil_from_days(days), time, in_day % MS_PER_SECOND)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ((y, m, d), time, ms) = self.local_parts(ZoneOffset::UTC);
        write!(f, "{y:04}-{m:02}-{d:02}T{time}.{ms:03}Z")
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

/// The input as shown in an error: at most 40 characters, so a stray document does not end up
/// in a log line.
fn echo(input: &str) -> String {
    const MAX: usize = 40;
    match input.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &input[..cut]),
        None => input.to_owned(),
    }
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a valid proleptic Gregorian date (H. Hinnant's `days_from_civil`).
const fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let (month, day) = (month as i64, day as i64);
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date `days` after 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    // Bounded by the formulas: day 1..=31, month 1..=12.
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u8;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u8;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a real calendar date, any four-digit year (timestamps may fall in
/// year 0000); `shown` is the text named in the error.
fn date_days(year: i64, month: u8, day: u8, shown: &str) -> Result<i64, DateTimeError> {
    if (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month) {
        Ok(days_from_civil(year, month, day))
    } else {
        Err(DateTimeError::NotACalendarDate { input: echo(shown) })
    }
}

/// A [`Date`] from components read off the wire; `shown` is the text named in an error.
fn date(year: i64, month: u8, day: u8, shown: &str) -> Result<Date, DateTimeError> {
    date_days(year, month, day, shown)?;
    match u16::try_from(year) {
        Ok(year @ 1..=9999) => Ok(Date { year, month, day }),
        _ => Err(DateTimeError::OutOfRange {
            input: echo(shown),
            range: DATE_RANGE,
        }),
    }
}

fn time_of_day(
    hour: u32,
    minute: u32,
    second: u32,
    shown: &str,
) -> Result<TimeOfDay, DateTimeError> {
    let narrow = |v: u32| u8::try_from(v).ok();
    narrow(hour)
        .zip(narrow(minute))
        .zip(narrow(second))
        .and_then(|((h, m), s)| TimeOfDay::checked(h, m, s))
        .ok_or_else(|| DateTimeError::NotATimeOfDay { input: echo(shown) })
}

fn digits_at(b: &[u8], start: usize, count: usize) -> Option<u32> {
    let field = b.get(start..start + count)?;
    field.iter().try_fold(0, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn two_digits(b: &[u8], start: usize) -> Option<u32> {
    digits_at(b, start, 2)
}

/// `yyyy-mm-dd` at `start` (shape only).
fn ymd_at(b: &[u8], start: usize) -> Option<(i64, u8, u8)> {
    if b.get(start + 4) != Some(&b'-') || b.get(start + 7) != Some(&b'-') {
        return None;
    }
    let year = digits_at(b, start, 4)?;
    let month = digits_at(b, start + 5, 2)?;
    let day = digits_at(b, start + 8, 2)?;
    // Two digits always fit in u8.
    Some((i64::from(year), month as u8, day as u8))
}

/// `hh:mm:ss` at `start` (shape only).
fn hh_mm_ss_at(b: &[u8], start: usize) -> Option<(u32, u32, u32)> {
    if b.get(start + 2) != Some(&b':') || b.get(start + 5) != Some(&b':') {
        return None;
    }
    Some((
        two_digits(b, start)?,
        two_digits(b, start + 3)?,
        two_digits(b, start + 6)?,
    ))
}

/// Skips `.` and its digits, if present.
fn skip_fraction(b: &[u8]) -> &[u8] {
    match b.split_first() {
        Some((b'.', tail)) => {
            let digits = tail.iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 { b } else { &tail[digits..] }
        }
        _ => b,
    }
}

/// `Z`/`z` or `±hh:mm` (hours 00–23, minutes 00–59) as minutes east of UTC.
fn parse_offset(b: &[u8]) -> Option<i16> {
    match b {
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (hours, minutes) = (two_digits(b, 1)?, two_digits(b, 4)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            // At most 23 * 60 + 59, which fits in i16.
            let magnitude = (hours * 60 + minutes) as i16;
            Some(if *sign == b'-' { -magnitude } else { magnitude })
        }
        _ => None,
    }
}

fn format_offset(minutes: i16) -> String {
    let sign = if minutes < 0 { '-' } else { '+' };
    let magnitude = minutes.unsigned_abs();
    format!("{sign}{:02}:{:02}", magnitude / 60, magnitude % 60)
}

/// The three fields of `a/b/yyyy` or `a-b-yyyy` (one separator throughout, `a` and `b` with one
/// or two digits, the year with four), in written order.
fn split_numeric_date(input: &str) -> Option<(u8, u8, i64)> {
    let separator = input.bytes().find(|c| !c.is_ascii_digit())?;
    if separator != b'/' && separator != b'-' {
        return None;
    }
    let mut fields = input.split(char::from(separator));
    let (first, second, year) = (fields.next()?, fields.next()?, fields.next()?);
    if fields.next().is_some() || year.len() != 4 {
        return None;
    }
    let small = |field: &str| -> Option<u8> {
        if !(1..=2).contains(&field.len()) {
            return None;
        }
        // One or two digits always fit in u8.
        digits_at(field.as_bytes(), 0, field.len()).map(|value| value as u8)
    };
    let year = digits_at(year.as_bytes(), 0, 4)?;
    Some((small(first)?, small(second)?, i64::from(year)))
}

/// A clock number of at most `max_digits` digits, no sign or padding rules beyond that.
fn clock_number(input: &str, max_digits: usize) -> Option<u32> {
    if input.is_empty() || input.len() > max_digits {
        return None;
    }
    digits_at(input.as_bytes(), 0, input.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).expect("test timestamp is valid RFC 3339")
    }

    fn ymd(y: u16, m: u8, d: u8) -> Date {
        Date::from_ymd(y, m, d).expect("test date is a calendar date")
    }

    fn offset(text: &str) -> ZoneOffset {
        ZoneOffset::parse(text).expect("test offset is valid")
    }

    fn hms(h: u8, m: u8, s: u8) -> TimeOfDay {
        TimeOfDay::from_hms(h, m, s).expect("test time is valid")
    }

    const BOGOTA: ZoneOffset = ZoneOffset { minutes: -300 };

    #[test]
    fn rfc3339_reads_zulu_offsets_and_fractions() {
        let cases = [
            ("2024-09-11T13:27:39.356Z", 1_726_061_259_356),
            ("2020-06-15T03:33:17.208Z", 1_592_191_997_208),
            ("2025-03-14T11:02:11-05:00", 1_741_968_131_000),
            ("2025-03-14T16:02:11Z", 1_741_968_131_000),
            ("2025-03-14T16:02:11+00:00", 1_741_968_131_000),
            ("2025-03-14T16:02:11-00:00", 1_741_968_131_000),
            ("2025-03-14t16:02:11z", 1_741_968_131_000),
            ("2025-03-14T16:02:11.3Z", 1_741_968_131_300),
            ("2025-03-14T16:02:11.35Z", 1_741_968_131_350),
            ("2025-03-14T16:02:11.3569Z", 1_741_968_131_356),
            ("2025-03-14T16:02:11.356999999Z", 1_741_968_131_356),
            ("2025-03-14T11:02:11.356-05:00", 1_741_968_131_356),
            ("2024-02-29T23:59:59.999Z", 1_709_251_199_999),
            ("2000-02-29T00:00:00+14:00", 951_732_000_000),
            ("1969-12-31T23:59:59.999Z", -1),
            ("1970-01-01T00:00:00Z", 0),
            ("0000-01-01T00:00:00Z", MIN_MILLIS),
            ("9999-12-31T23:59:59.999Z", MAX_MILLIS),
        ];
        for (text, millis) in cases {
            assert_eq!(
                Timestamp::parse_rfc3339(text).map(Timestamp::epoch_millis),
                Ok(millis),
                "{text}"
            );
        }
    }

    #[test]
    fn rfc3339_rejects_what_it_cannot_read_unambiguously() {
        use DateTimeError as E;
        let format = |input: &str| E::UnexpectedFormat {
            expected: EXPECT_RFC3339,
            input: input.to_owned(),
        };
        let no_zone = |input: &str| E::MissingTimeZone {
            input: input.to_owned(),
        };
        let not_date = |input: &str| E::NotACalendarDate {
            input: input.to_owned(),
        };
        let not_time = |input: &str| E::NotATimeOfDay {
            input: input.to_owned(),
        };
        let out = |input: &str| E::OutOfRange {
            input: input.to_owned(),
            range: TIMESTAMP_RANGE,
        };
        let cases = [
            ("2025-03-14T16:02:11", no_zone("2025-03-14T16:02:11")),
            (
                "2025-03-14T16:02:11.356",
                no_zone("2025-03-14T16:02:11.356"),
            ),
            ("2025-03-14 16:02:11Z", format("2025-03-14 16:02:11Z")),
            ("2025-03-14 16:02:11", format("2025-03-14 16:02:11")),
            ("2025-03-14", format("2025-03-14")),
            ("2025-03-14T16:02Z", format("2025-03-14T16:02Z")),
            ("2025-03-14T16:02:11.Z", format("2025-03-14T16:02:11.Z")),
            (
                "2025-03-14T16:02:11.1234567891Z",
                format("2025-03-14T16:02:11.1234567891Z"),
            ),
            (
                "2025-03-14T16:02:11-0500",
                format("2025-03-14T16:02:11-0500"),
            ),
            ("2025-03-14T16:02:11-05", format("2025-03-14T16:02:11-05")),
            (
                "2025-03-14T16:02:11+24:00",
                format("2025-03-14T16:02:11+24:00"),
            ),
            ("2025-03-14T16:02:11Z ", format("2025-03-14T16:02:11Z ")),
            (" 2025-03-14T16:02:11Z", format(" 2025-03-14T16:02:11Z")),
            ("2025-3-14T16:02:11Z", format("2025-3-14T16:02:11Z")),
            ("1741968131000", format("1741968131000")),
            ("", format("")),
            ("2025-02-29T16:02:11Z", not_date("2025-02-29")),
            ("2025-04-31T00:00:00Z", not_date("2025-04-31")),
            ("2025-13-01T00:00:00Z", not_date("2025-13-01")),
            ("2025-03-14T24:00:00Z", not_time("24:00:00")),
            ("2025-03-14T23:59:60Z", not_time("23:59:60")),
            ("2025-03-14T23:60:00Z", not_time("23:60:00")),
            (
                "0000-01-01T00:00:00+00:01",
                out("0000-01-01T00:00:00+00:01"),
            ),
            (
                "9999-12-31T23:59:59-00:01",
                out("9999-12-31T23:59:59-00:01"),
            ),
        ];
        for (text, error) in cases {
            assert_eq!(Timestamp::parse_rfc3339(text), Err(error), "{text:?}");
        }
    }

    #[test]
    fn errors_say_what_was_expected_and_what_came() {
        let message = |r: Result<Date, DateTimeError>| r.expect_err("invalid input").to_string();
        assert_eq!(
            message(Date::parse_day_first("2025-03-14")),
            r#"expected dd/mm/yyyy or dd-mm-yyyy, got "2025-03-14""#
        );
        assert_eq!(
            message(Date::parse_day_first("31/02/2025")),
            "31/02/2025 is not a calendar date"
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2025-03-14T16:02:11")
                .expect_err("no zone")
                .to_string(),
            r#"timestamp "2025-03-14T16:02:11" has no time zone; expected Z or an offset such as -05:00"#
        );
        assert_eq!(
            message(Date::from_ymd(2025, 2, 29)),
            "2025-02-29 is not a calendar date"
        );
        assert_eq!(
            message(Date::from_ymd(0, 1, 1)),
            "0000-01-01 is outside the supported range 0001-01-01 to 9999-12-31"
        );
    }

    #[test]
    fn long_inputs_are_cut_in_errors() {
        let long = "x".repeat(500);
        let Err(DateTimeError::UnexpectedFormat { input, .. }) = Date::parse_iso(&long) else {
            panic!("a long junk string is a format error");
        };
        assert_eq!(input.chars().count(), 41);
        assert!(input.ends_with('…'));
    }

    #[test]
    fn naive_utc_reads_the_space_separated_utc_form_only() {
        let valid = [
            ("2025-03-14 16:02:11", 1_741_968_131_000),
            ("2024-02-29 23:59:59", 1_709_251_199_000),
            ("1970-01-01 00:00:00", 0),
            ("2025-12-31 23:59:59", 1_767_225_599_000),
        ];
        for (text, millis) in valid {
            assert_eq!(
                Timestamp::parse_naive_utc(text).map(Timestamp::epoch_millis),
                Ok(millis),
                "{text}"
            );
        }
        let invalid = [
            "2025-03-14T16:02:11",
            "2025-03-14 16:02:11Z",
            "2025-03-14 16:02:11.356",
            "2025-03-14 16:02",
            "2025-03-14",
            "false",
            "",
            " 2025-03-14 16:02:11",
        ];
        for text in invalid {
            assert_eq!(
                Timestamp::parse_naive_utc(text),
                Err(DateTimeError::UnexpectedFormat {
                    expected: EXPECT_NAIVE_UTC,
                    input: text.to_owned()
                }),
                "{text:?}"
            );
        }
        assert_eq!(
            Timestamp::parse_naive_utc("2023-02-29 10:00:00"),
            Err(DateTimeError::NotACalendarDate {
                input: "2023-02-29".to_owned()
            })
        );
        assert_eq!(
            Timestamp::parse_naive_utc("2025-03-14 16:61:00"),
            Err(DateTimeError::NotATimeOfDay {
                input: "16:61:00".to_owned()
            })
        );
    }

    #[test]
    fn naive_utc_format_drops_milliseconds() {
        assert_eq!(
            Timestamp::from_epoch_millis(1_741_968_131_999)
                .expect("in range")
                .format_naive_utc(),
            "2025-03-14 16:02:11"
        );
        assert_eq!(
            Timestamp::from_epoch_millis(-1)
                .expect("in range")
                .format_naive_utc(),
            "1969-12-31 23:59:59"
        );
    }

    #[test]
    fn epoch_millis_reads_plain_decimal_text_only() {
        let valid = [
            ("1741968000000", 1_741_968_000_000),
            ("0", 0),
            ("-1", -1),
            ("0001741968000000", 1_741_968_000_000),
            ("253402300799999", MAX_MILLIS),
            ("-62167219200000", MIN_MILLIS),
        ];
        for (text, millis) in valid {
            assert_eq!(
                Timestamp::parse_epoch_millis(text).map(Timestamp::epoch_millis),
                Ok(millis),
                "{text}"
            );
        }
        let junk = [
            "",
            "-",
            "+1741968000000",
            " 1741968000000",
            "1741968000000 ",
            "1741968000000\n",
            "1741968000000.0",
            "1.741968e12",
            "1741968000000ms",
            "0x1A",
            "--1",
            "1_741_968_000_000",
            "１７４",
        ];
        for text in junk {
            assert_eq!(
                Timestamp::parse_epoch_millis(text),
                Err(DateTimeError::UnexpectedFormat {
                    expected: EXPECT_EPOCH_MILLIS,
                    input: text.to_owned()
                }),
                "{text:?}"
            );
        }
        for text in ["253402300800000", "-62167219200001", "99999999999999999999"] {
            assert!(
                matches!(
                    Timestamp::parse_epoch_millis(text),
                    Err(DateTimeError::OutOfRange { .. })
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn epoch_millis_constructor_checks_the_range() {
        assert_eq!(Timestamp::from_epoch_millis(MIN_MILLIS), Ok(Timestamp::MIN));
        assert_eq!(Timestamp::from_epoch_millis(MAX_MILLIS), Ok(Timestamp::MAX));
        for millis in [MIN_MILLIS - 1, MAX_MILLIS + 1, i64::MIN, i64::MAX] {
            assert!(Timestamp::from_epoch_millis(millis).is_err(), "{millis}");
        }
    }

    #[test]
    fn iso_dates_are_exactly_yyyy_mm_dd() {
        let valid = [
            ("2025-03-14", ymd(2025, 3, 14)),
            ("2024-02-29", ymd(2024, 2, 29)),
            ("2000-02-29", ymd(2000, 2, 29)),
            ("2025-01-31", ymd(2025, 1, 31)),
            ("2025-04-30", ymd(2025, 4, 30)),
            ("2025-12-31", ymd(2025, 12, 31)),
            ("0001-01-01", Date::MIN),
            ("9999-12-31", Date::MAX),
        ];
        for (text, expected) in valid {
            assert_eq!(Date::parse_iso(text), Ok(expected), "{text}");
        }
        let format = [
            "2025-3-14",
            "2025/03/14",
            "14/03/2025",
            "2025-03-14T00:00:00Z",
            "25-03-14",
            "2025-03-14 ",
            "false",
            "",
        ];
        for text in format {
            assert_eq!(
                Date::parse_iso(text),
                Err(DateTimeError::UnexpectedFormat {
                    expected: EXPECT_ISO_DATE,
                    input: text.to_owned()
                }),
                "{text:?}"
            );
        }
        for text in [
            "2025-02-29",
            "1900-02-29",
            "2025-04-31",
            "2025-06-31",
            "2025-00-10",
            "2025-13-01",
            "2025-01-00",
            "2025-01-32",
        ] {
            assert_eq!(
                Date::parse_iso(text),
                Err(DateTimeError::NotACalendarDate {
                    input: text.to_owned()
                }),
                "{text}"
            );
        }
        assert!(matches!(
            Date::parse_iso("0000-12-31"),
            Err(DateTimeError::OutOfRange { .. })
        ));
    }

    #[test]
    fn iso_date_part_discards_a_time_and_zone_of_any_kind() {
        let valid = [
            ("2025-03-14", ymd(2025, 3, 14)),
            ("2025-03-14T00:00:00Z", ymd(2025, 3, 14)),
            ("2025-03-14T00:00:00", ymd(2025, 3, 14)),
            ("2022-02-18T08:00:12", ymd(2022, 2, 18)),
            ("2025-03-14T23:00:00-05:00", ymd(2025, 3, 14)),
            ("2025-03-14T00:00:00.000Z", ymd(2025, 3, 14)),
            ("2024-02-29T00:00:00Z", ymd(2024, 2, 29)),
        ];
        for (text, expected) in valid {
            assert_eq!(Date::parse_iso_date_part(text), Ok(expected), "{text}");
        }
        for text in [
            "2025-03-14T",
            "2025-03-14T00:00",
            "2025-03-14 00:00:00",
            "2025-03-14T00:00:00Zjunk",
            "2025-03-14T00:00:00.Z",
            "2025-03-1400:00:00",
            "14/03/2025",
            "",
        ] {
            assert_eq!(
                Date::parse_iso_date_part(text),
                Err(DateTimeError::UnexpectedFormat {
                    expected: EXPECT_ISO_DATE_PART,
                    input: text.to_owned()
                }),
                "{text:?}"
            );
        }
        assert_eq!(
            Date::parse_iso_date_part("2025-02-29T00:00:00Z"),
            Err(DateTimeError::NotACalendarDate {
                input: "2025-02-29".to_owned()
            })
        );
    }

    #[test]
    fn day_first_and_month_first_read_the_same_digits_differently() {
        assert_eq!(Date::parse_day_first("03/04/2025"), Ok(ymd(2025, 4, 3)));
        assert_eq!(Date::parse_month_first("03/04/2025"), Ok(ymd(2025, 3, 4)));
    }

    #[test]
    fn day_first_reads_slashes_or_dashes_with_a_four_digit_year() {
        let valid = [
            ("14/03/2025", ymd(2025, 3, 14)),
            ("14-03-2025", ymd(2025, 3, 14)),
            ("3/4/2025", ymd(2025, 4, 3)),
            ("03/4/2025", ymd(2025, 4, 3)),
            ("29/02/2024", ymd(2024, 2, 29)),
            ("29/02/2000", ymd(2000, 2, 29)),
            ("31/12/2025", ymd(2025, 12, 31)),
            ("30/04/2025", ymd(2025, 4, 30)),
            ("01/01/0001", Date::MIN),
        ];
        for (text, expected) in valid {
            assert_eq!(Date::parse_day_first(text), Ok(expected), "{text}");
        }
        for text in [
            "2025-03-14",
            "2025/03/14",
            "14/03/25",
            "14/03/02025",
            "14/03-2025",
            "14.03.2025",
            "14/03/2025 00:00",
            "014/03/2025",
            "/03/2025",
            "14//2025",
            "14/03/2025/",
            "14 / 03 / 2025",
            "+1/03/2025",
            "",
        ] {
            assert_eq!(
                Date::parse_day_first(text),
                Err(DateTimeError::UnexpectedFormat {
                    expected: EXPECT_DAY_FIRST,
                    input: text.to_owned()
                }),
                "{text:?}"
            );
        }
        for text in [
            "31/02/2025",
            "29/02/2025",
            "29/02/1900",
            "31/04/2025",
            "00/03/2025",
            "14/13/2025",
            "14/00/2025",
            "32/01/2025",
        ] {
            assert_eq!(
                Date::parse_day_first(text),
                Err(DateTimeError::NotACalendarDate {
                    input: text.to_owned()
                }),
                "{text}"
            );
        }
        assert!(matches!(
            Date::parse_day_first("31/12/0000"),
            Err(DateTimeError::OutOfRange { .. })
        ));
    }

    #[test]
    fn month_first_reads_slashes_or_dashes_with_a_four_digit_year() {
        let valid = [
            ("03/14/2025", ymd(2025, 3, 14)),
            ("03-14-2025", ymd(2025, 3, 14)),
            ("2/29/2024", ymd(2024, 2, 29)),
            ("12/31/9999", Date::MAX),
        ];
        for (text, expected) in valid {
            assert_eq!(Date::parse_month_first(text), Ok(expected), "{text}");
        }
        for text in ["2025-03-14", "03/14/25", "03/14-2025", ""] {
            assert_eq!(
                Date::parse_month_first(text),
                Err(DateTimeError::UnexpectedFormat {
                    expected: EXPECT_MONTH_FIRST,
                    input: text.to_owned()
                }),
                "{text:?}"
            );
        }
        for text in ["14/03/2025", "02/29/2025", "04/31/2025"] {
            assert_eq!(
                Date::parse_month_first(text),
                Err(DateTimeError::NotACalendarDate {
                    input: text.to_owned()
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn dates_format_in_each_layout() {
        let date = ymd(2025, 3, 4);
        assert_eq!(date.format_iso(), "2025-03-04");
        assert_eq!(date.format_day_first(), "04/03/2025");
        assert_eq!(date.format_month_first(), "03/04/2025");
        assert_eq!(Date::MIN.format_iso(), "0001-01-01");
        assert_eq!((date.year(), date.month(), date.day()), (2025, 3, 4));
    }

    #[test]
    fn timestamps_format_in_each_layout() {
        let t = ts("2025-03-14T11:02:11.356-05:00");
        assert_eq!(t.format_rfc3339(), "2025-03-14T16:02:11.356Z");
        assert_eq!(t.format_naive_utc(), "2025-03-14 16:02:11");
        assert_eq!(t.format_epoch_millis(), "1741968131356");
        assert_eq!(t.epoch_millis(), 1_741_968_131_356);
        assert_eq!(
            ts("2025-03-14T16:02:11Z").to_string(),
            "2025-03-14T16:02:11.000Z"
        );
        assert_eq!(Timestamp::MIN.to_string(), "0000-01-01T00:00:00.000Z");
        assert_eq!(Timestamp::MAX.to_string(), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn zone_offsets_are_explicit_and_bounded() {
        let valid = [
            ("-05:00", -300),
            ("+00:00", 0),
            ("-00:00", 0),
            ("Z", 0),
            ("-03:30", -210),
            ("+05:45", 345),
            ("+18:00", 1080),
            ("-18:00", -1080),
        ];
        for (text, minutes) in valid {
            assert_eq!(
                ZoneOffset::parse(text).map(ZoneOffset::total_minutes),
                Ok(minutes),
                "{text}"
            );
        }
        for text in [
            "-5",
            "-05",
            "-0500",
            "05:00",
            "UTC",
            "-05:60",
            "",
            " -05:00",
            "America/Bogota",
        ] {
            assert_eq!(
                ZoneOffset::parse(text),
                Err(DateTimeError::UnexpectedFormat {
                    expected: EXPECT_OFFSET,
                    input: text.to_owned()
                }),
                "{text:?}"
            );
        }
        for text in ["+18:01", "-19:00", "+23:59"] {
            assert!(
                matches!(
                    ZoneOffset::parse(text),
                    Err(DateTimeError::OutOfRange { .. })
                ),
                "{text}"
            );
        }
        assert_eq!(ZoneOffset::from_hours_minutes(-5, 0), Ok(BOGOTA));
        assert_eq!(ZoneOffset::from_hours_minutes(-3, 30), Ok(offset("-03:30")));
        assert_eq!(ZoneOffset::from_hours_minutes(5, 45), Ok(offset("+05:45")));
        assert_eq!(ZoneOffset::from_hours_minutes(0, 0), Ok(ZoneOffset::UTC));
        assert!(ZoneOffset::from_hours_minutes(-5, 60).is_err());
        assert!(ZoneOffset::from_hours_minutes(19, 0).is_err());
        assert!(ZoneOffset::from_hours_minutes(i8::MIN, 0).is_err());
        assert!(ZoneOffset::from_minutes(i16::MIN).is_err());
        assert!(ZoneOffset::from_minutes(i16::MAX).is_err());
        assert_eq!(
            ZoneOffset::from_minutes(-30).map(|o| o.to_string()),
            Ok("-00:30".to_owned())
        );
        assert_eq!(BOGOTA.to_string(), "-05:00");
        assert_eq!(ZoneOffset::UTC.to_string(), "+00:00");
        assert_eq!("-05:00".parse::<ZoneOffset>(), Ok(BOGOTA));
    }

    #[test]
    fn times_of_day_read_colons_or_clock_numbers_as_the_caller_says() {
        let colons = [
            ("16:02:11", hms(16, 2, 11)),
            ("00:00:00", TimeOfDay::MIDNIGHT),
            ("23:59:59", hms(23, 59, 59)),
            ("16:02", hms(16, 2, 0)),
        ];
        for (text, expected) in colons {
            assert_eq!(TimeOfDay::parse_hh_mm_ss(text), Ok(expected), "{text}");
        }
        for text in [
            "160211",
            "16:02:1",
            "6:02:11",
            "16-02-11",
            "16:02:11.5",
            "16:02:",
            "",
            "16.02",
        ] {
            assert_eq!(
                TimeOfDay::parse_hh_mm_ss(text),
                Err(DateTimeError::UnexpectedFormat {
                    expected: EXPECT_HH_MM_SS,
                    input: text.to_owned()
                }),
                "{text:?}"
            );
        }
        for text in ["24:00:00", "23:60:00", "23:59:60", "24:00"] {
            assert_eq!(
                TimeOfDay::parse_hh_mm_ss(text),
                Err(DateTimeError::NotATimeOfDay {
                    input: text.to_owned()
                }),
                "{text}"
            );
        }

        let hhmm = [
            ("1602", hms(16, 2, 0)),
            ("902", hms(9, 2, 0)),
            ("0902", hms(9, 2, 0)),
            ("5", hms(0, 5, 0)),
            ("0", TimeOfDay::MIDNIGHT),
            ("2359", hms(23, 59, 0)),
        ];
        for (text, expected) in hhmm {
            assert_eq!(TimeOfDay::parse_hhmm_digits(text), Ok(expected), "{text}");
        }
        for text in ["16:02", "160211", "-1602", "", " 1602", "16.02"] {
            assert!(
                matches!(
                    TimeOfDay::parse_hhmm_digits(text),
                    Err(DateTimeError::UnexpectedFormat { .. })
                ),
                "{text:?}"
            );
        }
        for text in ["2400", "1660", "99"] {
            assert!(
                matches!(
                    TimeOfDay::parse_hhmm_digits(text),
                    Err(DateTimeError::NotATimeOfDay { .. })
                ),
                "{text}"
            );
        }

        let hhmmss = [
            ("160211", hms(16, 2, 11)),
            ("90211", hms(9, 2, 11)),
            ("1602", hms(0, 16, 2)),
            ("0", TimeOfDay::MIDNIGHT),
            ("235959", hms(23, 59, 59)),
        ];
        for (text, expected) in hhmmss {
            assert_eq!(TimeOfDay::parse_hhmmss_digits(text), Ok(expected), "{text}");
        }
        for text in ["1602110", "16:02:11", "", "+160211"] {
            assert!(
                matches!(
                    TimeOfDay::parse_hhmmss_digits(text),
                    Err(DateTimeError::UnexpectedFormat { .. })
                ),
                "{text:?}"
            );
        }
        for text in ["240000", "166000", "160260"] {
            assert!(
                matches!(
                    TimeOfDay::parse_hhmmss_digits(text),
                    Err(DateTimeError::NotATimeOfDay { .. })
                ),
                "{text}"
            );
        }
        assert!(TimeOfDay::from_hms(24, 0, 0).is_err());
        assert_eq!(hms(9, 2, 11).format_hh_mm_ss(), "09:02:11");
    }

    #[test]
    fn a_split_local_date_and_time_becomes_an_instant_in_the_given_offset() {
        // An ERP server in Bogotá writes UpdateDate and UpdateTime in its own clock.
        let cases = [
            ("2025-03-14", "16:02:11", "2025-03-14T21:02:11.000Z"),
            (
                "2025-03-14T00:00:00Z",
                "16:02:11",
                "2025-03-14T21:02:11.000Z",
            ),
            ("2025-03-14", "21:30:00", "2025-03-15T02:30:00.000Z"),
            (
                "2024-02-29T00:00:00Z",
                "23:59:59",
                "2024-03-01T04:59:59.000Z",
            ),
            ("2025-12-31", "19:00:00", "2026-01-01T00:00:00.000Z"),
        ];
        for (date, time, expected) in cases {
            let at = Date::parse_iso_date_part(date)
                .expect("test date is valid")
                .at_time(
                    TimeOfDay::parse_hh_mm_ss(time).expect("test time is valid"),
                    BOGOTA,
                );
            assert_eq!(at, Ok(ts(expected)), "{date} {time}");
        }
        let numeric =
            ymd(2025, 3, 14).at_time(TimeOfDay::parse_hhmm_digits("1602").expect("valid"), BOGOTA);
        assert_eq!(numeric, Ok(ts("2025-03-14T21:02:00Z")));
        assert!(matches!(
            Date::MAX.at_time(hms(23, 0, 0), BOGOTA),
            Err(DateTimeError::OutOfRange { .. })
        ));
    }

    #[test]
    fn business_dates_follow_the_offset_not_utc() {
        let cases = [
            ("2025-03-15T03:00:00Z", "-05:00", ymd(2025, 3, 14)),
            ("2025-03-15T05:00:00Z", "-05:00", ymd(2025, 3, 15)),
            ("2025-03-15T04:59:59.999Z", "-05:00", ymd(2025, 3, 14)),
            ("2025-01-01T02:00:00Z", "-03:00", ymd(2024, 12, 31)),
            ("2024-03-01T04:00:00Z", "-05:00", ymd(2024, 2, 29)),
            ("2025-03-14T20:00:00Z", "+05:45", ymd(2025, 3, 15)),
            ("2025-03-14T20:00:00Z", "Z", ymd(2025, 3, 14)),
            ("0000-12-31T23:00:00Z", "+01:00", Date::MIN),
        ];
        for (instant, zone, expected) in cases {
            assert_eq!(
                ts(instant).date_in(offset(zone)),
                Ok(expected),
                "{instant} {zone}"
            );
        }
        assert_eq!(
            ymd(2025, 3, 14).at_start_of_day(BOGOTA),
            ts("2025-03-14T05:00:00Z")
        );
        assert_eq!(
            ymd(2025, 3, 14).at_start_of_day(offset("+05:30")),
            ts("2025-03-13T18:30:00Z")
        );
        assert_eq!(
            ts("2025-03-14T21:02:11.999Z").time_of_day_in(BOGOTA),
            hms(16, 2, 11)
        );
        for (instant, zone) in [
            ("0000-06-01T00:00:00Z", "Z"),
            ("9999-12-31T23:00:00Z", "+01:00"),
        ] {
            assert!(
                matches!(
                    ts(instant).date_in(offset(zone)),
                    Err(DateTimeError::OutOfRange { .. })
                ),
                "{instant} {zone}"
            );
        }
        assert_eq!(
            Date::MIN.at_start_of_day(offset("+18:00")),
            ts("0000-12-31T06:00:00Z")
        );
        assert_eq!(
            Date::MAX.at_start_of_day(offset("-18:00")),
            ts("9999-12-31T18:00:00Z")
        );
    }

    #[test]
    fn order_follows_time_and_the_calendar() {
        assert!(ts("2025-03-14T16:02:11Z") < ts("2025-03-14T11:02:12-05:00"));
        assert!(ts("1969-12-31T23:59:59Z") < ts("1970-01-01T00:00:00Z"));
        assert!(ymd(2024, 12, 31) < ymd(2025, 1, 1));
        assert!(ymd(2025, 2, 28) < ymd(2025, 3, 1));
        assert!(ymd(2025, 3, 9) < ymd(2025, 3, 10));
    }

    #[test]
    fn serde_uses_rfc3339_utc_with_milliseconds_and_iso_dates() {
        let t = ts("2025-03-14T11:02:11.356-05:00");
        assert_eq!(
            serde_json::to_string(&t).expect("serializes"),
            r#""2025-03-14T16:02:11.356Z""#
        );
        assert_eq!(
            serde_json::from_str::<Timestamp>(r#""2025-03-14T16:02:11.356Z""#).expect("parses"),
            t
        );
        assert!(serde_json::from_str::<Timestamp>(r#""2025-03-14T16:02:11""#).is_err());
        assert!(serde_json::from_str::<Timestamp>("1741968131356").is_err());
        let d = ymd(2025, 3, 14);
        assert_eq!(
            serde_json::to_string(&d).expect("serializes"),
            r#""2025-03-14""#
        );
        assert_eq!(
            serde_json::from_str::<Date>(r#""2025-03-14""#).expect("parses"),
            d
        );
        assert!(serde_json::from_str::<Date>(r#""14/03/2025""#).is_err());
        assert_eq!(
            serde_json::to_string(&BOGOTA).expect("serializes"),
            r#""-05:00""#
        );
        assert_eq!(
            serde_json::from_str::<ZoneOffset>(r#""-05:00""#).expect("parses"),
            BOGOTA
        );
    }

    #[test]
    fn debug_output_is_readable() {
        assert_eq!(
            format!("{:?}", ts("2025-03-14T16:02:11.356Z")),
            "Timestamp(2025-03-14T16:02:11.356Z)"
        );
        assert_eq!(format!("{:?}", ymd(2025, 3, 14)), "Date(2025-03-14)");
        assert_eq!(format!("{BOGOTA:?}"), "ZoneOffset(-05:00)");
        assert_eq!(format!("{:?}", hms(1, 2, 3)), "TimeOfDay(01:02:03)");
    }

    fn any_timestamp() -> impl Strategy<Value = Timestamp> {
        (MIN_MILLIS..=MAX_MILLIS).prop_map(|millis| Timestamp { millis })
    }

    fn any_date() -> impl Strategy<Value = Date> {
        (Date::MIN.days()..=Date::MAX.days()).prop_map(|days| {
            let (year, month, day) = civil_from_days(days);
            Date {
                year: u16::try_from(year).expect("year within 1..=9999"),
                month,
                day,
            }
        })
    }

    fn any_offset() -> impl Strategy<Value = ZoneOffset> {
        (-MAX_OFFSET_MINUTES..=MAX_OFFSET_MINUTES).prop_map(|minutes| ZoneOffset { minutes })
    }

    fn any_time() -> impl Strategy<Value = TimeOfDay> {
        (0u8..24, 0u8..60, 0u8..60).prop_map(|(hour, minute, second)| TimeOfDay {
            hour,
            minute,
            second,
        })
    }

    /// The instant written in a local offset, as another system would (any fraction length).
    fn rfc3339_in(t: Timestamp, offset: ZoneOffset, fraction_digits: usize) -> String {
        let ((y, m, d), time, ms) = t.local_parts(offset);
        let fraction = match fraction_digits {
            0 => String::new(),
            n => format!(".{:0<n$}", format!("{ms:03}")),
        };
        format!("{y:04}-{m:02}-{d:02}T{time}{fraction}{offset}")
    }

    proptest! {
        #[test]
        fn rfc3339_round_trips(t in any_timestamp()) {
            prop_assert_eq!(Timestamp::parse_rfc3339(&t.format_rfc3339()), Ok(t));
        }

        #[test]
        fn rfc3339_in_any_offset_denotes_the_same_instant(
            t in any_timestamp(),
            o in any_offset(),
            digits in 3usize..=9,
        ) {
            let text = rfc3339_in(t, o, digits);
            // Instants near the ends of the range may be written with a five-digit or
            // negative local year; the RFC 3339 grammar has no such strings.
            prop_assume!(t.date_in(o).is_ok());
            prop_assert_eq!(Timestamp::parse_rfc3339(&text), Ok(t), "{}", text);
        }

        #[test]
        fn epoch_millis_round_trips(t in any_timestamp()) {
            prop_assert_eq!(Timestamp::parse_epoch_millis(&t.format_epoch_millis()), Ok(t));
            prop_assert_eq!(Timestamp::from_epoch_millis(t.epoch_millis()), Ok(t));
        }

        #[test]
        fn naive_utc_round_trips_to_the_second(t in any_timestamp()) {
            let whole_seconds = Timestamp { millis: t.millis - t.millis.rem_euclid(MS_PER_SECOND) };
            prop_assert_eq!(Timestamp::parse_naive_utc(&t.format_naive_utc()), Ok(whole_seconds));
        }

        #[test]
        fn serde_round_trips(t in any_timestamp(), d in any_date(), o in any_offset()) {
            let json = serde_json::to_string(&(t, d, o)).expect("serializes");
            prop_assert_eq!(
                serde_json::from_str::<(Timestamp, Date, ZoneOffset)>(&json).expect("parses"),
                (t, d, o)
            );
        }

        #[test]
        fn dates_round_trip_through_every_layout(d in any_date()) {
            prop_assert_eq!(Date::parse_iso(&d.format_iso()), Ok(d));
            prop_assert_eq!(Date::parse_iso_date_part(&d.format_iso()), Ok(d));
            prop_assert_eq!(Date::parse_day_first(&d.format_day_first()), Ok(d));
            prop_assert_eq!(Date::parse_month_first(&d.format_month_first()), Ok(d));
            prop_assert_eq!(Date::from_ymd(d.year(), d.month(), d.day()), Ok(d));
        }

        #[test]
        fn offsets_and_times_round_trip(o in any_offset(), time in any_time()) {
            prop_assert_eq!(ZoneOffset::parse(&o.to_string()), Ok(o));
            prop_assert_eq!(TimeOfDay::parse_hh_mm_ss(&time.format_hh_mm_ss()), Ok(time));
            let (h, m, s) = (u32::from(time.hour), u32::from(time.minute), u32::from(time.second));
            prop_assert_eq!(
                TimeOfDay::parse_hhmmss_digits(&(h * 10_000 + m * 100 + s).to_string()),
                Ok(time)
            );
            prop_assert_eq!(
                TimeOfDay::parse_hhmm_digits(&(h * 100 + m).to_string()),
                Ok(hms(time.hour, time.minute, 0))
            );
        }

        #[test]
        fn start_of_the_local_day_is_at_most_a_day_before(t in any_timestamp(), o in any_offset()) {
            let Ok(day) = t.date_in(o) else {
                // Only instants whose local date leaves 0001..=9999 fail.
                let ((year, _, _), _, _) = t.local_parts(o);
                prop_assert!(!(1..=9999).contains(&year));
                return Ok(());
            };
            let start = day.at_start_of_day(o);
            prop_assert!(start <= t);
            prop_assert!(t.millis - start.millis < MS_PER_DAY);
            prop_assert_eq!(start.date_in(o), Ok(day));
        }

        #[test]
        fn a_local_date_and_time_read_back_in_the_same_offset(
            d in any_date(),
            time in any_time(),
            o in any_offset(),
        ) {
            if let Ok(t) = d.at_time(time, o) {
                prop_assert_eq!(t.date_in(o), Ok(d));
                prop_assert_eq!(t.time_of_day_in(o), time);
            } else {
                prop_assert!(d.days() * MS_PER_DAY + time.millis() - o.millis() > MAX_MILLIS);
            }
        }

        #[test]
        fn calendar_agrees_with_the_time_crate(t in any_timestamp()) {
            let nanos = i128::from(t.millis) * 1_000_000;
            let reference = time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
                .expect("the time crate covers years 0000..=9999");
            let ((y, m, d), clock, ms) = t.local_parts(ZoneOffset::UTC);
            prop_assert_eq!(i64::from(reference.year()), y);
            prop_assert_eq!(u8::from(reference.month()), m);
            prop_assert_eq!(reference.day(), d);
            prop_assert_eq!(
                (reference.hour(), reference.minute(), reference.second()),
                (clock.hour, clock.minute, clock.second)
            );
            prop_assert_eq!(i64::from(reference.millisecond()), ms);
            let rfc = reference
                .format(&time::format_description::well_known::Rfc3339)
                .expect("formats");
            prop_assert_eq!(Timestamp::parse_rfc3339(&rfc), Ok(t), "{}", rfc);
        }

        #[test]
        fn calendar_validity_agrees_with_the_time_crate(y in 1u16..=9999, m in 0u8..=13, d in 0u8..=32) {
            let reference = time::Month::try_from(m)
                .ok()
                .and_then(|month| time::Date::from_calendar_date(i32::from(y), month, d).ok());
            prop_assert_eq!(Date::from_ymd(y, m, d).is_ok(), reference.is_some());
            if let Some(reference) = reference {
                prop_assert_eq!(
                    ymd(y, m, d).days(),
                    i64::from(reference.to_julian_day()) - 2_440_588
                );
            }
        }

        #[test]
        fn parsers_never_panic_on_junk(text in "\\PC{0,40}") {
            let _ = Timestamp::parse_rfc3339(&text);
            let _ = Timestamp::parse_naive_utc(&text);
            let _ = Timestamp::parse_epoch_millis(&text);
            let _ = Date::parse_iso(&text);
            let _ = Date::parse_iso_date_part(&text);
            let _ = Date::parse_day_first(&text);
            let _ = Date::parse_month_first(&text);
            let _ = ZoneOffset::parse(&text);
            let _ = TimeOfDay::parse_hh_mm_ss(&text);
            let _ = TimeOfDay::parse_hhmm_digits(&text);
            let _ = TimeOfDay::parse_hhmmss_digits(&text);
        }

        #[test]
        fn parsers_never_panic_on_near_misses(text in "[0-9:/ .TZtz+-]{0,32}") {
            let _ = Timestamp::parse_rfc3339(&text);
            let _ = Timestamp::parse_naive_utc(&text);
            let _ = Date::parse_iso_date_part(&text);
            let _ = Date::parse_day_first(&text);
            let _ = TimeOfDay::parse_hh_mm_ss(&text);
        }
    }
}
