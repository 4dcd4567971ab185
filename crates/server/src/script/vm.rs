//! The Lua state of the scripting thread: the environment scripts see, the compiled scripts,
//! and running one with every shard locked.

use std::cell::Cell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use kvs_protocol::resp::Frame;
use kvs_store::{Command, Flag, Millis, Transaction};
use mlua::chunk::ChunkMode;
use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value};
use sha1::{Digest, Sha1};

use super::convert::{to_frame, to_lua};
use super::{MAX_EVAL_SCRIPTS, Request, Source};
use crate::acl::{Denied, User};
use crate::commit::Uncommitted;
use crate::engine::Engine;
use crate::resp::command::{self as table, Found};

const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";

/// The lowercase hex SHA1 of `body`, as scripts are named.
pub(crate) fn sha1hex(body: &[u8]) -> String {
    let digest = Sha1::digest(body);
    let mut out = String::with_capacity(40);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// What a script's `#!lua flags=...` line says (a script without one has `shebang: false`).
#[derive(Clone, Copy, Debug, Default)]
struct Flags {
    shebang: bool,
    no_writes: bool,
    allow_oom: bool,
}

struct Compiled {
    function: Function,
    flags: Flags,
    /// Came with `EVAL` (may be dropped when too many are held), not `SCRIPT LOAD`.
    by_eval: bool,
}

pub(super) struct Vm {
    lua: Lua,
    /// The hidden table the environment reads the running script's state from.
    hidden: Table,
    env: Table,
    run: Function,
    scripts: HashMap<String, Compiled>,
    /// Scripts that came with EVAL, oldest first.
    evaluated: VecDeque<String>,
    known: Arc<parking_lot::RwLock<HashSet<String>>>,
    running: Arc<super::Running>,
}

const KILLED: &str = "ERR Script killed by user with SCRIPT KILL...";

/// The most memory the Lua state may hold: a script that allocates without end gets Lua's
/// "not enough memory" error instead of taking the server's memory. (Its allocations also count
/// toward `maxmemory`, which reads the allocator's figures.)
pub(crate) const LUA_MEMORY_LIMIT: usize = 1 << 30;

impl Vm {
    pub(super) fn new(
        known: Arc<parking_lot::RwLock<HashSet<String>>>,
        running: Arc<super::Running>,
    ) -> mlua::Result<Self> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::default(),
        )?;
        lua.set_memory_limit(LUA_MEMORY_LIMIT)?;
        let hidden = lua.create_table()?;
        hidden.raw_set("version", crate::resp::REDIS_VERSION)?;
        hidden.raw_set("version_num", version_num(crate::resp::REDIS_VERSION))?;
        hidden.raw_set(
            "sha1hex",
            lua.create_function(|lua, text: mlua::LuaString| {
                lua.create_string(sha1hex(&text.as_bytes()))
            })?,
        )?;
        hidden.raw_set(
            "log",
            lua.create_function(|_, (level, text): (i64, String)| {
                match level {
                    0 => tracing::debug!(target: "kvs::script", "{text}"),
                    1 | 2 => tracing::info!(target: "kvs::script", "{text}"),
                    _ => tracing::warn!(target: "kvs::script", "{text}"),
                }
                Ok(())
            })?,
        )?;
        // The line of the script an error is raised on: the innermost frame of the script's own
        // chunk (Lua's debug library itself is not loaded: scripts must not reach it).
        hidden.raw_set(
            "line",
            lua.create_function(|lua, ()| {
                for level in 1..200 {
                    let found = lua.inspect_stack(level, |frame| {
                        let ours = frame.source().source.as_deref() == Some("@user_script");
                        ours.then(|| frame.current_line())
                    });
                    match found {
                        None => break,
                        Some(Some(line)) => return Ok(line),
                        Some(None) => {}
                    }
                }
                Ok(None)
            })?,
        )?;
        // redis.call and redis.pcall: Rust functions, so that a script's `return redis.call(...)`
        // is no tail call (its line is known when it fails) and any number of arguments fits.
        // Both reach the running script's `call` (set for the length of one script) with the
        // arguments in a table; redis.call raises a failure as its error table, kept in `raised`
        // for the error handler and pcall.
        let dispatch = {
            let hidden = hidden.clone();
            move |lua: &Lua, args: MultiValue| -> mlua::Result<(bool, Value)> {
                let n = args.len();
                let packed = lua.create_table_with_capacity(n, 0)?;
                for (i, v) in args.into_iter().enumerate() {
                    packed.raw_set(i + 1, v)?;
                }
                match hidden.raw_get::<Value>("call")? {
                    Value::Function(call) => call.call((packed, n)),
                    _ => failed(
                        lua,
                        "ERR redis.call/pcall can only be called inside a script invocation",
                    ),
                }
            }
        };
        let raising = dispatch.clone();
        let raised = hidden.clone();
        hidden.raw_set(
            "call_raise",
            lua.create_function(move |lua, args: MultiValue| {
                let (ok, reply) = raising(lua, args)?;
                if ok {
                    return Ok(reply);
                }
                let text = match &reply {
                    Value::Table(t) => t.raw_get::<String>("err").unwrap_or_default(),
                    _ => String::new(),
                };
                raised.raw_set("raised", reply)?;
                Err(mlua::Error::RuntimeError(text))
            })?,
        )?;
        hidden.raw_set(
            "call_protected",
            lua.create_function(move |lua, args: MultiValue| Ok(dispatch(lua, args)?.1))?,
        )?;
        lua.load(include_str!("env.lua"))
            .set_name("=kvs")
            .call::<()>(hidden.clone())?;
        // SCRIPT KILL is seen every 10,000 instructions; once asked, the error is raised again
        // at each check, so a script's own pcall cannot hold it back.
        let (stop, raised) = (running.clone(), hidden.clone());
        lua.set_hook(
            mlua::HookTriggers::new().every_nth_instruction(10_000),
            move |lua, _| {
                if !stop.killed() {
                    return Ok(mlua::VmState::Continue);
                }
                let t = lua.create_table()?;
                t.raw_set("err", KILLED)?;
                raised.raw_set("raised", t)?;
                raised.raw_set("killed", true)?;
                Err(mlua::Error::RuntimeError(KILLED.into()))
            },
        )?;
        let env: Table = hidden.raw_get("env")?;
        let run: Function = hidden.raw_get("run")?;
        known.write().clear();
        Ok(Self {
            lua,
            hidden,
            env,
            run,
            scripts: HashMap::new(),
            evaluated: VecDeque::new(),
            known,
            running,
        })
    }

    pub(super) fn handle(
        &mut self,
        request: Request,
        engine: &Engine,
        user: &User,
    ) -> Uncommitted<Frame> {
        let answer = self.answer(request, engine, user);
        self.running.set_lua_bytes(self.lua.used_memory());
        answer
    }

    fn answer(&mut self, request: Request, engine: &Engine, user: &User) -> Uncommitted<Frame> {
        let done = Uncommitted::nothing_written;
        match request {
            Request::Load(body) => done(match self.compile(&body, false) {
                Ok(sha) => Frame::bulk(sha),
                Err(e) => Frame::Error(e),
            }),
            Request::Flush => {
                match Vm::new(self.known.clone(), self.running.clone()) {
                    Ok(fresh) => *self = fresh,
                    Err(e) => return done(Frame::err(format!("cannot restart Lua: {e}"))),
                }
                done(Frame::ok())
            }
            Request::Eval {
                source,
                keys,
                args,
                read_only,
            } => self.eval(source, keys, args, read_only, engine, user),
        }
    }

    /// Compiles `body` unless it is held already; its SHA1, or the error to answer.
    fn compile(&mut self, body: &[u8], by_eval: bool) -> Result<String, String> {
        let sha = sha1hex(body);
        if self.scripts.contains_key(&sha) {
            return Ok(sha);
        }
        let (flags, code) = shebang(body)?;
        let function = self
            .lua
            .load(code)
            .set_name("@user_script")
            .set_mode(ChunkMode::Text)
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| {
                format!(
                    "ERR Error compiling script (new function): {}",
                    lua_message(&e).replace(['\r', '\n'], " ")
                )
            })?;
        if by_eval {
            self.evaluated.push_back(sha.clone());
            while self.evaluated.len() > MAX_EVAL_SCRIPTS {
                if let Some(old) = self.evaluated.pop_front()
                    && self.scripts.get(&old).is_some_and(|c| c.by_eval)
                {
                    self.scripts.remove(&old);
                    self.known.write().remove(&old);
                }
            }
        }
        self.scripts.insert(
            sha.clone(),
            Compiled {
                function,
                flags,
                by_eval,
            },
        );
        self.known.write().insert(sha.clone());
        Ok(sha)
    }

    fn eval(
        &mut self,
        source: Source,
        keys: Vec<Bytes>,
        args: Vec<Bytes>,
        read_only: bool,
        engine: &Engine,
        user: &User,
    ) -> Uncommitted<Frame> {
        let refuse = |text: &str| Uncommitted::nothing_written(Frame::Error(text.to_owned()));
        let sha = match source {
            Source::Body(body) => match self.compile(&body, true) {
                Ok(sha) => sha,
                Err(e) => return Uncommitted::nothing_written(Frame::Error(e)),
            },
            Source::Sha(sha) => String::from_utf8_lossy(&sha).to_ascii_lowercase(),
        };
        let Some(compiled) = self.scripts.get(&sha) else {
            return refuse(NOSCRIPT);
        };
        let flags = compiled.flags;
        let function = compiled.function.clone();
        if flags.shebang && !flags.no_writes && read_only {
            return refuse("ERR Can not execute a script with write flag using *_ro command.");
        }
        // Memory is looked at once, before the shards are locked (making room takes their locks).
        let oom = engine.admit().is_err();
        if oom && flags.shebang && !flags.no_writes && !flags.allow_oom {
            return refuse(
                "OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'",
            );
        }
        let context = Context {
            running: &self.running,
            engine,
            user,
            read_only: read_only || flags.no_writes,
            oom: oom && !flags.allow_oom,
            wrote: Cell::new(false),
        };
        let lua = &self.lua;
        let hidden = &self.hidden;
        let run = &self.run;
        self.running.begin();
        let answer = engine.apply_exclusive(|txn, now| {
            let result = lua.scope(|scope| {
                let call = scope.create_function(|lua, (packed, n): (Table, usize)| {
                    let args = (1..=n)
                        .map(|i| packed.raw_get::<Value>(i))
                        .collect::<mlua::Result<Vec<Value>>>()?;
                    let resp3 = hidden.raw_get::<i64>("resp").unwrap_or(2) == 3;
                    context.call(lua, args, txn, now, resp3)
                })?;
                hidden.raw_set("call", call)?;
                let acl =
                    scope.create_function(|lua, args: MultiValue| context.acl_check(lua, args))?;
                hidden.raw_set("acl", acl)?;
                let keys = lua.create_sequence_from(
                    keys.iter()
                        .map(|k| lua.create_string(k))
                        .collect::<mlua::Result<Vec<_>>>()?,
                )?;
                let args = lua.create_sequence_from(
                    args.iter()
                        .map(|a| lua.create_string(a))
                        .collect::<mlua::Result<Vec<_>>>()?,
                )?;
                let (ok, value): (bool, Value) = run.call((function, keys, args))?;
                hidden.raw_set("call", Value::Nil)?;
                hidden.raw_set("acl", Value::Nil)?;
                let resp3 = hidden.raw_get::<i64>("resp").unwrap_or(2) == 3;
                Ok(if ok {
                    to_frame(&value, resp3)
                } else {
                    failure(&value, &sha)
                })
            });
            let _ = hidden.raw_set("call", Value::Nil);
            let _ = hidden.raw_set("acl", Value::Nil);
            result.unwrap_or_else(|e| {
                Frame::err(format!("Error running script {sha}, {}", lua_message(&e)))
            })
        });
        self.running.end();
        answer
    }
}

/// The reply to a script that raised an error: its text, and where in the script it was.
fn failure(value: &Value, sha: &str) -> Frame {
    let t = match value {
        Value::Table(t) => t,
        // Lua calls no error handler for running out of memory: its message comes as it is.
        Value::String(s) => {
            let text = String::from_utf8_lossy(&s.as_bytes()).replace(['\r', '\n'], " ");
            return Frame::err(format!("Error running script {sha}, {text}"));
        }
        _ => return Frame::err(format!("Error running script {sha}, execution failure")),
    };
    let text = match t.raw_get::<Value>("err") {
        Ok(Value::String(s)) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
        _ => return Frame::err(format!("Error running script {sha}, execution failure")),
    };
    match t.raw_get::<Option<i64>>("line") {
        Ok(Some(line)) => Frame::Error(format!("{text} script: {sha}, on @user_script:{line}.")),
        _ => Frame::Error(text),
    }
}

/// What one running script may do, for the commands it calls.
struct Context<'a> {
    running: &'a super::Running,
    engine: &'a Engine,
    user: &'a User,
    read_only: bool,
    /// Memory was over the limit when the script began: commands that need memory are refused
    /// until the script has written (Redis's rule: a script is never left half done).
    oom: bool,
    wrote: Cell<bool>,
}

/// A script's arguments as a request: strings as they are, numbers as Redis writes them; or
/// Redis's error for none, or for one of another type.
fn request_of(args: Vec<Value>) -> Result<Vec<Bytes>, &'static str> {
    if args.is_empty() {
        return Err("ERR Please specify at least one argument for this redis lib call");
    }
    args.into_iter()
        .map(|v| match v {
            Value::String(s) => Ok(Bytes::copy_from_slice(&s.as_bytes())),
            Value::Integer(n) => Ok(Bytes::from(n.to_string())),
            Value::Number(n) => Ok(Bytes::from(kvs_store::format_double(n))),
            _ => Err("ERR Lua redis lib command arguments must be strings or integers"),
        })
        .collect()
}

/// A failed call as the Lua side takes it: `(false, {err = text})`.
fn failed(lua: &Lua, text: &str) -> mlua::Result<(bool, Value)> {
    let t = lua.create_table()?;
    t.raw_set("err", text)?;
    Ok((false, Value::Table(t)))
}

impl Context<'_> {
    /// `redis.acl_check_cmd`: whether the script's user may run the command: `(true, bool)`, or
    /// `(false, error table)`.
    fn acl_check(&self, lua: &Lua, args: MultiValue) -> mlua::Result<(bool, Value)> {
        let fail = |text: &str| failed(lua, text);
        let argv = match request_of(args.into_iter().collect()) {
            Ok(argv) => argv,
            Err(why) => return fail(why),
        };
        let name = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
        let Some(found) = table::find(&name) else {
            return fail("ERR Invalid command passed to redis.acl_check_cmd()");
        };
        let allowed = self
            .user
            .check(found.spec().describing(&argv), &argv)
            .is_ok();
        Ok((true, Value::Boolean(allowed)))
    }

    /// `redis.call` / `redis.pcall`: `(true, reply)` or `(false, error table)`.
    fn call(
        &self,
        lua: &Lua,
        args: Vec<Value>,
        txn: &Transaction<'_>,
        now: Millis,
        resp3: bool,
    ) -> mlua::Result<(bool, Value)> {
        let fail = |text: &str| failed(lua, text);
        let argv = match request_of(args) {
            Ok(argv) => argv,
            Err(why) => return fail(why),
        };
        let name = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
        let Some(found) = table::find(&name) else {
            // Redis's commands that scripts may not run, which kvs does not have either.
            if REFUSED_ELSEWHERE.contains(&name.as_str()) {
                return fail("ERR This Redis command is not allowed from script");
            }
            return fail("ERR Unknown Redis command called from script");
        };
        let spec = found.spec();
        if !spec.arity_allows(argv.len()) {
            return fail("ERR Wrong number of args calling Redis command from script");
        }
        if !spec.subcommands.is_empty() && argv.len() > 1 {
            match spec.subcommand(&argv) {
                None => return fail("ERR Unknown Redis command called from script"),
                Some(s) if !s.arity_allows(argv.len()) => {
                    return fail("ERR Wrong number of args calling Redis command from script");
                }
                Some(_) => {}
            }
        }
        let described = spec.describing(&argv);
        if described.has(Flag::Noscript) {
            return fail("ERR This Redis command is not allowed from script");
        }
        if let Err(denied) = self.user.check(described, &argv) {
            return fail(match denied {
                Denied::Command(_) => {
                    "ERR The user executing the script can't run this command or subcommand"
                }
                Denied::Key(_) => {
                    "ERR The user executing the script can't access at least one of the keys mentioned in the command arguments"
                }
                Denied::Channel(_) => {
                    "ERR The user executing the script can't publish to the channel mentioned in the command"
                }
            });
        }
        // PUBLISH, SPUBLISH and PFCOUNT may replicate: Redis keeps them from read-only scripts.
        let may_replicate = described.has(Flag::MayReplicate)
            || matches!(name.as_str(), "publish" | "spublish" | "pfcount");
        if self.read_only && (described.has(Flag::Write) || may_replicate) {
            return fail("ERR Write commands are not allowed from read-only scripts.");
        }
        let frame = match found {
            Found::Data(_) => match Command::from_argv(&sorted_in_scripts(argv, txn, now)) {
                Err(e) => Frame::Error(e.to_string()),
                Ok(command) => {
                    if command.writes()
                        && let Some(refusal) = self.engine.write_refusal()
                    {
                        Frame::Error(refusal.to_string())
                    } else if command.denyoom() && self.oom && !self.wrote.get() {
                        Frame::Error(
                            "OOM command not allowed when used memory > 'maxmemory'.".into(),
                        )
                    } else {
                        if command.writes() {
                            self.wrote.set(true);
                            self.running.wrote();
                        }
                        Frame::from(command.apply(txn, now))
                    }
                }
            },
            Found::Session(_) => session_command(self.engine, &name, &argv),
        };
        match frame {
            Frame::Error(text) => fail(&text),
            frame => Ok((true, to_lua(lua, frame, resp3)?)),
        }
    }
}

/// Commands of Redis that it refuses in scripts and kvs does not have.
const REFUSED_ELSEWHERE: &[&str] = &[
    "cluster",
    "replicaof",
    "slaveof",
    "sync",
    "psync",
    "failover",
    "wait",
    "bgrewriteaof",
];

/// `SORT key BY <pattern without *>` leaves a set in its table's order, which differs between
/// servers; a script's answers must not, so there Redis sorts such a set's members as strings
/// (ALPHA) and ignores the pattern. The request, so changed when it applies.
fn sorted_in_scripts(mut argv: Vec<Bytes>, txn: &Transaction<'_>, now: Millis) -> Vec<Bytes> {
    let name = argv[0].to_ascii_lowercase();
    if (name != b"sort" && name != b"sort_ro") || argv.len() < 4 {
        return argv;
    }
    let mut by = None;
    let mut i = 2;
    while i < argv.len() {
        match argv[i].to_ascii_lowercase().as_slice() {
            b"by" if i + 1 < argv.len() => {
                by = Some(i);
                i += 2;
            }
            b"limit" => i += 3,
            b"get" | b"store" => i += 2,
            _ => i += 1,
        }
    }
    let Some(at) = by else { return argv };
    if argv[at + 1].contains(&b'*') {
        return argv;
    }
    let kind = Command::TypeOf(kvs_store::TypeOf {
        key: argv[1].clone(),
    })
    .apply(txn, now);
    if !matches!(kind, kvs_store::Reply::Status(t) if t == "set") {
        return argv;
    }
    argv.drain(at..at + 2);
    if !argv
        .iter()
        .skip(2)
        .any(|a| a.eq_ignore_ascii_case(b"alpha"))
    {
        argv.push(Bytes::from_static(b"ALPHA"));
    }
    argv
}

/// The connection commands a script may call: those that need no connection and touch no key.
fn session_command(engine: &Engine, name: &str, argv: &[Bytes]) -> Frame {
    match name {
        "publish" | "spublish" => {
            let (Some(channel), Some(message)) = (argv.get(1), argv.get(2)) else {
                return Frame::err("wrong number of arguments");
            };
            let mut wakes = crate::pubsub::Wakes::default();
            let pubsub = engine.pubsub();
            let n = if name == "publish" {
                pubsub.publish(channel, message, &mut wakes)
            } else {
                pubsub.publish_shard(channel, message, &mut wakes)
            };
            wakes.wake_all();
            Frame::Integer(n as i64)
        }
        "ping" => match argv.get(1) {
            Some(message) => Frame::Bulk(message.clone()),
            None => Frame::Simple("PONG".into()),
        },
        "echo" => argv.get(1).cloned().map_or(Frame::Null, Frame::Bulk),
        "time" => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            Frame::Array(vec![
                Frame::bulk(now.as_secs().to_string()),
                Frame::bulk(now.subsec_micros().to_string()),
            ])
        }
        "select" if argv.get(1).is_some_and(|db| &db[..] == b"0") => Frame::ok(),
        "select" => Frame::err("DB index is out of range"),
        _ => Frame::err("This Redis command is not allowed from script"),
    }
}

/// Reads a `#!lua` first line: the flags, and the code to compile (the line left empty, so line
/// numbers stay as written).
fn shebang(body: &[u8]) -> Result<(Flags, Vec<u8>), String> {
    if !body.starts_with(b"#!") {
        return Ok((Flags::default(), body.to_vec()));
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err("ERR Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&body[..end]);
    let mut words = line.split_whitespace();
    let Some(engine) = words.next() else {
        return Err("ERR Invalid engine in script shebang".into());
    };
    if engine != "#!lua" {
        return Err(format!("ERR Unexpected engine in script shebang: {engine}"));
    }
    let mut flags = Flags {
        shebang: true,
        ..Flags::default()
    };
    for word in words {
        let Some(list) = word.strip_prefix("flags=") else {
            return Err(format!("ERR Unknown lua shebang option: {word}"));
        };
        if list.is_empty() {
            continue;
        }
        for flag in list.split(',') {
            match flag {
                "no-writes" => flags.no_writes = true,
                "allow-oom" => flags.allow_oom = true,
                "allow-stale" | "no-cluster" | "allow-cross-slot-keys" => {}
                other => return Err(format!("ERR Unexpected flag in script shebang: {other}")),
            }
        }
    }
    let mut code = body[end..].to_vec();
    code.shrink_to_fit();
    Ok((flags, code))
}

/// Lua's own message for an error, without mlua's additions.
fn lua_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(message) => message.clone(),
        mlua::Error::CallbackError { cause, .. } => lua_message(cause),
        other => other.to_string(),
    }
}

/// `7.0.15` as Redis's `REDIS_VERSION_NUM`: `0x00070f`.
fn version_num(version: &str) -> i64 {
    version
        .split('.')
        .take(3)
        .fold(0, |n, part| (n << 8) | part.parse::<i64>().unwrap_or(0))
}
