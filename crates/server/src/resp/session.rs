//! The state of one RESP connection, and how its requests are dispatched by the command table:
//! data commands go to the engine, connection commands to their handlers in [`super::command`],
//! and between MULTI and EXEC requests are queued by the table's rules.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use kvs_protocol::resp::{Frame, Version};
use kvs_store::{Command, CommandError, Flag, Reply, Spec, Watched};

use super::Shared;
use super::clients::Activity;
use super::command::{self, Found, SessionCommand};
use super::persistence::Awaited;
use crate::acl::{Denied, LogEntry, User};
use crate::commit::Uncommitted;
use crate::pubsub::{Mailbox, Subscriptions, Wakes};
use crate::stats::{Class, Door, Outcome};

/// A request queued between MULTI and EXEC.
#[derive(Debug)]
pub(crate) enum Queued {
    /// A data command, run inside the transaction, with the request it came from (permissions
    /// are checked again at EXEC).
    Data(Command, Vec<Bytes>),
    /// A connection command (PING, ECHO, ...), answered in order but touching no key.
    Session(&'static SessionCommand, Vec<Bytes>),
    /// Refused at EXEC: the user's permissions changed since it was queued.
    Refused(Frame),
}

impl Queued {
    /// The request it came from; none for a refusal.
    fn request(&self) -> Option<&[Bytes]> {
        match self {
            Queued::Data(_, argv) | Queued::Session(_, argv) => Some(argv),
            Queued::Refused(_) => None,
        }
    }
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
    /// The user this connection runs as, as of ACL generation `acl_generation`.
    pub(crate) user: Arc<User>,
    pub(crate) acl_generation: u64,
    /// `ACL LOAD`s when the user was taken (see [`crate::acl::Acl::still_valid`]).
    pub(crate) acl_loads: u64,
    /// Whether the connection may run commands that need authentication: it authenticated, or
    /// the default user needs no password.
    pub(crate) authenticated: bool,
    /// Channels, patterns and shard channels subscribed to, and the mailbox their messages wait
    /// in; made at the first subscription.
    pub(crate) subs: Option<Subscriptions>,
    /// The last request ended subscriptions: messages delivered before it must be sent before
    /// its reply.
    pub(crate) drain_before_reply: bool,
    /// `CLIENT REPLY OFF`: no replies are sent (messages and subscription confirmations still
    /// are, as Redis sends them).
    pub(crate) replies_off: bool,
    /// `CLIENT REPLY SKIP`: the next request's reply is not sent.
    pub(crate) skip_next: bool,
    /// The reply of the request just handled is not sent.
    pub(crate) silent: bool,
    /// `CLIENT REPLY ON` was just run: its OK is sent even after a SKIP.
    pub(crate) force_reply: bool,
    /// Subscribers this connection published to, woken once its batch of requests is done.
    pub(crate) wakes: Wakes,
    /// The command the request just handled ran as (a subcommand's own spec), for the
    /// counters; `None` when no command ran (unknown, queued in MULTI).
    ran: Option<&'static Spec>,
    /// Its slot in the statistics' command table, looked up once per request.
    ran_slot: Option<usize>,
    /// That command was refused before it ran.
    rejected: bool,
    /// A write's class and arrival, until its answer is released (see [`Session::take_unsettled`]).
    unsettled: Option<(Class, Instant)>,
    /// What `CLIENT LIST` shows of this connection's last request.
    pub(crate) activity: Arc<Activity>,
    /// A blocking command (BLPOP and kin) found nothing: the connection waits for it.
    blocked: Option<Blocked>,
    /// A script handed to the scripting thread: the connection waits for its answer.
    script: Option<ScriptAnswer>,
    /// While EXEC gathers the scripting requests of a block that holds a script: they run in
    /// the block, in place, rather than on their own (see [`Session::exec`]).
    collecting: Option<Vec<crate::script::Request>>,
    /// A block handed to the scripting engine, counted once its answer arrives: its commands,
    /// and which of them the engine answered (it counted their errors).
    pending_block: Option<(Vec<Queued>, Vec<bool>)>,
    /// The command stat slot and start of a request whose script is running: counted, as failed
    /// or not, once its answer arrives.
    script_stat: Option<(usize, Instant)>,
}

/// Where a script's answer arrives.
pub(crate) type ScriptAnswer = tokio::sync::oneshot::Receiver<Uncommitted<Frame>>;

/// A blocking command that found nothing, to run again when one of its keys changes.
#[derive(Debug)]
pub(crate) struct Blocked {
    pub(crate) command: Command,
    /// The keys whose changes may give it something.
    pub(crate) keys: Vec<Bytes>,
    /// Seconds to wait; 0: forever.
    pub(crate) timeout: f64,
    /// What it answers when the wait ends with nothing.
    pub(crate) empty: Frame,
}

/// The longest command name kvs knows, with room to spare; longer names are unknown at once.
const MAX_NAME: usize = 32;

impl Session {
    pub(crate) fn new(id: u64, shared: Arc<Shared>) -> Self {
        let acl_generation = shared.acl.generation();
        let acl_loads = shared.acl.loads();
        let user = shared.acl.default_user();
        Self {
            acl_loads,
            authenticated: user.needs_no_password(),
            user,
            acl_generation,
            id,
            shared,
            version: Version::Resp2,
            name: None,
            closing: false,
            multi: None,
            multi_failed: false,
            watched: Vec::new(),
            awaited: None,
            blocked: None,
            script: None,
            collecting: None,
            pending_block: None,
            script_stat: None,
            subs: None,
            drain_before_reply: false,
            replies_off: false,
            skip_next: false,
            silent: false,
            force_reply: false,
            wakes: Wakes::default(),
            ran: None,
            ran_slot: None,
            rejected: false,
            unsettled: None,
            activity: Arc::default(),
        }
    }

    /// The connection's subscriptions, made (with its mailbox) on first use.
    pub(crate) fn subscriptions(&mut self) -> &mut Subscriptions {
        let (id, version) = (self.id, self.version);
        let shared = self.shared.clone();
        let subs = self.subs.get_or_insert_with(|| {
            let kill = shared.clients.get(id).map(|c| c.kill).unwrap_or_default();
            Subscriptions::new(
                shared.engine.pubsub().clone(),
                Mailbox::new(id, version, kill),
            )
        });
        let counts = subs.counts();
        shared.clients.update(id, |c| c.pubsub = counts);
        subs
    }

    /// The mailbox subscribed messages wait in, once the connection has subscribed.
    pub(crate) fn mailbox(&self) -> Option<&Arc<Mailbox>> {
        self.subs.as_ref().map(|s| &s.mailbox)
    }

    /// Whether the connection is in RESP2's subscribed mode, where only the pub/sub commands,
    /// PING, QUIT and RESET are allowed.
    pub(crate) fn subscribed_resp2(&self) -> bool {
        self.version == Version::Resp2 && self.subs.as_ref().is_some_and(|s| s.total() > 0)
    }

    /// The snapshot the reply just returned by [`Session::handle`] must wait for (SAVE).
    pub(crate) fn take_awaited(&mut self) -> Option<Awaited> {
        self.awaited.take()
    }

    /// The blocking command the request just handled left waiting, if it did.
    pub(crate) fn take_blocked(&mut self) -> Option<Blocked> {
        self.blocked.take()
    }

    /// The script the request just handled started, if it did: its answer replaces the reply.
    pub(crate) fn take_script(&mut self) -> Option<ScriptAnswer> {
        self.script.take()
    }

    /// Whether EXEC is gathering a block's scripting requests to run them in place.
    pub(crate) fn gathering(&self) -> bool {
        self.collecting.is_some()
    }

    /// Hands `request` to the scripting thread, as this connection's user; the connection then
    /// waits for the answer (see [`Session::take_script`]). The frame returned stands in for it.
    /// While EXEC gathers a block's requests, it is kept for the block instead.
    pub(crate) fn start_script(&mut self, request: crate::script::Request) -> Frame {
        if let Some(gathered) = self.collecting.as_mut() {
            gathered.push(request);
            return Frame::Null;
        }
        let shared = self.shared.clone();
        self.script = Some(shared.scripts.submit(
            request,
            shared.engine.clone(),
            self.user.clone(),
            Some(self.caller()),
        ));
        Frame::Null
    }

    /// The protocol replies are written in.
    pub(crate) fn version(&self) -> Version {
        self.version
    }

    /// Whether the client asked to close (QUIT): its reply is the last.
    pub(crate) fn closing(&self) -> bool {
        self.closing
    }

    /// Answers one request. The answer may be sent once its writes are durable, and is not
    /// sent at all if [`Session::take_silent`] says so.
    pub(crate) fn handle(&mut self, argv: &[Bytes]) -> Uncommitted<Frame> {
        let skipped = std::mem::take(&mut self.skip_next);
        let started = Instant::now();
        self.ran = None;
        self.ran_slot = None;
        self.rejected = false;
        let answer = self.answer(argv);
        self.count(argv, &answer, started);
        let forced = std::mem::take(&mut self.force_reply);
        self.silent |= !forced && (skipped || self.replies_off);
        answer
    }

    /// Counts the request just answered: its command's calls, time and outcome, its error code,
    /// the slow log, and (once its answer may go) the door's latency.
    fn count(&mut self, argv: &[Bytes], answer: &Uncommitted<Frame>, started: Instant) {
        let took = started.elapsed();
        let stats = self.shared.engine.stats();
        let activity = &self.activity;
        activity
            .last_ms
            .store(stats.ms_at(started + took), Ordering::Relaxed);
        activity.multi.store(
            self.multi.as_ref().map_or(-1, |q| q.len() as i64),
            Ordering::Relaxed,
        );
        let error = match answer.peek() {
            Frame::Error(text) => Some(text),
            _ => None,
        };
        if let Some(text) = error {
            stats.error(text);
        }
        let Some(spec) = self.ran else {
            stats.request(Door::Resp, Class::Other, took);
            return;
        };
        let outcome = match (self.rejected, error) {
            (true, _) => Outcome::Rejected,
            (false, Some(_)) => Outcome::Failed,
            (false, None) => Outcome::Ok,
        };
        if let Some(slot) = self.ran_slot {
            if self.script.is_some() && outcome == Outcome::Ok {
                // Its outcome is the script's: counted when the answer arrives.
                self.script_stat = Some((slot, started));
            } else {
                stats.command_at(slot, took, outcome);
            }
        }
        let class = Class::of(spec);
        if answer.wrote() {
            self.unsettled = Some((class, started));
        } else {
            stats.request(Door::Resp, class, took);
        }
        if outcome != Outcome::Rejected && spec.name != "monitor" {
            self.feed_monitors(std::iter::once(argv));
        }
        if outcome != Outcome::Rejected && stats.slowlog.is_slow(took) {
            let (id, shared) = (self.id, &self.shared);
            stats.slowlog.note(
                took,
                Door::Resp,
                || argv.to_vec(),
                || {
                    shared
                        .clients
                        .get(id)
                        .map_or_else(Default::default, |c| (c.addr.to_string(), c.name.clone()))
                },
            );
        }
    }

    /// The class and arrival of the write just answered, whose latency is counted once its
    /// answer is released.
    pub(crate) fn take_unsettled(&mut self) -> Option<(Class, Instant)> {
        self.unsettled.take()
    }

    /// Whether the reply just returned by [`Session::handle`] must not be sent (CLIENT REPLY);
    /// asking resets it.
    pub(crate) fn take_silent(&mut self) -> bool {
        std::mem::take(&mut self.silent)
    }

    fn answer(&mut self, argv: &[Bytes]) -> Uncommitted<Frame> {
        self.shared
            .clients
            .commands_processed
            .fetch_add(1, Ordering::Relaxed);
        let Some((name, args)) = argv.split_first() else {
            return Uncommitted::nothing_written(Frame::err("empty command"));
        };
        let found = lookup(name);
        if !self.refresh_user() {
            self.closing = true;
            return Uncommitted::nothing_written(Frame::err(
                "the user this connection authenticated as no longer exists",
            ));
        }
        if let Some(found) = found {
            let spec = found.spec().describing(argv);
            self.ran = Some(spec);
            self.ran_slot = self.shared.engine.stats().slot(spec);
            // Before it runs, so CLIENT LIST shows itself as the command running.
            if let Some(slot) = self.ran_slot {
                self.activity.cmd.store(slot + 1, Ordering::Relaxed);
            }
        }
        if let Some(found) = found
            && self.subscribed_resp2()
            && !matches!(
                found.spec().name,
                "subscribe"
                    | "psubscribe"
                    | "ssubscribe"
                    | "unsubscribe"
                    | "punsubscribe"
                    | "sunsubscribe"
                    | "ping"
                    | "quit"
                    | "reset"
            )
        {
            self.rejected = true;
            return Uncommitted::nothing_written(Frame::err(format!(
                "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                found.spec().name
            )));
        }
        if self.multi.is_some() {
            // A queued command is counted when EXEC runs it; one refused while queueing is
            // counted as rejected now, as Redis counts it.
            let runs_now =
                found.is_some_and(|f| matches!(f.spec().name, "exec" | "quit" | "reset"));
            let answer = self.queue(found, argv);
            if !runs_now {
                match answer.peek() {
                    Frame::Error(_) => self.rejected = true,
                    _ => self.ran = None,
                }
            }
            return answer;
        }
        if let Some(found) = found
            && let Some(refusal) = self.gate(found.spec(), argv)
        {
            self.rejected = true;
            if found.spec().name == "exec" {
                return Uncommitted::nothing_written(self.abort_exec(refusal));
            }
            return Uncommitted::nothing_written(refusal);
        }
        match found {
            None => Uncommitted::nothing_written(Frame::Error(
                CommandError::unknown(name, args).to_string(),
            )),
            // A container (OBJECT, XINFO) with a subcommand it does not have, or the wrong
            // number of arguments for one: Redis's errors, as for the server's own containers.
            Some(Found::Data(spec))
                if let Err(refusal) = command::check(spec, argv)
                    && !spec.subcommands.is_empty() =>
            {
                self.rejected = true;
                Uncommitted::nothing_written(refusal)
            }
            Some(Found::Data(_)) => match Command::from_argv(argv) {
                Ok(mut command) => {
                    if let Command::XRead(read) = &command
                        && read.block.is_some()
                    {
                        let now = crate::engine::now_millis();
                        command = Command::XRead(read.resolved(self.shared.engine.store(), now));
                    }
                    let retry = command.block_timeout().map(|t| match &command {
                        Command::XRead(read) => (t, Command::XRead(read.clone().waited())),
                        _ => (t, command.clone()),
                    });
                    let answer = self.shared.engine.apply(command);
                    if let Some((timeout, command)) = retry
                        && answer.ticket().is_none()
                        && matches!(answer.peek(), Reply::Nil | Reply::NilArray)
                    {
                        let keys = match &command {
                            // Only the source can give BLMOVE something.
                            Command::LMove(m) => vec![m.from.clone()],
                            other => other
                                .keys()
                                .unwrap_or_default()
                                .into_iter()
                                .map(Bytes::copy_from_slice)
                                .collect(),
                        };
                        self.blocked = Some(Blocked {
                            command,
                            keys,
                            timeout,
                            empty: Frame::from(answer.peek().clone()),
                        });
                    }
                    // Refused for memory or a failed log: Redis counts these as rejected.
                    self.rejected = matches!(
                        answer.peek(),
                        Reply::Error(CommandError::OutOfMemory | CommandError::LogUnavailable(_))
                    );
                    answer.map(Frame::from)
                }
                Err(e) => {
                    self.rejected = matches!(e, CommandError::WrongArity(_));
                    Uncommitted::nothing_written(Frame::Error(e.to_string()))
                }
            },
            Some(Found::Session(c)) => {
                self.rejected = command::check(&c.spec, argv).is_err();
                Uncommitted::nothing_written(self.run(c, argv))
            }
        }
    }

    /// Takes the user's current permissions if the ACL changed; `false` if the user is gone.
    fn refresh_user(&mut self) -> bool {
        let generation = self.shared.acl.generation();
        if generation == self.acl_generation {
            return true;
        }
        self.acl_generation = generation;
        match self.shared.acl.still_valid(&self.user, self.acl_loads) {
            Some(user) => {
                self.user = user;
                true
            }
            None => false,
        }
    }

    /// Authentication and permissions, checked as redis-server checks them: after the name and
    /// the number of arguments (a request failing those is answered by its dispatch, which
    /// runs nothing), before anything runs. The refusal, if any.
    fn gate(&mut self, spec: &'static Spec, argv: &[Bytes]) -> Option<Frame> {
        let described = spec.describing(argv);
        if !described.arity_allows(argv.len())
            || (!spec.subcommands.is_empty() && spec.subcommand(argv).is_none())
        {
            return None;
        }
        if !self.authenticated && !described.has(Flag::NoAuth) {
            return Some(Frame::Error("NOAUTH Authentication required.".into()));
        }
        match self.user.check(described, argv) {
            Ok(()) => None,
            Err(denied) => {
                self.log_denied(&denied);
                Some(Frame::Error(format!("NOPERM {}", denied.message())))
            }
        }
    }

    /// A refused EXEC ends any transaction and says why, as redis-server answers it.
    fn abort_exec(&mut self, refusal: Frame) -> Frame {
        self.multi = None;
        self.multi_failed = false;
        self.watched.clear();
        let why = match refusal {
            Frame::Error(text) => text,
            other => format!("{other:?}"),
        };
        Frame::Error(format!("EXECABORT Transaction discarded because of: {why}"))
    }

    /// Adds a refusal to `ACL LOG`.
    pub(crate) fn log_denied(&self, denied: &Denied) {
        let (reason, object) = denied.reason_and_object();
        self.log_acl(reason, object, self.user.name().to_owned());
    }

    /// Adds an entry to `ACL LOG`, with this connection's `CLIENT LIST` line.
    pub(crate) fn log_acl(&self, reason: &'static str, object: String, username: String) {
        let context = if self.multi.is_some() {
            "multi"
        } else {
            "toplevel"
        };
        log_acl(&self.shared, self.id, context, reason, object, username);
    }

    /// Who runs the scripts this connection starts, for the ACL LOG entries of what they are
    /// refused.
    fn caller(&self) -> crate::script::Caller {
        crate::script::Caller {
            shared: self.shared.clone(),
            id: self.id,
        }
    }

    /// Runs as `user` from now on (AUTH, HELLO AUTH, RESET).
    pub(crate) fn become_user(&mut self, user: Arc<User>, authenticated: bool) {
        let name = user.name().to_owned();
        self.acl_loads = self.shared.acl.loads();
        self.user = user;
        self.authenticated = authenticated;
        self.shared.clients.update(self.id, |c| c.user = name);
    }

    /// Runs a connection command after checking its arity and subcommand.
    fn run(&mut self, c: &'static SessionCommand, argv: &[Bytes]) -> Frame {
        let answer = match command::check(&c.spec, argv) {
            // Over the memory limit, what needs memory is refused (FUNCTION LOAD, RESTORE).
            Ok(()) if c.spec.describing(argv).has(Flag::Denyoom) => {
                match self.shared.engine.admit() {
                    Ok(()) => (c.run)(self, &argv[1..]),
                    Err(oom) => Frame::Error(oom.to_string()),
                }
            }
            Ok(()) => (c.run)(self, &argv[1..]),
            Err(e) => e,
        };
        // CLIENT LIST shows the subscriptions (RESET ends them all).
        if c.spec.has(Flag::Pubsub) || c.spec.name == "reset" {
            let counts = self.subs.as_ref().map_or((0, 0, 0), Subscriptions::counts);
            self.shared.clients.update(self.id, |c| c.pubsub = counts);
        }
        answer
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
        if let Some(refusal) = self.gate(spec, argv) {
            if spec.name == "exec" {
                return Uncommitted::nothing_written(self.abort_exec(refusal));
            }
            return refuse(self, refusal);
        }
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
            // Over the memory limit, queueing is refused: a queue could grow without bound.
            _ => {
                if let Err(oom) = self.shared.engine.admit() {
                    return refuse(self, Frame::Error(oom.to_string()));
                }
            }
        }
        if spec.has(Flag::NoMulti) {
            return refuse(self, Frame::err("Command not allowed inside a transaction"));
        }
        let queued = match found {
            Found::Data(_) => match Command::from_argv(argv) {
                Ok(command) => Queued::Data(command, argv.to_vec()),
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
        // Permissions are checked again: they may have changed since the commands were queued.
        let queued: Vec<Queued> = queued
            .into_iter()
            .map(|q| match q {
                Queued::Data(command, argv) => match self.recheck(&argv) {
                    Some(refusal) => Queued::Refused(refusal),
                    None => Queued::Data(command, argv),
                },
                Queued::Session(c, argv) => match self.recheck(&argv) {
                    Some(refusal) => Queued::Refused(refusal),
                    None => Queued::Session(c, argv),
                },
                refused @ Queued::Refused(_) => refused,
            })
            .collect();
        let data: Vec<Command> = queued
            .iter()
            .filter_map(|q| match q {
                Queued::Data(c, _) => Some(c.clone()),
                Queued::Session(..) | Queued::Refused(_) => None,
            })
            .collect();
        // A block with a command that needs memory is refused whole over the limit.
        if data.iter().any(Command::denyoom)
            && let Err(oom) = self.shared.engine.admit()
        {
            return Uncommitted::nothing_written(self.abort_exec(Frame::Error(oom.to_string())));
        }
        if queued
            .iter()
            .any(|q| matches!(q, Queued::Session(_, argv) if runs_script(argv)))
        {
            return self.exec_with_scripts(queued, watched);
        }
        let Some(block) = self.shared.engine.apply_block(data, &watched) else {
            return Uncommitted::nothing_written(Frame::NullArray);
        };
        // Connection commands answer now, in their place among the block's replies; a script's
        // writes are waited for with the block's.
        let mut session = Vec::new();
        let mut scripts = Uncommitted::nothing_written(());
        let mut engine = vec![false; queued.len()];
        for (q, answered) in queued.iter().zip(engine.iter_mut()) {
            if let Queued::Session(c, argv) = q {
                let frame = self.run(c, argv);
                match self.script.take() {
                    None => session.push(frame),
                    Some(answer) => {
                        *answered = true;
                        let answer = wait_for_script(answer);
                        scripts = scripts.and(answer).map(|((), frame)| session.push(frame));
                    }
                }
            }
        }
        let stats = self.shared.engine.stats().clone();
        self.feed_monitors(queued.iter().filter_map(Queued::request));
        block
            .map(|replies| {
                let (mut replies, mut session) = (replies.into_iter(), session.into_iter());
                let out: Vec<Frame> = queued
                    .iter()
                    .map(|q| match q {
                        Queued::Data(..) => replies.next().map_or(Frame::Null, Frame::from),
                        Queued::Session(..) => session.next().unwrap_or(Frame::Null),
                        Queued::Refused(refusal) => refusal.clone(),
                    })
                    .collect();
                count_block(&stats, &queued, &out, &engine);
                Frame::Array(out)
            })
            .and(scripts)
            .map(|(frame, ())| frame)
    }

    /// Shows requests to the monitors, if any: each as it is answered, and a block's queued
    /// commands at EXEC, before EXEC itself, as Redis shows them.
    fn feed_monitors<'a>(&self, requests: impl IntoIterator<Item = &'a [Bytes]>) {
        let stats = self.shared.engine.stats();
        if !stats.monitors.active() {
            return;
        }
        let addr = self
            .shared
            .clients
            .get(self.id)
            .map_or_else(String::new, |c| c.addr.to_string());
        let limit = self.shared.engine.pubsub().limit();
        for argv in requests {
            stats.monitors.feed(Door::Resp, &addr, argv, limit);
        }
    }

    /// EXEC of a block that holds a script (EVAL, FCALL, ...): the whole block goes to the
    /// scripting engine, which runs every command in its place in one transaction over every
    /// shard, as Redis runs it; connection commands are answered here first (they touch no key).
    /// The connection waits for the answer as for a script's.
    fn exec_with_scripts(
        &mut self,
        queued: Vec<Queued>,
        watched: Vec<Watched>,
    ) -> Uncommitted<Frame> {
        use crate::script::BlockItem;
        self.collecting = Some(Vec::new());
        let mut items = Vec::with_capacity(queued.len());
        for q in &queued {
            items.push(match q {
                Queued::Data(command, _) => BlockItem::Data(command.clone()),
                Queued::Refused(refusal) => BlockItem::Answered(refusal.clone()),
                Queued::Session(c, argv) => {
                    let frame = self.run(c, argv);
                    match self.collecting.as_mut().and_then(Vec::pop) {
                        Some(request) => BlockItem::Script(request),
                        None => BlockItem::Answered(frame),
                    }
                }
            });
        }
        self.collecting = None;
        self.feed_monitors(queued.iter().filter_map(Queued::request));
        let engine = items
            .iter()
            .map(|i| matches!(i, BlockItem::Script(_)))
            .collect();
        let shared = self.shared.clone();
        let request = crate::script::Request::Block { items, watched };
        self.script = Some(shared.scripts.submit(
            request,
            shared.engine.clone(),
            self.user.clone(),
            Some(self.caller()),
        ));
        self.pending_block = Some((queued, engine));
        Uncommitted::nothing_written(Frame::Null)
    }

    /// Counts a block the scripting engine ran (see [`Session::exec_with_scripts`]) once its
    /// answer arrived; nothing for other scripts' answers.
    pub(crate) fn script_answered(&mut self, answer: &Frame) {
        let stats = self.shared.engine.stats();
        if let Some((slot, started)) = self.script_stat.take() {
            let outcome = match answer {
                Frame::Error(_) => Outcome::Failed,
                _ => Outcome::Ok,
            };
            stats.command_at(slot, started.elapsed(), outcome);
        }
        if let (Some((queued, engine)), Frame::Array(replies)) = (self.pending_block.take(), answer)
        {
            count_block(stats, &queued, replies, &engine);
        }
    }

    /// A queued request's refusal at EXEC, if the user may no longer run it.
    fn recheck(&mut self, argv: &[Bytes]) -> Option<Frame> {
        if !self.refresh_user() {
            return Some(Frame::err(
                "the user this connection authenticated as no longer exists",
            ));
        }
        let name = std::str::from_utf8(argv.first()?)
            .ok()?
            .to_ascii_lowercase();
        let spec = command::find(&name)?.spec().describing(argv);
        let denied = self.user.check(spec, argv).err()?;
        self.log_denied(&denied);
        let reason = match denied {
            Denied::Command(_) => "no permission to execute the command or subcommand",
            Denied::Key(_) => "no permission to touch the specified keys",
            Denied::Channel(_) => "no permission to access one of the channels used as arguments",
        };
        Some(Frame::Error(format!(
            "NOPERM ACLs rules changed between the moment the transaction was accumulated and \
             the EXEC call. This command is no longer allowed for the following reason: {reason}"
        )))
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

/// Waits on this thread for a script queued in a transaction (it runs on the scripting thread
/// once the block's commands have run).
fn wait_for_script(mut answer: ScriptAnswer) -> Uncommitted<Frame> {
    loop {
        match answer.try_recv() {
            Ok(done) => return done,
            Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
            Err(tokio::sync::oneshot::error::TryRecvError::Closed) => {
                return Uncommitted::nothing_written(Frame::err("the scripting engine stopped"));
            }
        }
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

/// Adds an entry to `ACL LOG` for client `id`, with its `CLIENT LIST` line; `context` is where
/// the refused request came from (`toplevel`, `multi`, `lua`).
pub(crate) fn log_acl(
    shared: &Shared,
    id: u64,
    context: &'static str,
    reason: &'static str,
    object: String,
    username: String,
) {
    let client_info = shared
        .clients
        .get(id)
        .map(|c| {
            super::client_list::client_line(shared, id, &c)
                .trim_end()
                .to_owned()
        })
        .unwrap_or_default();
    shared.acl.log.lock().add(LogEntry {
        count: 1,
        reason,
        context,
        object,
        username,
        updated: Instant::now(),
        client_info,
    });
}

/// Whether `argv` runs a script or a function (so a block holding it runs on the engine).
fn runs_script(argv: &[Bytes]) -> bool {
    argv.first().is_some_and(|name| {
        [
            "eval",
            "evalsha",
            "eval_ro",
            "evalsha_ro",
            "fcall",
            "fcall_ro",
        ]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
    })
}

/// Counts the commands a transaction ran, as Redis counts them: each is a call of its own (its
/// time is the block's, so it counts none of its own), and each error reply is counted by its
/// code.
fn count_block(stats: &crate::stats::Stats, queued: &[Queued], replies: &[Frame], engine: &[bool]) {
    for ((q, reply), by_engine) in queued.iter().zip(replies).zip(engine) {
        let Some(argv) = q.request() else {
            continue;
        };
        let error = match reply {
            Frame::Error(text) => {
                // The scripting engine counted the errors it answered.
                if !by_engine {
                    stats.error(text);
                }
                true
            }
            _ => false,
        };
        let Some(name) = argv
            .first()
            .map(|n| String::from_utf8_lossy(n).to_ascii_lowercase())
        else {
            continue;
        };
        let Some(slot) = command::find(&name).and_then(|f| stats.slot(f.spec().describing(argv)))
        else {
            continue;
        };
        let outcome = if error { Outcome::Failed } else { Outcome::Ok };
        stats.command_at(slot, std::time::Duration::ZERO, outcome);
    }
}
