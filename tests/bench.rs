//! What the benchmarks share: their sizes (`-- --quick` and
//! `MADOGUCHI_BENCH_*`), serving a floor, and what one timed pass of
//! requests measured.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Whether the benchmark was run with `-- --quick`.
pub fn quick() -> bool {
    std::env::args().any(|argument| argument == "--quick")
}

/// The positive number in the environment variable `name`, or `default`.
pub fn size(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).filter(|&value| value > 0).unwrap_or(default)
}

/// How many requests a request/response bench sends, and how many at once:
/// `MADOGUCHI_BENCH_REQUESTS` (2,000; 300 with `--quick`) and
/// `MADOGUCHI_BENCH_CONCURRENCY` (`concurrency` unless set).
#[derive(Clone, Copy, Debug)]
pub struct Requests {
    pub requests: usize,
    pub concurrency: usize,
}

impl Requests {
    pub fn from_environment(concurrency: usize) -> Self {
        Self {
            requests: size("MADOGUCHI_BENCH_REQUESTS", if quick() { 300 } else { 2_000 }),
            concurrency: size("MADOGUCHI_BENCH_CONCURRENCY", concurrency),
        }
    }
}

/// An axum router served on a free loopback port until stopped: a floor.
#[derive(Debug)]
pub struct Served {
    pub address: SocketAddr,
    stop: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
}

impl Served {
    pub async fn start(router: axum::Router) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Self { address, stop, server }
    }

    /// Stops serving and waits until the server has.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
    }
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
