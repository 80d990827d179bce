//! The memory shared by every RocksDB instance of a process.

use std::sync::{Arc, OnceLock};

use rocksdb::{BlockBasedOptions, Cache, DBCompressionType, Options, WriteBufferManager};

/// Lets users tune the options of each RocksDB store, like Kafka Streams' `RocksDBConfigSetter`.
///
/// It runs after the shared cache and write-buffer manager are set, for every store and every
/// column family; replacing the block-based table factory detaches the store from the shared cache.
/// A closure `Fn(&str, &mut Options)` is one too.
///
/// ```
/// use kstreams_state::rocksdb::{RocksDbConfigSetter, RocksDbResources};
///
/// /// Bigger memtables for the store that takes most writes.
/// struct BigCounts;
///
/// impl RocksDbConfigSetter for BigCounts {
///     fn set_config(&self, store_name: &str, options: &mut rocksdb::Options) {
///         if store_name == "counts" {
///             options.set_write_buffer_size(64 << 20);
///         }
///     }
/// }
///
/// let resources = RocksDbResources::new(256 << 20, 0.5).with_config_setter(BigCounts);
/// let _options = resources.options("counts");
/// ```
pub trait RocksDbConfigSetter: Send + Sync {
    /// Adjusts `options` of the store called `store_name`.
    fn set_config(&self, store_name: &str, options: &mut Options);
}

impl<F> RocksDbConfigSetter for F
where
    F: Fn(&str, &mut Options) + Send + Sync,
{
    fn set_config(&self, store_name: &str, options: &mut Options) {
        self(store_name, options)
    }
}

/// One bounded block cache and one write-buffer manager for all RocksDB stores of a process.
///
/// Memtables are charged to the block cache (as Kafka Streams' bounded-memory recipe does), so the
/// total off-heap memory of RocksDB stays near `total_off_heap_bytes` however many partitions and
/// stores the process hosts. Index and filter blocks live in the cache too.
///
/// ```
/// use std::sync::Arc;
/// use kstreams_state::rocksdb::RocksDbResources;
///
/// let resources = Arc::new(
///     RocksDbResources::new(64 << 20, 0.5)
///         .with_config_setter(|_store: &str, opts: &mut rocksdb::Options| opts.set_max_background_jobs(2)),
/// );
/// assert_eq!(resources.total_off_heap_bytes(), 64 << 20);
/// assert_eq!(resources.memtable_bytes(), 32 << 20);
/// ```
#[derive(Clone)]
pub struct RocksDbResources {
    cache: Cache,
    write_buffer_manager: WriteBufferManager,
    total_off_heap_bytes: usize,
    memtable_bytes: usize,
    config_setter: Option<Arc<dyn RocksDbConfigSetter>>,
}

impl std::fmt::Debug for RocksDbResources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksDbResources")
            .field("total_off_heap_bytes", &self.total_off_heap_bytes)
            .field("memtable_bytes", &self.memtable_bytes)
            .field("config_setter", &self.config_setter.is_some())
            .finish()
    }
}

/// The default total when nothing is configured: 64 MiB, half of it for memtables (a process-wide
/// bound; Kafka Streams' defaults give every store its own 50 MiB cache and 3 × 16 MiB memtables).
pub const DEFAULT_TOTAL_OFF_HEAP_BYTES: usize = 64 << 20;

impl RocksDbResources {
    /// A cache of `total_off_heap_bytes`, of which `memtable_share` (clamped to 0.05..=0.9) may be
    /// memtables.
    pub fn new(total_off_heap_bytes: usize, memtable_share: f64) -> Self {
        let share = if memtable_share.is_finite() { memtable_share.clamp(0.05, 0.9) } else { 0.5 };
        let total = total_off_heap_bytes.max(1 << 20);
        let memtable_bytes = (total as f64 * share) as usize;
        let cache = Cache::new_lru_cache(total);
        let write_buffer_manager =
            WriteBufferManager::new_write_buffer_manager_with_cache(memtable_bytes, false, cache.clone());
        RocksDbResources {
            cache,
            write_buffer_manager,
            total_off_heap_bytes: total,
            memtable_bytes,
            config_setter: None,
        }
    }

    /// Adds a hook that tunes each store's options.
    pub fn with_config_setter(mut self, setter: impl RocksDbConfigSetter + 'static) -> Self {
        self.config_setter = Some(Arc::new(setter));
        self
    }

    /// The process-wide default (64 MiB, half memtables), used when no resources are configured.
    pub fn shared_default() -> Arc<RocksDbResources> {
        static DEFAULT: OnceLock<Arc<RocksDbResources>> = OnceLock::new();
        DEFAULT.get_or_init(|| Arc::new(RocksDbResources::new(DEFAULT_TOTAL_OFF_HEAP_BYTES, 0.5))).clone()
    }

    /// The configured total of off-heap bytes.
    pub fn total_off_heap_bytes(&self) -> usize {
        self.total_off_heap_bytes
    }

    /// The share of the total that memtables may use, in bytes.
    pub fn memtable_bytes(&self) -> usize {
        self.memtable_bytes
    }

    /// Bytes currently held by the shared block cache (memtable reservations included).
    pub fn block_cache_usage(&self) -> usize {
        self.cache.get_usage()
    }

    /// Bytes currently used by memtables across all stores.
    pub fn memtable_usage(&self) -> usize {
        self.write_buffer_manager.get_usage()
    }

    /// Options for the store `store_name`: the shared cache and write-buffer manager, then the hook.
    pub fn options(&self, store_name: &str) -> Options {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(DBCompressionType::Lz4);
        opts.set_write_buffer_manager(&self.write_buffer_manager);
        // 8 MiB memtables, at most 3 (Kafka Streams: 16 MiB): smaller ones keep the process small
        // and their skip lists short; the shared write-buffer manager bounds the total anyway.
        opts.set_write_buffer_size(8 << 20);
        opts.set_max_write_buffer_number(3);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&self.cache);
        table.set_block_size(4 << 10);
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        table.set_bloom_filter(10.0, false);
        opts.set_block_based_table_factory(&table);
        if let Some(setter) = &self.config_setter {
            setter.set_config(store_name, &mut opts);
        }
        opts
    }
}
