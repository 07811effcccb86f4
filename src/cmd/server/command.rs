//! COMMAND [COUNT | LIST | INFO | DOCS | GETKEYS | HELP]: the command table as Redis 7.0
//! describes it.
//!
//! Each entry: name, arity, flags (set), first/last/step, ACL categories (set), tips,
//! key specs (derived from first/last/step), subcommands (for containers, from the
//! `Sub` tables). Containers show 0/0/0 like Redis even when Darter routes them by key.

use super::{Sub, find_sub, help_reply, subcommands};
use crate::cmd::{Command, FLAG_NAMES, MOVABLE_KEYS, READONLY, WRITE, table};
use crate::op::OpStatus;
use crate::reply::ReplyBuf;
use crate::tx::Ctx;

/// Tips of Darter's own top-level commands (others have none in the table).
fn command_tips(name: &str) -> &'static str {
    match name {
        "ping" => "request_policy:all_shards response_policy:all_succeeded",
        "dbsize" => "request_policy:all_shards response_policy:agg_sum",
        "info" => "nondeterministic_output request_policy:all_shards response_policy:special",
        "time" | "lastsave" => "nondeterministic_output",
        "command" => "nondeterministic_output_order",
        "keys" => "request_policy:all_shards nondeterministic_output_order",
        "randomkey" => "request_policy:all_shards nondeterministic_output",
        "flushall" | "flushdb" => "request_policy:all_shards response_policy:all_succeeded",
        _ => "",
    }
}

/// What COMMAND prints about one command or subcommand.
struct Desc<'a> {
    name: &'a str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    acl: &'a str,
    tips: &'a str,
    subs: &'static [Sub],
}

impl Desc<'_> {
    fn of_command(c: &Command) -> Desc<'_> {
        let subs = subcommands(c.name);
        // Containers describe their keys per subcommand.
        let keys = if subs.is_empty() { (c.first_key, c.last_key, c.step) } else { (0, 0, 0) };
        Desc { name: c.name, arity: c.arity, flags: c.flags, keys, acl: c.acl, tips: command_tips(c.name), subs }
    }

    fn of_sub(s: &'static Sub) -> Desc<'static> {
        Desc { name: s.name, arity: s.arity, flags: s.flags, keys: s.keys, acl: s.acl, tips: s.tips, subs: &[] }
    }
}

fn write_info(out: &mut ReplyBuf, d: &Desc) {
    out.array(10);
    out.bulk(d.name.as_bytes());
    out.int(d.arity as i64);
    let flags: Vec<&str> = FLAG_NAMES.iter().filter(|(f, _)| d.flags & f != 0).map(|(_, n)| *n).collect();
    out.set(flags.len());
    for f in flags {
        out.simple(f);
    }
    out.int(d.keys.0 as i64);
    out.int(d.keys.1 as i64);
    out.int(d.keys.2 as i64);
    let cats: Vec<&str> = d.acl.split_whitespace().collect();
    out.set(cats.len());
    for c in cats {
        out.simple(c);
    }
    let tips: Vec<&str> = d.tips.split_whitespace().collect();
    out.set(tips.len());
    for t in tips {
        out.bulk(t.as_bytes());
    }
    write_key_specs(out, d);
    out.set(d.subs.len());
    for s in d.subs {
        write_info(out, &Desc::of_sub(s));
    }
}

/// One key spec derived from (first, last, step): an index search, then a range.
fn write_key_specs(out: &mut ReplyBuf, d: &Desc) {
    let (first, last, step) = d.keys;
    if first <= 0 {
        out.set(0);
        return;
    }
    out.set(1);
    out.map(3);
    out.bulk(b"flags");
    // Subcommands that take a key only look at it (OBJECT, MEMORY USAGE): "RO" alone.
    let flags: &[&str] = if d.name.contains('|') {
        &["RO"]
    } else if d.flags & WRITE != 0 {
        &["RW", "update"]
    } else if d.flags & READONLY != 0 {
        &["RO", "access"]
    } else {
        &["RO"]
    };
    out.set(flags.len());
    for f in flags {
        out.simple(f);
    }
    out.bulk(b"begin_search");
    out.map(2);
    out.bulk(b"type");
    out.bulk(b"index");
    out.bulk(b"spec");
    out.map(1);
    out.bulk(b"index");
    out.int(first as i64);
    out.bulk(b"find_keys");
    out.map(2);
    out.bulk(b"type");
    out.bulk(b"range");
    out.bulk(b"spec");
    out.map(3);
    out.bulk(b"lastkey");
    out.int(if last < 0 { last as i64 } else { (last - first) as i64 });
    out.bulk(b"keystep");
    out.int(step as i64);
    out.bulk(b"limit");
    out.int(0);
}

/// A command or `container|sub` by name.
fn describe(name: &[u8]) -> Option<Desc<'static>> {
    let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
    if let Some((container, _)) = lower.split_once('|') {
        return subcommands(container).iter().find(|s| s.name == lower).map(Desc::of_sub);
    }
    table().lookup(name).map(Desc::of_command)
}

const HELP: &[&str] = &[
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
];

pub fn command(ctx: &mut Ctx, args: &[&[u8]]) {
    let t = table();
    if args.len() == 1 {
        ctx.conn.out.array(t.len());
        for cmd in &t.commands {
            write_info(&mut ctx.conn.out, &Desc::of_command(cmd));
        }
        return;
    }
    let Some(s) = find_sub(&mut ctx.conn.out, "command", args) else { return };
    ctx.conn.last_cmd = s.name;
    match &s.name[8..] {
        "count" => ctx.conn.out.int(t.len() as i64),
        "info" => {
            if args.len() == 2 {
                ctx.conn.out.array(t.len());
                for cmd in &t.commands {
                    write_info(&mut ctx.conn.out, &Desc::of_command(cmd));
                }
                return;
            }
            ctx.conn.out.array(args.len() - 2);
            for name in &args[2..] {
                match describe(name) {
                    Some(d) => write_info(&mut ctx.conn.out, &d),
                    None => ctx.conn.out.null(),
                }
            }
        }
        "docs" => docs(&mut ctx.conn.out, &args[2..]),
        "list" => list(&mut ctx.conn.out, args),
        "getkeys" => getkeys(&mut ctx.conn.out, &args[2..]),
        _ => help_reply(&mut ctx.conn.out, "command", HELP),
    }
}

/// Every command and subcommand name (`container|sub`).
fn all_names() -> Vec<(&'static str, &'static str)> {
    let mut v = Vec::new();
    for cmd in &table().commands {
        v.push((cmd.name, cmd.acl));
        for s in subcommands(cmd.name) {
            v.push((s.name, s.acl));
        }
    }
    v
}

fn list(out: &mut ReplyBuf, args: &[&[u8]]) {
    let mut filter: Option<(String, &[u8])> = None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if args[i].eq_ignore_ascii_case(b"filterby") && more == 2 {
            let kind = String::from_utf8_lossy(args[i + 1]).to_ascii_lowercase();
            if !matches!(kind.as_str(), "module" | "aclcat" | "pattern") {
                OpStatus::Syntax.reply(out);
                return;
            }
            filter = Some((kind, args[i + 2]));
            i += 3;
        } else {
            OpStatus::Syntax.reply(out);
            return;
        }
    }
    let names: Vec<&str> = all_names()
        .into_iter()
        .filter(|(name, acl)| match &filter {
            None => true,
            Some((k, _)) if k == "module" => false,
            Some((k, cat)) if k == "aclcat" => {
                let cat = String::from_utf8_lossy(cat).to_ascii_lowercase();
                acl.split_whitespace().any(|a| a.strip_prefix('@') == Some(cat.as_str()))
            }
            Some((_, pat)) => crate::util::glob_match(pat, name.as_bytes(), true),
        })
        .map(|(n, _)| n)
        .collect();
    out.array(names.len());
    for n in names {
        out.bulk(n.as_bytes());
    }
}

/// (summary, since, group, complexity) of commands Darter documents.
fn doc_of(name: &str) -> Option<(&'static str, &'static str, &'static str, &'static str)> {
    Some(match name {
        "ping" => ("Ping the server", "1.0.0", "connection", "O(1)"),
        "echo" => ("Echo the given string", "1.0.0", "connection", "O(1)"),
        "quit" => ("Close the connection", "1.0.0", "connection", "O(1)"),
        "reset" => ("Reset the connection", "6.2.0", "connection", "O(1)"),
        "hello" => ("Handshake with Redis", "6.0.0", "connection", "O(1)"),
        "auth" => (
            "Authenticate to the server",
            "1.0.0",
            "connection",
            "O(N) where N is the number of passwords defined for the user",
        ),
        "select" => ("Change the selected database for the current connection", "1.0.0", "connection", "O(1)"),
        "client" => ("A container for client connection commands", "2.4.0", "connection", "Depends on subcommand."),
        "dbsize" => ("Return the number of keys in the selected database", "1.0.0", "server", "O(1)"),
        "config" => ("A container for server configuration commands", "2.0.0", "server", "Depends on subcommand."),
        "command" => (
            "Get array of Redis command details",
            "2.8.13",
            "server",
            "O(N) where N is the total number of Redis commands",
        ),
        "info" => ("Get information and statistics about the server", "1.0.0", "server", "O(1)"),
        "time" => ("Return the current server time", "2.6.0", "server", "O(1)"),
        "lastsave" => ("Get the UNIX time stamp of the last successful save to disk", "1.0.0", "server", "O(1)"),
        "save" => (
            "Synchronously save the dataset to disk",
            "1.0.0",
            "server",
            "O(N) where N is the total number of keys in all databases",
        ),
        "bgsave" => ("Asynchronously save the dataset to disk", "1.0.0", "server", "O(1)"),
        "shutdown" => (
            "Synchronously save the dataset to disk and then shut down the server",
            "1.0.0",
            "server",
            "O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)",
        ),
        "object" => ("A container for object introspection commands", "2.2.3", "generic", "Depends on subcommand."),
        "memory" => ("A container for memory diagnostics commands", "4.0.0", "server", "Depends on subcommand."),
        "debug" => ("A container for debugging commands", "1.0.0", "server", "Depends on subcommand."),
        "function" => ("A container for function commands", "7.0.0", "scripting", "Depends on subcommand."),
        "config|set" => (
            "Set configuration parameters to the given values",
            "2.0.0",
            "server",
            "O(N) when N is the number of configuration parameters provided",
        ),
        "config|get" => (
            "Get the values of configuration parameters",
            "2.0.0",
            "server",
            "O(N) when N is the number of configuration parameters provided",
        ),
        "config|resetstat" => ("Reset the stats returned by INFO", "2.0.0", "server", "O(1)"),
        "config|rewrite" => {
            ("Rewrite the configuration file with the in memory configuration", "2.8.0", "server", "O(1)")
        }
        "config|help" | "client|help" | "command|help" | "object|help" | "memory|help" | "function|help" => {
            ("Show helpful text about the different subcommands", "5.0.0", group_of_container(name), "O(1)")
        }
        "client|list" => (
            "Get the list of client connections",
            "2.4.0",
            "connection",
            "O(N) where N is the number of client connections",
        ),
        "client|info" => ("Returns information about the current client connection.", "6.2.0", "connection", "O(1)"),
        "client|kill" => (
            "Kill the connection of a client",
            "2.4.0",
            "connection",
            "O(N) where N is the number of client connections",
        ),
        "client|setname" => ("Set the current connection name", "2.6.9", "connection", "O(1)"),
        "client|getname" => ("Get the current connection name", "2.6.9", "connection", "O(1)"),
        "client|id" => ("Returns the client ID for the current connection", "5.0.0", "connection", "O(1)"),
        "command|count" => ("Get total number of Redis commands", "2.8.13", "server", "O(1)"),
        "command|info" => (
            "Get array of specific Redis command details, or all when no argument is given.",
            "2.8.13",
            "server",
            "O(N) where N is the number of commands to look up",
        ),
        "command|docs" => (
            "Get array of specific Redis command documentation",
            "7.0.0",
            "server",
            "O(N) where N is the number of commands to look up",
        ),
        "command|getkeys" => (
            "Extract keys given a full Redis command",
            "2.8.13",
            "server",
            "O(N) where N is the number of arguments to the command",
        ),
        "command|list" => (
            "Get an array of Redis command names",
            "7.0.0",
            "server",
            "O(N) where N is the total number of Redis commands",
        ),
        "object|encoding" => ("Inspect the internal encoding of a Redis object", "2.2.3", "generic", "O(1)"),
        "object|refcount" => ("Get the number of references to the value of the key", "2.2.3", "generic", "O(1)"),
        "object|idletime" => ("Get the time since a Redis object was last accessed", "2.2.3", "generic", "O(1)"),
        "object|freq" => ("Get the logarithmic access frequency counter of a Redis object", "4.0.0", "generic", "O(1)"),
        "memory|usage" => {
            ("Estimate the memory usage of a key", "4.0.0", "server", "O(N) where N is the number of samples.")
        }
        "function|flush" => {
            ("Deleting all functions", "7.0.0", "scripting", "O(N) where N is the number of functions deleted")
        }
        "get" => ("Get the value of a key", "1.0.0", "string", "O(1)"),
        "set" => ("Set the string value of a key", "1.0.0", "string", "O(1)"),
        "mget" => (
            "Get the values of all the given keys",
            "1.0.0",
            "string",
            "O(N) where N is the number of keys to retrieve.",
        ),
        "mset" => {
            ("Set multiple keys to multiple values", "1.0.1", "string", "O(N) where N is the number of keys to set.")
        }
        "del" => ("Delete a key", "1.0.0", "generic", "O(N) where N is the number of keys that will be removed."),
        "exists" => ("Determine if a key exists", "1.0.0", "generic", "O(N) where N is the number of keys to check."),
        _ => return None,
    })
}

fn group_of_container(name: &str) -> &'static str {
    match name.split('|').next() {
        Some("client") => "connection",
        Some("object") => "generic",
        Some("function") => "scripting",
        _ => "server",
    }
}

/// The doc group of a command without an entry, from its ACL categories.
fn group_of(acl: &str) -> &'static str {
    for cat in acl.split_whitespace() {
        let g = match cat {
            "@string" => "string",
            "@list" => "list",
            "@hash" => "hash",
            "@set" => "set",
            "@sortedset" => "sorted-set",
            "@stream" => "stream",
            "@geo" => "geo",
            "@hyperloglog" => "hyperloglog",
            "@bitmap" => "bitmap",
            "@pubsub" => "pubsub",
            "@scripting" => "scripting",
            "@transaction" => "transactions",
            "@connection" => "connection",
            "@keyspace" => "generic",
            _ => continue,
        };
        return g;
    }
    "server"
}

fn write_doc(out: &mut ReplyBuf, name: &str, acl: &str, subs: &'static [Sub]) {
    let (summary, since, group, complexity) = doc_of(name).unwrap_or(("", "1.0.0", group_of(acl), ""));
    let n = 3 + usize::from(!complexity.is_empty()) + usize::from(!subs.is_empty());
    out.map(n);
    out.bulk(b"summary");
    out.bulk(summary.as_bytes());
    out.bulk(b"since");
    out.bulk(since.as_bytes());
    out.bulk(b"group");
    out.bulk(group.as_bytes());
    if !complexity.is_empty() {
        out.bulk(b"complexity");
        out.bulk(complexity.as_bytes());
    }
    if !subs.is_empty() {
        out.bulk(b"subcommands");
        out.map(subs.len());
        for s in subs {
            out.bulk(s.name.as_bytes());
            write_doc(out, s.name, s.acl, &[]);
        }
    }
}

/// COMMAND DOCS [name...]: summary, since and group (and complexity where Darter knows
/// it); unknown names are left out, as in Redis.
fn docs(out: &mut ReplyBuf, names: &[&[u8]]) {
    let t = table();
    let found: Vec<&Command> =
        if names.is_empty() { t.commands.iter().collect() } else { names.iter().filter_map(|n| t.lookup(n)).collect() };
    out.map(found.len());
    for cmd in found {
        out.bulk(cmd.name.as_bytes());
        write_doc(out, cmd.name, cmd.acl, subcommands(cmd.name));
    }
}

/// Keys of a command whose key positions depend on its arguments (MOVABLE_KEYS), for
/// the patterns Redis uses. None: the arguments don't parse.
fn movable_keys(name: &str, args: &[&[u8]]) -> Option<Vec<usize>> {
    let numkeys_at = |pos: usize, first: usize| -> Option<Vec<usize>> {
        let n = crate::util::parse_i64(args.get(pos)?)?;
        if n < 0 || first + n as usize > args.len() {
            return None;
        }
        Some((first..first + n as usize).collect())
    };
    match name {
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" => numkeys_at(2, 3),
        "zunion" | "zinter" | "zdiff" | "sintercard" | "zintercard" | "lmpop" | "zmpop" => numkeys_at(1, 2),
        "blmpop" | "bzmpop" => numkeys_at(2, 3),
        "zunionstore" | "zinterstore" | "zdiffstore" => {
            let mut v = vec![1];
            v.extend(numkeys_at(2, 3)?);
            Some(v)
        }
        "xread" | "xreadgroup" => {
            let pos = args.iter().position(|a| a.eq_ignore_ascii_case(b"streams"))?;
            let rest = args.len() - pos - 1;
            if rest == 0 || !rest.is_multiple_of(2) {
                return None;
            }
            Some((pos + 1..pos + 1 + rest / 2).collect())
        }
        "sort" | "sort_ro" | "georadius" | "georadiusbymember" => {
            let mut v = vec![1];
            let mut i = 2;
            while i + 1 < args.len() {
                if args[i].eq_ignore_ascii_case(b"store") || args[i].eq_ignore_ascii_case(b"storedist") {
                    v.push(i + 1);
                    i += 1;
                }
                i += 1;
            }
            Some(v)
        }
        "migrate" => {
            if args.len() > 3 && !args[3].is_empty() {
                return Some(vec![3]);
            }
            let pos = args.iter().position(|a| a.eq_ignore_ascii_case(b"keys"))?;
            Some((pos + 1..args.len()).collect())
        }
        _ => None,
    }
}

/// COMMAND GETKEYS <command> <args...>.
fn getkeys(out: &mut ReplyBuf, cmd_args: &[&[u8]]) {
    let Some(cmd) = table().lookup(cmd_args[0]) else {
        out.error("ERR Invalid command specified");
        return;
    };
    let subs = subcommands(cmd.name);
    let (name, arity, flags, keys) = if subs.is_empty() || cmd_args.len() < 2 {
        (cmd.name, cmd.arity, cmd.flags, (cmd.first_key, cmd.last_key, cmd.step))
    } else {
        let sub = format!("{}|{}", cmd.name, String::from_utf8_lossy(cmd_args[1]).to_ascii_lowercase());
        match subs.iter().find(|s| s.name == sub) {
            Some(s) => (s.name, s.arity, s.flags, s.keys),
            None => {
                out.error("ERR Invalid command specified");
                return;
            }
        }
    };
    if keys.0 <= 0 && flags & MOVABLE_KEYS == 0 {
        out.error("ERR The command has no key arguments");
        return;
    }
    let argc = cmd_args.len() as i32;
    if (arity > 0 && arity != argc) || argc < -arity {
        out.error("ERR Invalid number of arguments specified for command");
        return;
    }
    let positions: Vec<usize> = if flags & MOVABLE_KEYS != 0 {
        match movable_keys(name, cmd_args) {
            Some(v) => v,
            None if keys.0 > 0 => key_positions(keys, cmd_args.len()),
            None => Vec::new(),
        }
    } else {
        key_positions(keys, cmd_args.len())
    };
    if positions.is_empty() {
        out.error("ERR Invalid arguments specified for command");
        return;
    }
    out.array(positions.len());
    for p in positions {
        out.bulk(cmd_args[p]);
    }
}

/// Key positions from (first, last, step) for `argc` arguments (Redis's range spec).
fn key_positions((first, last, step): (i32, i32, i32), argc: usize) -> Vec<usize> {
    let argc = argc as i32;
    let last = if last < 0 { argc + last } else { last.min(argc - 1) };
    if first <= 0 || last < first {
        return Vec::new();
    }
    (first..=last).step_by(step.max(1) as usize).map(|i| i as usize).collect()
}
