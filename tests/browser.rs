//! A headless Chromium (Debian's `chromium`) driven over the DevTools
//! protocol, for tests of what a person looks at. The browser gets a fresh
//! profile and a proxy that does not exist for everything but loopback, so a
//! page that reaches for the internet fails the way it would offline; every
//! request the page makes is recorded so a test can show none left the
//! machine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// How long one DevTools call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Returns the Chromium binary, or `None` when it is not installed (a
/// failure under `CI=true`, where `scripts/test` installs it).
pub fn chromium() -> Option<PathBuf> {
    let candidates = [std::env::var("MADOGUCHI_TEST_CHROMIUM").ok(), Some("/usr/bin/chromium".into())];
    if let Some(found) = candidates.into_iter().flatten().map(PathBuf::from).find(|path| path.exists()) {
        return Some(found);
    }
    if std::env::var("CI").is_ok_and(|value| value == "true") {
        panic!("chromium is not installed; under CI=true that is a failure, not a skip");
    }
    eprintln!("skipping: chromium is not installed (apt-get install chromium, or run scripts/test)");
    None
}

/// Where tests keep what they leave for a person to look at (screenshots of
/// failures): `MADOGUCHI_TEST_ARTIFACTS`, else `target/test-artifacts`.
pub fn artifacts_dir() -> PathBuf {
    std::env::var_os("MADOGUCHI_TEST_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts"))
}

/// A running headless browser with one page.
#[derive(Debug)]
pub struct Browser {
    child: tokio::process::Child,
    _profile: tempfile::TempDir,
    commands: mpsc::UnboundedSender<Message>,
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>,
    events: Arc<Mutex<Vec<Value>>>,
    next_id: AtomicU64,
}

impl Browser {
    /// Starts `chromium` headless and attaches to its first page, with the
    /// page, runtime, network and log domains enabled.
    pub async fn launch(binary: &Path) -> anyhow::Result<Self> {
        let profile = tempfile::tempdir()?;
        let mut child = tokio::process::Command::new(binary)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--metrics-recording-only",
                // Everything but loopback goes to a proxy nobody listens on.
                "--proxy-server=127.0.0.1:9",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        let stderr = child.stderr.take().context("chromium stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let browser_url = tokio::time::timeout(CALL_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    return Ok(url.trim().to_owned());
                }
            }
            bail!("chromium exited before it listened for DevTools")
        })
        .await
        .context("chromium did not start in time")??;
        // Keep reading so the browser never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let port = url::Url::parse(&browser_url)?.port().context("devtools port")?;
        let targets: Value = reqwest::get(format!("http://127.0.0.1:{port}/json/list")).await?.json().await?;
        let page_url = targets
            .as_array()
            .and_then(|targets| targets.iter().find(|target| target["type"] == "page"))
            .and_then(|target| target["webSocketDebuggerUrl"].as_str())
            .context("no page target")?
            .to_owned();
        let (socket, _) = tokio_tungstenite::connect_async(page_url.as_str()).await?;
        let (mut sink, mut stream) = socket.split();

        let (commands, mut outgoing) = mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            while let Some(message) = outgoing.recv().await {
                if sink.send(message).await.is_err() {
                    break;
                }
            }
        });
        let pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>> = Arc::default();
        let events: Arc<Mutex<Vec<Value>>> = Arc::default();
        let (reader_pending, reader_events) = (pending.clone(), events.clone());
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else { continue };
                let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else { continue };
                match value["id"].as_u64() {
                    Some(id) => {
                        if let Some(reply) = reader_pending.lock().expect("pending lock").remove(&id) {
                            let _ = reply.send(value);
                        }
                    }
                    None => reader_events.lock().expect("events lock").push(value),
                }
            }
        });

        let browser = Self { child, _profile: profile, commands, pending, events, next_id: AtomicU64::new(1) };
        for domain in ["Page", "Runtime", "Network", "Log"] {
            browser.call(&format!("{domain}.enable"), json!({})).await?;
        }
        Ok(browser)
    }

    /// Sends one DevTools command and returns its result.
    pub async fn call(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        self.pending.lock().expect("pending lock").insert(id, reply);
        let command = json!({"id": id, "method": method, "params": params});
        self.commands.send(Message::Text(command.to_string().into())).map_err(|_| anyhow!("devtools closed"))?;
        let answer = tokio::time::timeout(CALL_TIMEOUT, answer)
            .await
            .with_context(|| format!("{method} timed out"))?
            .map_err(|_| anyhow!("devtools closed during {method}"))?;
        if let Some(error) = answer.get("error") {
            bail!("{method} failed: {error}");
        }
        Ok(answer["result"].clone())
    }

    /// Opens `url` and waits until its document has loaded.
    pub async fn navigate(&self, url: &str) -> anyhow::Result<()> {
        let result = self.call("Page.navigate", json!({"url": url})).await?;
        if let Some(error) = result["errorText"].as_str() {
            bail!("navigation to {url} failed: {error}");
        }
        self.wait_for("document.readyState === 'complete'", Duration::from_secs(30)).await.map(|_| ())
    }

    /// Evaluates a JavaScript expression in the page (promises awaited) and
    /// returns its value.
    pub async fn evaluate(&self, expression: &str) -> anyhow::Result<Value> {
        let result = self
            .call("Runtime.evaluate", json!({"expression": expression, "awaitPromise": true, "returnByValue": true}))
            .await?;
        if let Some(exception) = result.get("exceptionDetails") {
            bail!("evaluating {expression:?} threw: {exception}");
        }
        Ok(result["result"]["value"].clone())
    }

    /// Evaluates `expression` until it is truthy; returns its value.
    pub async fn wait_for(&self, expression: &str, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let value = self.evaluate(expression).await?;
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(value) => *value,
                Value::String(value) => !value.is_empty(),
                Value::Number(value) => value.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return Ok(value);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("{expression:?} did not become true within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG of the page.
    pub async fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"})).await?;
        let data = shot["data"].as_str().context("screenshot data")?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(data)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, bytes)?;
        Ok(())
    }

    /// Every URL the page has requested so far (HTTP and WebSocket).
    pub fn requested_urls(&self) -> Vec<String> {
        let events = self.events.lock().expect("events lock");
        events
            .iter()
            .filter_map(|event| match event["method"].as_str() {
                Some("Network.requestWillBeSent") => event["params"]["request"]["url"].as_str(),
                Some("Network.webSocketCreated") => event["params"]["url"].as_str(),
                _ => None,
            })
            .map(str::to_owned)
            .collect()
    }

    /// Errors the page reported: uncaught exceptions, `console.error`, and
    /// the browser's own error entries (a Content-Security-Policy violation,
    /// a failed load).
    pub fn page_errors(&self) -> Vec<String> {
        let events = self.events.lock().expect("events lock");
        events
            .iter()
            .filter_map(|event| match event["method"].as_str() {
                Some("Runtime.exceptionThrown") => Some(event["params"]["exceptionDetails"].to_string()),
                Some("Runtime.consoleAPICalled") if event["params"]["type"] == "error" => {
                    Some(event["params"]["args"].to_string())
                }
                Some("Log.entryAdded") if event["params"]["entry"]["level"] == "error" => {
                    Some(event["params"]["entry"]["text"].to_string())
                }
                _ => None,
            })
            .collect()
    }

    /// The text of every WebSocket frame the page received.
    pub fn websocket_frames_received(&self) -> Vec<String> {
        let events = self.events.lock().expect("events lock");
        events
            .iter()
            .filter(|event| event["method"] == "Network.webSocketFrameReceived")
            .filter_map(|event| event["params"]["response"]["payloadData"].as_str().map(str::to_owned))
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
