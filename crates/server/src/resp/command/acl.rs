//! ACL: users and permissions, as Redis 7.0's `ACL` container answers (see [`crate::acl`]).

use bytes::Bytes;
use kvs_protocol::resp::Frame;
use kvs_store::{Category, Flag, Spec};

use super::SessionCommand;
use crate::acl::{self, catalog, category};
use crate::resp::session::Session;

const FLAGS: &[Flag] = &[Flag::Noscript, Flag::Loading, Flag::Stale];
const ADMIN_FLAGS: &[Flag] = &[Flag::Admin, Flag::Noscript, Flag::Loading, Flag::Stale];
const SLOW: &[Category] = &[Category::Slow];
const ADMIN: &[Category] = &[Category::Admin, Category::Slow, Category::Dangerous];

/// An ACL subcommand's spec.
const fn sub(
    admin: bool,
    name: &'static str,
    arity: i32,
    summary: &'static str,
    example: &'static str,
) -> Spec {
    Spec {
        name,
        arity,
        flags: if admin { ADMIN_FLAGS } else { FLAGS },
        categories: if admin { ADMIN } else { SLOW },
        group: "server",
        summary,
        example,
        ..Spec::BLANK
    }
}

pub(super) const COMMANDS: &[SessionCommand] = &[SessionCommand {
    spec: Spec {
        name: "acl",
        arity: -2,
        categories: SLOW,
        group: "server",
        summary: "A container for Access List Control commands",
        example: "ACL WHOAMI",
        subcommands: &[
            sub(
                false,
                "acl|cat",
                -2,
                "List the ACL categories or the commands inside a category",
                "ACL CAT read",
            ),
            sub(
                true,
                "acl|deluser",
                -3,
                "Remove the specified ACL users and the associated rules",
                "ACL DELUSER alice",
            ),
            sub(
                true,
                "acl|dryrun",
                -4,
                "Returns whether the user can execute the given command without executing the command.",
                "ACL DRYRUN default GET k",
            ),
            sub(
                false,
                "acl|genpass",
                -2,
                "Generate a pseudorandom secure password to use for ACL users",
                "ACL GENPASS",
            ),
            sub(
                true,
                "acl|getuser",
                3,
                "Get the rules for a specific ACL user",
                "ACL GETUSER default",
            ),
            Spec {
                flags: &[Flag::Loading, Flag::Stale],
                ..sub(
                    false,
                    "acl|help",
                    2,
                    "Show helpful text about the different subcommands",
                    "ACL HELP",
                )
            },
            sub(
                true,
                "acl|list",
                2,
                "List the current ACL rules in ACL config file format",
                "ACL LIST",
            ),
            sub(
                true,
                "acl|load",
                2,
                "Reload the ACLs from the configured ACL file",
                "ACL LOAD",
            ),
            sub(
                true,
                "acl|log",
                -2,
                "List latest events denied because of ACLs in place",
                "ACL LOG",
            ),
            sub(
                true,
                "acl|save",
                2,
                "Save the current ACL rules in the configured ACL file",
                "ACL SAVE",
            ),
            sub(
                true,
                "acl|setuser",
                -3,
                "Modify or create the rules for a specific ACL user",
                "ACL SETUSER alice on",
            ),
            sub(
                true,
                "acl|users",
                2,
                "List the username of all the configured ACL rules",
                "ACL USERS",
            ),
            sub(
                false,
                "acl|whoami",
                2,
                "Return the name of the user associated to the current connection",
                "ACL WHOAMI",
            ),
        ],
        ..Spec::BLANK
    },
    run: acl,
}];

/// Redis's answer to a known subcommand given arguments it does not take.
fn syntax(sub: &[u8]) -> Frame {
    Frame::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
        String::from_utf8_lossy(sub)
            .chars()
            .take(128)
            .collect::<String>()
    ))
}

fn text(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn acl(session: &mut Session, args: &[Bytes]) -> Frame {
    let Some((sub, rest)) = args.split_first() else {
        return super::arity("acl");
    };
    let shared = session.shared.clone();
    let acl = &shared.acl;
    match sub.to_ascii_lowercase().as_slice() {
        b"help" => super::help(&COMMANDS[0].spec),
        b"whoami" => Frame::bulk(session.user.name().to_owned()),
        b"users" => Frame::Array(
            acl.users()
                .iter()
                .map(|u| Frame::bulk(u.name().to_owned()))
                .collect(),
        ),
        b"list" => Frame::Array(
            acl.users()
                .iter()
                .map(|u| Frame::bulk(format!("user {} {}", u.name(), u.describe())))
                .collect(),
        ),
        b"getuser" => match acl.user(&text(&rest[0])) {
            None => Frame::Null,
            Some(user) => getuser(&user.fields()),
        },
        b"setuser" => {
            let name = text(&rest[0]);
            if name.contains(' ') || name.contains('\0') {
                return Frame::err("Usernames can't contain spaces or null characters");
            }
            let rules: Vec<String> = rest[1..].iter().map(text).collect();
            match acl.set_user(&name, &rules) {
                Ok(()) => Frame::ok(),
                Err(e) => Frame::err(format!(
                    "Error in ACL SETUSER modifier '{}': {}",
                    e.rule, e.reason
                )),
            }
        }
        b"deluser" => {
            let names: Vec<String> = rest.iter().map(text).collect();
            match acl.delete_users(&names) {
                Ok(n) => {
                    // Connections of a deleted user are closed, as Redis closes them.
                    shared.clients.kill(|_, c| names.contains(&c.user));
                    Frame::Integer(n as i64)
                }
                Err(e) => Frame::err(e),
            }
        }
        b"cat" => match rest {
            [] => Frame::Array(
                Category::ALL
                    .iter()
                    .map(|c| Frame::bulk(c.name()))
                    .collect(),
            ),
            [name] => match category(&text(name)) {
                None => Frame::err(format!("Unknown category '{}'", text(name))),
                Some(c) => Frame::Array(
                    catalog()
                        .entries
                        .iter()
                        .filter(|e| e.is_in(c))
                        .map(|e| Frame::bulk(e.name()))
                        .collect(),
                ),
            },
            _ => syntax(sub),
        },
        b"genpass" => {
            let bits = match rest {
                [] => 256,
                [bits] => match kvs_store::parse_integer(bits) {
                    Ok(b) if (1..=4096).contains(&b) => b as usize,
                    _ => {
                        return Frame::err(
                            "ACL GENPASS argument must be the number of bits for the output \
                             password, a positive number up to 4096",
                        );
                    }
                },
                _ => return syntax(sub),
            };
            match acl::generate_password(bits) {
                Ok(password) => Frame::bulk(password),
                Err(e) => Frame::err(format!("cannot generate a password: {e}")),
            }
        }
        b"dryrun" => dry_run(session, rest),
        b"log" => log(session, rest),
        b"save" => match acl.save() {
            Ok(()) => Frame::ok(),
            Err(e) => Frame::err(e),
        },
        b"load" => match acl.load() {
            Ok(()) => {
                // Every user but `default` is made anew, and its connections are closed (this
                // one too, after the answer), as Redis does.
                shared.clients.kill(|_, c| c.user != "default");
                Frame::ok()
            }
            Err(e) => Frame::err(e),
        },
        // `check` let only known subcommands through.
        _ => Frame::err("unknown ACL subcommand"),
    }
}

/// `ACL GETUSER`'s answer: a map (a flat array in RESP2), fields in Redis's order.
fn getuser(fields: &acl::UserFields) -> Frame {
    Frame::Map(vec![
        (
            Frame::bulk("flags"),
            Frame::Array(fields.flags.iter().map(|f| Frame::bulk(*f)).collect()),
        ),
        (
            Frame::bulk("passwords"),
            Frame::Array(
                fields
                    .passwords
                    .iter()
                    .map(|p| Frame::bulk(p.clone()))
                    .collect(),
            ),
        ),
        (
            Frame::bulk("commands"),
            Frame::bulk(fields.commands.clone()),
        ),
        (Frame::bulk("keys"), Frame::bulk(fields.keys.clone())),
        (
            Frame::bulk("channels"),
            Frame::bulk(fields.channels.clone()),
        ),
        (Frame::bulk("selectors"), Frame::Array(vec![])),
    ])
}

/// `ACL DRYRUN user command [arg ...]`: whether the user could run it, without running it.
fn dry_run(session: &Session, args: &[Bytes]) -> Frame {
    let name = text(&args[0]);
    let Some(user) = session.shared.acl.user(&name) else {
        return Frame::err(format!("User '{name}' not found"));
    };
    let argv = &args[1..];
    let command = text(&argv[0]).to_ascii_lowercase();
    let Some(found) = super::find(&command) else {
        return Frame::err(format!("Command '{command}' not found"));
    };
    let spec = found.spec();
    if let Err(refusal) = super::check(spec, argv) {
        return refusal;
    }
    match user.check(spec.describing(argv), argv) {
        Ok(()) => Frame::ok(),
        Err(denied) => Frame::bulk(denied.dry_run()),
    }
}

/// `ACL LOG [count | RESET]`.
fn log(session: &Session, args: &[Bytes]) -> Frame {
    let acl = &session.shared.acl;
    let count = match args {
        [] => 10,
        [arg] if arg.eq_ignore_ascii_case(b"reset") => {
            acl.log.lock().reset();
            return Frame::ok();
        }
        [arg] => match kvs_store::parse_integer(arg) {
            Ok(n) => n.max(0) as usize,
            Err(_) => return Frame::err("value is not an integer or out of range"),
        },
        _ => return syntax(b"LOG"),
    };
    let entries = acl.log.lock().newest(count);
    Frame::Array(
        entries
            .into_iter()
            .map(|e| {
                Frame::Map(vec![
                    (Frame::bulk("count"), Frame::Integer(e.count as i64)),
                    (Frame::bulk("reason"), Frame::bulk(e.reason)),
                    (Frame::bulk("context"), Frame::bulk(e.context)),
                    (Frame::bulk("object"), Frame::bulk(e.object)),
                    (Frame::bulk("username"), Frame::bulk(e.username)),
                    (
                        Frame::bulk("age-seconds"),
                        Frame::Double(e.updated.elapsed().as_secs_f64()),
                    ),
                    (Frame::bulk("client-info"), Frame::bulk(e.client_info)),
                ])
            })
            .collect(),
    )
}
