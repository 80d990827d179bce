//! The shop's databases around the hub (PostgreSQL, run by `scripts/hub`): the tills' and the web
//! shop's sales and the stock written as those systems would, and the `planning` tables that the
//! JDBC sink connector fills from the application's outputs.
//!
//! Each run uses databases named after a prefix (`shop_pos`, `shop_webshop`, `shop_inventory`,
//! `shop_planning` for the prefix `shop_`), created with their connectors by
//! `scripts/hub deploy <prefix>` from `examples/retail/hub/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, NaiveDateTime, Utc};
use postgres::{Client, NoTls, Statement};

use crate::calendar::Month;
use crate::generator::{Record, Upload};
use crate::hub::HubError;
use crate::model::{AutoOrder, Forecast, PosSale, WebAvailability, WebOrder};

/// `scripts/hub` of this repository.
pub fn hub_script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/hub")
}

/// Runs `scripts/hub` with `args` and returns what it printed on stdout; its stderr passes
/// through (it says what it does), and a failure is an error with its exit status.
pub fn hub_script(args: &[&str]) -> Result<String, HubError> {
    let path = hub_script_path();
    let output = Command::new("bash")
        .arg(&path)
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| HubError::Other(format!("cannot run {}: {e}", path.display())))?;
    if !output.status.success() {
        return Err(HubError::Other(format!(
            "`scripts/hub {}` failed ({}); see its messages above",
            args.join(" "),
            output.status
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The databases of one prefix on the hub's PostgreSQL.
#[derive(Debug, Clone)]
pub struct ShopDatabases {
    /// The prefix of the databases' names (`shop_`).
    pub prefix: String,
    /// PostgreSQL's port on 127.0.0.1 (`KSTREAMS_PG_PORT`, default 55432).
    pub port: u16,
    /// The folder where the file sink writes (`scripts/hub`'s `files`).
    pub files: PathBuf,
}

impl ShopDatabases {
    /// The databases of `prefix`, on the port and folder `scripts/hub` reports.
    pub fn of(prefix: &str) -> Result<ShopDatabases, HubError> {
        let port = hub_script(&["pg-port"])?;
        let port = port.parse().map_err(|_| HubError::Other(format!("scripts/hub pg-port printed `{port}`")))?;
        let files = PathBuf::from(hub_script(&["files-dir"])?);
        Ok(ShopDatabases { prefix: prefix.to_string(), port, files })
    }

    /// A connection to database `<prefix><name>`.
    pub fn connect(&self, name: &str) -> Result<Client, HubError> {
        let dbname = format!("{}{name}", self.prefix);
        let mut client = Client::connect(
            &format!("host=127.0.0.1 port={} user=postgres password=postgres dbname={dbname}", self.port),
            NoTls,
        )
        .map_err(|e| {
            HubError::Other(format!("cannot connect to PostgreSQL database {dbname} on port {}: {e}; is the hub running? (scripts/hub start)", self.port))
        })?;
        // The shop's systems commit one change at a time; waiting for each to reach the disk is
        // the database's business, not the example's.
        client.batch_execute("SET synchronous_commit = off").map_err(sql("setting up the session"))?;
        Ok(client)
    }

    /// The file the web shop reads its availability from (the FileStream sink's).
    pub fn web_inventory_file(&self) -> PathBuf {
        self.files.join(format!("{}web-inventory.jsonl", self.prefix))
    }
}

fn sql(what: &'static str) -> impl Fn(postgres::Error) -> HubError {
    move |e| match e.as_db_error() {
        Some(db) => HubError::Other(format!("PostgreSQL, {what}: {} ({})", db.message(), db.code().code())),
        None => HubError::Other(format!("PostgreSQL, {what}: {e}")),
    }
}

/// A change the shop's systems made, as the application will see it: a sale line counted
/// (`reversal: false`) or withdrawn (`reversal: true`: a correction's old row, a deleted line, a
/// refunded order), or a stock level set or removed.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A till's line.
    Pos {
        /// The line.
        sale: PosSale,
        /// Whether it is withdrawn.
        reversal: bool,
    },
    /// A web order's lines.
    Web {
        /// The order (status `PAID`).
        order: WebOrder,
        /// Whether its lines are withdrawn.
        reversal: bool,
    },
    /// A stock level (`None`: the row was deleted).
    Stock {
        /// `SKU|location`.
        key: String,
        /// Units on hand.
        units: Option<i64>,
    },
}

/// How often the tills' operators correct a line (every n-th line gets its quantity raised by
/// one) and void one after the fact (every m-th line is deleted).
const CORRECT_EVERY: u64 = 41;
const DELETE_EVERY: u64 = 97;

/// Writes a generated run into the shop's databases as the tills, the web shop and the warehouse
/// would: a sale line per till line, an order and its lines per web order (a refund marks the
/// order and deletes its lines), stock levels upserted and deleted; and now and then a till line
/// corrected or voided right after it was rung up.
pub struct ShopWriter {
    pos: Client,
    web: Client,
    stock: Client,
    statements: Statements,
    /// The shop's offset from UTC in minutes: the tills' clocks show local time.
    utc_offset_minutes: i32,
    next_line: BTreeMap<(String, String), i32>,
    pos_lines: u64,
    /// Rows changed per table (`sale_lines`, `orders`, `order_lines`, `stock`): each is one
    /// change event on the table's Debezium topic.
    pub rows_changed: BTreeMap<&'static str, u64>,
}

struct Statements {
    insert_line: Statement,
    correct_line: Statement,
    delete_line: Statement,
    insert_order: Statement,
    insert_order_line: Statement,
    refund_order: Statement,
    delete_order_lines: Statement,
    upsert_stock: Statement,
    delete_stock: Statement,
}

impl ShopWriter {
    /// A writer into `dbs`, for a shop `utc_offset_minutes` ahead of UTC.
    pub fn new(dbs: &ShopDatabases, utc_offset_minutes: i32) -> Result<ShopWriter, HubError> {
        let (mut pos, mut web, mut stock) = (dbs.connect("pos")?, dbs.connect("webshop")?, dbs.connect("inventory")?);
        let statements = Statements {
            insert_line: pos
                .prepare(
                    "INSERT INTO sale_lines (store_code, till_no, receipt_no, line_no, sku, qty, unit_price_cents, promo_code, sold_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .map_err(sql("preparing"))?,
            correct_line: pos
                .prepare("UPDATE sale_lines SET qty = $4 WHERE store_code = $1 AND receipt_no = $2 AND line_no = $3")
                .map_err(sql("preparing"))?,
            delete_line: pos
                .prepare("DELETE FROM sale_lines WHERE store_code = $1 AND receipt_no = $2 AND line_no = $3")
                .map_err(sql("preparing"))?,
            insert_order: web
                .prepare("INSERT INTO orders (order_id, customer_ref, status, placed_at) VALUES ($1, $2, 'PAID', $3)")
                .map_err(sql("preparing"))?,
            insert_order_line: web
                .prepare(
                    "INSERT INTO order_lines (order_id, line_no, product_code, quantity, price, discount_code, created_at) \
                     VALUES ($1, $2, $3, $4, $5::text::numeric, $6, $7)",
                )
                .map_err(sql("preparing"))?,
            refund_order: web
                .prepare("UPDATE orders SET status = 'REFUNDED' WHERE order_id = $1")
                .map_err(sql("preparing"))?,
            delete_order_lines: web
                .prepare("DELETE FROM order_lines WHERE order_id = $1")
                .map_err(sql("preparing"))?,
            upsert_stock: stock
                .prepare(
                    "INSERT INTO stock (product_id, location, on_hand, updated_at) VALUES ($1, $2, $3, now()) \
                     ON CONFLICT (product_id, location) DO UPDATE SET on_hand = EXCLUDED.on_hand, updated_at = now()",
                )
                .map_err(sql("preparing"))?,
            delete_stock: stock
                .prepare("DELETE FROM stock WHERE product_id = $1 AND location = $2")
                .map_err(sql("preparing"))?,
        };
        Ok(ShopWriter {
            pos,
            web,
            stock,
            statements,
            utc_offset_minutes,
            next_line: BTreeMap::new(),
            pos_lines: 0,
            rows_changed: BTreeMap::new(),
        })
    }

    /// Writes `uploads` (records that are not rows of these databases, such as the catalog or
    /// the malformed records of the Kafka feeds, are left out), calling `progress` with the count
    /// written so far now and then, and returns the changes made, in order.
    pub fn write(&mut self, uploads: &[Upload], mut progress: impl FnMut(usize)) -> Result<Vec<Change>, HubError> {
        let mut changes = Vec::new();
        for (n, upload) in uploads.iter().enumerate() {
            match &upload.record {
                Record::Pos { sale, .. } => self.pos_line(sale, &mut changes)?,
                Record::Web { order } => self.web_order(order, &mut changes)?,
                Record::Inventory { key, level } => self.stock_level(key, level.map(|l| l.units), &mut changes)?,
                Record::Catalog { .. }
                | Record::MalformedPos { .. }
                | Record::MalformedWeb { .. }
                | Record::TryPosV3 => {}
            }
            if n % 1000 == 999 {
                progress(n + 1);
            }
        }
        progress(uploads.len());
        Ok(changes)
    }

    fn pos_line(&mut self, sale: &PosSale, changes: &mut Vec<Change>) -> Result<(), HubError> {
        let line_no = self.next_line.entry((sale.store.clone(), sale.receipt.clone())).or_insert(0);
        *line_no += 1;
        let line_no = *line_no;
        let local = DateTime::from_timestamp_millis(sale.sold_at + i64::from(self.utc_offset_minutes) * 60_000)
            .map(|t| t.naive_utc())
            .ok_or_else(|| HubError::Other(format!("sold_at {} is out of range", sale.sold_at)))?;
        let rows = self
            .pos
            .execute(
                &self.statements.insert_line,
                &[
                    &sale.store,
                    &sale.till,
                    &sale.receipt,
                    &line_no,
                    &sale.sku,
                    &sale.quantity,
                    &sale.unit_price_cents,
                    &sale.promo_code,
                    &local,
                ],
            )
            .map_err(sql("inserting a sale line"))?;
        *self.rows_changed.entry("sale_lines").or_default() += rows;
        changes.push(Change::Pos { sale: sale.clone(), reversal: false });
        self.pos_lines += 1;
        if self.pos_lines % CORRECT_EVERY == 0 && sale.quantity > 0 {
            let corrected = PosSale { quantity: sale.quantity + 1, ..sale.clone() };
            let rows = self
                .pos
                .execute(&self.statements.correct_line, &[&sale.store, &sale.receipt, &line_no, &corrected.quantity])
                .map_err(sql("correcting a sale line"))?;
            *self.rows_changed.entry("sale_lines").or_default() += rows;
            changes.push(Change::Pos { sale: sale.clone(), reversal: true });
            changes.push(Change::Pos { sale: corrected, reversal: false });
        } else if self.pos_lines % DELETE_EVERY == 0 {
            let rows = self
                .pos
                .execute(&self.statements.delete_line, &[&sale.store, &sale.receipt, &line_no])
                .map_err(sql("voiding a sale line"))?;
            *self.rows_changed.entry("sale_lines").or_default() += rows;
            changes.push(Change::Pos { sale: sale.clone(), reversal: true });
        }
        Ok(())
    }

    fn web_order(&mut self, order: &WebOrder, changes: &mut Vec<Change>) -> Result<(), HubError> {
        let paid = WebOrder { status: "PAID".into(), ..order.clone() };
        if order.status == "REFUNDED" {
            // A refund of an order placed before: the order is marked, its lines deleted.
            let mut tx = self.web.transaction().map_err(sql("starting a transaction"))?;
            let rows =
                tx.execute(&self.statements.refund_order, &[&order.order_id]).map_err(sql("refunding an order"))?;
            *self.rows_changed.entry("orders").or_default() += rows;
            let rows = tx
                .execute(&self.statements.delete_order_lines, &[&order.order_id])
                .map_err(sql("deleting a refunded order's lines"))?;
            *self.rows_changed.entry("order_lines").or_default() += rows;
            tx.commit().map_err(sql("committing a refund"))?;
            changes.push(Change::Web { order: paid, reversal: true });
            return Ok(());
        }
        let local = NaiveDateTime::parse_from_str(&order.ordered_at, "%Y-%m-%dT%H:%M:%S").map_err(|e| {
            HubError::Other(format!("order {}: ordered_at `{}`: {e}", order.order_id, order.ordered_at))
        })?;
        let placed_at: DateTime<Utc> = local.and_utc() - chrono::Duration::minutes(i64::from(self.utc_offset_minutes));
        let mut tx = self.web.transaction().map_err(sql("starting a transaction"))?;
        let rows = tx
            .execute(&self.statements.insert_order, &[&order.order_id, &None::<String>, &placed_at])
            .map_err(sql("inserting an order"))?;
        *self.rows_changed.entry("orders").or_default() += rows;
        for (i, line) in order.lines.iter().enumerate() {
            let quantity = i32::try_from(line.qty).unwrap_or(i32::MAX);
            let line_no = i32::try_from(i + 1).unwrap_or(i32::MAX);
            let rows = tx
                .execute(
                    &self.statements.insert_order_line,
                    &[&order.order_id, &line_no, &line.product_id, &quantity, &line.price, &order.coupon, &placed_at],
                )
                .map_err(sql("inserting an order line"))?;
            *self.rows_changed.entry("order_lines").or_default() += rows;
        }
        tx.commit().map_err(sql("committing an order"))?;
        changes.push(Change::Web { order: paid, reversal: false });
        Ok(())
    }

    fn stock_level(&mut self, key: &str, units: Option<i64>, changes: &mut Vec<Change>) -> Result<(), HubError> {
        let Some((sku, location)) = key.split_once('|') else { return Ok(()) };
        match units {
            Some(units) => {
                let on_hand = i32::try_from(units).unwrap_or(i32::MAX);
                self.stock
                    .execute(&self.statements.upsert_stock, &[&sku, &location, &on_hand])
                    .map_err(sql("setting a stock level"))?;
                *self.rows_changed.entry("stock").or_default() += 1;
            }
            None => {
                let rows = self
                    .stock
                    .execute(&self.statements.delete_stock, &[&sku, &location])
                    .map_err(sql("deleting a stock level"))?;
                *self.rows_changed.entry("stock").or_default() += rows;
            }
        }
        changes.push(Change::Stock { key: key.to_string(), units });
        Ok(())
    }

    /// Sets the stock of `sku` at `location` to `units` (the warehouse system's update), now.
    pub fn set_stock(&mut self, sku: &str, location: &str, units: i32) -> Result<(), HubError> {
        self.stock
            .execute(&self.statements.upsert_stock, &[&sku, &location, &units])
            .map_err(sql("setting a stock level"))?;
        *self.rows_changed.entry("stock").or_default() += 1;
        Ok(())
    }
}

/// What the `planning` database holds: the JDBC sink's tables.
#[derive(Debug, Clone, Default)]
pub struct Planning {
    /// The latest forecast per SKU (`sales_forecast`).
    pub forecasts: BTreeMap<String, Forecast>,
    /// The order proposal per SKU (`auto_orders`; withdrawn proposals are deleted rows).
    pub orders: BTreeMap<String, AutoOrder>,
}

impl Planning {
    /// Reads both tables (empty until the sink created them).
    pub fn read(dbs: &ShopDatabases) -> Result<Planning, HubError> {
        let mut client = dbs.connect("planning")?;
        let mut planning = Planning::default();
        let month = |text: String| Month::try_from(text).map_err(HubError::Other);
        let rows = query_if_exists(
            &mut client,
            "SELECT sku, name, month, units, history_months, level, seasonal_index, safety_stock, pack_size FROM sales_forecast",
        )?;
        for row in rows {
            let history: i64 = row.get(4);
            let f = Forecast {
                sku: row.get(0),
                name: row.get(1),
                month: month(row.get(2))?,
                units: row.get(3),
                history_months: u32::try_from(history).unwrap_or_default(),
                level: row.get(5),
                seasonal_index: row.get(6),
                safety_stock: row.get(7),
                pack_size: row.get(8),
            };
            planning.forecasts.insert(f.sku.clone(), f);
        }
        let rows = query_if_exists(
            &mut client,
            "SELECT sku, name, month, forecast_units, safety_stock, on_hand, pack_size, order_units FROM auto_orders",
        )?;
        for row in rows {
            let o = AutoOrder {
                sku: row.get(0),
                name: row.get(1),
                month: month(row.get(2))?,
                forecast_units: row.get(3),
                safety_stock: row.get(4),
                on_hand: row.get(5),
                pack_size: row.get(6),
                order_units: row.get(7),
            };
            planning.orders.insert(o.sku.clone(), o);
        }
        Ok(planning)
    }
}

/// Rows of `query`, or none while its table does not exist yet.
fn query_if_exists(client: &mut Client, query: &str) -> Result<Vec<postgres::Row>, HubError> {
    match client.query(query, &[]) {
        Ok(rows) => Ok(rows),
        Err(e) if e.code() == Some(&postgres::error::SqlState::UNDEFINED_TABLE) => Ok(Vec::new()),
        Err(e) => Err(HubError::Other(format!("PostgreSQL, reading the planning tables: {e}"))),
    }
}

/// The web shop's availability file as the FileStream sink wrote it: one JSON value per line, the
/// last line of a product winning. Lines that are not a product's availability (`null`, written
/// for a withdrawn one, which names no product) are counted, not parsed.
#[derive(Debug, Clone, Default)]
pub struct WebInventoryFile {
    /// The latest availability per web product id.
    pub latest: BTreeMap<String, WebAvailability>,
    /// Lines in the file.
    pub lines: usize,
}

impl WebInventoryFile {
    /// Reads `path` (empty if it does not exist yet).
    pub fn read(path: &Path) -> Result<WebInventoryFile, HubError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(HubError::Other(format!("reading {}: {e}", path.display()))),
        };
        let mut file = WebInventoryFile::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            file.lines += 1;
            if let Ok(view) = serde_json::from_str::<WebAvailability>(line) {
                file.latest.insert(view.product_id.clone(), view);
            }
        }
        Ok(file)
    }
}
