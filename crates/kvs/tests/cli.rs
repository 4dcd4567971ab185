//! The client subcommands against a running server: get, put, del, ls, shell; binary-safe
//! output, exit codes scripts can use, and clear errors when the server is down.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::{KVS, start, stop};

fn kvs(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(KVS)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kvs runs");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(bytes) = stdin {
        // The program may exit before reading it all (a server that is down): that is fine.
        let _ = input.write_all(bytes);
    }
    drop(input);
    child.wait_with_output().expect("kvs finishes")
}

#[test]
fn get_put_del_ls_with_exit_codes() {
    let (server, ports) = start(&[]);
    let addr = format!("http://127.0.0.1:{}", ports.http);
    let a = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        v.extend(["--addr".to_owned(), addr.clone()]);
        v
    };
    let run = |args: &[&str], stdin: Option<&[u8]>| {
        let owned = a(args);
        let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        kvs(&refs, stdin)
    };

    let out = run(&["put", "users/1", "alice"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["get", "users/1"], None);
    assert_eq!(
        (out.status.code(), out.stdout.as_slice()),
        (Some(0), &b"alice"[..])
    );

    // Every byte value survives, from standard input and from a file.
    let binary: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let out = run(
        &["put", "blob", "--content-type", "image/png"],
        Some(&binary),
    );
    assert!(out.status.success());
    assert_eq!(run(&["get", "blob"], None).stdout, binary);
    let file = std::env::temp_dir().join(format!("kvs-cli-{}", std::process::id()));
    std::fs::write(&file, &binary[..100]).expect("write file");
    let out = run(
        &["put", "from-file", "--file", &file.to_string_lossy()],
        None,
    );
    assert!(out.status.success());
    assert_eq!(run(&["get", "from-file"], None).stdout, &binary[..100]);
    let _ = std::fs::remove_file(&file);
    let http_type = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{content_type}",
            &format!("{addr}/kvs/blob"),
        ])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&http_type.stdout), "image/png");

    // A TTL is passed through.
    let out = run(&["put", "brief", "x", "--ttl", "30s"], None);
    assert!(out.status.success());
    let headers = Command::new("curl")
        .args(["-sI", &format!("{addr}/kvs/brief")])
        .output()
        .expect("curl");
    assert!(
        String::from_utf8_lossy(&headers.stdout)
            .to_lowercase()
            .contains("expires:")
    );

    // Missing keys: exit 1 with a message on stderr, nothing on stdout.
    let out = run(&["get", "nope"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such key"));
    assert_eq!(run(&["del", "nope"], None).status.code(), Some(1));

    // expire changes only the expiry: removed, then set again, the value kept.
    let expires = |key: &str| {
        let out = Command::new("curl")
            .args(["-sI", &format!("{addr}/kvs/{key}")])
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout)
            .to_lowercase()
            .contains("expires:")
    };
    assert!(
        run(&["expire", "brief", "--persist"], None)
            .status
            .success()
    );
    assert!(!expires("brief"), "--persist removes the expiry");
    assert!(run(&["expire", "brief", "10m"], None).status.success());
    assert!(expires("brief"));
    assert_eq!(run(&["get", "brief"], None).stdout, b"x");
    assert_eq!(run(&["expire", "nope", "5"], None).status.code(), Some(1));
    assert_eq!(
        run(&["expire", "brief", "soon"], None).status.code(),
        Some(3)
    );
    assert_eq!(run(&["expire", "brief"], None).status.code(), Some(2));

    // ls pages through everything in order (a page of 2 forces several requests).
    for i in 0..5 {
        assert!(
            run(&["put", &format!("users/{i}x"), "v"], None)
                .status
                .success()
        );
    }
    let out = run(&["ls", "users/", "--page", "2"], None);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "users/0x\nusers/1\nusers/1x\nusers/2x\nusers/3x\nusers/4x\n"
    );
    assert_eq!(run(&["del", "users/1"], None).status.code(), Some(0));
    assert_eq!(run(&["get", "users/1"], None).status.code(), Some(1));
    stop(server);
}

#[test]
fn a_server_that_is_down_is_exit_3_with_a_clear_message() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let addr = format!("http://127.0.0.1:{port}");
    for args in [
        vec!["get", "k"],
        vec!["put", "k", "v"],
        vec!["del", "k"],
        vec!["expire", "k", "5"],
        vec!["ls"],
    ] {
        let mut all = args.clone();
        all.extend(["--addr", addr.as_str()]);
        let out = kvs(&all, None);
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("kvs: cannot reach kvs at "), "{err}");
    }
    let resp = format!("127.0.0.1:{port}");
    let out = kvs(&["shell", "--resp", &resp], Some(b"ping\n"));
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach kvs"));
}

#[test]
fn the_shell_speaks_resp_and_shows_replies_like_redis_cli() {
    let (server, ports) = start(&[]);
    let resp = format!("127.0.0.1:{}", ports.resp);
    let script = b"set greeting \"hello world\"\nget greeting\nmget greeting missing\nincr greeting\nincr n\n\nset \"unbalanced\nquit\nget greeting\n";
    let out = kvs(&["shell", "--resp", &resp], Some(script));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "OK\n\"hello world\"\n1) \"hello world\"\n2) (nil)\n(error) ERR value is not an integer or out of range\n(integer) 1\nInvalid argument(s)\nOK\n"
    );
    stop(server);
}

/// Against a server with a password: the client subcommands take `--user`/`--password` or
/// `KVS_USER`/`KVS_PASSWORD` (which `ps` does not show), and say clearly when they are missing.
#[test]
fn credentials_from_flags_and_the_environment() {
    let (server, ports) = start(&["--requirepass", "s3cret"]);
    let addr = format!("http://127.0.0.1:{}", ports.http);
    let with_env = |args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>| {
        let mut command = Command::new(KVS);
        command
            .args(args)
            .args(["--addr", &addr])
            .env_remove("KVS_USER")
            .env_remove("KVS_PASSWORD")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("kvs runs");
        let mut input = child.stdin.take().expect("stdin");
        if let Some(bytes) = stdin {
            let _ = input.write_all(bytes);
        }
        drop(input);
        child.wait_with_output().expect("kvs finishes")
    };
    let out = with_env(&["put", "k", "v"], &[], None);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("authentication is required"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = with_env(&["put", "k", "v"], &[("KVS_PASSWORD", "s3cret")], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = with_env(
        &["get", "k", "--user", "default"],
        &[("KVS_PASSWORD", "s3cret")],
        None,
    );
    assert_eq!(out.stdout, b"v");
    let out = with_env(&["ls", "--password", "s3cret"], &[], None);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "k\n");
    let out = with_env(
        &["del", "k"],
        &[("KVS_USER", "default"), ("KVS_PASSWORD", "wrong")],
        None,
    );
    assert_eq!(out.status.code(), Some(3), "a wrong password is refused");
    // A user without a password and no terminal to ask at: a usage error, not a hang.
    let out = with_env(&["get", "k", "--user", "default"], &[], None);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The shell authenticates before the first command.
    let resp = format!("127.0.0.1:{}", ports.resp);
    let mut shell = Command::new(KVS);
    shell
        .args(["shell", "--resp", &resp])
        .env("KVS_PASSWORD", "s3cret")
        .env_remove("KVS_USER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = shell.spawn().expect("shell");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"ACL WHOAMI\n")
        .expect("write");
    let out = child.wait_with_output().expect("shell ends");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"default\""),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    stop(server);
}
