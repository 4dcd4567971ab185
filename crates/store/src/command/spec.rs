//! What kvs declares about each command, in Redis's own terms: names and arity, flags, key
//! positions, ACL categories, group and a one-line summary. Every command's file declares its
//! specs beside its code; dispatch, `COMMAND`, MULTI's rules and the refusal of writes while the
//! log is down are all read from them (see [`super::table`]).
//!
//! The facts follow redis-server 7.0's own command table (`COMMAND INFO`, `COMMAND DOCS`), so
//! clients that read the table (redis-cli's hints, cluster-aware clients finding keys) see what
//! they expect; `server/tests/command_table.rs` compares the two.

use bytes::Bytes;

/// A command flag, as `COMMAND INFO` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flag {
    Write,
    Readonly,
    Denyoom,
    Admin,
    Pubsub,
    Noscript,
    Blocking,
    Loading,
    Stale,
    SkipMonitor,
    SkipSlowlog,
    Fast,
    NoAuth,
    MayReplicate,
    NoMulti,
    AllowBusy,
    NoAsyncLoading,
    NoMandatoryKeys,
}

impl Flag {
    /// The name `COMMAND INFO` shows.
    pub fn name(self) -> &'static str {
        match self {
            Flag::Write => "write",
            Flag::Readonly => "readonly",
            Flag::Denyoom => "denyoom",
            Flag::Admin => "admin",
            Flag::Pubsub => "pubsub",
            Flag::Noscript => "noscript",
            Flag::Blocking => "blocking",
            Flag::Loading => "loading",
            Flag::Stale => "stale",
            Flag::SkipMonitor => "skip_monitor",
            Flag::SkipSlowlog => "skip_slowlog",
            Flag::Fast => "fast",
            Flag::NoAuth => "no_auth",
            Flag::MayReplicate => "may_replicate",
            Flag::NoMulti => "no_multi",
            Flag::AllowBusy => "allow_busy",
            Flag::NoAsyncLoading => "no_async_loading",
            Flag::NoMandatoryKeys => "no_mandatory_keys",
        }
    }
}

/// An ACL category, as `COMMAND INFO` and `ACL CAT` name it (without the `@`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    Keyspace,
    Read,
    Write,
    Set,
    SortedSet,
    List,
    Hash,
    String,
    Bitmap,
    HyperLogLog,
    Geo,
    Stream,
    Pubsub,
    Admin,
    Fast,
    Slow,
    Blocking,
    Dangerous,
    Connection,
    Transaction,
    Scripting,
}

impl Category {
    /// Every category, in the order `ACL CAT` lists them.
    pub const ALL: &'static [Category] = &[
        Category::Keyspace,
        Category::Read,
        Category::Write,
        Category::Set,
        Category::SortedSet,
        Category::List,
        Category::Hash,
        Category::String,
        Category::Bitmap,
        Category::HyperLogLog,
        Category::Geo,
        Category::Stream,
        Category::Pubsub,
        Category::Admin,
        Category::Fast,
        Category::Slow,
        Category::Blocking,
        Category::Dangerous,
        Category::Connection,
        Category::Transaction,
        Category::Scripting,
    ];

    /// The category's name, without the `@`.
    pub fn name(self) -> &'static str {
        match self {
            Category::Keyspace => "keyspace",
            Category::Read => "read",
            Category::Write => "write",
            Category::Set => "set",
            Category::SortedSet => "sortedset",
            Category::List => "list",
            Category::Hash => "hash",
            Category::String => "string",
            Category::Bitmap => "bitmap",
            Category::HyperLogLog => "hyperloglog",
            Category::Geo => "geo",
            Category::Stream => "stream",
            Category::Pubsub => "pubsub",
            Category::Admin => "admin",
            Category::Fast => "fast",
            Category::Slow => "slow",
            Category::Blocking => "blocking",
            Category::Dangerous => "dangerous",
            Category::Connection => "connection",
            Category::Transaction => "transaction",
            Category::Scripting => "scripting",
        }
    }
}

/// Where a command's keys are among its arguments (positions count the name as 0).
#[derive(Clone, Copy, Debug)]
pub enum KeySpec {
    /// The command names no key.
    None,
    /// Keys at `first`, `first + step`, ... up to `last` (negative: counted from the end, -1 the
    /// last argument), as `COMMAND INFO`'s first/last/step.
    Range { first: i64, last: i64, step: i64 },
    /// Keys found by a function of the whole request (commands with a `numkeys` argument), with
    /// the first/last/step `COMMAND INFO` shows for them.
    Find {
        shown: (i64, i64, i64),
        find: fn(&[Bytes]) -> Vec<usize>,
    },
}

impl KeySpec {
    /// Keys from position 1 to the last argument.
    pub const ALL_ARGS: KeySpec = KeySpec::Range {
        first: 1,
        last: -1,
        step: 1,
    };
    /// The one key at position 1.
    pub const FIRST: KeySpec = KeySpec::Range {
        first: 1,
        last: 1,
        step: 1,
    };

    /// first, last and step as `COMMAND INFO` shows them.
    pub fn shown(&self) -> (i64, i64, i64) {
        match *self {
            KeySpec::None => (0, 0, 0),
            KeySpec::Range { first, last, step } => (first, last, step),
            KeySpec::Find { shown, .. } => shown,
        }
    }

    /// The positions of the keys in `argv` (the name included at 0), as `COMMAND GETKEYS` gives
    /// them. Positions past the end are left out.
    pub fn positions(&self, argv: &[Bytes]) -> Vec<usize> {
        match *self {
            KeySpec::None => Vec::new(),
            KeySpec::Find { find, .. } => find(argv),
            KeySpec::Range { first, last, step } => {
                let n = argv.len() as i64;
                let last = if last < 0 { n + last } else { last.min(n - 1) };
                if first < 1 || step < 1 || first > last {
                    return Vec::new();
                }
                (first..=last)
                    .step_by(step as usize)
                    .map(|i| i as usize)
                    .collect()
            }
        }
    }
}

/// How a command uses one of its keys, in the terms ACL key permissions check (`%R~`, `%W~`):
/// `read` when it returns or uses the key's data (Redis's `access` key flag), `write` when it
/// creates, changes or deletes it (`insert`, `update` or `delete`). A command that only looks at
/// the key's existence, type or metadata does neither, and any key pattern lets it through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Access {
    pub read: bool,
    pub write: bool,
}

impl Access {
    pub const NONE: Access = Access {
        read: false,
        write: false,
    };
    pub const READ: Access = Access {
        read: true,
        write: false,
    };
    pub const WRITE: Access = Access {
        read: false,
        write: true,
    };
    pub const READ_WRITE: Access = Access {
        read: true,
        write: true,
    };
}

/// How a command uses each key [`KeySpec::positions`] finds, as `COMMAND GETKEYSANDFLAGS` shows.
#[derive(Clone, Copy, Debug)]
pub enum KeyAccess {
    /// Every key alike.
    Each(Access),
    /// The first key one way, every later key the other (RENAME, COPY: source, destination).
    FirstThenRest(Access, Access),
    /// Every key alike, as the arguments decide (SET with GET also reads the old value).
    Decide(fn(&[Bytes]) -> Access),
}

impl KeyAccess {
    /// The access to the `index`-th key of the request `argv`.
    pub fn of(&self, argv: &[Bytes], index: usize) -> Access {
        match *self {
            KeyAccess::Each(access) => access,
            KeyAccess::FirstThenRest(first, rest) => {
                if index == 0 {
                    first
                } else {
                    rest
                }
            }
            KeyAccess::Decide(decide) => decide(argv),
        }
    }
}

/// Everything kvs declares about one command name.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// Lowercase, as `COMMAND` lists it (`client|list` for a subcommand).
    pub name: &'static str,
    /// Arguments including the name; negative: at least that many.
    pub arity: i32,
    pub flags: &'static [Flag],
    pub categories: &'static [Category],
    pub keys: KeySpec,
    /// How the command uses those keys.
    pub access: KeyAccess,
    /// Redis's group: `string`, `generic`, `server`, `connection`, `transactions`, ...
    pub group: &'static str,
    pub summary: &'static str,
    /// A valid request, for the tests that check the table against the parser.
    pub example: &'static str,
    /// For a container command (CLIENT, CONFIG, COMMAND, OBJECT): its subcommands.
    pub subcommands: &'static [Spec],
}

impl Spec {
    /// A spec with no flags, categories, keys or subcommands, to fill in with `..`.
    pub const BLANK: Spec = Spec {
        name: "",
        arity: 1,
        flags: &[],
        categories: &[],
        keys: KeySpec::None,
        access: KeyAccess::Each(Access::NONE),
        group: "",
        summary: "",
        example: "",
        subcommands: &[],
    };

    /// A data command's spec, every key used alike, in one line.
    #[allow(clippy::too_many_arguments)]
    pub(crate) const fn data(
        name: &'static str,
        arity: i32,
        flags: &'static [Flag],
        categories: &'static [Category],
        keys: KeySpec,
        access: Access,
        group: &'static str,
        summary: &'static str,
        example: &'static str,
    ) -> Spec {
        Spec {
            name,
            arity,
            flags,
            categories,
            keys,
            access: KeyAccess::Each(access),
            group,
            summary,
            example,
            subcommands: &[],
        }
    }

    /// Whether the spec has `flag`.
    pub fn has(&self, flag: Flag) -> bool {
        self.flags.contains(&flag)
    }

    /// The spec that describes the request `argv` (the name at 0): for a container (CLIENT,
    /// OBJECT, ...) the subcommand `argv[1]` names, if it has one by that name; otherwise this.
    pub fn describing(&self, argv: &[Bytes]) -> &Spec {
        self.subcommand(argv).unwrap_or(self)
    }

    /// The subcommand `argv[1]` names, for a container; `None` for a plain command, a request
    /// without a subcommand, or a name the container does not have.
    pub fn subcommand(&self, argv: &[Bytes]) -> Option<&Spec> {
        let sub = argv.get(1)?;
        self.subcommands.iter().find(|s| {
            s.name
                .split_once('|')
                .is_some_and(|(_, name)| name.as_bytes().eq_ignore_ascii_case(sub))
        })
    }

    /// Whether `args` arguments (the name included) fit the arity.
    pub fn arity_allows(&self, args: usize) -> bool {
        let arity = self.arity.unsigned_abs() as usize;
        if self.arity < 0 {
            args >= arity
        } else {
            args == arity
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    #[test]
    fn key_positions_follow_first_last_step() {
        assert_eq!(KeySpec::FIRST.positions(&argv("GET k")), [1]);
        assert_eq!(KeySpec::ALL_ARGS.positions(&argv("DEL a b c")), [1, 2, 3]);
        let pairs = KeySpec::Range {
            first: 1,
            last: -1,
            step: 2,
        };
        assert_eq!(pairs.positions(&argv("MSET a 1 b 2")), [1, 3]);
        let two = KeySpec::Range {
            first: 1,
            last: 2,
            step: 1,
        };
        assert_eq!(two.positions(&argv("COPY a b REPLACE")), [1, 2]);
        assert_eq!(two.positions(&argv("COPY a")), [1]);
        assert!(KeySpec::None.positions(&argv("PING")).is_empty());
    }

    #[test]
    fn arity_counts_the_name_and_negative_means_at_least() {
        let get = Spec {
            arity: 2,
            ..Spec::BLANK
        };
        assert!(get.arity_allows(2) && !get.arity_allows(1) && !get.arity_allows(3));
        let del = Spec {
            arity: -2,
            ..Spec::BLANK
        };
        assert!(del.arity_allows(2) && del.arity_allows(9) && !del.arity_allows(1));
    }
}
