//! The application's topology.
//!
//! ```text
//! pos-sales (Avro) ─ join catalog ─┐
//!                                  ├─ merge ─┬─ rejected ──────────────────────────────► retail-dead-letters
//! web-sales (JSON) ─ lines ─ join ─┘         └─ sales ─ by SKU ─ calendar months ─ suppress ─► sales-monthly
//!                                                                        │
//!                                       forecast-state (per SKU) ◄───────┘
//!                                                │
//!                                         join catalog ─────────────────────────────────► sales-forecast
//!                                                │
//! inventory ─ by SKU ─ availability ─────────── join ── order rule ─────────────────────► auto-orders
//!                            └──────── join catalog, by web id ─────────────────────────► web-inventory
//! ```
//!
//! The catalog is a [`GlobalKTable`](kstreams::dsl::GlobalKTable): every instance holds all of it,
//! loaded before any sale is processed, so no sale meets a half-loaded catalog.
//!
//! **Why the two sales feeds have one partition each.** A month closes when *stream time* passes
//! its end plus the grace period, and stream time is per task. A task reading several input
//! partitions takes their records in event-time order, but the tasks of a sub-topology run
//! independently: when a backlog is processed (two years of history at once), the task of one
//! partition can be months ahead of another, and the aggregation downstream, fed by both, would
//! close months before the slower task's sales arrive. With one partition per feed, one task
//! merges both feeds in event-time order, and the sales are then spread over
//! [`RetailSettings::partitions`] partitions by product for the windowed aggregation, the
//! forecasts and the joins, which is where the work is and what scales with instances. For the
//! merge to hold while the feeds are written, the task waits for a feed that runs empty
//! (`max.task.idle.ms`, set by [`Hub::streams_config`](crate::hub::Hub::streams_config)).
//! Live, the skew between partitions is seconds and a partitioned feed would do.

use std::collections::BTreeMap;
use std::time::Duration;

use kstreams::dsl::{
    Consumed, GlobalKTable, Grouped, KStream, KTable, Materialized, Named, Produced, Repartitioned, StreamsBuilder,
    Suppressed,
};
use kstreams::processor::{Processor, ProcessorContext};
use kstreams::record::{Data, Record};
use kstreams::serde::connect::{ChangeEvent, ConnectSchema};
use kstreams::serde::{Serdes, SharedSerde};
use kstreams::topology::Topology;
use kstreams::windowed::Windowed;

use crate::calendar::{CalendarMonths, Month};
use crate::cdc::{
    changed_row, line_changes, local_micros_to_utc_millis, reverse, CdcTopics, LineChange, OrderLineRow, SaleLineRow,
    StockKey, StockRow,
};
use crate::forecast::{ForecastParams, ForecastState};
use crate::model::{
    split_inventory_key, AutoOrder, Availability, Forecast, LocationStock, MonthTotals, MonthlySales, PosSale, Product,
    Rejected, Sale, StockLevel, WebAvailability, WebOrder,
};
use crate::normalize::{check_pos, check_web, web_event_time, web_items, Checked, WebItem};
use crate::orders::propose;

/// The topics the application reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// POS sales, Avro, keyed by store.
    pub pos_sales: String,
    /// Web orders, JSON, keyed by order id.
    pub web_sales: String,
    /// The product catalog, compacted, keyed by SKU and by web id.
    pub catalog: String,
    /// Stock per product and location, compacted, keyed `SKU|location`.
    pub inventory: String,
    /// Final monthly sales per product.
    pub sales_monthly: String,
    /// Next month's forecast per product.
    pub sales_forecast: String,
    /// Proposed orders per product.
    pub auto_orders: String,
    /// Availability per web product.
    pub web_inventory: String,
    /// Records that could not be used, with the reason in headers.
    pub dead_letters: String,
}

impl Default for Topics {
    fn default() -> Self {
        Topics {
            pos_sales: "pos-sales".into(),
            web_sales: "web-sales".into(),
            catalog: "product-catalog".into(),
            inventory: "inventory".into(),
            sales_monthly: "sales-monthly".into(),
            sales_forecast: "sales-forecast".into(),
            auto_orders: "auto-orders".into(),
            web_inventory: "web-inventory".into(),
            dead_letters: "retail-dead-letters".into(),
        }
    }
}

impl Topics {
    /// The default names, each after `prefix` (for runs side by side on one broker).
    ///
    /// ```
    /// assert_eq!(retail::topology::Topics::prefixed("t1.").pos_sales, "t1.pos-sales");
    /// ```
    pub fn prefixed(prefix: &str) -> Topics {
        let d = Topics::default();
        let p = |name: String| format!("{prefix}{name}");
        Topics {
            pos_sales: p(d.pos_sales),
            web_sales: p(d.web_sales),
            catalog: p(d.catalog),
            inventory: p(d.inventory),
            sales_monthly: p(d.sales_monthly),
            sales_forecast: p(d.sales_forecast),
            auto_orders: p(d.auto_orders),
            web_inventory: p(d.web_inventory),
            dead_letters: p(d.dead_letters),
        }
    }

    /// Every topic, inputs first.
    pub fn all(&self) -> [&str; 9] {
        [
            &self.pos_sales,
            &self.web_sales,
            &self.catalog,
            &self.inventory,
            &self.sales_monthly,
            &self.sales_forecast,
            &self.auto_orders,
            &self.web_inventory,
            &self.dead_letters,
        ]
    }
}

/// The application's settings (`retail.*` in the configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct RetailSettings {
    /// The topics.
    pub topics: Topics,
    /// How long after its end a month still takes late till uploads (`retail.grace.hours`).
    pub grace: Duration,
    /// The forecast's smoothing (`retail.forecast.alpha`, `.beta`, `.gamma`).
    pub forecast: ForecastParams,
    /// The web shop's offset from UTC, in minutes (`retail.web.utc.offset.minutes`; Seoul: 540).
    pub web_utc_offset_minutes: i32,
    /// Partitions of the topics keyed by product (and of the inventory and outputs): how far the
    /// aggregations spread over instances (`retail.partitions`).
    pub partitions: i32,
}

impl Default for RetailSettings {
    fn default() -> Self {
        RetailSettings {
            topics: Topics::default(),
            grace: Duration::from_secs(3 * 86_400),
            forecast: ForecastParams::default(),
            web_utc_offset_minutes: 540,
            partitions: 6,
        }
    }
}

impl RetailSettings {
    /// Applies `retail.*` settings; an unknown key or a bad value is an error naming the setting.
    ///
    /// ```
    /// use retail::topology::RetailSettings;
    /// let s = RetailSettings::default().with([("retail.grace.hours", "48"), ("retail.forecast.alpha", "0.3")]).unwrap();
    /// assert_eq!(s.grace.as_secs(), 48 * 3600);
    /// assert!(RetailSettings::default().with([("retail.grace.hours", "soon")]).unwrap_err().contains("retail.grace.hours"));
    /// ```
    pub fn with<K: AsRef<str>, V: AsRef<str>>(
        mut self,
        settings: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, String> {
        for (key, value) in settings {
            let (key, value) = (key.as_ref(), value.as_ref().trim());
            let number = |what: &str| value.parse::<f64>().map_err(|_| format!("{key}: `{value}` is not {what}"));
            match key {
                "retail.grace.hours" => {
                    let hours = number("a number of hours")?;
                    if !(0.0..=24.0 * 365.0).contains(&hours) {
                        return Err(format!("{key}: {hours} hours is out of range (0 to a year)"));
                    }
                    self.grace = Duration::from_secs_f64(hours * 3600.0);
                }
                "retail.forecast.alpha" => self.forecast.alpha = number("a number")?,
                "retail.forecast.beta" => self.forecast.beta = number("a number")?,
                "retail.forecast.gamma" => self.forecast.gamma = number("a number")?,
                "retail.partitions" => {
                    self.partitions = value
                        .parse()
                        .ok()
                        .filter(|p| (1..=1000).contains(p))
                        .ok_or_else(|| format!("{key}: `{value}` is not a partition count (1-1000)"))?
                }
                "retail.web.utc.offset.minutes" => {
                    self.web_utc_offset_minutes =
                        value.parse().map_err(|_| format!("{key}: `{value}` is not a number of minutes"))?
                }
                other => {
                    return Err(format!(
                        "unknown setting `{other}` (retail.grace.hours, retail.forecast.alpha, retail.forecast.beta, retail.forecast.gamma, \
                         retail.partitions, retail.web.utc.offset.minutes)"
                    ))
                }
            }
        }
        self.forecast = self.forecast.validate()?;
        Ok(self)
    }
}

/// Builds the topology. `pos_serde` reads the POS topic (in the application: Avro through the
/// Schema Registry; in tests it may be backed by in-memory schemas).
pub fn build(settings: &RetailSettings, pos_serde: SharedSerde<PosSale>) -> kstreams::Result<Topology> {
    let topics = &settings.topics;
    let b = builder();
    let catalog = catalog(&b, topics);

    // Both channels, checked against the catalog.
    let pos_topic = topics.pos_sales.clone();
    let pos = b
        .stream(
            &topics.pos_sales,
            Consumed::with(Serdes::string(), pos_serde)
                .with_timestamp_extractor(|_: &String, line: &PosSale, _, _| line.sold_at)
                .with_name("pos-sales-source"),
        )
        .left_join_global_named(
            &catalog,
            |_, line: &PosSale| line.sku.clone(),
            move |line, product| check_pos(&pos_topic, line, product),
            Named::as_("pos-check"),
        );
    let (web_topic, offset) = (topics.web_sales.clone(), settings.web_utc_offset_minutes);
    let web = b
        .stream(
            &topics.web_sales,
            Consumed::with(Serdes::string(), Serdes::json::<WebOrder>())
                .with_timestamp_extractor(move |_: &String, order: &WebOrder, ts, _| {
                    // An unreadable time keeps the record's own; the check sends it to the dead letters.
                    web_event_time(&order.ordered_at, offset).unwrap_or(ts)
                })
                .with_name("web-sales-source"),
        )
        .flat_map_values_named(web_items, Named::as_("web-lines"))
        .left_join_global_named(
            &catalog,
            |_, item: &WebItem| item.line.product_id.clone(),
            move |item, product| check_web(&web_topic, item, product, offset),
            Named::as_("web-check"),
        );

    // Stock per product and location.
    let stock = b
        .table(
            &topics.inventory,
            Consumed::with(Serdes::string(), Serdes::json::<StockLevel>()),
            Materialized::as_("inventory"),
        )
        .filter(|key: &String, _| split_inventory_key(key).is_some());
    let availability = availability(&stock, |key: &String| {
        let (sku, location) = split_inventory_key(key).unwrap_or_default();
        (sku.to_string(), location.to_string())
    });
    outputs(settings, &catalog, &pos, &web, &availability, OutputFormat::Json)?;
    b.build()
}

/// Builds the topology on the shop's databases as Kafka Connect brings them in (see [`cdc`]):
/// Debezium's change events of the tills' sale lines, the web shop's order lines and the stock
/// table instead of the shop's own Kafka feeds; the forecasts and orders written as JSON with
/// Connect schemas, which the JDBC sink connector puts into the `planning` database.
///
/// [`cdc`]: crate::cdc
pub fn build_on_databases(settings: &RetailSettings, cdc: &CdcTopics) -> kstreams::Result<Topology> {
    let b = builder();
    let catalog = catalog(&b, &settings.topics);
    let offset = settings.web_utc_offset_minutes;

    let pos_topic = cdc.sale_lines.clone();
    let pos = b
        .stream(
            &cdc.sale_lines,
            Consumed::with(Serdes::bytes(), Serdes::nullable(Serdes::change_event::<SaleLineRow>()))
                .with_timestamp_extractor(
                    move |_: &Vec<u8>, event: &Option<ChangeEvent<SaleLineRow>>, _, partition_time| {
                        changed_row(event)
                            .map_or(untimed(partition_time), |row| local_micros_to_utc_millis(row.sold_at, offset))
                    },
                )
                .with_name("sale-lines-source"),
        )
        .flat_map_named(
            move |_, event| {
                line_changes(event)
                    .into_iter()
                    .map(|change| {
                        let line = change.row.to_pos_sale(offset);
                        (line.store.clone(), LineChange { reversal: change.reversal, row: line })
                    })
                    .collect::<Vec<_>>()
            },
            Named::as_("sale-line-changes"),
        )
        .left_join_global_named(
            &catalog,
            |_, change: &LineChange<PosSale>| change.row.sku.clone(),
            move |change, product| {
                let checked = check_pos(&pos_topic, &change.row, product);
                if change.reversal {
                    reverse(checked)
                } else {
                    checked
                }
            },
            Named::as_("pos-check"),
        );
    let web_topic = cdc.order_lines.clone();
    let web = b
        .stream(
            &cdc.order_lines,
            Consumed::with(Serdes::bytes(), Serdes::nullable(Serdes::change_event::<OrderLineRow>()))
                .with_timestamp_extractor(
                    |_: &Vec<u8>, event: &Option<ChangeEvent<OrderLineRow>>, _, partition_time| {
                        changed_row(event).and_then(OrderLineRow::event_time).unwrap_or(untimed(partition_time))
                    },
                )
                .with_name("order-lines-source"),
        )
        .flat_map_named(
            move |_, event| {
                line_changes(event)
                    .into_iter()
                    .map(|change| {
                        let item = change.row.to_web_item(offset);
                        (item.order_id.clone(), LineChange { reversal: change.reversal, row: item })
                    })
                    .collect::<Vec<_>>()
            },
            Named::as_("order-line-changes"),
        )
        .left_join_global_named(
            &catalog,
            |_, change: &LineChange<WebItem>| change.row.line.product_id.clone(),
            move |change, product| {
                let checked = check_web(&web_topic, &change.row, product, offset);
                if change.reversal {
                    reverse(checked)
                } else {
                    checked
                }
            },
            Named::as_("web-check"),
        );

    // The stock table as a table: a delete's change event (its `after` is null) removes the row,
    // as the tombstone after it does.
    let stock = b
        .table(
            &cdc.stock,
            Consumed::with(Serdes::connect_json::<StockKey>(), Serdes::change_event::<StockRow>()),
            Materialized::as_("stock-cdc"),
        )
        .filter(|_, event: &ChangeEvent<StockRow>| event.after.is_some())
        .map_values(|event: ChangeEvent<StockRow>| StockLevel {
            units: event.after.map_or(0, |row| i64::from(row.on_hand)),
        });
    let availability = availability(&stock, |key: &StockKey| (key.product_id.clone(), key.location.clone()));
    outputs(settings, &catalog, &pos, &web, &availability, OutputFormat::Connect)?;
    b.build()
}

/// The event time of a change event that carries no row (a tombstone after a delete): its
/// partition's time. Its Kafka timestamp is when Debezium wrote it, which is no event time: taken
/// as one, it would order the feed behind every other feed's records, and move stream time ahead.
fn untimed(partition_time: i64) -> i64 {
    partition_time.max(0)
}

/// How the forecasts and orders are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutputFormat {
    /// Plain JSON.
    Json,
    /// JSON with Kafka Connect schemas (`{"schema":…,"payload":…}`), keys too, for the JDBC sink.
    Connect,
}

fn builder() -> StreamsBuilder {
    let b = StreamsBuilder::new();
    b.default_serde(Serdes::json::<Sale>())
        .default_serde(Serdes::json::<MonthTotals>())
        .default_serde(Serdes::json::<MonthlySales>())
        .default_serde(Serdes::json::<ForecastState>())
        .default_serde(Serdes::nullable(Serdes::json::<ForecastState>()))
        .default_serde(Serdes::json::<Forecast>())
        .default_serde(Serdes::json::<LocationStock>())
        .default_serde(Serdes::json::<Availability>())
        .default_serde(Serdes::nullable(Serdes::json::<Availability>()))
        .default_serde(Serdes::json::<Option<AutoOrder>>())
        .default_serde(Serdes::json::<Rejected>())
        .default_serde(Serdes::json::<StockLevel>());
    b
}

/// The product catalog, on every instance, loaded before any sale is processed.
fn catalog(b: &StreamsBuilder, topics: &Topics) -> GlobalKTable<String, Product> {
    b.global_table(
        &topics.catalog,
        Consumed::with(Serdes::string(), Serdes::json::<Product>()),
        Materialized::as_("catalog"),
    )
}

/// Units on hand per product, across locations, from stock levels keyed by anything that names
/// a product and a location (`split`).
fn availability<K: Data>(
    stock: &KTable<K, StockLevel>,
    split: impl Fn(&K) -> (String, String) + Send + Sync + 'static,
) -> KTable<String, Availability> {
    stock
        .group_by(
            move |key: &K, level: &StockLevel| {
                let (sku, location) = split(key);
                (sku, LocationStock { location, units: level.units })
            },
            Grouped::as_("stock-by-product"),
        )
        .aggregate(
            Availability::default,
            |_, stock: LocationStock, mut a: Availability| {
                a.by_location.insert(stock.location, stock.units);
                a
            },
            |_, stock: LocationStock, mut a: Availability| {
                a.by_location.remove(&stock.location);
                a
            },
            Materialized::as_("availability"),
        )
}

/// Everything after the checked sales and the stock: dead letters, monthly sales, forecasts,
/// orders and the web shop's view.
fn outputs(
    settings: &RetailSettings,
    catalog: &GlobalKTable<String, Product>,
    pos: &KStream<String, Checked>,
    web: &KStream<String, Checked>,
    availability: &KTable<String, Availability>,
    format: OutputFormat,
) -> kstreams::Result<()> {
    let topics = &settings.topics;
    let checked = pos.merge_named(web, Named::as_("both-channels"));

    checked
        .process_named(|| DeadLetters, Named::as_("dead-letter-headers"), &[])
        .to(&topics.dead_letters, Produced::with(Serdes::string(), Serdes::json::<Rejected>()));

    // Monthly sales per product: only final months (suppressed until the month's grace is over).
    let monthly = checked
        .flat_map_named(|_, c: Checked| c.sale().map(|sale| (sale.sku.clone(), sale)), Named::as_("sales"))
        .repartition(Repartitioned::as_("sales-by-product").with_number_of_partitions(settings.partitions))
        .group_by_key(Grouped::as_("sales-by-product"))
        .windowed_by(CalendarMonths::with_grace(settings.grace))
        .aggregate(
            MonthTotals::default,
            |_, sale: Sale, totals: MonthTotals| totals.with_sale(&sale),
            Materialized::as_("monthly-sales"),
        )
        .suppress(Suppressed::until_window_closes().with_name("final-months"))
        .to_stream()
        .flat_map_named(
            |window: Windowed<String>, totals: Option<MonthTotals>| {
                totals.map(|t| (window.key.clone(), monthly_sales(&window, t)))
            },
            Named::as_("month-totals"),
        );
    monthly
        .map_named(|sku, m: MonthlySales| (format!("{sku}|{}", m.month), m), Named::as_("month-key"))
        .to(&topics.sales_monthly, Produced::with(Serdes::string(), Serdes::json::<MonthlySales>()));

    // Forecasts: one per product and closed month, for the month after it.
    let params = settings.forecast;
    let forecasts = monthly
        .group_by_key(Grouped::as_("months-by-product"))
        .aggregate(
            ForecastState::default,
            move |_, m: MonthlySales, mut state: ForecastState| {
                state.observe(m.month, m.baseline_units as f64, params);
                state
            },
            // Every month's forecast goes out, not only the last one between two commits.
            Materialized::as_("forecast-state").with_caching_disabled(),
        )
        .to_stream()
        .flat_map_named(|sku, state: Option<ForecastState>| state.map(|s| (sku, s)), Named::as_("forecast-states"))
        .join_global_named(
            catalog,
            |sku: &String, _| sku.clone(),
            |state: &ForecastState, product: &Product| forecast_of(state, product),
            Named::as_("forecast-product"),
        )
        .flat_map_named(|sku, f: Option<Forecast>| f.map(|f| (sku, f)), Named::as_("forecasts"));
    let (sku_serde, forecast_serde, order_serde) = match format {
        OutputFormat::Json => {
            (Serdes::string(), Serdes::json::<Forecast>(), Serdes::nullable(Serdes::json::<AutoOrder>()))
        }
        OutputFormat::Connect => (
            Serdes::connect_json_with_schema::<String>(ConnectSchema::string()),
            Serdes::connect_json_with_schema::<Forecast>(Forecast::connect_schema()),
            Serdes::nullable(Serdes::connect_json_with_schema::<AutoOrder>(AutoOrder::connect_schema())),
        ),
    };
    forecasts.to(&topics.sales_forecast, Produced::with(sku_serde.clone(), forecast_serde));

    // Orders: the latest forecast against the stock now; a tombstone when none is needed.
    forecasts
        .to_table(Materialized::as_("latest-forecast"))
        .left_join(availability, |f: &Forecast, stock: Option<&Availability>| {
            propose(f, stock.map(Availability::total).unwrap_or(0))
        })
        .to_stream()
        .map_values_named(|order: Option<Option<AutoOrder>>| order.flatten(), Named::as_("order-or-none"))
        .to(&topics.auto_orders, Produced::with(sku_serde, order_serde));

    // The web shop's view, keyed by its product id.
    availability
        .to_stream()
        .join_global_named(
            catalog,
            |sku: &String, _| sku.clone(),
            |stock: &Option<Availability>, product: &Product| {
                (product.web_id.clone(), web_view(stock.as_ref(), product))
            },
            Named::as_("web-product"),
        )
        .map_named(|_, (web_id, view): (String, Option<WebAvailability>)| (web_id, view), Named::as_("web-key"))
        .to(
            &topics.web_inventory,
            Produced::with(Serdes::string(), Serdes::nullable(Serdes::json::<WebAvailability>())),
        );
    Ok(())
}

fn monthly_sales(window: &Windowed<String>, t: MonthTotals) -> MonthlySales {
    MonthlySales {
        sku: window.key.clone(),
        month: Month::from_millis(window.window.start()),
        units: t.units,
        promo_units: t.promo_units,
        baseline_units: t.units - t.promo_units,
        revenue_cents: t.revenue_cents,
        lines: t.lines,
    }
}

fn forecast_of(state: &ForecastState, product: &Product) -> Option<Forecast> {
    let (month, units) = state.forecast()?;
    Some(Forecast {
        sku: product.sku.clone(),
        name: product.name.clone(),
        month,
        units,
        history_months: state.months,
        level: state.level,
        seasonal_index: state.seasonal[month.index_in_year()],
        safety_stock: product.safety_stock,
        pack_size: product.pack_size,
    })
}

fn web_view(stock: Option<&Availability>, product: &Product) -> Option<WebAvailability> {
    let stock = stock?;
    let stores: BTreeMap<String, i64> = stock
        .by_location
        .iter()
        .filter(|(l, u)| l.starts_with("store-") && **u > 0)
        .map(|(l, u)| (l.clone(), *u))
        .collect();
    Some(WebAvailability {
        product_id: product.web_id.clone(),
        sku: product.sku.clone(),
        name: product.name.clone(),
        units: stock.total(),
        stores,
    })
}

/// Sends rejected lines on with headers saying why and where they came from (the names Kafka
/// Streams' dead-letter handler uses, and `retail.reason`).
struct DeadLetters;

impl Processor<String, Checked, String, Rejected> for DeadLetters {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, Rejected>,
        record: Record<String, Checked>,
    ) -> kstreams::Result<()> {
        let Checked::Rejected(rejected) = record.value else { return Ok(()) };
        let mut headers = record.headers.clone();
        headers.add("retail.reason", Some(rejected.reason.clone().into_bytes()));
        headers.add("__streams.errors.exception", Some(b"RejectedRecord".to_vec()));
        headers.add("__streams.errors.message", Some(rejected.detail.clone().into_bytes()));
        if let Some(meta) = ctx.record_metadata() {
            headers.add("__streams.errors.topic", Some(meta.topic.to_string().into_bytes()));
            headers.add("__streams.errors.partition", Some(meta.partition.to_string().into_bytes()));
            headers.add("__streams.errors.offset", Some(meta.offset.to_string().into_bytes()));
        }
        ctx.forward(Record { key: record.key, value: rejected, timestamp: record.timestamp, headers })
    }
}
