//! Between Lua values and RESP frames, by Redis's rules: what a command run by a script gives
//! the script, and what a script's return value answers the client.

use bytes::Bytes;
use kvs_protocol::resp::Frame;
use mlua::{Lua, Table, Value};

/// How deep a returned value may nest before its innermost part is replaced by an error, as
/// Redis replaces what runs past Lua's stack.
const MAX_DEPTH: usize = 500;

/// A command's reply as the script sees it: with `resp3` (after `redis.setresp(3)`) nulls are
/// `nil` and maps, sets, doubles and booleans keep their RESP3 form; otherwise they are given
/// in their RESP2 shape (a null is `false`).
pub(crate) fn to_lua(lua: &Lua, frame: Frame, resp3: bool) -> mlua::Result<Value> {
    Ok(match frame {
        Frame::Simple(text) => one(lua, "ok", Value::String(lua.create_string(&text)?))?,
        Frame::Error(text) => one(lua, "err", Value::String(lua.create_string(&text)?))?,
        Frame::Integer(n) => Value::Number(n as f64),
        Frame::Bulk(bytes) => Value::String(lua.create_string(&bytes)?),
        Frame::Null | Frame::NullArray if resp3 => Value::Nil,
        Frame::Null | Frame::NullArray => Value::Boolean(false),
        Frame::Array(items) | Frame::Push(items) | Frame::Many(items) => {
            sequence(lua, items, resp3)?
        }
        Frame::Set(items) if resp3 => {
            let set = lua.create_table()?;
            for item in items {
                set.raw_set(to_lua(lua, item, resp3)?, true)?;
            }
            one(lua, "set", Value::Table(set))?
        }
        Frame::Set(items) => sequence(lua, items, resp3)?,
        Frame::Map(pairs) | Frame::Grouped(pairs) if resp3 => {
            let map = lua.create_table()?;
            for (k, v) in pairs {
                map.raw_set(to_lua(lua, k, resp3)?, to_lua(lua, v, resp3)?)?;
            }
            one(lua, "map", Value::Table(map))?
        }
        Frame::Grouped(pairs) => nested(lua, pairs, resp3)?,
        Frame::Pairs(pairs) if resp3 => nested(lua, pairs, resp3)?,
        Frame::Map(pairs) | Frame::Pairs(pairs) => {
            let flat = pairs.into_iter().flat_map(|(k, v)| [k, v]).collect();
            sequence(lua, flat, resp3)?
        }
        Frame::Double(d) if resp3 => one(lua, "double", Value::Number(d))?,
        Frame::Double(d) => Value::String(lua.create_string(kvs_store::format_double(d))?),
        Frame::Boolean(b) if resp3 => Value::Boolean(b),
        Frame::Boolean(b) => Value::Number(if b { 1.0 } else { 0.0 }),
        Frame::Verbatim { format, text } if resp3 => {
            let inner = lua.create_table()?;
            inner.raw_set("format", lua.create_string(format)?)?;
            inner.raw_set("string", lua.create_string(&text)?)?;
            one(lua, "verbatim_string", Value::Table(inner))?
        }
        Frame::Verbatim { text, .. } => Value::String(lua.create_string(&text)?),
        Frame::BigNumber(digits) if resp3 => one(
            lua,
            "big_number",
            Value::String(lua.create_string(&digits)?),
        )?,
        Frame::BigNumber(digits) => Value::String(lua.create_string(&digits)?),
    })
}

fn one(lua: &Lua, field: &str, value: Value) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(field, value)?;
    Ok(Value::Table(t))
}

/// Pairs as a sequence of two-element tables.
fn nested(lua: &Lua, pairs: Vec<(Frame, Frame)>, resp3: bool) -> mlua::Result<Value> {
    let list = pairs
        .into_iter()
        .map(|(k, v)| Frame::Array(vec![k, v]))
        .collect();
    sequence(lua, list, resp3)
}

fn sequence(lua: &Lua, items: Vec<Frame>, resp3: bool) -> mlua::Result<Value> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.into_iter().enumerate() {
        t.raw_set(i + 1, to_lua(lua, item, resp3)?)?;
    }
    Ok(Value::Table(t))
}

/// A script's return value as the reply to its client. `resp3` is the protocol the script chose
/// with `redis.setresp`: it decides what `false` is (a null under 2, RESP3's false under 3); the
/// frame is then written in the client's own protocol.
pub(crate) fn to_frame(value: &Value, resp3: bool) -> Frame {
    frame_at(value, resp3, 0)
}

fn frame_at(value: &Value, resp3: bool, depth: usize) -> Frame {
    if depth > MAX_DEPTH {
        return Frame::err("reached lua stack limit");
    }
    match value {
        Value::String(s) => Frame::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Integer(n) => Frame::Integer(*n),
        Value::Number(n) => Frame::Integer(truncate(*n)),
        Value::Boolean(true) if resp3 => Frame::Boolean(true),
        Value::Boolean(true) => Frame::Integer(1),
        Value::Boolean(false) if resp3 => Frame::Boolean(false),
        Value::Table(t) => table_frame(t, resp3, depth),
        _ => Frame::Null,
    }
}

/// A Lua number as C's cast to `long long` makes it: toward zero, saturating.
fn truncate(n: f64) -> i64 {
    if n.is_nan() { 0 } else { n.trunc() as i64 }
}

fn text_field(t: &Table, name: &str) -> Option<mlua::LuaString> {
    match t.raw_get::<Value>(name) {
        Ok(Value::String(s)) => Some(s),
        _ => None,
    }
}

/// Newlines in a status or error would break the reply: Redis writes them as spaces.
fn one_line(s: &mlua::LuaString) -> String {
    String::from_utf8_lossy(&s.as_bytes()).replace(['\r', '\n'], " ")
}

fn table_frame(t: &Table, resp3: bool, depth: usize) -> Frame {
    if let Some(err) = text_field(t, "err") {
        return Frame::Error(one_line(&err));
    }
    if let Some(ok) = text_field(t, "ok") {
        return Frame::Simple(one_line(&ok));
    }
    if let Ok(Value::Number(d)) = t.raw_get::<Value>("double") {
        return Frame::Double(d);
    }
    if let Ok(Value::Integer(d)) = t.raw_get::<Value>("double") {
        return Frame::Double(d as f64);
    }
    if let Some(digits) = text_field(t, "big_number") {
        return Frame::BigNumber(one_line(&digits));
    }
    if let Ok(Value::Table(v)) = t.raw_get::<Value>("verbatim_string")
        && let (Some(format), Some(text)) = (text_field(&v, "format"), text_field(&v, "string"))
    {
        let mut f = *b"txt";
        for (slot, b) in f.iter_mut().zip(format.as_bytes().iter()) {
            *slot = *b;
        }
        return Frame::Verbatim {
            format: f,
            text: Bytes::copy_from_slice(&text.as_bytes()),
        };
    }
    if let Ok(Value::Table(map)) = t.raw_get::<Value>("map") {
        let pairs = map
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, v)| {
                (
                    frame_at(&k, resp3, depth + 1),
                    frame_at(&v, resp3, depth + 1),
                )
            })
            .collect();
        return Frame::Map(pairs);
    }
    if let Ok(Value::Table(set)) = t.raw_get::<Value>("set") {
        let members = set
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, _)| frame_at(&k, resp3, depth + 1))
            .collect();
        return Frame::Set(members);
    }
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(frame_at(&v, resp3, depth + 1)),
        }
    }
    Frame::Array(items)
}
