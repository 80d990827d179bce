//! The results: a Markdown table of ratios (kstreams / Kafka Streams) and absolute figures, a JSON
//! file, an SVG chart, and `BENCHMARKS.md`.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::json;

use crate::latency::Latency;
use crate::run::{Measurement, Side};

/// One pair: kstreams then Kafka Streams on the same scenario and guarantee.
pub struct Pair {
    pub scenario: String,
    pub guarantee: &'static str,
    pub index: usize,
    pub kstreams: Result<Measurement, String>,
    pub java: Result<Measurement, String>,
    /// Why the pair is void, if it is.
    pub void: Option<String>,
}

/// One S0 ceiling run.
pub struct Ceiling {
    pub scenario: String,
    pub guarantee: &'static str,
    pub result: Result<Measurement, String>,
}

/// One fixed-rate latency run.
pub struct LatencyRun {
    pub scenario: String,
    pub guarantee: &'static str,
    pub side: Side,
    pub rate: u64,
    pub result: Result<Latency, String>,
}

/// Everything a harness run produced.
pub struct Results {
    pub date: String,
    pub machine: String,
    pub command: String,
    pub profile: String,
    pub sizes: String,
    pub pinning: String,
    pub pairs: Vec<Pair>,
    pub ceilings: Vec<Ceiling>,
    pub latencies: Vec<LatencyRun>,
}

/// Median, min and max.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

fn spread(mut values: Vec<f64>) -> Option<Spread> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 };
    Some(Spread { median, min: values[0], max: values[n - 1] })
}

fn ratio(s: Option<Spread>) -> String {
    match s {
        Some(s) => format!("**{:.2}×** ({:.2}–{:.2})", s.median, s.min, s.max),
        None => "–".into(),
    }
}

fn num(v: Option<Spread>, scale: f64, decimals: usize) -> String {
    v.map_or("–".into(), |s| format!("{:.*}", decimals, s.median / scale))
}

fn per_cpu(m: &Measurement) -> f64 {
    m.records as f64 / m.cpu_secs
}

/// The (scenario, guarantee) groups in first-seen order.
fn groups(results: &Results) -> Vec<(String, &'static str)> {
    let mut out: Vec<(String, &'static str)> = Vec::new();
    for p in &results.pairs {
        if !out.iter().any(|(s, g)| s == &p.scenario && *g == p.guarantee) {
            out.push((p.scenario.clone(), p.guarantee));
        }
    }
    out
}

/// Per group: the valid pairs' (kstreams, java) measurements.
fn valid<'a>(results: &'a Results, scenario: &str, guarantee: &str) -> Vec<(&'a Measurement, &'a Measurement)> {
    results
        .pairs
        .iter()
        .filter(|p| p.scenario == scenario && p.guarantee == guarantee && p.void.is_none())
        .filter_map(|p| Some((p.kstreams.as_ref().ok()?, p.java.as_ref().ok()?)))
        .collect()
}

/// The summary figures of one group.
pub struct Summary {
    pub scenario: String,
    pub guarantee: &'static str,
    pub pairs: usize,
    pub valid: usize,
    pub rate_total: Option<Spread>,
    pub rate_steady: Option<Spread>,
    pub per_cpu: Option<Spread>,
    pub rss: Option<Spread>,
    pub ks: [Option<Spread>; 4],
    pub java: [Option<Spread>; 4],
}

pub fn summaries(results: &Results) -> Vec<Summary> {
    groups(results)
        .into_iter()
        .map(|(scenario, guarantee)| {
            let ok = valid(results, &scenario, guarantee);
            let pairs = results.pairs.iter().filter(|p| p.scenario == scenario && p.guarantee == guarantee).count();
            let r = |f: &dyn Fn(&Measurement, &Measurement) -> f64| spread(ok.iter().map(|&(k, j)| f(k, j)).collect());
            let side = |kstreams: bool| {
                let ms: Vec<&Measurement> = ok.iter().map(|&(k, j)| if kstreams { k } else { j }).collect();
                [
                    spread(ms.iter().map(|m| m.rate_total).collect()),
                    spread(ms.iter().map(|m| m.rate_steady).collect()),
                    spread(ms.iter().map(|m| m.cpu_secs_per_million).collect()),
                    spread(ms.iter().map(|m| m.peak_rss_bytes as f64).collect()),
                ]
            };
            Summary {
                valid: ok.len(),
                pairs,
                rate_total: r(&|k, j| k.rate_total / j.rate_total),
                rate_steady: r(&|k, j| k.rate_steady / j.rate_steady),
                per_cpu: r(&|k, j| per_cpu(k) / per_cpu(j)),
                rss: r(&|k, j| k.peak_rss_bytes as f64 / j.peak_rss_bytes as f64),
                ks: side(true),
                java: side(false),
                scenario,
                guarantee,
            }
        })
        .collect()
}

fn ceiling_spread(results: &Results, scenario: &str) -> Option<Spread> {
    spread(
        results
            .ceilings
            .iter()
            .filter(|c| c.scenario == scenario)
            .filter_map(|c| c.result.as_ref().ok())
            .map(|m| m.rate_steady)
            .collect(),
    )
}

/// The Markdown report (tables only; `BENCHMARKS.md` wraps it).
pub fn markdown(results: &Results) -> String {
    let mut md = String::new();
    let sums = summaries(results);
    if !sums.is_empty() {
        md.push_str(
            "Ratios are kstreams / Kafka Streams: median over the valid pairs, (min–max). Higher is better for \
             throughput and records per CPU-second, lower for RSS.\n\n",
        );
        md.push_str(
            "| scenario | guarantee | valid pairs | records/s (total) | records/s (steady) | records per CPU-s | peak RSS |\n\
             |---|---|---|---|---|---|---|\n",
        );
        for s in &sums {
            let _ = writeln!(
                md,
                "| {} | {} | {}/{} | {} | {} | {} | {} |",
                s.scenario,
                s.guarantee,
                s.valid,
                s.pairs,
                ratio(s.rate_total),
                ratio(s.rate_steady),
                ratio(s.per_cpu),
                ratio(s.rss)
            );
        }
        md.push_str(
            "\nAbsolute figures (medians over the valid pairs; ks = kstreams, KS = Kafka Streams):\n\n\
             | scenario | guarantee | ks records/s total | KS records/s total | ks records/s steady | KS records/s steady | ks CPU s / M records | KS CPU s / M records | ks peak RSS MiB | KS peak RSS MiB |\n\
             |---|---|---|---|---|---|---|---|---|---|\n",
        );
        for s in &sums {
            let mib = 1024.0 * 1024.0;
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                s.scenario,
                s.guarantee,
                num(s.ks[0], 1.0, 0),
                num(s.java[0], 1.0, 0),
                num(s.ks[1], 1.0, 0),
                num(s.java[1], 1.0, 0),
                num(s.ks[2], 1.0, 2),
                num(s.java[2], 1.0, 2),
                num(s.ks[3], mib, 0),
                num(s.java[3], mib, 0)
            );
        }
    }
    if !results.ceilings.is_empty() {
        md.push_str(
            "\nS0 ceilings (librdkafka, no framework; median over the runs):\n\n\
             | ceiling | guarantee | runs ok | records/s total | records/s steady | CPU s / M records | peak RSS MiB |\n\
             |---|---|---|---|---|---|---|\n",
        );
        let mut seen: Vec<&str> = Vec::new();
        for c in &results.ceilings {
            if seen.contains(&c.scenario.as_str()) {
                continue;
            }
            seen.push(&c.scenario);
            let ok: Vec<&Measurement> = results
                .ceilings
                .iter()
                .filter(|x| x.scenario == c.scenario)
                .filter_map(|x| x.result.as_ref().ok())
                .collect();
            let runs = results.ceilings.iter().filter(|x| x.scenario == c.scenario).count();
            let _ = writeln!(
                md,
                "| {} | {} | {}/{} | {} | {} | {} | {} |",
                c.scenario,
                c.guarantee,
                ok.len(),
                runs,
                num(spread(ok.iter().map(|m| m.rate_total).collect()), 1.0, 0),
                num(spread(ok.iter().map(|m| m.rate_steady).collect()), 1.0, 0),
                num(spread(ok.iter().map(|m| m.cpu_secs_per_million).collect()), 1.0, 2),
                num(spread(ok.iter().map(|m| m.peak_rss_bytes as f64).collect()), 1024.0 * 1024.0, 0)
            );
        }
        for (guarantee, ceiling) in [("alos", "S0-produce"), ("eos", "S0-txn")] {
            let s1 = sums.iter().find(|s| s.scenario == "S1" && s.guarantee == guarantee);
            if let (Some(s1), Some(c)) = (s1.and_then(|s| s.ks[1]), ceiling_spread(results, ceiling)) {
                let _ = writeln!(
                    md,
                    "\nS1 {guarantee}: kstreams steady state {:.0} records/s = **{:.2}×** the {ceiling} ceiling ({:.0} records/s).",
                    s1.median,
                    s1.median / c.median,
                    c.median
                );
            }
        }
    }
    if !results.latencies.is_empty() {
        md.push_str(
            "\nEnd-to-end latency at a fixed rate (external read_committed consumer, now − input timestamp):\n\n\
             | scenario | guarantee | side | rate (records/s) | records | p50 ms | p99 ms | max ms |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        for l in &results.latencies {
            let side = side_name(l.side);
            match &l.result {
                Ok(r) => {
                    let _ = writeln!(
                        md,
                        "| {} | {} | {side} | {} | {} | {:.0} | {:.0} | {:.0} |",
                        l.scenario, l.guarantee, l.rate, r.records, r.p50_ms, r.p99_ms, r.max_ms
                    );
                }
                Err(e) => {
                    let _ = writeln!(
                        md,
                        "| {} | {} | {side} | {} | failed: {} | | | |",
                        l.scenario,
                        l.guarantee,
                        l.rate,
                        e.replace('|', "/")
                    );
                }
            }
        }
    }
    let failures: Vec<String> = results
        .pairs
        .iter()
        .filter_map(|p| p.void.as_ref().map(|v| format!("- {} {} pair {}: {v}", p.scenario, p.guarantee, p.index)))
        .chain(
            results
                .ceilings
                .iter()
                .filter_map(|c| c.result.as_ref().err().map(|e| format!("- {} {}: {e}", c.scenario, c.guarantee))),
        )
        .collect();
    if !failures.is_empty() {
        md.push_str("\nVoid pairs and failed runs:\n\n");
        md.push_str(&failures.join("\n"));
        md.push('\n');
    }
    md
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Kstreams => "kstreams",
        Side::Java => "Kafka Streams",
        Side::Ceiling => "librdkafka",
    }
}

fn spread_json(s: Option<Spread>) -> serde_json::Value {
    s.map_or(serde_json::Value::Null, |s| json!({"median": s.median, "min": s.min, "max": s.max}))
}

/// Everything, as JSON.
pub fn json(results: &Results) -> serde_json::Value {
    let result = |r: &Result<Measurement, String>| match r {
        Ok(m) => json!(m),
        Err(e) => json!({ "error": e }),
    };
    json!({
        "date": results.date,
        "machine": results.machine,
        "command": results.command,
        "profile": results.profile,
        "sizes": results.sizes,
        "pinning": results.pinning,
        "summary": summaries(results).iter().map(|s| json!({
            "scenario": s.scenario,
            "guarantee": s.guarantee,
            "pairs": s.pairs,
            "valid_pairs": s.valid,
            "ratio_records_per_s_total": spread_json(s.rate_total),
            "ratio_records_per_s_steady": spread_json(s.rate_steady),
            "ratio_records_per_cpu_s": spread_json(s.per_cpu),
            "ratio_peak_rss": spread_json(s.rss),
        })).collect::<Vec<_>>(),
        "pairs": results.pairs.iter().map(|p| json!({
            "scenario": p.scenario,
            "guarantee": p.guarantee,
            "pair": p.index,
            "kstreams": result(&p.kstreams),
            "kafka_streams": result(&p.java),
            "void": p.void,
        })).collect::<Vec<_>>(),
        "ceilings": results.ceilings.iter().map(|c| json!({
            "scenario": c.scenario,
            "guarantee": c.guarantee,
            "result": result(&c.result),
        })).collect::<Vec<_>>(),
        "latency": results.latencies.iter().map(|l| json!({
            "scenario": l.scenario,
            "guarantee": l.guarantee,
            "side": l.side,
            "rate": l.rate,
            "result": match &l.result { Ok(r) => json!(r), Err(e) => json!({ "error": e }) },
        })).collect::<Vec<_>>(),
    })
}

/// A bar chart of the median ratios (throughput, records per CPU-second, peak RSS) per group, with
/// the 1× line, as SVG.
pub fn svg(results: &Results) -> String {
    let sums = summaries(results);
    let bars = [("records/s (steady)", "#4e79a7"), ("records per CPU-s", "#59a14f"), ("peak RSS", "#e15759")];
    let values: Vec<[f64; 3]> = sums
        .iter()
        .map(|s| {
            let m = |x: Option<Spread>| x.map_or(0.0, |s| s.median);
            [m(s.rate_steady), m(s.per_cpu), m(s.rss)]
        })
        .collect();
    let top = values.iter().flatten().fold(2.0f64, |a, b| a.max(*b)).ceil();
    let (left, plot_h, group_w, bar_w, top_pad) = (60.0, 300.0, 90.0, 22.0, 40.0);
    let width = left + group_w * sums.len().max(1) as f64 + 20.0;
    let height = top_pad + plot_h + 90.0;
    let y = |v: f64| top_pad + plot_h - v / top * plot_h;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{left}\" y=\"18\" font-size=\"13\">kstreams / Kafka Streams, median over pairs ({})</text>\n",
        results.profile
    );
    let mut tick = 0.0;
    while tick <= top {
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" x2=\"{:.0}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\"/><text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\">{tick:.0}×</text>",
            width - 10.0,
            y(tick),
            y(tick),
            if tick == 1.0 { "#000" } else { "#ddd" },
            left - 5.0,
            y(tick) + 4.0
        );
        tick += if top > 10.0 { 2.0 } else { 1.0 };
    }
    for (i, (sum, vals)) in sums.iter().zip(&values).enumerate() {
        let x0 = left + group_w * i as f64 + 10.0;
        for (j, v) in vals.iter().enumerate() {
            let x = x0 + bar_w * j as f64;
            let _ = writeln!(
                s,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {v:.2}×</title></rect>",
                y(*v),
                bar_w - 2.0,
                (plot_h - (y(*v) - top_pad)).max(0.0),
                bars[j].1,
                bars[j].0
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x0 + bar_w * 1.5,
            top_pad + plot_h + 15.0,
            sum.scenario,
            x0 + bar_w * 1.5,
            top_pad + plot_h + 28.0,
            sum.guarantee
        );
    }
    for (j, (name, color)) in bars.iter().enumerate() {
        let x = left + 150.0 * j as f64;
        let ly = top_pad + plot_h + 55.0;
        let _ = writeln!(
            s,
            "<rect x=\"{x:.0}\" y=\"{:.0}\" width=\"12\" height=\"12\" fill=\"{color}\"/><text x=\"{:.0}\" y=\"{:.0}\">{name}</text>",
            ly - 10.0,
            x + 16.0,
            ly
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Writes `BENCHMARKS.md`: how to run, then the latest results.
pub fn write_benchmarks_md(path: &Path, results: &Results, tables: &str, chart: &str) -> std::io::Result<()> {
    let template = include_str!("benchmarks_head.md");
    let mut text = template.to_string();
    let _ = write!(
        text,
        "\n## Latest results ({})\n\n\
         - date: {}\n- machine: {}\n- command: `{}`\n- {}\n- sizes: {}\n- chart: `{chart}`\n\n{tables}",
        results.profile, results.date, results.machine, results.command, results.pinning, results.sizes
    );
    std::fs::write(path, text)
}
