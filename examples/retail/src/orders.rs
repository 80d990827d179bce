//! Automatic orders: what to buy for next month, from the forecast and the stock on hand.
//!
//! ```text
//! need  = forecast + safety stock − on hand
//! order = need rounded up to whole packs, when need > 0; no order otherwise
//! ```

use crate::model::{AutoOrder, Forecast};

/// The order for `forecast` with `on_hand` units in stock, if one is needed.
///
/// ```
/// use retail::calendar::Month;
/// use retail::model::Forecast;
/// use retail::orders::propose;
/// let forecast = Forecast {
///     sku: "SKU-0001".into(), name: "Umbrella".into(), month: Month::new(2026, 1), units: 41.3,
///     history_months: 24, level: 40.0, seasonal_index: 1.03, safety_stock: 10, pack_size: 12,
/// };
/// // need = 41.3 + 10 − 20 = 31.3 → 3 packs of 12
/// assert_eq!(propose(&forecast, 20).unwrap().order_units, 36);
/// // need = 41.3 + 10 − 60 < 0 → nothing to order
/// assert!(propose(&forecast, 60).is_none());
/// ```
pub fn propose(forecast: &Forecast, on_hand: i64) -> Option<AutoOrder> {
    let need = forecast.units + forecast.safety_stock as f64 - on_hand as f64;
    if need <= 0.0 {
        return None;
    }
    let pack = forecast.pack_size.max(1);
    let packs = (need / pack as f64).ceil() as i64;
    Some(AutoOrder {
        sku: forecast.sku.clone(),
        name: forecast.name.clone(),
        month: forecast.month,
        forecast_units: forecast.units,
        safety_stock: forecast.safety_stock,
        on_hand,
        pack_size: pack,
        order_units: packs * pack,
    })
}
