//! Windows for windowed aggregations: [`TimeWindows`] (tumbling and hopping) and the [`Windows`]
//! trait for windows of one's own (calendar months, business days, …).

use std::time::Duration;

use crate::store::millis;
use crate::windowed::Window;

/// Which windows a record falls into, and how long windows accept late records.
///
/// Implement it for windows of your own. A window is `[start, end)`; a record belongs to every window
/// whose range contains its timestamp. A window closes when stream time passes `end + grace`;
/// records arriving for a closed window are dropped and counted.
///
/// ```
/// use kstreams_streams::dsl::Windows;
/// use kstreams_streams::windowed::Window;
/// /// Days, in UTC.
/// struct Days;
/// impl Windows for Days {
///     fn windows_for(&self, ts: i64) -> Vec<Window> {
///         let day = 86_400_000;
///         let start = ts - ts.rem_euclid(day);
///         vec![Window::new(start, start + day)]
///     }
///     fn size_ms(&self) -> i64 { 86_400_000 }
///     fn grace_ms(&self) -> i64 { 0 }
/// }
/// assert_eq!(Days.windows_for(86_400_001)[0].start(), 86_400_000);
/// ```
pub trait Windows: Send + Sync + 'static {
    /// The windows containing `timestamp`, by start time.
    fn windows_for(&self, timestamp: i64) -> Vec<Window>;
    /// The largest window size in milliseconds (sizes the store's retention).
    fn size_ms(&self) -> i64;
    /// How long after its end a window still accepts records, in milliseconds.
    fn grace_ms(&self) -> i64;
}

/// Fixed-size windows: tumbling (advance = size) or hopping (advance < size), aligned to the epoch.
///
/// ```
/// use std::time::Duration;
/// use kstreams_streams::dsl::{TimeWindows, Windows};
/// let hopping = TimeWindows::of_size_with_no_grace(Duration::from_secs(1)).advance_by(Duration::from_millis(500));
/// let starts: Vec<i64> = hopping.windows_for(1_200).iter().map(|w| w.start()).collect();
/// assert_eq!(starts, vec![500, 1_000]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindows {
    size_ms: i64,
    advance_ms: i64,
    grace_ms: i64,
}

impl TimeWindows {
    /// Tumbling windows of `size` that close as soon as stream time passes their end.
    pub fn of_size_with_no_grace(size: Duration) -> Self {
        Self::of_size_and_grace(size, Duration::ZERO)
    }

    /// Tumbling windows of `size` that accept out-of-order records for `grace` after their end.
    pub fn of_size_and_grace(size: Duration, grace: Duration) -> Self {
        let size_ms = millis(size).max(1);
        TimeWindows { size_ms, advance_ms: size_ms, grace_ms: millis(grace) }
    }

    /// Hopping windows: a new window every `advance` (at most the size).
    pub fn advance_by(mut self, advance: Duration) -> Self {
        self.advance_ms = millis(advance).clamp(1, self.size_ms);
        self
    }
}

impl Windows for TimeWindows {
    fn windows_for(&self, timestamp: i64) -> Vec<Window> {
        // Saturating: times and sizes near i64::MAX end their windows at i64::MAX.
        let first = timestamp.saturating_sub(self.size_ms).saturating_add(self.advance_ms).max(0);
        let mut start = first - first.rem_euclid(self.advance_ms);
        let mut windows = Vec::new();
        while start <= timestamp {
            windows.push(Window::new(start, start.saturating_add(self.size_ms)));
            match start.checked_add(self.advance_ms) {
                Some(next) => start = next,
                None => break,
            }
        }
        windows
    }

    fn size_ms(&self) -> i64 {
        self.size_ms
    }

    fn grace_ms(&self) -> i64 {
        self.grace_ms
    }
}
