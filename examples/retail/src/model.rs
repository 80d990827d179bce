//! The records of the data hub: what the shop's systems write (POS sales in Avro, web orders in
//! JSON, the product catalog, inventory levels), and what the application writes back.

use std::collections::BTreeMap;

use apache_avro::AvroSchema;
use kstreams::serde::connect::ConnectSchema;
use serde::{Deserialize, Serialize};

use crate::calendar::Month;

// --- what the shop's systems write ---------------------------------------------------------------

/// A till's sale line on `pos-sales`, in Avro through the Schema Registry, keyed by store.
///
/// This is v2 of the schema, the application's reader schema: v1 records (without `promo_code`)
/// decode into it with `promo_code: None`. Amounts are in cents; `sold_at` is the till's clock
/// (milliseconds since the epoch, UTC) and is the record's event time. A negative quantity is a
/// return.
#[derive(AvroSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[avro(namespace = "retail.pos")]
pub struct PosSale {
    /// Receipt number, unique per store.
    pub receipt: String,
    /// The store, as `store-07`.
    pub store: String,
    /// The till within the store.
    pub till: i32,
    /// The product's stock-keeping unit, as `SKU-0003`.
    pub sku: String,
    /// Units sold; negative for a return.
    pub quantity: i32,
    /// Price of one unit, in cents.
    pub unit_price_cents: i64,
    /// When the till rang it up: milliseconds since the epoch, UTC, by the till's clock.
    pub sold_at: i64,
    /// v2: the promotion or loyalty code scanned with the sale, if any.
    #[avro(default = "null")]
    #[serde(default)]
    pub promo_code: Option<String>,
}

/// The POS schema's versions as the tills' software registers them (the generator's writers).
pub mod pos_schemas {
    /// v1: no promotion code.
    pub const V1: &str = r#"{"type":"record","name":"PosSale","namespace":"retail.pos","fields":[
        {"name":"receipt","type":"string"},{"name":"store","type":"string"},{"name":"till","type":"int"},
        {"name":"sku","type":"string"},{"name":"quantity","type":"int"},{"name":"unit_price_cents","type":"long"},
        {"name":"sold_at","type":"long"}]}"#;
    /// v2: adds an optional promotion code, with a default, so v2 readers read v1 records
    /// (BACKWARD compatible).
    pub const V2: &str = r#"{"type":"record","name":"PosSale","namespace":"retail.pos","fields":[
        {"name":"receipt","type":"string"},{"name":"store","type":"string"},{"name":"till","type":"int"},
        {"name":"sku","type":"string"},{"name":"quantity","type":"int"},{"name":"unit_price_cents","type":"long"},
        {"name":"sold_at","type":"long"},{"name":"promo_code","type":["null","string"],"default":null}]}"#;
    /// v3, which the registry refuses: the price becomes a decimal string, which v2 readers cannot
    /// read as a long.
    pub const V3_BREAKING: &str = r#"{"type":"record","name":"PosSale","namespace":"retail.pos","fields":[
        {"name":"receipt","type":"string"},{"name":"store","type":"string"},{"name":"till","type":"int"},
        {"name":"sku","type":"string"},{"name":"quantity","type":"int"},{"name":"unit_price_cents","type":"string"},
        {"name":"sold_at","type":"long"},{"name":"promo_code","type":["null","string"],"default":null}]}"#;
}

/// A web-shop order on `web-sales`, in JSON, keyed by order id.
///
/// `ordered_at` is the shop's local date-time without an offset (the shop runs on Korea Standard
/// Time, UTC+09:00); prices are decimal strings. A `REFUNDED` order is a return.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct WebOrder {
    /// The order id.
    pub order_id: String,
    /// Local date-time, `2025-03-14T19:22:05`.
    pub ordered_at: String,
    /// `PAID` or `REFUNDED`.
    pub status: String,
    /// The order's lines.
    pub lines: Vec<WebLine>,
    /// A coupon code, if one was used.
    #[serde(default)]
    pub coupon: Option<String>,
}

/// One line of a web order.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct WebLine {
    /// The web shop's product id, as `W-1003`.
    pub product_id: String,
    /// Units ordered.
    pub qty: i64,
    /// Price of one unit as a decimal string, `12.99`.
    pub price: String,
}

/// A product on `product-catalog` (compacted): published once under its SKU and once under its
/// web product id, so that either channel can look up the id it uses.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Product {
    /// Stock-keeping unit: the tills' id and the hub's key.
    pub sku: String,
    /// The web shop's id.
    pub web_id: String,
    /// Display name.
    pub name: String,
    /// The supplier ships in packs of this many units.
    pub pack_size: i64,
    /// Units to keep on hand beyond the forecast.
    pub safety_stock: i64,
}

/// Units on hand at one location, on `inventory` (compacted, key `SKU|location`; a tombstone
/// means the location no longer stocks the product).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockLevel {
    /// Units on hand.
    pub units: i64,
}

/// Splits an inventory key `SKU|location`.
///
/// ```
/// assert_eq!(retail::model::split_inventory_key("SKU-0001|store-03"), Some(("SKU-0001", "store-03")));
/// assert_eq!(retail::model::split_inventory_key("SKU-0001"), None);
/// ```
pub fn split_inventory_key(key: &str) -> Option<(&str, &str)> {
    key.split_once('|').filter(|(sku, location)| !sku.is_empty() && !location.is_empty())
}

// --- inside the application ----------------------------------------------------------------------

/// Where a sale was made.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// A store's till.
    Pos,
    /// The web shop.
    Web,
}

/// A sale line from either channel, normalised: keyed by SKU, amounts in cents, event time in UTC.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Sale {
    /// The channel.
    pub channel: Channel,
    /// The product.
    pub sku: String,
    /// Units sold: positive, or negative for a reversal of a line counted before (a sale line
    /// corrected or deleted in the tills' database, see [`cdc`](crate::cdc)).
    pub units: i64,
    /// Revenue in cents.
    pub revenue_cents: i64,
    /// Whether the sale was made under a promotion (a POS promo code, a web coupon).
    pub promo: bool,
    /// Event time, milliseconds since the epoch (UTC).
    pub at: i64,
}

/// A month's sales of one product, as the windowed aggregation keeps them.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct MonthTotals {
    /// Units sold.
    pub units: i64,
    /// Units sold under a promotion.
    pub promo_units: i64,
    /// Revenue in cents.
    pub revenue_cents: i64,
    /// Sale lines counted.
    pub lines: i64,
}

impl MonthTotals {
    /// Adds a sale.
    pub fn with_sale(mut self, sale: &Sale) -> Self {
        self.units += sale.units;
        if sale.promo {
            self.promo_units += sale.units;
        }
        self.revenue_cents += sale.revenue_cents;
        // A negative sale reverses a line counted before (a corrected or deleted row).
        self.lines += if sale.units < 0 { -1 } else { 1 };
        self
    }
}

/// A product's final sales for a month, on `sales-monthly` (key `SKU|YYYY-MM`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct MonthlySales {
    /// The product.
    pub sku: String,
    /// The month.
    pub month: Month,
    /// Units sold.
    pub units: i64,
    /// Units sold under a promotion.
    pub promo_units: i64,
    /// Units sold without one: what the forecast learns from.
    pub baseline_units: i64,
    /// Revenue in cents.
    pub revenue_cents: i64,
    /// Sale lines counted.
    pub lines: i64,
}

/// Next month's forecast for a product, on `sales-forecast` (key SKU).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Forecast {
    /// The product.
    pub sku: String,
    /// Its name.
    pub name: String,
    /// The month forecast.
    pub month: Month,
    /// Forecast units (baseline, without promotions).
    pub units: f64,
    /// How many months of history the forecast rests on.
    pub history_months: u32,
    /// The smoothed level (deseasonalised units per month).
    pub level: f64,
    /// The seasonal index of the forecast month.
    pub seasonal_index: f64,
    /// Units to keep on hand beyond the forecast (from the catalog).
    pub safety_stock: i64,
    /// The supplier's pack size (from the catalog).
    pub pack_size: i64,
}

/// A product's stock across locations.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct Availability {
    /// Units on hand by location (stores and the warehouse).
    pub by_location: BTreeMap<String, i64>,
}

impl Availability {
    /// Units on hand everywhere.
    pub fn total(&self) -> i64 {
        self.by_location.values().sum()
    }
}

/// A location's stock of a product, as regrouped by product.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct LocationStock {
    /// The location.
    pub location: String,
    /// Units there.
    pub units: i64,
}

/// The web shop's view of a product's availability, on `web-inventory` (key: web product id).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct WebAvailability {
    /// The web shop's product id.
    pub product_id: String,
    /// The SKU.
    pub sku: String,
    /// The product's name.
    pub name: String,
    /// Units on hand in stores and the warehouse.
    pub units: i64,
    /// Stores that have it, with their units (for "pick up in store").
    pub stores: BTreeMap<String, i64>,
}

/// A proposed purchase order, on `auto-orders` (key SKU; a tombstone withdraws the proposal).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct AutoOrder {
    /// The product.
    pub sku: String,
    /// Its name.
    pub name: String,
    /// The month the order covers.
    pub month: Month,
    /// The forecast units.
    pub forecast_units: f64,
    /// Safety stock.
    pub safety_stock: i64,
    /// Units on hand across locations.
    pub on_hand: i64,
    /// The supplier's pack size.
    pub pack_size: i64,
    /// Units to order: a whole number of packs.
    pub order_units: i64,
}

/// Why a record went to the dead-letter topic (the `retail.reason` header).
impl Forecast {
    /// The Kafka Connect schema of a forecast, for sinks that need one (the JDBC sink makes its
    /// table's columns from it).
    pub fn connect_schema() -> ConnectSchema {
        ConnectSchema::structure("retail.Forecast")
            .field("sku", ConnectSchema::string())
            .field("name", ConnectSchema::string())
            .field("month", ConnectSchema::string())
            .field("units", ConnectSchema::float64())
            .field("history_months", ConnectSchema::int64())
            .field("level", ConnectSchema::float64())
            .field("seasonal_index", ConnectSchema::float64())
            .field("safety_stock", ConnectSchema::int64())
            .field("pack_size", ConnectSchema::int64())
    }
}

impl AutoOrder {
    /// The Kafka Connect schema of an order proposal (see [`Forecast::connect_schema`]).
    pub fn connect_schema() -> ConnectSchema {
        ConnectSchema::structure("retail.AutoOrder")
            .field("sku", ConnectSchema::string())
            .field("name", ConnectSchema::string())
            .field("month", ConnectSchema::string())
            .field("forecast_units", ConnectSchema::float64())
            .field("safety_stock", ConnectSchema::int64())
            .field("on_hand", ConnectSchema::int64())
            .field("pack_size", ConnectSchema::int64())
            .field("order_units", ConnectSchema::int64())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// The product id is not in the catalog.
    UnknownProduct,
    /// The record parsed but a field is unusable (a date-time, a price).
    InvalidField,
}

impl RejectReason {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::UnknownProduct => "unknown-product",
            RejectReason::InvalidField => "invalid-field",
        }
    }
}

/// A record the application refuses, on its way to the dead-letter topic.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The reason, as in the header.
    pub reason: String,
    /// What was wrong.
    pub detail: String,
    /// The topic it came from.
    pub topic: String,
    /// The record (or the line of it), as JSON.
    pub record: serde_json::Value,
}
