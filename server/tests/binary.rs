//! The `madoguchi` binary as an operator runs it: what it writes to a pipe,
//! and what it refuses to start with.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;

fn madoguchi() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_madoguchi"));
    command.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
    command
}

/// `madoguchi` serving from `dir` on free loopback ports, its logs piped.
fn serving_in(dir: &std::path::Path) -> Command {
    let mut command = madoguchi();
    command
        .current_dir(dir)
        .env("MADOGUCHI_HTTP_ADDR", "127.0.0.1:0")
        .env("MADOGUCHI_GRPC_ADDR", "127.0.0.1:0")
        .env("MADOGUCHI_METRICS_ADDR", "127.0.0.1:0")
        .env("MADOGUCHI_BOOTSTRAP_ADMIN_PASSWORD", "a long enough password")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

#[test]
fn logs_written_to_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = serving_in(dir.path()).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let started = Instant::now();
    let mut seen = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        let serving = line.contains("serving");
        seen.push(line);
        if serving || started.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.iter().any(|line| line.contains("serving")), "{seen:#?}");
    assert!(seen.iter().all(|line| !line.contains('\u{1b}')), "escape codes in {seen:#?}");
}

#[test]
fn postgresql_without_a_master_key_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let output = madoguchi()
        .current_dir(dir.path())
        .env("MADOGUCHI_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("MADOGUCHI_HTTP_ADDR", "127.0.0.1:0")
        .env("MADOGUCHI_GRPC_ADDR", "127.0.0.1:0")
        .env("MADOGUCHI_METRICS_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("set master_key"), "{stderr}");
    assert!(stderr.contains("every replica"), "{stderr}");
    assert!(!dir.path().join("data/master.key").exists(), "no key generated");
}

#[test]
fn the_operator_provisions_lists_and_disables_organizations_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let output = madoguchi().current_dir(dir.path()).args(args).output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        );
        (output.status.success(), stdout, stderr)
    };
    let (ok, created, stderr) = run(&[
        "organization",
        "create",
        "--name",
        "Beta Inc",
        "--portal",
        "beta",
        "--admin-email",
        "owner@beta.example",
    ]);
    assert!(ok, "{stderr}");
    let password = created
        .lines()
        .find_map(|line| line.strip_prefix("password:"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("{created}"));
    assert!(password.len() >= 20, "{created}");
    // The password goes to the terminal once, never to the logs.
    assert!(!stderr.contains(password), "{stderr}");

    let (ok, _, stderr) =
        run(&["organization", "create", "--name", "Again", "--portal", "beta", "--admin-email", "x@beta.example"]);
    assert!(!ok && stderr.contains("portal name is taken"), "{stderr}");

    let (ok, listed, _) = run(&["organization", "list"]);
    assert!(ok);
    let beta = listed.lines().find(|line| line.contains(" beta ")).unwrap_or_else(|| panic!("{listed}"));
    assert!(beta.contains("active"), "{listed}");
    let (ok, _, stderr) = run(&["organization", "disable", "--portal", "beta"]);
    assert!(ok, "{stderr}");
    let (_, listed, _) = run(&["organization", "list"]);
    assert!(listed.lines().any(|line| line.contains(" beta ") && line.contains("disabled")), "{listed}");
    let (ok, _, stderr) = run(&["organization", "disable", "--portal", "nobody"]);
    assert!(!ok && stderr.contains("not found"), "{stderr}");
}

/// A span as the collector keeps it: its name and attributes.
type ExportedSpan = (String, Vec<(String, String)>);

/// A fake OTLP collector on loopback: keeps every span exported to it.
#[derive(Clone, Default)]
struct Collector {
    spans: std::sync::Arc<std::sync::Mutex<Vec<ExportedSpan>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                for span in scope.spans {
                    let attributes = span
                        .attributes
                        .iter()
                        .map(|attribute| {
                            let value = attribute.value.as_ref().and_then(|value| value.value.as_ref());
                            let value = match value {
                                Some(AnyValue::StringValue(text)) => text.clone(),
                                Some(AnyValue::IntValue(number)) => number.to_string(),
                                other => format!("{other:?}"),
                            };
                            (attribute.key.clone(), value)
                        })
                        .collect();
                    spans.push((span.name, attributes));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

/// With `otlp_endpoint` set, every HTTP request becomes a span exported over
/// OTLP/gRPC, and what is still buffered is sent when the server stops.
#[test]
fn http_requests_are_traced_to_the_configured_otlp_endpoint() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let collector = Collector::default();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let server = TraceServiceServer::new(collector.clone());
    runtime.spawn(
        tonic::transport::Server::builder()
            .add_service(server)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let dir = tempfile::tempdir().unwrap();
    let mut child = serving_in(dir.path()).env("MADOGUCHI_OTLP_ENDPOINT", &endpoint).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let started = Instant::now();
    let mut http = None;
    while let Some(Ok(line)) = lines.next() {
        if line.contains("serving") {
            http = line.split_whitespace().find_map(|field| field.strip_prefix("http=")).map(str::to_owned);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the server did not start");
    }
    let http = http.expect("the serving line names the HTTP address");
    let mut stream = std::net::TcpStream::connect(&http).unwrap();
    std::io::Write::write_all(&mut stream, b"GET /livez HTTP/1.1\r\nHost: madoguchi\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // SIGTERM: the server drains, then flushes its spans.
    let stopped = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(stopped.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let spans = collector.spans.lock().unwrap().clone();
    let livez = spans.iter().find(|(name, attributes)| {
        name == "http request" && attributes.iter().any(|(key, value)| key == "http.route" && value == "/livez")
    });
    let (_, attributes) = livez.unwrap_or_else(|| panic!("no span for GET /livez in {spans:#?}"));
    assert!(attributes.contains(&("http.status".to_owned(), "200".to_owned())), "{attributes:?}");
    assert!(attributes.contains(&("http.method".to_owned(), "GET".to_owned())), "{attributes:?}");
}
