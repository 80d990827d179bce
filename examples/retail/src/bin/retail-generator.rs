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
use retail::cli::{Services, Trading};
use retail::generator;
use retail::hub::{Producer, WriteEvent};

/// Writes the shop's data to Kafka.
#[derive(Parser, Debug)]
#[command(name = "retail-generator")]
struct Args {
    #[command(flatten)]
    services: Services,
    #[command(flatten)]
    trading: Trading,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("retail-generator: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), retail::hub::HubError> {
    let config = args.trading.config();
    let mut producer = Producer::new(&args.services.hub())?;
    let plan = generator::plan(&config);
    let written = producer.write(&plan.uploads, |event| match event {
        WriteEvent::Written(_) => {}
        WriteEvent::Registered { version, id, month } => {
            println!("[{month}] POS schema v{version} registered as id {id}")
        }
        WriteEvent::Refused { message, month } => println!("[{month}] the registry refused POS schema v3: {message}"),
    })?;
    println!("{written} records written ({:?})", plan.summary);
    if !args.trading.live {
        return Ok(());
    }
    let pause = Duration::from_secs_f64(1.0 / f64::from(args.trading.rate.max(1)));
    let mut month = config.end();
    loop {
        for upload in generator::plan(&config.following_month(month)).uploads {
            producer.send(&upload.record, upload.at)?;
            std::thread::sleep(pause);
        }
        println!("traded {month}");
        month = month.next();
    }
}
