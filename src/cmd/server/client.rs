//! CLIENT: connection introspection and control.
//!
//! ```text
//!   ID / GETNAME / SETNAME / INFO / SETINFO / NO-EVICT / NO-TOUCH
//!        ── the calling connection only, answered in place
//!   LIST / KILL
//!        ── a job on every shard walks that thread's connection slab
//!           (LIST: their info lines; KILL: marks matches closing and shuts their
//!            sockets down so their loops free them) ── merged reply
//! ```
//!
//! The calling connection sits in its slot (waiting) while the jobs run; jobs skip it
//! by its (thread, slot) and LIST adds its line, taken before the broadcast, itself.

use super::{BAD_NAME, find_sub, help_reply, valid_name};
use crate::conn::{Conn, Conns};
use crate::op::OpStatus;
use crate::shard::{Shard, unix_ms};
use crate::tx::{Ctx, Origin};

const HELP: &[&str] = &[
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are:",
    "    * LIB-NAME: the client lib name.",
    "    * LIB-VER: the client lib version.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "NO-TOUCH (ON|OFF)",
    "    Will not touch LRU/LFU stats when this mode is on.",
];

pub fn client(ctx: &mut Ctx, args: &[&[u8]]) {
    let Some(s) = find_sub(&mut ctx.conn.out, "client", args) else { return };
    ctx.conn.last_cmd = s.name;
    match &s.name[7..] {
        "id" => ctx.conn.out.int(ctx.conn.id as i64),
        "getname" => {
            if ctx.conn.name.is_empty() {
                ctx.conn.out.null();
            } else {
                ctx.conn.out.bulk(&ctx.conn.name);
            }
        }
        "setname" => {
            if valid_name(args[2]) {
                ctx.conn.name = args[2].to_vec();
                ctx.conn.out.ok();
            } else {
                ctx.conn.out.error(BAD_NAME);
            }
        }
        "info" => {
            let mut line = own_info_line(ctx.conn, args);
            line.push('\n');
            ctx.conn.out.verbatim("txt", line.as_bytes());
        }
        "getredir" => ctx.conn.out.int(-1),
        "no-evict" | "no-touch" => {
            let (on, off) = (args[2].eq_ignore_ascii_case(b"on"), args[2].eq_ignore_ascii_case(b"off"));
            if on || off {
                // NO-TOUCH rides on the reply buffer to whichever shard runs a command
                // (`ReplyBuf::no_touch`); NO-EVICT has nothing to protect from.
                if s.name == "client|no-touch" {
                    ctx.conn.out.no_touch = on;
                }
                ctx.conn.out.ok();
            } else {
                OpStatus::Syntax.reply(&mut ctx.conn.out);
            }
        }
        "setinfo" => setinfo(ctx.conn, args),
        "list" => list(ctx, args),
        "kill" => kill(ctx, args),
        _ => help_reply(&mut ctx.conn.out, "client", HELP),
    }
}

/// CLIENT SETINFO LIB-NAME|LIB-VER <value> (Redis 7.2).
fn setinfo(c: &mut Conn, args: &[&[u8]]) {
    let attr = args[2];
    let val = args[3];
    let is_name = attr.eq_ignore_ascii_case(b"lib-name");
    if !is_name && !attr.eq_ignore_ascii_case(b"lib-ver") {
        c.out.error(&format!("ERR Unrecognized option '{}'", String::from_utf8_lossy(attr)));
        return;
    }
    if !valid_name(val) {
        c.out.error(&format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            String::from_utf8_lossy(attr)
        ));
        return;
    }
    if is_name {
        c.lib_name = val.to_vec();
    } else {
        c.lib_ver = val.to_vec();
    }
    c.out.ok();
}

/// The calling connection's CLIENT LIST line, with `argv-mem` the bytes of the command
/// it is running (`args`), as Redis. Its read buffer is lent to the parser meanwhile;
/// `Conn::info_line` reports the figures recorded when it was lent.
fn own_info_line(c: &Conn, args: &[&[u8]]) -> String {
    let argv_mem = args.iter().map(|a| a.len()).sum();
    c.info_line(unix_ms(), argv_mem)
}

/// Client types of TYPE filters: Some(true) for normal (every Darter client), Some(false)
/// for the types Darter has no clients of, None if unknown.
fn client_type(name: &[u8]) -> Option<bool> {
    match name.to_ascii_lowercase().as_slice() {
        b"normal" => Some(true),
        b"slave" | b"replica" | b"pubsub" | b"master" => Some(false),
        _ => None,
    }
}

fn unknown_type(name: &[u8]) -> String {
    format!("ERR Unknown client type '{}'", String::from_utf8_lossy(name))
}

/// True if slot `idx` of shard `s` is the connection that issued the command.
fn is_caller(s: &Shard, o: Origin, idx: usize) -> bool {
    s.id == o.thread as usize && idx == o.idx as usize
}

fn list(ctx: &mut Ctx, args: &[&[u8]]) {
    let mut ids: Option<Vec<i64>> = None;
    if args.len() == 4 && args[2].eq_ignore_ascii_case(b"type") {
        match client_type(args[3]) {
            None => {
                ctx.conn.out.error(&unknown_type(args[3]));
                return;
            }
            Some(false) => {
                ctx.conn.out.verbatim("txt", b"");
                return;
            }
            Some(true) => {}
        }
    } else if args.len() > 3 && args[2].eq_ignore_ascii_case(b"id") {
        let mut v = Vec::new();
        for a in &args[3..] {
            match crate::util::parse_i64(a) {
                Some(id) => v.push(id),
                None => {
                    ctx.conn.out.error("ERR Invalid client ID");
                    return;
                }
            }
        }
        ids = Some(v);
    } else if args.len() != 2 {
        OpStatus::Syntax.reply(&mut ctx.conn.out);
        return;
    }
    let mine = (ctx.conn.id, own_info_line(ctx.conn, args));
    let wanted = ids.clone();
    let o = ctx.origin();
    ctx.broadcast_threads(
        move |_| {
            let wanted = wanted.clone();
            move |s: &mut Shard, conns: &mut Conns| {
                let now = unix_ms();
                let mut lines: Vec<(u64, String)> = Vec::new();
                for (idx, slot) in conns.slab.iter() {
                    let Some(conn) = slot.conn.as_ref() else { continue };
                    if is_caller(s, o, idx) || conn.is_closing() {
                        continue;
                    }
                    if wanted.as_ref().is_some_and(|w| !w.contains(&(conn.id as i64))) {
                        continue;
                    }
                    lines.push((conn.id, conn.info_line(now, 0)));
                }
                lines
            }
        },
        move |parts: Vec<Vec<(u64, String)>>, out| {
            let mut all: Vec<(u64, String)> = vec![mine];
            all.extend(parts.into_iter().flatten());
            let mut text = String::new();
            match ids {
                Some(ids) => {
                    // In argument order, as Redis looks each id up in turn.
                    for id in ids {
                        if let Some((_, l)) = all.iter().find(|(i, _)| *i as i64 == id) {
                            text.push_str(l);
                            text.push('\n');
                        }
                    }
                }
                None => {
                    all.sort_by_key(|(id, _)| *id);
                    for (_, l) in all {
                        text.push_str(&l);
                        text.push('\n');
                    }
                }
            }
            out.verbatim("txt", text.as_bytes());
        },
    );
}

/// What CLIENT KILL matches.
#[derive(Clone, Default)]
struct KillFilter {
    id: Option<u64>,
    addr: Option<Vec<u8>>,
    laddr: Option<Vec<u8>>,
    /// A TYPE other than normal: Darter has no such clients.
    no_type_match: bool,
    skipme: bool,
}

impl KillFilter {
    fn matches(&self, c: &Conn) -> bool {
        !self.no_type_match
            && self.id.is_none_or(|id| c.id == id)
            && self.addr.as_ref().is_none_or(|a| c.peer.as_bytes() == a.as_slice())
            && self.laddr.as_ref().is_none_or(|a| c.local.as_bytes() == a.as_slice())
    }
}

fn kill(ctx: &mut Ctx, args: &[&[u8]]) {
    let old_form = args.len() == 3;
    let mut f = KillFilter { skipme: true, ..Default::default() };
    if old_form {
        f.addr = Some(args[2].to_vec());
        f.skipme = false;
    } else {
        let mut i = 2;
        while i < args.len() {
            let opt = args[i];
            let Some(val) = args.get(i + 1).copied() else {
                OpStatus::Syntax.reply(&mut ctx.conn.out);
                return;
            };
            if opt.eq_ignore_ascii_case(b"id") {
                match crate::util::parse_i64(val) {
                    Some(id) if id >= 1 => f.id = Some(id as u64),
                    _ => {
                        ctx.conn.out.error("ERR client-id should be greater than 0");
                        return;
                    }
                }
            } else if opt.eq_ignore_ascii_case(b"type") {
                match client_type(val) {
                    None => {
                        ctx.conn.out.error(&unknown_type(val));
                        return;
                    }
                    Some(normal) => f.no_type_match |= !normal,
                }
            } else if opt.eq_ignore_ascii_case(b"addr") {
                f.addr = Some(val.to_vec());
            } else if opt.eq_ignore_ascii_case(b"laddr") {
                f.laddr = Some(val.to_vec());
            } else if opt.eq_ignore_ascii_case(b"user") {
                if val != b"default" {
                    ctx.conn.out.error(&format!("ERR No such user '{}'", String::from_utf8_lossy(val)));
                    return;
                }
            } else if opt.eq_ignore_ascii_case(b"skipme") {
                if val.eq_ignore_ascii_case(b"yes") {
                    f.skipme = true;
                } else if val.eq_ignore_ascii_case(b"no") {
                    f.skipme = false;
                } else {
                    OpStatus::Syntax.reply(&mut ctx.conn.out);
                    return;
                }
            } else {
                OpStatus::Syntax.reply(&mut ctx.conn.out);
                return;
            }
            i += 2;
        }
    }
    let o = ctx.origin();
    ctx.broadcast_threads(
        move |_| {
            let f = f.clone();
            move |s: &mut Shard, conns: &mut Conns| {
                let victims: Vec<usize> = conns
                    .slab
                    .iter()
                    .filter(|(_, slot)| slot.conn.as_ref().is_some_and(|c| !c.is_closing() && f.matches(c)))
                    .map(|(idx, _)| idx)
                    .collect();
                let mut killed = 0i64;
                for idx in victims {
                    if is_caller(s, o, idx) {
                        if f.skipme {
                            continue;
                        }
                        // The caller waits for this reply: close it once the reply is out.
                        if let Some(me) = conns.slab[idx].conn.as_mut() {
                            me.close_after_reply();
                        }
                        killed += 1;
                    } else if crate::runtime::io::kill_conn(conns, &s.g, idx) {
                        killed += 1;
                    }
                }
                killed
            }
        },
        move |counts: Vec<i64>, out| {
            let killed: i64 = counts.iter().sum();
            if old_form {
                if killed == 0 {
                    out.error("ERR No such client");
                } else {
                    out.ok();
                }
            } else {
                out.int(killed);
            }
        },
    );
}
