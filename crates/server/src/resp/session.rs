//! The state of one RESP connection and the commands that act on it rather than on the keyspace:
//! PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET, CLIENT, COMMAND, INFO, CONFIG, TIME.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kvs_protocol::resp::{Frame, Version};
use kvs_store::{Command, CommandError, Watched};

use super::Shared;
use super::admin;
use super::persistence::{self, Awaited};
use crate::commit::Uncommitted;

/// A request queued between MULTI and EXEC.
#[derive(Debug)]
enum Queued {
    /// A data command, run inside the transaction.
    Data(Command),
    /// A connection command (PING, ECHO, ...), answered in order but touching no key.
    Session(Vec<Bytes>),
}

/// Per-connection state.
#[derive(Debug)]
pub(crate) struct Session {
    id: u64,
    shared: Arc<Shared>,
    version: Version,
    name: Option<Bytes>,
    closing: bool,
    /// Commands queued since MULTI; `None` outside a transaction.
    multi: Option<Vec<Queued>>,
    /// A queued command was refused: EXEC will discard the transaction.
    multi_failed: bool,
    /// Keys under WATCH, with the version each had (`None`: absent) when it was watched.
    watched: Vec<Watched>,
    /// The snapshot the last request (SAVE) waits for.
    awaited: Option<Awaited>,
}

fn lower(name: &[u8]) -> String {
    String::from_utf8_lossy(name).to_ascii_lowercase()
}

fn arity(cmd: &str) -> Frame {
    Frame::Error(CommandError::WrongArity(cmd.to_owned()).to_string())
}

impl Session {
    pub(crate) fn new(id: u64, shared: Arc<Shared>) -> Self {
        Self {
            id,
            shared,
            version: Version::Resp2,
            name: None,
            closing: false,
            multi: None,
            multi_failed: false,
            watched: Vec::new(),
            awaited: None,
        }
    }

    /// The snapshot the reply just returned by [`Session::handle`] must wait for (SAVE).
    pub(crate) fn take_awaited(&mut self) -> Option<Awaited> {
        self.awaited.take()
    }

    /// The protocol replies are written in.
    pub(crate) fn version(&self) -> Version {
        self.version
    }

    /// Whether the client asked to close (QUIT): its reply is the last.
    pub(crate) fn closing(&self) -> bool {
        self.closing
    }

    /// Answers one request. The answer may be sent once its writes are durable.
    pub(crate) fn handle(&mut self, argv: &[Bytes]) -> Uncommitted<Frame> {
        self.shared
            .clients
            .commands_processed
            .fetch_add(1, Ordering::Relaxed);
        match self.data_command(argv) {
            Some(Ok(command)) => self.shared.engine.apply(command).map(Frame::from),
            Some(Err(e)) => Uncommitted::nothing_written(Frame::Error(e.to_string())),
            None if self.multi.is_some() => self.queue(argv),
            None => Uncommitted::nothing_written(self.connection_command(argv)),
        }
    }

    /// The data command `argv` asks for, outside MULTI; `None` for a connection command or
    /// inside MULTI.
    fn data_command(&self, argv: &[Bytes]) -> Option<Result<Command, CommandError>> {
        let name = argv.first()?;
        if self.multi.is_some() || name.len() > 16 || session_command(&lower(name)) {
            return None;
        }
        Some(Command::from_argv(argv))
    }

    /// Answers a connection command (or an unknown one) outside MULTI.
    fn connection_command(&mut self, argv: &[Bytes]) -> Frame {
        let Some((name, args)) = argv.split_first() else {
            return Frame::err("empty command");
        };
        if name.len() > 16 {
            return Frame::Error(CommandError::unknown(name, args).to_string());
        }
        let cmd = lower(name);
        match cmd.as_str() {
            "multi" => {
                self.multi = Some(Vec::new());
                self.multi_failed = false;
                Frame::ok()
            }
            "exec" => Frame::err("EXEC without MULTI"),
            "discard" => Frame::err("DISCARD without MULTI"),
            "watch" if args.is_empty() => arity("watch"),
            "watch" => {
                for key in args {
                    let version = self.shared.engine.version_of(key);
                    self.watched.push((key.clone(), version));
                }
                Frame::ok()
            }
            "unwatch" => {
                self.watched.clear();
                Frame::ok()
            }
            "ping" => match args {
                [] => Frame::Simple("PONG".into()),
                [msg] => Frame::Bulk(msg.clone()),
                _ => arity("ping"),
            },
            "echo" => match args {
                [msg] => Frame::Bulk(msg.clone()),
                _ => arity("echo"),
            },
            "hello" => self.hello(args),
            "auth" => match args {
                [_password] => Frame::err(
                    "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
                ),
                [_user, _password] => Frame::ok(),
                _ => Frame::Error(CommandError::Syntax.to_string()),
            },
            "select" => match args {
                [db] => match integer(db) {
                    Some(0) => Frame::ok(),
                    Some(_) => Frame::err("DB index is out of range"),
                    None => Frame::Error(CommandError::NotInteger.to_string()),
                },
                _ => arity("select"),
            },
            "quit" => {
                self.closing = true;
                Frame::ok()
            }
            "reset" => {
                self.version = Version::Resp2;
                self.name = None;
                self.multi = None;
                self.watched.clear();
                self.shared.clients.update(self.id, |c| {
                    c.name.clear();
                    c.resp = 2;
                });
                Frame::Simple("RESET".into())
            }
            "client" => self.client(args),
            "command" => admin::command(args),
            "info" => admin::info(&self.shared, args),
            "config" => admin::config(&self.shared, args),
            "time" => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                Frame::Array(vec![
                    Frame::bulk(now.as_secs().to_string()),
                    Frame::bulk(now.subsec_micros().to_string()),
                ])
            }
            "save" => match persistence::save(&self.shared.engine) {
                Ok(awaited) => {
                    self.awaited = Some(awaited);
                    Frame::ok()
                }
                Err(frame) => frame,
            },
            "bgsave" => persistence::bgsave(&self.shared.engine),
            "lastsave" => persistence::lastsave(&self.shared.engine),
            _ => Frame::Error(CommandError::unknown(name, args).to_string()),
        }
    }

    /// A request arriving between MULTI and EXEC: queue it, or end the transaction.
    fn queue(&mut self, argv: &[Bytes]) -> Uncommitted<Frame> {
        let Some((name, args)) = argv.split_first() else {
            return Uncommitted::nothing_written(Frame::err("empty command"));
        };
        if name.len() > 16 {
            // No command has a name this long: unknown, and it dooms the block.
            self.multi_failed = true;
            return Uncommitted::nothing_written(Frame::Error(
                CommandError::unknown(name, args).to_string(),
            ));
        }
        let cmd = lower(name);
        if cmd == "exec" {
            let queued = self.multi.take().unwrap_or_default();
            let watched = std::mem::take(&mut self.watched);
            if std::mem::take(&mut self.multi_failed) {
                return Uncommitted::nothing_written(Frame::Error(
                    "EXECABORT Transaction discarded because of previous errors.".into(),
                ));
            }
            return self.exec(queued, &watched);
        }
        Uncommitted::nothing_written(self.queue_one(&cmd, argv))
    }

    /// Queues one request between MULTI and EXEC (or ends the block with DISCARD).
    fn queue_one(&mut self, cmd: &str, argv: &[Bytes]) -> Frame {
        match cmd {
            "discard" => {
                self.multi = None;
                self.multi_failed = false;
                self.watched.clear();
                Frame::ok()
            }
            "multi" => Frame::err("MULTI calls can not be nested"),
            // Refused, but the block goes on: redis-server does not abort the transaction for it.
            "watch" => Frame::err("WATCH inside MULTI is not allowed"),
            "ping" | "echo" | "time" | "select" | "client" | "info" | "command" | "config"
            | "unwatch" => {
                if let Some(q) = self.multi.as_mut() {
                    q.push(Queued::Session(argv.to_vec()));
                }
                Frame::Simple("QUEUED".into())
            }
            _ => match Command::from_argv(argv) {
                Ok(command) => {
                    if let Some(q) = self.multi.as_mut() {
                        q.push(Queued::Data(command));
                    }
                    Frame::Simple("QUEUED".into())
                }
                Err(e) => {
                    self.multi_failed = true;
                    Frame::Error(e.to_string())
                }
            },
        }
    }

    /// Runs a transaction: every data command at one instant, connection commands in order.
    fn exec(&mut self, queued: Vec<Queued>, watched: &[Watched]) -> Uncommitted<Frame> {
        let mut data = Vec::new();
        for q in &queued {
            if let Queued::Data(c) = q {
                data.push(c.clone());
            }
        }
        let Some(block) = self.shared.engine.apply_block(data, watched) else {
            return Uncommitted::nothing_written(Frame::NullArray);
        };
        // Connection commands answer now, in their place among the block's replies.
        let mut session = Vec::new();
        for q in &queued {
            if let Queued::Session(argv) = q {
                session.push(self.connection_command(argv));
            }
        }
        block.map(|replies| {
            let (mut replies, mut session) = (replies.into_iter(), session.into_iter());
            let out = queued
                .iter()
                .map(|q| match q {
                    Queued::Data(_) => replies.next().map_or(Frame::Null, Frame::from),
                    Queued::Session(_) => session.next().unwrap_or(Frame::Null),
                })
                .collect();
            Frame::Array(out)
        })
    }

    /// `HELLO [protover [AUTH user pass] [SETNAME name]]`.
    fn hello(&mut self, args: &[Bytes]) -> Frame {
        let mut version = self.version;
        let mut rest = args;
        if let Some((v, tail)) = args.split_first() {
            version = match integer(v) {
                Some(2) => Version::Resp2,
                Some(3) => Version::Resp3,
                Some(_) => return Frame::Error("NOPROTO unsupported protocol version".into()),
                None => {
                    return Frame::Error(
                        "ERR Protocol version is not an integer or out of range".into(),
                    );
                }
            };
            rest = tail;
        }
        let mut name = None;
        while let Some((opt, tail)) = rest.split_first() {
            match (lower(opt).as_str(), tail) {
                ("auth", [_user, _pass, more @ ..]) => rest = more,
                ("setname", [n, more @ ..]) => {
                    if let Err(e) = check_name(n) {
                        return e;
                    }
                    name = Some(n.clone());
                    rest = more;
                }
                _ => {
                    return Frame::err(format!(
                        "Syntax error in HELLO option '{}'",
                        String::from_utf8_lossy(opt)
                    ));
                }
            }
        }
        self.version = version;
        if let Some(n) = name {
            self.set_name(Some(n));
        }
        let proto = if version == Version::Resp3 { 3 } else { 2 };
        self.shared.clients.update(self.id, |c| c.resp = proto);
        Frame::Map(vec![
            (Frame::bulk("server"), Frame::bulk("redis")),
            (Frame::bulk("version"), Frame::bulk(admin::REDIS_VERSION)),
            (Frame::bulk("proto"), Frame::Integer(i64::from(proto))),
            (Frame::bulk("id"), Frame::Integer(self.id as i64)),
            (Frame::bulk("mode"), Frame::bulk("standalone")),
            (Frame::bulk("role"), Frame::bulk("master")),
            (Frame::bulk("modules"), Frame::Array(vec![])),
        ])
    }

    fn set_name(&mut self, name: Option<Bytes>) {
        let shown = name
            .as_ref()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default();
        self.shared.clients.update(self.id, |c| c.name = shown);
        self.name = name.filter(|n| !n.is_empty());
    }

    /// `CLIENT ID | SETNAME | GETNAME | SETINFO | INFO | LIST | KILL | NO-EVICT | NO-TOUCH`.
    fn client(&mut self, args: &[Bytes]) -> Frame {
        let Some((sub, rest)) = args.split_first() else {
            return arity("client");
        };
        let sub = lower(sub);
        match (sub.as_str(), rest) {
            ("id", []) => Frame::Integer(self.id as i64),
            ("setname", [name]) => match check_name(name) {
                Ok(()) => {
                    self.set_name(Some(name.clone()));
                    Frame::ok()
                }
                Err(e) => e,
            },
            ("getname", []) => self.name.clone().map_or(Frame::Null, Frame::Bulk),
            ("setinfo", [_attr, _value]) => Frame::ok(),
            ("no-evict" | "no-touch", [mode]) if is_on_off(mode) => Frame::ok(),
            ("info", []) => {
                let me = self
                    .shared
                    .clients
                    .snapshot()
                    .into_iter()
                    .find(|(id, _)| *id == self.id);
                match me {
                    Some((id, c)) => Frame::Verbatim {
                        format: *b"txt",
                        text: Bytes::from(admin::client_line(id, &c)),
                    },
                    None => Frame::Null,
                }
            }
            ("list", []) => {
                let text: String = self
                    .shared
                    .clients
                    .snapshot()
                    .iter()
                    .map(|(id, c)| admin::client_line(*id, c))
                    .collect();
                Frame::Verbatim {
                    format: *b"txt",
                    text: Bytes::from(text),
                }
            }
            ("kill", filters) => admin::client_kill(&self.shared, self.id, filters),
            _ => Frame::err(format!(
                "unknown subcommand or wrong number of arguments for '{sub}'. Try CLIENT HELP."
            )),
        }
    }
}

/// Whether `name` (lowercase) is answered by the session rather than the store.
fn session_command(name: &str) -> bool {
    matches!(
        name,
        "multi"
            | "exec"
            | "discard"
            | "watch"
            | "unwatch"
            | "ping"
            | "echo"
            | "hello"
            | "auth"
            | "select"
            | "quit"
            | "reset"
            | "client"
            | "command"
            | "info"
            | "config"
            | "time"
            | "save"
            | "bgsave"
            | "lastsave"
    )
}

fn is_on_off(v: &[u8]) -> bool {
    v.eq_ignore_ascii_case(b"on") || v.eq_ignore_ascii_case(b"off")
}

/// Client names are printable ASCII without spaces, as Redis requires.
fn check_name(name: &[u8]) -> Result<(), Frame> {
    if name.iter().all(|&c| (b'!'..=b'~').contains(&c)) {
        Ok(())
    } else {
        Err(Frame::err(
            "Client names cannot contain spaces, newlines or special characters.",
        ))
    }
}

/// An integer argument as Redis reads one.
fn integer(text: &[u8]) -> Option<i64> {
    kvs_store::parse_integer(text).ok()
}
