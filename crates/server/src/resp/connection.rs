//! One RESP connection: read, decode every complete request in the buffer, execute them in
//! order, write all their replies in one write, repeat. A malformed request gets Redis's
//! protocol error and the connection closes; a refused command gets an error and it continues.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::BytesMut;
use kvs_protocol::resp::{Frame, RequestDecoder, RequestLimits, Version};
use kvs_store::{CommandError, Ticket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::clients::{Activity, ClientInfo};
use super::persistence::{self, Awaited};
use super::session::Session;
use crate::commit::Uncommitted;
use crate::listener::{Addresses, ByteStream};
use crate::pubsub::Mailbox;
use crate::script::Busy;
use crate::stats::{Class, Door};

/// Bytes asked of the socket per read. The buffer grows only by what actually arrives.
const READ_CHUNK: usize = 16 * 1024;
/// Reply bytes held back before writing while a pipeline is still being executed.
const FLUSH_AT: usize = 1024 * 1024;

/// Bytes read from a blocked client and held until its wait ends; past this the socket is left
/// unread (the client waits for the answer first, as Redis makes it).
const MAX_READ_WHILE_BLOCKED: usize = 1024 * 1024;

/// Replies held back most, before the log is waited for and they are sent.
const MAX_HELD: usize = 1024;

/// Replies that may be sent only once the log acknowledges the writes they report (and, for
/// SAVE, once the snapshot is written). One wait covers a whole pipeline.
#[derive(Default)]
struct Held {
    replies: Vec<HeldReply>,
    ticket: Option<Ticket>,
}

struct HeldReply {
    frame: Uncommitted<Frame>,
    version: Version,
    awaited: Option<Awaited>,
    /// A write's class and arrival: its latency is counted once its answer may go.
    unsettled: Option<(Class, Instant)>,
}

impl Held {
    fn push(
        &mut self,
        frame: Uncommitted<Frame>,
        version: Version,
        awaited: Option<Awaited>,
        unsettled: Option<(Class, Instant)>,
    ) {
        self.ticket = Ticket::join(self.ticket, frame.ticket());
        self.replies.push(HeldReply {
            frame,
            version,
            awaited,
            unsettled,
        });
    }

    /// Waits for the log, then encodes the held replies in order into `output`. If the log
    /// failed, the replies of the writes become errors: they were never made durable.
    async fn release(&mut self, shared: &Shared, output: &mut BytesMut) {
        if self.replies.is_empty() {
            return;
        }
        let proof = shared.engine.commit(self.ticket.take()).await;
        let stats = shared.engine.stats();
        for reply in self.replies.drain(..) {
            if let Some((class, started)) = reply.unsettled {
                stats.request(Door::Resp, class, started.elapsed());
            }
            let frame = match (reply.awaited, &proof) {
                (Some(awaited), _) => persistence::saved(awaited).await,
                (None, Ok(proof)) => reply.frame.release(proof).unwrap_or_else(|_| {
                    Frame::Error(
                        CommandError::LogUnavailable("the write was not acknowledged".into())
                            .to_string(),
                    )
                }),
                (None, Err(e)) => reply
                    .frame
                    .ready()
                    .unwrap_or_else(|_| Frame::Error(e.to_string())),
            };
            frame.encode(reply.version, output);
        }
    }
}

/// Whether `frame` is made of push frames, which CLIENT REPLY OFF does not silence.
fn pushes(frame: &Frame) -> bool {
    match frame {
        Frame::Push(_) => true,
        Frame::Many(frames) => !frames.is_empty() && frames.iter().all(pushes),
        _ => false,
    }
}

/// Waits while `CLIENT PAUSE` holds requests like `argv` back; `false` if the connection was
/// killed meanwhile.
async fn paused(
    shared: &Shared,
    argv: &[bytes::Bytes],
    killed: &mut std::pin::Pin<&mut tokio_util::sync::WaitForCancellationFuture<'_>>,
) -> bool {
    let spec = argv
        .first()
        .and_then(|name| super::command::spec(&String::from_utf8_lossy(name)));
    let stats = shared.engine.stats();
    while let Some(wait) = shared.pause.wait_for(stats.clock_ms(), spec) {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shared.pause.changed() => {}
            () = killed.as_mut() => return false,
        }
    }
    true
}

/// Waits until the blocked command gets something (its answer, whose writes the caller waits
/// for as for any other), its timeout passes or `CLIENT UNBLOCK` ends it (its empty answer, or
/// the UNBLOCKED error); `None` if the connection is killed or the server stops meanwhile. The
/// client's place in the queues is left however the wait ends. Meanwhile the socket is still
/// read, so a client that disconnects is noticed (and what it pipelined after the blocking
/// command waits in `input`).
async fn wait_blocked<S: ByteStream>(
    shared: &Shared,
    activity: &Activity,
    blocked: super::session::Blocked,
    (stream, input): (&mut S, &mut BytesMut),
    killed: &mut std::pin::Pin<&mut tokio_util::sync::WaitForCancellationFuture<'_>>,
    stopped: &mut std::pin::Pin<&mut tokio_util::sync::WaitForCancellationFuture<'_>>,
) -> Option<Uncommitted<Frame>> {
    let engine = &shared.engine;
    let waiter = engine.block_on(&blocked.keys);
    let generation = activity.unblocks.load(Ordering::Acquire);
    activity.blocked.store(true, Ordering::Release);
    let deadline = (blocked.timeout > 0.0)
        .then(|| tokio::time::Instant::now() + std::time::Duration::from_secs_f64(blocked.timeout));
    let answer = loop {
        // Run again first: a write may have come between the first try and joining the queue.
        let answer = engine.apply(blocked.command.clone());
        let nothing = match answer.peek() {
            kvs_store::Reply::Nil | kvs_store::Reply::NilArray => true,
            // A key it waits on now holds another type: Redis leaves the client waiting, unless
            // a key it waits on has what it wants (BLMOVE onto a key of another type fails).
            kvs_store::Reply::Error(CommandError::WrongType) => !holds(engine, &blocked),
            _ => false,
        };
        if answer.ticket().is_some() || !nothing {
            break Some(answer.map(Frame::from));
        }
        tokio::select! {
            () = waiter.woken() => {}
            () = crate::line::sleep_until_some(deadline) => {
                break Some(Uncommitted::nothing_written(blocked.empty.clone()));
            }
            () = activity.unblock.notified() => {
                if activity.unblocks.load(Ordering::Acquire) == generation {
                    continue; // a CLIENT UNBLOCK meant for an earlier wait
                }
                break Some(Uncommitted::nothing_written(
                    if activity.unblock_error.load(Ordering::Acquire) {
                        Frame::Error("UNBLOCKED client unblocked via CLIENT UNBLOCK".into())
                    } else {
                        blocked.empty.clone()
                    },
                ));
            }
            r = stream.read_buf(input), if input.len() < MAX_READ_WHILE_BLOCKED => {
                if matches!(r, Ok(0) | Err(_)) {
                    break None;
                }
            }
            _ = killed.as_mut() => break None,
            _ = stopped.as_mut() => break None,
        }
    };
    activity.blocked.store(false, Ordering::Release);
    drop(waiter);
    answer
}

/// Whether one of the keys a blocked command waits on holds the type it pops or reads from.
fn holds(engine: &crate::engine::Engine, blocked: &super::session::Blocked) -> bool {
    let wanted = match &blocked.command {
        kvs_store::Command::ZPop(_) => "zset",
        kvs_store::Command::XRead(_) => "stream",
        _ => "list",
    };
    blocked.keys.iter().any(|key| {
        let kind = kvs_store::Command::TypeOf(kvs_store::TypeOf { key: key.clone() });
        matches!(engine.apply(kind).ready(), Ok(kvs_store::Reply::Status(t)) if t == wanted)
    })
}

/// Whether a request may run while a script is running: the commands Redis flags
/// `allow_busy` (SCRIPT KILL, AUTH, HELLO, QUIT, ...) and SHUTDOWN NOSAVE.
fn busy_allowed(argv: &[bytes::Bytes]) -> bool {
    let Some(name) = argv.first().and_then(|n| std::str::from_utf8(n).ok()) else {
        return false;
    };
    if name.eq_ignore_ascii_case("shutdown") {
        return argv
            .get(1)
            .is_some_and(|a| a.eq_ignore_ascii_case(b"nosave"));
    }
    super::command::spec(name)
        .is_some_and(|spec| spec.describing(argv).has(kvs_store::Flag::AllowBusy))
}

/// Resolves when messages may be waiting in `mailbox`; never without one.
async fn mail(mailbox: Option<&Mailbox>) {
    match mailbox {
        Some(mailbox) => mailbox.ready().await,
        None => std::future::pending().await,
    }
}

/// Serves one connection from `peer` (which reached the server at `local`) until it closes, is
/// killed, or `stop` is cancelled between requests.
pub(crate) async fn run<S: ByteStream>(
    mut stream: S,
    at: Addresses,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let (peer, local) = (at.peer, at.local);
    let kill = CancellationToken::new();
    let memory = Arc::new(AtomicUsize::new(0));
    let activity = Arc::new(Activity::default());
    activity.multi.store(-1, Ordering::Relaxed);
    activity
        .last_ms
        .store(shared.engine.stats().clock_ms(), Ordering::Relaxed);
    let id = shared.clients.register(ClientInfo {
        fd: at.fd,
        activity: activity.clone(),
        addr: peer,
        local,
        name: String::new(),
        since: Instant::now(),
        resp: 2,
        user: "default".into(),
        memory: memory.clone(),
        kill: kill.clone(),
        pubsub: (0, 0, 0),
    });
    let memory_limit = shared.config.limits.maxmemory_clients;
    // What this connection's buffers hold: its input (with the record of a request's arguments
    // while it arrives) and its output.
    let buffers =
        |decoder: &RequestDecoder, input: &BytesMut, output: &BytesMut, session: &Session| {
            input.capacity()
                + (decoder.held(input) - input.len())
                + output.capacity()
                + session.mailbox().map_or(0, |m| m.pending())
        };
    let limits = RequestLimits {
        max_bulk_len: shared.config.limits.max_value_size,
        max_query_buffer: shared.config.limits.client_query_buffer_limit,
        ..RequestLimits::default()
    };
    let mut session = Session::new(id, shared.clone());
    session.activity = activity.clone();
    let mut decoder = RequestDecoder::new(limits);
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut output = BytesMut::with_capacity(READ_CHUNK);
    let mut held = Held::default();
    let mut partial_since: Option<tokio::time::Instant> = None;
    let mut progressed = false;
    let mut mail_wakes: u64 = 0;
    // Made once per connection: a fresh `cancelled()` per read would register with (and leave)
    // the tokens' waiter lists, shared by every connection, on every request.
    // A token of this connection's own, cancelled with the server's: waiting on the shared one
    // would make every connection take the same locks on every poll.
    let stop = stop.child_token();
    let stopped = stop.cancelled();
    let killed = kill.cancelled();
    tokio::pin!(stopped, killed);
    // Writes everything in a buffer, unless the connection is killed first: a client that
    // stopped reading cannot hold its connection open once it is cut off.
    macro_rules! send {
        ($buf:expr) => {
            // The write is polled first: it usually completes at once, and looking at the
            // kill token costs a lock.
            tokio::select! {
                biased;
                r = stream.write_all($buf) => r.is_ok(),
                _ = &mut killed => false,
            }
        };
    }
    'connection: loop {
        loop {
            decoder.set_authenticated(session.authenticated);
            match decoder.decode(&mut input) {
                Ok(Some(argv)) => {
                    progressed = true;
                    if shared.pause.maybe_on() {
                        // Replies already made go out first: the pause holds back only what
                        // comes after.
                        session.wakes.wake_all();
                        held.release(&shared, &mut output).await;
                        if !output.is_empty() {
                            if !send!(&output) {
                                break 'connection;
                            }
                            output.clear();
                        }
                        if !paused(&shared, &argv, &mut killed).await {
                            break 'connection;
                        }
                    }
                    // Messages delivered before this request go out before its reply.
                    if let Some(mailbox) = session.mailbox() {
                        mailbox.drain_into(&mut output);
                    }
                    // While a script runs, requests wait for it, and past its time limit are
                    // answered BUSY, without holding this thread (the script holds every shard).
                    let mut refused = None;
                    loop {
                        let allowed = busy_allowed(&argv);
                        match crate::script::Scripts::busy(shared.engine.script(), allowed) {
                            None => break,
                            Some(Busy::Refuse(frame)) => {
                                refused = Some(frame);
                                break;
                            }
                            Some(Busy::Wait) => tokio::select! {
                                () = tokio::time::sleep(std::time::Duration::from_millis(1)) => {}
                                _ = &mut killed => break 'connection,
                            },
                        }
                    }
                    if let Some(frame) = refused {
                        held.push(
                            Uncommitted::nothing_written(frame),
                            session.version(),
                            None,
                            None,
                        );
                        continue;
                    }
                    let answer = session.handle(&argv);
                    let answer = match session.take_script() {
                        None => answer,
                        Some(script) => {
                            // Other connections on this thread go on while the script runs.
                            let done = tokio::select! {
                                done = script => done.unwrap_or_else(|_| {
                                    let stopped = "ERR the scripting engine stopped";
                                    shared.engine.stats().error(stopped);
                                    Uncommitted::nothing_written(Frame::Error(stopped.into()))
                                }),
                                _ = &mut killed => break 'connection,
                            };
                            // Its error, if any, was counted by the scripting engine, which
                            // knows whether a command the script called counted it already.
                            session.script_answered(done.peek());
                            done
                        }
                    };
                    let answer = match session.take_blocked() {
                        None => answer,
                        Some(blocked) => {
                            // The replies before it go out before it waits.
                            session.wakes.wake_all();
                            held.release(&shared, &mut output).await;
                            if !output.is_empty() {
                                if !send!(&output) {
                                    break 'connection;
                                }
                                output.clear();
                            }
                            let waited = wait_blocked(
                                &shared,
                                &session.activity,
                                blocked,
                                (&mut stream, &mut input),
                                &mut killed,
                                &mut stopped,
                            )
                            .await;
                            match waited {
                                Some(answer) => answer,
                                None => break 'connection,
                            }
                        }
                    };
                    if std::mem::take(&mut session.drain_before_reply)
                        && let Some(mailbox) = session.mailbox()
                    {
                        mailbox.drain_into(&mut output);
                    }
                    let awaited = session.take_awaited();
                    let unsettled = session.take_unsettled();
                    let answer = if session.take_silent() {
                        // CLIENT REPLY OFF or SKIP: only push frames (subscription
                        // confirmations) are still sent.
                        match answer.ready() {
                            Ok(frame) if pushes(&frame) => Uncommitted::nothing_written(frame),
                            _ => continue,
                        }
                    } else {
                        answer
                    };
                    match answer.ready() {
                        Ok(frame) if held.replies.is_empty() && awaited.is_none() => {
                            frame.encode(session.version(), &mut output);
                        }
                        Ok(frame) => held.push(
                            Uncommitted::nothing_written(frame),
                            session.version(),
                            awaited,
                            None,
                        ),
                        Err(answer) => held.push(answer, session.version(), awaited, unsettled),
                    }
                    if session.closing() {
                        break;
                    }
                    // A long pipeline's replies go out in pieces rather than pile up.
                    if output.len() >= FLUSH_AT || held.replies.len() >= MAX_HELD {
                        session.wakes.wake_all();
                        held.release(&shared, &mut output).await;
                        if !send!(&output) {
                            break 'connection;
                        }
                        output.clear();
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    held.release(&shared, &mut output).await;
                    Frame::Error(format!("ERR {e}")).encode(Version::Resp2, &mut output);
                    send!(&output);
                    tracing::debug!(%peer, error = %e, "closing a connection after a protocol error");
                    break 'connection;
                }
            }
        }
        // The subscribers this batch published to are woken once, together.
        session.wakes.wake_all();
        held.release(&shared, &mut output).await;
        if !output.is_empty() {
            if !send!(&output) {
                break;
            }
            output.clear();
        }
        if session.closing() || kill.is_cancelled() {
            break;
        }
        // A request that has begun must be complete within the body timeout, so a client
        // sending a byte now and then cannot hold a connection (and its buffer) forever.
        // The clock starts again with each request taken, so a steady pipeline never times out.
        if input.is_empty() {
            partial_since = None;
        } else if progressed || partial_since.is_none() {
            partial_since = Some(tokio::time::Instant::now());
        }
        progressed = false;
        let deadline = partial_since.map(|since| since + shared.config.limits.body_timeout);
        input.reserve(READ_CHUNK);
        // A kill (CLIENT KILL) or a stop that is ready wins over bytes that are ready too, so a
        // killed client never gets an answer to a request it sent after the kill.
        let mailbox = session.mailbox().cloned();
        // Messages for a subscriber come first: they are most of what it is woken for, and a
        // kill or stop that is ready is still seen before the next request is read. (A subscriber
        // cut off for falling behind has its mailbox emptied, so the kill wins then.)
        let read = tokio::select! {
            biased;
            () = mail(mailbox.as_deref()) => {
                if let Some(mailbox) = &mailbox {
                    mailbox.drain_into(&mut output);
                }
                // A busy channel keeps this branch ready: look at the kill and the stop now and
                // then, so neither waits for the channel to go quiet.
                mail_wakes += 1;
                if mail_wakes.is_multiple_of(16) && (kill.is_cancelled() || stop.is_cancelled()) {
                    break;
                }
                continue;
            }
            _ = &mut killed => break,
            _ = &mut stopped => break,
            r = stream.read_buf(&mut input) => r,
            () = crate::line::sleep_until_some(deadline) => {
                let timeout = shared.config.limits.body_timeout.as_secs_f64();
                Frame::Error(format!("ERR request timeout: the request did not complete within {timeout} s"))
                    .encode(session.version(), &mut output);
                send!(&output);
                break;
            }
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        shared.clients.account(
            &memory,
            buffers(&decoder, &input, &output, &session),
            memory_limit,
        );
        activity.qbuf.store(input.len(), Ordering::Relaxed);
        activity
            .qbuf_free
            .store(input.capacity() - input.len(), Ordering::Relaxed);
        activity
            .argv_mem
            .store(decoder.held(&input) - input.len(), Ordering::Relaxed);
        activity.obl.store(output.len(), Ordering::Relaxed);
        activity.omem.store(
            session.mailbox().map_or(0, |m| m.pending()),
            Ordering::Relaxed,
        );
    }
    let _ = stream.shutdown().await;
    shared.clients.unregister(id);
}
