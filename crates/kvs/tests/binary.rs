//! The `kvs` binary as a user runs it: startup, a busy port, signals, and the seed READMEs' curl
//! commands through a shell script.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::KVS;

/// Starts `kvs serve` on free ports and returns it with its HTTP port.
fn start(extra: &[&str]) -> (Child, u16) {
    let (child, ports) = common::start(extra);
    (child, ports.http)
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "kvs did not exit in {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_busy_port_is_a_one_line_error_and_a_failing_exit() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    for flags in [
        [
            "--http",
            &addr,
            "--resp",
            "127.0.0.1:0",
            "--line",
            "127.0.0.1:0",
        ],
        [
            "--http",
            "127.0.0.1:0",
            "--resp",
            &addr,
            "--line",
            "127.0.0.1:0",
        ],
        [
            "--http",
            "127.0.0.1:0",
            "--resp",
            "127.0.0.1:0",
            "--line",
            &addr,
        ],
    ] {
        let out = Command::new(KVS)
            .args(["serve", "--in-memory"])
            .args(flags)
            .output()
            .expect("run kvs");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("kvs: cannot listen on ") && last.contains(&addr),
            "{stderr}"
        );
        assert!(last.to_lowercase().contains("in use"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn bad_configuration_is_refused_clearly() {
    let dir = std::env::temp_dir().join(format!("kvs-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("kvs.toml");
    std::fs::write(&file, "[limits]\nmax_conections = 5\n").expect("write");
    let out = Command::new(KVS)
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .expect("run kvs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid config file") && stderr.contains("max_conections"),
        "{stderr}"
    );
    let out = Command::new(KVS)
        .args(["serve", "--header-timeout", "soon"])
        .output()
        .expect("run kvs");
    assert!(!out.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn config_file_settings_take_effect_and_flags_win() {
    let dir = std::env::temp_dir().join(format!("kvs-config-ok-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("kvs.toml");
    std::fs::write(&file, "[limits]\nmax_key_len = 4\nmax_value_size = 8\n").expect("write");
    let file = file.to_string_lossy().into_owned();
    let (mut child, port) = start(&["--config", &file, "--max-value-size", "16"]);
    let status = |path: &str, body: &str| {
        let out = Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-X",
                "PUT",
                "--data-binary",
                body,
            ])
            .arg(format!("http://127.0.0.1:{port}{path}"))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(status("/kvs/abcd", "0123456789abcdef"), "201");
    assert_eq!(status("/kvs/abcd", "0123456789abcdefX"), "413");
    assert_eq!(status("/kvs/abcde", "x"), "414");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(wait_exit(&mut child, Duration::from_secs(10)).success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_and_sigint_stop_the_server_with_exit_zero() {
    for signal in ["-TERM", "-INT"] {
        let (mut child, port) = start(&[]);
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill");
        let status = wait_exit(&mut child, Duration::from_secs(10));
        assert!(status.success(), "{signal}: {status:?}");
    }
}

#[test]
fn every_seed_readme_curl_command_works() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/seed_readmes.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(KVS)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("all passed"));
}

#[test]
fn help_explains_every_setting() {
    let out = Command::new(KVS)
        .args(["serve", "--help"])
        .output()
        .expect("run kvs");
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--http",
        "--config",
        "--max-key-len",
        "--max-value-size",
        "--max-connections",
        "--max-header-size",
        "--header-timeout",
        "--body-timeout",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
}

/// `--requirepass` (or `KVS_REQUIREPASS`, which `ps` does not show) protects the default user;
/// a broken `--aclfile` stops startup with the line that is wrong.
#[test]
fn a_password_and_an_acl_file_from_the_command_line() {
    let (mut child, ports) = common::start(&["--requirepass", "s3cret"]);
    let cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .args(["-p", &ports.resp.to_string()])
            .args(args)
            .env("REDISCLI_AUTH", "")
            .output()
            .expect("redis-cli (apt-get install redis-tools)");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(cli(&["GET", "k"]), "NOAUTH Authentication required.");
    assert_eq!(
        cli(&[
            "--user",
            "default",
            "--pass",
            "s3cret",
            "--no-auth-warning",
            "PING"
        ]),
        "PONG"
    );
    let _ = child.kill();
    let _ = child.wait();

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("users.acl");
    std::fs::write(
        &file,
        "user default on nopass ~* &* +@all\nuser bad on nonsense\n",
    )
    .expect("write");
    let out = Command::new(KVS)
        .args([
            "serve",
            "--in-memory",
            "--http",
            "127.0.0.1:0",
            "--resp",
            "127.0.0.1:0",
        ])
        .args(["--line", "127.0.0.1:0", "--aclfile"])
        .arg(&file)
        .output()
        .expect("run kvs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("users.acl:2: Syntax error."), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Protected mode: a door beyond the loopback interface with no password is refused before
/// anything is bound, with the ways out named.
#[test]
fn a_door_beyond_loopback_without_a_password_is_refused() {
    let out = Command::new(KVS)
        .args(["serve", "--in-memory", "--http", "0.0.0.0:0"])
        .args(["--resp", "127.0.0.1:0", "--line", "127.0.0.1:0"])
        .env_remove("KVS_REQUIREPASS")
        .output()
        .expect("run kvs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("protected mode"), "{stderr}");
    assert!(stderr.contains("--protected-mode no"), "{stderr}");
    assert!(stderr.contains("--requirepass"), "{stderr}");
}

/// Resident memory of `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A request that claims two billion arguments and then streams one-byte ones is stopped at
/// the query buffer limit, counted at what it holds in memory (not its size on the wire), with
/// an error and a closed connection; two such clients at once leave the server's memory bounded.
#[test]
fn a_huge_multibulk_is_stopped_at_the_query_buffer_limit() {
    use std::io::{Read, Write};
    let limit: u64 = 64 << 20;
    let (mut child, ports) = common::start(&[
        "--client-query-buffer-limit",
        &limit.to_string(),
        "--maxmemory-clients",
        "0",
    ]);
    let before = rss(child.id());
    let chunk = b"$1\r\na\r\n".repeat(150_000); // about 1 MiB on the wire
    let mut peak = before;
    let streams: Vec<std::net::TcpStream> = (0..2)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", ports.resp)).expect("connect");
            s.write_all(b"*2147483647\r\n").expect("header");
            s
        })
        .collect();
    let mut closed = [false, false];
    let mut sent_mb = 0;
    // At most 462 MB each, as in the report; the limit must stop them long before.
    while sent_mb < 462 && !closed.iter().all(|c| *c) {
        for (i, mut s) in streams.iter().enumerate() {
            if !closed[i] && s.write_all(&chunk).is_err() {
                closed[i] = true;
            }
        }
        sent_mb += 1;
        peak = peak.max(rss(child.id()));
    }
    assert!(
        closed.iter().all(|c| *c),
        "still open after {sent_mb} MB each"
    );
    // Counted by memory (7 bytes on the wire hold 15), the limit is reached after about 30 MB
    // of wire bytes, not 64.
    assert!(sent_mb < 50, "stopped late: {sent_mb} MB each");
    for mut s in streams {
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        let text = String::from_utf8_lossy(&reply);
        assert!(
            text.starts_with("-ERR Protocol error: the request exceeds the query buffer limit"),
            "{text}"
        );
    }
    let grew = peak.saturating_sub(before);
    eprintln!(
        "stopped after {sent_mb} MB each; RSS grew {} MiB",
        grew >> 20
    );
    assert!(
        grew < 3 * 2 * limit,
        "RSS grew by {} MiB for two clients at a {} MiB limit",
        grew >> 20,
        limit >> 20
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// What redis-cli prints for `words`, sent to the server on `port`.
fn cli(port: u16, words: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(words)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// SHUTDOWN stops the server as SIGTERM does, with no reply; while a script that has written
/// loops (so SCRIPT KILL cannot stop it), only SHUTDOWN NOSAVE is taken, and it ends the process
/// at once, the script's writes never committed.
#[test]
fn shutdown_stops_the_server_and_nosave_ends_a_script_that_cannot_be_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8 path");
    let (mut child, ports) = common::start(&["--data-dir", data]);
    assert_eq!(cli(ports.resp, &["SET", "k", "v"]), "OK");
    assert_eq!(cli(ports.resp, &["SHUTDOWN", "BOGUS"]), "ERR syntax error");
    assert_eq!(
        cli(ports.resp, &["SHUTDOWN", "ABORT"]),
        "ERR No shutdown in progress."
    );
    assert_eq!(cli(ports.resp, &["SHUTDOWN"]), "");
    assert!(wait_exit(&mut child, Duration::from_secs(10)).success());

    let (mut child, ports) = common::start(&["--data-dir", data]);
    assert_eq!(cli(ports.resp, &["GET", "k"]), "v");
    cli(
        ports.resp,
        &["CONFIG", "SET", "busy-reply-threshold", "100"],
    );
    let mut looping = Command::new("redis-cli")
        .args(["-p", &ports.resp.to_string()])
        .args(["EVAL", "redis.call('set', 'x', '1') while true do end", "0"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-cli runs");
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        cli(ports.resp, &["SCRIPT", "KILL"]).starts_with("UNKILLABLE"),
        "a script that wrote cannot be killed"
    );
    assert!(cli(ports.resp, &["SHUTDOWN"]).starts_with("BUSY"));
    assert_eq!(cli(ports.resp, &["SHUTDOWN", "NOSAVE"]), "");
    assert!(wait_exit(&mut child, Duration::from_secs(10)).success());
    let _ = looping.wait();

    let (child, ports) = common::start(&["--data-dir", data]);
    assert_eq!(cli(ports.resp, &["GET", "k"]), "v");
    assert_eq!(
        cli(ports.resp, &["EXISTS", "x"]),
        "0",
        "the script's write is not kept"
    );
    common::stop(child);
}
