//! The command table. Each command is one `Command`, declared beside its
//! handler: its canonical name, its short alias, arity, flags, key spec and
//! docs. Registration, the arity check, `COMMAND DOCS`, the panic message and
//! `INFO mmap` all read from here.
//!
//! Canonical names are dotted (`mmap.get`) and always registered, so no
//! server's own commands can collide with them. The short names of the first
//! version (`vget`) are registered beside them wherever the server does not
//! already have the name: Redis 8 owns `VADD`. Everything the module
//! propagates uses canonical names.

use std::cell::RefCell;
use std::ffi::CStr;

use crate::binding::Binding;
use crate::core::error::{shown, Error, Result};
use crate::core::kind::Value;
use crate::core::num::parse_index;
use crate::core::settings::sandbox;
use crate::ffi::ctx::{Args, Ctx, Key};
use crate::ffi::log;

mod bind;
mod bulk;
mod files;
mod info;
mod offload;
mod propagate;
mod read;
mod write;

pub type Handler = fn(&Ctx, &Args) -> Result<()>;

pub struct Command {
    /// Canonical name, lowercase as Redis lists its own commands.
    pub name: &'static CStr,
    /// The short name registered beside it where the server lacks one.
    pub alias: Option<&'static CStr>,
    /// Redis arity: exact when positive, a minimum when negative.
    pub arity: i32,
    /// Redis command flags: `fast` only where O(1), `deny-oom` where data grows.
    pub flags: &'static CStr,
    /// Whether the command may change its key (its key spec's access flags).
    pub write: bool,
    /// Whether argument 1 is a key; a command without one has no key spec.
    pub keyed: bool,
    pub summary: &'static str,
    pub complexity: &'static str,
    /// The arguments after the key, for `COMMAND DOCS`.
    pub args: &'static [Arg],
    pub run: Handler,
}

/// One argument after the key: name, type, and whether it repeats.
pub struct Arg {
    pub name: &'static str,
    pub kind: ArgKind,
    pub multiple: bool,
}

#[derive(Clone, Copy)]
pub enum ArgKind {
    String,
    Integer,
    Double,
    /// An optional keyword, its name the token.
    Token,
    /// An optional keyword and the value after it (`TYPE kind`).
    Keyword,
    /// An `index value` pair, shown as a block.
    Pair,
    /// An optional `start stop` pair, shown as a block: both or neither.
    Span,
}

const fn arg(name: &'static str, kind: ArgKind, multiple: bool) -> Arg {
    Arg { name, kind, multiple }
}

/// The version `COMMAND DOCS` gives as each command's `since`.
pub const SINCE: &str = "0.1.0";

/// Every command, in registration order.
pub static TABLE: &[&Command] = &[
    &bind::MMAP,
    &read::GET,
    &read::MGET,
    &write::SET,
    &write::ADD,
    &write::POP,
    &read::COUNT,
    &write::CLEAR,
    &write::RESIZE,
    &files::UNBOUND,
    &info::INFO,
    &bulk::RANGE,
    &bulk::SETRANGE,
    &bulk::APPEND,
    &bulk::STATS,
    &bulk::PREFETCH,
    #[cfg(feature = "floor")]
    &FLOOR,
    #[cfg(feature = "floor")]
    &FLOORKEY,
    #[cfg(feature = "floor")]
    &FLOORWRITE,
    #[cfg(feature = "fault-injection")]
    &PANIC,
    #[cfg(feature = "fault-injection")]
    &FAULT,
];

impl Command {
    /// The canonical name as text.
    pub fn name(&self) -> &'static str {
        self.name.to_str().expect("ASCII")
    }

    /// Whether `argc` arguments (the command name included) fit the arity,
    /// and, for a command whose arguments do not repeat (MMAP's options),
    /// its documented arguments.
    pub fn fits(&self, argc: usize) -> bool {
        let a = self.arity.unsigned_abs() as usize;
        // The hot commands, at their usual count: no walk over the arguments.
        if argc == a {
            return true;
        }
        if self.arity >= 0 {
            return false;
        }
        let most = if self.args.iter().any(|x| x.multiple) {
            usize::MAX
        } else {
            let words: usize = self
                .args
                .iter()
                .map(|x| 1 + usize::from(matches!(x.kind, ArgKind::Keyword | ArgKind::Span)))
                .sum();
            1 + usize::from(self.keyed) + words
        };
        argc >= a && argc <= most
    }
}

/// The key's binding. A broken one first tries its file again (at most
/// once a second), so that a file put back serves without `MMAP`.
#[inline]
fn bound<'k>(ctx: &Ctx, args: &Args, key: &'k mut Key) -> Result<Option<&'k mut Binding>> {
    let Some(b) = key.value::<Binding>()? else {
        return Ok(None);
    };
    if b.is_broken() {
        heal(ctx, args, b);
    } else if b.spec().readonly {
        follow(ctx, args, b);
    }
    Ok(Some(b))
}

#[cold]
#[inline(never)]
fn heal(ctx: &Ctx, args: &Args, b: &mut Binding) {
    let find = |k: &[u8], token| crate::binding::find_claim(ctx, k, token);
    if b.heal(sandbox(), args.bytes(1), ctx.db(), &find) {
        log(
            "notice",
            &format!("key '{}': file '{}' is back", shown(args.bytes(1)), b.path().display()),
        );
        ctx.notify(c"mmap", args.raw(1));
    }
}

/// A read-only key whose path now names another file binds it, logged and
/// notified (see `Binding::follow_path`). A file it cannot bind (another
/// key holds it) is logged, and the key serves the file it has.
#[cold]
#[inline(never)]
fn follow(ctx: &Ctx, args: &Args, b: &mut Binding) {
    let find = |k: &[u8], token| crate::binding::find_claim(ctx, k, token);
    let (key, path) = (shown(args.bytes(1)), b.path().display().to_string());
    match b.follow_path(sandbox(), args.bytes(1), ctx.db(), &find) {
        Ok(true) => {
            log("notice", &format!("key '{key}': file '{path}' was replaced; the key follows it"));
            ctx.notify(c"mmap", args.raw(1));
        }
        Ok(false) => {}
        Err(e) => log(
            "warning",
            &format!("key '{key}': file '{path}' was replaced, but the new file cannot be bound ({}); the key serves the old one", e.cause()),
        ),
    }
}

/// Inlined: every single-value command parses one index.
#[inline(always)]
fn index(args: &Args, i: usize) -> Result<i64> {
    let s = args.bytes(i);
    match parse_index(s) {
        Some(n) => Ok(n),
        None => Err(bad_index(s)),
    }
}

#[cold]
fn bad_index(s: &[u8]) -> Box<Error> {
    Error::BadIndex(shown(s)).into()
}

/// Parse buffers kept between commands: every command runs on the main
/// thread, so one set serves them all and the hot path allocates nothing.
#[derive(Default)]
struct Scratch {
    indices: Vec<i64>,
    found: Vec<Option<Value>>,
    /// A `MMAP.RANGE ... BLOB`'s bytes, copied out before the reply.
    bytes: Vec<u8>,
}

thread_local!(static SCRATCH: RefCell<Scratch> = RefCell::default());

/// Runs `f` with empty buffers. What the last command left (all of it, if
/// it failed or panicked) is dropped first, and a huge command's room is not
/// kept.
fn scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    const KEEP: usize = 1 << 16;
    SCRATCH.with_borrow_mut(|s| {
        s.indices.clear();
        s.found.clear();
        s.bytes.clear();
        s.indices.shrink_to(KEEP);
        s.found.shrink_to(KEEP);
        s.bytes.shrink_to(KEEP * 16);
        f(s)
    })
}

#[cfg(feature = "floor")]
const ANY_ARGS: &[Arg] = &[arg("arg", ArgKind::String, true)];

/// Benchmark builds only (`--features floor`): a command that takes any
/// arguments, does only what `run` does and replies 0. The floors' names
/// are as long as `MMAP.GET`, `MMAP.SET` and `MMAP.ADD`: the server hashes
/// and compares a command's name on every call, and a longer name would
/// raise the floor (by about 70 instructions for seven more letters).
#[cfg(feature = "floor")]
const fn floor(name: &'static CStr, write: bool, summary: &'static str, run: Handler) -> Command {
    Command {
        name,
        alias: None,
        arity: -2,
        flags: if write { c"write fast" } else { c"readonly fast" },
        write,
        keyed: true,
        summary,
        complexity: "O(1)",
        args: ANY_ARGS,
        run,
    }
}

/// What any module command costs the server, with nothing done.
#[cfg(feature = "floor")]
pub static FLOOR: Command = floor(
    c"mmap.fl0",
    false,
    "Benchmark builds only: does nothing and replies 0.",
    |ctx, _| {
        ctx.reply_int(0);
        Ok(())
    },
);

/// `MMAP.FL0` that also opens and closes its key, as every command of the
/// module must.
#[cfg(feature = "floor")]
pub static FLOORKEY: Command = floor(
    c"mmap.flk",
    false,
    "Benchmark builds only: opens and closes the key and replies 0.",
    |ctx, args| {
        let mut key = ctx.open(args.raw(1), false);
        let _ = key.value::<Binding>(); // of any type: the floor replies alike
        ctx.reply_int(0);
        Ok(())
    },
);

/// What every write of the module costs the server besides its own work:
/// its key opened for writing, the command propagated as sent and its
/// keyspace event fired.
#[cfg(feature = "floor")]
pub static FLOORWRITE: Command = floor(
    c"mmap.flw",
    true,
    "Benchmark builds only: opens the key for writing, propagates the command and replies 0.",
    |ctx, args| {
        let mut key = ctx.open(args.raw(1), true);
        let _ = key.value::<Binding>();
        drop(key);
        propagate::written(ctx, args, c"flw", propagate::Propagate::AsSent);
        ctx.reply_int(0);
        Ok(())
    },
);

/// Test builds only: proves a panic becomes an error reply.
#[cfg(feature = "fault-injection")]
pub static PANIC: Command = Command {
    name: c"mmap.panic",
    alias: None,
    arity: -1,
    flags: c"readonly",
    write: false,
    keyed: true,
    summary: "Test builds only: panics, to show that a panic becomes an error reply.",
    complexity: "O(1)",
    args: &[],
    run: |_, _| panic!("injected by MMAP.PANIC"),
};

/// Test builds only: `MMAP.FAULT read|fsync on|off` switches an injected
/// failure; `MMAP.FAULT registry <ms>` holds the registry's lock for that
/// long on another thread.
#[cfg(feature = "fault-injection")]
pub static FAULT: Command = Command {
    name: c"mmap.fault",
    alias: None,
    arity: 3,
    flags: c"readonly",
    write: false,
    keyed: false,
    summary: "Test builds only: makes a rare failure happen (read, fsync, settle, worker-panic on|off; registry <ms>; worker <ms>, a wait before each offloaded read).",
    complexity: "O(1)",
    args: &[
        arg("what", ArgKind::String, false),
        arg("setting", ArgKind::String, false),
    ],
    run: fault,
};

#[cfg(feature = "fault-injection")]
fn fault(ctx: &Ctx, args: &Args) -> Result<()> {
    use crate::core::fault::{set, Fault};
    let (what, setting) = (args.bytes(1).to_ascii_lowercase(), args.bytes(2));
    let on = || match setting.to_ascii_lowercase().as_slice() {
        b"on" => Ok(true),
        b"off" => Ok(false),
        _ => Err(Error::BadOption {
            command: args.name().to_owned(),
            option: shown(setting),
            known: "on or off",
        }),
    };
    match what.as_slice() {
        b"read" => set(Fault::Read, on()?),
        b"fsync" => set(Fault::Fsync, on()?),
        b"settle" => set(Fault::Settle, on()?),
        b"worker-panic" => set(Fault::WorkerPanic, on()?),
        b"sigbus" => crate::core::sigbus::fault_elsewhere(setting.eq_ignore_ascii_case(b"thread")),
        b"worker" => {
            let ms = parse_index(setting)
                .filter(|&n| n >= 0)
                .ok_or_else(|| Error::BadLength(shown(setting)))?;
            crate::core::fault::set_worker_delay(ms as u64);
        }
        b"registry" => {
            let ms = parse_index(setting)
                .filter(|&n| n >= 0)
                .ok_or_else(|| Error::BadLength(shown(setting)))?;
            crate::binding::hold_registry(ms as u64);
        }
        _ => {
            return Err(Error::BadOption {
                command: args.name().to_owned(),
                option: shown(&what),
                known: "read, fsync, settle, sigbus, worker, worker-panic or registry",
            }
            .into())
        }
    }
    ctx.reply_int(1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bind::MMAP;

    #[test]
    fn arity_is_exact_or_a_minimum() {
        assert!(read::GET.fits(3) && !read::GET.fits(2) && !read::GET.fits(4));
        assert!(read::MGET.fits(3) && read::MGET.fits(300) && !read::MGET.fits(2));
        assert!(write::SET.fits(4) && write::SET.fits(5) && !write::SET.fits(3));
        // MMAP key path [TYPE kind] [READONLY] [CREATE]
        assert!(MMAP.fits(3) && MMAP.fits(4) && MMAP.fits(7) && !MMAP.fits(8) && !MMAP.fits(2));
        // MMAP.RANGE key start stop [BLOB]; MMAP.STATS key [start stop]
        assert!(bulk::RANGE.fits(4) && bulk::RANGE.fits(5) && !bulk::RANGE.fits(3) && !bulk::RANGE.fits(6));
        assert!(bulk::STATS.fits(2) && bulk::STATS.fits(4) && !bulk::STATS.fits(5) && !bulk::STATS.fits(1));
    }

    #[test]
    fn canonical_names_are_dotted_and_unique_and_aliases_are_the_short_ones() {
        let mut names: Vec<&str> = Vec::new();
        for c in TABLE {
            let name = c.name();
            assert!(name == "mmap" || name.starts_with("mmap."), "{name}");
            assert_eq!(name, name.to_ascii_lowercase());
            names.push(name);
            if let Some(a) = c.alias {
                let a = a.to_str().unwrap();
                assert!(a.starts_with('v') && !a.contains('.'), "{a}");
                names.push(a);
            }
        }
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "a name is used twice");
        let aliases = TABLE.iter().filter(|c| c.alias.is_some()).count();
        assert_eq!(aliases, 8, "the eight short names of the first version");
    }

    #[test]
    fn logs_use_the_table_s_names() {
        use crate::binding::logged;
        assert_eq!(logged::MMAP, MMAP.name);
        assert_eq!(logged::RESIZE, write::RESIZE.name);
        assert_eq!(logged::ADD, write::ADD.name);
    }

    #[test]
    fn flags_match_the_key_access() {
        for c in TABLE {
            let flags = c.flags.to_str().unwrap();
            assert_eq!(flags.contains("write"), c.write, "{}", c.name());
            assert!(flags.contains("write") != flags.contains("readonly"), "{}", c.name());
        }
    }
}
