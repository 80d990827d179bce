//! End-to-end benchmark: kstreams against Apache Kafka Streams (the Java peer in
//! `benches/peer-java`) on the same broker, inputs, topologies and settings. See `BENCHMARKS.md`.
//!
//! ```text
//! scripts/kafka start && cargo bench --bench e2e -- [--quick] [--scenarios S1,S2-10k,...]
//!     [--guarantees alos,eos] [--pairs 3] [--latency] [--no-warmup]
//! ```
//!
//! The binary is also the process under test: started with `KSTREAMS_BENCH_APP=<kind>` it runs a
//! kstreams topology or an S0 ceiling ([`apps`]) until SIGTERM.

#[path = "e2e/apps.rs"]
mod apps;
#[path = "e2e/kafka.rs"]
mod kafka;
#[path = "e2e/latency.rs"]
mod latency;
#[path = "e2e/loader.rs"]
mod loader;
#[path = "e2e/measure.rs"]
mod measure;
#[path = "e2e/report.rs"]
mod report;
#[path = "e2e/run.rs"]
mod run;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafka::{Admin, Res};
use run::{Guarantee, Measurement, Scenario, Side, Workspace};

const ALL_SCENARIOS: &[&str] = &["S0", "S1", "S2-10k", "S2-2M", "S3", "S4", "S5"];

/// Command-line options.
struct Options {
    quick: bool,
    scenarios: Vec<String>,
    guarantees: Vec<Guarantee>,
    pairs: usize,
    latency: bool,
    warmup: bool,
}

fn usage() -> &'static str {
    "usage: cargo bench --bench e2e -- [--quick] [--scenarios S0,S1,S2-10k,S2-2M,S3,S4,S5] \
     [--guarantees alos,eos] [--pairs N] [--latency] [--no-warmup]"
}

fn parse(args: &[String]) -> Res<Options> {
    let mut o = Options {
        quick: false,
        scenarios: ALL_SCENARIOS.iter().map(|s| s.to_string()).collect(),
        guarantees: vec![Guarantee::Alos, Guarantee::Eos],
        pairs: 3,
        latency: false,
        warmup: true,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or_else(|| format!("{name} needs a value; {}", usage()));
        match arg.as_str() {
            "--bench" => {}
            "--quick" => o.quick = true,
            "--latency" => o.latency = true,
            "--no-warmup" => o.warmup = false,
            "--pairs" => {
                let v = value("--pairs")?;
                o.pairs =
                    v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| format!("--pairs {v}: need a number ≥ 1"))?;
            }
            "--scenarios" => {
                let v = value("--scenarios")?;
                o.scenarios = Vec::new();
                for s in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let known = ALL_SCENARIOS
                        .iter()
                        .find(|k| k.eq_ignore_ascii_case(s))
                        .ok_or_else(|| format!("unknown scenario {s}; known: {}", ALL_SCENARIOS.join(",")))?;
                    o.scenarios.push(known.to_string());
                }
            }
            "--guarantees" => {
                let v = value("--guarantees")?;
                o.guarantees = Vec::new();
                for g in v.split(',').map(str::trim) {
                    o.guarantees.push(match g {
                        "alos" | "at_least_once" => Guarantee::Alos,
                        "eos" | "exactly_once_v2" => Guarantee::Eos,
                        other => return Err(format!("unknown guarantee {other}: alos or eos")),
                    });
                }
            }
            other => return Err(format!("unknown argument {other}; {}", usage())),
        }
    }
    Ok(o)
}

/// Input sizes of a profile.
struct Sizes {
    events: u64,
    many_keys: u64,
    latency_rate: u64,
    latency_secs: u64,
    timeout: Duration,
}

fn sizes(quick: bool) -> Sizes {
    if quick {
        Sizes {
            events: 200_000,
            many_keys: 400_000,
            latency_rate: 10_000,
            latency_secs: 10,
            timeout: Duration::from_secs(240),
        }
    } else {
        Sizes {
            events: 1_000_000,
            many_keys: 2_000_000,
            latency_rate: 20_000,
            latency_secs: 20,
            timeout: Duration::from_secs(900),
        }
    }
}

fn main() {
    if let Ok(kind) = std::env::var(apps::APP_ENV) {
        std::process::exit(apps::run_child(&kind));
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; without it (e.g. `cargo test --benches`) only check it builds.
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,rdkafka::client=off".into()))
        .try_init();
    let options = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("e2e: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = harness(&options, &args) {
        eprintln!("e2e: {e}");
        std::process::exit(1);
    }
}

/// `<cargo target dir>/bench-e2e`, from this executable's path (`<target>/release/deps/e2e-…`).
fn out_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let target = exe.ancestors().nth(3).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("target"));
    target.join("bench-e2e")
}

fn ensure_peer_built(peer_dir: &Path) -> Res<()> {
    if peer_dir.join("target/peer-java.jar").exists() {
        return Ok(());
    }
    println!("building the Java peer (mvn -q package in {}) ...", peer_dir.display());
    let status = Command::new("mvn")
        .args(["-q", "package"])
        .current_dir(peer_dir)
        .status()
        .map_err(|e| format!("mvn: {e} (Maven is needed for the Java peer)"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("building the Java peer failed ({status})"))
    }
}

fn date() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "unknown date".into(), |s| s.trim().to_string())
}

/// Pins the broker and this process to [`run::HARNESS_CPU`]; returns the broker pids.
fn pin_everything() -> Res<(Vec<u32>, String)> {
    let brokers = measure::broker_pids();
    if brokers.is_empty() {
        return Err("no broker pid under /var/cache/kstreams/run/*/pid (scripts/kafka start)".into());
    }
    for pid in &brokers {
        measure::pin(*pid, run::HARNESS_CPU)?;
    }
    measure::pin(std::process::id(), run::HARNESS_CPU)?;
    let text = format!(
        "pinning: the app under test (kstreams, Kafka Streams' JVM or the S0 process) runs on core {} \
         (`taskset -c {}`); the broker (pid {brokers:?}), loader and harness on core {} (`taskset -a -pc {}`)",
        run::APP_CPU,
        run::APP_CPU,
        run::HARNESS_CPU,
        run::HARNESS_CPU
    );
    Ok((brokers, text))
}

fn harness(options: &Options, args: &[String]) -> Res<()> {
    let started = Instant::now();
    let bootstrap = kafka::bootstrap();
    let admin = Admin::new(&bootstrap)?;
    admin
        .topics_with_prefix("__none__")
        .map_err(|e| format!("{e}: is a broker running at {bootstrap}? (scripts/kafka start)"))?;
    let out = out_dir();
    std::fs::create_dir_all(out.join("logs")).map_err(|e| format!("{}: {e}", out.display()))?;
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let prefix = format!("bench-{secs}");
    let s = sizes(options.quick);
    let ws = Workspace::new(bootstrap.clone(), admin, prefix.clone(), out.clone(), s.timeout);
    ensure_peer_built(&ws.peer_dir)?;
    let (brokers, pinning) = pin_everything()?;
    println!("{pinning}");

    let inputs = loader::load(&ws.admin, &bootstrap, &prefix, s.events, s.many_keys)?;
    let scenario = |id: &str| -> Scenario {
        let (kind, input, expected) = match id {
            "S1" => ("S1", &inputs.events, inputs.events.nonzero_first),
            "S2-10k" => ("S2", &inputs.events, inputs.events.records),
            "S2-2M" => ("S2", &inputs.many_keys, inputs.many_keys.records),
            // Event time starts far from 0, so every record falls into exactly 2 hopping windows.
            "S3" => ("S3", &inputs.events, 2 * inputs.events.records),
            "S4" => ("S4", &inputs.events, inputs.events.records),
            "S5" => ("S5", &inputs.events, inputs.events.records),
            "S0-consume" => ("s0-consume", &inputs.events, 0),
            "S0-produce" => ("s0-produce", &inputs.events, inputs.events.records),
            _ => ("s0-txn", &inputs.events, inputs.events.records),
        };
        Scenario {
            id: id.to_string(),
            kind: kind.to_string(),
            input: input.topic.clone(),
            records: input.records,
            table: (kind == "S4").then(|| inputs.table.topic.clone()),
            expected_output: expected,
        }
    };

    let mut results = report::Results {
        date: date(),
        machine: measure::machine(),
        command: format!(
            "cargo bench --bench e2e -- {}",
            args.iter().filter(|a| *a != "--bench").cloned().collect::<Vec<_>>().join(" ")
        ),
        profile: if options.quick { "quick profile".into() } else { "default profile".into() },
        sizes: format!(
            "{} events over 10K keys (S0, S1, S2-10k, S3, S4's stream, S5), {} distinct keys once each (S2-2M), \
             a 100K-key table (S4), 100-byte values, 4 partitions, 1 stream thread, cache 0; \
             {} valid pairs wanted per scenario and guarantee{}; latency mode {} records/s for {} s",
            inputs.events.records,
            inputs.many_keys.records,
            options.pairs,
            if options.warmup { " after one warm-up pair" } else { "" },
            s.latency_rate,
            s.latency_secs
        ),
        pinning,
        pairs: Vec::new(),
        ceilings: Vec::new(),
        latencies: Vec::new(),
    };

    let framework: Vec<&String> = options.scenarios.iter().filter(|s| *s != "S0").collect();
    if options.warmup {
        if let (Some(first), Some(g)) = (framework.first(), options.guarantees.first()) {
            println!("warm-up: {first} {} (not measured)", g.short());
            let sc = scenario(first.as_str());
            for side in [Side::Kstreams, Side::Java] {
                if let Err(e) = run::measure(&ws, side, &sc, *g) {
                    println!("  warm-up {side:?} failed: {e}");
                }
            }
        }
    }

    for guarantee in &options.guarantees {
        if options.scenarios.iter().any(|s| s == "S0") {
            let ceilings: &[&str] =
                if *guarantee == Guarantee::Alos { &["S0-consume", "S0-produce"] } else { &["S0-txn"] };
            for &id in ceilings {
                let sc = scenario(id);
                for i in 1..=options.pairs {
                    let result = run::measure(&ws, Side::Ceiling, &sc, *guarantee);
                    print_run(&format!("{id} {} run {i}", guarantee.short()), "librdkafka", &result);
                    results.ceilings.push(report::Ceiling {
                        scenario: id.to_string(),
                        guarantee: guarantee.short(),
                        result,
                    });
                }
            }
        }
        for id in &framework {
            let sc = scenario(id.as_str());
            for i in 1..=options.pairs {
                let label = format!("{id} {} pair {i}", guarantee.short());
                let ks = run::measure(&ws, Side::Kstreams, &sc, *guarantee);
                print_run(&label, "kstreams", &ks);
                let java = run::measure(&ws, Side::Java, &sc, *guarantee);
                print_run(&label, "Kafka Streams", &java);
                let void = gate(&sc, &ks, &java);
                if let Some(why) = &void {
                    println!("  !!!!! {label} is VOID: {why}");
                }
                results.pairs.push(report::Pair {
                    scenario: id.to_string(),
                    guarantee: guarantee.short(),
                    index: i,
                    kstreams: ks,
                    java,
                    void,
                });
            }
        }
    }

    if options.latency {
        for guarantee in &options.guarantees {
            for kind in ["S1", "S2"] {
                for side in [Side::Kstreams, Side::Java] {
                    let result = latency::measure(&ws, side, kind, *guarantee, s.latency_rate, s.latency_secs);
                    match &result {
                        Ok(l) => println!(
                            "latency {kind} {} {side:?}: p50 {:.0} ms, p99 {:.0} ms ({} records)",
                            guarantee.short(),
                            l.p50_ms,
                            l.p99_ms,
                            l.records
                        ),
                        Err(e) => println!("latency {kind} {} {side:?} FAILED: {e}", guarantee.short()),
                    }
                    results.latencies.push(report::LatencyRun {
                        scenario: kind.to_string(),
                        guarantee: guarantee.short(),
                        side,
                        rate: s.latency_rate,
                        result,
                    });
                }
            }
        }
    }

    ws.admin.delete(&[inputs.events.topic.clone(), inputs.many_keys.topic.clone(), inputs.table.topic.clone()]);
    let _ = std::fs::remove_dir_all(&ws.state_root);
    let all_cpus = format!("0-{}", measure::cpu_count() - 1);
    for pid in brokers {
        let _ = measure::pin(pid, &all_cpus);
    }

    let tables = report::markdown(&results);
    println!("\n{tables}");
    let json_path = out.join("results.json");
    let svg_path = out.join("ratios.svg");
    let json = serde_json::to_string_pretty(&report::json(&results)).map_err(|e| format!("results JSON: {e}"))?;
    std::fs::write(&json_path, json).map_err(|e| format!("{}: {e}", json_path.display()))?;
    std::fs::write(&svg_path, report::svg(&results)).map_err(|e| format!("{}: {e}", svg_path.display()))?;
    let md_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
    report::write_benchmarks_md(&md_path, &results, &tables, &svg_path.display().to_string())
        .map_err(|e| format!("{}: {e}", md_path.display()))?;
    println!(
        "wrote {}, {} and {} in {:.1} min",
        json_path.display(),
        svg_path.display(),
        md_path.display(),
        started.elapsed().as_secs_f64() / 60.0
    );
    Ok(())
}

fn print_run(label: &str, side: &str, result: &Res<Measurement>) {
    match result {
        Ok(m) => println!(
            "{label} {side:>13}: {:>9.0} rec/s total, {:>9.0} steady, {:>6.2} CPU s/M, RSS {:>5.0} MiB, out {}",
            m.rate_total,
            m.rate_steady,
            m.cpu_secs_per_million,
            m.peak_rss_bytes as f64 / 1048576.0,
            m.output.map_or("-".into(), |d| format!("{} records, sum {:016x}", d.count, d.checksum))
        ),
        Err(e) => println!("{label} {side:>13}: FAILED: {e}"),
    }
}

/// The correctness gate: both runs succeeded and wrote the same multiset of records.
fn gate(scenario: &Scenario, ks: &Res<Measurement>, java: &Res<Measurement>) -> Option<String> {
    let (ks, java) = match (ks, java) {
        (Ok(k), Ok(j)) => (k, j),
        (Err(e), _) => return Some(format!("kstreams run failed: {e}")),
        (_, Err(e)) => return Some(format!("Kafka Streams run failed: {e}")),
    };
    if ks.output != java.output {
        return Some(format!(
            "outputs differ: kstreams {:?}, Kafka Streams {:?} (expected {} records)",
            ks.output, java.output, scenario.expected_output
        ));
    }
    match ks.output {
        Some(d) if d.count != scenario.expected_output => {
            Some(format!("both wrote {} records, expected {}", d.count, scenario.expected_output))
        }
        _ => None,
    }
}
