//! Lua scripting, as Redis 7.0 has it: `EVAL`, `EVALSHA`, `EVAL_RO`, `EVALSHA_RO` and `SCRIPT`;
//! function libraries with `FUNCTION` and `FCALL`.
//!
//! Scripts run on Lua 5.1 (mlua, with Lua's own sources built in) on one thread of their own,
//! `kvs-lua`, which owns the Lua states (one for scripts, one for functions, as in Redis) and
//! what is compiled in them. A connection hands its request over and waits for the answer
//! without holding its thread, so other connections go on.
//!
//! Function libraries are data, as in Redis: they are kept in the store's server state (see
//! [`kvs_store::Transaction::set_meta`]) as a `FUNCTION DUMP` payload, so each change is one log
//! record, snapshots carry them, and FLUSHALL leaves them.
//!
//! A script runs with the write lock of every shard held (a [`kvs_store::Transaction`] over the
//! whole store): no command from any door interleaves with it, and what it wrote is submitted
//! to the log as one record when it ends, as a `MULTI`/`EXEC` block is. Its answer waits for
//! that record like any write's.

mod convert;
pub(crate) mod functions;
mod libs;
mod runner;
mod vm;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;

use bytes::Bytes;
use kvs_protocol::resp::Frame;
use tokio::sync::oneshot;

use crate::acl::User;
use crate::commit::Uncommitted;
use crate::engine::Engine;

/// Scripts whose source came with `EVAL` are kept at most this many (the oldest is dropped);
/// those loaded with `SCRIPT LOAD` stay until `SCRIPT FLUSH`.
pub(crate) const MAX_EVAL_SCRIPTS: usize = 500;

/// Where a script comes from.
#[derive(Debug)]
pub(crate) enum Source {
    /// Its text (`EVAL`).
    Body(Bytes),
    /// The SHA1 of a text run or loaded before (`EVALSHA`).
    Sha(Bytes),
}

/// What a request must do while a script runs.
#[derive(Debug)]
pub(crate) enum Busy {
    Wait,
    Refuse(Frame),
}

/// What the scripting thread is asked to do.
#[derive(Debug)]
pub(crate) enum Request {
    Eval {
        source: Source,
        keys: Vec<Bytes>,
        args: Vec<Bytes>,
        /// `EVAL_RO` / `EVALSHA_RO`.
        read_only: bool,
    },
    Load(Bytes),
    Flush,
    /// `FCALL` / `FCALL_RO`.
    Fcall {
        name: Bytes,
        keys: Vec<Bytes>,
        args: Vec<Bytes>,
        read_only: bool,
        /// The whole request, for FUNCTION STATS.
        argv: Vec<Bytes>,
    },
    Function(FunctionChange),
    /// Nothing but loading the stored libraries, done before any first request.
    Sync,
    /// A MULTI block that holds a script, run whole in one transaction with each command in its
    /// place; EXEC's answer, or nil if a watched key changed.
    Block {
        items: Vec<BlockItem>,
        watched: Vec<kvs_store::Watched>,
    },
}

/// One command of a MULTI block run by the scripting engine.
#[derive(Debug)]
pub(crate) enum BlockItem {
    /// A data command, run in place.
    Data(kvs_store::Command),
    /// A scripting request (EVAL, FCALL, SCRIPT LOAD, FUNCTION LOAD, ...), run in place.
    Script(Request),
    /// Answered already: a connection command, or a refusal.
    Answered(Frame),
}

/// A change to the function libraries.
#[derive(Debug)]
pub(crate) enum FunctionChange {
    Load {
        code: Bytes,
        replace: bool,
    },
    Delete(Bytes),
    Flush,
    Restore {
        payload: Bytes,
        policy: RestorePolicy,
    },
}

/// What FUNCTION RESTORE does with libraries already loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RestorePolicy {
    /// Adds; a library of the same name is an error (the default).
    Append,
    /// Adds, replacing libraries of the same name.
    Replace,
    /// Replaces every library.
    Flush,
}

struct Job {
    request: Request,
    engine: Arc<Engine>,
    user: Arc<User>,
    caller: Option<Caller>,
    answer: oneshot::Sender<Uncommitted<Frame>>,
}

/// The connection a script runs for: where ACL LOG entries for the commands it is refused name
/// their client.
#[derive(Clone)]
pub(crate) struct Caller {
    pub(crate) shared: Arc<crate::resp::Shared>,
    pub(crate) id: u64,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Caller({})", self.id)
    }
}

thread_local! {
    /// The connection the script running on this thread runs for.
    static CALLER: std::cell::RefCell<Option<Caller>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with `caller` as the connection scripts run for on this thread.
fn for_caller<R>(caller: Option<Caller>, f: impl FnOnce() -> R) -> R {
    let previous = CALLER.with(|c| c.replace(caller));
    let result = f();
    CALLER.with(|c| *c.borrow_mut() = previous);
    result
}

/// Adds an ACL LOG entry (context `lua`) for a command the running script was refused.
pub(crate) fn log_refusal(reason: &'static str, object: String, username: String) {
    CALLER.with(|c| {
        if let Some(caller) = &*c.borrow() {
            crate::resp::log_acl(&caller.shared, caller.id, "lua", reason, object, username);
        }
    });
}

/// How long a script runs before other clients are answered `BUSY` instead of waiting for it,
/// unless set (Redis's `busy-reply-threshold`, formerly `lua-time-limit`).
pub(crate) const BUSY_AFTER_MS: u64 = 5000;

/// What the other connections see of the script running now.
#[derive(Debug, Default)]
pub(crate) struct Running {
    /// When it began, in milliseconds of [`Running::clock`]; 0: no script runs.
    since: AtomicU64,
    /// It has run a write command: it can no longer be killed.
    wrote: AtomicBool,
    /// SCRIPT KILL asked it to stop.
    kill: AtomicBool,
    epoch: std::sync::OnceLock<std::time::Instant>,
    /// `busy-reply-threshold` in milliseconds, less [`BUSY_AFTER_MS`] (so zero is the default).
    busy_after_delta: std::sync::atomic::AtomicI64,
    /// Bytes the scripts' Lua state holds, as of the last script.
    lua_bytes: AtomicU64,
    /// Bytes the functions' Lua state holds.
    function_bytes: AtomicU64,
    /// The running one runs on a connection thread (it was known to be quick).
    inline: AtomicBool,
    /// The running one is a function: its name and request (FUNCTION STATS).
    function: parking_lot::Mutex<Option<(String, Vec<Bytes>)>>,
    is_function: AtomicBool,
}

const BUSY_EVAL: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

impl Running {
    /// Bytes the Lua state holds (`used_memory_lua`).
    pub(crate) fn lua_bytes(&self) -> u64 {
        self.lua_bytes.load(Ordering::Relaxed)
    }

    /// Bytes the functions' Lua state holds (`used_memory_vm_functions`).
    pub(crate) fn function_bytes(&self) -> u64 {
        self.function_bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn set_lua_bytes(&self, scripts: usize, functions: usize) {
        self.lua_bytes.store(scripts as u64, Ordering::Relaxed);
        self.function_bytes
            .store(functions as u64, Ordering::Relaxed);
    }

    /// How long a script runs before others are answered BUSY.
    pub(crate) fn busy_after(&self) -> std::time::Duration {
        let delta = self.busy_after_delta.load(Ordering::Relaxed);
        std::time::Duration::from_millis(BUSY_AFTER_MS.saturating_add_signed(delta))
    }

    pub(crate) fn set_busy_after(&self, ms: u64) {
        let delta = i64::try_from(ms).unwrap_or(i64::MAX) - BUSY_AFTER_MS as i64;
        self.busy_after_delta.store(delta, Ordering::Relaxed);
    }

    fn clock(&self) -> u64 {
        let epoch = self.epoch.get_or_init(std::time::Instant::now);
        u64::try_from(epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// A script (`None`) or a function (its name and request) begins.
    pub(crate) fn begin(&self, function: Option<(String, Vec<Bytes>)>, inline: bool) {
        self.inline.store(inline, Ordering::Release);
        self.is_function
            .store(function.is_some(), Ordering::Release);
        *self.function.lock() = function;
        self.wrote.store(false, Ordering::Release);
        self.kill.store(false, Ordering::Release);
        self.since.store(self.clock(), Ordering::Release);
    }

    pub(crate) fn end(&self) {
        self.since.store(0, Ordering::Release);
        self.kill.store(false, Ordering::Release);
        *self.function.lock() = None;
    }

    /// A script runs that others should wait for without holding their thread: one on the
    /// scripting thread, or one on a connection thread that has run past [`STALLED`].
    pub(crate) fn holds_shards_for_long(&self) -> bool {
        self.elapsed()
            .is_some_and(|e| !self.inline.load(Ordering::Acquire) || e >= STALLED)
    }

    /// The BUSY error for requests refused while it runs.
    fn busy_error(&self) -> Frame {
        Frame::Error(
            if self.is_function.load(Ordering::Acquire) {
                BUSY_FUNCTION
            } else {
                BUSY_EVAL
            }
            .into(),
        )
    }

    /// The function running now: its name, request and how long it has run (FUNCTION STATS).
    pub(crate) fn running_function(&self) -> Option<(String, Vec<Bytes>, std::time::Duration)> {
        let elapsed = self.elapsed()?;
        let (name, argv) = self.function.lock().clone()?;
        Some((name, argv, elapsed))
    }

    /// A script (not a function) runs now.
    pub(crate) fn running_eval(&self) -> bool {
        self.elapsed().is_some() && !self.is_function.load(Ordering::Acquire)
    }

    pub(crate) fn wrote(&self) {
        self.wrote.store(true, Ordering::Release);
    }

    pub(crate) fn killed(&self) -> bool {
        self.kill.load(Ordering::Acquire)
    }

    /// How long the running script has run; `None` when none runs.
    pub(crate) fn elapsed(&self) -> Option<std::time::Duration> {
        match self.since.load(Ordering::Acquire) {
            0 => None,
            since => Some(std::time::Duration::from_millis(
                self.clock().saturating_sub(since),
            )),
        }
    }

    /// SCRIPT KILL (`eval`) or FUNCTION KILL: stops a script, or a function, that has not
    /// written.
    pub(crate) fn kill(&self, eval: bool) -> Frame {
        if self.elapsed().is_none() {
            return Frame::Error("NOTBUSY No scripts in execution right now.".into());
        }
        if self.wrote.load(Ordering::Acquire) {
            return Frame::Error(
                "UNKILLABLE Sorry the script already executed write commands against the dataset. \
                 You can either wait the script termination or kill the server in a hard way using \
                 the SHUTDOWN NOSAVE command."
                    .into(),
            );
        }
        let function = self.is_function.load(Ordering::Acquire);
        if eval && function {
            return Frame::Error(BUSY_FUNCTION.into());
        }
        if !eval && !function {
            return Frame::Error(BUSY_EVAL.into());
        }
        self.kill.store(true, Ordering::Release);
        Frame::ok()
    }
}

/// The Lua states and the scripting thread, started on first use.
///
/// A script runs on the connection's own thread, with no hand-off, once it is known to be quick
/// (its last run took under [`QUICK`]): the common case of small scripts called again and
/// again. Any other request goes to the scripting thread, `kvs-lua`, and the
/// connection awaits the answer without holding its thread. That keeps a long script from
/// stalling the other connections of a connection thread, so they can be told `BUSY` and send
/// `SCRIPT KILL`. Should a quick script turn slow while it runs on a connection thread, it marks
/// that thread stalled, new connections are placed on the others, and it runs on the thread from
/// then on.
#[derive(Debug, Default)]
pub(crate) struct Scripts {
    jobs: parking_lot::Mutex<Option<mpsc::Sender<Job>>>,
    /// Both Lua states and what is compiled in them, shared by the scripting thread and the
    /// connection threads (one user at a time: a script holds every shard anyway).
    vm: Arc<parking_lot::Mutex<Option<vm::Vm>>>,
    /// Quick scripts may run on connection threads (set when there are at least two, so another
    /// is always there to take SCRIPT KILL).
    inline: AtomicBool,
    /// The SHA1s of the scripts the thread holds, for `SCRIPT EXISTS` without a trip to it.
    known: Arc<parking_lot::RwLock<std::collections::HashSet<String>>>,
    /// The function libraries loaded, for FUNCTION LIST, DUMP and STATS without a trip to it
    /// (they are answered while a function runs).
    libraries: Arc<parking_lot::RwLock<Vec<functions::Library>>>,
}

/// A script whose last run finished within this long may run on a connection's own thread.
pub(crate) const QUICK: std::time::Duration = std::time::Duration::from_millis(1);

/// A script running on a connection thread for this long marks the thread stalled, and from then
/// on other requests wait for it asynchronously, as for any script on the scripting thread.
pub(crate) const STALLED: std::time::Duration = std::time::Duration::from_millis(20);

impl Scripts {
    /// Lets quick scripts run on the connection threads (see [`Scripts`]).
    pub(crate) fn set_inline(&self, on: bool) {
        self.inline.store(on, Ordering::Relaxed);
    }

    /// Answers `request`: at once on this thread if it is a quick script and the Lua states are
    /// free, else on the scripting thread. The answer arrives on the receiver.
    pub(crate) fn submit(
        &self,
        request: Request,
        engine: Arc<Engine>,
        user: Arc<User>,
        caller: Option<Caller>,
    ) -> oneshot::Receiver<Uncommitted<Frame>> {
        let (answer, receiver) = oneshot::channel();
        let mut request = request;
        if self.inline.load(Ordering::Relaxed)
            // Taken only if free: a connection never sleeps waiting for another's script (on
            // two cores, spinning or sleeping for it was measured to cost more than the
            // scripting thread's hand-off it saves).
            && let Some(mut vm) = self.vm.try_lock()
            && let Some(vm) = vm.as_mut()
        {
            let caller = caller.clone();
            match for_caller(caller, || vm.handle_if_quick(request, &engine, &user)) {
                Ok(done) => {
                    let _ = answer.send(done);
                    return receiver;
                }
                Err(back) => request = back,
            }
        }
        let job = Job {
            request,
            engine,
            user,
            caller,
            answer,
        };
        let mut jobs = self.jobs.lock();
        let sender = jobs.get_or_insert_with(|| {
            start(self.vm.clone(), self.known.clone(), self.libraries.clone())
        });
        if let Err(mpsc::SendError(job)) = sender.send(job) {
            // The thread is gone (it could not start): say so rather than hang.
            let _ = job.answer.send(Uncommitted::nothing_written(Frame::err(
                "the scripting engine is not running",
            )));
            *jobs = None;
        }
        receiver
    }

    /// What a request that arrives while a script runs must do: `None` to go ahead (no script
    /// runs, or the request may run beside one), else wait and ask again, or be answered `BUSY`.
    pub(crate) fn busy(running: &Running, allowed: bool) -> Option<Busy> {
        let elapsed = running.elapsed()?;
        // A quick script running on a connection thread is over in microseconds: the request
        // goes ahead, and waits for the shards' locks if it needs them, unless that script
        // turned out not to be quick after all.
        if allowed || !running.holds_shards_for_long() {
            return None;
        }
        Some(if elapsed < running.busy_after() {
            Busy::Wait
        } else {
            Busy::Refuse(running.busy_error())
        })
    }

    /// Loads the function libraries the store holds, waiting (on this thread) until they are.
    pub(crate) fn load_stored(&self, engine: Arc<Engine>, user: Arc<User>) {
        let mut answer = self.submit(Request::Sync, engine, user, None);
        while let Err(oneshot::error::TryRecvError::Empty) = answer.try_recv() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// The function libraries loaded now.
    pub(crate) fn libraries(&self) -> Vec<functions::Library> {
        self.libraries.read().clone()
    }

    /// How many scripts are loaded (`INFO memory`'s `number_of_cached_scripts`).
    pub(crate) fn count(&self) -> usize {
        self.known.read().len()
    }

    /// Whether a script with this SHA1 (any case) is loaded.
    pub(crate) fn exists(&self, sha: &[u8]) -> bool {
        let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
        self.known.read().contains(&sha)
    }
}

fn start(
    vm: Arc<parking_lot::Mutex<Option<vm::Vm>>>,
    known: Arc<parking_lot::RwLock<std::collections::HashSet<String>>>,
    libraries: Arc<parking_lot::RwLock<Vec<functions::Library>>>,
) -> mpsc::Sender<Job> {
    let (sender, receiver) = mpsc::channel::<Job>();
    let spawned = std::thread::Builder::new()
        .name("kvs-lua".into())
        // Converting a deeply nested reply recurses: room for it, whatever the build.
        .stack_size(SCRIPT_STACK)
        .spawn(move || {
            for job in receiver {
                let mut held = vm.lock();
                if held.is_none() {
                    let running = job.engine.script().clone();
                    match vm::Vm::new(known.clone(), running, libraries.clone()) {
                        Ok(fresh) => *held = Some(fresh),
                        Err(e) => tracing::error!("cannot start the Lua interpreter: {e}"),
                    }
                }
                let answer = match held.as_mut() {
                    Some(vm) => for_caller(job.caller, || {
                        vm.handle(job.request, &job.engine, &job.user)
                    }),
                    None => Uncommitted::nothing_written(Frame::err(
                        "the scripting engine is not running",
                    )),
                };
                drop(held);
                let _ = job.answer.send(answer);
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the scripting thread: {e}");
    }
    sender
}

/// The stack of a thread that runs scripts (the scripting thread and the connection threads):
/// converting a deeply nested reply, or JSON, recurses.
pub(crate) const SCRIPT_STACK: usize = 32 << 20;
