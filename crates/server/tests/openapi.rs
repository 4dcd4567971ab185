//! Keeps `docs/openapi.json` true to the server:
//!
//! - the running server serves exactly the file, and the file is a well-formed OpenAPI 3 document;
//! - every documented operation is sent real requests (success and cheap failures), and each answer
//!   has a documented status, a documented content type, the documented required headers, no
//!   undocumented entity headers, and a JSON body that fits the documented schema;
//! - every method a path does not document is refused with 405 and an `Allow` naming exactly the
//!   documented methods;
//! - every route the server serves is documented, and other paths are 404.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The document as the server embeds it.
const FILE: &str = include_str!("../../../docs/openapi.json");

/// Methods an OpenAPI path item may hold.
const OPENAPI_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Methods sent to every path to find the undocumented ones.
const PROBE_METHODS: [&str; 7] = ["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"];

/// Headers that describe an entry or a resource; when the server sends one, the response must
/// document it.
const WATCHED_HEADERS: [&str; 7] = [
    "cache-control",
    "etag",
    "last-modified",
    "expires",
    "location",
    "allow",
    "retry-after",
];

/// Schema keywords the checker below understands; a document using any other fails the test
/// rather than being checked less than it claims.
const SCHEMA_KEYWORDS: [&str; 17] = [
    "$ref",
    "type",
    "nullable",
    "enum",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "allOf",
    "oneOf",
    "minimum",
    "maximum",
    "minLength",
    "format",
    "description",
    "example",
    "default",
];

fn doc() -> Value {
    serde_json::from_str(FILE).expect("docs/openapi.json is valid JSON")
}

/// Follows `$ref`s (local JSON pointers) until a concrete object.
fn resolve<'a>(doc: &'a Value, mut v: &'a Value) -> &'a Value {
    for _ in 0..16 {
        let Some(r) = v.get("$ref").and_then(Value::as_str) else {
            return v;
        };
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("$ref {r} is not local"));
        v = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("$ref {r} does not resolve"));
    }
    panic!("$ref chain too long");
}

fn paths(doc: &Value) -> &serde_json::Map<String, Value> {
    doc["paths"].as_object().expect("paths is an object")
}

/// Every documented (path, lowercase method).
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in paths(doc) {
        for m in OPENAPI_METHODS {
            if item.get(m).is_some() {
                out.push((path.clone(), m.to_owned()));
            }
        }
    }
    out
}

/// The documented methods of a path, uppercase.
fn documented_methods(doc: &Value, path: &str) -> BTreeSet<String> {
    let item = &doc["paths"][path];
    OPENAPI_METHODS
        .iter()
        .filter(|m| item.get(**m).is_some())
        .map(|m| m.to_uppercase())
        .collect()
}

/// The documented path template a concrete request path falls under. A `{param}` matches one
/// non-empty segment, except as the last segment, where it matches the whole non-empty rest of
/// the path: kvs keys (`/kvs/{key}`) may contain `/`, which OpenAPI templates cannot say.
fn template_for(doc: &Value, path: &str) -> Option<String> {
    let concrete: Vec<&str> = path.split('/').collect();
    paths(doc).keys().find_map(|template| {
        let parts: Vec<&str> = template.split('/').collect();
        let last = parts.len() - 1;
        for (i, part) in parts.iter().enumerate() {
            let is_param = part.starts_with('{') && part.ends_with('}');
            if is_param && i == last {
                let rest = concrete.get(i..).map(|r| r.join("/")).unwrap_or_default();
                return (!rest.is_empty()).then(|| template.clone());
            }
            let segment = concrete.get(i)?;
            if is_param {
                if segment.is_empty() {
                    return None;
                }
            } else if segment != part {
                return None;
            }
        }
        (concrete.len() == parts.len()).then(|| template.clone())
    })
}

/// A concrete request path for a template.
fn concrete(template: &str, key: &str) -> String {
    template.replace("{key}", key)
}

/// Checks `value` against an OpenAPI 3.0 schema (the subset in [`SCHEMA_KEYWORDS`]).
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    let obj = schema
        .as_object()
        .ok_or_else(|| format!("{at}: schema is not an object"))?;
    if let Some(k) = obj.keys().find(|k| !SCHEMA_KEYWORDS.contains(&k.as_str())) {
        return Err(format!(
            "{at}: schema keyword {k} is not checked by this test"
        ));
    }
    if value.is_null() && obj.get("nullable") == Some(&Value::Bool(true)) {
        return Ok(());
    }
    if let Some(all) = obj.get("allOf").and_then(Value::as_array) {
        for s in all {
            validate(doc, s, value, at)?;
        }
    }
    if let Some(one) = obj.get("oneOf").and_then(Value::as_array) {
        let fits = one
            .iter()
            .filter(|s| validate(doc, s, value, at).is_ok())
            .count();
        if fits != 1 {
            return Err(format!(
                "{at}: {value} fits {fits} of the oneOf schemas, not 1"
            ));
        }
    }
    if let Some(t) = obj.get("type") {
        let fits = match t.as_str() {
            Some("object") => value.is_object(),
            Some("array") => value.is_array(),
            Some("string") => value.is_string(),
            Some("integer") => value.is_i64() || value.is_u64(),
            Some("number") => value.is_number(),
            Some("boolean") => value.is_boolean(),
            _ => return Err(format!("{at}: unknown type {t}")),
        };
        if !fits {
            return Err(format!("{at}: {value} is not of type {t}"));
        }
    }
    if let Some(values) = obj.get("enum").and_then(Value::as_array)
        && !values.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {values:?}"));
    }
    if let (Some(min), Some(n)) = (obj.get("minimum").and_then(Value::as_f64), value.as_f64())
        && n < min
    {
        return Err(format!("{at}: {n} is below the minimum {min}"));
    }
    if let (Some(max), Some(n)) = (obj.get("maximum").and_then(Value::as_f64), value.as_f64())
        && n > max
    {
        return Err(format!("{at}: {n} is above the maximum {max}"));
    }
    if let (Some(min), Some(s)) = (obj.get("minLength").and_then(Value::as_u64), value.as_str())
        && (s.chars().count() as u64) < min
    {
        return Err(format!("{at}: {s:?} is shorter than {min}"));
    }
    match (obj.get("format").and_then(Value::as_str), value) {
        (Some("date-time"), Value::String(s)) => {
            humantime::parse_rfc3339(s)
                .map_err(|e| format!("{at}: {s:?} is not a date-time: {e}"))?;
        }
        (Some("int64"), Value::Number(n)) if !n.is_i64() => {
            return Err(format!("{at}: {n} is not an int64"));
        }
        _ => {}
    }
    if let Some(o) = value.as_object() {
        for name in obj
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = name
                .as_str()
                .ok_or_else(|| format!("{at}: required holds a non-string"))?;
            if !o.contains_key(name) {
                return Err(format!(
                    "{at}: required member {name} is missing from {value}"
                ));
            }
        }
        let props = obj.get("properties").and_then(Value::as_object);
        for (name, member) in o {
            match props.and_then(|p| p.get(name)) {
                Some(s) => validate(doc, s, member, &format!("{at}.{name}"))?,
                None if obj.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return Err(format!("{at}: member {name} is not documented"));
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(arr)) = (obj.get("items"), value.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            validate(doc, items, item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// Whether a documented media type (possibly `*/*` or `type/*`) covers an actual one.
fn media_matches(documented: &str, actual: &str) -> bool {
    let documented = documented.to_ascii_lowercase();
    match documented.split_once('/') {
        Some(("*", "*")) => true,
        Some((t, "*")) => actual.split_once('/').is_some_and(|(at, _)| at == t),
        _ => documented == actual,
    }
}

fn is_json(media: &str) -> bool {
    media == "application/json" || media.ends_with("+json")
}

/// One answer from the server, whichever way it was sent.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("response has a {name} header"))
            .to_str()
            .expect("header is text")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("body is JSON")
    }
}

/// A client that opens a fresh connection for every request, so a connection the server closes
/// after an error can never be reused.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .expect("client builds")
}

/// Sends raw bytes on a new connection and reads until the server closes it. For what `reqwest`
/// cannot do: a body that stalls, a declared length the body never reaches, an oversized head, a
/// connection refused before any request.
async fn raw(addr: SocketAddr, bytes: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    stream.write_all(bytes).await.expect("request written");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut buf))
        .await
        .expect("the server answers and closes in time")
        .expect("response read");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "a complete response head in {:?}",
                String::from_utf8_lossy(&buf)
            )
        });
    let head = std::str::from_utf8(&buf[..split]).expect("head is text");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let code: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("a status in {status_line:?}"));
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').expect("header line");
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes()).expect("header name"),
            HeaderValue::from_str(value.trim()).expect("header value"),
        );
    }
    let mut body = buf[split + 4..].to_vec();
    if let Some(len) = headers.get(header::CONTENT_LENGTH) {
        let len: usize = len.to_str().expect("text").parse().expect("a length");
        body.truncate(len);
    }
    Answer {
        status: StatusCode::from_u16(code).expect("status"),
        headers,
        body,
    }
}

/// Sends requests, checks each answer against the document, and remembers which operations it
/// has exercised.
struct Exerciser {
    doc: Value,
    client: reqwest::Client,
    addr: SocketAddr,
    seen: BTreeSet<(String, String)>,
    checked: usize,
}

impl Exerciser {
    fn new(server: &common::TestServer) -> Self {
        Self {
            doc: doc(),
            client: fresh_client(),
            addr: server.addr,
            seen: BTreeSet::new(),
            checked: 0,
        }
    }

    fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("http://{}{}", self.addr, path))
    }

    /// Sends `request`, which must fall under `template`, and checks the answer is `expect` and
    /// as documented.
    async fn send(&mut self, template: &str, request: RequestBuilder, expect: u16) -> Answer {
        let request = request.build().expect("request builds");
        let method = request.method().clone();
        let path = request.url().path().to_owned();
        let response = self
            .client
            .execute(request)
            .await
            .unwrap_or_else(|e| panic!("{method} {path} is answered: {e}"));
        let answer = Answer {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.bytes().await.expect("body read").to_vec(),
        };
        self.check(template, &method, &path, &answer, expect);
        answer
    }

    /// Sends raw bytes (whose request line is `method path`) and checks the answer.
    async fn send_raw(&mut self, template: &str, bytes: &[u8], expect: u16) -> Answer {
        let line = bytes.split(|b| *b == b'\r').next().expect("request line");
        let line = std::str::from_utf8(line).expect("request line is text");
        let mut words = line.split(' ');
        let method = Method::from_bytes(words.next().expect("method").as_bytes()).expect("method");
        let target = words.next().expect("target");
        let path = target.split('?').next().unwrap_or(target).to_owned();
        let answer = raw(self.addr, bytes).await;
        self.check(template, &method, &path, &answer, expect);
        answer
    }

    /// Opens a connection, sends nothing, and checks what the server says as if it answered
    /// `method path`: for answers the server gives before reading any request.
    async fn send_nothing(
        &mut self,
        template: &str,
        method: Method,
        path: &str,
        expect: u16,
    ) -> Answer {
        let answer = raw(self.addr, b"").await;
        self.check(template, &method, path, &answer, expect);
        answer
    }

    fn check(&mut self, template: &str, method: &Method, path: &str, a: &Answer, expect: u16) {
        let what = format!("{method} {path}");
        assert_eq!(
            template_for(&self.doc, path).as_deref(),
            Some(template),
            "{what} falls under the documented path {template}"
        );
        let op = self.doc["paths"][template]
            .get(method.as_str().to_ascii_lowercase())
            .unwrap_or_else(|| panic!("{method} {template} is documented"))
            .clone();
        assert_eq!(
            a.status.as_u16(),
            expect,
            "{what}: status (body {:?})",
            String::from_utf8_lossy(&a.body)
        );
        let code = a.status.as_u16().to_string();
        let response = op["responses"].get(&code).unwrap_or_else(|| {
            panic!("{what}: status {code} is documented for {method} {template}")
        });
        let response = resolve(&self.doc, response);
        assert!(
            response
                .get("description")
                .and_then(Value::as_str)
                .is_some_and(|d| !d.is_empty()),
            "{what}: response {code} has a description"
        );

        let documented: BTreeMap<String, &Value> = response
            .get("headers")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(name, h)| (name.to_ascii_lowercase(), resolve(&self.doc, h)))
            .collect();
        for (name, h) in &documented {
            if h.get("required") == Some(&Value::Bool(true)) {
                assert!(
                    a.headers.contains_key(name.as_str()),
                    "{what}: {code} documents the required header {name}, got {:?}",
                    a.headers
                );
            }
        }
        for name in WATCHED_HEADERS {
            if a.headers.contains_key(name) {
                assert!(
                    documented.contains_key(name),
                    "{what}: {code} sends {name}, which it does not document"
                );
            }
        }

        match response.get("content").and_then(Value::as_object) {
            None => assert!(
                a.body.is_empty(),
                "{what}: {code} documents no body but sent {:?}",
                String::from_utf8_lossy(&a.body)
            ),
            Some(_) if *method == Method::HEAD => {
                assert!(a.body.is_empty(), "{what}: a HEAD answer has no body");
            }
            Some(content) => {
                let media = a
                    .headers
                    .get(header::CONTENT_TYPE)
                    .unwrap_or_else(|| panic!("{what}: {code} has a body, so a Content-Type"))
                    .to_str()
                    .expect("content type is text");
                let media = media
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                let (documented_media, media_type) = content
                    .iter()
                    .find(|(k, _)| media_matches(k, &media))
                    .unwrap_or_else(|| {
                        panic!(
                            "{what}: Content-Type {media} is one of the documented {:?}",
                            content.keys().collect::<Vec<_>>()
                        )
                    });
                if is_json(documented_media) {
                    let body: Value = serde_json::from_slice(&a.body).unwrap_or_else(|e| {
                        panic!(
                            "{what}: {code} body is JSON ({e}): {:?}",
                            String::from_utf8_lossy(&a.body)
                        )
                    });
                    let schema = media_type.get("schema").unwrap_or_else(|| {
                        panic!("{what}: {code} {documented_media} has a schema")
                    });
                    if let Err(e) = validate(&self.doc, schema, &body, "body") {
                        panic!("{what}: {code} body does not fit its documented schema: {e}");
                    }
                }
            }
        }
        self.seen
            .insert((template.to_owned(), method.as_str().to_ascii_lowercase()));
        self.checked += 1;
    }

    fn assert_every_operation_exercised(&self) {
        let missing: Vec<_> = operations(&self.doc)
            .into_iter()
            .filter(|op| !self.seen.contains(op))
            .collect();
        assert!(
            missing.is_empty(),
            "documented operations never exercised: {missing:?}"
        );
    }
}

fn etag_of(body: &Value) -> String {
    format!("\"{}\"", body["version"].as_u64().expect("a version"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_serves_the_document_and_it_is_well_formed() {
    let server = common::TestServer::start().await;
    let response = common::client()
        .get(server.url("/openapi.json"))
        .send()
        .await
        .expect("GET /openapi.json is answered");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .expect("a Content-Type")
        .to_str()
        .expect("text")
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let served: Value = response.json().await.expect("the served document is JSON");
    server.stop().await;

    let doc = doc();
    assert_eq!(served, doc, "the server serves docs/openapi.json");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "an OpenAPI 3 document"
    );
    assert_eq!(
        doc["info"]["version"],
        env!("CARGO_PKG_VERSION"),
        "info.version is the crate's"
    );
    assert!(doc["info"]["title"].is_string());
    assert!(!paths(&doc).is_empty());

    // Every $ref resolves.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(o) => {
                if let Some(r) = o.get("$ref").and_then(Value::as_str) {
                    out.push(r);
                }
                o.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{r} is local"));
        assert!(doc.pointer(pointer).is_some(), "$ref {r} resolves");
    }

    // Every schema uses only keywords the checks understand (validation of a sample value walks
    // the schema's own keywords; the full walk is in `validate` as answers arrive).
    for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
        let keys = schema.as_object().expect("a schema object").keys();
        for k in keys {
            assert!(
                SCHEMA_KEYWORDS.contains(&k.as_str()),
                "schema {name} uses {k}"
            );
        }
    }

    let mut ids = BTreeSet::new();
    for (path, method) in operations(&doc) {
        let item = &doc["paths"][&path];
        let op = &item[&method];
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} has an operationId"));
        assert!(ids.insert(id.to_owned()), "operationId {id} is unique");
        assert!(
            op["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{method} {path} is described"
        );
        let responses = op["responses"].as_object().expect("responses");
        assert!(!responses.is_empty(), "{method} {path} has responses");
        for (code, r) in responses {
            assert!(
                code.len() == 3 && code.parse::<u16>().is_ok(),
                "{method} {path}: {code} is an exact status"
            );
            assert!(
                resolve(&doc, r)["description"].is_string(),
                "{method} {path}: {code} is described"
            );
        }
        // Limits every request can run into, whatever the route.
        for code in ["431", "503"] {
            assert!(
                responses.contains_key(code),
                "{method} {path} documents {code}"
            );
        }
        // Every template parameter is declared as a required path parameter.
        let params: Vec<&Value> = item
            .get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .chain(
                op.get("parameters")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten(),
            )
            .map(|p| resolve(&doc, p))
            .collect();
        for segment in path.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                assert!(
                    params
                        .iter()
                        .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true),
                    "{method} {path} declares the path parameter {name}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_operation_answers_as_documented() {
    let server = common::TestServer::with(|c| {
        c.limits.max_value_size = 1024;
        c.limits.body_timeout = Duration::from_millis(400);
    })
    .await;
    let mut t = Exerciser::new(&server);
    const KEY: &str = "/kvs/{key}";
    let long_key = format!("/kvs/{}", "k".repeat(4097));
    let in_an_hour = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
    let an_hour_ago = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(3600));
    // A body that never arrives, and one declared larger than the 1024-byte limit.
    let stalled = |line: &str| {
        format!(
            "{line} HTTP/1.1\r\nHost: kvs\r\nContent-Length: 10\r\nConnection: close\r\n\r\nabc"
        )
    };
    let oversized = |line: &str| {
        format!("{line} HTTP/1.1\r\nHost: kvs\r\nContent-Length: 2048\r\nConnection: close\r\n\r\n")
    };

    // PUT /kvs/{key}: create, replace, conditions, expiry, limits.
    let a = t
        .send(
            KEY,
            t.req(Method::PUT, "/kvs/doc/a%20b?ttl=10m")
                .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body("hello"),
            201,
        )
        .await;
    let created = a.json();
    assert_eq!(created["key"], "doc/a b");
    assert_eq!(a.header("etag"), etag_of(&created), "ETag is the version");
    assert_eq!(a.header("location"), "/kvs/doc/a%20b");
    let a = t
        .send(
            KEY,
            t.req(Method::PUT, "/kvs/doc/a%20b?ttl=10m")
                .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body("hello again"),
            200,
        )
        .await;
    let replaced = a.json();
    assert!(replaced["version"].as_u64() > created["version"].as_u64());
    assert!(!a.headers.contains_key(header::LOCATION));
    let etag = etag_of(&replaced);
    t.send(
        KEY,
        t.req(Method::PUT, "/kvs/doc/a%20b")
            .header(header::IF_MATCH, "\"999999\""),
        412,
    )
    .await;
    t.send(
        KEY,
        t.req(Method::PUT, "/kvs/doc/a%20b")
            .header(header::IF_MATCH, "\"abc\""),
        412,
    )
    .await;
    let a = t
        .send(
            KEY,
            t.req(Method::PUT, "/kvs/doc/a%20b?ttl=10m")
                .header(header::IF_MATCH, etag.as_str())
                .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body("hello, conditionally"),
            200,
        )
        .await;
    let etag = etag_of(&a.json());
    t.send(
        KEY,
        t.req(Method::PUT, "/kvs/doc/a%20b")
            .header(header::IF_NONE_MATCH, "*"),
        412,
    )
    .await;
    t.send(
        KEY,
        t.req(Method::PUT, "/kvs/doc/new")
            .header(header::IF_NONE_MATCH, "*")
            .body("n"),
        201,
    )
    .await;
    t.send(
        KEY,
        t.req(Method::PUT, "/kvs/doc/new")
            .header(header::IF_NONE_MATCH, "\"1\""),
        400,
    )
    .await;
    t.send(
        KEY,
        t.req(Method::PUT, "/kvs/doc/new")
            .header(header::IF_MATCH, "\"1\", \"2\""),
        400,
    )
    .await;
    t.send(
        KEY,
        t.req(Method::PUT, "/kvs/doc/new")
            .header(header::IF_MATCH, "*")
            .header(header::IF_NONE_MATCH, "*"),
        400,
    )
    .await;
    t.send(KEY, t.req(Method::PUT, "/kvs/doc/x?ttl=soon"), 400)
        .await;
    t.send(KEY, t.req(Method::PUT, "/kvs/doc/x?ttl=0"), 400)
        .await;
    t.send(
        KEY,
        t.req(Method::PUT, "/kvs/doc/x?ttl=1s")
            .header(header::EXPIRES, in_an_hour.as_str()),
        400,
    )
    .await;
    t.send(
        KEY,
        t.req(Method::PUT, "/kvs/doc/x")
            .header(header::EXPIRES, an_hour_ago.as_str()),
        400,
    )
    .await;
    t.send(
        KEY,
        t.req(Method::PUT, "/kvs/doc/x")
            .header(header::EXPIRES, "tomorrow"),
        400,
    )
    .await;
    t.send(
        KEY,
        t.req(Method::PUT, "/kvs/doc/expires")
            .header(header::EXPIRES, in_an_hour.as_str())
            .body("e"),
        201,
    )
    .await;
    // The ttl forms the document names.
    for ttl in ["30", "500ms", "10m", "1h30m"] {
        let path = format!("/kvs/doc/ttl-{ttl}?ttl={ttl}");
        t.send(KEY, t.req(Method::PUT, &path).body("t"), 201).await;
    }
    let a = t
        .send(
            KEY,
            t.req(Method::PUT, "/kvs/%FF").body("not utf-8 key"),
            201,
        )
        .await;
    assert_eq!(a.json()["key"], "%FF");
    assert_eq!(a.json()["key_encoding"], "percent");
    t.send(KEY, t.req(Method::PUT, &long_key), 414).await;
    t.send_raw(KEY, oversized("PUT /kvs/doc/big").as_bytes(), 413)
        .await;
    t.send_raw(KEY, stalled("PUT /kvs/doc/slow").as_bytes(), 408)
        .await;

    // POST /kvs/{key}: the same as PUT.
    let a = t
        .send(
            KEY,
            t.req(Method::POST, "/kvs/doc/posted").body(vec![0u8, 1, 2]),
            201,
        )
        .await;
    let posted = etag_of(&a.json());
    let a = t
        .send(
            KEY,
            t.req(Method::POST, "/kvs/doc/posted")
                .header(header::IF_MATCH, posted.as_str())
                .body(vec![0u8, 1, 2, 3]),
            200,
        )
        .await;
    let posted = etag_of(&a.json());
    t.send(
        KEY,
        t.req(Method::POST, "/kvs/doc/posted")
            .header(header::IF_MATCH, "\"999999\""),
        412,
    )
    .await;
    t.send(KEY, t.req(Method::POST, "/kvs/doc/posted?ttl=-1"), 400)
        .await;
    t.send(KEY, t.req(Method::POST, &long_key), 414).await;
    t.send_raw(KEY, oversized("POST /kvs/doc/big").as_bytes(), 413)
        .await;
    t.send_raw(KEY, stalled("POST /kvs/doc/slow").as_bytes(), 408)
        .await;

    // GET /kvs/{key}: the value as written, revalidation, failures.
    let a = t.send(KEY, t.req(Method::GET, "/kvs/doc/a%20b"), 200).await;
    assert_eq!(a.body, b"hello, conditionally");
    assert_eq!(a.header("content-type"), "text/plain; charset=utf-8");
    assert_eq!(a.header("etag"), etag);
    assert!(
        a.headers.contains_key(header::EXPIRES),
        "a key with a ttl has Expires"
    );
    let a = t
        .send(KEY, t.req(Method::GET, "/kvs/doc/posted"), 200)
        .await;
    assert_eq!(a.body, [0, 1, 2, 3]);
    assert_eq!(a.header("content-type"), "application/octet-stream");
    assert_eq!(a.header("etag"), posted);
    assert!(
        !a.headers.contains_key(header::EXPIRES),
        "a permanent key has no Expires"
    );
    let a = t
        .send(KEY, t.req(Method::GET, "/kvs/doc/expires"), 200)
        .await;
    assert_eq!(a.header("expires"), in_an_hour);
    let a = t.send(KEY, t.req(Method::GET, "/kvs/%FF"), 200).await;
    assert_eq!(a.body, b"not utf-8 key");
    t.send(
        KEY,
        t.req(Method::GET, "/kvs/doc/a%20b")
            .header(header::IF_NONE_MATCH, etag.as_str()),
        304,
    )
    .await;
    t.send(
        KEY,
        t.req(Method::GET, "/kvs/doc/a%20b")
            .header(header::IF_NONE_MATCH, "W/\"999999\", \"1\""),
        200,
    )
    .await;
    t.send(
        KEY,
        t.req(Method::GET, "/kvs/doc/a%20b")
            .header(header::IF_NONE_MATCH, "7"),
        400,
    )
    .await;
    t.send(KEY, t.req(Method::GET, "/kvs/doc/missing"), 404)
        .await;
    t.send(KEY, t.req(Method::GET, &long_key), 414).await;

    // HEAD /kvs/{key}: GET's status and headers without the body.
    let a = t
        .send(KEY, t.req(Method::HEAD, "/kvs/doc/a%20b"), 200)
        .await;
    assert_eq!(
        a.header("content-length"),
        "hello, conditionally".len().to_string()
    );
    assert_eq!(a.header("content-type"), "text/plain; charset=utf-8");
    t.send(
        KEY,
        t.req(Method::HEAD, "/kvs/doc/a%20b")
            .header(header::IF_NONE_MATCH, "*"),
        304,
    )
    .await;
    t.send(
        KEY,
        t.req(Method::HEAD, "/kvs/doc/a%20b")
            .header(header::IF_NONE_MATCH, "x"),
        400,
    )
    .await;
    t.send(KEY, t.req(Method::HEAD, "/kvs/doc/missing"), 404)
        .await;
    t.send(KEY, t.req(Method::HEAD, &long_key), 414).await;

    // DELETE /kvs/{key}.
    t.send(
        KEY,
        t.req(Method::DELETE, "/kvs/doc/new")
            .header(header::IF_MATCH, "\"999999\""),
        412,
    )
    .await;
    t.send(
        KEY,
        t.req(Method::DELETE, "/kvs/doc/new")
            .header(header::IF_MATCH, "\"1\", \"2\""),
        400,
    )
    .await;
    t.send(KEY, t.req(Method::DELETE, "/kvs/doc/new"), 204)
        .await;
    t.send(KEY, t.req(Method::DELETE, "/kvs/doc/new"), 404)
        .await;
    t.send(
        KEY,
        t.req(Method::DELETE, "/kvs/doc/new")
            .header(header::IF_MATCH, "*"),
        412,
    )
    .await;
    t.send(KEY, t.req(Method::GET, "/kvs/doc/new"), 404).await;
    t.send(
        KEY,
        t.req(Method::DELETE, "/kvs/doc/posted")
            .header(header::IF_MATCH, posted.as_str()),
        204,
    )
    .await;
    t.send(KEY, t.req(Method::DELETE, &long_key), 414).await;

    // PATCH /kvs/{key}: the expiry alone.
    let a = t
        .send(KEY, t.req(Method::PUT, "/kvs/doc/ttl").body("kept"), 201)
        .await;
    let first = etag_of(&a.json());
    let a = t
        .send(KEY, t.req(Method::PATCH, "/kvs/doc/ttl?ttl=10m"), 200)
        .await;
    assert!(a.json()["expires_at"].is_string(), "{:?}", a.json());
    assert!(a.headers.contains_key(header::EXPIRES));
    let a = t.send(KEY, t.req(Method::GET, "/kvs/doc/ttl"), 200).await;
    assert_eq!(a.body, b"kept", "a PATCH keeps the value");
    assert!(a.headers.contains_key(header::EXPIRES));
    t.send(
        KEY,
        t.req(Method::PATCH, "/kvs/doc/ttl?persist")
            .header(header::IF_MATCH, first.as_str()),
        412,
    )
    .await;
    let a = t
        .send(KEY, t.req(Method::PATCH, "/kvs/doc/ttl?persist"), 200)
        .await;
    assert_eq!(a.json()["expires_at"], Value::Null);
    assert!(!a.headers.contains_key(header::EXPIRES));
    let now = etag_of(&a.json());
    t.send(
        KEY,
        t.req(Method::PATCH, "/kvs/doc/ttl")
            .header(header::EXPIRES, in_an_hour.as_str())
            .header(header::IF_MATCH, now.as_str()),
        200,
    )
    .await;
    for bad in [
        t.req(Method::PATCH, "/kvs/doc/ttl"),
        t.req(Method::PATCH, "/kvs/doc/ttl?ttl=0"),
        t.req(Method::PATCH, "/kvs/doc/ttl?ttl=5&persist"),
        t.req(Method::PATCH, "/kvs/doc/ttl")
            .header(header::EXPIRES, an_hour_ago.as_str()),
        t.req(Method::PATCH, "/kvs/doc/ttl?ttl=5").body("a value"),
        t.req(Method::PATCH, "/kvs/doc/ttl?ttl=5")
            .header(header::IF_MATCH, "\"1\", \"2\""),
    ] {
        t.send(KEY, bad, 400).await;
    }
    t.send(KEY, t.req(Method::PATCH, "/kvs/doc/none?ttl=5"), 404)
        .await;
    t.send(
        KEY,
        t.req(Method::PATCH, "/kvs/doc/none?ttl=5")
            .header(header::IF_MATCH, "*"),
        412,
    )
    .await;
    t.send(KEY, t.req(Method::PATCH, &format!("{long_key}?ttl=5")), 414)
        .await;

    // GET and HEAD /kvs: pages, cursors, bad parameters.
    for k in ["list/c", "list/a", "list/b"] {
        t.send(KEY, t.req(Method::PUT, &format!("/kvs/{k}")).body(k), 201)
            .await;
    }
    let a = t
        .send("/kvs", t.req(Method::GET, "/kvs?prefix=list/&limit=2"), 200)
        .await;
    let page = a.json();
    let names = |page: &Value| -> Vec<String> {
        page["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["key"].as_str().expect("a key").to_owned())
            .collect()
    };
    assert_eq!(names(&page), ["list/a", "list/b"]);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let a = t
        .send(
            "/kvs",
            t.req(
                Method::GET,
                &format!("/kvs?prefix=list/&limit=2&cursor={cursor}"),
            ),
            200,
        )
        .await;
    let page = a.json();
    assert_eq!(names(&page), ["list/c"]);
    assert!(
        page["next_cursor"].is_null(),
        "the last page has no next_cursor"
    );
    let a = t.send("/kvs", t.req(Method::GET, "/kvs"), 200).await;
    let page = a.json();
    let keys = page["keys"].as_array().expect("keys");
    let ff = keys
        .iter()
        .find(|k| k["key"] == "%FF")
        .expect("the non-UTF-8 key is listed");
    assert_eq!(ff["key_encoding"], "percent");
    let ab = keys
        .iter()
        .find(|k| k["key"] == "doc/a b")
        .expect("doc/a b is listed");
    assert!(
        ab["expires_at"].is_string(),
        "a key with a ttl lists its expiry"
    );
    assert_eq!(ab["content_type"], "text/plain; charset=utf-8");
    let lc = keys
        .iter()
        .find(|k| k["key"] == "list/c")
        .expect("list/c is listed");
    assert!(
        lc["expires_at"].is_null(),
        "a permanent key lists a null expiry"
    );
    assert_eq!(lc["size"], 6);
    for bad in [
        "limit=0",
        "limit=1001",
        "limit=ten",
        "cursor=zz",
        "cursor=abc",
    ] {
        t.send("/kvs", t.req(Method::GET, &format!("/kvs?{bad}")), 400)
            .await;
    }
    t.send("/kvs", t.req(Method::HEAD, "/kvs?prefix=list/"), 200)
        .await;
    t.send("/kvs", t.req(Method::HEAD, "/kvs?limit=0"), 400)
        .await;

    // Blocking reads answer once, with X-Kvs-Index; resuming a watch from an id the server never
    // gave is 410 with the oldest position kept. (A watch's stream never ends by itself, so its
    // events are checked in tests/watch.rs.)
    let a = t
        .send(
            "/kvs",
            t.req(Method::GET, "/kvs?prefix=list/&wait=100ms"),
            200,
        )
        .await;
    let index = a.header("x-kvs-index").to_owned();
    assert!(index.parse::<u64>().is_ok(), "X-Kvs-Index {index:?}");
    t.send(
        "/kvs",
        t.req(
            Method::GET,
            &format!("/kvs?prefix=list/&wait=100ms&index={index}"),
        ),
        200,
    )
    .await;
    t.send(
        "/kvs",
        t.req(Method::GET, "/kvs?watch&since=99999999999999999"),
        410,
    )
    .await;
    t.send(
        "/kvs/{key}",
        t.req(Method::GET, "/kvs/list/a?watch&since=99999999999999999"),
        410,
    )
    .await;
    t.send(
        "/kvs/{key}",
        t.req(Method::GET, "/kvs/list/a?wait=100ms&index=0"),
        200,
    )
    .await;

    // PUT and POST /person/update.
    let a = t
        .send(
            "/person/update",
            t.req(Method::PUT, "/person/update")
                .body(r#"{"id":42,"name":"Ada"}"#),
            200,
        )
        .await;
    assert_eq!(a.json()["Name"], "Ada");
    let a = t
        .send(
            "/person/update",
            t.req(Method::POST, "/person/update")
                .body(r#"{"ID":"7","Name":"Grace"}"#),
            200,
        )
        .await;
    assert_eq!(a.json()["Name"], "Grace");
    t.send(
        "/person/update",
        t.req(Method::PUT, "/person/update").body("not json"),
        400,
    )
    .await;
    t.send(
        "/person/update",
        t.req(Method::POST, "/person/update").body(r#"{"id":1}"#),
        400,
    )
    .await;
    t.send(
        "/person/update",
        t.req(Method::POST, "/person/update")
            .body(r#"{"name":"x"}"#),
        400,
    )
    .await;
    t.send_raw(
        "/person/update",
        oversized("PUT /person/update").as_bytes(),
        413,
    )
    .await;
    t.send_raw(
        "/person/update",
        oversized("POST /person/update").as_bytes(),
        413,
    )
    .await;
    t.send_raw(
        "/person/update",
        stalled("PUT /person/update").as_bytes(),
        408,
    )
    .await;
    t.send_raw(
        "/person/update",
        stalled("POST /person/update").as_bytes(),
        408,
    )
    .await;

    // GET and HEAD /person/get.
    let a = t
        .send("/person/get", t.req(Method::GET, "/person/get?id=42"), 200)
        .await;
    assert_eq!(a.json()["Name"], "Ada");
    let a = t
        .send(
            "/person/get",
            t.req(Method::GET, "/person/get").body(r#"{"id":7}"#),
            200,
        )
        .await;
    assert_eq!(a.json()["Name"], "Grace");
    t.send("/person/get", t.req(Method::GET, "/person/get"), 400)
        .await;
    t.send("/person/get", t.req(Method::GET, "/person/get?id=abc"), 400)
        .await;
    t.send(
        "/person/get",
        t.req(Method::GET, "/person/get").body("{"),
        400,
    )
    .await;
    t.send("/person/get", t.req(Method::GET, "/person/get?id=999"), 404)
        .await;
    t.send_raw("/person/get", oversized("GET /person/get").as_bytes(), 413)
        .await;
    t.send_raw("/person/get", stalled("GET /person/get").as_bytes(), 408)
        .await;
    t.send("/person/get", t.req(Method::HEAD, "/person/get?id=42"), 200)
        .await;
    t.send(
        "/person/get",
        t.req(Method::HEAD, "/person/get?id=999"),
        404,
    )
    .await;
    t.send("/person/get", t.req(Method::HEAD, "/person/get"), 400)
        .await;
    // The record is an ordinary key.
    let a = t.send(KEY, t.req(Method::GET, "/kvs/person/42"), 200).await;
    assert_eq!(a.header("content-type"), "application/json");
    assert_eq!(
        serde_json::from_slice::<Value>(&a.body).expect("JSON")["Name"],
        "Ada"
    );

    // /healthz and /openapi.json.
    t.send("/healthz", t.req(Method::GET, "/healthz"), 200)
        .await;
    t.send("/healthz", t.req(Method::HEAD, "/healthz"), 200)
        .await;
    t.send("/openapi.json", t.req(Method::GET, "/openapi.json"), 200)
        .await;
    t.send("/openapi.json", t.req(Method::HEAD, "/openapi.json"), 200)
        .await;

    // /admin on an in-memory server: no snapshots, and the mode says why.
    t.send(
        "/admin/snapshot",
        t.req(Method::POST, "/admin/snapshot"),
        409,
    )
    .await;
    let a = t
        .send(
            "/admin/persistence",
            t.req(Method::GET, "/admin/persistence"),
            200,
        )
        .await;
    assert_eq!(a.json()["mode"], "in-memory");
    t.send(
        "/admin/persistence",
        t.req(Method::HEAD, "/admin/persistence"),
        200,
    )
    .await;
    let a = t
        .send("/admin/memory", t.req(Method::GET, "/admin/memory"), 200)
        .await;
    assert_eq!(a.json()["maxmemory_policy"], "noeviction");
    t.send("/admin/memory", t.req(Method::HEAD, "/admin/memory"), 200)
        .await;

    // What the console and monitoring read.
    let a = t
        .send("/metrics", t.req(Method::GET, "/metrics"), 200)
        .await;
    assert!(String::from_utf8_lossy(&a.body).contains("# TYPE kvs_keys gauge"));
    t.send("/metrics", t.req(Method::HEAD, "/metrics"), 200)
        .await;
    let a = t
        .send(
            "/admin/stats",
            t.req(Method::GET, "/admin/stats?seconds=5"),
            200,
        )
        .await;
    assert!(a.json()["series"].is_array());
    t.send("/admin/stats", t.req(Method::HEAD, "/admin/stats"), 200)
        .await;
    t.send(
        "/admin/stats",
        t.req(Method::GET, "/admin/stats?seconds=0"),
        400,
    )
    .await;
    t.send("/admin/slowlog", t.req(Method::GET, "/admin/slowlog"), 200)
        .await;
    t.send("/admin/slowlog", t.req(Method::HEAD, "/admin/slowlog"), 200)
        .await;
    t.send(
        "/admin/slowlog",
        t.req(Method::DELETE, "/admin/slowlog"),
        204,
    )
    .await;
    // A Redis-protocol client to list and to kill.
    let mut redis_client = TcpStream::connect(server.resp).await.expect("connects");
    redis_client
        .write_all(b"*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n")
        .await
        .expect("written");
    let mut buf = [0u8; 64];
    let n = redis_client.read(&mut buf).await.expect("read");
    let id = String::from_utf8_lossy(&buf[1..n]).trim().to_owned();
    let a = t
        .send("/admin/clients", t.req(Method::GET, "/admin/clients"), 200)
        .await;
    assert_eq!(a.json()["clients"][0]["id"].to_string(), id);
    t.send("/admin/clients", t.req(Method::HEAD, "/admin/clients"), 200)
        .await;
    let kill = format!("/admin/clients/{id}");
    t.send("/admin/clients/{id}", t.req(Method::DELETE, &kill), 204)
        .await;
    t.send("/admin/clients/{id}", t.req(Method::DELETE, &kill), 404)
        .await;
    t.send(
        "/admin/clients/{id}",
        t.req(Method::DELETE, "/admin/clients/abc"),
        400,
    )
    .await;
    let a = t.send("/ui", t.req(Method::GET, "/ui"), 308).await;
    assert_eq!(a.header("location"), "/ui/");
    t.send("/ui", t.req(Method::HEAD, "/ui"), 308).await;
    t.send("/ui/", t.req(Method::GET, "/ui/"), 200).await;
    t.send("/ui/", t.req(Method::HEAD, "/ui/"), 200).await;
    t.send("/ui/{file}", t.req(Method::GET, "/ui/app.js"), 200)
        .await;
    t.send("/ui/{file}", t.req(Method::HEAD, "/ui/style.css"), 200)
        .await;
    t.send("/ui/{file}", t.req(Method::GET, "/ui/nothing.js"), 404)
        .await;
    // Folders in a listing, and a delimiter too long.
    let a = t
        .send("/kvs", t.req(Method::GET, "/kvs?prefix=&delimiter=/"), 200)
        .await;
    assert!(a.json()["prefixes"].is_array());
    let long = format!("/kvs?delimiter={}", "d".repeat(65));
    t.send("/kvs", t.req(Method::GET, &long), 400).await;

    // Over a memory limit with nothing to evict: writes get 507, reads still work.
    server.engine.memory().set_limit(1);
    t.send(KEY, t.req(Method::PUT, "/kvs/over").body("v"), 507)
        .await;
    t.send(KEY, t.req(Method::POST, "/kvs/over").body("v"), 507)
        .await;
    t.send(
        "/person/update",
        t.req(Method::PUT, "/person/update")
            .header(header::CONTENT_TYPE, "application/json")
            .body(r#"{"id": 7, "name": "Ada"}"#),
        507,
    )
    .await;
    t.send(KEY, t.req(Method::GET, "/kvs/over"), 404).await;
    server.engine.memory().set_limit(0);

    // A request head of exactly `max_header_size` bytes that never ends: 431 from the HTTP layer.
    let mut head = b"GET /healthz HTTP/1.1\r\nHost: kvs\r\nX-Padding: ".to_vec();
    head.resize(kvs_server::Limits::default().max_header_size, b'a');
    t.send_raw("/healthz", &head, 431).await;

    t.assert_every_operation_exercised();
    assert!(t.checked > 80, "only {} answers checked", t.checked);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_at_its_connection_limit_answers_503_as_documented() {
    let server = common::TestServer::with(|c| c.limits.max_connections = 1).await;
    let mut t = Exerciser::new(&server);
    // Hold the only connection open, and make sure the server has accepted it.
    let mut held = TcpStream::connect(server.addr).await.expect("connects");
    held.write_all(b"GET /healthz HTTP/1.1\r\nHost: kvs\r\n\r\n")
        .await
        .expect("written");
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(10), held.read(&mut buf))
        .await
        .expect("answered in time")
        .expect("read");
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    // The next connection is refused before it sends anything.
    let a = t
        .send_nothing("/healthz", Method::GET, "/healthz", 503)
        .await;
    assert_eq!(a.header("retry-after"), "1");
    drop(held);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn undocumented_methods_get_405_with_exactly_the_documented_allow() {
    let server = common::TestServer::start().await;
    let doc = doc();
    let client = fresh_client();
    let error_schema = serde_json::json!({"$ref": "#/components/schemas/MethodNotAllowedError"});
    let mut refused = 0;
    for template in paths(&doc).keys() {
        let documented = documented_methods(&doc, template);
        assert!(!documented.is_empty(), "{template} documents some method");
        assert!(
            !documented.contains("TRACE"),
            "kvs serves no TRACE, the probe below"
        );
        let path = concrete(template, "probe/405");
        for method in PROBE_METHODS.iter().filter(|m| !documented.contains(**m)) {
            let method = Method::from_bytes(method.as_bytes()).expect("method");
            let r = client
                .request(method.clone(), server.url(&path))
                .send()
                .await
                .expect("answered");
            assert_eq!(
                r.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            let allow: BTreeSet<String> = r
                .headers()
                .get(header::ALLOW)
                .unwrap_or_else(|| panic!("{method} {path}: 405 has Allow"))
                .to_str()
                .expect("text")
                .split(',')
                .map(|m| m.trim().to_ascii_uppercase())
                .collect();
            assert_eq!(
                allow, documented,
                "{method} {path}: Allow lists the documented methods"
            );
            if method == Method::HEAD {
                let body = r.bytes().await.expect("body read");
                assert!(
                    body.is_empty(),
                    "{method} {path}: a HEAD answer has no body"
                );
            } else {
                let body: Value = r.json().await.expect("a JSON error body");
                if let Err(e) = validate(&doc, &error_schema, &body, "body") {
                    panic!("{method} {path}: {e}");
                }
            }
            refused += 1;
        }
    }
    assert!(
        refused >= 2 * paths(&doc).len(),
        "only {refused} refusals checked"
    );
    server.stop().await;
}

/// The admin answers only a durable server gives, checked against the document.
#[tokio::test(flavor = "multi_thread")]
async fn a_durable_server_answers_the_admin_routes_as_documented() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    let server = common::TestServer::with(move |c| {
        c.persistence = kvs_server::Persistence::in_dir(path, kvs_server::FsyncPolicy::Always);
    })
    .await;
    let mut t = Exerciser::new(&server);
    t.send("/kvs/{key}", t.req(Method::PUT, "/kvs/a").body("1"), 201)
        .await;
    let a = t
        .send(
            "/admin/snapshot",
            t.req(Method::POST, "/admin/snapshot?wait=true"),
            200,
        )
        .await;
    assert_eq!(a.json()["keys"], 1);
    t.send(
        "/admin/snapshot",
        t.req(Method::POST, "/admin/snapshot"),
        202,
    )
    .await;
    let a = t
        .send(
            "/admin/persistence",
            t.req(Method::GET, "/admin/persistence"),
            200,
        )
        .await;
    assert_eq!(a.json()["fsync"], "always");
    let a = t
        .send("/healthz", t.req(Method::GET, "/healthz"), 200)
        .await;
    assert_eq!(a.json()["status"], "ok");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_served_route_is_documented_and_nothing_else_is_served() {
    let server = common::TestServer::start().await;
    let doc = doc();
    let client = fresh_client();
    // A 405 with `Allow` proves a route exists (the fallback answers 404) and which it is.
    let served = [
        ("/kvs", "/kvs"),
        // The listing also answers at `/kvs/`, as the /kvs description says.
        ("/kvs/", "/kvs"),
        ("/kvs/x", "/kvs/{key}"),
        ("/kvs/a/b/c", "/kvs/{key}"),
        ("/kvs/a%2Fb", "/kvs/{key}"),
        ("/person/get", "/person/get"),
        ("/person/update", "/person/update"),
        ("/healthz", "/healthz"),
        ("/openapi.json", "/openapi.json"),
        ("/admin/snapshot", "/admin/snapshot"),
        ("/admin/persistence", "/admin/persistence"),
        ("/admin/memory", "/admin/memory"),
        ("/admin/stats", "/admin/stats"),
        ("/admin/slowlog", "/admin/slowlog"),
        ("/admin/clients", "/admin/clients"),
        ("/admin/clients/7", "/admin/clients/{id}"),
        ("/metrics", "/metrics"),
        ("/ui", "/ui"),
        ("/ui/", "/ui/"),
        ("/ui/app.js", "/ui/{file}"),
    ];
    for (path, template) in served {
        if path != "/kvs/" {
            assert_eq!(
                template_for(&doc, path).as_deref(),
                Some(template),
                "{path} is documented"
            );
        }
        let r = client
            .request(Method::TRACE, server.url(path))
            .send()
            .await
            .expect("answered");
        assert_eq!(
            r.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "TRACE {path} reaches a route"
        );
        let allow: BTreeSet<String> = r
            .headers()
            .get(header::ALLOW)
            .expect("Allow")
            .to_str()
            .expect("text")
            .split(',')
            .map(|m| m.trim().to_ascii_uppercase())
            .collect();
        assert_eq!(
            allow,
            documented_methods(&doc, template),
            "{path} is served as {template}"
        );
    }
    let a = client
        .get(server.url("/kvs/"))
        .send()
        .await
        .expect("answered");
    assert_eq!(a.status(), StatusCode::OK);
    let listing: Value = a.json().await.expect("JSON");
    let schema = serde_json::json!({"$ref": "#/components/schemas/Listing"});
    validate(&doc, &schema, &listing, "GET /kvs/").expect("/kvs/ answers with a listing");

    let not_found = serde_json::json!({"$ref": "#/components/schemas/NotFoundError"});
    for path in [
        "/nope",
        "/",
        "/kvsx",
        "/person",
        "/person/get/x",
        "/person/update/x",
        "/healthz/x",
        "/openapi.json/x",
        "/openapi.yaml",
    ] {
        assert_eq!(template_for(&doc, path), None, "{path} is not documented");
        for method in [Method::GET, Method::TRACE] {
            let r = client
                .request(method.clone(), server.url(path))
                .send()
                .await
                .expect("answered");
            assert_eq!(
                r.status(),
                StatusCode::NOT_FOUND,
                "{method} {path} is not served"
            );
            let body: Value = r.json().await.expect("a JSON error body");
            if let Err(e) = validate(&doc, &not_found, &body, "body") {
                panic!("{method} {path}: {e}");
            }
        }
    }
    server.stop().await;
}
