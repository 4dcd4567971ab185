//! Users, passwords and permissions: Redis's ACL model, one for every front door.
//!
//! Users live in [`Acl`], changed by `ACL SETUSER`/`DELUSER`/`LOAD` and read from the ACL file at
//! startup. A connection holds the [`User`] it authenticated as (an `Arc`, so a check takes no
//! lock) and the ACL generation it was read at; when the generation moves (any change), the
//! connection takes the user's new permissions, and a connection whose user was deleted is
//! closed, as Redis does.
//!
//! Passwords are kept only as SHA-256 and compared in constant time. Refusals go to the ACL log
//! (`ACL LOG`), grouped as Redis groups them.

mod catalog;
mod file;
mod log;
mod user;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

pub(crate) use catalog::{catalog, category};
pub use file::AclFileError;
pub(crate) use log::{AclLog, LogEntry};
pub use user::User;
pub(crate) use user::{Denied, UserFields};

/// Why `ACL SETUSER` (or a line of the ACL file) was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RuleError {
    pub(crate) rule: String,
    pub(crate) reason: String,
}

/// The users, and what goes with them.
#[derive(Debug)]
pub struct Acl {
    users: RwLock<BTreeMap<String, Arc<User>>>,
    /// Moves on every change, so connections know to look their user up again.
    generation: AtomicU64,
    /// Moves on every `ACL LOAD`: as in Redis, every user but `default` is then made anew, and
    /// the connections authenticated as one are closed.
    loads: AtomicU64,
    pub(crate) log: Mutex<AclLog>,
    /// `--aclfile`: where `ACL SAVE` writes and `ACL LOAD` reads.
    file: Option<PathBuf>,
    /// The `default` user needs no password and may do everything: a request without
    /// credentials needs no check at all (see [`Acl::default_is_open`]).
    default_open: AtomicBool,
}

impl Default for Acl {
    fn default() -> Self {
        Self::with_users(None, default_users())
    }
}

fn default_users() -> BTreeMap<String, Arc<User>> {
    let mut users = BTreeMap::new();
    users.insert("default".to_owned(), Arc::new(User::default_user()));
    users
}

impl Acl {
    fn with_users(file: Option<PathBuf>, users: BTreeMap<String, Arc<User>>) -> Self {
        let open = users
            .get("default")
            .is_some_and(|u| u.needs_no_password() && u.unrestricted());
        Self {
            default_open: AtomicBool::new(open),
            users: RwLock::new(users),
            generation: AtomicU64::new(0),
            loads: AtomicU64::new(0),
            log: Mutex::new(AclLog::default()),
            file,
        }
    }

    /// The users a server starts with: those of `aclfile` if given (a missing `default` user
    /// is created as on a fresh server), else `default`, with `requirepass` as its password.
    /// A file and `requirepass` together are refused, as Redis refuses them.
    pub fn open(aclfile: Option<PathBuf>, requirepass: Option<&str>) -> Result<Self, AclFileError> {
        match aclfile {
            Some(path) => {
                if requirepass.is_some() {
                    return Err(AclFileError::WithRequirepass);
                }
                let users = file::load(&path)?;
                Ok(Self::with_users(Some(path), users))
            }
            None => {
                let acl = Self::default();
                if let Some(password) = requirepass {
                    acl.set_requirepass(password);
                }
                Ok(acl)
            }
        }
    }

    /// Gives the `default` user this password alone (`requirepass`); an empty one makes it
    /// `nopass` again.
    pub fn set_requirepass(&self, password: &str) {
        let mut users = self.users.write();
        let mut user = users
            .get("default")
            .map(|u| User::clone(u))
            .unwrap_or_else(User::default_user);
        let _ = user.apply("resetpass");
        if password.is_empty() {
            let _ = user.apply("nopass");
        } else {
            let _ = user.apply(&format!(">{password}"));
        }
        users.insert("default".into(), Arc::new(user));
        drop(users);
        self.changed();
    }

    fn changed(&self) {
        let default = self.default_user();
        self.default_open.store(
            default.needs_no_password() && default.unrestricted(),
            Ordering::Release,
        );
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether the `default` user needs no password and may do everything, so that a request
    /// carrying no credentials can skip authentication and permission checks altogether.
    pub(crate) fn default_is_open(&self) -> bool {
        self.default_open.load(Ordering::Acquire)
    }

    /// The generation: it moves whenever a user changes.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The user called `name`, as it is now.
    pub fn user(&self, name: &str) -> Option<Arc<User>> {
        self.users.read().get(name).cloned()
    }

    /// The `default` user (it cannot be deleted).
    pub fn default_user(&self) -> Arc<User> {
        self.user("default")
            .unwrap_or_else(|| Arc::new(User::default_user()))
    }

    /// The user `name` opened with `password`, or `None` when the pair does not open a user.
    pub fn authenticate(&self, name: &str, password: &[u8]) -> Option<Arc<User>> {
        let user = self.user(name)?;
        user.opens_with(password).then_some(user)
    }

    /// `ACL SETUSER name rules...`: all of them or none.
    pub(crate) fn set_user(&self, name: &str, rules: &[String]) -> Result<(), RuleError> {
        let mut users = self.users.write();
        let mut user = users
            .get(name)
            .map(|u| User::clone(u))
            .unwrap_or_else(|| User::new(name));
        for rule in rules {
            user.apply(rule).map_err(|reason| RuleError {
                rule: rule.clone(),
                reason,
            })?;
        }
        users.insert(name.to_owned(), Arc::new(user));
        drop(users);
        self.changed();
        Ok(())
    }

    /// `ACL DELUSER`: how many of `names` existed. `default` cannot be removed.
    pub(crate) fn delete_users(&self, names: &[String]) -> Result<usize, &'static str> {
        if names.iter().any(|n| n == "default") {
            return Err("The 'default' user cannot be removed");
        }
        let mut users = self.users.write();
        let removed = names.iter().filter(|n| users.remove(*n).is_some()).count();
        drop(users);
        if removed > 0 {
            self.changed();
        }
        Ok(removed)
    }

    /// Every user, by name.
    pub(crate) fn users(&self) -> Vec<Arc<User>> {
        self.users.read().values().cloned().collect()
    }

    /// `ACL SAVE`: writes every user to the ACL file atomically.
    pub(crate) fn save(&self) -> Result<(), String> {
        let path = self.file.as_ref().ok_or_else(no_file)?;
        let users = self.users();
        file::save(path, &users).map_err(|e| format!("There was an error trying to save the ACLs. Please check the server logs for more information: {e}"))
    }

    /// `ACL LOAD`: replaces every user with the file's; on any error nothing changes.
    pub(crate) fn load(&self) -> Result<(), String> {
        let path = self.file.as_ref().ok_or_else(no_file)?;
        let users = file::load(path).map_err(|e| e.to_string())?;
        *self.users.write() = users;
        self.loads.fetch_add(1, Ordering::AcqRel);
        self.changed();
        Ok(())
    }

    /// Adds a refusal at the top level of a connection (not inside MULTI) to `ACL LOG`.
    pub(crate) fn record(
        &self,
        reason: &'static str,
        object: String,
        username: String,
        client_info: String,
    ) {
        self.log.lock().add(LogEntry {
            count: 1,
            reason,
            context: "toplevel",
            object,
            username,
            updated: std::time::Instant::now(),
            client_info,
        });
    }

    /// How many times `ACL LOAD` replaced the users.
    pub(crate) fn loads(&self) -> u64 {
        self.loads.load(Ordering::Acquire)
    }

    /// Whether a connection that took `user` when [`Acl::loads`] was `loads` may go on as that
    /// user: not if it was deleted, nor, after an `ACL LOAD`, if it is any user but `default`.
    pub(crate) fn still_valid(&self, user: &User, loads: u64) -> Option<Arc<User>> {
        if loads != self.loads() && user.name() != "default" {
            return None;
        }
        self.user(user.name())
    }
}

fn no_file() -> String {
    "This Redis instance is not configured to use an ACL file. You may want to specify users via \
     the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis \
     configuration file set) in order to store users in the Redis configuration."
        .into()
}

/// `ACL GENPASS [bits]`: `bits` random bits (default 256) as hex, rounded up to a whole digit.
pub(crate) fn generate_password(bits: usize) -> Result<String, getrandom::Error> {
    let bytes = bits.div_ceil(8);
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)?;
    let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
    Ok(hex[..bits.div_ceil(4)].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirepass_protects_the_default_user_and_setuser_is_all_or_nothing() {
        let acl = Acl::open(None, Some("s3cret")).expect("opens");
        assert!(!acl.default_user().needs_no_password());
        assert!(acl.authenticate("default", b"s3cret").is_some());
        assert!(acl.authenticate("default", b"wrong").is_none());
        assert!(acl.authenticate("nobody", b"s3cret").is_none());

        let before = acl.generation();
        let refused = acl.set_user("alice", &["on".into(), ">pw".into(), "bogus".into()]);
        assert_eq!(
            refused,
            Err(RuleError {
                rule: "bogus".into(),
                reason: "Syntax error".into()
            })
        );
        assert!(acl.user("alice").is_none(), "nothing applied");
        assert_eq!(acl.generation(), before);
        acl.set_user("alice", &["on".into(), ">pw".into()])
            .expect("valid");
        assert!(acl.generation() > before);
        assert!(acl.authenticate("alice", b"pw").is_some());
        assert_eq!(
            acl.delete_users(&["default".into()]),
            Err("The 'default' user cannot be removed")
        );
        assert_eq!(acl.delete_users(&["alice".into(), "nobody".into()]), Ok(1));
    }

    #[test]
    fn generated_passwords_have_the_bits_asked_for() {
        assert_eq!(generate_password(256).expect("random").len(), 64);
        assert_eq!(generate_password(5).expect("random").len(), 2);
        assert_ne!(
            generate_password(128).expect("random"),
            generate_password(128).expect("random")
        );
    }
}
