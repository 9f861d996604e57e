//! The command line, run as a user runs it: the real binary, one plain line on errors.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;

use crate::support::{BinaryServer, Client};

fn frontdesk(args: &[&str], data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A failure is one plain line on stderr, no panic, no backtrace, a non-zero exit.
fn assert_one_line_error(o: &Output, needle: &str) {
    assert!(!o.status.success(), "expected failure, got {o:?}");
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(lines[0].starts_with("frontdesk: "), "{err}");
    assert!(err.contains(needle), "{err} should mention {needle}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

#[tokio::test]
async fn inbox_and_agent_commands_work_on_a_stopped_server_and_refuse_a_running_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    // First start creates the default inbox and the admin, then stops.
    let server = BinaryServer::spawn(dir.path(), &[]).await;
    let token = std::fs::read_to_string(dir.path().join("admin-token")).expect("admin-token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("admin-token"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(token.trim().len() >= 40);

    // While it runs, the tools say so.
    let o = frontdesk(&["agent", "list"], dir.path());
    assert_one_line_error(&o, "in use by a running frontdesk");
    assert!(server.terminate().await.success());

    let o = frontdesk(
        &[
            "inbox",
            "add",
            "--key",
            "sales",
            "--name",
            "Sales",
            "--origin",
            "https://shop.example.com/",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = frontdesk(
        &["inbox", "add", "--key", "sales", "--name", "Again"],
        dir.path(),
    );
    assert_one_line_error(&o, "exists already");
    let o = frontdesk(
        &[
            "inbox",
            "add",
            "--key",
            "bad",
            "--name",
            "B",
            "--origin",
            "not an origin",
        ],
        dir.path(),
    );
    assert_one_line_error(&o, "not an origin");
    let o = frontdesk(&["inbox", "list"], dir.path());
    assert!(
        stdout(&o).contains("sales\tSales\thttps://shop.example.com"),
        "{}",
        stdout(&o)
    );

    let o = frontdesk(
        &["agent", "add", "--name", "Sam", "--inbox", "sales"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let sam_token = out.lines().last().expect("token line").trim().to_string();
    assert!(
        sam_token.starts_with("fda_"),
        "the token is alone on the last line: {out}"
    );
    let o = frontdesk(
        &["agent", "add", "--name", "Nobody", "--inbox", "nope"],
        dir.path(),
    );
    assert_one_line_error(&o, "no inbox");

    let o = frontdesk(&["agent", "list"], dir.path());
    let list = stdout(&o);
    let sam_line = list
        .lines()
        .find(|l| l.contains("\tSam\t"))
        .expect("Sam listed");
    assert!(sam_line.contains("\tagent\tsales\tactive"), "{sam_line}");
    assert!(!list.contains(&sam_token), "tokens are never listed");
    let sam_id = sam_line.split('\t').next().expect("id").to_string();

    // The new agent works, then is revoked and refused.
    let server = BinaryServer::spawn(dir.path(), &[]).await;
    let mut a = Client::connect(&server.ws_url("/ws/agent"))
        .await
        .expect("connect");
    a.send(json!({"type":"auth","token":sam_token})).await;
    assert_eq!(a.expect("ready").await["inboxes"], json!(["sales"]));
    drop(a);
    assert!(server.terminate().await.success());
    let o = frontdesk(&["agent", "revoke", &sam_id], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let o = frontdesk(&["agent", "revoke", "not-an-id"], dir.path());
    assert_one_line_error(&o, "not an agent id");
    let server = BinaryServer::spawn(dir.path(), &[]).await;
    let mut a = Client::connect(&server.ws_url("/ws/agent"))
        .await
        .expect("connect");
    a.send(json!({"type":"auth","token":sam_token})).await;
    assert_eq!(a.expect_closed().await, crate::support::Closed::Code(4001));
    server.kill9().await;
}

#[tokio::test]
async fn serve_says_plainly_what_is_wrong() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = BinaryServer::spawn(dir.path(), &[]).await;
    let port = server.addr.to_string();
    // The port is taken.
    let other = tempfile::tempdir().expect("temp dir");
    let o = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(["serve", "--listen", &port, "--data"])
        .arg(other.path())
        .output()
        .expect("runs");
    assert_one_line_error(&o, "in use");
    // The data directory is held by the running server.
    let o = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_one_line_error(&o, "in use by a running frontdesk");
    server.kill9().await;

    // A data directory that cannot be created.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").expect("write");
    let o = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(file.join("sub"))
        .output()
        .expect("runs");
    assert_one_line_error(&o, "cannot create the data directory");
}

#[tokio::test]
async fn serve_names_the_mail_option_that_is_wrong() {
    let dir = tempfile::tempdir().expect("temp dir");
    let serve = |mail: &[&str]| {
        let args: Vec<&str> = ["serve", "--listen", "127.0.0.1:0"]
            .iter()
            .chain(mail)
            .copied()
            .collect();
        frontdesk(&args, dir.path())
    };
    assert_one_line_error(
        &serve(&["--reply-to", "nobody"]),
        "--reply-to \"nobody\" is not an email address like \"Acme Support <support@acme.test>\"",
    );
    assert_one_line_error(
        &serve(&["--public-url", "ftp://chat.acme.test"]),
        "--public-url \"ftp://chat.acme.test\" must start with http:// or https://",
    );
    assert_one_line_error(
        &serve(&["--smtp-url", "smtp://u:secret@h?tls=x", "--mail-from", "a@b.test"]),
        "--smtp-url \"smtp://u:***@h?tls=x\" is not usable: tls=x is not one of starttls, required, opportunistic (expected smtp://",
    );
}

/// A SIGTERM the moment the server says it listens stops it cleanly: its handler must
/// be in place before that line is printed, or the signal kills the process the default
/// way. Several starts, as a late handler loses only a race.
#[tokio::test]
async fn a_sigterm_right_after_the_listening_line_stops_the_server_cleanly() {
    for attempt in 0..8 {
        let data = tempfile::tempdir().expect("temp dir");
        let server = BinaryServer::spawn(data.path(), &[]).await;
        let status = server.terminate().await;
        assert!(
            status.success(),
            "start {attempt}: SIGTERM right after start ended the server with {status}"
        );
    }
}

/// `agent set` and `inbox set`: what the running server's team frames change, on a
/// stopped server, through the same checks.
#[tokio::test]
async fn set_renames_and_moves_agents_and_edits_inboxes_on_a_stopped_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = BinaryServer::spawn(dir.path(), &[]).await;
    assert!(server.terminate().await.success());
    let ok = |args: &[&str]| {
        let o = frontdesk(args, dir.path());
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    ok(&["inbox", "add", "--key", "sales", "--name", "Sales"]);
    let out = ok(&["agent", "add", "--name", "Sam", "--inbox", "default"]);
    let token = out.lines().last().expect("token").trim().to_string();
    let list = ok(&["agent", "list"]);
    let sam = list.lines().find(|l| l.contains("\tSam\t")).expect("Sam");
    let id = sam.split('\t').next().expect("id").to_string();
    ok(&[
        "agent",
        "set",
        &id,
        "--name",
        "Samuel",
        "--display-name",
        "Sam from Sales",
        "--inbox",
        "default",
        "--inbox",
        "sales",
        "--role",
        "admin",
    ]);
    let list = ok(&["agent", "list"]);
    assert!(
        list.contains("\tSamuel\tadmin\tdefault,sales\tactive"),
        "{list}"
    );
    ok(&[
        "inbox",
        "set",
        "sales",
        "--name",
        "Sales EU",
        "--origin",
        "https://Shop.Example/",
    ]);
    assert!(ok(&["inbox", "list"]).contains("sales\tSales EU\thttps://shop.example"));
    ok(&["inbox", "set", "sales", "--any-origin"]);
    assert!(ok(&["inbox", "list"]).contains("sales\tSales EU\tany origin"));
    for (args, says) in [
        (vec!["agent", "set", &id, "--inbox", "nope"], "inbox"),
        (
            vec!["agent", "set", &id, "--role", "boss"],
            "admin or agent",
        ),
        (vec!["agent", "set", "not-an-id"], "not an agent id"),
        (vec!["inbox", "set", "nope", "--name", "X"], "no inbox"),
        (vec!["inbox", "set", "sales", "--origin", "nope"], "origin"),
    ] {
        let o = frontdesk(&args, dir.path());
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
    // The running server sees it all.
    let server = BinaryServer::spawn(dir.path(), &[]).await;
    let mut a = Client::connect(&server.ws_url("/ws/agent"))
        .await
        .expect("connect");
    a.send(json!({"type":"auth","token":token})).await;
    let ready = a.expect("ready").await;
    assert_eq!(ready["inboxes"], json!(["default", "sales"]));
    assert_eq!(ready["agent"]["display_name"], "Sam from Sales");
    assert_eq!(ready["agent"]["role"], "admin");
    server.kill9().await;
}
