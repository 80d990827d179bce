//! From each channel's records to one [`Sale`]: look the product up, leave out returns and lines
//! that are not sales, and refuse what cannot be used (to the dead-letter topic).

use chrono::NaiveDateTime;
use serde_json::json;

use crate::model::{Channel, PosSale, Product, RejectReason, Rejected, Sale, WebLine, WebOrder};

/// What a sale line comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// A sale, to count.
    Sale(Sale),
    /// A return: left out of the sales.
    Return,
    /// A line that is not a sale (no units, no price): left out.
    NotASale,
    /// Unusable: to the dead-letter topic.
    Rejected(Rejected),
}

impl Checked {
    /// The sale, if it is one.
    pub fn sale(self) -> Option<Sale> {
        match self {
            Checked::Sale(sale) => Some(sale),
            _ => None,
        }
    }
}

/// Checks a POS line against the catalog entry found for its SKU.
///
/// ```
/// use retail::model::{PosSale, Product};
/// use retail::normalize::{check_pos, Checked};
/// let line = PosSale { receipt: "r1".into(), store: "store-01".into(), till: 1, sku: "SKU-0001".into(),
///     quantity: 2, unit_price_cents: 450, sold_at: 1_000, promo_code: None };
/// let product = Product { sku: "SKU-0001".into(), web_id: "W-1001".into(), name: "Umbrella".into(),
///     pack_size: 12, safety_stock: 10 };
/// let Checked::Sale(sale) = check_pos("pos-sales", &line, Some(&product)) else { panic!() };
/// assert_eq!((sale.units, sale.revenue_cents, sale.at), (2, 900, 1_000));
/// assert!(matches!(check_pos("pos-sales", &line, None), Checked::Rejected(_)));
/// ```
pub fn check_pos(topic: &str, line: &PosSale, product: Option<&Product>) -> Checked {
    if product.is_none_or(|p| p.sku != line.sku) {
        return reject(
            RejectReason::UnknownProduct,
            format!("SKU `{}` is not in the product catalog", line.sku),
            topic,
            json!(line),
        );
    }
    if line.quantity < 0 {
        return Checked::Return;
    }
    if line.quantity == 0 || line.unit_price_cents <= 0 {
        return Checked::NotASale;
    }
    Checked::Sale(Sale {
        channel: Channel::Pos,
        sku: line.sku.clone(),
        units: i64::from(line.quantity),
        revenue_cents: i64::from(line.quantity) * line.unit_price_cents,
        promo: line.promo_code.as_deref().is_some_and(|c| !c.is_empty()),
        at: line.sold_at,
    })
}

/// One line of a web order, with the order's fields it needs.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct WebItem {
    /// The order id.
    pub order_id: String,
    /// The order's local date-time.
    pub ordered_at: String,
    /// The order's status.
    pub status: String,
    /// The order's coupon.
    pub coupon: Option<String>,
    /// The line.
    pub line: WebLine,
}

/// An order's lines, one item each.
pub fn web_items(order: WebOrder) -> Vec<WebItem> {
    let WebOrder { order_id, ordered_at, status, lines, coupon } = order;
    lines
        .into_iter()
        .map(|line| WebItem {
            order_id: order_id.clone(),
            ordered_at: ordered_at.clone(),
            status: status.clone(),
            coupon: coupon.clone(),
            line,
        })
        .collect()
}

/// The UTC event time of a web order's local date-time (`2025-03-14T19:22:05`) in a shop running
/// `utc_offset_minutes` ahead of UTC.
///
/// ```
/// // 09:00 in Seoul (UTC+9) is midnight UTC.
/// assert_eq!(retail::normalize::web_event_time("2025-01-01T09:00:00", 540), Some(1_735_689_600_000));
/// assert_eq!(retail::normalize::web_event_time("01/01/2025 9am", 540), None);
/// ```
pub fn web_event_time(ordered_at: &str, utc_offset_minutes: i32) -> Option<i64> {
    let local = NaiveDateTime::parse_from_str(ordered_at, "%Y-%m-%dT%H:%M:%S").ok()?;
    Some(local.and_utc().timestamp_millis() - i64::from(utc_offset_minutes) * 60_000)
}

/// Cents of a decimal price with at most two decimals (`12.99` → 1299, `7` → 700).
///
/// ```
/// use retail::normalize::price_cents;
/// assert_eq!(price_cents("12.99"), Some(1299));
/// assert_eq!(price_cents("12.9"), Some(1290));
/// assert_eq!(price_cents("7"), Some(700));
/// assert_eq!(price_cents("1.999"), None);
/// assert_eq!(price_cents("abc"), None);
/// ```
pub fn price_cents(price: &str) -> Option<i64> {
    let price = price.trim();
    let (whole, fraction) = price.split_once('.').unwrap_or((price, ""));
    if whole.is_empty() || fraction.len() > 2 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let fraction: i64 = if fraction.is_empty() { 0 } else { format!("{fraction:0<2}").parse().ok()? };
    whole.checked_mul(100)?.checked_add(if whole < 0 { -fraction } else { fraction })
}

/// Checks a web order line against the catalog entry found for its product id.
pub fn check_web(topic: &str, item: &WebItem, product: Option<&Product>, utc_offset_minutes: i32) -> Checked {
    let Some(product) = product.filter(|p| p.web_id == item.line.product_id) else {
        return reject(
            RejectReason::UnknownProduct,
            format!("web product `{}` is not in the product catalog", item.line.product_id),
            topic,
            json!(item),
        );
    };
    let Some(at) = web_event_time(&item.ordered_at, utc_offset_minutes) else {
        return reject(
            RejectReason::InvalidField,
            format!("ordered_at `{}` is not a local date-time like 2025-03-14T19:22:05", item.ordered_at),
            topic,
            json!(item),
        );
    };
    let Some(price) = price_cents(&item.line.price) else {
        return reject(
            RejectReason::InvalidField,
            format!("price `{}` is not a decimal amount like 12.99", item.line.price),
            topic,
            json!(item),
        );
    };
    match item.status.as_str() {
        "PAID" => {}
        "REFUNDED" => return Checked::Return,
        other => {
            return reject(
                RejectReason::InvalidField,
                format!("status `{other}` is neither PAID nor REFUNDED"),
                topic,
                json!(item),
            )
        }
    }
    if item.line.qty <= 0 || price <= 0 {
        return Checked::NotASale;
    }
    Checked::Sale(Sale {
        channel: Channel::Web,
        sku: product.sku.clone(),
        units: item.line.qty,
        revenue_cents: item.line.qty * price,
        promo: item.coupon.as_deref().is_some_and(|c| !c.is_empty()),
        at,
    })
}

fn reject(reason: RejectReason, detail: String, topic: &str, record: serde_json::Value) -> Checked {
    Checked::Rejected(Rejected { reason: reason.as_str().into(), detail, topic: topic.into(), record })
}
