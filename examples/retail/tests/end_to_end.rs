//! The whole hub on the real broker and Schema Registry: generated trading (POS v1 → v2, v3
//! refused, late uploads, returns, malformed records, unknown products), the application with one
//! and with three instances, and its outputs checked against values this test computes itself from
//! the generated records, without the application's code.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime};
use kstreams::runtime::State;
use kstreams_registry::store::StoreConfig;
use kstreams_registry::{BlockingRegistry, RegistryConfig};
use retail::calendar::Month;
use retail::generator::{self, Breakage, GeneratorConfig, Plan, Record};
use retail::hub::{Hub, Outputs, Producer, WriteEvent};
use retail::topology::Topics;

const DAY: i64 = 86_400_000;
const GRACE: i64 = 3 * DAY;
const ALPHA: f64 = 0.3;
const BETA: f64 = 0.1;
const GAMMA: f64 = 0.3;

fn bootstrap() -> String {
    std::env::var("KSTREAMS_BOOTSTRAP").ok().filter(|b| !b.is_empty()).unwrap_or_else(|| "127.0.0.1:9092".into())
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("{prefix}{}-{nanos}", std::process::id())
}

// --- the expected outputs, computed here ---------------------------------------------------------

/// (year, month) of a UTC timestamp.
fn month_of(ms: i64) -> (i32, u32) {
    let t = DateTime::from_timestamp_millis(ms).unwrap();
    (t.year(), t.month())
}

/// The first millisecond after month (year, month).
fn month_end(ym: (i32, u32)) -> i64 {
    let (y, m) = if ym.1 == 12 { (ym.0 + 1, 1) } else { (ym.0, ym.1 + 1) };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis()
}

fn next_month(ym: (i32, u32)) -> (i32, u32) {
    if ym.1 == 12 {
        (ym.0 + 1, 1)
    } else {
        (ym.0, ym.1 + 1)
    }
}

/// (year, month) of a forecast and its units.
type MonthForecast = ((i32, u32), f64);

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Totals {
    units: i64,
    promo: i64,
    revenue: i64,
    lines: i64,
}

#[derive(Debug, Default)]
struct Expected {
    monthly: BTreeMap<(String, (i32, u32)), Totals>,
    /// Per SKU, the forecasts in order: (forecast month, units).
    forecasts: BTreeMap<String, Vec<MonthForecast>>,
    /// Per SKU, the final order: (order units, on hand), or none.
    orders: BTreeMap<String, Option<(i64, i64)>>,
    /// Per web id, (units on hand, stores with stock).
    web: BTreeMap<String, (i64, BTreeMap<String, i64>)>,
    dead_letters: BTreeMap<&'static str, usize>,
    late_dropped: usize,
}

/// Holt-Winters as the application documents it, written out again here.
fn forecasts_of(months: &BTreeMap<(i32, u32), i64>) -> Vec<MonthForecast> {
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

fn price_cents(price: &str) -> i64 {
    let (whole, fraction) = price.split_once('.').unwrap_or((price, "0"));
    whole.parse::<i64>().unwrap() * 100 + format!("{fraction:0<2}").parse::<i64>().unwrap()
}

fn expected(plan: &Plan, config: &GeneratorConfig) -> Expected {
    let mut e = Expected::default();
    let mut by_sku = BTreeMap::new();
    let mut by_web = BTreeMap::new();
    let mut stock: BTreeMap<String, i64> = BTreeMap::new();
    let mut stream_time = i64::MIN;
    let reported: BTreeSet<(i32, u32)> = config.trading_months().iter().map(|m| (m.year(), m.month())).collect();
    for upload in &plan.uploads {
        // The valid sales of this record: (sku, units, cents, promo, event time).
        let mut sales: Vec<(String, i64, i64, bool, i64)> = Vec::new();
        match &upload.record {
            Record::Catalog { product, .. } => {
                by_sku.insert(product.sku.clone(), product.clone());
                by_web.insert(product.web_id.clone(), product.clone());
            }
            Record::Inventory { key, level } => match level {
                Some(l) => {
                    stock.insert(key.clone(), l.units);
                }
                None => {
                    stock.remove(key);
                }
            },
            Record::Pos { sale, .. } => {
                if !by_sku.contains_key(&sale.sku) {
                    *e.dead_letters.entry("unknown-product").or_default() += 1;
                } else if sale.quantity > 0 && sale.unit_price_cents > 0 {
                    let promo = sale.promo_code.as_deref().is_some_and(|c| !c.is_empty());
                    sales.push((
                        sale.sku.clone(),
                        i64::from(sale.quantity),
                        sale.unit_price_cents,
                        promo,
                        sale.sold_at,
                    ));
                }
            }
            Record::Web { order } => {
                let local = NaiveDateTime::parse_from_str(&order.ordered_at, "%Y-%m-%dT%H:%M:%S").unwrap();
                let at = local.and_utc().timestamp_millis() - 9 * 3_600_000;
                for line in &order.lines {
                    match by_web.get(&line.product_id) {
                        None => *e.dead_letters.entry("unknown-product").or_default() += 1,
                        Some(p) if order.status == "PAID" && line.qty > 0 => {
                            let promo = order.coupon.as_deref().is_some_and(|c| !c.is_empty());
                            sales.push((p.sku.clone(), line.qty, price_cents(&line.price), promo, at));
                        }
                        Some(_) => {}
                    }
                }
            }
            Record::MalformedPos { .. } => *e.dead_letters.entry("unreadable").or_default() += 1,
            Record::MalformedWeb { breakage, .. } => {
                let reason = if *breakage == Breakage::BadDateTime { "invalid-field" } else { "unreadable" };
                *e.dead_letters.entry(reason).or_default() += 1;
            }
            Record::TryPosV3 => {}
        }
        for (sku, units, cents, promo, at) in sales {
            stream_time = stream_time.max(at);
            let month = month_of(at);
            if month_end(month) + GRACE <= stream_time {
                e.late_dropped += 1;
                continue;
            }
            if !reported.contains(&month) {
                continue;
            }
            let t = e.monthly.entry((sku, month)).or_default();
            t.units += units;
            t.revenue += units * cents;
            t.lines += 1;
            if promo {
                t.promo += units;
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

// --- running it ----------------------------------------------------------------------------------

fn config() -> GeneratorConfig {
    GeneratorConfig {
        seed: 7,
        start: Month::new(2024, 1),
        months: 14,
        stores: 3,
        demand_scale: 0.6,
        web_orders_per_day: 8.0,
        pos_v2_from: Month::new(2024, 6),
        pos_v3_attempt: Month::new(2024, 9),
        promotion: Some(("SKU-0005".into(), Month::new(2024, 11))),
        grace_ms: GRACE,
        malformed_share: 0.004,
        unknown_product_share: 0.004,
        ..GeneratorConfig::default()
    }
}

fn run_hub(instances: usize) {
    let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).try_init();
    let store = StoreConfig::new(bootstrap()).topic(unique("_schemas-retail-"));
    let registry = BlockingRegistry::start(RegistryConfig::new(store).listen("127.0.0.1:0".parse().unwrap()))
        .unwrap_or_else(|e| {
            panic!("cannot start a registry; is a broker running at {}? (scripts/kafka start): {e}", bootstrap())
        });
    let mut hub = Hub::new(bootstrap(), registry.url());
    hub.settings.topics = Topics::prefixed(&unique("retail-e2e-"));
    let app_id = unique("retail-e2e-app-");
    hub.reset_topics(&app_id).unwrap();
    let config = config();
    let plan = generator::plan(&config);
    let expected = expected(&plan, &config);
    assert!(expected.late_dropped > 0 && plan.summary.late_within_grace > 0, "the plan has late uploads of both kinds");
    assert!(plan.summary.pos_v1 > 0 && plan.summary.pos_v2 > 0, "the plan has POS records of both versions");

    // The shop has its catalog before it trades: the application loads it before any sale.
    let mut producer = Producer::new(&hub).unwrap();
    producer.write(plan.catalog(), |_| {}).unwrap();
    let dirs: Vec<tempfile::TempDir> = (0..instances).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut apps: Vec<_> = dirs
        .iter()
        .map(|d| {
            let mut app = hub.app(hub.streams_config(&app_id, d.path()).set("commit.interval.ms", "100")).unwrap();
            app.start().unwrap();
            app
        })
        .collect();
    // The group settles (each instance joining moves tasks) before the shop starts trading; tasks
    // that move later, while records flow, are restored from their changelogs all the same.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut running_since: Option<Instant> = None;
    while running_since.is_none_or(|since| since.elapsed() < Duration::from_secs(3)) {
        let all_running = apps.iter().all(|a| a.state() == State::Running);
        running_since = if all_running { running_since.or(Some(Instant::now())) } else { None };
        assert!(
            Instant::now() < deadline,
            "instances not running: {:?}",
            apps.iter().map(|a| a.state()).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut events = Vec::new();
    producer
        .write(plan.trading(), |e| {
            if !matches!(e, WriteEvent::Written(_)) {
                events.push(e)
            }
        })
        .unwrap();
    // v1, then v2 from the switch on; v3 refused by the registry, naming the field that broke it.
    assert!(matches!(&events[0], WriteEvent::Registered { version: 1, .. }), "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, WriteEvent::Registered { version: 2, month, .. } if *month == config.pos_v2_from)),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| matches!(e, WriteEvent::Refused { message, .. } if message.contains("unit_price_cents"))),
        "{events:?}"
    );

    let want_forecasts: usize = expected.forecasts.values().map(Vec::len).sum();
    let want_dead: usize = expected.dead_letters.values().sum();
    let deadline = Instant::now() + Duration::from_secs(240);
    let outputs = loop {
        for app in &apps {
            assert_ne!(app.state(), State::Error, "{:?}", app.error());
        }
        let outputs = Outputs::read(&hub).unwrap();
        let forecasts: usize = outputs.forecasts.values().map(Vec::len).sum();
        let orders_done = expected.orders.iter().all(|(sku, order)| {
            outputs.orders.get(sku).map(|o| o.as_ref().map(|o| (o.order_units, o.on_hand))) == Some(*order)
        });
        if outputs.monthly.len() >= expected.monthly.len()
            && forecasts >= want_forecasts
            && outputs.dead_letters.len() >= want_dead
            && orders_done
        {
            break outputs;
        }
        if Instant::now() > deadline {
            break outputs;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    for app in &mut apps {
        assert_ne!(app.state(), State::Error, "{:?}", app.error());
        app.close(Duration::from_secs(30)).unwrap();
    }

    // sales-monthly: every product-month once, with the totals computed here.
    assert_eq!(outputs.monthly_records, outputs.monthly.len(), "a month was reported twice");
    let got: BTreeMap<(String, (i32, u32)), Totals> = outputs
        .monthly
        .iter()
        .map(|((sku, m), s)| {
            assert_eq!(s.baseline_units, s.units - s.promo_units);
            (
                (sku.clone(), (m.year(), m.month())),
                Totals { units: s.units, promo: s.promo_units, revenue: s.revenue_cents, lines: s.lines },
            )
        })
        .collect();
    assert_eq!(got.len(), expected.monthly.len(), "product-months: got {:?}", got.keys().collect::<Vec<_>>());
    for (key, want) in &expected.monthly {
        assert_eq!(got.get(key), Some(want), "sales-monthly for {key:?}");
    }
    let promoted = ("SKU-0005".to_string(), (2024, 11));
    assert!(expected.monthly[&promoted].promo > 0, "the promotion month has promotion units");

    // sales-forecast: one per product and closed month, as computed here.
    for (sku, want) in &expected.forecasts {
        let got: Vec<MonthForecast> = outputs
            .forecasts
            .get(sku)
            .map(|f| f.iter().map(|f| ((f.month.year(), f.month.month()), f.units)).collect())
            .unwrap_or_default();
        assert_eq!(got.len(), want.len(), "forecasts of {sku}: {got:?} vs {want:?}");
        for ((m, units), (want_m, want_units)) in got.iter().zip(want) {
            assert_eq!(m, want_m, "{sku}");
            assert!((units - want_units).abs() < 1e-6, "{sku} {m:?}: {units} vs {want_units}");
        }
    }

    // auto-orders: the last proposal per product.
    for (sku, want) in &expected.orders {
        let got = outputs.orders.get(sku).map(|o| o.as_ref().map(|o| (o.order_units, o.on_hand)));
        assert_eq!(got, Some(*want), "auto-orders for {sku}");
    }

    // web-inventory: per web product id.
    for (web_id, (units, stores)) in &expected.web {
        let view =
            outputs.web_inventory.get(web_id).and_then(|v| v.clone()).unwrap_or_else(|| panic!("{web_id} missing"));
        assert_eq!((&view.units, &view.stores), (units, stores), "web-inventory for {web_id}");
    }

    // The dead-letter topic, by reason.
    let mut dead: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &outputs.dead_letters {
        *dead.entry(d.reason.as_str()).or_default() += 1;
    }
    let want: BTreeMap<&str, usize> = expected.dead_letters.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(dead, want, "dead letters by reason");
}

#[test]
fn the_hub_with_one_instance_matches_the_independent_computation() {
    run_hub(1);
}

#[test]
fn the_hub_with_three_instances_matches_the_independent_computation() {
    run_hub(3);
}
