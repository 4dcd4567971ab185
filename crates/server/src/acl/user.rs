//! One ACL user, changed by Redis's rule words (`on`, `>secret`, `~app:*`, `+@read`, ...) and
//! described back in them, as `ACL LIST`, `ACL GETUSER` and the ACL file show users.

use bytes::Bytes;
use kvs_store::{Access, Category, Flag, Spec, glob_match};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::catalog::{Catalog, catalog, category};

/// A password as stored: its SHA-256, never the password itself.
pub(crate) type Hash = [u8; 32];

/// SHA-256 of `password`.
pub(crate) fn hash(password: &[u8]) -> Hash {
    Sha256::digest(password).into()
}

fn hex(hash: &Hash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// A `#`/`!` rule's hash: exactly 64 lowercase hex digits.
fn parse_hex(text: &str) -> Option<Hash> {
    if text.len() != 64
        || !text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A key pattern with the access it grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyPattern {
    pub(crate) pattern: String,
    pub(crate) read: bool,
    pub(crate) write: bool,
}

impl KeyPattern {
    fn describe(&self) -> String {
        match (self.read, self.write) {
            (true, false) => format!("%R~{}", self.pattern),
            (false, true) => format!("%W~{}", self.pattern),
            _ => format!("~{}", self.pattern),
        }
    }

    /// Whether this pattern may grant reading some key that starts with `prefix`: the part of
    /// the pattern before its first wildcard and `prefix` agree as far as both go.
    fn may_read_under(&self, prefix: &[u8]) -> bool {
        let pattern = self.pattern.as_bytes();
        let literal = pattern
            .iter()
            .position(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
            .map_or(pattern, |i| &pattern[..i]);
        let n = literal.len().min(prefix.len());
        self.read
            && literal[..n] == prefix[..n]
            && (literal.len() < pattern.len() || literal.len() >= prefix.len())
    }

    fn grants(&self, need: Access, key: &[u8]) -> bool {
        (self.read || !need.read)
            && (self.write || !need.write)
            && glob_match(self.pattern.as_bytes(), key, false)
    }
}

/// What a user may run and touch (Redis's root selector).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Selector {
    /// A bit per catalog entry: the command (or subcommand) may run.
    allowed: Vec<bool>,
    /// Set by `+@all`/`allcommands`: commands the table gains later are allowed too.
    all_commands: bool,
    /// The command rules that made `allowed` after the `+@all`/`-@all` start, as given,
    /// without the earlier rules a later one fully overrides.
    rules: Vec<String>,
    all_keys: bool,
    keys: Vec<KeyPattern>,
    all_channels: bool,
    channels: Vec<String>,
}

impl Selector {
    fn new(catalog: &Catalog) -> Self {
        Self {
            allowed: vec![false; catalog.len()],
            all_commands: false,
            rules: Vec::new(),
            all_keys: false,
            keys: Vec::new(),
            all_channels: false,
            channels: Vec::new(),
        }
    }

    fn set_all(&mut self, on: bool) {
        self.allowed.iter_mut().for_each(|a| *a = on);
        self.all_commands = on;
        self.rules.clear();
    }

    /// Sets an entry, and for a container every subcommand.
    fn set_command(&mut self, catalog: &Catalog, index: usize, on: bool) {
        self.allowed[index] = on;
        for &child in &catalog.entries[index].children {
            self.allowed[child] = on;
        }
    }

    fn set_category(&mut self, catalog: &Catalog, category: Category, on: bool) {
        for (i, entry) in catalog.entries.iter().enumerate() {
            if entry.is_in(category) {
                self.allowed[i] = on;
            }
        }
    }

    /// Records `rule` (a `+`/`-` command or category rule), dropping the earlier ones it
    /// overrides: the same target, or for a container, its subcommands too.
    fn remember(&mut self, rule: String) {
        let target = &rule[1..];
        let container_prefix = format!("{target}|");
        self.rules
            .retain(|old| old[1..] != *target && !old[1..].starts_with(&container_prefix));
        self.rules.push(rule);
    }

    /// Applies one command, key or channel rule; `None` if `rule` is none of those.
    fn apply(&mut self, rule: &str) -> Option<Result<(), String>> {
        let catalog = catalog();
        let unknown = || Err("Unknown command or category name in ACL".to_owned());
        let result = match rule {
            "allcommands" | "+@all" => {
                self.set_all(true);
                Ok(())
            }
            "nocommands" | "-@all" => {
                self.set_all(false);
                Ok(())
            }
            "allkeys" => self.add_key("*", true, true),
            "resetkeys" => {
                self.all_keys = false;
                self.keys.clear();
                Ok(())
            }
            "allchannels" => self.add_channel("*"),
            "resetchannels" => {
                self.all_channels = false;
                self.channels.clear();
                Ok(())
            }
            _ => {
                let (sign, rest) = rule.split_at(rule.len().min(1));
                match sign {
                    "+" | "-" => {
                        let on = sign == "+";
                        let lower = rest.to_ascii_lowercase();
                        if let Some(name) = lower.strip_prefix('@') {
                            match category(name) {
                                Some(c) => {
                                    self.set_category(catalog, c, on);
                                    self.remember(format!("{sign}@{name}"));
                                    Ok(())
                                }
                                None => unknown(),
                            }
                        } else {
                            match catalog.find(&lower) {
                                Some(index) => {
                                    self.set_command(catalog, index, on);
                                    self.remember(format!("{sign}{lower}"));
                                    Ok(())
                                }
                                None if lower.contains('|') => {
                                    let parts: Vec<&str> = lower.split('|').collect();
                                    let subcommand = parts.len() == 3
                                        && catalog
                                            .find(&format!("{}|{}", parts[0], parts[1]))
                                            .is_some();
                                    let first_arg = parts.len() == 2
                                        && catalog.find(parts[0]).is_some_and(|i| {
                                            catalog.entries[i].children.is_empty()
                                        });
                                    if subcommand {
                                        Err("Allowing first-arg of a subcommand is not supported"
                                            .to_owned())
                                    } else if first_arg {
                                        // Redis still takes `+select|0`; kvs does not.
                                        Err("Allowing first-arg of a command is not supported \
                                             by kvs"
                                            .to_owned())
                                    } else {
                                        unknown()
                                    }
                                }
                                None => unknown(),
                            }
                        }
                    }
                    "~" => self.add_key(rest, true, true),
                    "&" => self.add_channel(rest),
                    "%" => match rest.split_once('~') {
                        Some((flags, pattern)) if !flags.is_empty() => {
                            let (mut read, mut write) = (false, false);
                            for f in flags.chars() {
                                match f.to_ascii_uppercase() {
                                    'R' => read = true,
                                    'W' => write = true,
                                    _ => return Some(Err("Syntax error".into())),
                                }
                            }
                            self.add_key(pattern, read, write)
                        }
                        _ => Err("Syntax error".into()),
                    },
                    _ => return None,
                }
            }
        };
        Some(result)
    }

    fn add_key(&mut self, pattern: &str, read: bool, write: bool) -> Result<(), String> {
        if self.all_keys {
            return Err(
                "Adding a pattern after the * pattern (or the 'allkeys' flag) is not \
                        valid and does not have any effect. Try 'resetkeys' to start with an \
                        empty list of patterns"
                    .into(),
            );
        }
        if pattern == "*" && read && write {
            self.all_keys = true;
            self.keys.clear();
            return Ok(());
        }
        match self.keys.iter_mut().find(|k| k.pattern == pattern) {
            Some(existing) => {
                existing.read |= read;
                existing.write |= write;
            }
            None => self.keys.push(KeyPattern {
                pattern: pattern.to_owned(),
                read,
                write,
            }),
        }
        Ok(())
    }

    fn add_channel(&mut self, pattern: &str) -> Result<(), String> {
        if self.all_channels {
            return Err(
                "Adding a pattern after the * pattern (or the 'allchannels' flag) is \
                        not valid and does not have any effect. Try 'resetchannels' to start \
                        with an empty list of channels"
                    .into(),
            );
        }
        if pattern == "*" {
            self.all_channels = true;
            self.channels.clear();
        } else if !self.channels.iter().any(|c| c == pattern) {
            self.channels.push(pattern.to_owned());
        }
        Ok(())
    }

    /// The command rules, as `ACL LIST` shows them.
    fn describe_commands(&self) -> String {
        let start = if self.all_commands { "+@all" } else { "-@all" };
        std::iter::once(start)
            .chain(self.rules.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn describe_keys(&self) -> String {
        if self.all_keys {
            return "~*".into();
        }
        self.keys
            .iter()
            .map(KeyPattern::describe)
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn describe_channels(&self) -> String {
        if self.all_channels {
            return "&*".into();
        }
        self.channels
            .iter()
            .map(|c| format!("&{c}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Why a request was refused, in the words `ACL LOG` and the `NOPERM` errors use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Denied {
    /// The command (full name, `config|get` for a subcommand).
    Command(&'static str),
    Key(Bytes),
    Channel(Bytes),
}

impl Denied {
    /// The `NOPERM` error text (without the `NOPERM ` code), as Redis 7.0 words it.
    pub(crate) fn message(&self) -> String {
        match self {
            Denied::Command(name) => {
                format!("this user has no permissions to run the '{name}' command")
            }
            Denied::Key(_) => {
                "this user has no permissions to access one of the keys used as arguments".into()
            }
            Denied::Channel(_) => {
                "this user has no permissions to access one of the channels used as arguments"
                    .into()
            }
        }
    }

    /// The answer `ACL DRYRUN` gives.
    pub(crate) fn dry_run(&self) -> String {
        match self {
            Denied::Command(name) => {
                format!("This user has no permissions to run the '{name}' command")
            }
            Denied::Key(key) => format!(
                "This user has no permissions to access the '{}' key",
                String::from_utf8_lossy(key)
            ),
            Denied::Channel(channel) => format!(
                "This user has no permissions to access the '{}' channel",
                String::from_utf8_lossy(channel)
            ),
        }
    }

    /// `ACL LOG`'s reason and object.
    pub(crate) fn reason_and_object(&self) -> (&'static str, String) {
        match self {
            Denied::Command(name) => ("command", (*name).to_owned()),
            Denied::Key(key) => ("key", String::from_utf8_lossy(key).into_owned()),
            Denied::Channel(channel) => ("channel", String::from_utf8_lossy(channel).into_owned()),
        }
    }
}

/// One user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub(crate) name: String,
    pub(crate) enabled: bool,
    pub(crate) nopass: bool,
    /// `Some(true)`: `sanitize-payload`, `Some(false)`: `skip-sanitize-payload`.
    sanitize_payload: Option<bool>,
    passwords: Vec<Hash>,
    selector: Selector,
}

impl User {
    /// A new user as `ACL SETUSER name` makes one: off, no passwords, no permissions.
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            enabled: false,
            nopass: false,
            sanitize_payload: None,
            passwords: Vec::new(),
            selector: Selector::new(catalog()),
        }
    }

    /// The `default` user of a fresh server: `on nopass ~* &* +@all`.
    pub(crate) fn default_user() -> Self {
        let mut user = Self::new("default");
        for rule in ["on", "nopass", "~*", "&*", "+@all"] {
            // These rules are valid by construction.
            let _ = user.apply(rule);
        }
        user
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Applies one rule; the error is Redis's reason (`Syntax error`, ...).
    pub(crate) fn apply(&mut self, rule: &str) -> Result<(), String> {
        match rule.to_ascii_lowercase().as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "skip-sanitize-payload" => self.sanitize_payload = Some(false),
            "sanitize-payload" => self.sanitize_payload = Some(true),
            "reset" => {
                for r in [
                    "resetpass",
                    "resetkeys",
                    "resetchannels",
                    "off",
                    "sanitize-payload",
                    "-@all",
                ] {
                    self.apply(r)?;
                }
            }
            "clearselectors" => {}
            _ => return self.apply_value(rule),
        }
        Ok(())
    }

    fn apply_value(&mut self, rule: &str) -> Result<(), String> {
        if let Some(password) = rule.strip_prefix('>') {
            self.add_password(hash(password.as_bytes()));
        } else if let Some(password) = rule.strip_prefix('<') {
            self.remove_password(&hash(password.as_bytes()))?;
        } else if let Some(hex) = rule.strip_prefix('#') {
            self.add_password(parse_hex(hex).ok_or_else(bad_hash)?);
        } else if let Some(hex) = rule.strip_prefix('!') {
            self.remove_password(&parse_hex(hex).ok_or_else(bad_hash)?)?;
        } else if rule.starts_with('(') {
            return Err("Selectors are not supported by kvs".into());
        } else {
            return self
                .selector
                .apply(rule)
                .unwrap_or_else(|| Err("Syntax error".into()));
        }
        Ok(())
    }

    fn add_password(&mut self, hash: Hash) {
        self.nopass = false;
        if !self.passwords.contains(&hash) {
            self.passwords.push(hash);
        }
    }

    fn remove_password(&mut self, hash: &Hash) -> Result<(), String> {
        let before = self.passwords.len();
        self.passwords.retain(|h| h != hash);
        if self.passwords.len() == before {
            return Err(
                "The password you are trying to remove from the user does not exist".into(),
            );
        }
        self.nopass = false;
        Ok(())
    }

    /// Whether `password` opens this user: it is on, and has `nopass` or a matching password.
    /// Every stored hash is compared, each in constant time.
    pub(crate) fn opens_with(&self, password: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let given = hash(password);
        let mut matched = subtle::Choice::from(0u8);
        for stored in &self.passwords {
            matched |= stored.ct_eq(&given);
        }
        matched.into()
    }

    /// Whether a new connection is this user without authenticating (`default` when it is on
    /// and has `nopass`).
    pub(crate) fn needs_no_password(&self) -> bool {
        self.enabled && self.nopass
    }

    /// Whether the user may run every command on every key and channel: no check is needed.
    pub fn unrestricted(&self) -> bool {
        let s = &self.selector;
        s.all_commands && s.all_keys && s.all_channels && s.rules.is_empty()
    }

    /// Whether the request `argv`, which `spec` describes (the subcommand's spec for a
    /// container), may run: the command first, then each key, as Redis checks them.
    pub(crate) fn check(&self, spec: &Spec, argv: &[Bytes]) -> Result<(), Denied> {
        if self.unrestricted() || spec.has(Flag::NoAuth) {
            return Ok(());
        }
        let catalog = catalog();
        let allowed = catalog
            .of(spec)
            .is_some_and(|index| self.selector.allowed[index]);
        if !allowed {
            return Err(Denied::Command(spec.name));
        }
        // A pub/sub command's key positions hold shard channels: checked as channels below.
        if !self.selector.all_keys && !spec.has(Flag::Pubsub) {
            for (i, position) in spec.keys.positions(argv).into_iter().enumerate() {
                let Some(key) = argv.get(position) else {
                    continue;
                };
                self.check_key(key, spec.access.of(argv, i))?;
            }
        }
        self.check_channels(spec.name, argv)
    }

    /// Whether the user may use the channels a pub/sub request names, as Redis checks them: a
    /// channel (SUBSCRIBE, SSUBSCRIBE, PUBLISH, SPUBLISH) must match one of the user's channel
    /// patterns, and a pattern (PSUBSCRIBE) must be one of them, literally.
    fn check_channels(&self, command: &str, argv: &[Bytes]) -> Result<(), Denied> {
        if self.selector.all_channels {
            return Ok(());
        }
        let rest = argv.get(1..).unwrap_or_default();
        let (names, literal) = match command {
            "subscribe" | "ssubscribe" => (rest, false),
            "psubscribe" => (rest, true),
            "publish" | "spublish" => (&rest[..rest.len().min(1)], false),
            _ => return Ok(()),
        };
        for name in names {
            let allowed = self.selector.channels.iter().any(|p| {
                if literal {
                    p.as_bytes() == &name[..]
                } else {
                    glob_match(p.as_bytes(), name, false)
                }
            });
            if !allowed {
                return Err(Denied::Channel(name.clone()));
            }
        }
        Ok(())
    }

    /// [`User::check`] for a request given as words (`["get", key]`), for doors that do not
    /// speak RESP but perform the same commands.
    pub(crate) fn check_words(&self, words: &[&[u8]]) -> Result<(), Denied> {
        let argv: Vec<Bytes> = words.iter().map(|w| Bytes::copy_from_slice(w)).collect();
        let name = argv
            .first()
            .map(|n| String::from_utf8_lossy(n).to_ascii_lowercase())
            .unwrap_or_default();
        let Some(spec) = kvs_store::data_spec(&name).or_else(|| crate::resp::command::spec(&name))
        else {
            return Err(Denied::Command("unknown"));
        };
        self.check(spec.describing(&argv), &argv)
    }

    /// Whether the user may use `key` as `need` says.
    /// Whether the user may read some key under `prefix` (for a listing's folders).
    pub(crate) fn may_read_under(&self, prefix: &[u8]) -> bool {
        self.selector.all_keys || self.selector.keys.iter().any(|p| p.may_read_under(prefix))
    }

    pub(crate) fn check_key(&self, key: &Bytes, need: Access) -> Result<(), Denied> {
        if self.selector.all_keys || self.selector.keys.iter().any(|p| p.grants(need, key)) {
            Ok(())
        } else {
            Err(Denied::Key(key.clone()))
        }
    }

    fn flags(&self) -> Vec<&'static str> {
        let mut flags = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            flags.push("nopass");
        }
        match self.sanitize_payload {
            Some(true) => flags.push("sanitize-payload"),
            Some(false) => flags.push("skip-sanitize-payload"),
            None => {}
        }
        flags
    }

    /// The rules that rebuild this user, as `ACL LIST` and the ACL file show them (after
    /// `user NAME`).
    pub(crate) fn describe(&self) -> String {
        let mut parts: Vec<String> = self.flags().into_iter().map(String::from).collect();
        parts.extend(self.passwords.iter().map(|h| format!("#{}", hex(h))));
        let keys = self.selector.describe_keys();
        if !keys.is_empty() {
            parts.push(keys);
        }
        if self.selector.all_channels {
            parts.push("&*".into());
        } else {
            parts.push("resetchannels".into());
            let channels = self.selector.describe_channels();
            if !channels.is_empty() {
                parts.push(channels);
            }
        }
        parts.push(self.selector.describe_commands());
        parts.join(" ")
    }

    /// `ACL GETUSER`'s fields, in its order.
    pub(crate) fn fields(&self) -> UserFields {
        UserFields {
            flags: self.flags(),
            passwords: self.passwords.iter().map(hex).collect(),
            commands: self.selector.describe_commands(),
            keys: self.selector.describe_keys(),
            channels: self.selector.describe_channels(),
        }
    }
}

fn bad_hash() -> String {
    "The password hash must be exactly 64 characters and contain only lowercase hexadecimal \
     characters"
        .into()
}

/// What `ACL GETUSER` shows.
#[derive(Debug)]
pub(crate) struct UserFields {
    pub(crate) flags: Vec<&'static str>,
    pub(crate) passwords: Vec<String>,
    pub(crate) commands: String,
    pub(crate) keys: String,
    pub(crate) channels: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(rules: &str) -> Result<User, String> {
        let mut u = User::new("u");
        for rule in rules.split_whitespace() {
            u.apply(rule)?;
        }
        Ok(u)
    }

    fn argv(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    fn check(u: &User, line: &str) -> Result<(), Denied> {
        let argv = argv(line);
        let name = String::from_utf8_lossy(&argv[0]).to_lowercase();
        let spec = kvs_store::data_spec(&name)
            .or_else(|| crate::resp::command::spec(&name))
            .expect("a command");
        u.check(spec.describing(&argv), &argv)
    }

    #[test]
    fn descriptions_use_redis_words() {
        assert_eq!(
            User::default_user().describe(),
            "on nopass ~* &* +@all",
            "the default user"
        );
        assert_eq!(
            user("on >secret ~app:* +@read").expect("valid").describe(),
            "on #2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b ~app:* \
             resetchannels -@all +@read"
        );
        assert_eq!(
            user("").expect("valid").describe(),
            "off resetchannels -@all"
        );
        assert_eq!(
            user("+@all -@dangerous +config|get")
                .expect("valid")
                .describe(),
            "off resetchannels +@all -@dangerous +config|get"
        );
        assert_eq!(
            user("allcommands allkeys allchannels on nopass reset")
                .expect("valid")
                .describe(),
            "off sanitize-payload resetchannels -@all"
        );
        assert_eq!(
            user("%R~r:* %W~w:* &news* +get -get +get")
                .expect("valid")
                .describe(),
            "off %R~r:* %W~w:* resetchannels &news* -@all +get"
        );
    }

    #[test]
    fn bad_rules_get_redis_reasons() {
        for (rules, reason) in [
            ("bogus", "Syntax error"),
            ("+nosuch", "Unknown command or category name in ACL"),
            ("+@nosuch", "Unknown command or category name in ACL"),
            (
                "<nopw",
                "The password you are trying to remove from the user does not exist",
            ),
            (
                "#abc",
                "The password hash must be exactly 64 characters and contain only lowercase \
                 hexadecimal characters",
            ),
            ("%X~k", "Syntax error"),
        ] {
            assert_eq!(user(rules).expect_err(rules), reason, "{rules}");
        }
        let after_all = user("~* ~foo").expect_err("a pattern after *");
        assert!(after_all.starts_with("Adding a pattern after the * pattern"));
    }

    #[test]
    fn passwords_are_hashes_and_only_an_enabled_user_opens() {
        let mut u = user(">one >two").expect("valid");
        assert!(!u.opens_with(b"one"), "off");
        u.apply("on").expect("on");
        assert!(u.opens_with(b"one") && u.opens_with(b"two"));
        assert!(!u.opens_with(b"three"));
        u.apply("<one").expect("remove");
        assert!(!u.opens_with(b"one"));
        let hex = hex(&hash(b"two"));
        u.apply(&format!("!{hex}")).expect("remove by hash");
        assert!(!u.opens_with(b"two"));
        u.apply("nopass").expect("nopass");
        assert!(u.opens_with(b"anything"));
        u.apply(&format!("#{hex}")).expect("add by hash");
        assert!(!u.opens_with(b"anything") && u.opens_with(b"two"));
    }

    #[test]
    fn commands_keys_and_read_write_patterns_are_checked() {
        let u = user("on nopass ~app:* +@read").expect("valid");
        assert_eq!(check(&u, "GET app:1"), Ok(()));
        assert_eq!(
            check(&u, "GET other"),
            Err(Denied::Key(Bytes::from("other")))
        );
        assert_eq!(check(&u, "SET app:1 x"), Err(Denied::Command("set")));
        assert_eq!(
            check(&u, "MGET app:1 other"),
            Err(Denied::Key(Bytes::from("other")))
        );

        let rw = user("on nopass %R~r:* %W~w:* +@all").expect("valid");
        assert_eq!(check(&rw, "GET r:1"), Ok(()));
        assert_eq!(check(&rw, "GET w:1"), Err(Denied::Key(Bytes::from("w:1"))));
        assert_eq!(check(&rw, "SET w:1 x"), Ok(()), "SET only writes");
        assert!(
            check(&rw, "SET w:1 x GET").is_err(),
            "SET ... GET also reads"
        );
        assert!(check(&rw, "INCR w:1").is_err(), "INCR reads and writes");
        assert_eq!(check(&rw, "EXISTS r:1 w:1"), Ok(()), "EXISTS needs neither");
        assert_eq!(check(&rw, "COPY r:1 w:1"), Ok(()), "COPY reads its source");
        assert!(check(&rw, "COPY w:1 r:1").is_err());

        let sub = user("on nopass allkeys +config|get").expect("valid");
        assert_eq!(check(&sub, "CONFIG GET maxmemory"), Ok(()));
        assert_eq!(
            check(&sub, "CONFIG SET maxmemory 1"),
            Err(Denied::Command("config|set"))
        );
        // Commands that need no authentication are never refused.
        assert_eq!(check(&user("on").expect("valid"), "AUTH a b"), Ok(()));
    }

    #[test]
    fn a_description_rebuilds_the_same_permissions() {
        for rules in [
            "on >p ~a:* %R~b:* &c* +@read -get +set +config|get -@dangerous",
            "+@all -@admin +config -config|set +@read -@read",
            "allcommands -@write +incr nocommands +ping",
        ] {
            let original = user(rules).expect("valid");
            let rebuilt = user(&original.describe()).expect("its own description is valid");
            assert_eq!(
                rebuilt.selector.allowed, original.selector.allowed,
                "{rules}"
            );
            assert_eq!(rebuilt.describe(), original.describe(), "{rules}");
        }
    }
}
