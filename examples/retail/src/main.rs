//! `retail`: the retail data hub, end to end.
//!
//! ```text
//! scripts/kafka start && cargo run -p retail            # 24 months of trading, then the report and chart
//! cargo run -p retail -- --live                          # keep trading, live, until Ctrl-C
//! cargo run -p retail -- --instances 3                   # the same with three application instances
//! cargo run -p retail -- app                             # one application instance, until Ctrl-C
//! cargo run -p retail -- app --server 127.0.0.1:7071     # … answering queries over HTTP
//! cargo run -p retail -- hub                             # with the shop's databases: PostgreSQL → Debezium
//!                                                        # → Kafka → kstreams → JDBC sink → PostgreSQL
//! ```
//!
//! The broker comes from `KSTREAMS_BOOTSTRAP` (default 127.0.0.1:9092), the Schema Registry from
//! `KSTREAMS_REGISTRY_URL` (default http://127.0.0.1:8081); `scripts/kafka start` runs both.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use kstreams::runtime::{KafkaStreams, State};
use retail::cdc::CdcTopics;
use retail::cli::{Services, Trading};
use retail::database::{hub_script, Change, Planning, ShopDatabases, ShopWriter, WebInventoryFile};
use retail::generator::{self, GeneratorConfig};
use retail::hub::{Hub, HubError, Outputs, Producer, SchemaEvents, WriteEvent};
use retail::{chart, report};

/// The retail data hub on kstreams: POS and web-shop sales into monthly sales, forecasts and
/// automatic orders.
#[derive(Parser, Debug)]
#[command(name = "retail")]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    services: Services,
    #[command(flatten)]
    trading: Trading,
    /// Application settings, `retail.grace.hours=72`, `retail.forecast.alpha=0.4` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", global = true)]
    settings: Vec<String>,
    /// Where the Prometheus metrics are served while it runs.
    #[arg(long, default_value = "127.0.0.1:9464", global = true)]
    metrics: String,
    /// `app`: this instance's `application.server` (host:port): its HTTP server answers queries
    /// there (`/stores/<store>/keys/<key>`) for every instance, and serves `/metrics`.
    #[arg(long, value_name = "HOST:PORT", global = true)]
    server: Option<String>,
    /// Application instances to run side by side (in this process).
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// Where the chart is written.
    #[arg(long, default_value = "retail-report")]
    out: PathBuf,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs one application instance until Ctrl-C (start several, in several terminals, to scale).
    App,
    /// Prints the report and writes the chart from what the topics hold now.
    Report,
    /// The data hub with the shop's databases around it (`scripts/hub`: PostgreSQL, Kafka Connect
    /// with Debezium, a JDBC sink and a file sink): the tills, the web shop and the warehouse write
    /// rows into PostgreSQL, Debezium brings every change to Kafka, the application computes, the
    /// JDBC sink writes forecasts and orders into the `planning` database and the file sink the
    /// web shop's availability into a file; the report's orders come from the `planning` table.
    Hub {
        /// Prefix of the databases, connectors and topics of this run (lowercase letters, digits, `_`).
        #[arg(long, default_value = "shop_")]
        prefix: String,
    },
}

const APPLICATION_ID: &str = "retail-hub";

fn main() {
    tracing_subscriber::fmt()
        // Each dead letter is logged at WARN by the runtime; the report counts them instead.
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,librdkafka=error,kstreams_streams::runtime::thread=error".into()),
        )
        .init();
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("retail: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), HubError> {
    let mut hub = args.services.hub();
    let settings: Vec<(String, String)> = args
        .settings
        .iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .ok_or_else(|| format!("--set takes KEY=VALUE, got `{s}`"))
        })
        .collect::<Result<_, _>>()
        .map_err(HubError::Other)?;
    hub.settings = hub.settings.clone().with(settings).map_err(HubError::Other)?;
    check_services(&hub)?;
    let stop = ctrl_c();
    match args.command {
        Some(Command::App) => {
            let dir = state_dir(0);
            let mut app = match &args.server {
                Some(server) => {
                    let config = hub.streams_config(APPLICATION_ID, &dir).set("application.server", server);
                    let mut app = hub.app(config)?;
                    app.start()?;
                    println!("retail: queries on http://{server}/stores/<store>/keys/<key>, e.g. /stores/latest-forecast/keys/SKU-0001");
                    app
                }
                None => start_app(&hub, &dir, Some(&args.metrics))?,
            };
            println!("retail: application instance running (state in {}); Ctrl-C stops it", dir.display());
            while !stop.load(Ordering::Relaxed) && app.state() != State::Error {
                std::thread::sleep(Duration::from_millis(200));
            }
            app.close(Duration::from_secs(30))?;
            Ok(())
        }
        Some(Command::Report) => {
            finish(&Outputs::read(&hub)?, &Default::default(), &SchemaEvents::default(), &args.out)
        }
        Some(Command::Hub { ref prefix }) => data_hub(&mut hub, &args, prefix, &stop),
        None => demo(&hub, &args, &stop),
    }
}

/// The run with the shop's databases (see [`Command::Hub`]).
fn data_hub(hub: &mut Hub, args: &Args, prefix: &str, stop: &AtomicBool) -> Result<(), HubError> {
    let started = Instant::now();
    // PostgreSQL and Kafka Connect (started if they are not running), then a clean slate for
    // this prefix: its databases, connectors and topics go, and come back empty.
    hub_script(&["start", "--no-deploy"])?;
    hub_script(&["undeploy", prefix])?;
    let cdc = CdcTopics::for_prefix(prefix);
    hub.settings.topics = retail::topology::Topics::prefixed(prefix);
    hub.cdc = Some(cdc.clone());
    let application_id = format!("{prefix}retail");
    hub.reset_topics(&application_id)?;
    hub_script(&["deploy", prefix])?;
    let dbs = ShopDatabases::of(prefix)?;
    println!(
        "retail: databases {prefix}pos, {prefix}webshop, {prefix}inventory and {prefix}planning on 127.0.0.1:{}; \
         connectors deployed ({})",
        dbs.port,
        hub_script(&["connect-url"])?
    );

    let config = GeneratorConfig { grace_ms: hub.settings.grace.as_millis() as i64, ..args.trading.config() };
    let plan = generator::plan(&config);
    let mut producer = Producer::new(hub)?;
    producer.write(plan.catalog(), |_| {})?;
    let dir = state_dir(0);
    let mut app = hub
        .app_on_databases(hub.streams_config(&application_id, &dir).set("metrics.http.address", &args.metrics), &cdc)?;
    app.start()?;
    let apps = [app];
    wait_running(&apps)?;
    println!(
        "retail: application running on the Debezium topics ({}, {}, {})",
        cdc.sale_lines, cdc.order_lines, cdc.stock
    );

    let mut writer = ShopWriter::new(&dbs, hub.settings.web_utc_offset_minutes)?;
    let trading = plan.trading();
    let total = trading.len();
    let changes = writer.write(trading, |n| progress(&format!("shop: {n}/{total} records written into PostgreSQL")))?;
    let reversals = changes
        .iter()
        .filter(|c| matches!(c, Change::Pos { reversal: true, .. } | Change::Web { reversal: true, .. }))
        .count();
    println!(
        "\nretail: {} row changes in the shop's databases ({reversals} corrections, voids and refunds)",
        changes.len()
    );

    let expected: usize = generator::months_with_sales(&plan, &config).values().sum();
    let mut outputs = wait_for_outputs(hub, expected, &apps, stop)?;
    // The JDBC sink's table holds what the ordering system sees: wait until it agrees with the topic.
    let want: BTreeMap<String, i64> =
        outputs.orders.iter().filter_map(|(sku, o)| o.as_ref().map(|o| (sku.clone(), o.order_units))).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let planning = loop {
        let planning = Planning::read(&dbs)?;
        let got: BTreeMap<String, i64> = planning.orders.iter().map(|(sku, o)| (sku.clone(), o.order_units)).collect();
        if got == want || Instant::now() > deadline || stop.load(Ordering::Relaxed) {
            if got != want {
                println!("retail: the planning table still differs from auto-orders after 60 s: {got:?} vs {want:?}");
            }
            break planning;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    for mut app in apps {
        app.close(Duration::from_secs(30))?;
    }
    let web = WebInventoryFile::read(&dbs.web_inventory_file())?;
    println!(
        "retail: planning database {prefix}planning: {} forecasts (sales_forecast), {} order proposals (auto_orders); \
         web shop file {}: {} products",
        planning.forecasts.len(),
        planning.orders.len(),
        dbs.web_inventory_file().display(),
        web.latest.len()
    );
    outputs.orders = planning.orders.into_iter().map(|(sku, o)| (sku, Some(o))).collect();
    finish(&outputs, &plan.summary, &producer.schema_events, &args.out)?;
    println!("retail: done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The whole run: fresh topics, the application, 24 months of trading, the report.
fn demo(hub: &Hub, args: &Args, stop: &AtomicBool) -> Result<(), HubError> {
    let started = Instant::now();
    println!("retail: broker {}, Schema Registry {}", hub.bootstrap, hub.registry_url);
    hub.reset_topics(APPLICATION_ID)?;
    let config = GeneratorConfig { grace_ms: hub.settings.grace.as_millis() as i64, ..args.trading.config() };
    let plan = generator::plan(&config);
    println!(
        "retail: {} records for {} months of trading from {} ({} stores, {} products), generated in {:.1} s",
        plan.uploads.len(),
        config.months,
        config.start,
        config.stores,
        config.products.len(),
        started.elapsed().as_secs_f64()
    );

    // The catalog goes first: the application loads it (a global table) before it takes sales.
    let mut producer = Producer::new(hub)?;
    producer.write(plan.catalog(), |_| {})?;
    let mut apps = Vec::new();
    let dirs: Vec<PathBuf> = (0..args.instances.max(1)).map(state_dir).collect();
    for (i, dir) in dirs.iter().enumerate() {
        apps.push(start_app(hub, dir, (i == 0).then_some(args.metrics.as_str()))?);
    }
    wait_running(&apps)?;
    println!(
        "retail: {} application instance(s) running (exactly_once_v2, RocksDB stores); metrics on http://{}/metrics",
        apps.len(),
        args.metrics
    );

    let total = plan.trading().len();
    producer.write(plan.trading(), |event| match event {
        WriteEvent::Written(n) => progress(&format!("generator: {n}/{total} records written")),
        WriteEvent::Registered { version, id, month } => {
            println!("\rretail: [{month}] the tills write POS schema v{version} (registry id {id})          ");
        }
        WriteEvent::Refused { message, month } => {
            println!("\rretail: [{month}] the registry refused POS schema v3; the tills carry on with v2:");
            println!("        {message}");
        }
    })?;
    println!();

    let expected: usize = generator::months_with_sales(&plan, &config).values().sum();
    let outputs = wait_for_outputs(hub, expected, &apps, stop)?;
    if args.trading.live && !stop.load(Ordering::Relaxed) {
        live(hub, args, &config, &mut producer, &apps, stop)?;
    }
    for app in &mut apps {
        app.close(Duration::from_secs(30))?;
    }
    let outputs = if args.trading.live { Outputs::read(hub)? } else { outputs };
    finish(&outputs, &plan.summary, &producer.schema_events, &args.out)?;
    println!("retail: done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Keeps trading, month after month, at `--rate` records per second until Ctrl-C.
fn live(
    hub: &Hub,
    args: &Args,
    history: &GeneratorConfig,
    producer: &mut Producer,
    apps: &[KafkaStreams],
    stop: &AtomicBool,
) -> Result<(), HubError> {
    let rate = args.trading.rate.max(1);
    println!("retail: live: trading on at {rate} records/s; Ctrl-C stops and prints the report");
    let mut month = history.end();
    while !stop.load(Ordering::Relaxed) {
        let plan = generator::plan(&history.following_month(month));
        let pace = Duration::from_secs_f64(1.0 / f64::from(rate));
        let known = producer.schema_events.clone();
        for upload in &plan.uploads {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            producer.send(&upload.record, upload.at)?;
            std::thread::sleep(pace);
        }
        for (version, id) in producer.schema_events.registered.iter().skip(known.registered.len()) {
            println!("\rretail: [{month}] the tills write POS schema v{version} (registry id {id})          ");
        }
        if let (None, Some(message)) = (&known.v3_refusal, &producer.schema_events.v3_refusal) {
            println!("\rretail: [{month}] the registry refused POS schema v3; the tills carry on with v2:\n        {message}");
        }
        let outputs = Outputs::read(hub)?;
        let state = apps.iter().map(|a| format!("{:?}", a.state())).collect::<Vec<_>>().join(",");
        progress(&format!(
            "live: traded {month}; {} final months, {} forecasts, {} orders, {} dead letters; app {state}",
            outputs.monthly.len(),
            outputs.forecasts.values().map(Vec::len).sum::<usize>(),
            outputs.orders.values().filter(|o| o.is_some()).count(),
            outputs.dead_letters.len()
        ));
        month = month.next();
    }
    println!();
    Ok(())
}

/// Waits until the application has written every expected final month and its forecast, and the
/// outputs have settled.
fn wait_for_outputs(hub: &Hub, expected: usize, apps: &[KafkaStreams], stop: &AtomicBool) -> Result<Outputs, HubError> {
    let mut last_change = Instant::now();
    let mut last = (0, 0, 0, 0);
    loop {
        if let Some(failed) = apps.iter().find(|a| a.state() == State::Error) {
            return Err(HubError::Other(format!("the application failed: {}", failed.error().unwrap_or_default())));
        }
        let outputs = Outputs::read(hub)?;
        let forecasts: usize = outputs.forecasts.values().map(Vec::len).sum();
        let now = (outputs.monthly.len(), forecasts, outputs.orders.len(), outputs.dead_letters.len());
        if now != last {
            last = now;
            last_change = Instant::now();
        }
        progress(&format!(
            "application: {}/{expected} final months, {forecasts} forecasts, {} order proposals, {} dead letters",
            now.0, now.2, now.3
        ));
        let complete = now.0 >= expected && forecasts >= now.0;
        let settled = last_change.elapsed() > if complete { Duration::from_secs(2) } else { Duration::from_secs(30) };
        if settled || stop.load(Ordering::Relaxed) {
            println!();
            if !complete {
                println!("retail: the outputs stopped growing short of the target ({} of {expected} months)", now.0);
            }
            return Ok(outputs);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn finish(
    outputs: &Outputs,
    input: &generator::Summary,
    schema: &SchemaEvents,
    out: &std::path::Path,
) -> Result<(), HubError> {
    print!("{}", report::render(outputs, input, schema, 5));
    std::fs::create_dir_all(out).map_err(|e| HubError::Other(format!("cannot create {}: {e}", out.display())))?;
    let path = out.join("sales-forecast.svg");
    match chart::draw(outputs, 4, &path) {
        Ok(()) => println!("\nChart of monthly sales and forecasts: {}", path.canonicalize().unwrap_or(path).display()),
        Err(e) => println!("\nNo chart: {e}"),
    }
    Ok(())
}

fn start_app(hub: &Hub, dir: &std::path::Path, metrics: Option<&str>) -> Result<KafkaStreams, HubError> {
    let mut config = hub.streams_config(APPLICATION_ID, dir);
    if let Some(address) = metrics {
        config = config.set("metrics.http.address", address);
    }
    let mut app = hub.app(config)?;
    app.start()?;
    Ok(app)
}

fn state_dir(instance: usize) -> PathBuf {
    std::env::temp_dir().join(format!("kstreams-retail-{}-{instance}", std::process::id()))
}

fn wait_running(apps: &[KafkaStreams]) -> Result<(), HubError> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let states: BTreeMap<usize, State> = apps.iter().map(|a| a.state()).enumerate().collect();
        if states.values().all(|s| *s == State::Running) {
            return Ok(());
        }
        if let Some(failed) = apps.iter().find(|a| a.state() == State::Error) {
            return Err(HubError::Other(format!(
                "the application failed to start: {}",
                failed.error().unwrap_or_default()
            )));
        }
        if Instant::now() > deadline {
            return Err(HubError::Other(format!(
                "the application instances are not all running after 120 s: {states:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Checks that the broker and the registry answer, with the command that starts them if not.
fn check_services(hub: &Hub) -> Result<(), HubError> {
    let client = hub.avro()?.client().clone();
    match client.latest("retail-health-check") {
        Ok(_) => Ok(()),
        Err(e) if e.error_code().is_some() => Ok(()), // it answered (40401: no such subject)
        Err(e) => Err(HubError::Other(format!("{e}\nStart the broker and the registry with: scripts/kafka start"))),
    }
}

fn progress(line: &str) {
    print!("\r{line:<100}");
    let _ = std::io::stdout().flush();
}

/// Set on Ctrl-C.
fn ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    std::thread::spawn(move || {
        if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
            runtime.block_on(async {
                let _ = tokio::signal::ctrl_c().await;
            });
            flag.store(true, Ordering::Relaxed);
        }
    });
    stop
}
