//! The data hub with its real neighbours (`scripts/hub`): the shop's PostgreSQL databases captured
//! by Kafka Connect (Debezium), the application on Debezium's change events, and its results
//! written back by Connect (the JDBC sink into the `planning` database, the FileStream sink into
//! the web shop's file). The test writes a generated run into the databases (inserts, corrections,
//! voided lines, refunds, stock upserts and deletes), restarts the Connect worker halfway, and
//! checks the `planning` tables and the file against values it computes itself from the rows it
//! wrote; it counts every change event (nothing lost or doubled across the restart), measures
//! how long a stock change takes from its commit to the `planning` row, and stops the hub.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bootstrap, expected, Event, Expected};
use kstreams::runtime::{KafkaStreams, State};
use kstreams_registry::store::StoreConfig;
use kstreams_registry::{BlockingRegistry, RegistryConfig};
use retail::calendar::Month;
use retail::cdc::CdcTopics;
use retail::database::{hub_script, Change, Planning, ShopDatabases, ShopWriter, WebInventoryFile};
use retail::generator::{self, GeneratorConfig};
use retail::hub::{read_topic, Hub, Outputs, Producer};
use retail::topology::Topics;

/// Why the hub cannot run here, if it cannot: Java or PostgreSQL missing with no apt-get to
/// install them.
fn cannot_run() -> Option<String> {
    let has = |cmd: &str| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {cmd}"))
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let postgres = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| dirs.flatten().any(|d| d.path().join("bin/initdb").exists()))
        .unwrap_or(false);
    let apt = has("apt-get");
    if !has("java") && !apt {
        return Some("Java is not installed and there is no apt-get to install it".into());
    }
    if !postgres && !apt {
        return Some("PostgreSQL is not installed and there is no apt-get to install it".into());
    }
    None
}

fn config() -> GeneratorConfig {
    GeneratorConfig {
        seed: 11,
        start: Month::new(2024, 1),
        months: 14,
        stores: 3,
        demand_scale: 0.5,
        web_orders_per_day: 6.0,
        promotion: Some(("SKU-0005".into(), Month::new(2024, 11))),
        grace_ms: common::GRACE,
        // Broken records are the Kafka feeds' (bytes that do not parse); table rows are typed.
        malformed_share: 0.0,
        unknown_product_share: 0.004,
        ..GeneratorConfig::default()
    }
}

/// The oracle's view of what the shop's systems did.
fn events<'a>(catalog: &'a [retail::generator::Upload], changes: &'a [Change]) -> Vec<Event<'a>> {
    let mut events = common::events_of_uploads(catalog);
    for change in changes {
        events.push(match change {
            Change::Pos { sale, reversal } => Event::Pos { sale, reversal: *reversal },
            Change::Web { order, reversal } => Event::Web { order, reversal: *reversal },
            Change::Stock { key, units } => Event::Stock { key, units: *units },
        });
    }
    events
}

/// Change events (tombstones left out) on `topic`.
fn change_events(topic: &str) -> u64 {
    read_topic(&bootstrap(), topic).expect("read a Debezium topic").iter().filter(|r| r.value.is_some()).count() as u64
}

/// Waits until each Debezium topic holds as many change events as rows were changed.
fn wait_for_capture(
    cdc: &CdcTopics,
    prefix: &str,
    writer: &ShopWriter,
    within: Duration,
) -> BTreeMap<String, (u64, u64)> {
    let topics = [
        ("sale_lines", cdc.sale_lines.clone()),
        ("orders", format!("{prefix}webshop.public.orders")),
        ("order_lines", cdc.order_lines.clone()),
        ("stock", cdc.stock.clone()),
    ];
    let deadline = Instant::now() + within;
    loop {
        let counts: BTreeMap<String, (u64, u64)> = topics
            .iter()
            .map(|(table, topic)| {
                (table.to_string(), (change_events(topic), writer.rows_changed.get(table).copied().unwrap_or(0)))
            })
            .collect();
        if counts.values().all(|(got, want)| got >= want) || Instant::now() > deadline {
            return counts;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Waits until the application's outputs are complete, or have not grown for 60 s.
fn wait_for_outputs(hub: &Hub, app: &KafkaStreams, want: &Expected) -> Outputs {
    let want_forecasts: usize = want.forecasts.values().map(Vec::len).sum();
    let want_dead: usize = want.dead_letters.values().sum();
    let (mut last, mut since) = ((0, 0, 0), Instant::now());
    loop {
        assert_ne!(app.state(), State::Error, "{:?}", app.error());
        let outputs = Outputs::read(hub).expect("read outputs");
        let forecasts: usize = outputs.forecasts.values().map(Vec::len).sum();
        let orders_done = want.orders.iter().all(|(sku, order)| {
            outputs.orders.get(sku).map(|o| o.as_ref().map(|o| (o.order_units, o.on_hand))) == Some(*order)
        });
        let now = (outputs.monthly.len(), forecasts, outputs.dead_letters.len());
        if now != last {
            (last, since) = (now, Instant::now());
        }
        if (outputs.monthly.len() >= want.monthly.len()
            && forecasts >= want_forecasts
            && outputs.dead_letters.len() >= want_dead
            && orders_done)
            || since.elapsed() > Duration::from_secs(60)
        {
            return outputs;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Waits until the `planning` tables and the web shop's file hold what `want` says.
fn wait_for_sinks(dbs: &ShopDatabases, want: &Expected) -> (Planning, WebInventoryFile) {
    let want_orders: BTreeMap<String, (i64, i64)> =
        want.orders.iter().filter_map(|(sku, o)| o.map(|o| (sku.clone(), o))).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let planning = Planning::read(dbs).expect("read the planning tables");
        let file = WebInventoryFile::read(&dbs.web_inventory_file()).expect("read the web shop's file");
        let orders: BTreeMap<String, (i64, i64)> =
            planning.orders.iter().map(|(sku, o)| (sku.clone(), (o.order_units, o.on_hand))).collect();
        let web_done = want
            .web
            .iter()
            .all(|(id, (units, stores))| file.latest.get(id).is_some_and(|v| (&v.units, &v.stores) == (units, stores)));
        if (orders == want_orders && web_done) || Instant::now() > deadline {
            return (planning, file);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Percentile `p` (0–100) of sorted `values`.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[test]
fn databases_through_connect_and_kstreams_back_into_a_database_and_a_file() {
    if let Some(why) = cannot_run() {
        eprintln!("SKIPPED: the data hub test needs PostgreSQL and Java: {why}");
        return;
    }
    let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).try_init();
    hub_script(&["start", "--no-deploy"]).expect("scripts/hub start");

    // This run's databases, connectors and topics.
    let prefix = format!("t{}_{}_", std::process::id(), rand_suffix());
    let store = StoreConfig::new(bootstrap()).topic(format!("_schemas-{prefix}"));
    let registry = BlockingRegistry::start(RegistryConfig::new(store).listen("127.0.0.1:0".parse().unwrap()))
        .expect("a registry (is the broker running?)");
    let mut hub = Hub::new(bootstrap(), registry.url());
    hub.settings.topics = Topics::prefixed(&prefix);
    let cdc = CdcTopics::for_prefix(&prefix);
    hub.cdc = Some(cdc.clone());
    let app_id = format!("{prefix}retail");
    hub.reset_topics(&app_id).expect("topics");
    hub_script(&["deploy", &prefix]).expect("scripts/hub deploy");
    let deployed = Deployed(prefix.clone());
    let dbs = ShopDatabases::of(&prefix).expect("the databases");

    let config = config();
    let plan = generator::plan(&config);
    Producer::new(&hub).unwrap().write(plan.catalog(), |_| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut app =
        hub.app_on_databases(hub.streams_config(&app_id, dir.path()).set("commit.interval.ms", "100"), &cdc).unwrap();
    app.start().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while app.state() != State::Running {
        assert!(Instant::now() < deadline, "the application is not running: {:?}", app.state());
        std::thread::sleep(Duration::from_millis(100));
    }

    // Pass 1: the first half of the trading; everything captured; the Connect worker restarts.
    let mut writer = ShopWriter::new(&dbs, hub.settings.web_utc_offset_minutes).unwrap();
    let trading = plan.trading();
    let (first, second) = trading.split_at(trading.len() / 2);
    let mut changes = writer.write(first, |_| {}).unwrap();
    let captured = wait_for_capture(&cdc, &prefix, &writer, Duration::from_secs(180));
    assert!(
        captured.values().all(|(got, want)| got == want),
        "change events before the restart (got, written): {captured:?}"
    );
    hub_script(&["restart", "connect"]).expect("restart the Connect worker");

    // Pass 2: the rest, after the restart.
    changes.extend(writer.write(second, |_| {}).unwrap());
    let reversals = changes
        .iter()
        .filter(|c| matches!(c, Change::Pos { reversal: true, .. } | Change::Web { reversal: true, .. }))
        .count();
    assert!(reversals > 10, "the run corrects, voids and refunds lines: {reversals}");
    let want = expected(&events(plan.catalog(), &changes), &config);
    let outputs = wait_for_outputs(&hub, &app, &want);

    // Every row change is one change event: nothing lost or doubled across the restart.
    let captured = wait_for_capture(&cdc, &prefix, &writer, Duration::from_secs(60));
    assert!(captured.values().all(|(got, want)| got == want), "change events (got, written): {captured:?}");

    // The application's topics: monthly sales and forecasts as computed here.
    assert_eq!(outputs.monthly_records, outputs.monthly.len(), "a month was reported twice");
    let got: BTreeMap<(String, (i32, u32)), common::Totals> = outputs
        .monthly
        .iter()
        .map(|((sku, m), s)| {
            (
                (sku.clone(), (m.year(), m.month())),
                common::Totals { units: s.units, promo: s.promo_units, revenue: s.revenue_cents, lines: s.lines },
            )
        })
        .collect();
    let differ: Vec<_> = want
        .monthly
        .iter()
        .filter(|(key, totals)| got.get(*key) != Some(totals))
        .map(|(key, totals)| (key, totals, got.get(key)))
        .collect();
    assert!(
        differ.is_empty(),
        "sales-monthly (product-month, expected, got) for {} of {}: {differ:?}",
        differ.len(),
        want.monthly.len()
    );
    assert_eq!(got.len(), want.monthly.len(), "product-months");
    let dead: usize = want.dead_letters.values().sum();
    assert_eq!(outputs.dead_letters.len(), dead, "dead letters (unknown products)");

    // The sinks: the planning tables and the web shop's file.
    let (planning, file) = wait_for_sinks(&dbs, &want);
    for (sku, forecasts) in &want.forecasts {
        let (month, units) = *forecasts.last().unwrap();
        let got = planning.forecasts.get(sku).unwrap_or_else(|| panic!("no forecast for {sku} in sales_forecast"));
        assert_eq!((got.month.year(), got.month.month()), month, "{sku}");
        assert!((got.units - units).abs() < 1e-6, "{sku}: {} vs {units}", got.units);
    }
    let want_orders: BTreeMap<String, (i64, i64)> =
        want.orders.iter().filter_map(|(s, o)| o.map(|o| (s.clone(), o))).collect();
    let got_orders: BTreeMap<String, (i64, i64)> =
        planning.orders.iter().map(|(s, o)| (s.clone(), (o.order_units, o.on_hand))).collect();
    assert_eq!(got_orders, want_orders, "auto_orders in the planning database");
    assert!(!want_orders.is_empty(), "the run proposes orders");
    for (id, (units, stores)) in &want.web {
        let view = file.latest.get(id).unwrap_or_else(|| panic!("{id} is not in the web shop's file"));
        assert_eq!((&view.units, &view.stores), (units, stores), "web inventory of {id}");
    }
    let web_records = read_topic(&bootstrap(), &hub.settings.topics.web_inventory).unwrap().len();
    assert_eq!(file.lines, web_records, "lines in the web shop's file vs records on web-inventory");

    // Latency: stock changes at a steady rate, each timed from its commit to its planning row.
    let (sku, headroom) = want
        .orders
        .keys()
        .filter_map(|sku| {
            let f = want.forecasts.get(sku)?.last()?.1;
            let safety = plan.catalog().iter().find_map(|u| match &u.record {
                generator::Record::Catalog { product, .. } if &product.sku == sku => Some(product.safety_stock),
                _ => None,
            })?;
            Some((sku.clone(), f + safety as f64))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("a product with a forecast");
    let locations: Vec<String> =
        want.stock.keys().filter_map(|k| k.strip_prefix(&format!("{sku}|")).map(str::to_string)).collect();
    let location = locations.first().cloned().unwrap_or_else(|| "warehouse".into());
    let mut extra: Vec<(String, i64)> = Vec::new();
    for l in &locations {
        writer.set_stock(&sku, l, 0).unwrap();
        extra.push((format!("{sku}|{l}"), 0));
    }
    let samples = (headroom as i64 - 1).clamp(5, 40);
    let seen: Arc<std::sync::Mutex<BTreeMap<i64, Instant>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let poller = {
        let (dbs, sku, seen, done) = (dbs.clone(), sku.clone(), seen.clone(), done.clone());
        std::thread::spawn(move || {
            let mut client = dbs.connect("planning").unwrap();
            while !done.load(Ordering::Relaxed) {
                if let Ok(rows) = client.query("SELECT on_hand FROM auto_orders WHERE sku = $1", &[&sku]) {
                    for row in rows {
                        let on_hand: i64 = row.get(0);
                        seen.lock().unwrap().entry(on_hand).or_insert_with(Instant::now);
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let mut committed = BTreeMap::new();
    for units in 1..=samples {
        writer.set_stock(&sku, &location, units as i32).unwrap();
        committed.insert(units, Instant::now());
        extra.push((format!("{sku}|{location}"), units));
        std::thread::sleep(Duration::from_millis(250));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen.lock().unwrap().contains_key(&samples) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    done.store(true, Ordering::Relaxed);
    poller.join().unwrap();
    let seen = seen.lock().unwrap().clone();
    let mut latencies: Vec<Duration> =
        committed.iter().filter_map(|(units, at)| seen.get(units).map(|s| s.saturating_duration_since(*at))).collect();
    latencies.sort();
    assert!(seen.contains_key(&samples), "the last stock change never reached the planning table");
    assert!(
        latencies.len() as i64 * 10 >= samples * 9,
        "{} of {samples} stock changes reached the planning table",
        latencies.len()
    );
    eprintln!(
        "data hub: stock change committed in PostgreSQL -> auto_orders row in the planning database, {} changes at 4/s: \
         p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.last().unwrap()
    );
    // And the final state holds the last stock change.
    let stock_events: Vec<(String, Option<i64>)> = extra.iter().map(|(k, u)| (k.clone(), Some(*u))).collect();
    let mut all = events(plan.catalog(), &changes);
    all.extend(stock_events.iter().map(|(key, units)| Event::Stock { key, units: *units }));
    let want = expected(&all, &config);
    let (planning, _) = wait_for_sinks(&dbs, &want);
    assert_eq!(
        planning.orders.get(&sku).map(|o| (o.order_units, o.on_hand)),
        want.orders.get(&sku).copied().flatten(),
        "{sku} after the stock changes"
    );

    app.close(Duration::from_secs(30)).unwrap();
    drop(deployed);

    // `scripts/hub stop` leaves no process and no data behind.
    let run_dir = hub_script(&["run-dir"]).expect("scripts/hub run-dir");
    hub_script(&["stop"]).expect("scripts/hub stop");
    assert!(!Path::new(&run_dir).exists(), "{run_dir} is left behind");
    let ps = std::process::Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    let ours: Vec<&str> =
        ps.lines().filter(|l| l.contains("ConnectDistributed") || l.contains(run_dir.as_str())).collect();
    assert!(ours.is_empty(), "processes left behind: {ours:?}");
}

/// A prefix's databases, connectors and topics, removed (`scripts/hub undeploy`) when dropped,
/// also when the test fails (unless `KEEP_HUB` is set, to look into a failure).
struct Deployed(String);

impl Drop for Deployed {
    fn drop(&mut self) {
        if std::thread::panicking() && std::env::var_os("KEEP_HUB").is_some() {
            eprintln!("KEEP_HUB: prefix {} left deployed", self.0);
            return;
        }
        if let Err(e) = hub_script(&["undeploy", &self.0]) {
            eprintln!("cannot undeploy {}: {e}", self.0);
        }
    }
}

/// A few digits that differ between runs (prefixes are lowercase letters, digits and `_`).
fn rand_suffix() -> usize {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as usize % 100_000)
        .unwrap_or(0)
}
