//! The report printed at the end of a run: monthly sales and forecasts of the top products, the
//! automatic orders, the dead letters by reason, and what happened to the POS schema.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::calendar::Month;
use crate::generator::Summary;
use crate::hub::{Outputs, SchemaEvents};

/// The SKUs with the most revenue over the last 12 reported months, best first.
pub fn top_products(outputs: &Outputs, count: usize) -> Vec<String> {
    let last = outputs.monthly.keys().map(|(_, m)| *m).max();
    let mut revenue: BTreeMap<String, i64> = BTreeMap::new();
    for ((sku, month), m) in &outputs.monthly {
        if last.is_some_and(|last| month.months_until(last) < 12) {
            *revenue.entry(sku.clone()).or_default() += m.revenue_cents;
        }
    }
    let mut ranked: Vec<(String, i64)> = revenue.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.into_iter().take(count).map(|(sku, _)| sku).collect()
}

fn name_of(outputs: &Outputs, sku: &str) -> String {
    outputs.forecasts.get(sku).and_then(|f| f.last()).map(|f| f.name.clone()).unwrap_or_default()
}

/// The report as text.
pub fn render(outputs: &Outputs, input: &Summary, schema: &SchemaEvents, top: usize) -> String {
    let mut out = String::new();
    let months: Vec<Month> = {
        let mut all: Vec<Month> = outputs.monthly.keys().map(|(_, m)| *m).collect();
        all.sort();
        all.dedup();
        all
    };
    let shown: Vec<Month> = months.iter().rev().take(6).rev().copied().collect();
    let skus = top_products(outputs, top);
    let next = months.last().map(|m| m.next());
    let _ = writeln!(
        out,
        "\nMonthly sales (units) of the top {} products by revenue, and the forecast for {}",
        skus.len(),
        next.map(|m| m.to_string()).unwrap_or_default()
    );
    let _ = write!(out, "{:<30}", "product");
    for m in &shown {
        let _ = write!(out, "{:>9}", m.to_string());
    }
    let _ = writeln!(out, " | forecast");
    for sku in &skus {
        let _ = write!(out, "{:<30}", format!("{sku} {}", name_of(outputs, sku)));
        for m in &shown {
            match outputs.monthly.get(&(sku.clone(), *m)) {
                Some(s) => {
                    let _ = write!(out, "{:>9}", s.units);
                }
                None => {
                    let _ = write!(out, "{:>9}", "-");
                }
            }
        }
        let forecast = outputs.forecasts.get(sku).and_then(|f| f.last()).filter(|f| Some(f.month) == next);
        let _ = writeln!(out, " | {:>8}", forecast.map(|f| format!("{:.1}", f.units)).unwrap_or_else(|| "-".into()));
    }

    let _ = writeln!(out, "\nAutomatic orders (forecast + safety stock - on hand, in whole packs)");
    let _ = writeln!(
        out,
        "{:<30}{:>8}{:>10}{:>8}{:>9}{:>6}{:>8}",
        "product", "for", "forecast", "safety", "on hand", "pack", "order"
    );
    let mut none = Vec::new();
    for (sku, order) in &outputs.orders {
        match order {
            Some(o) => {
                let _ = writeln!(
                    out,
                    "{:<30}{:>8}{:>10.1}{:>8}{:>9}{:>6}{:>8}",
                    format!("{sku} {}", o.name),
                    o.month.to_string(),
                    o.forecast_units,
                    o.safety_stock,
                    o.on_hand,
                    o.pack_size,
                    o.order_units
                );
            }
            None => none.push(sku.as_str()),
        }
    }
    if !none.is_empty() {
        let _ = writeln!(out, "enough stock, no order: {}", none.join(", "));
    }

    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &outputs.dead_letters {
        *reasons.entry(d.reason.as_str()).or_default() += 1;
    }
    let _ = writeln!(out, "\nDead-letter topic: {} records", outputs.dead_letters.len());
    for (reason, count) in &reasons {
        let what = match *reason {
            "unknown-product" => "names a product the catalog does not know",
            "invalid-field" => "a field cannot be used (date-time, price, status)",
            "unreadable" => "could not be deserialized (broken JSON, not Avro, truncated Avro)",
            _ => "",
        };
        let _ = writeln!(out, "  {reason:<16}{count:>6}  {what}");
    }

    let _ = writeln!(out, "\nThe POS schema (subject pos-sales-value)");
    for (version, id) in &schema.registered {
        let _ = writeln!(out, "  v{version}: registry id {id}");
    }
    match &schema.v3_refusal {
        Some(message) => {
            let _ = writeln!(out, "  v3 refused by the registry, the tills kept writing v2: {message}");
        }
        None => {
            let _ = writeln!(out, "  no v3 attempt in this run");
        }
    }

    let _ = writeln!(
        out,
        "\nGenerated history: {} records - POS {} (v1 {}, v2 {}), web orders {}, inventory updates {}, malformed {}",
        input.total(),
        input.pos_v1 + input.pos_v2,
        input.pos_v1,
        input.pos_v2,
        input.web_orders,
        input.inventory_updates,
        input.malformed
    );
    let _ = writeln!(
        out,
        "  returns {} and voided lines {} left out of the sales; {} lines of unknown products",
        input.returns, input.voided, input.unknown_products
    );
    let _ = writeln!(
        out,
        "  till lines uploaded late: {} within the grace period (counted), {} after it (too late for their month)",
        input.late_within_grace, input.late_beyond_grace
    );
    let _ = writeln!(
        out,
        "Output: {} final monthly totals, {} forecasts, {} order proposals, {} web-shop products",
        outputs.monthly.len(),
        outputs.forecasts.values().map(Vec::len).sum::<usize>(),
        outputs.orders.values().filter(|o| o.is_some()).count(),
        outputs.web_inventory.values().filter(|v| v.is_some()).count()
    );
    out
}
