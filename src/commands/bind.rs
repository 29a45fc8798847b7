//! `MMAP`: binds a key to a file.

use super::propagate::{written, Propagate};
use super::{arg, ArgKind, Command};
use crate::binding::Binding;
use crate::error::{shown, Error, Result};
use crate::ffi::config::sandbox;
use crate::ffi::ctx::{Args, Ctx};
use crate::ffi::log;
use crate::persist::Logged;

pub static MMAP: Command = Command {
    name: c"mmap",
    alias: None,
    arity: -3,
    flags: c"write deny-oom",
    write: true,
    keyed: true,
    summary: "Binds the key to a file of raw little-endian f64 values under mmap.dir, creating the file if absent (while loading or following a master: only with CREATE). Returns the number of values.",
    complexity: "O(1)",
    args: &[arg("path", ArgKind::String, false), arg("CREATE", ArgKind::Token, false)],
    run: mmap,
};

/// `MMAP key path [CREATE]`. Replaying an AOF or following a master, a
/// missing file is created only with CREATE, which the module writes only
/// where the commands after it rebuild the whole content; otherwise a file
/// that is gone stays gone and the key says why.
fn mmap(ctx: &Ctx, args: &Args) -> Result<()> {
    let key_name = args.bytes(1);
    let path = args.bytes(2);
    // Four arguments at most: the arity check allows no more.
    let create_flag = match args.len() {
        3 => false,
        _ if args.bytes(3).eq_ignore_ascii_case(b"CREATE") => true,
        _ => {
            return Err(Error::BadOption {
                command: args.name().to_owned(),
                option: shown(args.bytes(3)),
                known: "CREATE",
            })
        }
    };
    let sb = sandbox();
    let rel = sb.relative(path).map_err(|cause| Error::Path {
        path: shown(path),
        cause,
    })?;
    let find = |k: &[u8], db, token| ctx.find_claim(k, db, token);
    let mut key = ctx.open(args.raw(1), true);
    // The count, and whether the binding changed (and the file was created).
    let (n, changed) = match key.binding()? {
        Some(b) => {
            let (n, reopened) = b.rebind(sb, &rel, key_name, ctx.db(), &find)?;
            (n, reopened.then_some(false))
        }
        None => {
            let following = ctx.loading() || ctx.replicated();
            let (b, created) = match Binding::open(sb, &rel, key_name, ctx.db(), create_flag || !following, &find) {
                Ok(opened) => opened,
                Err(e) if following => {
                    let cause = e.cause();
                    log(
                        "warning",
                        &format!("key '{}': file '{}': {cause}", shown(key_name), rel.display()),
                    );
                    (Binding::broken(&rel, cause), false)
                }
                Err(e) => return Err(e),
            };
            let n = b.opened().map_or(0, |v| v.len());
            key.set(b);
            (n, Some(created))
        }
    };
    if let Some(create) = changed {
        written(
            ctx,
            args,
            c"mmap",
            Propagate::Instead(Logged::Mmap { rel: &rel, create }),
        );
    }
    ctx.reply_int(n as i64);
    Ok(())
}
