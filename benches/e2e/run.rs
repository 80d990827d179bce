//! One measured run: start the process under test pinned to core 1, follow its progress on the
//! broker, sample its CPU time and peak RSS, stop it with SIGTERM, digest its output, clean up.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::apps::{ChildEnv, APP_ENV};
use crate::kafka::{digest_topic, Admin, Digest, Monitor, Res};
use crate::loader::PARTITIONS;

/// The core the process under test runs on; the broker, loader and harness get the other one.
pub const APP_CPU: &str = "1";
pub const HARNESS_CPU: &str = "0";

/// Which implementation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Side {
    #[serde(rename = "kstreams")]
    Kstreams,
    #[serde(rename = "kafka-streams")]
    Java,
    /// An S0 ceiling: plain librdkafka (`s0-consume`, `s0-produce`, `s0-txn`).
    #[serde(rename = "librdkafka")]
    Ceiling,
}

/// `at_least_once` (commit 30 s) or `exactly_once_v2` (commit 100 ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarantee {
    Alos,
    Eos,
}

impl Guarantee {
    pub fn config(self) -> &'static str {
        match self {
            Guarantee::Alos => "at_least_once",
            Guarantee::Eos => "exactly_once_v2",
        }
    }
    pub fn short(self) -> &'static str {
        match self {
            Guarantee::Alos => "alos",
            Guarantee::Eos => "eos",
        }
    }
    pub fn commit_ms(self) -> u64 {
        match self {
            Guarantee::Alos => 30_000,
            Guarantee::Eos => 100,
        }
    }
}

/// A scenario over its input.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// `S0-consume`, `S1`, `S2-10k`, …
    pub id: String,
    /// What the child runs: `S1`..`S5` or an S0 kind (`s0-consume`, `s0-produce`, `s0-txn`).
    pub kind: String,
    pub input: String,
    pub records: u64,
    pub table: Option<String>,
    /// Output records both sides must write (0: no output).
    pub expected_output: u64,
}

/// What one run measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Measurement {
    pub records: u64,
    /// From process start to all input processed.
    pub secs: f64,
    pub rate_total: f64,
    /// Between 10 % and 90 % of the progress.
    pub rate_steady: f64,
    pub cpu_secs: f64,
    pub cpu_secs_per_million: f64,
    pub peak_rss_bytes: u64,
    pub output: Option<Digest>,
}

/// Where the harness keeps logs, state and results.
pub struct Workspace {
    pub bootstrap: String,
    pub admin: Admin,
    pub prefix: String,
    pub out_dir: PathBuf,
    pub state_root: PathBuf,
    pub peer_dir: PathBuf,
    pub timeout: Duration,
    counter: std::cell::Cell<u32>,
}

impl Workspace {
    pub fn new(bootstrap: String, admin: Admin, prefix: String, out_dir: PathBuf, timeout: Duration) -> Workspace {
        let state_root = std::env::temp_dir().join(format!("kstreams-bench-{prefix}"));
        let peer_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peer-java");
        Workspace { bootstrap, admin, prefix, out_dir, state_root, peer_dir, timeout, counter: Default::default() }
    }

    /// A fresh name for a run's app id.
    pub fn next_app_id(&self, label: &str) -> String {
        let n = self.counter.get() + 1;
        self.counter.set(n);
        format!("{}-{n:03}-{}", self.prefix, label.to_lowercase())
    }
}

/// A started process under test and the lines it printed.
pub struct Process {
    pub child: Child,
    pub started: Instant,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Starts `side` running `scenario` pinned to [`APP_CPU`], logging to `log`.
    pub fn spawn(ws: &Workspace, side: Side, scenario: &Scenario, env: &ChildEnv, log: &Path) -> Res<Process> {
        let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", APP_CPU]);
        match side {
            Side::Kstreams | Side::Ceiling => {
                let exe = std::env::current_exe().map_err(|e| format!("bench executable: {e}"))?;
                cmd.arg(exe).env(APP_ENV, &scenario.kind).envs(env.vars());
            }
            Side::Java => {
                cmd.current_dir(&ws.peer_dir).args([
                    "java",
                    "-cp",
                    "target/peer-java.jar:target/lib/*",
                    "dev.kstreams.peer.Peer",
                    "--scenario",
                    scenario.kind.as_str(),
                    "--bootstrap",
                    env.bootstrap.as_str(),
                    "--app-id",
                    env.app_id.as_str(),
                    "--input",
                    env.input.as_str(),
                    "--output",
                    env.output.as_str(),
                    "--guarantee",
                    env.guarantee.as_str(),
                    "--commit-ms",
                    env.commit_ms.as_str(),
                    "--threads",
                    "1",
                    "--state-dir",
                    env.state_dir.as_str(),
                ]);
                if !env.table.is_empty() {
                    cmd.args(["--table", env.table.as_str()]);
                }
            }
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::from(log_file));
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|e| format!("starting the {side:?} process: {e}"))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        if let Some(stdout) = child.stdout.take() {
            let sink = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Ok(mut lines) = sink.lock() {
                        lines.push(line);
                    }
                }
            });
        }
        Ok(Process { child, started, lines })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it printed a line containing `what`.
    pub fn printed(&self, what: &str) -> bool {
        self.lines.lock().map(|l| l.iter().any(|l| l.contains(what))).unwrap_or(false)
    }

    /// Waits until it prints `APP RUNNING` / `PEER RUNNING`.
    pub fn wait_running(&mut self, timeout: Duration) -> Res<()> {
        let deadline = Instant::now() + timeout;
        while !self.printed(" RUNNING") {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("the process exited before running ({status})"));
            }
            if Instant::now() > deadline {
                return Err(format!("the process did not reach RUNNING within {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// SIGTERM, then waits up to a minute for the exit (SIGKILL after that).
    pub fn stop(mut self) -> Res<()> {
        crate::measure::signal(self.pid(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err("the process did not stop within 60 s of SIGTERM".into());
                }
            }
        }
    }
}

/// The settings of one run.
pub fn child_env(ws: &Workspace, scenario: &Scenario, guarantee: Guarantee, app_id: &str, output: &str) -> ChildEnv {
    ChildEnv {
        bootstrap: ws.bootstrap.clone(),
        app_id: app_id.to_string(),
        input: scenario.input.clone(),
        output: output.to_string(),
        table: scenario.table.clone().unwrap_or_default(),
        guarantee: guarantee.config().to_string(),
        commit_ms: guarantee.commit_ms().to_string(),
        state_dir: ws.state_root.join(app_id).to_string_lossy().into_owned(),
    }
}

/// How far the process is, from the broker's point of view.
struct Progress<'a> {
    monitor: Monitor,
    scenario: &'a Scenario,
    guarantee: Guarantee,
    side: Side,
    output: String,
    app_id: String,
}

impl Progress<'_> {
    /// Whether progress is read from the output's end offsets (non-transactional writers with a
    /// long commit interval) rather than from committed input offsets.
    fn by_output(&self) -> bool {
        self.scenario.expected_output > 0 && self.guarantee == Guarantee::Alos && self.scenario.kind != "s0-txn"
    }

    /// The fraction done (0..=1) and whether everything is processed.
    fn check(&self, admin: &Admin) -> Res<(f64, bool)> {
        if self.by_output() {
            let written = self.monitor.end_offsets(&self.output, PARTITIONS)? as f64;
            let expected = self.scenario.expected_output as f64;
            return Ok(((written / expected).min(1.0), written >= expected));
        }
        let committed: i64 = self.monitor.committed(&self.scenario.input, PARTITIONS)?.iter().sum();
        let fraction = committed as f64 / self.scenario.records as f64;
        let mut done = committed as u64 >= self.scenario.records;
        if done && self.side != Side::Ceiling {
            // Repartition topics (S5) must be drained too: under EOS the last offset of a partition
            // is a transaction marker, which the committed offset may stop short of.
            let slack = if self.guarantee == Guarantee::Eos { 1 } else { 0 };
            for topic in admin.topics_with_prefix(&self.app_id)? {
                if !topic.ends_with("-repartition") {
                    continue;
                }
                let partitions = admin.partitions(&topic)?;
                let ends = self.monitor.end_offsets_each(&topic, partitions)?;
                let committed = self.monitor.committed(&topic, partitions)?;
                if ends.iter().zip(&committed).any(|(end, c)| *c < end - slack) {
                    done = false;
                }
            }
        }
        Ok((fraction.min(1.0), done))
    }
}

/// The time at which `samples` (time, fraction) first reach `level`, interpolated.
fn time_at(samples: &[(f64, f64)], level: f64) -> Option<f64> {
    let i = samples.iter().position(|(_, f)| *f >= level)?;
    if i == 0 {
        return Some(samples[0].0);
    }
    let ((t0, f0), (t1, f1)) = (samples[i - 1], samples[i]);
    Some(if f1 > f0 { t0 + (t1 - t0) * (level - f0) / (f1 - f0) } else { t1 })
}

/// Runs `side` on `scenario` once and measures it.
pub fn measure(ws: &Workspace, side: Side, scenario: &Scenario, guarantee: Guarantee) -> Res<Measurement> {
    let label = format!("{}-{}-{}", scenario.id, guarantee.short(), side_label(side));
    let app_id = ws.next_app_id(&label);
    let output = format!("{app_id}-out");
    ws.admin.create(&[(output.as_str(), PARTITIONS)])?;
    let env = child_env(ws, scenario, guarantee, &app_id, &output);
    let log = ws.out_dir.join("logs").join(format!("{app_id}.log"));
    let result = measure_inner(ws, side, scenario, guarantee, &env, &log);
    cleanup(ws, &app_id, &output, Path::new(&env.state_dir));
    result.map_err(|e| format!("{e} (log: {})", log.display()))
}

fn measure_inner(
    ws: &Workspace,
    side: Side,
    scenario: &Scenario,
    guarantee: Guarantee,
    env: &ChildEnv,
    log: &Path,
) -> Res<Measurement> {
    let progress = Progress {
        monitor: Monitor::new(&ws.bootstrap, &env.app_id)?,
        scenario,
        guarantee,
        side,
        output: env.output.clone(),
        app_id: env.app_id.clone(),
    };
    let mut process = Process::spawn(ws, side, scenario, env, log)?;
    let mut samples: Vec<(f64, f64)> = Vec::new();
    let done_at = loop {
        std::thread::sleep(Duration::from_millis(100));
        if let Ok(Some(status)) = process.child.try_wait() {
            return Err(format!("{side:?} {} exited early ({status})", scenario.id));
        }
        let elapsed = process.started.elapsed().as_secs_f64();
        let (fraction, done) = match progress.check(&ws.admin) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("progress of {}: {e}", env.app_id);
                continue;
            }
        };
        samples.push((elapsed, fraction));
        if done {
            break elapsed;
        }
        if process.started.elapsed() > ws.timeout {
            let _ = process.stop();
            return Err(format!(
                "{side:?} {} {}: not done after {:?} ({:.0} % processed)",
                scenario.id,
                guarantee.short(),
                ws.timeout,
                fraction * 100.0
            ));
        }
    };
    let usage = crate::measure::usage(process.pid())?;
    if let Err(e) = process.stop() {
        tracing::warn!("{side:?} {}: {e}", scenario.id);
    }
    let records = scenario.records;
    let rate_total = records as f64 / done_at;
    let rate_steady = match (time_at(&samples, 0.1), time_at(&samples, 0.9)) {
        (Some(a), Some(b)) if b - a > 0.05 => 0.8 * records as f64 / (b - a),
        _ => rate_total,
    };
    let output = if scenario.expected_output > 0 {
        Some(digest_topic(&ws.bootstrap, &env.output, Duration::from_secs(300))?)
    } else {
        None
    };
    Ok(Measurement {
        records,
        secs: done_at,
        rate_total,
        rate_steady,
        cpu_secs: usage.cpu_secs,
        cpu_secs_per_million: usage.cpu_secs / records as f64 * 1e6,
        peak_rss_bytes: usage.peak_rss,
        output,
    })
}

pub fn side_label(side: Side) -> &'static str {
    match side {
        Side::Kstreams => "ks",
        Side::Java => "java",
        Side::Ceiling => "s0",
    }
}

/// Deletes a run's output and internal topics and its state.
pub fn cleanup(ws: &Workspace, app_id: &str, output: &str, state_dir: &Path) {
    let mut topics = ws.admin.topics_with_prefix(&format!("{app_id}-")).unwrap_or_default();
    if !topics.iter().any(|t| t == output) {
        topics.push(output.to_string());
    }
    ws.admin.delete(&topics);
    let _ = std::fs::remove_dir_all(state_dir);
}
