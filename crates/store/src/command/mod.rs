//! Commands are values: a front door builds one, the store applies it, a [`Reply`] comes back.
//! One command per file, each with its spec (names, arity, flags, keys, ACL categories; see
//! [`spec`]), its parse, its apply and its tests. This file is the command table: adding a
//! command is its file plus one line in [`command_table!`] below; the `Command` enum, dispatch,
//! the key and write queries and the name index are all generated from that line.

mod coll;
mod execute;
mod parse;
pub mod spec;
mod table;

pub use execute::{Applied, Watched};
pub use parse::int as parse_integer;
pub use table::{data_spec, data_spec_lowercase, data_specs};

use crate::access::Keyspace;
use crate::entry::Millis;
use crate::error::CommandError;
use crate::packed::EntryRef;
use crate::reply::Reply;
use parse::Args;
use spec::{Flag, Spec};

/// What each command file declares besides its struct and `apply`.
pub(crate) trait Definition: Sized {
    /// The names the command answers to over the Redis protocol, with their facts. Empty for a
    /// command only the HTTP and line front doors build.
    const SPECS: &'static [Spec];
    /// Whether the command may change the keyspace: a server that cannot record changes refuses
    /// these and still serves the rest. Read from the specs' `write` flag.
    const WRITES: bool = has_flag(Self::SPECS, Flag::Write);
    /// Whether the command may need memory: over the memory limit, a server refuses these (with
    /// Redis's OOM error) unless it can evict. Read from the specs' `denyoom` flag.
    const DENYOOM: bool = has_flag(Self::SPECS, Flag::Denyoom);

    /// Parses a request's arguments (after the name, whose arity was already checked).
    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        Err(CommandError::unknown(a.cmd.as_bytes(), a.args))
    }

    /// The keys the command touches, so a transaction can lock their shards up front; `None`
    /// when it touches the whole keyspace.
    fn keys(&self) -> Option<Vec<&[u8]>>;

    /// For a blocking form (BLPOP, BZPOPMIN, BLMOVE, ...): how many seconds it waits when it
    /// finds nothing (0: forever). The store never waits; it answers nil, and the server waits.
    fn block_timeout(&self) -> Option<f64> {
        None
    }
}

/// Whether any of `specs` has `flag`.
const fn has_flag(specs: &[Spec], flag: Flag) -> bool {
    let mut i = 0;
    while i < specs.len() {
        let mut j = 0;
        while j < specs[i].flags.len() {
            if specs[i].flags[j] as u8 == flag as u8 {
                return true;
            }
            j += 1;
        }
        i += 1;
    }
    false
}

/// How the table parses a request by one of a command's names.
pub(crate) type Parser = fn(&Args<'_>) -> Result<Command, CommandError>;

/// Declares every command file (`file => Variant(Type)`), and generates from that one list the
/// modules, the `Command` enum, its dispatch and the table of specs and parsers.
macro_rules! command_table {
    ($($file:ident => $variant:ident($ty:ident),)*) => {
        $(mod $file; pub use $file::*;)*

        /// Every operation the store understands.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Command {
            $($variant($ty),)*
        }

        impl Command {
            /// Applies the command at time `now`, on a call's handle or inside a transaction.
            pub fn apply<K: Keyspace>(self, ks: &K, now: Millis) -> Reply {
                match self {
                    $(Command::$variant(c) => c.apply(ks, now),)*
                }
            }

            /// Whether the command may change the keyspace (its specs' `write` flag).
            pub fn writes(&self) -> bool {
                match self {
                    $(Command::$variant(_) => <$ty as Definition>::WRITES,)*
                }
            }

            /// Whether the command may need memory (its specs' `denyoom` flag).
            pub fn denyoom(&self) -> bool {
                match self {
                    $(Command::$variant(_) => <$ty as Definition>::DENYOOM,)*
                }
            }

            /// For a blocking form, how many seconds it waits when it finds nothing (0: forever).
            pub fn block_timeout(&self) -> Option<f64> {
                match self {
                    $(Command::$variant(c) => Definition::block_timeout(c),)*
                }
            }

            /// The keys this command touches; `None` when it touches the whole keyspace
            /// (listing, counting, KEYS, FLUSHALL, RANDOMKEY, SCAN).
            pub fn keys(&self) -> Option<Vec<&[u8]>> {
                match self {
                    $(Command::$variant(c) => Definition::keys(c),)*
                }
            }
        }

        /// Each command file's specs, with the parser for its names.
        pub(crate) const TABLE: &[(&[Spec], Parser)] = &[
            $((<$ty as Definition>::SPECS, |a| {
                <$ty as Definition>::from_args(a).map(Command::$variant)
            }),)*
        ];
    };
}

command_table! {
    get => Get(Get),
    set => Set(Set),
    delete => Delete(Delete),
    expire => Expire(Expire),
    list => List(List),
    count => Count(Count),
    getdel => GetDel(GetDel),
    getex => GetEx(GetEx),
    append => Append(Append),
    strlen => Strlen(Strlen),
    getrange => GetRange(GetRange),
    setrange => SetRange(SetRange),
    incr => IncrBy(IncrBy),
    incrbyfloat => IncrByFloat(IncrByFloat),
    mget => MGet(MGet),
    mset => MSet(MSet),
    del => Del(Del),
    exists => Exists(Exists),
    expire_if => ExpireIf(ExpireIf),
    ttl => Ttl(Ttl),
    persist => Persist(Persist),
    type_of => TypeOf(TypeOf),
    flush => Flush(Flush),
    keys => Keys(Keys),
    rename => Rename(Rename),
    copy => Copy(Copy),
    randomkey => RandomKey(RandomKey),
    object => Object(Object),
    scan => Scan(Scan),
    setbit => SetBit(SetBit),
    getbit => GetBit(GetBit),
    bitcount => BitCount(BitCount),
    bitpos => BitPos(BitPos),
    bitop => BitOp(BitOp),
    bitfield => BitField(BitField),
    bitfield_ro => BitFieldRo(BitFieldRo),
    lcs => Lcs(Lcs),
    hset => HSet(HSet),
    hget => HGet(HGet),
    hdel => HDel(HDel),
    card => Card(Card),
    hgetall => HGetAll(HGetAll),
    hincrby => HIncrBy(HIncrBy),
    hrandfield => RandField(RandField),
    collscan => CollScan(CollScan),
    push => Push(Push),
    pop => Pop(Pop),
    lrange => LRange(LRange),
    lindex => LIndex(LIndex),
    lset => LSet(LSet),
    linsert => LInsert(LInsert),
    lrem => LRem(LRem),
    ltrim => LTrim(LTrim),
    lpos => LPos(LPos),
    lmove => LMove(LMove),
    lmpop => MPop(MPop),
    sadd => SAdd(SAdd),
    sismember => SIsMember(SIsMember),
    smembers => SMembers(SMembers),
    spop => SPop(SPop),
    smove => SMove(SMove),
    setop => SetOp(SetOp),
    setopstore => SetOpStore(SetOpStore),
    zadd => ZAdd(ZAdd),
    zscore => ZLookup(ZLookup),
    zrange => ZRange(ZRange),
    zrangestore => ZRangeStore(ZRangeStore),
    zrem => ZRem(ZRem),
    zpop => ZPop(ZPop),
    zsetop => ZSetOp(ZSetOp),
    zsetopstore => ZSetOpStore(ZSetOpStore),
    sort => Sort(Sort),
    sort_ro => SortRo(SortRo),
    xadd => XAdd(XAdd),
    xtrim => XTrim(XTrim),
    xdel => XDel(XDel),
    xrange => XRange(XRange),
    xread => XRead(XRead),
    xsetid => XSetId(XSetId),
    xinfo => XInfo(XInfo),
}

/// When a write may take effect, judged against the key's live entry under its shard lock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Condition {
    /// Always.
    #[default]
    Always,
    /// Only when the key does not exist (HTTP `If-None-Match: *`, Redis `NX`).
    IfAbsent,
    /// Only when the key exists (Redis `XX`).
    IfPresent,
    /// Only when the key exists with exactly this version (HTTP `If-Match`).
    IfVersion(u64),
}

impl Condition {
    /// Whether the condition holds for the key's current live entry.
    pub fn holds(self, current: Option<EntryRef<'_>>) -> bool {
        match self {
            Condition::Always => true,
            Condition::IfAbsent => current.is_none(),
            Condition::IfPresent => current.is_some(),
            Condition::IfVersion(v) => current.is_some_and(|e| e.version == v),
        }
    }
}
