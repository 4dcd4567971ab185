//! The state of one RESP connection, and how its requests are dispatched by the command table:
//! data commands go to the engine, connection commands to their handlers in [`super::command`],
//! and between MULTI and EXEC requests are queued by the table's rules.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use kvs_protocol::resp::{Frame, Version};
use kvs_store::{Command, CommandError, Flag, Watched};

use super::Shared;
use super::command::{self, Found, SessionCommand};
use super::persistence::Awaited;
use crate::commit::Uncommitted;

/// A request queued between MULTI and EXEC.
#[derive(Debug)]
pub(crate) enum Queued {
    /// A data command, run inside the transaction.
    Data(Command),
    /// A connection command (PING, ECHO, ...), answered in order but touching no key.
    Session(&'static SessionCommand, Vec<Bytes>),
}

/// Per-connection state.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) id: u64,
    pub(crate) shared: Arc<Shared>,
    pub(crate) version: Version,
    pub(crate) name: Option<Bytes>,
    pub(crate) closing: bool,
    /// Commands queued since MULTI; `None` outside a transaction.
    pub(crate) multi: Option<Vec<Queued>>,
    /// A queued command was refused: EXEC will discard the transaction.
    pub(crate) multi_failed: bool,
    /// Keys under WATCH, with the version each had (`None`: absent) when it was watched.
    pub(crate) watched: Vec<Watched>,
    /// The snapshot the last request (SAVE) waits for.
    pub(crate) awaited: Option<Awaited>,
}

/// The longest command name kvs knows, with room to spare; longer names are unknown at once.
const MAX_NAME: usize = 32;

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
        let Some((name, args)) = argv.split_first() else {
            return Uncommitted::nothing_written(Frame::err("empty command"));
        };
        let found = lookup(name);
        if self.multi.is_some() {
            return self.queue(found, argv);
        }
        match found {
            None => Uncommitted::nothing_written(Frame::Error(
                CommandError::unknown(name, args).to_string(),
            )),
            Some(Found::Data(_)) => match Command::from_argv(argv) {
                Ok(command) => self.shared.engine.apply(command).map(Frame::from),
                Err(e) => Uncommitted::nothing_written(Frame::Error(e.to_string())),
            },
            Some(Found::Session(c)) => Uncommitted::nothing_written(self.run(c, argv)),
        }
    }

    /// Runs a connection command after checking its arity and subcommand.
    fn run(&mut self, c: &'static SessionCommand, argv: &[Bytes]) -> Frame {
        match command::check(&c.spec, argv) {
            Ok(()) => (c.run)(self, &argv[1..]),
            Err(e) => e,
        }
    }

    /// A request arriving between MULTI and EXEC: queue it, refuse it (which dooms the block),
    /// or end the transaction, as redis-server does.
    fn queue(&mut self, found: Option<Found>, argv: &[Bytes]) -> Uncommitted<Frame> {
        let refuse = |session: &mut Self, frame: Frame| {
            session.multi_failed = true;
            Uncommitted::nothing_written(frame)
        };
        let Some(found) = found else {
            let (name, args) = argv.split_first().unwrap_or((&argv[0], &[]));
            return refuse(
                self,
                Frame::Error(CommandError::unknown(name, args).to_string()),
            );
        };
        let spec = found.spec();
        match spec.name {
            "exec" => return self.exec(),
            "discard" => {
                self.multi = None;
                self.multi_failed = false;
                self.watched.clear();
                return Uncommitted::nothing_written(Frame::ok());
            }
            "multi" => {
                return Uncommitted::nothing_written(Frame::err("MULTI calls can not be nested"));
            }
            // Refused, but the block goes on: redis-server does not abort the transaction.
            "watch" => {
                return Uncommitted::nothing_written(Frame::err(
                    "WATCH inside MULTI is not allowed",
                ));
            }
            // These act at once, even inside a transaction (RESET also ends it).
            "quit" | "reset" => return self.handle_now(found, argv),
            _ => {}
        }
        if spec.has(Flag::NoMulti) {
            return refuse(self, Frame::err("Command not allowed inside a transaction"));
        }
        let queued = match found {
            Found::Data(_) => match Command::from_argv(argv) {
                Ok(command) => Queued::Data(command),
                Err(e) => return refuse(self, Frame::Error(e.to_string())),
            },
            Found::Session(c) => match command::check(&c.spec, argv) {
                Ok(()) => Queued::Session(c, argv.to_vec()),
                Err(e) => return refuse(self, e),
            },
        };
        if let Some(q) = self.multi.as_mut() {
            q.push(queued);
        }
        Uncommitted::nothing_written(Frame::Simple("QUEUED".into()))
    }

    /// Runs a connection command inside MULTI without queueing it.
    fn handle_now(&mut self, found: Found, argv: &[Bytes]) -> Uncommitted<Frame> {
        match found {
            Found::Session(c) => Uncommitted::nothing_written(self.run(c, argv)),
            Found::Data(_) => Uncommitted::nothing_written(Frame::err("not a connection command")),
        }
    }

    /// Runs a transaction: every data command at one instant, connection commands in order.
    fn exec(&mut self) -> Uncommitted<Frame> {
        let queued = self.multi.take().unwrap_or_default();
        let watched = std::mem::take(&mut self.watched);
        if std::mem::take(&mut self.multi_failed) {
            return Uncommitted::nothing_written(Frame::Error(
                "EXECABORT Transaction discarded because of previous errors.".into(),
            ));
        }
        let data: Vec<Command> = queued
            .iter()
            .filter_map(|q| match q {
                Queued::Data(c) => Some(c.clone()),
                Queued::Session(..) => None,
            })
            .collect();
        let Some(block) = self.shared.engine.apply_block(data, &watched) else {
            return Uncommitted::nothing_written(Frame::NullArray);
        };
        // Connection commands answer now, in their place among the block's replies.
        let mut session = Vec::new();
        for q in &queued {
            if let Queued::Session(c, argv) = q {
                session.push(self.run(c, argv));
            }
        }
        block.map(|replies| {
            let (mut replies, mut session) = (replies.into_iter(), session.into_iter());
            let out = queued
                .iter()
                .map(|q| match q {
                    Queued::Data(_) => replies.next().map_or(Frame::Null, Frame::from),
                    Queued::Session(..) => session.next().unwrap_or(Frame::Null),
                })
                .collect();
            Frame::Array(out)
        })
    }

    /// Names the connection (CLIENT SETNAME, HELLO SETNAME); empty clears the name.
    pub(crate) fn set_name(&mut self, name: Option<Bytes>) {
        let shown = name
            .as_ref()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default();
        self.shared.clients.update(self.id, |c| c.name = shown);
        self.name = name.filter(|n| !n.is_empty());
    }
}

/// What the table says `name` is, in any case; `None` for an unknown name.
fn lookup(name: &[u8]) -> Option<Found> {
    if name.len() > MAX_NAME {
        return None;
    }
    let mut lower = [0u8; MAX_NAME];
    for (l, c) in lower.iter_mut().zip(name) {
        *l = c.to_ascii_lowercase();
    }
    std::str::from_utf8(&lower[..name.len()])
        .ok()
        .and_then(command::find)
}
