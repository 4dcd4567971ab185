//! The libraries Redis 7.0 gives its Lua scripts beyond Lua's own: `cjson`, `cmsgpack`, `bit`
//! and `struct`, and the `math.random` / `math.randomseed` pair that gives the same sequence on
//! every machine. Scripts written for Redis rely on their exact output (a JSON text, a msgpack
//! blob, an error text caught with `pcall`), so each follows what Redis answers byte for byte,
//! including its limits and quirks.
//!
//! Every function here is a Rust function behind a small Lua wrapper: the Rust side answers
//! `true, results...` or `false, message`, and the wrapper raises the message as a plain Lua
//! string, so a script's `pcall` gets the text it would get from Redis (an error raised from
//! Rust would reach it as a userdata instead).
//!
//! Nothing here trusts its input: lengths read from msgpack or `struct` data are checked against
//! the bytes present before anything is read or allocated, nesting is bounded as Lua's own stack
//! bounds it in Redis, and no input makes these functions panic.

use std::sync::{Arc, Mutex, PoisonError};

use mlua::{Function, LightUserData, Lua, LuaString, MaybeSend, MultiValue, Table, Value};

/// Installs `cjson`, `cmsgpack`, `bit` and `struct` as globals and replaces `math.random` and
/// `math.randomseed` (the `math` library must be loaded). Call it before the globals are made
/// read-only for scripts.
pub(super) fn install(lua: &Lua) -> mlua::Result<()> {
    let wrap: Function = lua.load(WRAPPER).set_name("=kvs-libs").eval()?;
    let globals = lua.globals();
    globals.raw_set("cjson", cjson::module(lua, &wrap)?)?;
    globals.raw_set("cmsgpack", msgpack::module(lua, &wrap)?)?;
    globals.raw_set("bit", bit::module(lua, &wrap)?)?;
    globals.raw_set("struct", structlib::module(lua, &wrap)?)?;
    random::install(lua, &wrap)
}

/// Turns `impl` (a Rust function answering `ok, ...`) into the function scripts call.
const WRAPPER: &str = r#"
local error = error
local function finish(ok, ...)
  if ok then return ... end
  error((...), 0)
end
return function(impl)
  return function(...) return finish(impl(...)) end
end
"#;

// ---------------------------------------------------------------------------------------------
// Shared plumbing: failures, argument checks as Lua's auxiliary library words them.
// ---------------------------------------------------------------------------------------------

/// Why a library function failed.
enum Fail {
    /// A message raised as `luaL_error` raises it: after the position of the calling line.
    Msg(String),
    /// A message raised as it is (errors of Lua's own, such as a nil table index).
    Raw(String),
    /// An error of the Lua state itself (out of memory and the like), passed on.
    Lua(mlua::Error),
}

impl From<mlua::Error> for Fail {
    fn from(e: mlua::Error) -> Self {
        Fail::Lua(e)
    }
}

type Res<T> = Result<T, Fail>;

fn fail<T>(msg: impl Into<String>) -> Res<T> {
    Err(Fail::Msg(msg.into()))
}

/// Lua's stack limit for one C function (`LUAI_MAXCSTACK`): Redis's libraries check their
/// stack use against it, which is what bounds their nesting and their number of results.
const MAX_STACK: i64 = 8000;

/// What this module lets one call return or nest, below Lua's and mlua's own limits (Redis goes
/// a little further, to `MAX_STACK`): more values than this at once, or deeper nesting, is
/// refused with the error Redis gives at its limit. Each level of nesting being built holds a
/// handle in mlua's reference stack, which shares Lua's stack bound with the rest of kvs.
const MAX_RESULTS: i64 = 4000;
const MAX_NESTING: i64 = 2000;

/// Output larger than this is refused as Lua refuses an allocation over the scripts' memory.
const MAX_OUTPUT: usize = 1 << 30;

const NO_MEMORY: &str = "not enough memory";

/// Registers `f` in `t` under `name`, behind the wrapper that raises its failures.
fn add<F>(lua: &Lua, wrap: &Function, t: &Table, name: &str, f: F) -> mlua::Result<()>
where
    F: Fn(&Lua, MultiValue) -> Res<MultiValue> + MaybeSend + 'static,
{
    let raw = lua.create_function(move |lua, args: MultiValue| match f(lua, args) {
        Ok(mut out) => {
            out.push_front(Value::Boolean(true));
            Ok(out)
        }
        Err(Fail::Msg(m)) => failed(lua, format!("{}{m}", caller_position(lua))),
        Err(Fail::Raw(m)) => failed(lua, m),
        Err(Fail::Lua(e)) => Err(e),
    })?;
    t.raw_set(name, wrap.call::<Function>(raw)?)
}

fn failed(lua: &Lua, message: String) -> mlua::Result<MultiValue> {
    let mut out = MultiValue::new();
    out.push_back(Value::Boolean(false));
    out.push_back(Value::String(lua.create_string(message)?));
    Ok(out)
}

/// `user_script:3: `: where the script called the library function (level 0 is the Rust
/// function, 1 the wrapper, 2 its caller). Empty when that is not Lua code, or was replaced by a
/// tail call to the wrapper.
fn caller_position(lua: &Lua) -> String {
    lua.inspect_stack(2, |d| {
        let line = d.current_line()?;
        let source = d.source();
        Some(format!(
            "{}:{line}: ",
            source.short_src.as_deref().unwrap_or("?")
        ))
    })
    .flatten()
    .unwrap_or_default()
}

fn one(v: Value) -> MultiValue {
    let mut out = MultiValue::new();
    out.push_back(v);
    out
}

fn arg(args: &MultiValue, i: usize) -> Option<&Value> {
    args.get(i.wrapping_sub(1))
}

/// Lua's name for a value's type, as error messages give it.
fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None => "no value",
        Some(Value::Nil) => "nil",
        Some(Value::Boolean(_)) => "boolean",
        Some(Value::Integer(_) | Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Table(_)) => "table",
        Some(Value::Function(_)) => "function",
        Some(Value::Thread(_)) => "thread",
        Some(_) => "userdata",
    }
}

/// `bad argument #n to 'name' (msg)`, the function named as its caller named it.
fn bad_arg(lua: &Lua, narg: i64, msg: &str) -> Fail {
    // Level 0 is the Rust function, level 1 the wrapper the script called.
    let (name, what) = lua
        .inspect_stack(1, |d| {
            let n = d.names();
            (n.name.map(|s| s.into_owned()), n.name_what)
        })
        .unwrap_or((None, None));
    let name = name.unwrap_or_else(|| "?".to_owned());
    let mut narg = narg;
    if what == Some("method") {
        narg -= 1;
        if narg == 0 {
            return Fail::Msg(format!("calling '{name}' on bad self ({msg})"));
        }
    }
    Fail::Msg(format!("bad argument #{narg} to '{name}' ({msg})"))
}

fn type_error(lua: &Lua, args: &MultiValue, i: usize, expected: &str) -> Fail {
    let got = type_name(arg(args, i));
    bad_arg(lua, i as i64, &format!("{expected} expected, got {got}"))
}

fn num_of(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

/// A number, or a string Lua would read as one.
fn to_number(lua: &Lua, v: Option<&Value>) -> Option<f64> {
    match v {
        Some(Value::String(_)) => lua.coerce_number(v?.clone()).ok().flatten(),
        Some(v) => num_of(v),
        None => None,
    }
}

fn check_number(lua: &Lua, args: &MultiValue, i: usize) -> Res<f64> {
    to_number(lua, arg(args, i)).ok_or_else(|| type_error(lua, args, i, "number"))
}

/// A double converted to a C `long` as the x86-64 instruction does it (out of range: the
/// minimum).
fn c_long(d: f64) -> i64 {
    if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&d) {
        d as i64
    } else {
        i64::MIN
    }
}

/// A double converted to a C `unsigned long` as x86-64 code does it.
fn c_ulong(d: f64) -> u64 {
    const HIGH: f64 = 9_223_372_036_854_775_808.0;
    if d.is_nan() || d < HIGH {
        c_long(d) as u64
    } else {
        (c_long(d - HIGH) as u64) ^ (1 << 63)
    }
}

fn check_integer(lua: &Lua, args: &MultiValue, i: usize) -> Res<i64> {
    Ok(c_long(check_number(lua, args, i)?))
}

/// `luaL_checkint`: a `long`, then its low 32 bits.
fn check_int(lua: &Lua, args: &MultiValue, i: usize) -> Res<i32> {
    Ok(check_integer(lua, args, i)? as i32)
}

fn opt_integer(lua: &Lua, args: &MultiValue, i: usize, default: i64) -> Res<i64> {
    match arg(args, i) {
        None | Some(Value::Nil) => Ok(default),
        Some(_) => check_integer(lua, args, i),
    }
}

/// A string, or a number as Lua writes it.
fn check_string(lua: &Lua, args: &MultiValue, i: usize) -> Res<LuaString> {
    match arg(args, i) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v @ (Value::Integer(_) | Value::Number(_))) => lua
            .coerce_string(v.clone())?
            .ok_or_else(|| type_error(lua, args, i, "string")),
        _ => Err(type_error(lua, args, i, "string")),
    }
}

/// printf's `%.<precision>g`, as Lua and cjson write numbers.
fn fmt_g(x: f64, precision: usize) -> String {
    if x.is_nan() {
        return if x.is_sign_negative() { "-nan" } else { "nan" }.to_owned();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf" } else { "inf" }.to_owned();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    let p = precision.max(1);
    let sci = format!("{:.*e}", p - 1, x);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    fn trim(s: &str) -> &str {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.')
        } else {
            s
        }
    }
    if exp < -4 || exp >= p as i64 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.unsigned_abs())
    } else {
        let decimals = (p as i64 - 1 - exp).max(0) as usize;
        trim(&format!("{x:.decimals$}")).to_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// math.random / math.randomseed: a 48-bit linear congruential generator (POSIX `lrand48`), the
// same on every platform, so a seeded sequence is the one Redis gives.
// ---------------------------------------------------------------------------------------------

mod random {
    use std::cell::Cell;

    use mlua::{Function, Lua, MultiValue, Table, Value};

    use super::{Res, add, bad_arg, check_int, fail, one};

    const MULTIPLIER: u64 = 0x5_DEEC_E66D;
    const INCREMENT: u64 = 0xB;
    const MASK: u64 = (1 << 48) - 1;
    /// The state before any seed: `lrand48`'s own.
    const INITIAL: u64 = 0x1234_ABCD_330E;

    /// The generator's 48-bit state, kept in the Lua state's app data.
    #[derive(Debug)]
    pub(super) struct Rand48(Cell<u64>);

    impl Default for Rand48 {
        fn default() -> Self {
            Rand48(Cell::new(INITIAL))
        }
    }

    impl Rand48 {
        /// The next value in `0..2^31`.
        fn next(&self) -> i32 {
            let x = self
                .0
                .get()
                .wrapping_mul(MULTIPLIER)
                .wrapping_add(INCREMENT)
                & MASK;
            self.0.set(x);
            (x >> 17) as i32
        }

        fn seed(&self, seed: i32) {
            self.0.set(((seed as u32 as u64) << 16) | 0x330E);
        }
    }

    fn with<T>(lua: &Lua, f: impl FnOnce(&Rand48) -> T) -> T {
        if let Some(r) = lua.app_data_ref::<Rand48>() {
            return f(&r);
        }
        lua.set_app_data(Rand48::default());
        match lua.app_data_ref::<Rand48>() {
            Some(r) => f(&r),
            None => f(&Rand48::default()),
        }
    }

    pub(super) fn install(lua: &Lua, wrap: &Function) -> mlua::Result<()> {
        if lua.app_data_ref::<Rand48>().is_none() {
            lua.set_app_data(Rand48::default());
        }
        let math: Table = lua.globals().raw_get("math")?;
        add(lua, wrap, &math, "random", random)?;
        add(lua, wrap, &math, "randomseed", |lua, args| {
            let seed = check_int(lua, &args, 1)?;
            with(lua, |r| r.seed(seed));
            Ok(MultiValue::new())
        })
    }

    fn random(lua: &Lua, args: MultiValue) -> Res<MultiValue> {
        let max = i32::MAX;
        // The generator moves on even when the arguments turn out wrong, as in Redis.
        let r = f64::from(with(lua, Rand48::next) % max) / f64::from(max);
        let v = match args.len() {
            0 => r,
            1 => {
                let u = check_int(lua, &args, 1)?;
                if u < 1 {
                    return Err(bad_arg(lua, 1, "interval is empty"));
                }
                (r * f64::from(u)).floor() + 1.0
            }
            2 => {
                let l = check_int(lua, &args, 1)?;
                let u = check_int(lua, &args, 2)?;
                if l > u {
                    return Err(bad_arg(lua, 2, "interval is empty"));
                }
                let span = u.wrapping_sub(l).wrapping_add(1);
                (r * f64::from(span)).floor() + f64::from(l)
            }
            _ => return fail("wrong number of arguments"),
        };
        Ok(one(Value::Number(v)))
    }
}

// ---------------------------------------------------------------------------------------------
// bit: LuaBitOp. Numbers are taken modulo 2^32 (rounded to the nearest integer first) and
// results are signed 32-bit numbers.
// ---------------------------------------------------------------------------------------------

mod bit {
    use mlua::{Function, Lua, MultiValue, Value};

    use super::{Res, add, arg, one, to_number, type_error};

    /// An argument as 32 bits: the low word of the double after adding 2^52 + 2^51, which
    /// rounds it to an integer and keeps it modulo 2^32.
    fn barg(lua: &Lua, args: &MultiValue, i: usize) -> Res<u32> {
        let v = to_number(lua, arg(args, i));
        let b = (v.unwrap_or(0.0) + 6_755_399_441_055_744.0).to_bits() as u32;
        if b == 0 && v.is_none() {
            return Err(type_error(lua, args, i, "number"));
        }
        Ok(b)
    }

    fn ret(b: u32) -> Res<MultiValue> {
        Ok(one(Value::Number(f64::from(b as i32))))
    }

    fn fold(lua: &Lua, args: &MultiValue, op: fn(u32, u32) -> u32) -> Res<MultiValue> {
        let mut b = barg(lua, args, 1)?;
        for i in (2..=args.len()).rev() {
            b = op(b, barg(lua, args, i)?);
        }
        ret(b)
    }

    fn shift(lua: &Lua, args: &MultiValue, op: fn(u32, u32) -> u32) -> Res<MultiValue> {
        let b = barg(lua, args, 1)?;
        let n = barg(lua, args, 2)? & 31;
        ret(op(b, n))
    }

    pub(super) fn module(lua: &Lua, wrap: &Function) -> mlua::Result<mlua::Table> {
        let t = lua.create_table()?;
        add(lua, wrap, &t, "tobit", |lua, a| ret(barg(lua, &a, 1)?))?;
        add(lua, wrap, &t, "bnot", |lua, a| ret(!barg(lua, &a, 1)?))?;
        add(lua, wrap, &t, "band", |lua, a| fold(lua, &a, |x, y| x & y))?;
        add(lua, wrap, &t, "bor", |lua, a| fold(lua, &a, |x, y| x | y))?;
        add(lua, wrap, &t, "bxor", |lua, a| fold(lua, &a, |x, y| x ^ y))?;
        add(lua, wrap, &t, "lshift", |lua, a| {
            shift(lua, &a, |b, n| b << n)
        })?;
        add(lua, wrap, &t, "rshift", |lua, a| {
            shift(lua, &a, |b, n| b >> n)
        })?;
        add(lua, wrap, &t, "arshift", |lua, a| {
            shift(lua, &a, |b, n| ((b as i32) >> n) as u32)
        })?;
        add(lua, wrap, &t, "rol", |lua, a| {
            shift(lua, &a, u32::rotate_left)
        })?;
        add(lua, wrap, &t, "ror", |lua, a| {
            shift(lua, &a, u32::rotate_right)
        })?;
        add(lua, wrap, &t, "bswap", |lua, a| {
            ret(barg(lua, &a, 1)?.swap_bytes())
        })?;
        add(lua, wrap, &t, "tohex", |lua, a| {
            let mut b = barg(lua, &a, 1)?;
            let mut n = if a.len() < 2 {
                8
            } else {
                barg(lua, &a, 2)? as i32
            };
            let mut digits: &[u8; 16] = b"0123456789abcdef";
            if n < 0 {
                n = n.checked_neg().unwrap_or(i32::MAX);
                digits = b"0123456789ABCDEF";
            }
            let n = n.min(8) as usize;
            let mut buf = [0u8; 8];
            for slot in buf[..n].iter_mut().rev() {
                *slot = digits[(b & 15) as usize];
                b >>= 4;
            }
            Ok(one(Value::String(lua.create_string(&buf[..n])?)))
        })?;
        Ok(t)
    }
}

// ---------------------------------------------------------------------------------------------
// struct: packs numbers and strings into binary strings and back, after a format such as
// "<i4 h c8". Integers are C `long`s (64 bits), sizes up to 32 bytes; native order is little.
// ---------------------------------------------------------------------------------------------

mod structlib {
    use mlua::{Function, Lua, LuaString, MultiValue, Value};

    use super::{
        MAX_RESULTS, MAX_STACK, Res, add, bad_arg, check_number, check_string, fail, one,
        opt_integer, to_number,
    };

    const MAX_INT_SIZE: usize = 32;
    /// Largest alignment `!` gives without a number.
    const MAX_ALIGN: usize = 8;

    #[derive(Clone, Copy)]
    struct Header {
        little: bool,
        align: usize,
    }

    impl Default for Header {
        fn default() -> Self {
            Header {
                little: true,
                align: 1,
            }
        }
    }

    /// Walks a format: the text up to its end or its first NUL byte.
    struct Format<'a> {
        text: &'a [u8],
        at: usize,
    }

    impl<'a> Format<'a> {
        fn new(text: &'a [u8]) -> Self {
            let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
            Format {
                text: &text[..end],
                at: 0,
            }
        }

        fn next(&mut self) -> Option<u8> {
            let c = self.text.get(self.at).copied()?;
            self.at += 1;
            Some(c)
        }

        /// The number written next in the format, or `default`.
        fn number(&mut self, default: usize) -> Res<usize> {
            let mut a: i64 = 0;
            let mut any = false;
            while let Some(&d) = self.text.get(self.at).filter(|d| d.is_ascii_digit()) {
                let d = i64::from(d - b'0');
                if a > i64::from(i32::MAX) / 10 || a * 10 > i64::from(i32::MAX) - d {
                    return fail("integral size overflow");
                }
                a = a * 10 + d;
                self.at += 1;
                any = true;
            }
            Ok(if any { a as usize } else { default })
        }

        /// How many bytes option `opt` takes (0: none, or given by the data).
        fn size(&mut self, opt: u8) -> Res<usize> {
            Ok(match opt {
                b'B' | b'b' | b'x' => 1,
                b'H' | b'h' => 2,
                b'L' | b'l' | b'T' | b'd' => 8,
                b'f' => 4,
                b'c' => self.number(1)?,
                b'i' | b'I' => {
                    let size = self.number(4)?;
                    if size > MAX_INT_SIZE {
                        return fail(format!(
                            "integral size {size} is larger than limit of {MAX_INT_SIZE}"
                        ));
                    }
                    size
                }
                _ => 0,
            })
        }

        /// The options that set byte order and alignment; anything else is an error.
        fn control(&mut self, lua: &Lua, opt: u8, h: &mut Header) -> Res<()> {
            match opt {
                b' ' => {}
                b'>' => h.little = false,
                b'<' => h.little = true,
                b'!' => {
                    let a = self.number(MAX_ALIGN)?;
                    if !a.is_power_of_two() {
                        return fail(format!("alignment {a} is not a power of 2"));
                    }
                    h.align = a;
                }
                _ => {
                    let msg = format!("invalid format option '{}'", char::from(opt));
                    return Err(bad_arg(lua, 1, &msg));
                }
            }
            Ok(())
        }
    }

    /// Padding that puts an item of `size` bytes at `len` on its alignment.
    fn to_align(len: usize, h: &Header, opt: u8, size: usize) -> usize {
        if size == 0 || opt == b'c' {
            return 0;
        }
        let size = size.min(h.align);
        size.wrapping_sub(len & size.wrapping_sub(1)) & size.wrapping_sub(1)
    }

    fn ordered<const N: usize>(mut bytes: [u8; N], little: bool) -> [u8; N] {
        if !little {
            bytes.reverse();
        }
        bytes
    }

    fn pack(lua: &Lua, mut args: MultiValue) -> Res<MultiValue> {
        let fmt = check_string(lua, &args, 1)?;
        // The first argument missing reads as nil, as in Redis (whose packer keeps a nil there).
        args.push_back(Value::Nil);
        let fmt = fmt.as_bytes();
        let mut f = Format::new(&fmt);
        let mut h = Header::default();
        let mut out: Vec<u8> = Vec::new();
        let mut next_arg = 2;
        while let Some(opt) = f.next() {
            let size = f.size(opt)?;
            let pad = to_align(out.len(), &h, opt, size);
            out.resize(out.len() + pad, 0);
            match opt {
                b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                    let n = check_number(lua, &args, next_arg)?;
                    next_arg += 1;
                    let value = if n < 0.0 {
                        super::c_long(n) as u64
                    } else {
                        super::c_ulong(n)
                    };
                    let byte = |k: usize| if k < 8 { (value >> (8 * k)) as u8 } else { 0 };
                    if h.little {
                        out.extend((0..size).map(byte));
                    } else {
                        out.extend((0..size).rev().map(byte));
                    }
                }
                b'x' => out.push(0),
                b'f' => {
                    let n = check_number(lua, &args, next_arg)? as f32;
                    next_arg += 1;
                    out.extend(ordered(n.to_le_bytes(), h.little));
                }
                b'd' => {
                    let n = check_number(lua, &args, next_arg)?;
                    next_arg += 1;
                    out.extend(ordered(n.to_le_bytes(), h.little));
                }
                b'c' | b's' => {
                    let s = check_string(lua, &args, next_arg)?;
                    next_arg += 1;
                    let s = s.as_bytes();
                    let take = if size == 0 { s.len() } else { size };
                    if s.len() < take {
                        return Err(bad_arg(lua, next_arg as i64, "string too short"));
                    }
                    out.extend_from_slice(&s[..take]);
                    if opt == b's' {
                        out.push(0);
                    }
                }
                _ => f.control(lua, opt, &mut h)?,
            }
            if out.len() > super::MAX_OUTPUT {
                return fail(super::NO_MEMORY);
            }
        }
        Ok(one(Value::String(lua.create_string(&out)?)))
    }

    fn integer(bytes: &[u8], little: bool, signed: bool) -> f64 {
        let mut l: u64 = 0;
        let mut push = |b: &u8| l = (l << 8) | u64::from(*b);
        if little {
            bytes.iter().rev().for_each(&mut push);
        } else {
            bytes.iter().for_each(&mut push);
        }
        if !signed {
            return l as f64;
        }
        let mask = u64::MAX.wrapping_shl((bytes.len() * 8).wrapping_sub(1) as u32);
        if l & mask != 0 {
            l |= mask;
        }
        l as i64 as f64
    }

    fn unpack(lua: &Lua, args: MultiValue) -> Res<MultiValue> {
        let fmt = check_string(lua, &args, 1)?;
        let fmt = fmt.as_bytes();
        let data: LuaString = check_string(lua, &args, 2)?;
        let data = data.as_bytes();
        let ld = data.len();
        let start = opt_integer(lua, &args, 3, 1)? as u64 as usize;
        if start == 0 {
            return Err(bad_arg(lua, 3, "offset must be 1 or greater"));
        }
        let mut pos = start - 1;
        let mut f = Format::new(&fmt);
        let mut h = Header::default();
        let mut out: Vec<Value> = Vec::new();
        while let Some(opt) = f.next() {
            let mut size = f.size(opt)?;
            pos = pos.wrapping_add(to_align(pos, &h, opt, size));
            if size > ld || pos > ld - size {
                return Err(bad_arg(lua, 2, "data string too short"));
            }
            if args.len() as i64 + out.len() as i64 + 2 > MAX_STACK.min(MAX_RESULTS) {
                return fail("stack overflow (too many results)");
            }
            match opt {
                b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                    let signed = opt.is_ascii_lowercase();
                    let n = integer(&data[pos..pos + size], h.little, signed);
                    out.push(Value::Number(n));
                }
                b'x' => {}
                b'f' => {
                    let mut b = [0u8; 4];
                    b.copy_from_slice(&data[pos..pos + 4]);
                    let n = f32::from_le_bytes(ordered(b, h.little));
                    out.push(Value::Number(f64::from(n)));
                }
                b'd' => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&data[pos..pos + 8]);
                    out.push(Value::Number(f64::from_le_bytes(ordered(b, h.little))));
                }
                b'c' => {
                    if size == 0 {
                        let prev = match out.last() {
                            Some(v) => to_number(lua, Some(v)),
                            None => None,
                        };
                        let Some(n) = prev else {
                            return fail("format 'c0' needs a previous size");
                        };
                        out.pop();
                        size = super::c_ulong(n) as usize;
                        if size > ld || pos > ld - size {
                            return Err(bad_arg(lua, 2, "data string too short"));
                        }
                    }
                    out.push(Value::String(lua.create_string(&data[pos..pos + size])?));
                }
                b's' => {
                    let Some(len) = data[pos..].iter().position(|&b| b == 0) else {
                        return fail("unfinished string in data");
                    };
                    out.push(Value::String(lua.create_string(&data[pos..pos + len])?));
                    size = len + 1;
                }
                _ => f.control(lua, opt, &mut h)?,
            }
            pos = pos.wrapping_add(size);
        }
        out.push(Value::Number(pos.wrapping_add(1) as f64));
        Ok(out.into_iter().collect())
    }

    fn size(lua: &Lua, args: MultiValue) -> Res<MultiValue> {
        let fmt = check_string(lua, &args, 1)?;
        let fmt = fmt.as_bytes();
        let mut f = Format::new(&fmt);
        let mut h = Header::default();
        let mut pos: usize = 0;
        while let Some(opt) = f.next() {
            let size = f.size(opt)?;
            pos = pos.wrapping_add(to_align(pos, &h, opt, size));
            if opt == b's' {
                return Err(bad_arg(lua, 1, "option 's' has no fixed size"));
            }
            if opt == b'c' && size == 0 {
                return Err(bad_arg(lua, 1, "option 'c0' has no fixed size"));
            }
            // Letters and digits outside the format language are passed over here.
            if !opt.is_ascii_alphanumeric() {
                f.control(lua, opt, &mut h)?;
            }
            pos = pos.wrapping_add(size);
        }
        Ok(one(Value::Number(pos as i64 as f64)))
    }

    pub(super) fn module(lua: &Lua, wrap: &Function) -> mlua::Result<mlua::Table> {
        let t = lua.create_table()?;
        add(lua, wrap, &t, "pack", pack)?;
        add(lua, wrap, &t, "unpack", unpack)?;
        add(lua, wrap, &t, "size", size)?;
        Ok(t)
    }
}

// ---------------------------------------------------------------------------------------------
// cmsgpack: MessagePack. Integers take the smallest type that holds them, other numbers are
// float 32 when that is exact and float 64 otherwise; a table whose keys are exactly 1..n is an
// array, any other a map. Tables nested deeper than 16 are written as nil, which is what keeps
// a table that contains itself finite.
// ---------------------------------------------------------------------------------------------

mod msgpack {
    use mlua::{Function, Lua, MultiValue, Table, Value};

    use super::{
        MAX_NESTING, MAX_OUTPUT, MAX_RESULTS, MAX_STACK, NO_MEMORY, Res, add, bad_arg,
        check_integer, check_string, fail, num_of, one, opt_integer,
    };

    const MAX_TABLE_LEVELS: u32 = 16;

    const TOO_MANY: &str =
        "stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)";

    struct Out(Vec<u8>);

    impl Out {
        fn put(&mut self, bytes: &[u8]) -> Res<()> {
            if self.0.len() + bytes.len() > MAX_OUTPUT {
                return fail(NO_MEMORY);
            }
            self.0.extend_from_slice(bytes);
            Ok(())
        }

        /// A type byte and a big-endian length that needs 16 or 32 bits.
        fn header(&mut self, small: u8, fix_max: u64, fix: u8, n: u64) -> Res<()> {
            if n <= fix_max {
                self.put(&[fix | n as u8])
            } else if n <= 0xffff {
                self.put(&[small, (n >> 8) as u8, n as u8])
            } else {
                let n = n as u32;
                self.put(&[small + 1])?;
                self.put(&n.to_be_bytes())
            }
        }

        fn int(&mut self, n: i64) -> Res<()> {
            match n {
                0..=127 => self.put(&[n as u8]),
                128..=0xff => self.put(&[0xcc, n as u8]),
                0x100..=0xffff => self.put(&[0xcd, (n >> 8) as u8, n as u8]),
                0x1_0000..=0xffff_ffff => {
                    self.put(&[0xce])?;
                    self.put(&(n as u32).to_be_bytes())
                }
                0x1_0000_0000.. => {
                    self.put(&[0xcf])?;
                    self.put(&n.to_be_bytes())
                }
                -32..=-1 => self.put(&[n as u8]),
                -128..=-33 => self.put(&[0xd0, n as u8]),
                -32768..=-129 => self.put(&[0xd1, (n >> 8) as u8, n as u8]),
                -2_147_483_648..=-32769 => {
                    self.put(&[0xd2])?;
                    self.put(&(n as i32).to_be_bytes())
                }
                _ => {
                    self.put(&[0xd3])?;
                    self.put(&n.to_be_bytes())
                }
            }
        }

        fn number(&mut self, x: f64) -> Res<()> {
            if x.is_finite()
                && x.fract() == 0.0
                && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&x)
            {
                return self.int(x as i64);
            }
            let f = x as f32;
            if f64::from(f) == x {
                self.put(&[0xca])?;
                self.put(&f.to_be_bytes())
            } else {
                self.put(&[0xcb])?;
                self.put(&x.to_be_bytes())
            }
        }

        fn value(&mut self, v: &Value, level: u32) -> Res<()> {
            match v {
                Value::String(s) => {
                    let s = s.as_bytes();
                    let n = s.len() as u64;
                    if n < 32 {
                        self.put(&[0xa0 | n as u8])?;
                    } else if n <= 0xff {
                        self.put(&[0xd9, n as u8])?;
                    } else {
                        self.header(0xda, 0, 0, n)?;
                    }
                    self.put(&s)
                }
                Value::Boolean(b) => self.put(&[if *b { 0xc3 } else { 0xc2 }]),
                Value::Integer(i) => self.int(*i),
                Value::Number(x) => self.number(*x),
                Value::Table(t) if level < MAX_TABLE_LEVELS => self.table(t, level),
                _ => self.put(&[0xc0]),
            }
        }

        fn table(&mut self, t: &Table, level: u32) -> Res<()> {
            // An array when its keys are exactly 1..n (n counted as C `int`s count).
            let (mut count, mut max) = (0i64, 0i64);
            let mut array = true;
            for pair in t.pairs::<Value, Value>() {
                let (k, _) = pair?;
                match num_of(&k) {
                    Some(n) if n > 0.0 && n.fract() == 0.0 && n <= f64::from(i32::MAX) => {
                        max = max.max(n as i64);
                        count += 1;
                    }
                    _ => {
                        array = false;
                        break;
                    }
                }
            }
            if array && max == count {
                let len = t.raw_len();
                self.header(0xdc, 15, 0x90, len as u64)?;
                for i in 1..=len {
                    self.value(&t.raw_get::<Value>(i)?, level + 1)?;
                }
                return Ok(());
            }
            let n = t.pairs::<Value, Value>().count();
            self.header(0xde, 15, 0x80, n as u64)?;
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair?;
                self.value(&k, level + 1)?;
                self.value(&v, level + 1)?;
            }
            Ok(())
        }
    }

    fn pack(lua: &Lua, args: MultiValue) -> Res<MultiValue> {
        if args.is_empty() {
            return Err(bad_arg(lua, 0, "MessagePack pack needs input."));
        }
        if 2 * args.len() as i64 > MAX_STACK {
            return Err(bad_arg(lua, 0, "Too many arguments for MessagePack pack."));
        }
        let mut out = Out(Vec::new());
        for v in args.iter() {
            out.value(v, 0)?;
        }
        Ok(one(Value::String(lua.create_string(&out.0)?)))
    }

    /// Why decoding stopped.
    enum Stop {
        Missing,
        BadFormat,
        Fail(super::Fail),
    }

    impl From<mlua::Error> for Stop {
        fn from(e: mlua::Error) -> Self {
            Stop::Fail(super::Fail::Lua(e))
        }
    }

    struct Reader<'a> {
        data: &'a [u8],
        at: usize,
        /// Lua stack slots Redis's decoder would hold at this point.
        slots: i64,
        /// Tables being filled.
        depth: i64,
    }

    impl Reader<'_> {
        fn take(&mut self, n: usize) -> Result<&[u8], Stop> {
            if self.data.len() - self.at < n {
                return Err(Stop::Missing);
            }
            let s = &self.data[self.at..self.at + n];
            self.at += n;
            Ok(s)
        }

        /// A type byte and the `width`-byte big-endian number after it, taken together.
        fn fixed(&mut self, width: usize) -> Result<u64, Stop> {
            let s = self.take(1 + width)?;
            Ok(s[1..].iter().fold(0u64, |a, &b| (a << 8) | u64::from(b)))
        }

        fn be(&mut self, n: usize) -> Result<u64, Stop> {
            Ok(self
                .take(n)?
                .iter()
                .fold(0u64, |a, &b| (a << 8) | u64::from(b)))
        }

        fn string(&mut self, lua: &Lua, len: u64) -> Result<Value, Stop> {
            let len = usize::try_from(len).map_err(|_| Stop::Missing)?;
            let s = self.take(len)?;
            Ok(Value::String(lua.create_string(s)?))
        }

        fn array(&mut self, lua: &Lua, len: u64) -> Result<Value, Stop> {
            if self.slots + 2 > MAX_STACK || self.depth >= MAX_NESTING {
                let msg = "stack overflow (in function mp_decode_to_lua_array)";
                return Err(Stop::Fail(super::Fail::Msg(msg.into())));
            }
            let t = lua.create_table()?;
            self.slots += 2;
            self.depth += 1;
            for i in 1..=len {
                let v = self.value(lua)?;
                t.raw_set(i, v)?;
            }
            self.depth -= 1;
            self.slots -= 2;
            Ok(Value::Table(t))
        }

        fn map(&mut self, lua: &Lua, len: u64) -> Result<Value, Stop> {
            if self.depth >= MAX_NESTING {
                return Err(Stop::Fail(super::Fail::Msg(TOO_MANY.into())));
            }
            let t = lua.create_table()?;
            self.depth += 1;
            for _ in 0..len {
                self.slots += 1;
                let k = self.value(lua)?;
                self.slots += 1;
                let v = self.value(lua)?;
                self.slots -= 2;
                match &k {
                    Value::Nil => {
                        return Err(Stop::Fail(super::Fail::Raw("table index is nil".into())));
                    }
                    Value::Number(n) if n.is_nan() => {
                        return Err(Stop::Fail(super::Fail::Raw("table index is NaN".into())));
                    }
                    _ => t.raw_set(k, v)?,
                }
            }
            self.depth -= 1;
            Ok(Value::Table(t))
        }

        fn value(&mut self, lua: &Lua) -> Result<Value, Stop> {
            let Some(&first) = self.data.get(self.at) else {
                return Err(Stop::Missing);
            };
            if self.slots + 1 > MAX_STACK {
                return Err(Stop::Fail(super::Fail::Msg(TOO_MANY.into())));
            }
            let int = |i: i64| Value::Number(i as f64);
            Ok(match first {
                0xcc..=0xcf => int(self.fixed(1 << (first - 0xcc))? as i64),
                0xd0..=0xd3 => {
                    let width = 1usize << (first - 0xd0);
                    let shift = 64 - 8 * width as u32;
                    int(((self.fixed(width)? << shift) as i64) >> shift)
                }
                0xc0 => {
                    self.at += 1;
                    Value::Nil
                }
                0xc2 | 0xc3 => {
                    self.at += 1;
                    Value::Boolean(first == 0xc3)
                }
                0xca => {
                    let s = self.take(5)?;
                    let f = f32::from_be_bytes([s[1], s[2], s[3], s[4]]);
                    Value::Number(f64::from(f))
                }
                0xcb => {
                    let s = self.take(9)?;
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&s[1..]);
                    Value::Number(f64::from_be_bytes(b))
                }
                0xd9..=0xdb => {
                    self.at += 1;
                    let len = self.be(1 << (first - 0xd9))?;
                    self.string(lua, len)?
                }
                0xdc | 0xdd => {
                    self.at += 1;
                    let len = self.be(if first == 0xdc { 2 } else { 4 })?;
                    self.array(lua, len)?
                }
                0xde | 0xdf => {
                    self.at += 1;
                    let len = self.be(if first == 0xde { 2 } else { 4 })?;
                    self.map(lua, len)?
                }
                0x00..=0x7f => {
                    self.at += 1;
                    int(i64::from(first))
                }
                0xe0..=0xff => {
                    self.at += 1;
                    int(i64::from(first as i8))
                }
                0xa0..=0xbf => {
                    self.at += 1;
                    self.string(lua, u64::from(first & 0x1f))?
                }
                0x90..=0x9f => {
                    self.at += 1;
                    self.array(lua, u64::from(first & 0x0f))?
                }
                0x80..=0x8f => {
                    self.at += 1;
                    self.map(lua, u64::from(first & 0x0f))?
                }
                _ => return Err(Stop::BadFormat),
            })
        }
    }

    /// Decodes up to `limit` values from `offset` (0 and 0: all of them, without an offset in
    /// the answer).
    fn unpack_full(lua: &Lua, args: &MultiValue, limit: i64, offset: i64) -> Res<MultiValue> {
        let s = check_string(lua, args, 1)?;
        let data = s.as_bytes();
        let len = data.len();
        let decode_all = limit == 0 && offset == 0;
        if offset < 0 || limit < 0 {
            return fail(format!(
                "Invalid request to unpack with offset of {} and limit of {}.",
                offset as i32, len as i32
            ));
        }
        if offset as u64 > len as u64 {
            return fail(format!(
                "Start offset {} greater than input length {}.",
                offset as i32, len as i32
            ));
        }
        let limit = if decode_all {
            i64::from(i32::MAX)
        } else {
            limit
        };
        let mut r = Reader {
            data: &data,
            at: offset as usize,
            slots: args.len() as i64,
            depth: 0,
        };
        let mut out = MultiValue::new();
        let mut count = 0;
        while r.at < len && count < limit {
            if r.slots + 1 > MAX_RESULTS {
                return fail(TOO_MANY);
            }
            match r.value(lua) {
                Ok(v) => out.push_back(v),
                Err(Stop::Missing) => return fail("Missing bytes in input."),
                Err(Stop::BadFormat) => return fail("Bad data format in input."),
                Err(Stop::Fail(f)) => return Err(f),
            }
            r.slots += 1;
            count += 1;
        }
        if !decode_all {
            let next = if r.at == len { -1 } else { r.at as i64 };
            out.push_front(Value::Integer(next));
        }
        Ok(out)
    }

    /// Only the first argument stays: the others are read first and dropped.
    fn first_only(mut args: MultiValue) -> MultiValue {
        args.truncate(1);
        args
    }

    pub(super) fn module(lua: &Lua, wrap: &Function) -> mlua::Result<Table> {
        let t = lua.create_table()?;
        add(lua, wrap, &t, "pack", pack)?;
        add(lua, wrap, &t, "unpack", |lua, args| {
            unpack_full(lua, &args, 0, 0)
        })?;
        add(lua, wrap, &t, "unpack_one", |lua, args| {
            let offset = opt_integer(lua, &args, 2, 0)?;
            unpack_full(lua, &first_only(args), 1, offset)
        })?;
        add(lua, wrap, &t, "unpack_limit", |lua, args| {
            let limit = check_integer(lua, &args, 2)?;
            let offset = opt_integer(lua, &args, 3, 0)?;
            unpack_full(lua, &first_only(args), limit, offset)
        })?;
        t.raw_set("_NAME", "cmsgpack")?;
        t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
        t.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
        t.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
        Ok(t)
    }
}

// ---------------------------------------------------------------------------------------------
// cjson: JSON text to Lua values and back. A table is written as an array when all its keys are
// integers from 1 (holes become null, unless the array is too sparse), and as an object
// otherwise; the empty table is `{}`. JSON null is read as `cjson.null`, a light userdata.
// ---------------------------------------------------------------------------------------------

mod cjson {
    use std::ptr;

    use super::{
        Arc, Function, LightUserData, Lua, MAX_NESTING, MAX_OUTPUT, MAX_STACK, MultiValue, Mutex,
        NO_MEMORY, PoisonError, Res, Table, Value, add, arg, bad_arg, check_integer, check_string,
        fail, fmt_g, num_of, one, type_name,
    };

    /// A module's settings: each `cjson` table (the global one and those from `cjson.new()`) has
    /// its own, and they last for the life of the Lua state, as in Redis.
    #[derive(Clone, Copy, Debug)]
    struct Config {
        sparse_convert: i32,
        sparse_ratio: i32,
        sparse_safe: i32,
        encode_max_depth: i32,
        decode_max_depth: i32,
        /// 0: refuse NaN and infinities, 1: write them as `nan` / `inf`, 2: write `null`.
        encode_invalid: i32,
        decode_invalid: i32,
        keep_buffer: i32,
        precision: i32,
    }

    impl Default for Config {
        fn default() -> Self {
            Config {
                sparse_convert: 0,
                sparse_ratio: 2,
                sparse_safe: 10,
                encode_max_depth: 1000,
                decode_max_depth: 1000,
                encode_invalid: 0,
                decode_invalid: 1,
                keep_buffer: 1,
                precision: 14,
            }
        }
    }

    type Shared = Arc<Mutex<Config>>;

    fn current(cfg: &Shared) -> Config {
        *cfg.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn null() -> Value {
        Value::LightUserData(LightUserData(ptr::null_mut()))
    }

    pub(super) fn module(lua: &Lua, wrap: &Function) -> mlua::Result<Table> {
        let cfg: Shared = Arc::new(Mutex::new(Config::default()));
        let t = lua.create_table()?;
        let c = cfg.clone();
        add(lua, wrap, &t, "encode", move |lua, args| {
            encode(lua, &args, current(&c))
        })?;
        let c = cfg.clone();
        add(lua, wrap, &t, "decode", move |lua, args| {
            decode(lua, &args, current(&c))
        })?;
        let settings: [(&str, Setter); 7] = [
            ("encode_sparse_array", |lua, a, c| {
                too_many(lua, a, 3)?;
                let convert = enum_option(lua, a, 1, &mut c.sparse_convert, &["off", "on"])?;
                let ratio = int_option(lua, a, 2, &mut c.sparse_ratio, 0, i32::MAX)?;
                let safe = int_option(lua, a, 3, &mut c.sparse_safe, 0, i32::MAX)?;
                Ok([convert, ratio, safe].into_iter().collect())
            }),
            ("encode_max_depth", |lua, a, c| {
                too_many(lua, a, 1)?;
                Ok(one(int_option(
                    lua,
                    a,
                    1,
                    &mut c.encode_max_depth,
                    1,
                    i32::MAX,
                )?))
            }),
            ("decode_max_depth", |lua, a, c| {
                too_many(lua, a, 1)?;
                Ok(one(int_option(
                    lua,
                    a,
                    1,
                    &mut c.decode_max_depth,
                    1,
                    i32::MAX,
                )?))
            }),
            ("encode_number_precision", |lua, a, c| {
                too_many(lua, a, 1)?;
                Ok(one(int_option(lua, a, 1, &mut c.precision, 1, 14)?))
            }),
            ("encode_keep_buffer", |lua, a, c| {
                // Only how memory is reused: the output is the same either way.
                too_many(lua, a, 1)?;
                Ok(one(enum_option(
                    lua,
                    a,
                    1,
                    &mut c.keep_buffer,
                    &["off", "on"],
                )?))
            }),
            ("encode_invalid_numbers", |lua, a, c| {
                too_many(lua, a, 1)?;
                let names = ["off", "on", "null"];
                Ok(one(enum_option(lua, a, 1, &mut c.encode_invalid, &names)?))
            }),
            ("decode_invalid_numbers", |lua, a, c| {
                too_many(lua, a, 1)?;
                Ok(one(enum_option(
                    lua,
                    a,
                    1,
                    &mut c.decode_invalid,
                    &["off", "on"],
                )?))
            }),
        ];
        for (name, set) in settings {
            let c = cfg.clone();
            add(lua, wrap, &t, name, move |lua, args| {
                let mut guard = c.lock().unwrap_or_else(PoisonError::into_inner);
                set(lua, &args, &mut guard)
            })?;
        }
        let w = wrap.clone();
        add(lua, wrap, &t, "new", move |lua, _| {
            Ok(one(Value::Table(module(lua, &w)?)))
        })?;
        t.raw_set("null", null())?;
        t.raw_set("_NAME", "cjson")?;
        t.raw_set("_VERSION", "2.1.0")?;
        Ok(t)
    }

    type Setter = fn(&Lua, &MultiValue, &mut Config) -> Res<MultiValue>;

    fn too_many(lua: &Lua, args: &MultiValue, n: usize) -> Res<()> {
        if args.len() > n {
            return Err(bad_arg(lua, n as i64 + 1, "found too many arguments"));
        }
        Ok(())
    }

    fn given(args: &MultiValue, i: usize) -> bool {
        !matches!(arg(args, i), None | Some(Value::Nil))
    }

    fn int_option(
        lua: &Lua,
        args: &MultiValue,
        i: usize,
        setting: &mut i32,
        min: i32,
        max: i32,
    ) -> Res<Value> {
        if given(args, i) {
            let value = check_integer(lua, args, i)? as i32;
            if value < min || value > max {
                return Err(bad_arg(
                    lua,
                    1,
                    &format!("expected integer between {min} and {max}"),
                ));
            }
            *setting = value;
        }
        Ok(Value::Integer(i64::from(*setting)))
    }

    /// A setting given as a boolean or by name; answered as a boolean when it is off or on.
    fn enum_option(
        lua: &Lua,
        args: &MultiValue,
        i: usize,
        setting: &mut i32,
        names: &[&str],
    ) -> Res<Value> {
        if given(args, i) {
            if let Some(Value::Boolean(b)) = arg(args, i) {
                *setting = i32::from(*b);
            } else {
                let name = check_string(lua, args, i)?;
                let name = name.as_bytes();
                match names.iter().position(|n| n.as_bytes() == &name[..]) {
                    Some(k) => *setting = k as i32,
                    None => {
                        let shown = String::from_utf8_lossy(&name).into_owned();
                        return Err(bad_arg(lua, i as i64, &format!("invalid option '{shown}'")));
                    }
                }
            }
        }
        Ok(match *setting {
            0 | 1 => Value::Boolean(*setting == 1),
            k => {
                let name = names.get(k as usize).copied().unwrap_or("");
                Value::String(lua.create_string(name)?)
            }
        })
    }

    // ----- encoding -----

    struct Encoder {
        cfg: Config,
        out: Vec<u8>,
    }

    impl Encoder {
        fn put(&mut self, bytes: &[u8]) -> Res<()> {
            if self.out.len() + bytes.len() > MAX_OUTPUT {
                return fail(NO_MEMORY);
            }
            self.out.extend_from_slice(bytes);
            Ok(())
        }

        fn string(&mut self, s: &[u8]) -> Res<()> {
            let mut buf = Vec::with_capacity(s.len() + 2);
            buf.push(b'"');
            for &c in s {
                match c {
                    b'"' => buf.extend_from_slice(b"\\\""),
                    b'\\' => buf.extend_from_slice(b"\\\\"),
                    b'/' => buf.extend_from_slice(b"\\/"),
                    b'\x08' => buf.extend_from_slice(b"\\b"),
                    b'\t' => buf.extend_from_slice(b"\\t"),
                    b'\n' => buf.extend_from_slice(b"\\n"),
                    b'\x0c' => buf.extend_from_slice(b"\\f"),
                    b'\r' => buf.extend_from_slice(b"\\r"),
                    0..=0x1f | 0x7f => buf.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
                    _ => buf.push(c),
                }
            }
            buf.push(b'"');
            self.put(&buf)
        }

        fn number(&mut self, x: f64) -> Res<()> {
            match self.cfg.encode_invalid {
                0 if !x.is_finite() => {
                    return fail("Cannot serialise number: must not be NaN or Inf");
                }
                1 if x.is_nan() => return self.put(b"nan"),
                2.. if !x.is_finite() => return self.put(b"null"),
                _ => {}
            }
            let text = fmt_g(x, self.cfg.precision.clamp(1, 14) as usize);
            self.put(text.as_bytes())
        }

        /// `slots`: the Lua stack Redis's encoder would use here, which bounds nesting even
        /// when the depth limit is raised.
        fn value(&mut self, v: &Value, depth: i32, slots: i64) -> Res<()> {
            match v {
                Value::String(s) => self.string(&s.as_bytes()),
                Value::Integer(_) | Value::Number(_) => self.number(num_of(v).unwrap_or(0.0)),
                Value::Boolean(b) => self.put(if *b { b"true" } else { b"false" }),
                Value::Nil => self.put(b"null"),
                Value::LightUserData(p) if p.0.is_null() => self.put(b"null"),
                Value::Table(t) => {
                    let depth = depth + 1;
                    if depth > self.cfg.encode_max_depth
                        || slots + 3 > MAX_STACK
                        || i64::from(depth) > MAX_NESTING
                    {
                        return fail(format!("Cannot serialise, excessive nesting ({depth})"));
                    }
                    match self.array_length(t)? {
                        Some(len) => self.array(t, len, depth, slots),
                        None => self.object(t, depth, slots),
                    }
                }
                other => fail(format!(
                    "Cannot serialise {}: type not supported",
                    type_name(Some(other))
                )),
            }
        }

        /// The length to write a table as an array with, or `None` for an object. Counts as
        /// C `int`s do, so a key past 2^31 makes the table an object.
        fn array_length(&self, t: &Table) -> Res<Option<i64>> {
            let (mut max, mut items) = (0i32, 0i64);
            for pair in t.pairs::<Value, Value>() {
                let (k, _) = pair?;
                match num_of(&k) {
                    Some(k) if k != 0.0 && k.floor() == k && k >= 1.0 => {
                        if k > f64::from(max) {
                            max = if k < 2_147_483_648.0 {
                                k as i32
                            } else {
                                i32::MIN
                            };
                        }
                        items += 1;
                    }
                    _ => return Ok(None),
                }
            }
            let c = &self.cfg;
            let max = i64::from(max);
            if c.sparse_ratio > 0
                && max > items * i64::from(c.sparse_ratio)
                && max > i64::from(c.sparse_safe)
            {
                if c.sparse_convert == 0 {
                    return fail("Cannot serialise table: excessively sparse array");
                }
                return Ok(None);
            }
            Ok((max > 0).then_some(max))
        }

        fn array(&mut self, t: &Table, len: i64, depth: i32, slots: i64) -> Res<()> {
            self.put(b"[")?;
            for i in 1..=len {
                if i > 1 {
                    self.put(b",")?;
                }
                self.value(&t.raw_get::<Value>(i)?, depth, slots + 1)?;
            }
            self.put(b"]")
        }

        fn object(&mut self, t: &Table, depth: i32, slots: i64) -> Res<()> {
            self.put(b"{")?;
            let mut first = true;
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair?;
                if !first {
                    self.put(b",")?;
                }
                first = false;
                match &k {
                    Value::String(s) => {
                        self.string(&s.as_bytes())?;
                        self.put(b":")?;
                    }
                    Value::Integer(_) | Value::Number(_) => {
                        self.put(b"\"")?;
                        self.number(num_of(&k).unwrap_or(0.0))?;
                        self.put(b"\":")?;
                    }
                    other => {
                        return fail(format!(
                            "Cannot serialise {}: table key must be a number or string",
                            type_name(Some(other))
                        ));
                    }
                }
                self.value(&v, depth, slots + 2)?;
            }
            self.put(b"}")
        }
    }

    fn encode(lua: &Lua, args: &MultiValue, cfg: Config) -> Res<MultiValue> {
        let Some(v) = args.front().filter(|_| args.len() == 1) else {
            return Err(bad_arg(lua, 1, "expected 1 argument"));
        };
        let mut e = Encoder {
            cfg,
            out: Vec::new(),
        };
        e.value(v, 0, 1)?;
        Ok(one(Value::String(lua.create_string(&e.out)?)))
    }

    // ----- decoding -----

    enum Tok {
        ObjBegin,
        ObjEnd,
        ArrBegin,
        ArrEnd,
        Str(Vec<u8>),
        Num(f64),
        Bool(bool),
        Null,
        Colon,
        Comma,
        End,
        Error(&'static str),
    }

    impl Tok {
        fn name(&self) -> &'static str {
            match self {
                Tok::ObjBegin => "T_OBJ_BEGIN",
                Tok::ObjEnd => "T_OBJ_END",
                Tok::ArrBegin => "T_ARR_BEGIN",
                Tok::ArrEnd => "T_ARR_END",
                Tok::Str(_) => "T_STRING",
                Tok::Num(_) => "T_NUMBER",
                Tok::Bool(_) => "T_BOOLEAN",
                Tok::Null => "T_NULL",
                Tok::Colon => "T_COLON",
                Tok::Comma => "T_COMMA",
                Tok::End => "T_END",
                Tok::Error(e) => e,
            }
        }
    }

    struct Token {
        tok: Tok,
        /// Where it starts (0-based).
        index: usize,
    }

    struct Decoder<'a> {
        /// The text up to its first NUL byte, which ends it.
        text: &'a [u8],
        at: usize,
        cfg: Config,
        depth: i32,
    }

    impl Decoder<'_> {
        fn byte(&self, i: usize) -> u8 {
            self.text.get(i).copied().unwrap_or(0)
        }

        fn starts_with(&self, word: &[u8]) -> bool {
            self.text
                .get(self.at..)
                .is_some_and(|r| r.starts_with(word))
        }

        /// Numbers strict JSON refuses but C's `strtod` reads: `+1`, `0x1f`, `01`, `inf`, `nan`.
        fn is_invalid_number(&self) -> bool {
            let mut p = self.at;
            match self.byte(p) {
                b'+' => return true,
                b'-' => p += 1,
                _ => {}
            }
            if self.byte(p) == b'0' {
                let next = self.byte(p + 1);
                return next | 0x20 == b'x' || next.is_ascii_digit();
            }
            if (self.byte(p) as i8) <= b'9' as i8 {
                return false;
            }
            let rest = self.text.get(p..).unwrap_or_default();
            let starts = |w: &[u8]| rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(w);
            starts(b"inf") || starts(b"nan")
        }

        fn number(&mut self) -> Tok {
            match strtod(self.text.get(self.at..).unwrap_or_default()) {
                Some((x, used)) if used > 0 => {
                    self.at += used;
                    Tok::Num(x)
                }
                _ => Tok::Error("invalid number"),
            }
        }

        fn hex4(&self, p: usize) -> Option<u32> {
            (p..p + 4).try_fold(0u32, |acc, i| {
                let d = char::from(self.byte(i)).to_digit(16)?;
                Some(acc * 16 + d)
            })
        }

        /// A `\uXXXX` escape (two for a surrogate pair) at `at`, appended as UTF-8.
        fn unicode_escape(&mut self, buf: &mut Vec<u8>) -> Option<()> {
            let p = self.at;
            let mut code = self.hex4(p + 2)?;
            let mut len = 6;
            if code & 0xF800 == 0xD800 {
                if code & 0x400 != 0 || self.byte(p + 6) != b'\\' || self.byte(p + 7) != b'u' {
                    return None;
                }
                let low = self.hex4(p + 8)?;
                if low & 0xFC00 != 0xDC00 {
                    return None;
                }
                code = (((code & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
                len = 12;
            }
            let c = char::from_u32(code)?;
            let mut utf8 = [0u8; 4];
            buf.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            self.at += len;
            Some(())
        }

        fn string(&mut self) -> Tok {
            self.at += 1;
            let mut buf = Vec::new();
            loop {
                let ch = self.byte(self.at);
                match ch {
                    b'"' => break,
                    0 => return Tok::Error("unexpected end of string"),
                    b'\\' => {
                        let c = match self.byte(self.at + 1) {
                            b'u' => {
                                if self.unicode_escape(&mut buf).is_none() {
                                    return Tok::Error("invalid unicode escape code");
                                }
                                continue;
                            }
                            c @ (b'"' | b'\\' | b'/') => c,
                            b'b' => 0x08,
                            b't' => b'\t',
                            b'n' => b'\n',
                            b'f' => 0x0c,
                            b'r' => b'\r',
                            _ => return Tok::Error("invalid escape code"),
                        };
                        buf.push(c);
                        self.at += 2;
                    }
                    _ => {
                        buf.push(ch);
                        self.at += 1;
                    }
                }
            }
            self.at += 1;
            Tok::Str(buf)
        }

        fn next(&mut self) -> Token {
            while matches!(self.byte(self.at), b' ' | b'\t' | b'\n' | b'\r') {
                self.at += 1;
            }
            let index = self.at;
            let single = |t| (t, 1);
            let (tok, advance) = match self.byte(self.at) {
                b'{' => single(Tok::ObjBegin),
                b'}' => single(Tok::ObjEnd),
                b'[' => single(Tok::ArrBegin),
                b']' => single(Tok::ArrEnd),
                b',' => single(Tok::Comma),
                b':' => single(Tok::Colon),
                0 => (Tok::End, 0),
                b'"' => (self.string(), 0),
                b'-' | b'0'..=b'9' => {
                    if self.cfg.decode_invalid == 0 && self.is_invalid_number() {
                        (Tok::Error("invalid number"), 0)
                    } else {
                        (self.number(), 0)
                    }
                }
                b'f' | b'i' | b'I' | b'n' | b'N' | b't' | b'+' => {
                    if self.starts_with(b"true") {
                        (Tok::Bool(true), 4)
                    } else if self.starts_with(b"false") {
                        (Tok::Bool(false), 5)
                    } else if self.starts_with(b"null") {
                        (Tok::Null, 4)
                    } else if self.cfg.decode_invalid != 0 && self.is_invalid_number() {
                        (self.number(), 0)
                    } else {
                        (Tok::Error("invalid token"), 0)
                    }
                }
                _ => (Tok::Error("invalid token"), 0),
            };
            self.at += advance;
            // An error is reported where the text went wrong, which for a string may be
            // inside it.
            let index = if matches!(tok, Tok::Error(_)) {
                self.at
            } else {
                index
            };
            Token { tok, index }
        }

        fn expected<T>(&self, what: &str, t: &Token) -> Res<T> {
            fail(format!(
                "Expected {what} but found {} at character {}",
                t.tok.name(),
                t.index + 1
            ))
        }

        fn descend(&mut self, slots: i64, needed: i64) -> Res<()> {
            self.depth += 1;
            if self.depth <= self.cfg.decode_max_depth
                && slots + needed <= MAX_STACK
                && i64::from(self.depth) <= MAX_NESTING
            {
                return Ok(());
            }
            fail(format!(
                "Found too many nested data structures ({}) at character {}",
                self.depth, self.at
            ))
        }

        /// `slots`: the Lua stack Redis's decoder would use at this point.
        fn value(&mut self, lua: &Lua, t: Token, slots: i64) -> Res<Value> {
            Ok(match t.tok {
                Tok::Str(s) => Value::String(lua.create_string(&s)?),
                Tok::Num(x) => Value::Number(x),
                Tok::Bool(b) => Value::Boolean(b),
                Tok::Null => null(),
                Tok::ObjBegin => Value::Table(self.object(lua, slots)?),
                Tok::ArrBegin => Value::Table(self.array(lua, slots)?),
                _ => return self.expected("value", &t),
            })
        }

        fn object(&mut self, lua: &Lua, slots: i64) -> Res<Table> {
            self.descend(slots, 3)?;
            let table = lua.create_table()?;
            let mut t = self.next();
            if matches!(t.tok, Tok::ObjEnd) {
                self.depth -= 1;
                return Ok(table);
            }
            loop {
                let Tok::Str(key) = t.tok else {
                    return self.expected("object key string", &t);
                };
                let key = lua.create_string(&key)?;
                let colon = self.next();
                if !matches!(colon.tok, Tok::Colon) {
                    return self.expected("colon", &colon);
                }
                let v = self.next();
                let v = self.value(lua, v, slots + 2)?;
                table.raw_set(key, v)?;
                t = self.next();
                match t.tok {
                    Tok::ObjEnd => {
                        self.depth -= 1;
                        return Ok(table);
                    }
                    Tok::Comma => t = self.next(),
                    _ => return self.expected("comma or object end", &t),
                }
            }
        }

        fn array(&mut self, lua: &Lua, slots: i64) -> Res<Table> {
            self.descend(slots, 2)?;
            let table = lua.create_table()?;
            let mut t = self.next();
            if matches!(t.tok, Tok::ArrEnd) {
                self.depth -= 1;
                return Ok(table);
            }
            for i in 1usize.. {
                let v = self.value(lua, t, slots + 1)?;
                table.raw_set(i, v)?;
                t = self.next();
                match t.tok {
                    Tok::ArrEnd => break,
                    Tok::Comma => t = self.next(),
                    _ => return self.expected("comma or array end", &t),
                }
            }
            self.depth -= 1;
            Ok(table)
        }
    }

    fn decode(lua: &Lua, args: &MultiValue, cfg: Config) -> Res<MultiValue> {
        if args.len() != 1 {
            return Err(bad_arg(lua, 1, "expected 1 argument"));
        }
        let s = check_string(lua, args, 1)?;
        let data = s.as_bytes();
        if data.len() >= 2 && (data[0] == 0 || data[1] == 0) {
            return fail("JSON parser does not support UTF-16 or UTF-32");
        }
        let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
        let mut d = Decoder {
            text: &data[..end],
            at: 0,
            cfg,
            depth: 0,
        };
        let t = d.next();
        let v = d.value(lua, t, 1)?;
        let t = d.next();
        if !matches!(t.tok, Tok::End) {
            return d.expected("the end", &t);
        }
        Ok(one(v))
    }

    /// C's `strtod` on a prefix of `s`: the number and how many bytes it took (`None`: no
    /// number there). Reads decimal and hexadecimal numbers, `inf`, `infinity` and `nan`.
    pub(super) fn strtod(s: &[u8]) -> Option<(f64, usize)> {
        let (neg, i) = match s.first() {
            Some(b'-') => (true, 1),
            Some(b'+') => (false, 1),
            _ => (false, 0),
        };
        let signed = |x: f64| if neg { -x } else { x };
        let rest = &s[i..];
        let word = |w: &[u8]| rest.len() >= w.len() && rest[..w.len()].eq_ignore_ascii_case(w);
        if word(b"infinity") {
            return Some((signed(f64::INFINITY), i + 8));
        }
        if word(b"inf") {
            return Some((signed(f64::INFINITY), i + 3));
        }
        if word(b"nan") {
            let mut used = 3;
            if rest.get(3) == Some(&b'(') {
                let close = rest[4..]
                    .iter()
                    .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
                    .map(|n| n + 4);
                if let Some(c) = close.filter(|&c| rest[c] == b')') {
                    used = c + 1;
                }
            }
            return Some((signed(f64::NAN), i + used));
        }
        if rest.len() > 2
            && rest[0] == b'0'
            && rest[1] | 0x20 == b'x'
            && let Some((x, used)) = hex_float(&rest[2..])
        {
            return Some((signed(x), i + 2 + used));
        }
        let digits = |from: usize| s[from..].iter().take_while(|c| c.is_ascii_digit()).count();
        let mut j = i;
        let whole = digits(j);
        j += whole;
        let mut frac = 0;
        if s.get(j) == Some(&b'.') {
            frac = digits(j + 1);
            j += 1 + frac;
        }
        if whole + frac == 0 {
            return None;
        }
        if matches!(s.get(j), Some(b'e' | b'E')) {
            let mut k = j + 1;
            if matches!(s.get(k), Some(b'+' | b'-')) {
                k += 1;
            }
            let exp = digits(k);
            if exp > 0 {
                j = k + exp;
            }
        }
        let text = std::str::from_utf8(&s[..j]).ok()?;
        Some((text.parse().ok()?, j))
    }

    /// The digits of a hexadecimal number after its `0x`, with an optional binary exponent.
    fn hex_float(s: &[u8]) -> Option<(f64, usize)> {
        let (mut mantissa, mut exp, mut any, mut sticky) = (0u64, 0i64, false, false);
        let mut j = 0;
        let mut after_point = false;
        loop {
            match s.get(j) {
                Some(b'.') if !after_point => after_point = true,
                Some(c) if c.is_ascii_hexdigit() => {
                    any = true;
                    let d = u64::from(char::from(*c).to_digit(16).unwrap_or(0));
                    if mantissa < 1 << 56 {
                        mantissa = mantissa * 16 + d;
                        if after_point {
                            exp -= 4;
                        }
                    } else {
                        sticky |= d != 0;
                        if !after_point {
                            exp += 4;
                        }
                    }
                }
                _ => break,
            }
            j += 1;
        }
        if !any {
            return None;
        }
        if matches!(s.get(j), Some(b'p' | b'P')) {
            let mut k = j + 1;
            let neg = match s.get(k) {
                Some(b'-') => {
                    k += 1;
                    true
                }
                Some(b'+') => {
                    k += 1;
                    false
                }
                _ => false,
            };
            let n = s[k..].iter().take_while(|c| c.is_ascii_digit()).count();
            if n > 0 {
                let e = s[k..k + n]
                    .iter()
                    .fold(0i64, |a, c| (a * 10 + i64::from(c - b'0')).min(1 << 20));
                exp += if neg { -e } else { e };
                j = k + n;
            }
        }
        if sticky {
            mantissa |= 1;
        }
        let mut x = mantissa as f64;
        while exp != 0 && x != 0.0 && x.is_finite() {
            let step = exp.clamp(-1000, 1000);
            x *= 2f64.powi(step as i32);
            exp -= step;
        }
        Some((x, j))
    }
}

#[cfg(test)]
mod tests {
    //! Expected answers are what redis-server 7.0 gave for the same scripts.
    use mlua::{Lua, LuaOptions, StdLib};

    fn state() -> Lua {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::default(),
        )
        .expect("a Lua state");
        super::install(&lua).expect("libraries installed");
        lua
    }

    /// Runs `body` (a chunk ending in `return <string>`), after the helper `hex`.
    fn run(lua: &Lua, body: &str) -> String {
        let prelude = "local function hex(s) return (s:gsub('.', function(c) \
                       return string.format('%02x', c:byte()) end)) end\n";
        lua.load(format!("{prelude}{body}"))
            .set_name("@user_script")
            .eval::<String>()
            .unwrap_or_else(|e| panic!("{body}: {e}"))
    }

    /// Runs the cases in order in one state, on a thread with a stack as large as the one kvs
    /// gives scripts (deep nesting recurses in Rust).
    fn check(cases: &[(&str, &str)]) {
        let cases: Vec<(String, String)> = cases
            .iter()
            .map(|(b, w)| ((*b).to_owned(), (*w).to_owned()))
            .collect();
        let worker = std::thread::Builder::new()
            .stack_size(32 << 20)
            .spawn(move || {
                let lua = state();
                for (body, want) in &cases {
                    assert_eq!(run(&lua, body), *want, "{body}");
                }
            });
        assert!(worker.expect("spawned").join().is_ok());
    }

    #[test]
    fn random_matches_redis_sequence() {
        check(&[
            ("return tostring(math.random())", "0.39646477363839"),
            ("return tostring(math.random())", "0.84048536971234"),
            (
                "math.randomseed(10) return tostring(math.random())",
                "0.87885112309775",
            ),
            ("return tostring(math.random())", "0.7958066229689"),
            (
                "math.randomseed(10) return tostring(math.random()) .. ' ' .. math.random(100)",
                "0.87885112309775 80",
            ),
            (
                "return select(2, pcall(math.random, 0))",
                "bad argument #1 to '?' (interval is empty)",
            ),
            (
                "local ok, e = pcall(function() local r = math.random(3, 2) return r end) return e",
                "user_script:2: bad argument #2 to 'random' (interval is empty)",
            ),
        ]);
    }

    #[test]
    fn cjson_encodes_as_redis() {
        check(&[
            ("return cjson.encode({})", "{}"),
            ("return cjson.encode({1, nil, 3})", "[1,null,3]"),
            (
                "return cjson.encode({a={b={c={1,2,{d='e'}}}}})",
                r#"{"a":{"b":{"c":[1,2,{"d":"e"}]}}}"#,
            ),
            (
                r#"return cjson.encode('a/b"c\\d\n\1\127')"#,
                r#""a\/b\"c\\d\n\u0001\u007f""#,
            ),
            (
                "return cjson.encode(1/3) .. cjson.encode(1e15) .. ' ' .. cjson.encode(-0.0)",
                "0.333333333333331e+15 -0",
            ),
            (
                "return cjson.encode(123456789012345678) .. ' ' .. cjson.encode(0.0001) .. ' ' .. cjson.encode(1e-5)",
                "1.2345678901235e+17 0.0001 1e-05",
            ),
            ("return cjson.encode({[1]=1, [2]=2, [4]=4})", "[1,2,null,4]"),
            ("return cjson.encode({[3e9]=1})", r#"{"3000000000":1}"#),
            ("return cjson.encode(cjson.null)", "null"),
            (
                "return select(2, pcall(cjson.encode, {[20]=1}))",
                "Cannot serialise table: excessively sparse array",
            ),
            (
                "return select(2, pcall(cjson.encode, {[true]=1}))",
                "Cannot serialise boolean: table key must be a number or string",
            ),
            (
                "return select(2, pcall(cjson.encode, 0/0))",
                "Cannot serialise number: must not be NaN or Inf",
            ),
            (
                "local t = {} t.t = t return select(2, pcall(cjson.encode, t))",
                "Cannot serialise, excessive nesting (1001)",
            ),
            (
                "local a = cjson.encode_invalid_numbers('null') local e = cjson.encode({0/0, 1/0}) \
              cjson.encode_invalid_numbers(false) return a .. e",
                "null[null,null]",
            ),
            (
                "local p = cjson.encode_number_precision(3) local e = cjson.encode(3.14159) \
              cjson.encode_number_precision(14) return p .. ' ' .. e",
                "3 3.14",
            ),
            (
                "local ok, e = pcall(function() local r = cjson.encode_max_depth(0) return r end) return e",
                "user_script:2: bad argument #1 to 'encode_max_depth' (expected integer between 1 and 2147483647)",
            ),
        ]);
    }

    #[test]
    fn cjson_decodes_as_redis() {
        check(&[
            (
                r#"return table.concat(cjson.decode("[0.0, -5e3, -1, 0.3e-3, 1023.2, 0e10]"), " ")"#,
                "0 -5000 -1 0.0003 1023.2 0",
            ),
            (
                r#"return cjson.decode('"\\u0041\\u00e9\\ud83d\\ude00\\/"')"#,
                "A\u{e9}\u{1f600}/",
            ),
            (
                "return tostring(cjson.decode('[1,null]')[2] == cjson.null)",
                "true",
            ),
            (
                "return cjson.decode('0x10') + cjson.decode('+5') + cjson.decode('007')",
                "28",
            ),
            ("return tostring(cjson.decode('-Infinity'))", "-inf"),
            (
                "return select(2, pcall(cjson.decode, 'x'))",
                "Expected value but found invalid token at character 1",
            ),
            (
                "return select(2, pcall(cjson.decode, '[1,2'))",
                "Expected comma or array end but found T_END at character 5",
            ),
            (
                "return select(2, pcall(cjson.decode, '{\"a\":1,}'))",
                "Expected object key string but found T_OBJ_END at character 8",
            ),
            (
                r#"return select(2, pcall(cjson.decode, '"\\ud800\\u0041"'))"#,
                "Expected value but found invalid unicode escape code at character 2",
            ),
            (
                "return select(2, pcall(cjson.decode, '\"a\\0b\"'))",
                "Expected value but found unexpected end of string at character 3",
            ),
            (
                "return select(2, pcall(cjson.decode, string.rep('[', 1001)))",
                "Found too many nested data structures (1001) at character 1001",
            ),
            (
                "cjson.decode_invalid_numbers(false) local e = select(2, pcall(cjson.decode, '0x10')) \
              cjson.decode_invalid_numbers(true) return e",
                "Expected value but found invalid number at character 1",
            ),
            (
                "return cjson.encode(cjson.decode('12345678901234567890'))",
                "1.2345678901235e+19",
            ),
        ]);
    }

    #[test]
    fn cmsgpack_packs_as_redis() {
        check(&[
            ("return hex(cmsgpack.pack(0.1))", "cb3fb999999999999a"),
            (
                "return hex(cmsgpack.pack(-1099511627776))",
                "d3ffffff0000000000",
            ),
            (
                "return hex(cmsgpack.pack(0, 127, 128, 256, 65536, 4294967296, -1, -33, -129, -32769, -2147483649))",
                "007fcc80cd0100ce00010000cf0000000100000000ffd0dfd1ff7fd2ffff7fffd3ffffffff7fffffff",
            ),
            (
                "return hex(cmsgpack.pack(1.5, 1/0, 2^63, -2^63))",
                "ca3fc00000ca7f800000ca5f000000d38000000000000000",
            ),
            (
                "return hex(cmsgpack.pack(true, false, nil, {}, {1,2,3}, {a=1}))",
                "c3c2c0909301020381a16101",
            ),
            ("return hex(cmsgpack.pack({1, nil, 3}))", "8201010303"),
            (
                "local a = {x=nil,y=5} local b = {x=a} a['x'] = b return hex(cmsgpack.pack(a))",
                "82a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a178c0",
            ),
            (
                "return select(2, pcall(function() local r = cmsgpack.pack() return r end))",
                "user_script:2: bad argument #0 to 'pack' (MessagePack pack needs input.)",
            ),
        ]);
    }

    #[test]
    fn cmsgpack_unpacks_as_redis() {
        check(&[
            (
                "local a, b, c = cmsgpack.unpack(cmsgpack.pack(1, 'a', {x={1,2}})) return a .. b .. c.x[2]",
                "1a2",
            ),
            (
                "return tostring(cmsgpack.unpack('\\207\\255\\255\\255\\255\\255\\255\\255\\255'))",
                "-1",
            ),
            (
                "return table.concat({cmsgpack.unpack('\\208\\128\\209\\128\\0\\204\\200\\255\\224')}, ' ')",
                "-128 -32768 200 -1 -32",
            ),
            (
                "return table.concat({cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), 1)}, ' ')",
                "2 2",
            ),
            (
                "return table.concat({cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2, 1)}, ' ')",
                "-1 2 3",
            ),
            (
                "return table.concat({cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 0, 1)}, ' ')",
                "1",
            ),
            (
                "return select(2, pcall(cmsgpack.unpack, '\\193'))",
                "Bad data format in input.",
            ),
            (
                "return select(2, pcall(cmsgpack.unpack, '\\221\\255\\255\\255\\255\\1'))",
                "Missing bytes in input.",
            ),
            (
                "return select(2, pcall(cmsgpack.unpack, '\\219\\255\\255\\255\\255abc'))",
                "Missing bytes in input.",
            ),
            (
                "return select(2, pcall(cmsgpack.unpack, '\\129\\192\\1'))",
                "table index is nil",
            ),
            (
                "return select(2, pcall(cmsgpack.unpack_one, 'abc', 4))",
                "Start offset 4 greater than input length 3.",
            ),
            (
                "return select(2, pcall(cmsgpack.unpack_limit, 'abc', -1))",
                "Invalid request to unpack with offset of 0 and limit of 3.",
            ),
        ]);
    }

    #[test]
    fn bit_as_redis() {
        check(&[
            (
                "return table.concat({bit.tobit(2^32), bit.tobit(2^31), bit.tobit(0xffffffff), bit.tobit(1.5), bit.tobit(2.5), bit.tobit('0x10')}, ' ')",
                "0 -2147483648 -1 2 2 16",
            ),
            (
                "return table.concat({bit.band(0xff, 0x0f, 0x3), bit.bor(1,2,4,8,16,32,64,128), bit.bxor(5, 3, 1), bit.bnot(5)}, ' ')",
                "3 255 7 -6",
            ),
            (
                "return table.concat({bit.lshift(1, 31), bit.lshift(1, 33), bit.rshift(-1, 28), bit.arshift(-256, 4)}, ' ')",
                "-2147483648 2 15 -16",
            ),
            (
                "return table.concat({bit.rol(0x12345678, 4), bit.ror(0x12345678, 4), bit.bswap(0x12345678)}, ' ')",
                "591751041 -2128394905 2018915346",
            ),
            (
                "return bit.tohex(-1) .. bit.tohex(255, -2) .. bit.tohex(0x12345678, -20) .. bit.tohex(1, -2147483648)",
                "ffffffffFF1234567800000001",
            ),
            (
                "return select(2, pcall(function() local r = bit.band(1, nil, 2) return r end))",
                "user_script:2: bad argument #2 to 'band' (number expected, got nil)",
            ),
        ]);
    }

    #[test]
    fn struct_as_redis() {
        check(&[
            (
                "return hex(struct.pack('bBhHlLTiI', -1, 255, -2, 65535, -3, 7, 8, -4, 9))",
                "fffffefffffffdffffffffffffff07000000000000000800000000000000fcffffff09000000",
            ),
            (
                "return hex(struct.pack('>I16', -1)) .. ' ' .. hex(struct.pack('>i3', 0x123456))",
                "0000000000000000ffffffffffffffff 123456",
            ),
            (
                "return hex(struct.pack('!4 b i', 1, 2)) .. ' ' .. hex(struct.pack('<f', 0.1)) .. ' ' .. hex(struct.pack('s', 'ab'))",
                "0100000002000000 cdcccc3d 616200",
            ),
            (
                "return hex(struct.pack('>i8', 0/0)) .. ' ' .. hex(struct.pack('>I8', 2^64))",
                "8000000000000000 0000000000000000",
            ),
            (
                "return table.concat({struct.unpack('<i2 >i2 B b', '\\255\\255\\255\\254\\200\\200')}, ' ')",
                "-1 -2 200 -56 7",
            ),
            (
                "return table.concat({struct.unpack('c1 c0', '2abcdef')}, ' ')",
                "ab 4",
            ),
            (
                "return table.concat({struct.unpack('i9', string.rep('\\255', 9))}, ' ')",
                "-1 10",
            ),
            (
                "return struct.size('i4 b h !4 d') .. ' ' .. struct.size('z q 5')",
                "16 0",
            ),
            (
                "return select(2, pcall(function() local r = struct.pack('c5', 'abc') return r end))",
                "user_script:2: bad argument #3 to 'pack' (string too short)",
            ),
            (
                "return select(2, pcall(function() local r = struct.pack('i') return r end))",
                "user_script:2: bad argument #2 to 'pack' (number expected, got nil)",
            ),
            (
                "return select(2, pcall(struct.unpack, 'i4', 'abcdefgh', -1))",
                "bad argument #2 to '?' (data string too short)",
            ),
            (
                "return select(2, pcall(struct.pack, 'i33', 1))",
                "integral size 33 is larger than limit of 32",
            ),
            (
                "return select(2, pcall(struct.unpack, 's', 'abc'))",
                "unfinished string in data",
            ),
        ]);
    }

    #[test]
    fn deep_input_is_refused_not_overflowed() {
        check(&[
            (
                "cjson.decode_max_depth(100000) local ok, e = pcall(cjson.decode, string.rep('[', 100000)) \
                  cjson.decode_max_depth(1000) return e",
                "Found too many nested data structures (2001) at character 2001",
            ),
            (
                "cjson.encode_max_depth(100000) local t = {} t.t = t local ok, e = pcall(cjson.encode, t) \
                  cjson.encode_max_depth(1000) return e",
                "Cannot serialise, excessive nesting (2001)",
            ),
            (
                "return select(2, pcall(cmsgpack.unpack, string.rep('\\145', 100000)))",
                "stack overflow (in function mp_decode_to_lua_array)",
            ),
            (
                "return select(2, pcall(cmsgpack.unpack, string.rep('\\129\\1', 100000)))",
                "stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)",
            ),
            (
                "return type(cmsgpack.unpack(string.rep('\\145', 1990) .. '\\1'))",
                "table",
            ),
        ]);
    }
}
