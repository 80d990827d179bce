//! The shop's databases as Kafka Connect brings them in: the rows Debezium captures from
//! PostgreSQL (`examples/retail/hub/sql`), and what each change means for the sales.
//!
//! Debezium writes one change event per row change, keyed by the row's primary key, on a topic
//! per table (`<prefix>pos.public.sale_lines`, …). A sale line's insert (or its snapshot read) is
//! a sale; an update is a correction, and a delete withdraws the line: the application reverses
//! what it counted for the old row and counts the new one, so the monthly sums end up as the
//! tables' final rows say (as long as the month is still open: a correction after the grace
//! period is late, like any late sale).
//!
//! The two systems store things differently, on purpose, as a real shop's would:
//!
//! | | tills (`pos`) | web shop (`webshop`) |
//! | --- | --- | --- |
//! | product | `sku` | `product_code` (the web id) |
//! | units | `qty` | `quantity` |
//! | money | `unit_price_cents bigint` | `price numeric(10,2)` (Debezium: a decimal string) |
//! | time | `sold_at timestamp` (the store's wall clock; Debezium: microseconds) | `created_at timestamptz` (Debezium: ISO-8601 in UTC) |

use chrono::{DateTime, NaiveDateTime};
use kstreams::serde::connect::ChangeEvent;
use serde::{Deserialize, Serialize};

use crate::model::{PosSale, Sale, WebLine};
use crate::normalize::{Checked, WebItem};

/// The Debezium topics the application reads, for databases named `<prefix>pos`, … (Debezium's
/// `topic.prefix` is the database's name: `<topic.prefix>.<schema>.<table>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdcTopics {
    /// `pos.sale_lines`.
    pub sale_lines: String,
    /// `webshop.order_lines`.
    pub order_lines: String,
    /// `inventory.stock`.
    pub stock: String,
}

impl CdcTopics {
    /// The topics of the databases of `prefix`.
    ///
    /// ```
    /// let t = retail::cdc::CdcTopics::for_prefix("shop_");
    /// assert_eq!(t.sale_lines, "shop_pos.public.sale_lines");
    /// assert_eq!(t.stock, "shop_inventory.public.stock");
    /// ```
    pub fn for_prefix(prefix: &str) -> CdcTopics {
        CdcTopics {
            sale_lines: format!("{prefix}pos.public.sale_lines"),
            order_lines: format!("{prefix}webshop.public.order_lines"),
            stock: format!("{prefix}inventory.public.stock"),
        }
    }
}

/// A row of `pos.sale_lines`, as Debezium writes it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct SaleLineRow {
    /// The store, as `store-07`.
    pub store_code: String,
    /// The till.
    pub till_no: i32,
    /// The receipt.
    pub receipt_no: String,
    /// The line on the receipt.
    pub line_no: i32,
    /// The product.
    pub sku: String,
    /// Units (negative: a return).
    pub qty: i32,
    /// Price of one unit, in cents.
    pub unit_price_cents: i64,
    /// The promotion code scanned, if any.
    #[serde(default)]
    pub promo_code: Option<String>,
    /// The store's wall clock when the till rang it up, in microseconds since the epoch as if it
    /// were UTC (a `timestamp` without time zone, as Debezium writes it).
    pub sold_at: i64,
}

impl SaleLineRow {
    /// The line as the tills' Kafka feed would carry it, its time in UTC for a shop running
    /// `utc_offset_minutes` ahead of UTC.
    pub fn to_pos_sale(&self, utc_offset_minutes: i32) -> PosSale {
        PosSale {
            receipt: self.receipt_no.clone(),
            store: self.store_code.clone(),
            till: self.till_no,
            sku: self.sku.clone(),
            quantity: self.qty,
            unit_price_cents: self.unit_price_cents,
            sold_at: local_micros_to_utc_millis(self.sold_at, utc_offset_minutes),
            promo_code: self.promo_code.clone(),
        }
    }
}

/// A row of `webshop.order_lines`, as Debezium writes it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct OrderLineRow {
    /// The order.
    pub order_id: String,
    /// The line within it.
    pub line_no: i32,
    /// The web shop's product id.
    pub product_code: String,
    /// Units.
    pub quantity: i32,
    /// Price of one unit, a decimal amount (`12.99`; `decimal.handling.mode=string`).
    pub price: String,
    /// A discount code, if one applied.
    #[serde(default)]
    pub discount_code: Option<String>,
    /// When the line was ordered, ISO-8601 in UTC (`2024-03-14T10:22:05Z`).
    pub created_at: String,
}

impl OrderLineRow {
    /// The line as one item of a web order in the web shop's Kafka feed (its local date-time
    /// for a shop running `utc_offset_minutes` ahead of UTC; paid: refunds delete the lines).
    pub fn to_web_item(&self, utc_offset_minutes: i32) -> WebItem {
        let ordered_at = iso_millis(&self.created_at)
            .and_then(|ms| DateTime::from_timestamp_millis(ms + i64::from(utc_offset_minutes) * 60_000))
            .map(|local| local.naive_utc().format("%Y-%m-%dT%H:%M:%S").to_string())
            // An unreadable time stays as it is: the web check sends the line to the dead letters.
            .unwrap_or_else(|| self.created_at.clone());
        WebItem {
            order_id: self.order_id.clone(),
            ordered_at,
            status: "PAID".into(),
            coupon: self.discount_code.clone(),
            line: WebLine {
                product_id: self.product_code.clone(),
                qty: i64::from(self.quantity),
                price: self.price.clone(),
            },
        }
    }

    /// When the line was ordered, milliseconds since the epoch.
    pub fn event_time(&self) -> Option<i64> {
        iso_millis(&self.created_at)
    }
}

/// The key of `inventory.stock`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StockKey {
    /// The product's SKU.
    pub product_id: String,
    /// The store or warehouse.
    pub location: String,
}

/// A row of `inventory.stock`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct StockRow {
    /// The product's SKU.
    pub product_id: String,
    /// The store or warehouse.
    pub location: String,
    /// Units on hand.
    pub on_hand: i32,
}

/// A change to a sale line: `reversal` undoes what was counted for `row` before (an update's old
/// row, a deleted row).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct LineChange<T> {
    /// Whether this undoes the row.
    pub reversal: bool,
    /// The row.
    pub row: T,
}

/// What a change event means for the sales, in order: the old row reversed (updates, deletes),
/// then the new row (inserts, snapshot reads, updates). A tombstone means nothing.
///
/// ```
/// use kstreams::serde::connect::{ChangeEvent, Op};
/// use retail::cdc::line_changes;
/// let update = ChangeEvent { before: Some(1), after: Some(2), op: Op::Update, ts_ms: None, source: None };
/// let changes: Vec<(bool, i32)> = line_changes(Some(update)).into_iter().map(|c| (c.reversal, c.row)).collect();
/// assert_eq!(changes, vec![(true, 1), (false, 2)]);
/// ```
pub fn line_changes<T>(event: Option<ChangeEvent<T>>) -> Vec<LineChange<T>> {
    let Some(event) = event else { return Vec::new() };
    let mut out = Vec::with_capacity(2);
    if let Some(before) = event.before {
        out.push(LineChange { reversal: true, row: before });
    }
    if let Some(after) = event.after {
        out.push(LineChange { reversal: false, row: after });
    }
    out
}

/// The check of a reversed line: the sale counted for it, negated. A reversed line that was not
/// counted (a return, a voided line, or one the dead letters took when it came) has nothing to
/// undo.
pub fn reverse(checked: Checked) -> Checked {
    match checked {
        Checked::Sale(sale) => Checked::Sale(Sale { units: -sale.units, revenue_cents: -sale.revenue_cents, ..sale }),
        _ => Checked::NotASale,
    }
}

/// The event time of a change to a sale line: the row's (the new one's, or the old one's for a
/// delete).
pub fn changed_row<T>(event: &Option<ChangeEvent<T>>) -> Option<&T> {
    event.as_ref().and_then(|e| e.after.as_ref().or(e.before.as_ref()))
}

/// UTC milliseconds of a wall-clock time in microseconds (as Debezium writes a `timestamp`
/// without time zone) in a zone `utc_offset_minutes` ahead of UTC.
///
/// ```
/// // 09:00 in Seoul (UTC+9) on 2025-01-01 is midnight UTC.
/// assert_eq!(retail::cdc::local_micros_to_utc_millis(1_735_722_000_000_000, 540), 1_735_689_600_000);
/// ```
pub fn local_micros_to_utc_millis(micros: i64, utc_offset_minutes: i32) -> i64 {
    micros.div_euclid(1000) - i64::from(utc_offset_minutes) * 60_000
}

/// Milliseconds of an ISO-8601 time with its offset (`2024-03-14T10:22:05.123456Z`).
pub fn iso_millis(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
}

/// Microseconds of a local wall-clock time as Debezium writes a `timestamp` (for tests and the
/// generator: the inverse of what the application reads).
pub fn wall_clock_micros(local: NaiveDateTime) -> i64 {
    local.and_utc().timestamp_micros()
}
