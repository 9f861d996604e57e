//! The browser tests: the widget, the demo page, the inbox page and the cross-origin
//! example, driven in Debian's Chromium by playwright-core (`tests/e2e`, run by node's
//! built-in test runner) against a real server started here.
//!
//! This test never skips: a machine without Chromium, Node.js or `tests/e2e/node_modules`
//! fails it with one line that says to run `.ci/setup`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use std::time::Duration;

use frontdesk::config::Rate;
use widget_protocol::Role;

use crate::support::TestServer;

/// Each node test gets this long before the runner cancels it, so a hang cannot stall CI.
const NODE_TEST_TIMEOUT_MS: u32 = 180_000;

fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM_PATH")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// What is missing for the browser tests, if anything.
fn missing_prerequisite(e2e: &Path) -> Option<String> {
    let chromium = chromium_path();
    if !chromium.is_file() {
        return Some(format!("{} is missing", chromium.display()));
    }
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        _ => return Some("node is missing".to_string()),
    }
    if !e2e
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        return Some("tests/e2e/node_modules is missing".to_string());
    }
    None
}

/// The node test files to run: those named in `FRONTDESK_E2E` (`inbox` for
/// `tests/e2e/inbox.test.mjs`), else the whole directory.
fn e2e_files() -> Vec<String> {
    match std::env::var("FRONTDESK_E2E") {
        Ok(names) if !names.trim().is_empty() => names
            .split_whitespace()
            .map(|n| format!("tests/e2e/{n}.test.mjs"))
            .collect(),
        _ => vec!["tests/e2e/".to_string()],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widget_and_inbox_in_chromium() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let e2e = root.join("tests/e2e");
    if let Some(what) = missing_prerequisite(&e2e) {
        panic!("browser tests cannot run: {what}; run .ci/setup (it installs Chromium, Node.js and tests/e2e/node_modules)");
    }

    // The long-conversation test writes 60 messages from one visitor within seconds, far
    // past the per-visitor send limit a real site keeps.
    // The inbox's paging test starts more conversations from one address (127.0.0.1)
    // than a real visitor's address is allowed to, and signs agents in from it far more
    // often than a person would.
    let server = TestServer::start_with(|c| {
        c.limits.sign_in_per_address = Rate::new(1000, Duration::from_secs(600));
        c.limits.rate_count = 100;
        c.limits.new_conversations_per_address = Rate::new(1000, Duration::from_secs(600));
        c.limits.new_visitors_per_address = Rate::new(1000, Duration::from_secs(600));
    })
    .await;
    let agent_token = server
        .create_agent("Maja Berg", &["default"], Role::Agent)
        .await;
    // An inbox no test page may use: the widget's refused-origin case.
    server
        .create_inbox("locked", &["https://shop.invalid"])
        .await;
    let artifacts = std::env::var_os("FRONTDESK_ARTIFACTS")
        .map_or_else(|| e2e.join("artifacts"), PathBuf::from);
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");

    let mut node = Command::new("node");
    node.current_dir(&root)
        .arg("--test")
        .arg("--test-concurrency=1")
        .arg(format!("--test-timeout={NODE_TEST_TIMEOUT_MS}"))
        // FRONTDESK_E2E: the test files to run (space-separated, e.g. `inbox`), else all.
        .args(e2e_files())
        .env("FRONTDESK_URL", server.url(""))
        .env("FRONTDESK_ADMIN_TOKEN", &server.admin_token)
        .env("FRONTDESK_AGENT_TOKEN", &agent_token)
        .env("FRONTDESK_ARTIFACTS", &artifacts);
    // Node's report goes straight to our stdout and stderr, live, also when it passes:
    // it is the only account of what ran in the browser. Node runs on a blocking thread
    // while the server keeps serving on the runtime's workers.
    node.stdout(Stdio::inherit()).stderr(Stdio::inherit());
    let status = tokio::task::spawn_blocking(move || node.status())
        .await
        .expect("node thread")
        .expect("node starts");

    eprintln!("browser test screenshots: {}", artifacts.display());
    assert!(
        status.success(),
        "the browser tests failed ({status}); node's report is above"
    );
    server.stop().await;
}
