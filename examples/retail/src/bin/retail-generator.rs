//! `retail-generator`: writes the shop's data (POS sales in Avro, web orders in JSON, the product
//! catalog and inventory) to Kafka, as the shop's systems would.
//!
//! ```text
//! retail-generator                      # 24 months of trading, as fast as the broker takes it
//! retail-generator --live --rate 100    # then keep trading at 100 records/s until Ctrl-C
//! ```
//!
//! It writes to existing topics (`cargo run -p retail` creates them, or create them yourself).

use std::time::Duration;

use clap::Parser;
use retail::generator::{self, GeneratorConfig};
use retail::hub::{Hub, Producer, WriteEvent};

/// Writes the shop's data to Kafka.
#[derive(Parser, Debug)]
#[command(name = "retail-generator")]
struct Args {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KSTREAMS_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// The Schema Registry.
    #[arg(long, env = "KSTREAMS_REGISTRY_URL", default_value = "http://127.0.0.1:8081")]
    registry: String,
    /// The seed: the same seed writes the same records.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Months of trading.
    #[arg(long, default_value_t = 24)]
    months: u32,
    /// Then keep trading, a month at a time, until Ctrl-C.
    #[arg(long)]
    live: bool,
    /// Records per second in live mode.
    #[arg(long, default_value_t = 200)]
    rate: u32,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("retail-generator: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), retail::hub::HubError> {
    let hub = Hub::new(&args.bootstrap, &args.registry);
    let config = GeneratorConfig { seed: args.seed, months: args.months.max(1), ..GeneratorConfig::default() };
    let mut producer = Producer::new(&hub)?;
    let plan = generator::plan(&config);
    let written = producer.write(&plan.uploads, |event| match event {
        WriteEvent::Written(_) => {}
        WriteEvent::Registered { version, id, month } => {
            println!("[{month}] POS schema v{version} registered as id {id}")
        }
        WriteEvent::Refused { message, month } => println!("[{month}] the registry refused POS schema v3: {message}"),
    })?;
    println!("{written} records written ({:?})", plan.summary);
    if !args.live {
        return Ok(());
    }
    let mut month = config.end();
    let mut chunk = 0;
    loop {
        let live = GeneratorConfig {
            seed: config.seed + 1 + chunk,
            start: month,
            months: 1,
            close_last_month: false,
            ..config.clone()
        };
        for upload in generator::plan(&live).uploads {
            producer.send(&upload.record, upload.at)?;
            std::thread::sleep(Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1))));
        }
        println!("traded {month}");
        month = month.next();
        chunk += 1;
    }
}
