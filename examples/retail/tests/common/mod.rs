//! What the retail hub's outputs must be, computed here from what the shop's systems wrote,
//! without the application's code (the tests' independent oracle).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime};
use retail::generator::{Breakage, GeneratorConfig, Record};
use retail::model::{PosSale, Product, WebOrder};

pub const DAY: i64 = 86_400_000;
pub const GRACE: i64 = 3 * DAY;
pub const ALPHA: f64 = 0.3;
pub const BETA: f64 = 0.1;
pub const GAMMA: f64 = 0.3;

pub fn bootstrap() -> String {
    std::env::var("KSTREAMS_BOOTSTRAP").ok().filter(|b| !b.is_empty()).unwrap_or_else(|| "127.0.0.1:9092".into())
}

pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("{prefix}{}-{nanos}", std::process::id())
}

// --- the expected outputs, computed here ---------------------------------------------------------

/// (year, month) of a UTC timestamp.
pub fn month_of(ms: i64) -> (i32, u32) {
    let t = DateTime::from_timestamp_millis(ms).unwrap();
    (t.year(), t.month())
}

/// The first millisecond after month (year, month).
pub fn month_end(ym: (i32, u32)) -> i64 {
    let (y, m) = if ym.1 == 12 { (ym.0 + 1, 1) } else { (ym.0, ym.1 + 1) };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis()
}

pub fn next_month(ym: (i32, u32)) -> (i32, u32) {
    if ym.1 == 12 {
        (ym.0 + 1, 1)
    } else {
        (ym.0, ym.1 + 1)
    }
}

/// (year, month) of a forecast and its units.
pub type MonthForecast = ((i32, u32), f64);

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Totals {
    pub units: i64,
    pub promo: i64,
    pub revenue: i64,
    pub lines: i64,
}

#[derive(Debug, Default)]
pub struct Expected {
    pub monthly: BTreeMap<(String, (i32, u32)), Totals>,
    /// Per SKU, the forecasts in order: (forecast month, units).
    pub forecasts: BTreeMap<String, Vec<MonthForecast>>,
    /// Per SKU, the final order: (order units, on hand), or none.
    pub orders: BTreeMap<String, Option<(i64, i64)>>,
    /// Per web id, (units on hand, stores with stock).
    pub web: BTreeMap<String, (i64, BTreeMap<String, i64>)>,
    pub dead_letters: BTreeMap<&'static str, usize>,
    pub late_dropped: usize,
    /// The final stock levels, `SKU|location` → units.
    pub stock: BTreeMap<String, i64>,
}

/// Holt-Winters as the application documents it, written out again here.
pub fn forecasts_of(months: &BTreeMap<(i32, u32), i64>) -> Vec<MonthForecast> {
    let mut out = Vec::new();
    let (mut level, mut trend, mut seasonal) = (0.0f64, 0.0f64, [1.0f64; 12]);
    let mut first_year: Vec<f64> = Vec::new();
    let mut seen = 0usize;
    let Some(first) = months.keys().next().copied() else { return out };
    let last = *months.keys().last().unwrap();
    let mut ym = first;
    loop {
        let x = months.get(&ym).copied().unwrap_or(0) as f64;
        seen += 1;
        let index = (ym.1 - 1) as usize;
        if seen < 12 {
            level = if seen == 1 { x } else { ALPHA * x + (1.0 - ALPHA) * level };
            first_year.push(x);
        } else if seen == 12 {
            first_year.push(x);
            level = first_year.iter().sum::<f64>() / 12.0;
            trend = 0.0;
            // The 12 months end with this one: month i of them is (index + 1 + i) mod 12.
            for (i, v) in first_year.iter().enumerate() {
                seasonal[(index + 1 + i) % 12] = v / level;
            }
        } else {
            let s = seasonal[index];
            let new_level = ALPHA * (x / s) + (1.0 - ALPHA) * (level + trend);
            trend = BETA * (new_level - level) + (1.0 - BETA) * trend;
            seasonal[index] = GAMMA * (x / new_level) + (1.0 - GAMMA) * s;
            level = new_level;
        }
        let next = next_month(ym);
        // A forecast goes out for each month that had sales (a month without any has no window).
        if months.contains_key(&ym) {
            let units = if seen >= 12 { (level + trend) * seasonal[(next.1 - 1) as usize] } else { level };
            out.push((next, units.max(0.0)));
        }
        if ym == last {
            return out;
        }
        ym = next;
    }
}

pub fn price_cents(price: &str) -> i64 {
    let (whole, fraction) = price.split_once('.').unwrap_or((price, "0"));
    whole.parse::<i64>().unwrap() * 100 + format!("{fraction:0<2}").parse::<i64>().unwrap()
}

/// What the shop's systems did, in order, as the oracle takes it.
pub enum Event<'a> {
    /// A catalog entry.
    Catalog(&'a Product),
    /// A stock level set (`Some`) or removed, keyed `SKU|location`.
    Stock { key: &'a str, units: Option<i64> },
    /// A till line counted, or withdrawn (`reversal`: a correction's old row, a voided line).
    Pos { sale: &'a PosSale, reversal: bool },
    /// A web order's lines counted, or withdrawn (a refund).
    Web { order: &'a WebOrder, reversal: bool },
    /// A record the application cannot read, or one with an unusable field.
    Broken(Breakage),
}

/// The events of a generated run written to Kafka by the shop's own feeds.
pub fn events_of_uploads(uploads: &[retail::generator::Upload]) -> Vec<Event<'_>> {
    uploads
        .iter()
        .filter_map(|upload| match &upload.record {
            Record::Catalog { product, .. } => Some(Event::Catalog(product)),
            Record::Inventory { key, level } => Some(Event::Stock { key, units: level.map(|l| l.units) }),
            Record::Pos { sale, .. } => Some(Event::Pos { sale, reversal: false }),
            Record::Web { order } => Some(Event::Web { order, reversal: false }),
            Record::MalformedPos { .. } => Some(Event::Broken(Breakage::NotAvro)),
            Record::MalformedWeb { breakage, .. } => Some(Event::Broken(*breakage)),
            Record::TryPosV3 => None,
        })
        .collect()
}

/// The expected outputs of `events` for a run of `config`. A withdrawn line undoes what its
/// line counted (nothing, if it was not counted), in the window of its own event time.
pub fn expected(events: &[Event<'_>], config: &GeneratorConfig) -> Expected {
    let mut e = Expected::default();
    let mut by_sku = BTreeMap::new();
    let mut by_web = BTreeMap::new();
    let mut stock: BTreeMap<String, i64> = BTreeMap::new();
    let mut stream_time = i64::MIN;
    let reported: BTreeSet<(i32, u32)> = config.trading_months().iter().map(|m| (m.year(), m.month())).collect();
    for event in events {
        // The valid sales of this event: (sku, units, cents, promo, event time, sign).
        let mut sales: Vec<(String, i64, i64, bool, i64, i64)> = Vec::new();
        match event {
            Event::Catalog(product) => {
                by_sku.insert(product.sku.clone(), (*product).clone());
                by_web.insert(product.web_id.clone(), (*product).clone());
            }
            Event::Stock { key, units } => match units {
                Some(u) => {
                    stock.insert(key.to_string(), *u);
                }
                None => {
                    stock.remove(*key);
                }
            },
            Event::Pos { sale, reversal } => {
                if !by_sku.contains_key(&sale.sku) {
                    if !reversal {
                        *e.dead_letters.entry("unknown-product").or_default() += 1;
                    }
                } else if sale.quantity > 0 && sale.unit_price_cents > 0 {
                    let promo = sale.promo_code.as_deref().is_some_and(|c| !c.is_empty());
                    let sign = if *reversal { -1 } else { 1 };
                    sales.push((
                        sale.sku.clone(),
                        i64::from(sale.quantity),
                        sale.unit_price_cents,
                        promo,
                        sale.sold_at,
                        sign,
                    ));
                }
            }
            Event::Web { order, reversal } => {
                let local = NaiveDateTime::parse_from_str(&order.ordered_at, "%Y-%m-%dT%H:%M:%S").unwrap();
                let at = local.and_utc().timestamp_millis() - 9 * 3_600_000;
                let sign = if *reversal { -1 } else { 1 };
                for line in &order.lines {
                    match by_web.get(&line.product_id) {
                        None if !reversal => *e.dead_letters.entry("unknown-product").or_default() += 1,
                        Some(p) if order.status == "PAID" && line.qty > 0 => {
                            let promo = order.coupon.as_deref().is_some_and(|c| !c.is_empty());
                            sales.push((p.sku.clone(), line.qty, price_cents(&line.price), promo, at, sign));
                        }
                        _ => {}
                    }
                }
            }
            Event::Broken(breakage) => {
                let reason = if *breakage == Breakage::BadDateTime { "invalid-field" } else { "unreadable" };
                *e.dead_letters.entry(reason).or_default() += 1;
            }
        }
        for (sku, units, cents, promo, at, sign) in sales {
            stream_time = stream_time.max(at);
            let month = month_of(at);
            if month_end(month) + GRACE <= stream_time {
                if sign > 0 {
                    e.late_dropped += 1;
                }
                continue;
            }
            if !reported.contains(&month) {
                continue;
            }
            let t = e.monthly.entry((sku, month)).or_default();
            t.units += sign * units;
            t.revenue += sign * units * cents;
            t.lines += sign;
            if promo {
                t.promo += sign * units;
            }
        }
    }
    let mut baselines: BTreeMap<String, BTreeMap<(i32, u32), i64>> = BTreeMap::new();
    for ((sku, month), t) in &e.monthly {
        baselines.entry(sku.clone()).or_default().insert(*month, t.units - t.promo);
    }
    for (sku, months) in &baselines {
        e.forecasts.insert(sku.clone(), forecasts_of(months));
    }
    e.stock = stock.clone();
    for (sku, product) in &by_sku {
        let on_hand: i64 = stock.iter().filter(|(k, _)| k.starts_with(&format!("{sku}|"))).map(|(_, u)| *u).sum();
        let Some(forecast) = e.forecasts.get(sku).and_then(|f| f.last()) else { continue };
        let need = forecast.1 + product.safety_stock as f64 - on_hand as f64;
        let order =
            (need > 0.0).then(|| ((need / product.pack_size as f64).ceil() as i64 * product.pack_size, on_hand));
        e.orders.insert(sku.clone(), order);
        let locations: Vec<(&String, &i64)> = stock.iter().filter(|(k, _)| k.starts_with(&format!("{sku}|"))).collect();
        if !locations.is_empty() {
            let stores = locations
                .iter()
                .filter_map(|(k, u)| k.split_once('|').map(|(_, l)| (l.to_string(), **u)))
                .filter(|(l, u)| l.starts_with("store-") && *u > 0)
                .collect();
            e.web.insert(product.web_id.clone(), (on_hand, stores));
        }
    }
    e
}
