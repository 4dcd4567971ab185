//! The client subcommands over HTTP: `kvs get`, `kvs put`, `kvs del`, `kvs ls`.
//!
//! Exit status, for scripts: 0 success; 1 the key does not exist (get, del); 2 bad usage; 3 the
//! server could not be reached or refused the request.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Where the server's HTTP API is.
#[derive(Debug, Args)]
pub struct Server {
    /// Base URL of the kvs HTTP API.
    #[arg(
        long,
        global = true,
        env = "KVS_ADDR",
        default_value = "http://127.0.0.1:9000"
    )]
    addr: String,
    /// Authenticate as this ACL user (HTTP Basic). Without it but with a password: the default
    /// user's password (HTTP Bearer).
    #[arg(long, global = true, env = "KVS_USER")]
    user: Option<String>,
    /// The password. Prefer KVS_PASSWORD or the prompt (asked for when --user is given without a
    /// password, at a terminal): a flag shows in `ps`.
    #[arg(long, global = true, env = "KVS_PASSWORD", hide_env_values = true)]
    password: Option<String>,
}

impl Server {
    /// The base URL of the HTTP API.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// `request` with the credentials, if any were given.
    pub(crate) fn authorize(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, Failure> {
        match credentials(self.user.as_deref(), self.password.as_deref())? {
            None => Ok(request),
            Some((None, password)) => Ok(request.bearer_auth(password)),
            Some((Some(user), password)) => Ok(request.basic_auth(user, Some(password))),
        }
    }
}

/// The user and password to send: the password from the flag or the environment, or asked for
/// at the terminal when only a user is given; `None` without either.
pub(crate) fn credentials(
    user: Option<&str>,
    password: Option<&str>,
) -> Result<Option<(Option<String>, String)>, Failure> {
    match (user, password) {
        (None, None) => Ok(None),
        (user, Some(p)) => Ok(Some((user.map(str::to_owned), p.to_owned()))),
        (Some(user), None) => {
            let password = rpassword::prompt_password(format!("Password for {user}: "))
                .map_err(|e| Failure(2, format!("cannot read the password: {e}")))?;
            Ok(Some((Some(user.to_owned()), password)))
        }
    }
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The key.
    key: String,
    #[command(flatten)]
    server: Server,
}

#[derive(Debug, Args)]
pub struct PutArgs {
    /// The key.
    key: String,
    /// The value; without it (and without --file) the value is read from standard input.
    value: Option<String>,
    /// Read the value from this file (any bytes).
    #[arg(long, short, conflicts_with = "value")]
    file: Option<PathBuf>,
    /// Content type stored with the value.
    #[arg(long, short = 't', default_value = "application/octet-stream")]
    content_type: String,
    /// Expire after this long: seconds, or 500ms, 10m, 1h30m.
    #[arg(long)]
    ttl: Option<String>,
    #[command(flatten)]
    server: Server,
}

#[derive(Debug, Args)]
pub struct DelArgs {
    /// The key.
    key: String,
    #[command(flatten)]
    server: Server,
}

#[derive(Debug, Args)]
pub struct ExpireArgs {
    /// The key, of any type.
    key: String,
    /// Expire after this long from now: seconds, or 500ms, 10m, 1h30m.
    #[arg(required_unless_present = "persist")]
    ttl: Option<String>,
    /// Remove the expiry instead: the key lives until deleted.
    #[arg(long, conflicts_with = "ttl")]
    persist: bool,
    #[command(flatten)]
    server: Server,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only keys starting with this.
    #[arg(default_value = "")]
    prefix: String,
    /// Keys fetched per request while paging.
    #[arg(long, default_value_t = 1000)]
    page: usize,
    #[command(flatten)]
    server: Server,
}

/// Path characters kept as they are: unreserved ones and `/` (keys may contain slashes).
pub(crate) const PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

fn key_url(server: &Server, key: &str) -> String {
    format!(
        "{}/kvs/{}",
        server.addr.trim_end_matches('/'),
        utf8_percent_encode(key, PATH)
    )
}

/// A failure, with the exit status it maps to.
pub(crate) struct Failure(pub(crate) u8, pub(crate) String);

fn unreachable(server: &Server, e: &reqwest::Error) -> Failure {
    Failure(3, format!("cannot reach kvs at {}: {e}", server.addr))
}

/// The server's JSON error message, or the status line.
pub(crate) async fn refusal(response: reqwest::Response) -> Failure {
    let status = response.status();
    let message = response
        .json::<serde_json::Value>()
        .await
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| status.to_string());
    Failure(
        3,
        format!("the server refused the request ({status}): {message}"),
    )
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure(3, format!("cannot start: {e}")))
}

fn finish(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, message)) => {
            eprintln!("kvs: {message}");
            ExitCode::from(code)
        }
    }
}

/// `kvs get KEY`: the value's bytes, unchanged, on standard output.
pub fn get(args: GetArgs) -> ExitCode {
    finish(runtime().and_then(|rt| {
        rt.block_on(async {
            let response = args
                .server
                .authorize(reqwest::Client::new().get(key_url(&args.server, &args.key)))?
                .send()
                .await
                .map_err(|e| unreachable(&args.server, &e))?;
            match response.status().as_u16() {
                200 => {
                    let body = response
                        .bytes()
                        .await
                        .map_err(|e| unreachable(&args.server, &e))?;
                    let mut out = std::io::stdout().lock();
                    out.write_all(&body)
                        .and_then(|()| out.flush())
                        .map_err(|e| Failure(3, format!("cannot write the value: {e}")))
                }
                404 => Err(Failure(1, format!("{}: no such key", args.key))),
                _ => Err(refusal(response).await),
            }
        })
    }))
}

/// `kvs put KEY [VALUE]`: stores the value from the argument, a file or standard input.
pub fn put(args: PutArgs) -> ExitCode {
    let value = match (&args.value, &args.file) {
        (Some(v), _) => Ok(v.clone().into_bytes()),
        (None, Some(path)) => std::fs::read(path)
            .map_err(|e| Failure(2, format!("cannot read {}: {e}", path.display()))),
        (None, None) => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map(|_| buf)
                .map_err(|e| Failure(2, format!("cannot read standard input: {e}")))
        }
    };
    finish(value.and_then(|value| {
        runtime()?.block_on(async {
            let mut url = key_url(&args.server, &args.key);
            if let Some(ttl) = &args.ttl {
                url.push_str("?ttl=");
                url.push_str(&utf8_percent_encode(ttl, NON_ALPHANUMERIC).to_string());
            }
            let response = args
                .server
                .authorize(reqwest::Client::new().put(url))?
                .header("content-type", &args.content_type)
                .body(value)
                .send()
                .await
                .map_err(|e| unreachable(&args.server, &e))?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(refusal(response).await)
            }
        })
    }))
}

/// `kvs del KEY`.
pub fn del(args: DelArgs) -> ExitCode {
    finish(runtime().and_then(|rt| {
        rt.block_on(async {
            let response = args
                .server
                .authorize(reqwest::Client::new().delete(key_url(&args.server, &args.key)))?
                .send()
                .await
                .map_err(|e| unreachable(&args.server, &e))?;
            match response.status().as_u16() {
                204 => Ok(()),
                404 => Err(Failure(1, format!("{}: no such key", args.key))),
                _ => Err(refusal(response).await),
            }
        })
    }))
}

/// `kvs expire KEY TTL` / `kvs expire KEY --persist`: change only the expiry of a key of any
/// type (`PATCH /kvs/{key}`). Exit 1 if the key does not exist.
pub fn expire(args: ExpireArgs) -> ExitCode {
    finish(runtime().and_then(|rt| {
        rt.block_on(async {
            let mut url = key_url(&args.server, &args.key);
            match &args.ttl {
                Some(ttl) if !args.persist => {
                    url.push_str("?ttl=");
                    url.push_str(&utf8_percent_encode(ttl, NON_ALPHANUMERIC).to_string());
                }
                _ => url.push_str("?persist"),
            }
            let response = args
                .server
                .authorize(reqwest::Client::new().patch(url))?
                .send()
                .await
                .map_err(|e| unreachable(&args.server, &e))?;
            match response.status().as_u16() {
                200 => Ok(()),
                404 => Err(Failure(1, format!("{}: no such key", args.key))),
                _ => Err(refusal(response).await),
            }
        })
    }))
}

/// `kvs ls [PREFIX]`: every key with the prefix, one per line, in byte order, paging through the
/// listing (keys that are not UTF-8 are shown percent-encoded).
pub fn ls(args: LsArgs) -> ExitCode {
    finish(runtime().and_then(|rt| {
        rt.block_on(async {
            let client = reqwest::Client::new();
            let base = format!("{}/kvs", args.server.addr.trim_end_matches('/'));
            let prefix = utf8_percent_encode(&args.prefix, NON_ALPHANUMERIC).to_string();
            let mut cursor: Option<String> = None;
            let mut out = std::io::stdout().lock();
            loop {
                let mut url = format!("{base}?prefix={prefix}&limit={}", args.page.clamp(1, 1000));
                if let Some(c) = &cursor {
                    url.push_str("&cursor=");
                    url.push_str(c);
                }
                let response = args
                    .server
                    .authorize(client.get(url))?
                    .send()
                    .await
                    .map_err(|e| unreachable(&args.server, &e))?;
                if !response.status().is_success() {
                    return Err(refusal(response).await);
                }
                let page: serde_json::Value = response
                    .json()
                    .await
                    .map_err(|e| unreachable(&args.server, &e))?;
                for row in page["keys"].as_array().into_iter().flatten() {
                    let key = row["key"].as_str().unwrap_or_default();
                    writeln!(out, "{key}").map_err(|e| Failure(3, format!("cannot write: {e}")))?;
                }
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => return Ok(()),
                }
            }
        })
    }))
}
