//! The retail topology in the test driver, step by step, with values worked out by hand.

use std::sync::Arc;

use apache_avro::types::Value;
use apache_avro::{AvroSchema, Schema};
use kstreams::serde::avro::InMemorySchemas;
use kstreams::serde::{Serdes, SharedSerde};
use kstreams::test_driver::{TestDriverConfig, TopologyTestDriver};
use retail::calendar::Month;
use retail::forecast::ForecastParams;
use retail::hub::pos_value;
use retail::model::{
    pos_schemas, AutoOrder, Forecast, MonthlySales, PosSale, Product, Rejected, StockLevel, WebAvailability, WebLine,
    WebOrder,
};
use retail::topology::{build, RetailSettings};

const DAY: i64 = 86_400_000;
const V1_ID: u32 = 1;
const V2_ID: u32 = 2;

/// A driver over the topology with one partition per topic, POS schemas in memory (v1 as id 1,
/// v2 as id 2), and a catalog of two products.
struct Shop {
    driver: TopologyTestDriver,
    v1: SharedSerde<Value>,
    v2: SharedSerde<PosSale>,
}

fn settings() -> RetailSettings {
    RetailSettings { partitions: 1, ..RetailSettings::default() }
}

fn umbrella() -> Product {
    Product {
        sku: "SKU-0001".into(),
        web_id: "W-1001".into(),
        name: "Umbrella".into(),
        pack_size: 12,
        safety_stock: 10,
    }
}

fn coat() -> Product {
    Product {
        sku: "SKU-0002".into(),
        web_id: "W-1002".into(),
        name: "Winter coat".into(),
        pack_size: 6,
        safety_stock: 4,
    }
}

impl Shop {
    fn open(settings: RetailSettings) -> Shop {
        let schemas = Arc::new(InMemorySchemas::new());
        let v1_schema = Arc::new(schemas.register(V1_ID, Schema::parse_str(pos_schemas::V1).unwrap()).unwrap());
        schemas.register(V2_ID, PosSale::get_schema()).unwrap();
        let reader: SharedSerde<PosSale> = Serdes::avro::<PosSale>(V2_ID, schemas.clone());
        let topology = build(&settings, reader.clone()).unwrap();
        let driver = TopologyTestDriver::new(topology, TestDriverConfig::new("retail-test")).unwrap();
        let shop = Shop { driver, v1: Serdes::avro_generic((*v1_schema).clone(), V1_ID, schemas), v2: reader };
        let catalog = shop.driver.input_topic("product-catalog", Serdes::string(), Serdes::json::<Product>());
        for p in [umbrella(), coat()] {
            catalog.pipe(p.sku.clone(), p.clone(), 0).unwrap();
            catalog.pipe(p.web_id.clone(), p, 0).unwrap();
        }
        shop
    }

    fn pos_v1(&self, sku: &str, quantity: i32, cents: i64, at: i64) {
        let sale = pos(sku, quantity, cents, at, None);
        self.driver
            .input_topic("pos-sales", Serdes::string(), self.v1.clone())
            .pipe(sale.store.clone(), pos_value(&sale, false), at + 1)
            .unwrap();
    }

    fn pos_v2(&self, sku: &str, quantity: i32, cents: i64, at: i64, promo: Option<&str>) {
        let sale = pos(sku, quantity, cents, at, promo.map(str::to_string));
        self.driver
            .input_topic("pos-sales", Serdes::string(), self.v2.clone())
            .pipe(sale.store.clone(), sale, at + 1)
            .unwrap();
    }

    fn web(&self, order: WebOrder) {
        self.driver
            .input_topic("web-sales", Serdes::string(), Serdes::json::<WebOrder>())
            .pipe(order.order_id.clone(), order, 0)
            .unwrap();
    }

    fn stock(&self, key: &str, units: Option<i64>) {
        self.driver
            .input_topic("inventory", Serdes::string(), Serdes::nullable(Serdes::json::<StockLevel>()))
            .pipe(key.into(), units.map(|units| StockLevel { units }), 0)
            .unwrap();
    }

    fn monthly(&self) -> Vec<(String, MonthlySales)> {
        self.driver
            .output_topic("sales-monthly", Serdes::string(), Serdes::json::<MonthlySales>())
            .read_key_values()
            .unwrap()
    }

    fn forecasts(&self) -> Vec<Forecast> {
        let out = self.driver.output_topic("sales-forecast", Serdes::string(), Serdes::json::<Forecast>());
        out.read_key_values().unwrap().into_iter().map(|(_, f)| f).collect()
    }

    fn orders(&self) -> Vec<(String, Option<AutoOrder>)> {
        let out =
            self.driver.output_topic("auto-orders", Serdes::string(), Serdes::nullable(Serdes::json::<AutoOrder>()));
        out.read_key_values().unwrap()
    }
}

fn pos(sku: &str, quantity: i32, cents: i64, at: i64, promo_code: Option<String>) -> PosSale {
    PosSale {
        receipt: format!("r-{at}"),
        store: "store-01".into(),
        till: 1,
        sku: sku.into(),
        quantity,
        unit_price_cents: cents,
        sold_at: at,
        promo_code,
    }
}

fn web_order(id: &str, ordered_at: &str, status: &str, lines: &[(&str, i64, &str)], coupon: Option<&str>) -> WebOrder {
    WebOrder {
        order_id: id.into(),
        ordered_at: ordered_at.into(),
        status: status.into(),
        lines: lines
            .iter()
            .map(|(p, q, price)| WebLine { product_id: (*p).into(), qty: *q, price: (*price).into() })
            .collect(),
        coupon: coupon.map(str::to_string),
    }
}

fn m(year: i32, month: u32) -> Month {
    Month::new(year, month)
}

#[test]
fn months_are_utc_calendar_months_to_the_last_millisecond() {
    let shop = Shop::open(settings());
    let feb = m(2025, 2);
    shop.pos_v1("SKU-0001", 2, 100, feb.start_millis() - 1); // 2025-01-31T23:59:59.999Z: January
    shop.pos_v1("SKU-0001", 3, 100, feb.start_millis()); // 2025-02-01T00:00:00.000Z: February
                                                         // 08:59:59 on 1 February in Seoul is 23:59:59 on 31 January in UTC: January.
    shop.web(web_order("o1", "2025-02-01T08:59:59", "PAID", &[("W-1001", 4, "1.00")], None));
    // 09:00:00 in Seoul is midnight UTC: February.
    shop.web(web_order("o2", "2025-02-01T09:00:00", "PAID", &[("W-1001", 5, "1.00")], None));
    // 28 February 2025 (not a leap year), last millisecond: February.
    shop.pos_v1("SKU-0001", 7, 100, m(2025, 3).start_millis() - 1);
    // Stream time 28 February: January's grace (3 days after 1 February) is over, February's not.
    let january = shop.monthly();
    let months: Vec<(String, Month, i64)> = january.iter().map(|(k, s)| (k.clone(), s.month, s.units)).collect();
    assert_eq!(months, vec![("SKU-0001|2025-01".into(), m(2025, 1), 2 + 4)]);
    // 4 March, 00:00 exactly: February's window ends 1 March, so its grace ends now.
    shop.pos_v1("SKU-0001", 1, 100, m(2025, 3).start_millis() + 3 * DAY - 1);
    assert!(shop.monthly().is_empty(), "February takes records until its grace is over");
    shop.pos_v1("SKU-0001", 1, 100, m(2025, 3).start_millis() + 3 * DAY);
    let monthly = shop.monthly();
    let months: Vec<(String, Month, i64)> = monthly.iter().map(|(k, s)| (k.clone(), s.month, s.units)).collect();
    assert_eq!(months, vec![("SKU-0001|2025-02".into(), feb, 3 + 5 + 7)]);
    assert_eq!(monthly[0].1.revenue_cents, 15 * 100);
    assert_eq!(monthly[0].1.lines, 3);
}

#[test]
fn a_late_till_upload_counts_within_the_grace_period_and_is_dropped_after_it() {
    let shop = Shop::open(settings());
    let (jan, feb) = (m(2025, 1), m(2025, 2));
    shop.pos_v1("SKU-0001", 1, 100, jan.start_millis() + 10 * DAY);
    shop.pos_v1("SKU-0001", 1, 100, feb.start_millis() + 2 * DAY); // stream time 3 February
    shop.pos_v1("SKU-0001", 10, 100, jan.end_millis() - DAY); // 30 January, 3 days late: within grace
    assert!(shop.monthly().is_empty());
    shop.pos_v1("SKU-0001", 1, 100, feb.start_millis() + 5 * DAY); // stream time 6 February: January closes
    let monthly = shop.monthly();
    assert_eq!(monthly.len(), 1);
    assert_eq!((monthly[0].1.month, monthly[0].1.units), (jan, 11));
    let dropped = shop.driver.dropped_records();
    shop.pos_v1("SKU-0001", 100, 100, jan.end_millis() - DAY); // too late: January is closed
    assert_eq!(shop.driver.dropped_records(), dropped + 1, "the late record is dropped and counted");
    assert!(shop.monthly().is_empty(), "a closed month is never reported again");
    shop.pos_v1("SKU-0001", 1, 100, m(2025, 3).start_millis() + 4 * DAY);
    let feb_total = shop.monthly();
    assert_eq!((feb_total[0].1.month, feb_total[0].1.units), (feb, 2), "February does not get January's late sale");
}

#[test]
fn returns_and_lines_that_are_not_sales_are_left_out() {
    let shop = Shop::open(settings());
    let jan = m(2025, 1).start_millis();
    shop.pos_v1("SKU-0001", 3, 250, jan + DAY);
    shop.pos_v1("SKU-0001", -1, 250, jan + 2 * DAY); // a return
    shop.pos_v1("SKU-0001", 0, 250, jan + 3 * DAY); // a voided line
    shop.pos_v1("SKU-0001", 2, 0, jan + 3 * DAY); // no price
    shop.web(web_order("o1", "2025-01-10T12:00:00", "PAID", &[("W-1001", 2, "2.50"), ("W-1001", 0, "2.50")], None));
    shop.web(web_order("o1", "2025-01-10T12:00:00", "REFUNDED", &[("W-1001", 2, "2.50")], None));
    shop.pos_v1("SKU-0001", 1, 250, m(2025, 2).start_millis() + 4 * DAY);
    let monthly = shop.monthly();
    assert_eq!(monthly.len(), 1);
    let jan_total = &monthly[0].1;
    assert_eq!((jan_total.units, jan_total.revenue_cents, jan_total.lines), (3 + 2, (3 + 2) * 250, 2));
    assert!(shop.driver.output_topic("retail-dead-letters", Serdes::string(), Serdes::json::<Rejected>()).is_empty());
}

#[test]
fn v1_and_v2_pos_records_decode_into_one_sale_and_promotion_units_are_set_apart() {
    let shop = Shop::open(settings());
    let jan = m(2025, 1).start_millis();
    shop.pos_v1("SKU-0002", 3, 1_000, jan + DAY); // v1: no promotion code field at all
    shop.pos_v2("SKU-0002", 2, 1_000, jan + 2 * DAY, Some("SPRING-SALE"));
    shop.pos_v2("SKU-0002", 4, 1_000, jan + 3 * DAY, None);
    shop.web(web_order("o1", "2025-01-20T12:00:00", "PAID", &[("W-1002", 1, "10.00")], Some("SPRING-SALE")));
    shop.pos_v2("SKU-0002", 1, 1_000, m(2025, 2).start_millis() + 4 * DAY, None);
    let monthly = shop.monthly();
    let jan_total = &monthly[0].1;
    assert_eq!((jan_total.units, jan_total.promo_units, jan_total.baseline_units), (3 + 2 + 4 + 1, 2 + 1, 3 + 4));
    // The forecast learns from the baseline only: one month of 7 units.
    let forecasts = shop.forecasts();
    assert_eq!(forecasts.len(), 1);
    assert_eq!((forecasts[0].month, forecasts[0].units), (m(2025, 2), 7.0));
}

#[test]
fn unknown_products_and_unusable_fields_go_to_the_dead_letter_topic_with_the_reason() {
    let shop = Shop::open(settings());
    let jan = m(2025, 1).start_millis();
    shop.pos_v1("SKU-9999", 1, 100, jan + DAY);
    shop.pos_v1("W-1001", 1, 100, jan + DAY); // a web id is not a SKU
    shop.web(web_order("o1", "2025-01-05T10:00:00", "PAID", &[("W-1001", 1, "1.00"), ("W-9999", 1, "1.00")], None));
    shop.web(web_order("o2", "5 January 2025", "PAID", &[("W-1001", 1, "1.00")], None));
    shop.web(web_order("o3", "2025-01-05T10:00:00", "PAID", &[("W-1001", 1, "one euro")], None));
    let dead = shop.driver.output_topic("retail-dead-letters", Serdes::string(), Serdes::json::<Rejected>());
    let records = dead.read_records().unwrap();
    let summary: Vec<(String, String, String)> = records
        .iter()
        .map(|(_, r)| {
            let header = |name: &str| String::from_utf8(r.headers.last(name).unwrap_or_default().to_vec()).unwrap();
            (r.key.clone(), header("retail.reason"), header("__streams.errors.topic"))
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("store-01".into(), "unknown-product".into(), "pos-sales".into()),
            ("store-01".into(), "unknown-product".into(), "pos-sales".into()),
            ("o1".into(), "unknown-product".into(), "web-sales".into()),
            ("o2".into(), "invalid-field".into(), "web-sales".into()),
            ("o3".into(), "invalid-field".into(), "web-sales".into()),
        ]
    );
    assert!(records[0].1.value.detail.contains("SKU-9999"), "{:?}", records[0].1.value);
    assert!(records[3].1.value.detail.contains("5 January 2025"), "{:?}", records[3].1.value);
    assert_eq!(records[2].1.value.record["line"]["product_id"], "W-9999", "the refused line is kept");
    // o1's known line is a sale.
    shop.pos_v1("SKU-0001", 1, 100, m(2025, 2).start_millis() + 4 * DAY);
    assert_eq!(shop.monthly()[0].1.units, 1);
}

/// Baseline units per month, one sale mid-month each, then a sale that closes the last month.
fn sell_months(shop: &Shop, first: Month, units: &[i32]) {
    for (i, u) in units.iter().enumerate() {
        let month = Month::new(first.year(), first.month() + i as u32);
        shop.pos_v2("SKU-0001", *u, 100, month.start_millis() + 10 * DAY, None);
    }
    let after = Month::new(first.year(), first.month() + units.len() as u32);
    shop.pos_v2("SKU-0001", 1, 100, after.start_millis() + 10 * DAY, None);
}

#[test]
fn the_forecast_on_a_short_history_worked_out_by_hand() {
    let halves = RetailSettings { forecast: ForecastParams { alpha: 0.5, beta: 0.5, gamma: 0.5 }, ..settings() };
    let shop = Shop::open(halves);
    let year = [50, 100, 150, 100, 50, 50, 50, 50, 150, 150, 150, 150];
    let mut history = year.to_vec();
    history.extend([60, 130]);
    sell_months(&shop, m(2024, 1), &history);
    let forecasts = shop.forecasts();
    let got: Vec<(Month, f64)> = forecasts.iter().map(|f| (f.month, f.units)).collect();
    // First year, before the season is known: the forecast is the level, L = x1, then
    // L = 0.5·x + 0.5·L.
    let mut expected = vec![
        (m(2024, 2), 50.0),
        (m(2024, 3), 75.0),
        (m(2024, 4), 112.5),
        (m(2024, 5), 106.25),
        (m(2024, 6), 78.125),
        (m(2024, 7), 64.0625),
        (m(2024, 8), 57.03125),
        (m(2024, 9), 53.515625),
        (m(2024, 10), 101.7578125),
        (m(2024, 11), 125.87890625),
        (m(2024, 12), 137.939453125),
    ];
    // December 2024 completes the year: L = mean = 1200/12 = 100, T = 0, S = x / 100, so
    // S[Jan] = 0.5, S[Feb] = 1.0, S[Mar] = 1.5; January 2025 = 100 · 0.5 = 50.
    expected.push((m(2025, 1), 50.0));
    // January 2025 sells 60: L = 0.5·60/0.5 + 0.5·(100 + 0) = 110, T = 0.5·(110 − 100) + 0.5·0 = 5;
    // February = (110 + 5) · S[Feb] = 115.
    expected.push((m(2025, 2), 115.0));
    // February sells 130: L = 0.5·130/1 + 0.5·(110 + 5) = 122.5, T = 0.5·12.5 + 0.5·5 = 8.75;
    // March = (122.5 + 8.75) · 1.5 = 196.875.
    expected.push((m(2025, 3), 196.875));
    assert_eq!(got.len(), expected.len(), "{got:?}");
    for ((month, units), (want_month, want)) in got.iter().zip(&expected) {
        assert_eq!(month, want_month);
        assert!((units - want).abs() < 1e-9, "{month}: {units} vs {want}");
    }
    let last = forecasts.last().unwrap();
    assert_eq!((last.history_months, last.seasonal_index), (14, 1.5));
    assert_eq!((last.name.as_str(), last.pack_size, last.safety_stock), ("Umbrella", 12, 10), "from the catalog");
}

#[test]
fn orders_round_up_to_whole_packs_with_the_stock_of_every_location() {
    let shop = Shop::open(settings());
    shop.stock("SKU-0001|store-01", Some(5));
    shop.stock("SKU-0001|warehouse", Some(10));
    sell_months(&shop, m(2025, 1), &[40]); // forecast for February: 40
                                           // need = 40 + 10 (safety) − 15 (on hand) = 35 → 3 packs of 12 = 36
    let orders = shop.orders();
    let (sku, order) = orders.last().unwrap();
    let order = order.as_ref().unwrap();
    assert_eq!((sku.as_str(), order.month, order.on_hand, order.order_units), ("SKU-0001", m(2025, 2), 15, 36));
    // Stock arrives at the warehouse: 40 + 10 − 55 < 0: the proposal is withdrawn (a tombstone).
    shop.stock("SKU-0001|warehouse", Some(50));
    assert_eq!(shop.orders().last(), Some(&("SKU-0001".to_string(), None)));
    // Exactly enough for one more pack: 40 + 10 − 49 = 1 → 12.
    shop.stock("SKU-0001|warehouse", Some(44));
    assert_eq!(shop.orders().last().unwrap().1.as_ref().unwrap().order_units, 12);
}

#[test]
fn a_product_with_no_inventory_orders_its_forecast_and_safety_stock() {
    let shop = Shop::open(settings());
    sell_months(&shop, m(2025, 1), &[40]);
    // need = 40 + 10 − 0 = 50 → 5 packs of 12 = 60
    let orders = shop.orders();
    let order = orders.last().unwrap().1.as_ref().unwrap();
    assert_eq!((order.on_hand, order.order_units), (0, 60));
}

#[test]
fn the_web_shop_sees_availability_by_its_own_product_id() {
    let shop = Shop::open(settings());
    shop.stock("SKU-0002|store-01", Some(3));
    shop.stock("SKU-0002|store-02", Some(0));
    shop.stock("SKU-0002|warehouse", Some(20));
    shop.stock("not a key", Some(99)); // no `|`: ignored
    let out = shop.driver.output_topic(
        "web-inventory",
        Serdes::string(),
        Serdes::nullable(Serdes::json::<WebAvailability>()),
    );
    let views = out.read_key_value_map().unwrap();
    let coat = views["W-1002"].as_ref().unwrap();
    assert_eq!((coat.sku.as_str(), coat.units), ("SKU-0002", 23));
    assert_eq!(coat.stores.iter().map(|(s, u)| (s.as_str(), *u)).collect::<Vec<_>>(), vec![("store-01", 3)]);
    assert_eq!(views.len(), 1);
    shop.stock("SKU-0002|store-01", None); // store-01 stops stocking it
    let coat = out.read_key_value_map().unwrap()["W-1002"].clone().unwrap();
    assert_eq!((coat.units, coat.stores.len()), (20, 0));
}

#[test]
fn settings_are_checked_and_name_the_setting() {
    let err = RetailSettings::default().with([("retail.forecast.gamma", "2")]).unwrap_err();
    assert!(err.contains("retail.forecast.gamma"), "{err}");
    let err = RetailSettings::default().with([("retail.grace", "3")]).unwrap_err();
    assert!(err.contains("retail.grace"), "{err}");
}

// --- the shop's databases, as Debezium brings them in -----------------------------------------

/// A Debezium change event (compact JSON, as Connect's JsonConverter writes it without schemas).
fn change(op: &str, before: Option<serde_json::Value>, after: Option<serde_json::Value>) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "before": before, "after": after, "op": op, "ts_ms": 1,
        "source": {"connector": "postgresql", "db": "pos", "schema": "public", "table": "t", "snapshot": "false"}
    }))
    .unwrap()
}

/// A sale line row: `local` is the store's wall clock (Seoul), as Debezium writes a `timestamp`.
fn sale_line(receipt: &str, line: i32, sku: &str, qty: i32, cents: i64, local: &str) -> serde_json::Value {
    let local = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M:%S").unwrap();
    serde_json::json!({
        "store_code": "store-01", "till_no": 1, "receipt_no": receipt, "line_no": line, "sku": sku, "qty": qty,
        "unit_price_cents": cents, "promo_code": null, "sold_at": retail::cdc::wall_clock_micros(local)
    })
}

#[test]
fn database_changes_count_as_the_rows_end_up_and_the_results_carry_connect_schemas() {
    use retail::cdc::CdcTopics;
    let cdc = CdcTopics::for_prefix("");
    let topology = retail::topology::build_on_databases(&settings(), &cdc).unwrap();
    let driver = TopologyTestDriver::new(topology, TestDriverConfig::new("retail-cdc-test")).unwrap();
    let catalog = driver.input_topic("product-catalog", Serdes::string(), Serdes::json::<Product>());
    for p in [umbrella(), coat()] {
        catalog.pipe(p.sku.clone(), p.clone(), 0).unwrap();
        catalog.pipe(p.web_id.clone(), p, 0).unwrap();
    }
    let lines = driver.input_topic(&cdc.sale_lines, Serdes::bytes(), Serdes::nullable(Serdes::bytes()));
    let key = |receipt: &str, line: i32| {
        serde_json::to_vec(&serde_json::json!({"store_code": "store-01", "receipt_no": receipt, "line_no": line}))
            .unwrap()
    };
    // A line of 2 umbrellas, corrected to 3; a line of 1, voided (deleted, then its tombstone);
    // a line of an unknown SKU, to the dead letters, then deleted.
    let first = sale_line("r1", 1, "SKU-0001", 2, 450, "2025-01-10T12:00:00");
    let corrected = sale_line("r1", 1, "SKU-0001", 3, 450, "2025-01-10T12:00:00");
    let voided = sale_line("r1", 2, "SKU-0001", 1, 450, "2025-01-10T12:00:05");
    lines.pipe(key("r1", 1), Some(change("c", None, Some(first.clone()))), 0).unwrap();
    lines.pipe(key("r1", 1), Some(change("u", Some(first), Some(corrected))), 0).unwrap();
    lines.pipe(key("r1", 2), Some(change("c", None, Some(voided.clone()))), 0).unwrap();
    lines.pipe(key("r1", 2), Some(change("d", Some(voided), None)), 0).unwrap();
    lines.pipe(key("r1", 2), None, 0).unwrap();
    let unknown = sale_line("r2", 1, "SKU-9999", 1, 100, "2025-01-11T09:00:00");
    lines.pipe(key("r2", 1), Some(change("c", None, Some(unknown.clone()))), 0).unwrap();
    lines.pipe(key("r2", 1), Some(change("d", Some(unknown), None)), 0).unwrap();
    // A web line of 4 umbrellas at 12.99 (a decimal string; its time in UTC).
    let web = driver.input_topic(&cdc.order_lines, Serdes::bytes(), Serdes::nullable(Serdes::bytes()));
    let web_line = serde_json::json!({
        "order_id": "o1", "line_no": 1, "product_code": "W-1001", "quantity": 4, "price": "12.99",
        "discount_code": null, "created_at": "2025-01-15T01:00:00.000000Z"
    });
    web.pipe(b"{\"order_id\":\"o1\",\"line_no\":1}".to_vec(), Some(change("c", None, Some(web_line))), 0).unwrap();
    // Stock: store-01 5 then 7; store-02 3, then deleted.
    let stock = driver.input_topic(&cdc.stock, Serdes::bytes(), Serdes::nullable(Serdes::bytes()));
    let stock_key =
        |l: &str| serde_json::to_vec(&serde_json::json!({"product_id": "SKU-0001", "location": l})).unwrap();
    let row = |l: &str, n: i32| Some(serde_json::json!({"product_id": "SKU-0001", "location": l, "on_hand": n}));
    stock.pipe(stock_key("store-01"), Some(change("r", None, row("store-01", 5))), 0).unwrap();
    stock.pipe(stock_key("store-02"), Some(change("c", None, row("store-02", 3))), 0).unwrap();
    stock.pipe(stock_key("store-01"), Some(change("u", row("store-01", 5), row("store-01", 7))), 0).unwrap();
    stock.pipe(stock_key("store-02"), Some(change("d", row("store-02", 3), None)), 0).unwrap();
    stock.pipe(stock_key("store-02"), None, 0).unwrap();
    // A sale in March closes January (grace 3 days).
    let march = sale_line("r3", 1, "SKU-0002", 1, 9900, "2025-03-02T10:00:00");
    lines.pipe(key("r3", 1), Some(change("c", None, Some(march))), 0).unwrap();

    let monthly: Vec<(String, MonthlySales)> = driver
        .output_topic("sales-monthly", Serdes::string(), Serdes::json::<MonthlySales>())
        .read_key_values()
        .unwrap();
    let january: Vec<&MonthlySales> = monthly.iter().map(|(_, s)| s).filter(|s| s.month == m(2025, 1)).collect();
    assert_eq!(january.len(), 1, "{monthly:?}");
    let jan = january[0];
    assert_eq!((jan.sku.as_str(), jan.units, jan.revenue_cents, jan.lines), ("SKU-0001", 7, 3 * 450 + 4 * 1299, 2));
    let dead: Vec<(String, Rejected)> = driver
        .output_topic("retail-dead-letters", Serdes::string(), Serdes::json::<Rejected>())
        .read_key_values()
        .unwrap();
    assert_eq!(dead.len(), 1, "the unknown SKU once (its delete undoes nothing): {dead:?}");

    // The forecast and the order carry Connect schemas, for the JDBC sink.
    let raw = driver.output_topic("sales-forecast", Serdes::bytes(), Serdes::bytes()).read_key_values().unwrap();
    let (key, value) = raw.last().expect("a forecast");
    let key: serde_json::Value = serde_json::from_slice(key).unwrap();
    assert_eq!(key, serde_json::json!({"schema": {"type": "string", "optional": false}, "payload": "SKU-0001"}));
    let value: serde_json::Value = serde_json::from_slice(value).unwrap();
    assert_eq!(value["schema"]["name"], "retail.Forecast");
    assert_eq!(value["payload"]["month"], "2025-02");
    let orders = driver
        .output_topic(
            "auto-orders",
            Serdes::connect_json::<String>(),
            Serdes::nullable(Serdes::connect_json::<AutoOrder>()),
        )
        .read_key_values()
        .unwrap();
    let (sku, order) = orders.last().expect("an order");
    let order = order.as_ref().expect("an order is needed");
    assert_eq!((sku.as_str(), order.on_hand), ("SKU-0001", 7), "store-02's row was deleted");
}
