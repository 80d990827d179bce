//! Seeded inputs for the differential tests: random keys, out-of-order and late timestamps, tombstones.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// One input record: topic, key, value (`None` = tombstone), timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub topic: &'static str,
    pub key: String,
    pub value: Option<String>,
    pub timestamp: i64,
}

/// What a family's topology reads, and so how its inputs are drawn.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// `in`: keys k0..k3, values 0..99.
    Stream,
    /// `in` and `in2`, interleaved.
    TwoStreams,
    /// `in` (values 0..99) and the table `tbl` (words, tombstones).
    StreamTable,
    /// Tables `t1` and `t2` on keys k0..k3 (words, tombstones, also for absent keys).
    TwoTables,
    /// Table `t1` with values `f<0..3>|<n>` and table `t2` keyed f0..f3.
    ForeignKey,
    /// Global table `glob` keyed f0..f3 and stream `in` with values `f<0..3>|<n>`.
    Global,
    /// Table `t1` on keys k0..k5 with values `g<0..2>|<n>`: rows that move between groups.
    Regrouped,
}

/// A clock that mostly moves forward and now and then goes back (out-of-order and late records).
struct Clock {
    now: i64,
}

impl Clock {
    fn next(&mut self, rng: &mut StdRng) -> i64 {
        self.now += rng.random_range(0..5);
        if rng.random_range(0..4) == 0 {
            (self.now - rng.random_range(1..=20)).max(0)
        } else {
            self.now
        }
    }
}

fn word(rng: &mut StdRng) -> String {
    format!("v{}", rng.random_range(0..10))
}

fn tombstone_or(rng: &mut StdRng, value: String) -> Option<String> {
    if rng.random_range(0..5) == 0 {
        None
    } else {
        Some(value)
    }
}

/// The inputs of case `seed` of a family shaped `shape`.
pub fn generate(shape: Shape, seed: u64) -> Vec<Input> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut clock = Clock { now: 0 };
    let count = rng.random_range(25..60);
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let timestamp = clock.next(&mut rng);
        let k = |rng: &mut StdRng, n: u32| format!("k{}", rng.random_range(0..n));
        let number = |rng: &mut StdRng| rng.random_range(0..100).to_string();
        let (topic, key, value) = match shape {
            Shape::Stream => ("in", k(&mut rng, 4), Some(number(&mut rng))),
            Shape::TwoStreams => {
                let topic = if rng.random_range(0..2) == 0 { "in" } else { "in2" };
                (topic, k(&mut rng, 4), Some(number(&mut rng)))
            }
            Shape::StreamTable => {
                if rng.random_range(0..2) == 0 {
                    ("in", k(&mut rng, 4), Some(number(&mut rng)))
                } else {
                    let w = word(&mut rng);
                    ("tbl", k(&mut rng, 4), tombstone_or(&mut rng, w))
                }
            }
            Shape::TwoTables => {
                let topic = if rng.random_range(0..2) == 0 { "t1" } else { "t2" };
                let w = word(&mut rng);
                (topic, k(&mut rng, 4), tombstone_or(&mut rng, w))
            }
            Shape::ForeignKey => {
                if rng.random_range(0..3) < 2 {
                    let v = format!("f{}|{}", rng.random_range(0..4), number(&mut rng));
                    ("t1", k(&mut rng, 6), tombstone_or(&mut rng, v))
                } else {
                    let w = word(&mut rng);
                    ("t2", format!("f{}", rng.random_range(0..4)), tombstone_or(&mut rng, w))
                }
            }
            Shape::Global => {
                if rng.random_range(0..3) < 2 {
                    let v = format!("f{}|{}", rng.random_range(0..4), number(&mut rng));
                    ("in", k(&mut rng, 4), Some(v))
                } else {
                    let w = word(&mut rng);
                    ("glob", format!("f{}", rng.random_range(0..4)), tombstone_or(&mut rng, w))
                }
            }
            Shape::Regrouped => {
                let v = format!("g{}|{}", rng.random_range(0..3), number(&mut rng));
                ("t1", k(&mut rng, 6), tombstone_or(&mut rng, v))
            }
        };
        out.push(Input { topic, key, value, timestamp });
    }
    out
}
