//! What the benchmarks share: their sizes (`-- --quick` and
//! `MADOGUCHI_BENCH_*`), and what one timed pass of requests measured.

use std::time::Duration;

/// Whether the benchmark was run with `-- --quick`.
pub fn quick() -> bool {
    std::env::args().any(|argument| argument == "--quick")
}

/// The positive number in the environment variable `name`, or `default`.
pub fn size(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).filter(|&value| value > 0).unwrap_or(default)
}

/// One timed pass: how long it took in all, and each request's latency.
#[derive(Clone, Debug)]
pub struct Pass {
    wall: Duration,
    /// Sorted, shortest first.
    latencies: Vec<Duration>,
}

impl Pass {
    pub fn new(wall: Duration, mut latencies: Vec<Duration>) -> Self {
        latencies.sort_unstable();
        Self { wall, latencies }
    }

    /// Requests finished per second of the whole pass.
    pub fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }

    /// The latency below which `fraction` of the requests finished, in ms.
    pub fn percentile_ms(&self, fraction: f64) -> f64 {
        let rank = ((fraction * self.latencies.len() as f64).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[rank - 1].as_secs_f64() * 1e3
    }
}
