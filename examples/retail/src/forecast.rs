//! Next month's sales from the months so far: Holt-Winters exponential smoothing with a trend and
//! multiplicative seasonal indices, season length 12.
//!
//! Per product the state is a level `L` (units per month with the season taken out), a trend `T`
//! (change of the level per month) and twelve seasonal indices `S[Jan..Dec]`. Each closed month
//! `m` brings its baseline units `x` (promotion units are left out: a promotion is a one-off, not
//! demand to plan for):
//!
//! ```text
//! months 1–11 (no season known yet): L = α·x + (1 − α)·L   (L = x at first);  forecast F = L
//! month 12 (classical start):        L = mean of the 12 months, T = 0, S[m] = x_m / L for each month
//! from month 13 on:                  L' = α·x/S[m] + (1 − α)·(L + T)
//!                                    T' = β·(L' − L) + (1 − β)·T
//!                                    S[m] = γ·x/L' + (1 − γ)·S[m]
//! forecast of the next month n:      F = max(0, (L + T)·S[n])
//! ```
//!
//! `α` (how fast the level follows recent months), `β` (how fast the trend does) and `γ` (how fast
//! the seasonal pattern is relearnt) are settings: `retail.forecast.alpha`, `.beta`, `.gamma`. A
//! month without sales counts as `x = 0`. From the second year on, next December is forecast from
//! last year's pattern at today's level and trend: coats before winter, fans before summer.

use serde::{Deserialize, Serialize};

use crate::calendar::Month;

/// The smoothing parameters.
///
/// ```
/// let p = retail::forecast::ForecastParams::default();
/// assert_eq!((p.alpha, p.beta, p.gamma), (0.3, 0.1, 0.3));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForecastParams {
    /// Level smoothing, 0 < α ≤ 1.
    pub alpha: f64,
    /// Trend smoothing, 0 ≤ β ≤ 1.
    pub beta: f64,
    /// Seasonal smoothing, 0 ≤ γ ≤ 1.
    pub gamma: f64,
}

impl Default for ForecastParams {
    fn default() -> Self {
        ForecastParams { alpha: 0.3, beta: 0.1, gamma: 0.3 }
    }
}

impl ForecastParams {
    /// Checks the ranges; the error names the setting.
    pub fn validate(self) -> Result<Self, String> {
        if !(self.alpha > 0.0 && self.alpha <= 1.0) {
            return Err(format!("retail.forecast.alpha must be in (0, 1], got {}", self.alpha));
        }
        if !(0.0..=1.0).contains(&self.beta) {
            return Err(format!("retail.forecast.beta must be in [0, 1], got {}", self.beta));
        }
        if !(0.0..=1.0).contains(&self.gamma) {
            return Err(format!("retail.forecast.gamma must be in [0, 1], got {}", self.gamma));
        }
        Ok(self)
    }
}

/// The season's length in months.
pub const SEASON: usize = 12;

/// A product's smoothing state, kept in the `forecast-state` store.
///
/// ```
/// use retail::calendar::Month;
/// use retail::forecast::{ForecastParams, ForecastState};
/// let p = ForecastParams { alpha: 0.5, beta: 0.5, gamma: 0.5 };
/// let mut s = ForecastState::default();
/// s.observe(Month::new(2025, 1), 100.0, p);
/// s.observe(Month::new(2025, 2), 200.0, p);
/// // Before a full year: L = 0.5·200 + 0.5·100 = 150, and the forecast is the level.
/// assert_eq!(s.forecast(), Some((Month::new(2025, 3), 150.0)));
/// ```
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ForecastState {
    /// The smoothed level.
    pub level: f64,
    /// The smoothed trend (0 until the season is known).
    pub trend: f64,
    /// Seasonal indices, January first (all 1 until the season is known).
    pub seasonal: [f64; SEASON],
    /// The first year's months, until the season is known.
    pub first_year: Vec<f64>,
    /// Months observed (gaps included).
    pub months: u32,
    /// The last month observed.
    pub last: Option<Month>,
}

impl Default for ForecastState {
    fn default() -> Self {
        ForecastState { level: 0.0, trend: 0.0, seasonal: [1.0; SEASON], first_year: Vec::new(), months: 0, last: None }
    }
}

impl ForecastState {
    /// Takes in month `month`'s baseline units. Months up to the last one observed are ignored
    /// (each month is final once); skipped months count as months without sales.
    pub fn observe(&mut self, month: Month, units: f64, params: ForecastParams) {
        if let Some(last) = self.last {
            if month <= last {
                return;
            }
            let mut gap = last.next();
            while gap < month {
                self.update(gap, 0.0, params);
                gap = gap.next();
            }
        }
        self.update(month, units, params);
    }

    /// Whether a full year has been seen, so the seasonal indices are in use.
    pub fn seasonal(&self) -> bool {
        self.months as usize >= SEASON
    }

    fn update(&mut self, month: Month, x: f64, params: ForecastParams) {
        let ForecastParams { alpha, beta, gamma } = params;
        self.months += 1;
        self.last = Some(month);
        if (self.months as usize) < SEASON {
            self.level = if self.months == 1 { x } else { alpha * x + (1.0 - alpha) * self.level };
            self.first_year.push(x);
            return;
        }
        if self.months as usize == SEASON {
            self.first_year.push(x);
            let mean = self.first_year.iter().sum::<f64>() / SEASON as f64;
            self.level = mean;
            self.trend = 0.0;
            if mean > 0.0 {
                // The first year's months, oldest first, end with `month`.
                for (i, value) in self.first_year.iter().enumerate() {
                    let m = Month::new(month.year(), month.month() + 1 + i as u32).index_in_year();
                    self.seasonal[m] = value / mean;
                }
            }
            self.first_year.clear();
            return;
        }
        let m = month.index_in_year();
        let index = self.seasonal[m];
        let deseasonalised = if index > 1e-9 { x / index } else { x };
        let level = alpha * deseasonalised + (1.0 - alpha) * (self.level + self.trend);
        self.trend = beta * (level - self.level) + (1.0 - beta) * self.trend;
        if level > 1e-9 {
            self.seasonal[m] = gamma * (x / level) + (1.0 - gamma) * index;
        }
        self.level = level;
    }

    /// The month after the last observed, and its forecast units.
    pub fn forecast(&self) -> Option<(Month, f64)> {
        let next = self.last?.next();
        let units =
            if self.seasonal() { (self.level + self.trend) * self.seasonal[next.index_in_year()] } else { self.level };
        Some((next, units.max(0.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_counts_as_a_month_without_sales() {
        let p = ForecastParams { alpha: 0.5, beta: 0.0, gamma: 0.0 };
        let mut s = ForecastState::default();
        s.observe(Month::new(2025, 1), 100.0, p);
        s.observe(Month::new(2025, 3), 100.0, p); // February had no sales: L = 50, then L = 75
        assert_eq!(s.months, 3);
        assert_eq!(s.forecast(), Some((Month::new(2025, 4), 75.0)));
        s.observe(Month::new(2025, 2), 1_000.0, p); // late and out of order: ignored
        assert_eq!(s.forecast(), Some((Month::new(2025, 4), 75.0)));
    }

    #[test]
    fn bad_parameters_name_the_setting() {
        assert!(ForecastParams { alpha: 0.0, ..Default::default() }.validate().unwrap_err().contains("alpha"));
        assert!(ForecastParams { beta: -0.1, ..Default::default() }.validate().unwrap_err().contains("beta"));
        assert!(ForecastParams { gamma: 1.5, ..Default::default() }.validate().unwrap_err().contains("gamma"));
    }
}
