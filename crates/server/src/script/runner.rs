//! What `redis.call` reaches: the command runner of the script running on this thread.
//!
//! A script's runner borrows what the run holds (the transaction over every shard, the
//! connection's user, the clock reading), so it lives only as long as one run. mlua's `scope`
//! is the safe way to hand such a closure to Lua, but it builds a Lua function for every run and
//! tears it down after, and each `redis.call` then crossed from Lua to Rust to Lua to Rust.
//! Measured with pipelined EVALSHA of a script doing a GET and an INCR, that was about a fifth
//! of the server's CPU per call (docs/benchmarks.md). Instead, `redis.call` is one Lua function
//! made once per Lua state, which finds the runner here: a thread-local pointer installed for
//! exactly the length of the run.
//!
//! It also makes each run's KEYS and ARGV tables in one call into Lua: mlua protects every string
//! and table it makes with a call of its own, and those were the next largest cost per call.
//!
//! This module is the one place in the server that uses `unsafe` (the workspace lint denies it
//! and this module opts in): erasing the runner's lifetime to keep it in a thread-local, and
//! Lua's C API for the two tables.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::ffi::c_int;
use std::ptr::NonNull;

use bytes::Bytes;
use mlua::{Lua, MultiValue, Table, Value, ffi};

/// Runs a command for the running script: `redis.call` and `redis.pcall` with the command's
/// words, or `redis.acl_check_cmd`'s marker and words. Answers whether it succeeded, and the
/// reply or the error table.
pub(super) type Runner<'a> = dyn Fn(&Lua, MultiValue) -> mlua::Result<(bool, Value)> + 'a;

thread_local! {
    /// The running script's runner, while one runs on this thread.
    static RUNNER: Cell<Option<NonNull<Runner<'static>>>> = const { Cell::new(None) };
}

thread_local! {
    /// The script that just ended on this thread ended with an error counted already.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

/// Notes that the script ending now ends with an error counted already (INFO errorstats).
pub(super) fn mark_counted() {
    COUNTED.with(|c| c.set(true));
}

/// Whether the script that just ended on this thread ended with an error counted already; the
/// note is cleared.
pub(super) fn take_counted() -> bool {
    COUNTED.with(|c| c.replace(false))
}

/// Runs `body` with `runner` as what [`call`] reaches on this thread; what was installed before
/// (nothing, outside tests) is put back when `body` returns or unwinds.
pub(super) fn with_runner<R>(runner: &Runner<'_>, body: impl FnOnce() -> R) -> R {
    struct Restore(Option<NonNull<Runner<'static>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            RUNNER.with(|r| r.set(self.0));
        }
    }
    let pointer = NonNull::from(runner);
    // SAFETY: only the trait object's lifetime bound changes: same pointer, same layout. The
    // erased pointer is read only by `call`, on this thread, and only while `body` runs:
    // `Restore` takes it out again when this function returns or unwinds, before `runner`,
    // borrowed for the whole of this call, can be dropped.
    let erased =
        unsafe { std::mem::transmute::<NonNull<Runner<'_>>, NonNull<Runner<'static>>>(pointer) };
    let _restore = Restore(RUNNER.with(|r| r.replace(Some(erased))));
    body()
}

/// Runs a command with the running script's runner; `None` when no script runs on this thread.
pub(super) fn call(lua: &Lua, args: MultiValue) -> Option<mlua::Result<(bool, Value)>> {
    let runner = RUNNER.with(Cell::get)?;
    // SAFETY: installed by `with_runner` on this thread, and a runner is installed only while
    // that call's `body` runs, which is what called into Lua and so reached here: the runner it
    // borrows is alive, and nothing else on this thread can remove it meanwhile.
    let runner = unsafe { runner.as_ref() };
    Some(runner(lua, args))
}

/// KEYS and ARGV for one run: two tables holding `keys` and `args` as strings.
pub(super) fn sequences(lua: &Lua, keys: &[Bytes], args: &[Bytes]) -> mlua::Result<(Table, Table)> {
    if c_int::try_from(keys.len().max(args.len())).is_err() {
        return Err(mlua::Error::runtime("too many arguments for a script"));
    }
    // SAFETY: `exec_raw` runs the closure inside a protected call with room for 3 more values on
    // the stack; it uses 3 at most (the two tables and one string, which `lua_rawseti_` moves
    // into its table at once). A Lua error raised within (out of memory) leaves the closure by
    // longjmp, as Lua's C API does; its frame holds nothing that needs dropping (two slices and
    // integers). The counts fit a C int (checked above), and the pointers and lengths given to
    // `lua_pushlstring` are those of live byte slices, which Lua copies.
    unsafe {
        lua.exec_raw((), |state| {
            for list in [keys, args] {
                ffi::lua_createtable(state, list.len() as c_int, 0);
                for (i, item) in list.iter().enumerate() {
                    ffi::lua_pushlstring(state, item.as_ptr().cast(), item.len());
                    ffi::lua_rawseti_(state, -2, (i + 1) as c_int);
                }
            }
        })
    }
}

/// One step of Lua's incremental collector sized as `kbytes` of allocation (`LUA_GCSTEP` with
/// that size, which mlua does not offer): how Redis paces collection between scripts.
pub(super) fn gc_step(lua: &Lua, kbytes: c_int) -> mlua::Result<()> {
    // SAFETY: `exec_raw` runs the closure inside a protected call; `lua_gc` takes no stack
    // values and pushes none, and an error it raises (from a finalizer) leaves by longjmp through
    // a frame that holds nothing to drop.
    unsafe {
        lua.exec_raw((), |state| {
            ffi::lua_gc(state, ffi::LUA_GCSTEP, kbytes);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(lua: &Lua) -> Option<String> {
        call(lua, MultiValue::new()).map(|r| match r {
            Ok((_, Value::String(s))) => s.to_string_lossy(),
            other => format!("{other:?}"),
        })
    }

    fn runner_saying(
        text: &'static str,
    ) -> impl Fn(&Lua, MultiValue) -> mlua::Result<(bool, Value)> {
        move |lua: &Lua, _| Ok((true, Value::String(lua.create_string(text)?)))
    }

    /// A runner is reachable exactly while its run lasts, a nested one hides the outer one only
    /// for its own length, and one that ends by panicking is gone too.
    #[test]
    fn a_runner_is_reachable_only_while_its_run_lasts() {
        let lua = Lua::new();
        assert_eq!(answer(&lua), None);
        let outer = runner_saying("outer");
        with_runner(&outer, || {
            assert_eq!(answer(&lua).as_deref(), Some("outer"));
            let inner = runner_saying("inner");
            with_runner(&inner, || {
                assert_eq!(answer(&lua).as_deref(), Some("inner"))
            });
            assert_eq!(answer(&lua).as_deref(), Some("outer"));
        });
        assert_eq!(answer(&lua), None);
        let failing = runner_saying("failing");
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            with_runner(&failing, || panic!("the run fails"))
        }));
        assert!(unwound.is_err());
        assert_eq!(answer(&lua), None, "nothing is left after an unwinding run");
        // Another thread never sees this one's runner.
        with_runner(&outer, || {
            std::thread::scope(|s| {
                s.spawn(|| assert!(call(&Lua::new(), MultiValue::new()).is_none()));
            });
        });
    }

    /// KEYS and ARGV hold the bytes given, in order, binary and empty ones too.
    #[test]
    fn keys_and_args_become_two_sequences() {
        let lua = Lua::new();
        let keys = [Bytes::from_static(b"k\x00\xff"), Bytes::new()];
        let args: Vec<Bytes> = (0..1000).map(|i| Bytes::from(i.to_string())).collect();
        let (k, a) = sequences(&lua, &keys, &args).expect("tables");
        assert_eq!(k.raw_len(), 2);
        let first: mlua::LuaString = k.raw_get(1).expect("first");
        assert_eq!(&first.as_bytes()[..], b"k\x00\xff");
        let second: mlua::LuaString = k.raw_get(2).expect("second");
        assert!(second.as_bytes().is_empty());
        assert_eq!(a.raw_len(), 1000);
        let last: String = a.raw_get(1000).expect("last");
        assert_eq!(last, "999");
        let (k, a) = sequences(&lua, &[], &[]).expect("empty tables");
        assert_eq!((k.raw_len(), a.raw_len()), (0, 0));
        // Past the state's memory limit: Lua's error, not a crash.
        lua.set_memory_limit(lua.used_memory() + 4096)
            .expect("limit");
        let big = [Bytes::from(vec![b'x'; 1 << 20])];
        assert!(sequences(&lua, &big, &[]).is_err());
    }

    /// A step frees garbage, a bit at a time.
    #[test]
    fn a_collector_step_frees_garbage() {
        let lua = Lua::new();
        lua.gc_stop();
        lua.load("for i = 1, 20000 do local t = {i, tostring(i)} end")
            .exec()
            .expect("garbage made");
        let before = lua.used_memory();
        for _ in 0..200 {
            gc_step(&lua, 50).expect("steps");
        }
        assert!(
            lua.used_memory() < before / 2,
            "{} of {before}",
            lua.used_memory()
        );
    }

    /// Through Lua, as scripts reach it: a function made once calls whichever runner is
    /// installed when it is called, with the arguments the script passed.
    #[test]
    fn a_lua_function_made_once_reaches_each_runs_runner() {
        let lua = Lua::new();
        let f = lua
            .create_function(|lua, args: MultiValue| {
                call(lua, args).unwrap_or_else(|| Ok((false, Value::Nil)))
            })
            .expect("function");
        for word in ["first", "second"] {
            let runner = move |lua: &Lua, args: MultiValue| {
                let n = args.len();
                Ok((
                    true,
                    Value::String(lua.create_string(format!("{word} {n}"))?),
                ))
            };
            let got: (bool, String) = with_runner(&runner, || f.call((1, 2, 3))).expect("calls");
            assert_eq!(got, (true, format!("{word} 3")));
        }
        let outside: (bool, Value) = f.call(()).expect("calls");
        assert_eq!(outside, (false, Value::Nil));
    }
}
