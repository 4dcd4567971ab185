//! The ACL file, in Redis's `users.acl` format: one `user NAME rules...` line per user, as
//! `ACL LIST` shows them. Loading is all or nothing and names every bad line; saving writes a
//! temporary file, fsyncs it and renames it over the old one, so a crash leaves one or the other.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::user::User;

/// Why the ACL file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AclFileError {
    #[error("cannot read the ACL file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Every problem found, each with its line, in Redis's words.
    #[error(
        "{0}WARNING: ACL errors detected, no change to the previously active ACL rules was performed"
    )]
    Invalid(String),
    #[error(
        "requirepass cannot be used with an ACL file: give the default user its password in the file (user default on >password ...)"
    )]
    WithRequirepass,
}

/// Reads the users of `path`. A file without a `default` user gets the fresh server's one.
pub(super) fn load(path: &Path) -> Result<BTreeMap<String, Arc<User>>, AclFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| AclFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&path.display().to_string(), &text)
}

fn parse(path: &str, text: &str) -> Result<BTreeMap<String, Arc<User>>, AclFileError> {
    let mut users = BTreeMap::new();
    let mut errors = String::new();
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        let (Some(&"user"), Some(name)) = (words.first(), words.get(1)) else {
            errors.push_str(&format!(
                "{path}:{number} should start with user keyword followed by the username. "
            ));
            continue;
        };
        if users.contains_key(*name) {
            errors.push_str(&format!(
                "WARNING: Duplicate user '{name}' found on line {number}. "
            ));
            continue;
        }
        let mut user = User::new(name);
        let mut bad = None;
        for rule in &words[2..] {
            if let Err(reason) = user.apply(rule) {
                bad = Some(reason);
                break;
            }
        }
        match bad {
            Some(reason) => errors.push_str(&format!("{path}:{number}: {reason}. ")),
            None => {
                users.insert((*name).to_owned(), Arc::new(user));
            }
        }
    }
    if !errors.is_empty() {
        return Err(AclFileError::Invalid(errors));
    }
    users
        .entry("default".to_owned())
        .or_insert_with(|| Arc::new(User::default_user()));
    Ok(users)
}

/// Writes `users` to `path`: to a temporary file beside it, fsynced, renamed into place, and the
/// directory fsynced.
pub(super) fn save(path: &Path, users: &[Arc<User>]) -> std::io::Result<()> {
    let mut text = String::new();
    for user in users {
        text.push_str(&format!("user {} {}\n", user.name(), user.describe()));
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "users.acl".into());
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_line_is_named_and_nothing_is_loaded() {
        let text = "user default on nopass ~* &* +@all\nuser alice on >pw ~a:* +@read\n\n\
                    user bob on bogus\nfoo bar\nuser alice on\n";
        let err = parse("/etc/kvs/users.acl", text).expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "/etc/kvs/users.acl:4: Syntax error. /etc/kvs/users.acl:5 should start with user \
             keyword followed by the username. WARNING: Duplicate user 'alice' found on line 6. \
             WARNING: ACL errors detected, no change to the previously active ACL rules was \
             performed"
        );
    }

    #[test]
    fn the_readme_example_loads() {
        let users = parse(
            "users.acl",
            "# users.acl, Redis's format: one user per line\nuser default on >s3cret ~* &* +@all\n\
             user app on >app-password ~app:* +@read +@write -@dangerous\n\
             user reader on >reader-password %R~* +@read\n",
        );
        assert!(users.is_err(), "a comment line is not Redis's format");
        let readme = include_str!("../../../../README.md");
        let start = readme.find("user default on >s3cret").expect("the example");
        let end = start + readme[start..].find("```").expect("its end");
        let users = parse("users.acl", &readme[start..end]).expect("the README's users load");
        assert_eq!(users.len(), 3);
    }

    #[test]
    fn saved_users_load_back_the_same() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("users.acl");
        let users = parse(
            "x",
            "user alice on >pw %R~r:* ~a:* &news +@read -get +config|get\nuser bob off nopass\n",
        )
        .expect("valid");
        let list: Vec<Arc<User>> = users.values().cloned().collect();
        save(&path, &list).expect("saved");
        let back = load(&path).expect("loads");
        assert_eq!(back, users);
        assert!(back.contains_key("default"), "a default user is added");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(!text.contains(">pw") && !text.contains(" pw"), "{text}");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
    }
}
