//! The `madoguchi` binary as an operator runs it: what it writes to a pipe,
//! and what it refuses to start with.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn madoguchi() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_madoguchi"));
    command.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
    command
}

#[test]
fn logs_written_to_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = madoguchi()
        .current_dir(dir.path())
        .env("MADOGUCHI_HTTP_ADDR", "127.0.0.1:0")
        .env("MADOGUCHI_GRPC_ADDR", "127.0.0.1:0")
        .env("MADOGUCHI_METRICS_ADDR", "127.0.0.1:0")
        .env("MADOGUCHI_BOOTSTRAP_ADMIN_PASSWORD", "a long enough password")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
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
