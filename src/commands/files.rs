//! `MMAP.UNBOUND`: the files under `mmap.dir` that no key binds.

use std::collections::HashSet;
use std::ffi::CStr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::Command;
use crate::binding::claimed;
use crate::core::error::{Error, Result};
use crate::core::settings::sandbox;
use crate::ffi::ctx::{Args, Ctx};

pub static UNBOUND: Command = Command {
    name: c"mmap.unbound",
    alias: None,
    arity: 1,
    flags: c"readonly admin",
    write: false,
    keyed: false,
    summary: "Lists the files under mmap.dir that no key binds (left by DEL, resharding or failover), with their sizes in bytes, leaving out the server's own files.",
    complexity: "O(N) where N is the number of files under mmap.dir",
    args: &[],
    run: unbound,
};

/// The server's own files and folders, named by these options relative to
/// its working directory (and its config file, which `INFO` names): never
/// data of ours.
const SERVER_FILES: [&CStr; 4] = [c"dbfilename", c"appenddirname", c"cluster-config-file", c"logfile"];

fn unbound(ctx: &Ctx, _args: &Args) -> Result<()> {
    let sb = sandbox();
    let cwd = std::env::current_dir().unwrap_or_default();
    let inside = |p: &Path| cwd.join(p).strip_prefix(sb.root()).ok().map(Path::to_path_buf);
    let server: HashSet<PathBuf> = SERVER_FILES
        .iter()
        .filter_map(|&name| ctx.config(name))
        .chain(ctx.server_info(c"server", c"config_file"))
        .filter(|v| !v.is_empty())
        .filter_map(|v| inside(Path::new(&v)))
        .collect();
    // Redis's own temporary RDB and AOF files, in its working directory.
    let temp = |rel: &Path| {
        let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
        inside(Path::new(name)).as_deref() == Some(rel) && name.starts_with("temp-")
    };
    let (ids, broken) = claimed();
    let files = sb
        .files(|dir| server.contains(dir))
        .map_err(|e| Error::Listing(e.to_string()))?;
    let unbound: Vec<(String, u64)> = files
        .into_iter()
        .filter(|(rel, m)| {
            !ids.contains(&(m.dev(), m.ino())) && !broken.contains(rel) && !server.contains(rel) && !temp(rel)
        })
        .map(|(rel, m)| (rel.display().to_string(), m.len()))
        .collect();
    ctx.reply_map(unbound.len());
    for (path, size) in &unbound {
        ctx.reply_str(path);
        ctx.reply_int(*size as i64);
    }
    Ok(())
}
