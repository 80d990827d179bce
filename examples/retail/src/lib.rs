//! The retail data hub on kstreams: a retailer's tills (POS) and web shop sell the same products
//! under different ids and formats; the hub turns their sales into monthly sales per product, a
//! forecast of next month's sales, and automatic orders from the forecast and the stock on hand,
//! and shows the web shop each product's availability across stores.
//!
//! - [`model`]: the records on each topic;
//! - [`normalize`]: from each channel's records to one [`Sale`](model::Sale);
//! - [`calendar`]: calendar months as windows;
//! - [`forecast`]: exponential smoothing with seasonal indices;
//! - [`orders`]: the order rule;
//! - [`topology`]: all of it as a kstreams topology;
//! - [`generator`]: a seeded generator of the shop's data;
//! - [`cdc`] and [`database`]: the shop's PostgreSQL databases, brought in by Kafka Connect
//!   (Debezium) and filled from the outputs (the JDBC sink), for the data hub run by `scripts/hub`;
//! - [`hub`]: topics, producing, reading results; [`report`] and [`chart`]: what the user sees;
//!   [`cli`]: the binaries' shared arguments.
//!
//! Run it: `scripts/kafka start && cargo run -p retail`.

pub mod calendar;
pub mod cdc;
pub mod chart;
pub mod cli;
pub mod database;
pub mod forecast;
pub mod generator;
pub mod hub;
pub mod model;
pub mod normalize;
pub mod orders;
pub mod report;
pub mod topology;
