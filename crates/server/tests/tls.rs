//! TLS on every door, tried with real clients: redis-cli --tls, the Python `redis` package with
//! ssl=True (RESP2 and RESP3), curl over HTTPS, a Python ssl socket for the line protocol; client
//! certificates required and refused; plain text and stalled handshakes dropped without holding
//! anyone up; a certificate replaced on disk picked up without a restart, and an expired one
//! refused at reload. Certificates are made for each test with rcgen.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::TestServer;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A CA, and certificates it signs, written as PEM files in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "kvs test CA");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("CA");
        std::fs::write(dir.path().join("ca.pem"), cert.pem()).expect("write");
        Self {
            dir,
            issuer: Issuer::new(params, key),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A certificate for 127.0.0.1 and localhost named `cn`, valid from `from` to `to` days from
    /// now, written as `<name>.pem` and `<name>.key`.
    fn leaf(&self, name: &str, cn: &str, from: i64, to: i64) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().expect("key");
        let mut params =
            CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        let today = time::OffsetDateTime::now_utc();
        params.not_before = today + time::Duration::days(from);
        params.not_after = today + time::Duration::days(to);
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        let (pem, key_path) = (
            self.path(&format!("{name}.pem")),
            self.path(&format!("{name}.key")),
        );
        // Written to a temporary name and renamed, as a certificate manager replaces files.
        let tmp = self.path(&format!("{name}.tmp"));
        std::fs::write(&tmp, key.serialize_pem()).expect("write key");
        std::fs::rename(&tmp, &key_path).expect("rename");
        std::fs::write(&tmp, cert.pem()).expect("write cert");
        std::fs::rename(&tmp, &pem).expect("rename");
        (pem, key_path)
    }
}

async fn tls_server(pki: &Pki, auth_clients: &str) -> (TestServer, u16, u16, u16) {
    let (cert, key) = pki.leaf("server", "kvs one", -1, 30);
    let ca = pki.path("ca.pem");
    let auth = auth_clients.parse().expect("auth");
    let s = TestServer::with(move |c| {
        c.tls.cert_file = Some(cert);
        c.tls.key_file = Some(key);
        c.tls.ca_cert_file = Some(ca);
        c.tls.auth_clients = auth;
        c.tls.http = Some("127.0.0.1:0".parse().expect("addr"));
        c.tls.resp = Some("127.0.0.1:0".parse().expect("addr"));
        c.tls.line = Some("127.0.0.1:0".parse().expect("addr"));
        c.limits.header_timeout = Duration::from_millis(500);
    })
    .await;
    let (h, r, l) = s.tls;
    let port = |a: Option<std::net::SocketAddr>| a.expect("a TLS address").port();
    (s, port(h), port(r), port(l))
}

fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text.trim().to_owned())
}

fn python(script: &str) -> String {
    let (ok, out) = run("python3", &["-c", script]);
    assert!(ok, "python: {out}");
    out
}

/// The PEM certificate the server at `port` presents.
fn served_certificate(port: u16) -> String {
    python(&format!(
        "import ssl; print(ssl.get_server_certificate(('127.0.0.1', {port})))"
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_door_speaks_tls_to_real_clients() {
    let pki = Pki::new();
    let (s, https, rediss, line) = tls_server(&pki, "no").await;
    let ca = pki.path("ca.pem");
    let ca = ca.to_str().expect("utf-8");
    let rport = rediss.to_string();
    let cli = |args: &[&str]| {
        let mut all = vec!["--tls", "--cacert", ca, "-h", "127.0.0.1", "-p", &rport];
        all.extend_from_slice(args);
        run("redis-cli", &all)
    };
    assert_eq!(cli(&["SET", "k", "over tls"]), (true, "OK".into()));
    assert_eq!(cli(&["GET", "k"]), (true, "over tls".into()));
    // The same keys as the plain door.
    let mut plain = redis::Client::open(format!("redis://{}/", s.resp).as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let got: String = redis::cmd("GET")
        .arg("k")
        .query_async(&mut plain)
        .await
        .expect("get");
    assert_eq!(got, "over tls");
    // ACL users over TLS.
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("alice")
        .arg("on")
        .arg(">pw")
        .arg("~*")
        .arg("+@all")
        .query_async(&mut plain)
        .await
        .expect("setuser");
    assert_eq!(
        cli(&[
            "--user",
            "alice",
            "--pass",
            "pw",
            "--no-auth-warning",
            "ACL",
            "WHOAMI"
        ]),
        (true, "alice".into())
    );
    // The Python client, RESP2 and RESP3.
    for protocol in [2, 3] {
        let out = python(&format!(
            "import redis; r = redis.Redis(host='127.0.0.1', port={rediss}, ssl=True, \
             ssl_ca_certs='{ca}', protocol={protocol}, username='alice', password='pw'); \
             r.set('py', 'p{protocol}'); print(r.get('py').decode())"
        ));
        assert_eq!(out, format!("p{protocol}"));
    }
    // curl over HTTPS.
    let url = format!("https://127.0.0.1:{https}/kvs/k");
    assert_eq!(
        run("curl", &["-sS", "--cacert", ca, &url]),
        (true, "over tls".into())
    );
    let (ok, out) = run("curl", &["-sS", &url]);
    assert!(!ok, "curl trusted an unknown CA: {out}");
    // The line protocol over a Python ssl socket.
    let out = python(&format!(
        "import socket, ssl; c = ssl.create_default_context(cafile='{ca}'); \
         s = c.wrap_socket(socket.create_connection(('127.0.0.1', {line})), \
         server_hostname='127.0.0.1'); s.sendall(b'cmd=get | key=k\\n'); \
         print(s.recv(100).decode().strip())"
    ));
    assert_eq!(out, "over tls");
    // TLS 1.2 and 1.3 are both served (rustls has nothing older).
    for version in ["TLSv1_2", "TLSv1_3"] {
        let out = python(&format!(
            "import socket, ssl; c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); \
             c.load_verify_locations('{ca}'); c.minimum_version = ssl.TLSVersion.{version}; \
             c.maximum_version = ssl.TLSVersion.{version}; \
             s = c.wrap_socket(socket.create_connection(('127.0.0.1', {rediss})), \
             server_hostname='127.0.0.1'); print(s.version())"
        ));
        assert_eq!(out, version.replace('_', "."));
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn client_certificates_can_be_required() {
    let pki = Pki::new();
    let (s, _, rediss, _) = tls_server(&pki, "yes").await;
    let (cert, key) = pki.leaf("client", "a client", -1, 30);
    let ca = pki.path("ca.pem");
    let port = rediss.to_string();
    let base = [
        "--tls",
        "--cacert",
        ca.to_str().expect("utf-8"),
        "-h",
        "127.0.0.1",
        "-p",
        &port,
    ];
    let with_cert = [
        "--cert",
        cert.to_str().expect("utf-8"),
        "--key",
        key.to_str().expect("utf-8"),
        "PING",
    ];
    let mut args = base.to_vec();
    args.extend_from_slice(&with_cert);
    assert_eq!(run("redis-cli", &args), (true, "PONG".into()));
    let mut args = base.to_vec();
    args.push("PING");
    let (_, out) = run("redis-cli", &args);
    assert_ne!(out, "PONG", "served without a client certificate");
    // A certificate from another CA is refused too.
    let other = Pki::new();
    let (cert, key) = other.leaf("stranger", "a stranger", -1, 30);
    let mut args = base.to_vec();
    args.extend_from_slice(&[
        "--cert",
        cert.to_str().expect("utf-8"),
        "--key",
        key.to_str().expect("utf-8"),
        "PING",
    ]);
    let (_, out) = run("redis-cli", &args);
    assert_ne!(out, "PONG", "served a certificate from a foreign CA");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_text_and_stalled_handshakes_are_dropped_without_holding_anyone_up() {
    let pki = Pki::new();
    let (s, _, rediss, _) = tls_server(&pki, "no").await;
    // Plain RESP on the TLS port: closed, no answer.
    let mut garbage = TcpStream::connect(("127.0.0.1", rediss))
        .await
        .expect("connect");
    garbage.write_all(b"PING\r\n").await.expect("send");
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), garbage.read(&mut buf)).await;
    assert!(
        !matches!(read, Ok(Ok(n)) if n > 0 && buf.starts_with(b"+PONG")),
        "answered in plain text"
    );
    // A client that connects and says nothing holds no one up, and is cut at the header
    // timeout (500 ms here).
    let mut silent = TcpStream::connect(("127.0.0.1", rediss))
        .await
        .expect("connect");
    let started = Instant::now();
    let ca = pki.path("ca.pem");
    let port = rediss.to_string();
    let (ok, out) = run(
        "redis-cli",
        &[
            "--tls",
            "--cacert",
            ca.to_str().expect("utf-8"),
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "PING",
        ],
    );
    assert!(ok && out == "PONG", "{out}");
    let closed = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the silent client is still open"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replaced_certificate_is_picked_up_and_an_expired_one_is_refused() {
    let pki = Pki::new();
    let (s, _, rediss, _) = tls_server(&pki, "no").await;
    let first = served_certificate(rediss);
    // A new certificate in place of the old: served within a few seconds, no restart.
    let (cert, _) = pki.leaf("server", "kvs two", -1, 30);
    let second = std::fs::read_to_string(&cert).expect("read");
    let deadline = Instant::now() + Duration::from_secs(10);
    while served_certificate(rediss).trim() != second.trim() {
        assert!(
            Instant::now() < deadline,
            "the new certificate was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_ne!(first.trim(), second.trim());
    // An expired one is refused at reload: the one in use stays.
    pki.leaf("server", "kvs expired", -30, -1);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(served_certificate(rediss).trim(), second.trim());
    s.stop().await;
}
