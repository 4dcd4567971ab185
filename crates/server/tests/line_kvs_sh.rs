//! `examples/kvs.sh`, the shell client over `nc`, against a real server.

mod common;

use std::process::{Command, Output};

use common::{TestServer, client};

fn kvs_sh(s: &TestServer, args: &[&str], stdin: Option<&str>) -> Output {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/kvs.sh");
    let port = s.line.port().to_string();
    let mut cmd = Command::new("bash");
    cmd.arg(script).args(["-p", &port]).args(args);
    let output = match stdin {
        None => cmd.output(),
        Some(text) => {
            use std::io::Write;
            let mut child = cmd
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("bash runs");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())
                .expect("write");
            child.wait_with_output()
        }
    };
    output.expect("bash runs (and nc is installed: apt-get install netcat-openbsd)")
}

fn text(out: &Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shell_client_round_trips_values() {
    let s = TestServer::start().await;
    let (code, out, err) = text(&kvs_sh(&s, &["create", "k1", "hello | world"], None));
    assert_eq!((code, out.as_str()), (0, "hello | world\n"), "{err}");
    let (code, out, _) = text(&kvs_sh(&s, &["get", "k1"], None));
    assert_eq!((code, out.as_str()), (0, "hello | world\n"));

    // A body from stdin with line breaks is stored exactly; -r prints it back unescaped.
    let (code, _, err) = text(&kvs_sh(
        &s,
        &["create", "doc"],
        Some("line one\nline two\\"),
    ));
    assert_eq!(code, 0, "{err}");
    let stored = client()
        .get(s.url("/kvs/doc"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("t");
    assert_eq!(stored, "line one\nline two\\");
    let (_, out, _) = text(&kvs_sh(&s, &["get", "doc"], None));
    assert_eq!(out, "line one\\nline two\\\\\n");
    let (_, out, _) = text(&kvs_sh(&s, &["-r", "get", "doc"], None));
    assert_eq!(out, "line one\nline two\\\n");

    // Errors: the JSON line on stderr and exit status 1.
    let (code, out, err) = text(&kvs_sh(&s, &["get", "missing"], None));
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("\"errorcode\":10"), "{err}");
    // update upserts, as the seed's server did.
    let (code, out, _) = text(&kvs_sh(&s, &["update", "fresh", "x"], None));
    assert_eq!((code, out.as_str()), (0, "x\n"));
    let (code, out, _) = text(&kvs_sh(&s, &["delete", "k1"], None));
    assert_eq!((code, out.as_str()), (0, "hello | world\n"));
    let (code, _, err) = text(&kvs_sh(&s, &["delete", "k1"], None));
    assert_eq!(code, 1);
    assert!(err.contains("\"errorcode\":2"), "{err}");
    let (code, _, _) = text(&kvs_sh(&s, &["bogus"], None));
    assert_eq!(code, 2);
    s.stop().await;
}

#[test]
fn no_server_is_exit_status_2() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/kvs.sh");
    // A port nothing listens on: bind one, note it, release it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let out = Command::new("bash")
        .arg(script)
        .args(["-p", &port.to_string(), "get", "k"])
        .output()
        .expect("bash");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
