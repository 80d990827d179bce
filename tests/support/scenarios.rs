//! Test binaries with `harness = false` (their scenarios run one after another, each owning the
//! broker or the processes it starts): libtest's conventions for them.

use std::time::Instant;

/// Runs the `scenarios` that the command line asks for, after `prepare` (which may panic with a
/// clear message, e.g. when no broker answers), one after another, and prints libtest's summary
/// line; exits 1 if one failed.
pub fn run(scenarios: &[(&str, fn())], prepare: impl FnOnce()) {
    let args = Args::parse(std::env::args().skip(1));
    let chosen: Vec<_> = scenarios.iter().filter(|(n, _)| args.wants(n)).collect();
    if args.list {
        for (name, _) in &chosen {
            println!("{name}: test");
        }
        return;
    }
    if chosen.is_empty() {
        eprintln!("test result: ok. 0 passed; 0 failed; {} filtered out", scenarios.len());
        return;
    }
    prepare();
    let mut failed = Vec::new();
    for (name, scenario) in &chosen {
        eprintln!("scenario {name} ...");
        let started = Instant::now();
        match std::panic::catch_unwind(scenario) {
            Ok(()) => eprintln!("scenario {name} ok ({:.0} s)", started.elapsed().as_secs_f64()),
            Err(_) => {
                eprintln!("scenario {name} FAILED");
                failed.push(*name);
            }
        }
    }
    let (passed, filtered) = (chosen.len() - failed.len(), scenarios.len() - chosen.len());
    let result = if failed.is_empty() { "ok" } else { "FAILED" };
    eprintln!("test result: {result}. {passed} passed; {} failed; {filtered} filtered out", failed.len());
    if !failed.is_empty() {
        eprintln!("failed: {failed:?}");
        std::process::exit(1);
    }
}

/// The libtest arguments the scenarios honour: name filters (any may match; `--exact` for whole
/// names), `--skip <filter>`, and `--list`. Others (`--nocapture`, `--test-threads=1`, …) are
/// accepted and ignored: the scenarios run one after another, their apps' output interleaved.
#[derive(Default)]
struct Args {
    filters: Vec<String>,
    skip: Vec<String>,
    exact: bool,
    list: bool,
}

impl Args {
    fn parse(args: impl Iterator<Item = String>) -> Args {
        let mut parsed = Args::default();
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--exact" => parsed.exact = true,
                "--list" => parsed.list = true,
                "--skip" => parsed.skip.extend(args.next()),
                // Flags that take a value as the next argument.
                "--test-threads" | "--format" | "--color" | "--logfile" | "-Z" => {
                    args.next();
                }
                flag if flag.starts_with('-') => {}
                filter => parsed.filters.push(filter.to_string()),
            }
        }
        parsed
    }

    fn matches(&self, filter: &str, name: &str) -> bool {
        if self.exact {
            name == filter
        } else {
            name.contains(filter)
        }
    }

    fn wants(&self, name: &str) -> bool {
        (self.filters.is_empty() || self.filters.iter().any(|f| self.matches(f, name)))
            && !self.skip.iter().any(|f| self.matches(f, name))
    }
}
