//! Process measurements from `/proc`, and CPU pinning.

use std::process::Command;

use crate::kafka::Res;

/// CPU time and peak memory of a process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// User + system CPU seconds of every thread of the process.
    pub cpu_secs: f64,
    /// Peak resident set size (VmHWM), bytes.
    pub peak_rss: u64,
}

/// Reads `/proc/PID/stat` (utime + stime) and `/proc/PID/status` (VmHWM).
pub fn usage(pid: u32) -> Res<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or_else(|| format!("/proc/{pid}/stat: no ')'"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // In `rest`, field 0 is the state (field 3 of the file); utime and stime are fields 14 and 15.
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    let (utime, stime) = (ticks(11), ticks(12));
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let peak_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    Ok(Usage { cpu_secs: (utime + stime) as f64 / hz, peak_rss: peak_kb * 1024 })
}

/// Pins every thread of `pid` to `cpus` (a `taskset` list such as `0` or `0-1`).
pub fn pin(pid: u32, cpus: &str) -> Res<()> {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, pid.to_string().as_str()])
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("taskset: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("taskset -a -pc {cpus} {pid} failed ({status})"))
    }
}

/// The broker's JVM pids, from `scripts/kafka`'s pid files.
pub fn broker_pids() -> Vec<u32> {
    let mut pids = Vec::new();
    for root in
        ["/var/cache/kstreams/run", &format!("{}/.cache/kstreams/run", std::env::var("HOME").unwrap_or_default())]
    {
        let Ok(entries) = std::fs::read_dir(root) else { continue };
        for entry in entries.flatten() {
            if let Ok(text) = std::fs::read_to_string(entry.path().join("pid")) {
                if let Ok(pid) = text.trim().parse::<u32>() {
                    if std::path::Path::new(&format!("/proc/{pid}")).exists() {
                        pids.push(pid);
                    }
                }
            }
        }
    }
    pids
}

/// The CPU model, core count and memory of this machine.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = cpu_count();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    format!("{model}, {cores} cores, {:.0} GiB RAM", mem_kb as f64 / (1024.0 * 1024.0))
}

/// The machine's logical CPUs, from `/proc/cpuinfo` (not the affinity mask: the harness pins itself).
pub fn cpu_count() -> usize {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    cpuinfo.lines().filter(|l| l.starts_with("processor")).count().max(1)
}

/// Sends `signal` to `pid`.
pub fn signal(pid: u32, signal: i32) {
    // SAFETY: kill has no memory-safety preconditions; pid is a child of this process.
    unsafe {
        libc::kill(pid as i32, signal);
    }
}
