//! Calendar months in UTC: the [`Month`] type, and [`CalendarMonths`], the windows monthly sales are
//! aggregated in (a custom [`Windows`]: months have 28 to 31 days, so fixed-size windows won't do).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate};
use kstreams::dsl::Windows;
use kstreams::windowed::Window;
use serde::{Deserialize, Serialize};

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// A calendar month, `YYYY-MM`, in UTC.
///
/// ```
/// use retail::calendar::Month;
/// let march = Month::new(2025, 3);
/// assert_eq!(march.to_string(), "2025-03");
/// assert_eq!(Month::from_millis(march.end_millis() - 1), march); // the last millisecond of March
/// assert_eq!(Month::from_millis(march.end_millis()), Month::new(2025, 4));
/// assert_eq!(Month::new(2025, 12).next(), Month::new(2026, 1));
/// assert_eq!("2025-03".parse::<Month>().unwrap(), march);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Month {
    year: i32,
    /// 1 to 12.
    month: u32,
}

impl Month {
    /// The month `month` (1–12) of `year`; months out of range wrap into the next years.
    pub fn new(year: i32, month: u32) -> Month {
        let index = i64::from(year) * 12 + i64::from(month.max(1)) - 1;
        Month { year: index.div_euclid(12) as i32, month: index.rem_euclid(12) as u32 + 1 }
    }

    /// The month containing `millis` since the epoch (UTC).
    pub fn from_millis(millis: i64) -> Month {
        let at = DateTime::from_timestamp_millis(millis).unwrap_or_default();
        Month { year: at.year(), month: at.month() }
    }

    /// The year.
    pub fn year(self) -> i32 {
        self.year
    }

    /// The month of the year, 1–12.
    pub fn month(self) -> u32 {
        self.month
    }

    /// 0 for January … 11 for December.
    pub fn index_in_year(self) -> usize {
        (self.month - 1) as usize
    }

    /// The first millisecond of the month.
    pub fn start_millis(self) -> i64 {
        NaiveDate::from_ymd_opt(self.year, self.month, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp_millis())
            .unwrap_or_default()
    }

    /// The first millisecond of the next month (the window's exclusive end).
    pub fn end_millis(self) -> i64 {
        self.next().start_millis()
    }

    /// The month after.
    pub fn next(self) -> Month {
        Month::new(self.year, self.month + 1)
    }

    /// Months from `self` to `later` (negative if `later` is earlier).
    pub fn months_until(self, later: Month) -> i64 {
        (i64::from(later.year) * 12 + i64::from(later.month)) - (i64::from(self.year) * 12 + i64::from(self.month))
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl std::str::FromStr for Month {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (year, month) = s.split_once('-').ok_or_else(|| format!("`{s}` is not YYYY-MM"))?;
        let year: i32 = year.parse().map_err(|_| format!("`{s}` is not YYYY-MM"))?;
        let month: u32 = month.parse().map_err(|_| format!("`{s}` is not YYYY-MM"))?;
        if !(1..=12).contains(&month) {
            return Err(format!("`{s}`: month {month} is not 1-12"));
        }
        Ok(Month { year, month })
    }
}

impl TryFrom<String> for Month {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Month> for String {
    fn from(m: Month) -> String {
        m.to_string()
    }
}

/// Tumbling windows of one calendar month each, in UTC, accepting late records for `grace` after
/// the month ends.
///
/// ```
/// use std::time::Duration;
/// use kstreams::dsl::Windows;
/// use retail::calendar::{CalendarMonths, Month};
/// let months = CalendarMonths::with_grace(Duration::from_secs(3 * 86_400));
/// let feb = Month::new(2024, 2); // a leap year: 29 days
/// let windows = months.windows_for(feb.start_millis() + 5);
/// assert_eq!((windows[0].start(), windows[0].end()), (feb.start_millis(), Month::new(2024, 3).start_millis()));
/// assert_eq!(windows[0].end() - windows[0].start(), 29 * 86_400_000);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CalendarMonths {
    grace_ms: i64,
}

impl CalendarMonths {
    /// Months that accept records up to `grace` after their end (by stream time).
    pub fn with_grace(grace: Duration) -> Self {
        CalendarMonths { grace_ms: i64::try_from(grace.as_millis()).unwrap_or(i64::MAX) }
    }
}

impl Windows for CalendarMonths {
    fn windows_for(&self, timestamp: i64) -> Vec<Window> {
        let month = Month::from_millis(timestamp);
        vec![Window::new(month.start_millis(), month.end_millis())]
    }

    fn size_ms(&self) -> i64 {
        31 * DAY_MS
    }

    fn grace_ms(&self) -> i64 {
        self.grace_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_boundaries_are_utc_midnights() {
        let jan = Month::new(2025, 1);
        assert_eq!(jan.start_millis(), 1_735_689_600_000); // 2025-01-01T00:00:00Z
        assert_eq!(Month::from_millis(jan.start_millis() - 1), Month::new(2024, 12));
        assert_eq!(Month::new(2024, 13), Month::new(2025, 1));
        assert_eq!(Month::new(2024, 11).months_until(Month::new(2025, 2)), 3);
        assert_eq!(Month::new(2024, 2).end_millis() - Month::new(2024, 2).start_millis(), 29 * DAY_MS);
        assert_eq!(Month::new(2025, 2).end_millis() - Month::new(2025, 2).start_millis(), 28 * DAY_MS);
        assert!("2025-13".parse::<Month>().is_err() && "2025".parse::<Month>().is_err());
        let json = serde_json::to_string(&jan).unwrap();
        assert_eq!(json, "\"2025-01\"");
        assert_eq!(serde_json::from_str::<Month>(&json).unwrap(), jan);
    }
}
