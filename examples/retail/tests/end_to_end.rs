//! The whole hub on the real broker and Schema Registry: generated trading (POS v1 → v2, v3
//! refused, late uploads, returns, malformed records, unknown products), the application with one
//! and with three instances, and its outputs checked against values this test computes itself from
//! the generated records, without the application's code.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kstreams::runtime::State;
use kstreams_registry::store::StoreConfig;
use kstreams_registry::{BlockingRegistry, RegistryConfig};
use retail::calendar::Month;
use retail::generator::{self, GeneratorConfig};
use retail::hub::{Hub, Outputs, Producer, WriteEvent};
use retail::topology::Topics;

mod common;

use common::{bootstrap, events_of_uploads, expected, unique, MonthForecast, Totals, GRACE};

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
    let expected = expected(&events_of_uploads(&plan.uploads), &config);
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
