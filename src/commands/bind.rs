//! `MMAP`: binds a key to a file.

use super::propagate::{written, Propagate};
use super::{arg, ArgKind, Command};
use crate::binding::Logged;
use crate::binding::{Binding, Target};
use crate::core::error::{shown, Error, Result};
use crate::core::kind::{Kind, Spec};
use crate::core::settings::sandbox;
use crate::ffi::ctx::{Args, Ctx};
use crate::ffi::log;

pub static MMAP: Command = Command {
    name: c"mmap",
    alias: None,
    arity: -3,
    flags: c"write deny-oom",
    write: true,
    keyed: true,
    summary: "Binds the key to a file of raw little-endian values of one kind (float64 unless TYPE says otherwise) under mmap.dir, creating the file if absent (while loading or following a master, or with READONLY: only with CREATE). READONLY maps it read-only. Returns the number of values.",
    complexity: "O(1)",
    args: &[
        arg("path", ArgKind::String, false),
        arg("TYPE kind", ArgKind::Keyword, false),
        arg("READONLY", ArgKind::Token, false),
        arg("CREATE", ArgKind::Token, false),
    ],
    run: mmap,
};

/// The options after the path.
struct Options {
    spec: Spec,
    create: bool,
}

/// `[TYPE kind] [READONLY] [CREATE]`, in any order and any case, each at
/// most once.
fn options(args: &Args) -> Result<Options> {
    let mut words = (3..args.len()).map(|i| args.bytes(i));
    let (mut kind, mut readonly, mut create) = (None, false, false);
    let command = || args.name().to_owned();
    let once = |seen: bool, option| match seen {
        true => Err(Error::Repeated {
            command: command(),
            option,
        }),
        false => Ok(()),
    };
    while let Some(word) = words.next() {
        if word.eq_ignore_ascii_case(b"TYPE") {
            once(kind.is_some(), "TYPE")?;
            let name = words.next().ok_or_else(|| Error::NoOptionValue {
                command: command(),
                option: "TYPE",
            })?;
            kind = Some(Kind::parse(name).ok_or_else(|| Error::UnknownKind(shown(name)))?);
        } else if word.eq_ignore_ascii_case(b"READONLY") {
            once(readonly, "READONLY")?;
            readonly = true;
        } else if word.eq_ignore_ascii_case(b"CREATE") {
            once(create, "CREATE")?;
            create = true;
        } else {
            return Err(Error::BadOption {
                command: command(),
                option: shown(word),
                known: "TYPE, READONLY, CREATE",
            }
            .into());
        }
    }
    let spec = Spec {
        kind: kind.unwrap_or(Spec::DEFAULT.kind),
        readonly,
    };
    Ok(Options { spec, create })
}

/// `MMAP key path [TYPE kind] [READONLY] [CREATE]`. Replaying an AOF or
/// following a master, a missing file is created only with CREATE, which
/// the module writes only where the commands after it rebuild the whole
/// content; otherwise a file that is gone stays gone and the key says why.
/// A read-only key's file is created only with CREATE: mapping a file that
/// is not there read-only is more likely a wrong path than a wish for an
/// empty vector.
fn mmap(ctx: &Ctx, args: &Args) -> Result<()> {
    let key_name = args.bytes(1);
    let path = args.bytes(2);
    let Options { spec, create } = options(args)?;
    let sb = sandbox();
    let rel = sb.relative(path).map_err(|cause| Error::Path {
        path: shown(path),
        cause,
    })?;
    let find = |k: &[u8], token| crate::binding::find_claim(ctx, k, token);
    let target = Target {
        rel: &rel,
        spec,
        key: key_name,
        db: ctx.db(),
    };
    let mut key = ctx.open(args.raw(1), true);
    // The count, and whether the binding changed (and the file was created).
    let (n, changed) = match key.value::<Binding>()? {
        Some(b) => {
            let (n, reopened) = b.rebind(sb, &target, &find)?;
            (n, reopened.then_some(false))
        }
        None => {
            let following = ctx.loading() || ctx.replicated();
            let may_create = create || !(following || spec.readonly);
            let (b, created) = match Binding::open(sb, &target, may_create, &find) {
                Ok(opened) => opened,
                Err(e) if following => {
                    let cause = e.cause();
                    log(
                        "warning",
                        &format!("key '{}': file '{}': {cause}", shown(key_name), rel.display()),
                    );
                    (Binding::broken(&rel, spec, cause), false)
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
            Propagate::Instead(Logged::Mmap {
                rel: &rel,
                spec,
                create,
            }),
        );
    }
    ctx.reply_int(n as i64);
    Ok(())
}
