//! The Lua state of the scripting thread: the environment scripts see, the compiled scripts,
//! and running one with every shard locked.

use std::cell::Cell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kvs_protocol::resp::Frame;
use kvs_store::{Command, Flag, Millis, Spec, Transaction};
use mlua::chunk::ChunkMode;
use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value};
use sha1::{Digest, Sha1};

use super::convert::{to_frame, to_lua};
use super::functions::{self, Flags, Library};
use super::runner::{self, with_runner};
use super::{BlockItem, FunctionChange, MAX_EVAL_SCRIPTS, Request, RestorePolicy, Source};
use crate::acl::{Denied, User};
use crate::commit::Uncommitted;
use crate::engine::Engine;
use crate::resp::command::{self as table, Found};
use crate::stats::Outcome;

const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";

/// A MULTI block's transaction, for the scripts it holds to run in place: the transaction over
/// every shard, its time, and whether memory was over the limit when it began (looked at before
/// its locks were taken: making room takes them).
type Within<'t, 's> = Option<(&'t Transaction<'s>, Millis, bool)>;

/// `redis.call`'s and `redis.pcall`'s way to the running script's command runner.
fn run_command(lua: &Lua, args: MultiValue) -> mlua::Result<(bool, Value)> {
    runner::call(lua, args).unwrap_or_else(|| {
        failed(
            lua,
            "ERR redis.call/pcall can only be called inside a script invocation",
        )
    })
}

/// The lowercase hex SHA1 of `body`, as scripts are named.
pub(crate) fn sha1hex(body: &[u8]) -> String {
    let digest = Sha1::digest(body);
    let mut out = String::with_capacity(40);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A script or function ready to run.
struct Compiled {
    function: Function,
    flags: Flags,
    /// Came with `EVAL` (may be dropped when too many are held), not `SCRIPT LOAD`.
    by_eval: bool,
    quick: Quick,
}

/// Whether a script's last run was quick (see [`super::QUICK`]): `None` until it has run. (Its
/// first run is often slow for reasons of its own, cold caches among them: a script is judged by
/// what it did last.)
type Quick = Option<bool>;

/// What a run that took `took` says.
fn judged(took: Duration) -> Quick {
    Some(took < super::QUICK)
}

/// A library and the Lua functions it registered, in the order of its `functions`.
struct Loaded {
    library: Library,
    callbacks: Vec<Function>,
    quick: Vec<Quick>,
}

/// One Lua state with the environment scripts (or functions) see.
struct State {
    lua: Lua,
    /// The hidden table the environment reads the running script's state from.
    hidden: Table,
    env: Table,
    run: Function,
    /// [`run_command`] as a Lua function: what `K[CALL]` holds while a script runs.
    command: Function,
    /// Scripts run in it, for pacing the garbage collector.
    calls: Cell<u32>,
}

/// What a failing script is called in its error: `script: <label>, on @user_<kind>:<line>.`
enum Label<'a> {
    Script(&'a str),
    Function(&'a str),
}

impl Label<'_> {
    fn name(&self) -> &str {
        match self {
            Label::Script(s) | Label::Function(s) => s,
        }
    }

    fn chunk(&self) -> &'static str {
        match self {
            Label::Script(_) => "@user_script",
            Label::Function(_) => "@user_function",
        }
    }
}

pub(super) struct Vm {
    eval: State,
    scripts: HashMap<String, Compiled>,
    /// Scripts that came with EVAL, oldest first.
    evaluated: VecDeque<String>,
    known: Arc<parking_lot::RwLock<HashSet<String>>>,
    running: Arc<super::Running>,
    /// Functions: a Lua state of their own, as in Redis.
    functions: State,
    libraries: Vec<Loaded>,
    /// The libraries as others read them (FUNCTION LIST, DUMP, STATS), kept equal to `libraries`.
    registry: Arc<parking_lot::RwLock<Vec<Library>>>,
    /// When loading a library's code must stop (FUNCTION LOAD's time limit).
    deadline: Arc<parking_lot::Mutex<Option<Instant>>>,
    /// The libraries the store holds have been loaded (done before the first request).
    synced: bool,
}

const KILLED: &str = "ERR Script killed by user with SCRIPT KILL...";
/// The hidden table's slot for the running script's `call` (see env.lua).
const CALL: i64 = 1;
/// Its slot for the protocol `redis.setresp` chose.
const RESP: i64 = 2;
/// Its slot for the table that marks a call as `redis.acl_check_cmd`'s.
const ACL_MARKER: i64 = 3;
const LOAD_TIMEOUT: &str = "ERR FUNCTION LOAD timeout";

/// The most memory one Lua state may hold: a script that allocates without end gets Lua's
/// "not enough memory" error instead of taking the server's memory. (Its allocations also count
/// toward `maxmemory`, which reads the allocator's figures.)
pub(crate) const LUA_MEMORY_LIMIT: usize = 1 << 30;

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm")
            .field("scripts", &self.scripts.len())
            .field("libraries", &self.libraries.len())
            .finish_non_exhaustive()
    }
}

impl State {
    fn new(
        running: &Arc<super::Running>,
        for_functions: bool,
        deadline: &Arc<parking_lot::Mutex<Option<Instant>>>,
    ) -> mlua::Result<Self> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::default(),
        )?;
        lua.set_memory_limit(LUA_MEMORY_LIMIT)?;
        super::libs::install(&lua)?;
        let hidden = lua.create_table()?;
        hidden.raw_set("version", crate::resp::REDIS_VERSION)?;
        hidden.raw_set("version_num", version_num(crate::resp::REDIS_VERSION))?;
        hidden.raw_set("functions", for_functions)?;
        hidden.raw_set("bad_name", functions::BAD_NAME)?;
        let flags = lua.create_table()?;
        for name in functions::FLAG_NAMES {
            flags.raw_set(name, true)?;
        }
        hidden.raw_set("flags", flags)?;
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
                        let ours = matches!(
                            frame.source().source.as_deref(),
                            Some("@user_script" | "@user_function")
                        );
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
        // is no tail call (its line is known when it fails). Both reach the running script's
        // `call` (set for the length of one script); redis.call raises a failure as its error
        // table, kept in `raised` for the error handler and pcall.
        let dispatch = run_command;
        let raising = dispatch;
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
        // SCRIPT KILL (and FUNCTION LOAD's time limit) is seen every 10,000 instructions; once
        // asked, the error is raised again at each check, so a script's own pcall cannot hold it
        // back.
        let (stop, raised, deadline) = (running.clone(), hidden.clone(), deadline.clone());
        lua.set_hook(
            mlua::HookTriggers::new().every_nth_instruction(10_000),
            move |lua, _| {
                if stop.elapsed().is_some_and(|e| e >= super::STALLED) {
                    // Running on a connection thread: new connections go to the others.
                    crate::connection_threads::stalled(true);
                }
                let text = if stop.killed() {
                    KILLED
                } else if deadline.lock().is_some_and(|d| Instant::now() >= d) {
                    LOAD_TIMEOUT
                } else {
                    return Ok(mlua::VmState::Continue);
                };
                let t = lua.create_table()?;
                t.raw_set("err", text)?;
                raised.raw_set("raised", t)?;
                raised.raw_set("killed", true)?;
                Err(mlua::Error::RuntimeError(text.into()))
            },
        )?;
        let env: Table = hidden.raw_get("env")?;
        let run: Function = hidden.raw_get("run")?;
        let command = lua.create_function(run_command)?;
        // What building the environment left behind is not the state's size.
        lua.gc_collect()?;
        lua.gc_collect()?;
        Ok(Self {
            lua,
            hidden,
            env,
            run,
            command,
            calls: Cell::new(0),
        })
    }

    /// Compiles `code` as a chunk named `chunk` in the scripts' environment; Lua's message on
    /// failure.
    fn compile(&self, code: &[u8], chunk: &str) -> Result<Function, String> {
        self.lua
            .load(code)
            .set_name(chunk)
            .set_mode(ChunkMode::Text)
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| lua_message(&e).replace(['\r', '\n'], " "))
    }
}

impl Vm {
    pub(super) fn new(
        known: Arc<parking_lot::RwLock<HashSet<String>>>,
        running: Arc<super::Running>,
        registry: Arc<parking_lot::RwLock<Vec<Library>>>,
    ) -> mlua::Result<Self> {
        let deadline = Arc::new(parking_lot::Mutex::new(None));
        known.write().clear();
        registry.write().clear();
        Ok(Self {
            eval: State::new(&running, false, &deadline)?,
            functions: State::new(&running, true, &deadline)?,
            scripts: HashMap::new(),
            evaluated: VecDeque::new(),
            known,
            running,
            libraries: Vec::new(),
            registry,
            deadline,
            synced: false,
        })
    }

    pub(super) fn handle(
        &mut self,
        request: Request,
        engine: &Engine,
        user: &User,
    ) -> Uncommitted<Frame> {
        if !self.synced {
            self.synced = true;
            self.sync(engine);
        }
        runner::take_counted();
        let answer = self.answer(request, engine, user);
        // The answer's error counts in INFO errorstats, unless a command the script called
        // gave it and it was counted then.
        if let Frame::Error(text) = answer.peek()
            && !runner::take_counted()
        {
            engine.stats().error(text);
        }
        self.running.set_lua_bytes(
            self.eval.lua.used_memory(),
            self.functions.lua.used_memory(),
        );
        answer
    }

    fn answer(&mut self, request: Request, engine: &Engine, user: &User) -> Uncommitted<Frame> {
        self.answer_within(request, engine, user, None)
    }

    /// Answers `request`, in a transaction of its own or in place in a MULTI block's.
    fn answer_within(
        &mut self,
        request: Request,
        engine: &Engine,
        user: &User,
        within: Within<'_, '_>,
    ) -> Uncommitted<Frame> {
        let done = Uncommitted::nothing_written;
        match request {
            Request::Load(body) => done(match self.compile(&body, false) {
                Ok(sha) => Frame::bulk(sha),
                Err(e) => Frame::Error(e),
            }),
            Request::Flush => {
                match State::new(&self.running, false, &self.deadline) {
                    Ok(fresh) => self.eval = fresh,
                    Err(e) => return done(Frame::err(format!("cannot restart Lua: {e}"))),
                }
                self.scripts.clear();
                self.evaluated.clear();
                self.known.write().clear();
                done(Frame::ok())
            }
            Request::Eval {
                source,
                keys,
                args,
                read_only,
            } => self.eval(source, keys, args, read_only, engine, user, within),
            Request::Fcall {
                name,
                keys,
                args,
                read_only,
                argv,
            } => self.fcall(&name, keys, args, read_only, argv, engine, user, within),
            Request::Function(change) => {
                self.change_functions(change, engine, within.map(|(txn, ..)| txn))
            }
            Request::Sync => done(Frame::ok()),
            // A block never holds a block (MULTI inside MULTI is refused).
            Request::Block { items, watched } if within.is_none() => {
                self.block(items, &watched, engine, user)
            }
            Request::Block { .. } => done(Frame::err("MULTI calls can not be nested")),
        }
    }

    /// Runs a MULTI block that holds a script: every command in its place, in one transaction
    /// over every shard, so what the script reads and writes falls between the commands before
    /// and after it, as in Redis, and the whole block is one record. Nothing runs if a watched
    /// key changed (EXEC's nil).
    fn block(
        &mut self,
        items: Vec<BlockItem>,
        watched: &[kvs_store::Watched],
        engine: &Engine,
        user: &User,
    ) -> Uncommitted<Frame> {
        let oom = engine.admit().is_err();
        let writes = items
            .iter()
            .any(|i| matches!(i, BlockItem::Data(c) if c.writes()));
        // As for any block: with the log down, a block that writes is refused whole.
        let refusal = engine.write_refusal().filter(|_| writes);
        engine.apply_exclusive(|txn, now| {
            if !txn.unchanged(watched, now) {
                return Frame::NullArray;
            }
            let replies = items
                .into_iter()
                .map(|item| match item {
                    BlockItem::Data(_) if refusal.is_some() => Frame::Error(
                        refusal
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default(),
                    ),
                    BlockItem::Data(command) => Frame::from(command.apply(txn, now)),
                    BlockItem::Script(request) => {
                        let answer =
                            self.answer_within(request, engine, user, Some((txn, now, oom)));
                        if let Frame::Error(text) = answer.peek()
                            && !runner::take_counted()
                        {
                            engine.stats().error(text);
                        }
                        // In place, nothing is committed on its own: the block commits it.
                        match answer.ready() {
                            Ok(frame) => frame,
                            Err(pending) => pending.peek().clone(),
                        }
                    }
                    BlockItem::Answered(frame) => frame,
                })
                .collect();
            Frame::Array(replies)
        })
    }

    /// Compiles `body` unless it is held already; its SHA1, or the error to answer.
    fn compile(&mut self, body: &[u8], by_eval: bool) -> Result<String, String> {
        let sha = sha1hex(body);
        if self.scripts.contains_key(&sha) {
            return Ok(sha);
        }
        let (flags, code) = shebang(body)?;
        let function = self
            .eval
            .compile(&code, "@user_script")
            .map_err(|e| format!("ERR Error compiling script (new function): {e}"))?;
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
                quick: None,
            },
        );
        self.known.write().insert(sha.clone());
        Ok(sha)
    }

    #[allow(clippy::too_many_arguments)]
    fn eval(
        &mut self,
        source: Source,
        keys: Vec<Bytes>,
        args: Vec<Bytes>,
        read_only: bool,
        engine: &Engine,
        user: &User,
        within: Within<'_, '_>,
    ) -> Uncommitted<Frame> {
        let sha = match source {
            Source::Body(body) => match self.compile(&body, true) {
                Ok(sha) => sha,
                Err(e) => return Uncommitted::nothing_written(Frame::Error(e)),
            },
            Source::Sha(sha) => String::from_utf8_lossy(&sha).to_ascii_lowercase(),
        };
        let Some(compiled) = self.scripts.get(&sha) else {
            return Uncommitted::nothing_written(Frame::Error(NOSCRIPT.into()));
        };
        let call = Call {
            function: compiled.function.clone(),
            flags: compiled.flags,
            keys,
            args,
            read_only,
            label: Label::Script(&sha),
        };
        let started = Instant::now();
        let answer = run(&self.eval, &self.running, call, None, engine, user, within);
        if let Some(compiled) = self.scripts.get_mut(&sha) {
            compiled.quick = judged(started.elapsed());
        }
        answer
    }

    #[allow(clippy::too_many_arguments)]
    fn fcall(
        &mut self,
        name: &[u8],
        keys: Vec<Bytes>,
        args: Vec<Bytes>,
        read_only: bool,
        argv: Vec<Bytes>,
        engine: &Engine,
        user: &User,
        within: Within<'_, '_>,
    ) -> Uncommitted<Frame> {
        let Some((at, i)) = self.function(name) else {
            return Uncommitted::nothing_written(Frame::err("Function not found"));
        };
        let (info, callback) = (
            &self.libraries[at].library.functions[i],
            &self.libraries[at].callbacks[i],
        );
        let fname = info.name.clone();
        let call = Call {
            function: callback.clone(),
            flags: info.flags,
            keys,
            args,
            read_only,
            label: Label::Function(&fname),
        };
        let shown = Some((fname.clone(), argv));
        let started = Instant::now();
        let answer = run(
            &self.functions,
            &self.running,
            call,
            shown,
            engine,
            user,
            within,
        );
        // The library is still there: nothing changes libraries while a function runs.
        if let Some(quick) = self.libraries.get_mut(at).and_then(|l| l.quick.get_mut(i)) {
            *quick = judged(started.elapsed());
        }
        answer
    }

    /// Where the function named `name` (any case) is: its library's index and its own.
    fn function(&self, name: &[u8]) -> Option<(usize, usize)> {
        self.libraries.iter().enumerate().find_map(|(at, loaded)| {
            loaded
                .library
                .functions
                .iter()
                .position(|f| f.name.as_bytes().eq_ignore_ascii_case(name))
                .map(|i| (at, i))
        })
    }

    /// Answers `request` here and now if it runs a script or function known to be quick;
    /// otherwise gives it back, for the scripting thread.
    pub(super) fn handle_if_quick(
        &mut self,
        request: Request,
        engine: &Engine,
        user: &User,
    ) -> Result<Uncommitted<Frame>, Request> {
        let quick = self.synced
            && match &request {
                Request::Eval { source, .. } => {
                    let sha = match source {
                        Source::Body(body) => sha1hex(body),
                        Source::Sha(sha) => String::from_utf8_lossy(sha).to_ascii_lowercase(),
                    };
                    self.scripts
                        .get(&sha)
                        .is_some_and(|c| c.quick == Some(true))
                }
                Request::Fcall { name, .. } => self
                    .function(name)
                    .is_some_and(|(at, i)| self.libraries[at].quick[i] == Some(true)),
                _ => false,
            };
        if !quick {
            return Err(request);
        }
        Ok(self.handle(request, engine, user))
    }

    /// Loads the libraries the store holds (at startup, after recovery), with no time limit.
    fn sync(&mut self, engine: &Engine) {
        let Some(payload) = engine.store().meta(functions::META_NAME) else {
            return;
        };
        let codes = match functions::undump(&payload) {
            Ok(codes) => codes,
            Err(e) => {
                tracing::error!("the stored function libraries cannot be read: {e}");
                return;
            }
        };
        for code in codes {
            match self.create(&code, None) {
                Ok(loaded) => self.libraries.push(loaded),
                Err(e) => tracing::error!("a stored function library does not load: {e}"),
            }
        }
        self.publish();
    }

    /// Runs a library's code and collects what it registers, without adding it; the error
    /// text (without `ERR `) if it fails. `limit`: how long the code may run.
    fn create(&mut self, code: &Bytes, limit: Option<Duration>) -> Result<Loaded, String> {
        let meta = functions::metadata(code)?;
        let chunk = self
            .functions
            .compile(&code[meta.body..], "@user_function")
            .map_err(|e| format!("Error compiling function: {e}"))?;
        let load: Function = self
            .functions
            .hidden
            .raw_get("load")
            .map_err(|e| e.to_string())?;
        *self.deadline.lock() = limit.map(|l| Instant::now() + l);
        let result = load.call::<(bool, Value)>(chunk);
        *self.deadline.lock() = None;
        let registered = match result {
            Ok((true, Value::Table(t))) => t,
            Ok((_, value)) => {
                let text = match &value {
                    Value::Table(t) => t.raw_get::<String>("err").unwrap_or_default(),
                    Value::String(s) => format!("ERR {}", s.to_string_lossy()),
                    _ => "ERR execution failure".into(),
                };
                return Err(format!("Error registering functions: {text}"));
            }
            Err(e) => return Err(format!("Error registering functions: {}", lua_message(&e))),
        };
        let mut library = Library {
            name: meta.name,
            code: code.clone(),
            functions: Vec::new(),
        };
        let mut callbacks = Vec::new();
        for entry in registered.sequence_values::<Table>() {
            let entry = entry.map_err(|e| e.to_string())?;
            let mut flags = Flags::declared();
            if let Ok(names) = entry.raw_get::<Table>("flags") {
                for flag in names.sequence_values::<String>().flatten() {
                    flags.add(&flag);
                }
            }
            library.functions.push(functions::FunctionInfo {
                name: entry.raw_get("name").map_err(|e| e.to_string())?,
                description: entry
                    .raw_get::<Option<mlua::LuaString>>("description")
                    .ok()
                    .flatten()
                    .map(|d| Bytes::copy_from_slice(&d.as_bytes())),
                flags,
            });
            callbacks.push(entry.raw_get("callback").map_err(|e| e.to_string())?);
        }
        if library.functions.is_empty() {
            return Err("No functions registered".into());
        }
        let quick = vec![None; callbacks.len()];
        Ok(Loaded {
            library,
            callbacks,
            quick,
        })
    }

    /// The first function of `new` whose name a library other than `except` already has.
    fn collision(&self, new: &Loaded, except: Option<&str>) -> Option<String> {
        new.library.functions.iter().find_map(|f| {
            self.libraries
                .iter()
                .filter(|l| except.is_none_or(|e| l.library.name != e))
                .flat_map(|l| &l.library.functions)
                .any(|g| g.name.eq_ignore_ascii_case(&f.name))
                .then(|| f.name.clone())
        })
    }

    /// Where the library named `name` is (library names are case-sensitive, function names
    /// are not, as in Redis).
    fn position(&self, name: &str) -> Option<usize> {
        self.libraries.iter().position(|l| l.library.name == name)
    }

    /// FUNCTION LOAD, DELETE, FLUSH and RESTORE: the change made, logged as one record with the
    /// libraries that result; or Redis's error, nothing changed.
    fn change_functions(
        &mut self,
        change: FunctionChange,
        engine: &Engine,
        within: Option<&Transaction<'_>>,
    ) -> Uncommitted<Frame> {
        let refuse = |text: String| Uncommitted::nothing_written(Frame::err(text));
        let reply = match change {
            FunctionChange::Load { code, replace } => {
                let loaded = match self.create(&code, Some(functions::LOAD_TIMEOUT)) {
                    Ok(loaded) => loaded,
                    Err(e) => return refuse(e),
                };
                let name = loaded.library.name.clone();
                let existing = self.position(&name);
                if existing.is_some() && !replace {
                    return refuse(format!("Library '{name}' already exists"));
                }
                if let Some(f) = self.collision(&loaded, Some(&name)) {
                    return refuse(format!("Function {f} already exists"));
                }
                match existing {
                    Some(i) => self.libraries[i] = loaded,
                    None => self.libraries.push(loaded),
                }
                Frame::bulk(name)
            }
            FunctionChange::Delete(name) => {
                let name = String::from_utf8_lossy(&name);
                let Some(i) = self.position(&name) else {
                    return refuse("Library not found".into());
                };
                self.libraries.remove(i);
                Frame::ok()
            }
            FunctionChange::Flush => {
                match State::new(&self.running, true, &self.deadline) {
                    Ok(fresh) => self.functions = fresh,
                    Err(e) => return refuse(format!("cannot restart Lua: {e}")),
                }
                self.libraries.clear();
                Frame::ok()
            }
            FunctionChange::Restore { payload, policy } => {
                if let Err(e) = self.restore(&payload, policy) {
                    return refuse(e);
                }
                Frame::ok()
            }
        };
        self.publish();
        let payload = functions::dump(self.libraries.iter().map(|l| &l.library.code[..]));
        let name = Bytes::from_static(functions::META_NAME);
        match within {
            Some(txn) => {
                txn.set_meta(name, payload);
                Uncommitted::nothing_written(reply)
            }
            None => engine.apply_exclusive(move |txn, _| {
                txn.set_meta(name, payload);
                reply
            }),
        }
    }

    fn restore(&mut self, payload: &[u8], policy: RestorePolicy) -> Result<(), String> {
        let codes = functions::undump(payload)?;
        // The payload's libraries first load among themselves, as into an empty server.
        let mut incoming: Vec<Loaded> = Vec::new();
        for code in &codes {
            let loaded = self.create(code, None)?;
            if incoming
                .iter()
                .any(|l| l.library.name == loaded.library.name)
            {
                return Err(format!("Library '{}' already exists", loaded.library.name));
            }
            if let Some(f) = loaded.library.functions.iter().find(|f| {
                incoming
                    .iter()
                    .flat_map(|l| &l.library.functions)
                    .any(|g| g.name.eq_ignore_ascii_case(&f.name))
            }) {
                return Err(format!("Function {} already exists", f.name));
            }
            incoming.push(loaded);
        }
        if policy == RestorePolicy::Flush {
            self.libraries = incoming;
            return Ok(());
        }
        let replaced: Vec<&str> = incoming.iter().map(|l| l.library.name.as_str()).collect();
        for name in &replaced {
            if self.position(name).is_some() && policy == RestorePolicy::Append {
                return Err(format!("Library {name} already exists"));
            }
        }
        let kept = |l: &Loaded| !replaced.contains(&l.library.name.as_str());
        for new in &incoming {
            for f in &new.library.functions {
                let taken = self
                    .libraries
                    .iter()
                    .filter(|l| kept(l))
                    .flat_map(|l| &l.library.functions)
                    .any(|g| g.name.eq_ignore_ascii_case(&f.name));
                if taken {
                    return Err(format!("Function {} already exists", f.name));
                }
            }
        }
        self.libraries.retain(|l| kept(l));
        self.libraries.extend(incoming);
        Ok(())
    }

    /// Shows the libraries as they now are to FUNCTION LIST, DUMP and STATS.
    fn publish(&self) {
        *self.registry.write() = self.libraries.iter().map(|l| l.library.clone()).collect();
    }
}

/// A script or function to run, and how.
struct Call<'a> {
    function: Function,
    flags: Flags,
    keys: Vec<Bytes>,
    args: Vec<Bytes>,
    /// `EVAL_RO`, `FCALL_RO` and the like.
    read_only: bool,
    label: Label<'a>,
}

/// Runs `call` in `state` with every shard locked; its reply, and its writes as one record.
/// `shown`: the name and request FUNCTION STATS shows while it runs (`None` for a script).
fn run(
    state: &State,
    running: &super::Running,
    call: Call<'_>,
    shown: Option<(String, Vec<Bytes>)>,
    engine: &Engine,
    user: &User,
    within: Within<'_, '_>,
) -> Uncommitted<Frame> {
    let refuse = |text: &str| Uncommitted::nothing_written(Frame::Error(text.to_owned()));
    let Call {
        function,
        flags,
        keys,
        args,
        read_only,
        label,
    } = call;
    if flags.declared && !flags.no_writes() && read_only {
        return refuse("ERR Can not execute a script with write flag using *_ro command.");
    }
    // Memory is looked at once, before the shards are locked (making room takes their locks).
    let oom = match within {
        Some((_, _, oom)) => oom,
        None => engine.admit().is_err(),
    };
    if oom && flags.declared && !flags.no_writes() && !flags.allow_oom() {
        return refuse(
            "OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'",
        );
    }
    let context = Context {
        running,
        engine,
        user,
        read_only: read_only || flags.no_writes(),
        oom: oom && !flags.allow_oom(),
        wrote: Cell::new(false),
    };
    let (lua, hidden, run) = (&state.lua, &state.hidden, &state.run);
    running.begin(shown, crate::connection_threads::on_connection_thread());
    let body = |txn: &Transaction<'_>, now: Millis| {
        // redis.call and pcall with the command's words; redis.acl_check_cmd with the hidden
        // table's private marker, then a table of them.
        let runner = |lua: &Lua, args: MultiValue| {
            if let (Some(Value::Table(marker)), Some(Value::Table(packed))) =
                (args.front(), args.get(1))
                && hidden
                    .raw_get::<Table>(ACL_MARKER)
                    .is_ok_and(|m| m == *marker)
            {
                let words = packed.sequence_values().collect::<mlua::Result<Vec<_>>>()?;
                return context.acl_check(lua, words);
            }
            let resp3 = hidden.raw_get::<i64>(RESP).unwrap_or(2) == 3;
            context.call(lua, args.into_iter().collect(), txn, now, resp3)
        };
        let result = with_runner(&runner, || -> mlua::Result<Frame> {
            hidden.raw_set(CALL, &state.command)?;
            let (keys, args) = runner::sequences(lua, &keys, &args)?;
            let (ok, value): (bool, Value) = run.call((function, keys, args))?;
            let resp3 = hidden.raw_get::<i64>(RESP).unwrap_or(2) == 3;
            let frame = if ok {
                to_frame(&value, resp3)
            } else {
                failure(&value, &label)
            };
            // An error a command gave, raised or returned, was counted when it happened.
            if matches!(frame, Frame::Error(_)) && was_counted(&value) {
                runner::mark_counted();
            }
            Ok(frame)
        });
        let _ = hidden.raw_set(CALL, Value::Nil);
        result.unwrap_or_else(|e| {
            Frame::err(format!(
                "Error running script {}, {}",
                label.name(),
                lua_message(&e)
            ))
        })
    };
    let answer = match within {
        None => engine.apply_exclusive(body),
        // Its writes are the block's, committed with it.
        Some((txn, now, _)) => Uncommitted::nothing_written(body(txn, now)),
    };
    running.end();
    crate::connection_threads::stalled(false);
    // Garbage collection every 50 calls, as Redis does it (a step of 50 KB's worth): what
    // scripts leave behind is freed as they run, not only when Lua's own pace decides.
    let calls = state.calls.get().wrapping_add(1);
    state.calls.set(calls);
    if calls.is_multiple_of(50) {
        let _ = runner::gc_step(lua, 50);
    }
    answer
}

/// The reply to a script that raised an error: its text, and where in the script it was.
fn failure(value: &Value, label: &Label<'_>) -> Frame {
    let name = label.name();
    let t = match value {
        Value::Table(t) => t,
        // Lua calls no error handler for running out of memory: its message comes as it is.
        Value::String(s) => {
            let text = String::from_utf8_lossy(&s.as_bytes()).replace(['\r', '\n'], " ");
            return Frame::err(format!("Error running script {name}, {text}"));
        }
        _ => return Frame::err(format!("Error running script {name}, execution failure")),
    };
    let text = match t.raw_get::<Value>("err") {
        Ok(Value::String(s)) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
        _ => return Frame::err(format!("Error running script {name}, execution failure")),
    };
    match t.raw_get::<Option<i64>>("line") {
        Ok(Some(line)) => Frame::Error(format!(
            "{text} script: {name}, on {}:{line}.",
            label.chunk()
        )),
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

/// The field of an error table that says its error was counted already (INFO errorstats) when
/// the command failed, so a script that ends with it does not count it again: Redis's name, as
/// scripts can see it there too.
const COUNTED: &str = "ignore_error_stats_update";

/// [`failed`], for an error counted already.
fn counted_failure(lua: &Lua, text: &str) -> mlua::Result<(bool, Value)> {
    let t = lua.create_table()?;
    t.raw_set("err", text)?;
    t.raw_set(COUNTED, true)?;
    Ok((false, Value::Table(t)))
}

/// Whether a script's error value is an error table counted already.
fn was_counted(value: &Value) -> bool {
    matches!(value, Value::Table(t) if t.raw_get::<bool>(COUNTED).unwrap_or(false))
}

/// What became of a command a script called.
enum Ran {
    /// Its arguments could not be a request (Lua's types): not counted anywhere, as in Redis.
    Unchecked(&'static str),
    /// Refused before running (unknown, arity, ACL, read-only, memory, ...): an error reply,
    /// and a rejected call of the command when it is one kvs knows.
    Refused(Option<&'static Spec>, String),
    /// It ran: its reply and how long it took.
    Done(&'static Spec, Frame, Duration),
}

impl Context<'_> {
    /// `redis.acl_check_cmd`: whether the script's user may run the command: `(true, bool)`, or
    /// `(false, error table)`.
    fn acl_check(&self, lua: &Lua, args: Vec<Value>) -> mlua::Result<(bool, Value)> {
        let fail = |text: &str| failed(lua, text);
        let argv = match request_of(args) {
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
        let stats = self.engine.stats();
        let slot = |spec: &Spec| stats.slot(spec);
        match self.execute(args, txn, now) {
            Ran::Unchecked(why) => failed(lua, why),
            Ran::Refused(spec, text) => {
                if let Some(slot) = spec.and_then(slot) {
                    stats.command_at(slot, Duration::ZERO, Outcome::Rejected);
                }
                stats.error(&text);
                counted_failure(lua, &text)
            }
            Ran::Done(spec, frame, took) => {
                let outcome = match frame {
                    Frame::Error(_) => Outcome::Failed,
                    _ => Outcome::Ok,
                };
                if let Some(slot) = slot(spec) {
                    stats.command_at(slot, took, outcome);
                }
                match frame {
                    Frame::Error(text) => {
                        stats.error(&text);
                        counted_failure(lua, &text)
                    }
                    frame => Ok((true, to_lua(lua, frame, resp3)?)),
                }
            }
        }
    }

    /// Checks and runs one command a script called.
    fn execute(&self, args: Vec<Value>, txn: &Transaction<'_>, now: Millis) -> Ran {
        let argv = match request_of(args) {
            Ok(argv) => argv,
            Err(why) => return Ran::Unchecked(why),
        };
        let refused = |spec: Option<&'static Spec>, text: &str| Ran::Refused(spec, text.into());
        let name = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
        let Some(found) = table::find(&name) else {
            // Redis's commands that scripts may not run, which kvs does not have either.
            if REFUSED_ELSEWHERE.contains(&name.as_str()) {
                return refused(None, "ERR This Redis command is not allowed from script");
            }
            return refused(None, "ERR Unknown Redis command called from script");
        };
        let spec = found.spec();
        if !spec.arity_allows(argv.len()) {
            return refused(
                Some(spec),
                "ERR Wrong number of args calling Redis command from script",
            );
        }
        if !spec.subcommands.is_empty() && argv.len() > 1 {
            match spec.subcommand(&argv) {
                None => return refused(None, "ERR Unknown Redis command called from script"),
                Some(s) if !s.arity_allows(argv.len()) => {
                    return refused(
                        Some(s),
                        "ERR Wrong number of args calling Redis command from script",
                    );
                }
                Some(_) => {}
            }
        }
        let described = spec.describing(&argv);
        let refused = |text: &str| refused(Some(described), text);
        if described.has(Flag::Noscript) {
            return refused("ERR This Redis command is not allowed from script");
        }
        if let Err(denied) = self.user.check(described, &argv) {
            let (reason, object) = denied.reason_and_object();
            super::log_refusal(reason, object, self.user.name().to_owned());
            return refused(match denied {
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
            return refused("ERR Write commands are not allowed from read-only scripts.");
        }
        let started = Instant::now();
        let frame = match found {
            Found::Data(_) => match Command::from_argv(&sorted_in_scripts(argv, txn, now)) {
                Err(e) => Frame::Error(e.to_string()),
                // Redis refuses it rather than ignore a wait a script cannot make.
                Ok(Command::XRead(read)) if read.block.is_some() => {
                    return refused(
                        "ERR xread command is not allowed with BLOCK option from scripts",
                    );
                }
                Ok(command) => {
                    if command.writes()
                        && let Some(refusal) = self.engine.write_refusal()
                    {
                        return refused(&refusal.to_string());
                    } else if command.denyoom() && self.oom && !self.wrote.get() {
                        return refused("OOM command not allowed when used memory > 'maxmemory'.");
                    }
                    if command.writes() {
                        self.wrote.set(true);
                        self.running.wrote();
                    }
                    Frame::from(command.apply(txn, now))
                }
            },
            Found::Session(_) => session_command(self.engine, &name, &argv),
        };
        Ran::Done(described, frame, started.elapsed())
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
    let mut flags = Flags::declared();
    for word in words {
        let Some(list) = word.strip_prefix("flags=") else {
            return Err(format!("ERR Unknown lua shebang option: {word}"));
        };
        if list.is_empty() {
            continue;
        }
        for flag in list.split(',') {
            // Unlike register_function's, a shebang's flags are matched as written.
            if !functions::FLAG_NAMES.contains(&flag) || !flags.add(flag) {
                return Err(format!("ERR Unexpected flag in script shebang: {flag}"));
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
