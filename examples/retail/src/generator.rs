//! A seeded generator of the shop's data: what the tills, the web shop, the catalog and the stock
//! system would write over months of trading.
//!
//! [`plan`] lays out every record in the order the systems upload it (deterministic for a seed):
//! products with their own seasons (coats in winter, fans in summer, gift cards at Christmas),
//! a growing product, a promotion month, POS returns and voided lines, web refunds, till batches
//! uploaded late (within the grace period, and beyond it), malformed records, sales of products the
//! catalog does not know, a product that is never stocked, and the switch of the tills' schema
//! from v1 to v2 partway through, followed by an attempt at an incompatible v3. [`Producer`]
//! writes a plan to Kafka.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::calendar::{Month, DAY_MS};
use crate::model::{PosSale, Product, StockLevel, WebLine, WebOrder};

/// A product the generator sells: catalog entry, demand and season.
#[derive(Debug, Clone)]
pub struct ProductSpec {
    /// The catalog entry.
    pub product: Product,
    /// Price in cents.
    pub price_cents: i64,
    /// Mean units per store and day in an average month.
    pub daily_units: f64,
    /// Demand multiplier per month of the year, January first.
    pub season: [f64; 12],
    /// Growth per month (0.01 = +1 % a month).
    pub growth: f64,
    /// Whether any location stocks it.
    pub stocked: bool,
}

fn product(sku: u32, name: &str, pack_size: i64, safety_stock: i64) -> Product {
    Product {
        sku: format!("SKU-{sku:04}"),
        web_id: format!("W-{}", 1000 + sku),
        name: name.into(),
        pack_size,
        safety_stock,
    }
}

/// The shop's ten products.
pub fn default_products() -> Vec<ProductSpec> {
    let flat = [1.0; 12];
    vec![
        ProductSpec {
            product: product(1, "Umbrella", 24, 20),
            price_cents: 1_290,
            daily_units: 2.0,
            season: [0.5, 0.5, 0.8, 1.0, 1.0, 1.6, 2.6, 2.4, 1.2, 0.8, 0.6, 0.5],
            growth: 0.0,
            stocked: true,
        },
        ProductSpec {
            product: product(2, "Winter coat", 6, 8),
            price_cents: 14_900,
            daily_units: 0.8,
            season: [2.4, 1.6, 0.8, 0.3, 0.1, 0.1, 0.1, 0.1, 0.4, 1.2, 2.2, 2.8],
            growth: 0.0,
            stocked: true,
        },
        ProductSpec {
            product: product(3, "Sunscreen", 36, 30),
            price_cents: 1_850,
            daily_units: 1.6,
            season: [0.3, 0.4, 0.7, 1.0, 1.5, 2.0, 2.3, 2.1, 1.1, 0.6, 0.4, 0.3],
            growth: 0.0,
            stocked: true,
        },
        ProductSpec {
            product: product(4, "School backpack", 10, 6),
            price_cents: 5_900,
            daily_units: 0.6,
            season: [0.6, 2.4, 2.0, 0.6, 0.4, 0.4, 0.6, 2.2, 1.4, 0.4, 0.4, 0.6],
            growth: 0.0,
            stocked: true,
        },
        ProductSpec {
            product: product(5, "Green tea 500 ml", 48, 60),
            price_cents: 250,
            daily_units: 4.0,
            season: [0.8, 0.8, 0.9, 1.0, 1.1, 1.3, 1.4, 1.4, 1.1, 0.9, 0.8, 0.8],
            growth: 0.0,
            stocked: true,
        },
        ProductSpec {
            product: product(6, "Hand warmer", 50, 25),
            price_cents: 390,
            daily_units: 1.2,
            season: [2.6, 2.0, 0.8, 0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.8, 2.0, 2.8],
            growth: 0.0,
            stocked: true,
        },
        ProductSpec {
            product: product(7, "Electric fan", 4, 3),
            price_cents: 4_500,
            daily_units: 0.4,
            season: [0.1, 0.1, 0.2, 0.5, 1.2, 2.6, 3.0, 2.6, 0.9, 0.3, 0.1, 0.1],
            growth: 0.0,
            stocked: true,
        },
        ProductSpec {
            product: product(8, "Notebook A5", 40, 20),
            price_cents: 320,
            daily_units: 2.0,
            season: flat,
            growth: 0.02,
            stocked: true,
        },
        ProductSpec {
            product: product(9, "Gift card", 1, 2),
            price_cents: 5_000,
            daily_units: 0.3,
            season: [0.6, 0.8, 0.8, 0.8, 1.0, 0.8, 0.8, 0.8, 0.8, 0.9, 1.2, 3.4],
            growth: 0.0,
            stocked: false,
        },
        ProductSpec {
            product: product(10, "Rice cooker", 2, 2),
            price_cents: 8_900,
            daily_units: 0.25,
            season: flat,
            growth: 0.0,
            stocked: true,
        },
    ]
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    /// The seed: the same seed gives the same records.
    pub seed: u64,
    /// The first month of trading.
    pub start: Month,
    /// Months of trading to cover.
    pub months: u32,
    /// Stores (`store-01` …).
    pub stores: u32,
    /// The products sold.
    pub products: Vec<ProductSpec>,
    /// Scales every product's demand (tests use small values for small runs).
    pub demand_scale: f64,
    /// Web orders per day.
    pub web_orders_per_day: f64,
    /// The month from which tills write v2 of the POS schema (with the promotion code).
    pub pos_v2_from: Month,
    /// The month the tills' vendor tries an incompatible v3 (the registry refuses it).
    pub pos_v3_attempt: Month,
    /// The promoted product and month (demand × `promotion_uplift`, the extra units sold with a
    /// promotion code or coupon).
    pub promotion: Option<(String, Month)>,
    /// Demand multiplier in the promotion month.
    pub promotion_uplift: f64,
    /// How long the application waits for late records (its grace), to place late uploads within
    /// and beyond it.
    pub grace_ms: i64,
    /// Share of records that are malformed (unparseable bytes or fields).
    pub malformed_share: f64,
    /// Share of sale lines naming a product the catalog does not know.
    pub unknown_product_share: f64,
    /// Whether trading goes on into the next month, past the grace period, so that the last
    /// month closes (a bounded run); off for the chunks of a live run, which follow each other.
    pub close_last_month: bool,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        let start = Month::new(2024, 1);
        GeneratorConfig {
            seed: 42,
            start,
            months: 24,
            stores: 6,
            products: default_products(),
            demand_scale: 1.0,
            web_orders_per_day: 12.0,
            pos_v2_from: Month::new(2024, 11),
            pos_v3_attempt: Month::new(2025, 3),
            promotion: Some(("SKU-0005".into(), Month::new(2025, 5))),
            promotion_uplift: 2.5,
            grace_ms: 3 * DAY_MS,
            malformed_share: 0.002,
            unknown_product_share: 0.002,
            close_last_month: true,
        }
    }
}

impl GeneratorConfig {
    /// The month after the last month of trading: trading goes on into it for a few days, so that
    /// the last month closes, but it is not reported.
    pub fn end(&self) -> Month {
        Month::new(self.start.year(), self.start.month() + self.months)
    }

    /// One more month of trading after this run's (live mode): `month`, with a seed of its own, not
    /// closing it (the next month follows).
    pub fn following_month(&self, month: Month) -> GeneratorConfig {
        let offset = self.start.months_until(month).unsigned_abs();
        GeneratorConfig {
            seed: self.seed.wrapping_add(offset),
            start: month,
            months: 1,
            close_last_month: false,
            ..self.clone()
        }
    }

    /// The months of trading, in order.
    pub fn trading_months(&self) -> Vec<Month> {
        (0..self.months).map(|i| Month::new(self.start.year(), self.start.month() + i)).collect()
    }
}

/// The POS schema version a record is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PosVersion {
    /// Without the promotion code.
    V1,
    /// With it.
    V2,
}

/// How a record is broken, for malformed records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breakage {
    /// Bytes that are not in the Schema Registry wire format.
    NotAvro,
    /// The wire-format prefix of a real schema id, with a cut-off Avro body.
    TruncatedAvro,
    /// JSON cut off in the middle.
    BrokenJson,
    /// Valid JSON whose `ordered_at` is not a date-time.
    BadDateTime,
}

/// One record, as a system uploads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A catalog entry under one of its ids.
    Catalog {
        /// The SKU or the web id.
        key: String,
        /// The product.
        product: Product,
    },
    /// A stock level (`None`: the location stops stocking the product).
    Inventory {
        /// `SKU|location`.
        key: String,
        /// The level.
        level: Option<StockLevel>,
    },
    /// A till's sale line (or return, or voided line).
    Pos {
        /// The sale.
        sale: PosSale,
        /// The schema version written.
        version: PosVersion,
    },
    /// A web order.
    Web {
        /// The order.
        order: WebOrder,
    },
    /// A broken POS record.
    MalformedPos {
        /// The store (the key).
        store: String,
        /// How it is broken.
        breakage: Breakage,
    },
    /// A broken web record.
    MalformedWeb {
        /// The order id (the key).
        order_id: String,
        /// How it is broken.
        breakage: Breakage,
    },
    /// The tills' vendor tries to register v3 of the POS schema.
    TryPosV3,
}

/// A record and when it is uploaded (the Kafka timestamp, and the order of the plan).
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    /// Upload time, milliseconds since the epoch.
    pub at: i64,
    /// The record.
    pub record: Record,
    /// Set on till sale lines uploaded late, with how late (ms after the month's end).
    pub late_by_ms: Option<i64>,
}

/// What a plan holds, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// POS records written with v1 and v2.
    pub pos_v1: u64,
    /// POS records written with v2.
    pub pos_v2: u64,
    /// Web orders (refunds included).
    pub web_orders: u64,
    /// POS returns and web refunds.
    pub returns: u64,
    /// Voided POS lines (quantity 0).
    pub voided: u64,
    /// Sale lines of products the catalog does not know.
    pub unknown_products: u64,
    /// Malformed records.
    pub malformed: u64,
    /// Till lines uploaded late but within the grace period.
    pub late_within_grace: u64,
    /// Till lines uploaded after the grace period.
    pub late_beyond_grace: u64,
    /// Inventory updates.
    pub inventory_updates: u64,
}

impl Summary {
    /// Records in all.
    pub fn total(&self) -> u64 {
        self.pos_v1 + self.pos_v2 + self.web_orders + self.malformed + self.inventory_updates
    }
}

/// A generated run: every upload in order, and a summary.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The uploads, in upload order (the catalog first).
    pub uploads: Vec<Upload>,
    /// Counts by kind.
    pub summary: Summary,
}

impl Plan {
    /// The catalog's records, which come first: the shop has its catalog before it trades.
    pub fn catalog(&self) -> &[Upload] {
        &self.uploads[..self.catalog_len()]
    }

    /// Everything after the catalog.
    pub fn trading(&self) -> &[Upload] {
        &self.uploads[self.catalog_len()..]
    }

    fn catalog_len(&self) -> usize {
        self.uploads.iter().take_while(|u| matches!(u.record, Record::Catalog { .. })).count()
    }
}

/// Lays out a run.
pub fn plan(config: &GeneratorConfig) -> Plan {
    let mut gen = Gen {
        config,
        rng: StdRng::seed_from_u64(config.seed),
        uploads: Vec::new(),
        summary: Summary::default(),
        receipts: 0,
    };
    gen.catalog();
    let first_day = config.start.start_millis();
    // Trading goes on into the month after the last one, past its grace, so the last month closes.
    let tail = if config.close_last_month { config.grace_ms + 2 * DAY_MS } else { 0 };
    let last_day = config.end().start_millis() + tail;
    let mut day = first_day;
    while day < last_day {
        if Month::from_millis(day).start_millis() == day {
            gen.stock_count(day);
        }
        gen.pos_day(day);
        gen.web_day(day);
        day += DAY_MS;
    }
    if config.trading_months().contains(&config.pos_v3_attempt) {
        gen.uploads.push(Upload {
            at: config.pos_v3_attempt.start_millis() + 1,
            record: Record::TryPosV3,
            late_by_ms: None,
        });
    }
    // The order of upload; records uploaded at the same moment keep the order they were made in.
    gen.uploads.sort_by_key(|u| u.at);
    Plan { uploads: gen.uploads, summary: gen.summary }
}

struct Gen<'a> {
    config: &'a GeneratorConfig,
    rng: StdRng,
    uploads: Vec<Upload>,
    summary: Summary,
    receipts: u64,
}

impl Gen<'_> {
    fn push(&mut self, at: i64, record: Record) {
        self.uploads.push(Upload { at, record, late_by_ms: None });
    }

    fn catalog(&mut self) {
        let at = self.config.start.start_millis() - DAY_MS;
        for spec in &self.config.products {
            let p = spec.product.clone();
            self.uploads.push(Upload {
                at,
                record: Record::Catalog { key: p.sku.clone(), product: p.clone() },
                late_by_ms: None,
            });
            self.uploads.push(Upload {
                at,
                record: Record::Catalog { key: p.web_id.clone(), product: p },
                late_by_ms: None,
            });
        }
    }

    fn locations(&self) -> Vec<String> {
        let mut locations: Vec<String> = (1..=self.config.stores).map(|s| format!("store-{s:02}")).collect();
        locations.push("warehouse".into());
        locations
    }

    /// The monthly stock count: every stocked product at every location; now and then a store
    /// stops stocking a product (a tombstone).
    fn stock_count(&mut self, day: i64) {
        for spec in self.config.products.clone() {
            if !spec.stocked {
                continue;
            }
            let monthly = spec.daily_units * self.config.demand_scale * 30.0;
            for location in self.locations() {
                let key = format!("{}|{location}", spec.product.sku);
                let level = if location != "warehouse" && self.rng.random_bool(0.03) {
                    None
                } else {
                    let base = if location == "warehouse" { monthly * 1.5 } else { monthly * 0.4 };
                    Some(StockLevel { units: (base * self.rng.random_range(0.2..1.2)).round() as i64 })
                };
                self.summary.inventory_updates += 1;
                self.push(day, Record::Inventory { key, level });
            }
        }
    }

    fn demand(&self, spec: &ProductSpec, day: i64) -> f64 {
        let month = Month::from_millis(day);
        let age = self.config.start.months_until(month) as f64;
        let mut units = spec.daily_units
            * self.config.demand_scale
            * spec.season[month.index_in_year()]
            * (1.0 + spec.growth).powf(age);
        if self.promoted(&spec.product.sku, month) {
            units *= self.config.promotion_uplift;
        }
        units
    }

    fn promoted(&self, sku: &str, month: Month) -> bool {
        self.config.promotion.as_ref().is_some_and(|(p, m)| p == sku && *m == month)
    }

    /// Poisson-distributed units with mean `mean`.
    fn units(&mut self, mean: f64) -> i64 {
        if mean <= 0.0 {
            return 0;
        }
        if mean > 30.0 {
            return (mean + mean.sqrt() * (self.rng.random::<f64>() * 2.0 - 1.0) * 1.7).round().max(0.0) as i64;
        }
        let limit = (-mean).exp();
        let (mut k, mut p) = (0, 1.0);
        loop {
            p *= self.rng.random::<f64>();
            if p <= limit {
                return k;
            }
            k += 1;
        }
    }

    fn pos_day(&mut self, day: i64) {
        let month = Month::from_millis(day);
        let version = if month >= self.config.pos_v2_from { PosVersion::V2 } else { PosVersion::V1 };
        let month_end = month.end_millis();
        // Store 2 uploads the last two days of some months late: within the grace period in the
        // 3rd, 7th, 15th… month of trading, beyond it in the 5th, 11th, 19th….
        let index = self.config.start.months_until(month);
        let last_two_days = day >= month_end - 2 * DAY_MS;
        let late_within = last_two_days && matches!(index % 8, 2 | 6);
        let late_beyond = last_two_days && matches!(index % 6, 4);
        for store in 1..=self.config.stores {
            let store_name = format!("store-{store:02}");
            let store_factor = 0.7 + 0.1 * f64::from(store);
            for spec in self.config.products.clone() {
                let promoted = self.promoted(&spec.product.sku, month);
                let mean = self.demand(&spec, day) * store_factor;
                let total = self.units(mean);
                if total == 0 {
                    continue;
                }
                // In the promotion month the extra units are sold with the promotion code.
                let promo_units = if promoted && version == PosVersion::V2 {
                    ((total as f64) * (1.0 - 1.0 / self.config.promotion_uplift)).round() as i64
                } else {
                    0
                };
                let sold_at = day + self.rng.random_range(9 * 3_600_000..21 * 3_600_000);
                let mut lines = vec![(total - promo_units, None)];
                if promo_units > 0 {
                    lines.push((promo_units, Some("SPRING-SALE".to_string())));
                }
                for (quantity, promo_code) in lines {
                    if quantity == 0 {
                        continue;
                    }
                    let sale = self.sale(&store_name, &spec, quantity, sold_at, promo_code);
                    let (at, late_by) = if store == 2 && late_within {
                        self.summary.late_within_grace += 1;
                        // Uploaded well inside the grace period.
                        let at = month_end + self.config.grace_ms / 3;
                        (at, Some(at - month_end))
                    } else if store == 2 && late_beyond {
                        self.summary.late_beyond_grace += 1;
                        let at = month_end + self.config.grace_ms + 9 * DAY_MS;
                        (at, Some(at - month_end))
                    } else {
                        (sold_at + self.rng.random_range(0..60_000), None)
                    };
                    self.pos(at, sale.clone(), version, late_by);
                    // Now and then the customer brings it back a few days later.
                    if self.rng.random_bool(0.02) {
                        let mut back = sale;
                        back.receipt = self.receipt(&store_name, day);
                        back.quantity = -1;
                        back.sold_at += self.rng.random_range(1..6) * DAY_MS;
                        self.summary.returns += 1;
                        self.pos(back.sold_at, back, version, None);
                    }
                }
            }
            // A voided line, a product nobody knows, a broken record: rare.
            if self.rng.random_bool(0.01) {
                let spec = self.config.products[0].clone();
                let mut voided = self.sale(&store_name, &spec, 0, day + 12 * 3_600_000, None);
                voided.quantity = 0;
                self.summary.voided += 1;
                self.pos(voided.sold_at, voided, version, None);
            }
            if self.rng.random_bool(self.config.unknown_product_share * self.config.products.len() as f64) {
                let spec = self.config.products[0].clone();
                let mut unknown = self.sale(&store_name, &spec, 1, day + 13 * 3_600_000, None);
                unknown.sku = format!("SKU-9{:03}", self.rng.random_range(0..1000));
                self.summary.unknown_products += 1;
                self.pos(unknown.sold_at, unknown, version, None);
            }
            if self.rng.random_bool(self.config.malformed_share * self.config.products.len() as f64) {
                let breakage = if self.rng.random_bool(0.5) { Breakage::NotAvro } else { Breakage::TruncatedAvro };
                self.summary.malformed += 1;
                self.push(day + 14 * 3_600_000, Record::MalformedPos { store: store_name.clone(), breakage });
            }
        }
    }

    fn receipt(&mut self, store: &str, day: i64) -> String {
        self.receipts += 1;
        format!("{store}-{}-{:06}", day / DAY_MS, self.receipts)
    }

    fn sale(
        &mut self,
        store: &str,
        spec: &ProductSpec,
        quantity: i64,
        sold_at: i64,
        promo_code: Option<String>,
    ) -> PosSale {
        PosSale {
            receipt: self.receipt(store, sold_at - sold_at.rem_euclid(DAY_MS)),
            store: store.to_string(),
            till: self.rng.random_range(1..5),
            sku: spec.product.sku.clone(),
            quantity: quantity.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
            unit_price_cents: spec.price_cents,
            sold_at,
            promo_code,
        }
    }

    fn pos(&mut self, at: i64, mut sale: PosSale, version: PosVersion, late_by_ms: Option<i64>) {
        match version {
            PosVersion::V1 => {
                sale.promo_code = None;
                self.summary.pos_v1 += 1;
            }
            PosVersion::V2 => self.summary.pos_v2 += 1,
        }
        self.uploads.push(Upload { at, record: Record::Pos { sale, version }, late_by_ms });
    }

    fn web_day(&mut self, day: i64) {
        let month = Month::from_millis(day);
        let orders = self.units(self.config.web_orders_per_day * self.config.demand_scale.sqrt());
        // Demand across products, for picking order lines.
        let weights: Vec<f64> = self.config.products.clone().iter().map(|s| self.demand(s, day)).collect();
        let total_weight: f64 = weights.iter().sum();
        for n in 0..orders {
            let order_id = format!("W-{}-{n:04}", day / DAY_MS);
            // Local time in Seoul: the order's UTC time is 9 hours earlier.
            let utc = day + self.rng.random_range(0..DAY_MS);
            let ordered_at = chrono::DateTime::from_timestamp_millis(utc + 9 * 3_600_000)
                .map(|t| t.naive_utc().format("%Y-%m-%dT%H:%M:%S").to_string())
                .unwrap_or_default();
            if self.rng.random_bool(self.config.malformed_share * 2.0) {
                let breakage = if self.rng.random_bool(0.5) { Breakage::BrokenJson } else { Breakage::BadDateTime };
                self.summary.malformed += 1;
                self.push(utc, Record::MalformedWeb { order_id, breakage });
                continue;
            }
            let mut lines = Vec::new();
            let mut promoted = false;
            for _ in 0..self.rng.random_range(1..4) {
                let mut pick = self.rng.random::<f64>() * total_weight;
                let mut chosen = self.config.products.len() - 1;
                for (i, w) in weights.iter().enumerate() {
                    if pick < *w {
                        chosen = i;
                        break;
                    }
                    pick -= w;
                }
                let spec = &self.config.products[chosen];
                promoted |= self.promoted(&spec.product.sku, month);
                let cents = spec.price_cents;
                lines.push(WebLine {
                    product_id: spec.product.web_id.clone(),
                    qty: self.rng.random_range(1..3),
                    price: format!("{}.{:02}", cents / 100, cents % 100),
                });
            }
            if self.rng.random_bool(self.config.unknown_product_share * 3.0) {
                self.summary.unknown_products += 1;
                lines.push(WebLine {
                    product_id: format!("W-9{:03}", self.rng.random_range(0..1000)),
                    qty: 1,
                    price: "9.99".into(),
                });
            }
            // Orders with a promoted product in the promotion month use the coupon.
            let coupon = promoted.then(|| "SPRING-SALE".to_string());
            let order = WebOrder { order_id, ordered_at, status: "PAID".into(), lines, coupon };
            self.summary.web_orders += 1;
            self.push(utc, Record::Web { order: order.clone() });
            if self.rng.random_bool(0.03) {
                self.summary.web_orders += 1;
                self.summary.returns += order.lines.len() as u64;
                let refund = WebOrder { status: "REFUNDED".into(), ..order };
                let at = utc + self.rng.random_range(1..10) * DAY_MS;
                self.push(at, Record::Web { order: refund });
            }
        }
    }
}

/// Product-months with at least one sale line in the trading months, per SKU: what the
/// application will report (a progress target, not an expected value).
pub fn months_with_sales(plan: &Plan, config: &GeneratorConfig) -> BTreeMap<String, usize> {
    let months = config.trading_months();
    let (first, end) = (months[0].start_millis(), config.end().start_millis());
    let known: std::collections::BTreeSet<&str> = config.products.iter().map(|p| p.product.sku.as_str()).collect();
    let mut seen: BTreeMap<String, std::collections::BTreeSet<Month>> = BTreeMap::new();
    for upload in &plan.uploads {
        if let Record::Pos { sale, .. } = &upload.record {
            if sale.quantity > 0 && known.contains(sale.sku.as_str()) && (first..end).contains(&sale.sold_at) {
                seen.entry(sale.sku.clone()).or_default().insert(Month::from_millis(sale.sold_at));
            }
        }
    }
    seen.into_iter().map(|(sku, months)| (sku, months.len())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_plan() {
        let config = GeneratorConfig { months: 3, stores: 2, ..GeneratorConfig::default() };
        let (a, b) = (plan(&config), plan(&config));
        assert_eq!(a.uploads, b.uploads);
        assert_eq!(a.summary, b.summary);
        let other = plan(&GeneratorConfig { seed: 7, ..config });
        assert_ne!(a.uploads, other.uploads);
    }

    #[test]
    fn uploads_are_in_order_and_the_catalog_comes_first() {
        let p = plan(&GeneratorConfig { months: 2, stores: 2, ..GeneratorConfig::default() });
        assert!(p.uploads.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(matches!(p.uploads[0].record, Record::Catalog { .. }));
        assert!(p.summary.pos_v1 > 100 && p.summary.web_orders > 10, "{:?}", p.summary);
    }
}
