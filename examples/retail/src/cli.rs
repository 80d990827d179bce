//! Command-line arguments the binaries share.

use clap::Args;

use crate::generator::GeneratorConfig;
use crate::hub::Hub;

/// Where the broker and the Schema Registry are.
#[derive(Args, Debug, Clone)]
pub struct Services {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KSTREAMS_BOOTSTRAP", default_value = "127.0.0.1:9092", global = true)]
    pub bootstrap: String,
    /// The Schema Registry.
    #[arg(long, env = "KSTREAMS_REGISTRY_URL", default_value = "http://127.0.0.1:8081", global = true)]
    pub registry: String,
}

impl Services {
    /// The hub on these services, with the default topics and settings.
    pub fn hub(&self) -> Hub {
        Hub::new(&self.bootstrap, &self.registry)
    }
}

/// What the generator writes.
#[derive(Args, Debug, Clone)]
pub struct Trading {
    /// The generator's seed: the same seed writes the same records.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Months of trading to generate.
    #[arg(long, default_value_t = 24)]
    pub months: u32,
    /// After the months of history, keep trading live, a month at a time, until Ctrl-C.
    #[arg(long)]
    pub live: bool,
    /// Records per second in live mode.
    #[arg(long, default_value_t = 200)]
    pub rate: u32,
}

impl Trading {
    /// The generator's configuration for the history.
    pub fn config(&self) -> GeneratorConfig {
        GeneratorConfig { seed: self.seed, months: self.months.max(2), ..GeneratorConfig::default() }
    }
}
