//! Logs (tracing), traces (OTLP over gRPC, when an endpoint is configured)
//! and metrics (Prometheus text on `/metrics`).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// What must outlive the process's work: the trace exporter, flushed by
/// [`Telemetry::shutdown`].
#[derive(Debug, Default)]
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still buffered; called once the server has stopped.
    pub fn shutdown(self) {
        if let Some(traces) = self.traces
            && let Err(error) = traces.shutdown()
        {
            tracing::warn!(%error, "traces were not all exported");
        }
    }
}

/// Starts logging to standard error (`RUST_LOG` overrides `level`) and,
/// with an OTLP endpoint, exporting spans to it: one per HTTP request, gRPC
/// call and job. Needs the runtime (the exporter's gRPC channel runs on it).
pub fn init(format: &str, level: &str, otlp_endpoint: Option<&str>) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // Colour only for a person at a terminal, never in a file or a pipe.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(colour);
    let fmt = if format == "json" { fmt.json().boxed() } else { fmt.boxed() };
    let (traces, otel) = match otlp_endpoint.map(tracer_provider).transpose() {
        Ok(Some(provider)) => {
            let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("madoguchi"));
            (Some(provider), Some(layer))
        }
        Ok(None) => (None, None),
        Err(error) => {
            // Logging is not up yet: say it where an operator looks.
            eprintln!("warning: traces are off: {error}");
            (None, None)
        }
    };
    let _ = tracing_subscriber::registry().with(filter).with(fmt).with(otel).try_init();
    Telemetry { traces }
}

fn tracer_provider(endpoint: &str) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    let exporter = SpanExporter::builder().with_tonic().with_endpoint(endpoint).build()?;
    Ok(SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name("madoguchi").build())
        .with_batch_exporter(exporter)
        .build())
}

/// Returns the process's Prometheus recorder, installing it on first use.
pub fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Counts requests and their latency by route and status.
pub async fn record_http_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let span = tracing::info_span!("http request", http.method = %method, http.route = %route, http.status = tracing::field::Empty);
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16().to_string();
    span.record("http.status", status.as_str());
    let labels = [("route", route), ("method", method), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    response
}
