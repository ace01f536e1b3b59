//! The performance benchmarks of issue 8, run by `puente-bench` (`scripts/bench`): cold start
//! under the local Runtime API against a hello-world binary, throughput and latency end to end
//! under a load driver, peak memory, and the cost model that turns measured AWS requests and
//! durations into a price per million synced events. They measure; they never assert a time, so
//! they are not tests and do not run in `cargo test`.

pub mod cold_start;
pub mod cost;
pub mod load;

use std::time::Duration;

/// Percentiles of a sample (nearest rank).
#[derive(Debug, Clone, Copy, Default)]
pub struct Spread {
    pub count: usize,
    pub median: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Spread {
    pub fn of(sample: &[Duration]) -> Spread {
        let mut sorted = sample.to_vec();
        sorted.sort();
        let rank = |p: f64| -> Duration {
            if sorted.is_empty() {
                return Duration::ZERO;
            }
            let index = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
            sorted[index]
        };
        Spread {
            count: sorted.len(),
            median: rank(0.5),
            p90: rank(0.9),
            p99: rank(0.99),
            max: sorted.last().copied().unwrap_or_default(),
        }
    }
}

/// Milliseconds with one decimal, for the tables.
pub fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// What `/proc` says about a process: its peak resident memory (`VmHWM`) and the CPU time it
/// used so far (user + system). Linux only, like Lambda.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessUse {
    pub peak_rss_kib: u64,
    pub cpu: Duration,
}

impl ProcessUse {
    /// `None` when the process is gone (or this is not Linux).
    pub fn of(pid: u32) -> Option<ProcessUse> {
        Self::read(&format!("/proc/{pid}"))
    }

    /// This process: the simulators, the local platform and the driver.
    pub fn of_self() -> Option<ProcessUse> {
        Self::read("/proc/self")
    }

    fn read(dir: &str) -> Option<ProcessUse> {
        let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
        let peak_rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
        let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
        // Fields after the command name (which may hold spaces, hence the last ')'): state is
        // field 3, utime 14 and stime 15, in clock ticks.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(ProcessUse {
            peak_rss_kib,
            cpu: Duration::from_secs_f64(ticks as f64 / CLOCK_TICKS_PER_SECOND),
        })
    }
}

/// A valid Colombian NIT (check digit by DIAN's weights) that differs by `n`.
pub fn nit(n: usize) -> String {
    let base = format!("{:09}", 800_000_000 + n);
    let weights = [41, 37, 29, 23, 19, 17, 13, 7, 3];
    let sum: u32 = base
        .bytes()
        .zip(weights)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let rest = sum % 11;
    let check = if rest > 1 { 11 - rest } else { rest };
    format!("{base}-{check}")
}

/// `sysconf(_SC_CLK_TCK)`: 100 on every Linux that Lambda and this machine run.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let sample: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let spread = Spread::of(&sample);
        assert_eq!(spread.median, Duration::from_millis(50));
        assert_eq!(spread.p90, Duration::from_millis(90));
        assert_eq!(spread.p99, Duration::from_millis(99));
        assert_eq!(spread.max, Duration::from_millis(100));
        assert_eq!(Spread::of(&[]).median, Duration::ZERO);
    }

    #[test]
    fn generated_nits_carry_their_check_digit() {
        // 800000000: 8 * 41 = 328, 328 % 11 = 9, check digit 11 - 9 = 2.
        assert_eq!(nit(0), "800000000-2");
        // 900123456: 586 % 11 = 3, check digit 8 (the DIAN example used in the fixtures).
        assert_eq!(nit(100_123_456), "900123456-8");
    }

    #[test]
    fn this_process_has_memory_and_cpu_time() {
        let used = ProcessUse::of_self().expect("a Linux /proc");
        assert!(used.peak_rss_kib > 0);
    }
}
