//! The console in a real browser: Debian's chromium, driven through chromedriver (WebDriver) by
//! fantoccini, against the real `kvs` binary. `.ci/run` installs chromium and chromium-driver.
//! A screenshot of each screen is kept under `target/tmp/console/`.

mod common;

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use common::{KVS, Ports, start, stop};

/// How long any one thing may take to appear on screen.
const PATIENCE: Duration = Duration::from_secs(15);

/// chromedriver on a free port, stopped when dropped, with its own temporary directory (where
/// chromium keeps its profile), removed with it.
struct Driver(Child, u16, tempfile::TempDir);

impl Driver {
    fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .env("TMPDIR", tmp.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run chromedriver ({e}): install chromium and chromium-driver (see .ci/run)")
            });
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < PATIENCE, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver(child, port, tmp)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        // Now that chromium is gone, its files can go.
        let _ = std::fs::remove_dir_all(self.2.path());
    }
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,900"],
        }),
    );
    // chromedriver speaks plain HTTP, but the builder wants a TLS provider chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    ClientBuilder::rustls()
        .expect("TLS roots")
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("a browser session")
}

fn redis_cli(ports: &Ports, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &ports.resp.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs (install redis-tools)");
    String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
}

/// Waits until `script` (a JavaScript expression) is true in the page.
async fn until(c: &Client, what: &str, script: &str) {
    let started = Instant::now();
    loop {
        let v = c
            .execute(&format!("return !!({script});"), vec![])
            .await
            .expect("script runs");
        if v.as_bool() == Some(true) {
            return;
        }
        assert!(started.elapsed() < PATIENCE, "waited too long for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn find(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} never appeared: {e}"))
}

/// Clicks `css`, finding it again if the page re-rendered it in between (a live list does).
async fn click(c: &Client, css: &str) {
    let started = Instant::now();
    loop {
        match find(c, css).await.click().await {
            Ok(()) => return,
            Err(e) if started.elapsed() < PATIENCE => {
                eprintln!("clicking {css} again: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cannot click {css}: {e}"),
        }
    }
}

async fn type_into(c: &Client, css: &str, text: &str) {
    let e = find(c, css).await;
    e.clear().await.expect("cleared");
    e.send_keys(text).await.expect("typed");
}

async fn screenshot(c: &Client, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot written");
}

/// A valid PNG of `width` × `height` pixels, made with Python's zlib (the test's own encoder
/// would be more code than the test).
fn png(path: &std::path::Path, width: u32, height: u32) {
    let script = format!(
        "import struct,zlib,sys\n\
         w,h={width},{height}\n\
         raw=b''.join(b'\\x00'+bytes([200,60,30,255])*w for _ in range(h))\n\
         def chunk(t,d): return struct.pack('>I',len(d))+t+d+struct.pack('>I',zlib.crc32(t+d)&0xffffffff)\n\
         png=b'\\x89PNG\\r\\n\\x1a\\n'+chunk(b'IHDR',struct.pack('>IIBBBBB',w,h,8,6,0,0,0))+chunk(b'IDAT',zlib.compress(raw))+chunk(b'IEND',b'')\n\
         open(sys.argv[1],'wb').write(png)\n"
    );
    let ok = Command::new("python3")
        .args(["-c", &script])
        .arg(path)
        .status()
        .expect("python3 runs");
    assert!(ok.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_creates_browses_edits_and_follows_keys_in_a_real_browser() {
    let (server, ports) = start(&[]);
    let driver = Driver::start();
    let c = browser(&driver).await;
    let base = format!("http://127.0.0.1:{}/ui/", ports.http);

    // A JSON key, made in the console.
    c.goto(&format!("{base}#/keys"))
        .await
        .expect("console loads");
    click(&c, "#new-key").await;
    type_into(&c, "#edit-key", "app/config.json").await;
    type_into(&c, "#edit-content-type", "application/json").await;
    type_into(&c, "#edit-value", r#"{"name":"kvs","replicas":3}"#).await;
    click(&c, "#save-button").await;
    until(
        &c,
        "the JSON value shown",
        "document.getElementById('value-json')",
    )
    .await;
    assert_eq!(
        redis_cli(&ports, &["GET", "app/config.json"]),
        r#"{"name":"kvs","replicas":3}"#
    );

    // A PNG key, uploaded in the console.
    let dir = tempfile::tempdir().expect("temp dir");
    let image = dir.path().join("logo.png");
    png(&image, 37, 23);
    c.goto(&format!("{base}#/keys")).await.expect("keys");
    click(&c, "#new-key").await;
    type_into(&c, "#edit-key", "app/logo.png").await;
    find(&c, "#edit-file")
        .await
        .send_keys(&image.display().to_string())
        .await
        .expect("file chosen");
    click(&c, "#save-button").await;
    // Shown as an image of the right size.
    until(
        &c,
        "the PNG rendered at 37 × 23",
        "(() => { const i = document.getElementById('value-image'); \
           return i && i.complete && i.naturalWidth === 37 && i.naturalHeight === 23; })()",
    )
    .await;

    // Both in the prefix tree: the folder first, then the keys inside it.
    c.goto(&format!("{base}#/keys")).await.expect("keys");
    click(&c, ".folder-row[data-prefix='app/']").await;
    find(&c, ".key-row[data-key='app/config.json']").await;
    find(&c, ".key-row[data-key='app/logo.png']").await;
    screenshot(&c, "keys").await;

    // A key changed over RESP while it is viewed updates on screen without a reload.
    click(&c, ".key-row[data-key='app/config.json']").await;
    until(
        &c,
        "the JSON value",
        "document.getElementById('value-json')",
    )
    .await;
    c.execute("window.__sameDocument = true; return null;", vec![])
        .await
        .expect("marked");
    redis_cli(
        &ports,
        &["SET", "app/config.json", r#"{"name":"kvs","replicas":5}"#],
    );
    until(
        &c,
        "the RESP change on screen",
        "document.getElementById('value-view').textContent.includes('5')",
    )
    .await;
    until(&c, "no reload happened", "window.__sameDocument === true").await;
    screenshot(&c, "value").await;

    // An edit that meets a change made over RESP meanwhile: the conflict is shown, not
    // overwritten.
    click(&c, "#edit-button").await;
    type_into(&c, "#edit-value", r#"{"name":"kvs","replicas":7}"#).await;
    redis_cli(&ports, &["SET", "app/config.json", "changed elsewhere"]);
    click(&c, "#save-button").await;
    until(
        &c,
        "the conflict shown",
        "(() => { const e = document.getElementById('conflict'); \
           return e && !e.hidden && /conflict/i.test(e.textContent); })()",
    )
    .await;
    assert_eq!(
        redis_cli(&ports, &["GET", "app/config.json"]),
        "changed elsewhere"
    );
    screenshot(&c, "conflict").await;

    // The dashboard's ops/s rises while `kvs bench` runs: well past what the console's own
    // requests make (a few dozen a second).
    c.goto(&format!("{base}#/dashboard"))
        .await
        .expect("dashboard");
    let mut bench = Command::new(KVS)
        .args(["bench", "--port", &ports.resp.to_string(), "-c", "4"])
        .args(["--duration", "8s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kvs bench starts");
    until(
        &c,
        "ops/s above 1000",
        "Number(document.getElementById('dash-ops-now').textContent.replace(/[^0-9.]/g, '')) > 1000",
    )
    .await;
    screenshot(&c, "dashboard").await;
    let _ = bench.kill();
    let _ = bench.wait();

    // The operations screen: clients, the slow log and persistence.
    c.goto(&format!("{base}#/ops")).await.expect("ops");
    find(&c, "#clients").await;
    find(&c, "#persistence").await;
    screenshot(&c, "operations").await;

    c.close().await.expect("session closed");
    stop(server);
}
