//! `mmap.*` options through the module configuration API, and the module
//! arguments that set their defaults.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use redis_module::raw;

use crate::binding::fsync::{self, Mode, MODES};
use crate::core::limits;
use crate::core::sandbox::Sandbox;
use crate::core::settings;
use crate::ffi::{api, bytes, log};
use crate::work::pool;

/// Names accepted as `loadmodule ... <name> <value>` pairs.
const KNOWN: &[&str] = &[
    "dir",
    "fsync",
    "short-names",
    "max-keys",
    "rdb-content",
    "threads",
    "offload-bytes",
];

/// The Redis string `CONFIG GET mmap.dir` returns; Redis does not free it.
static DIR_STRING: AtomicPtr<raw::RedisModuleString> = AtomicPtr::new(ptr::null_mut());

/// Reads `name value` module arguments; an unknown name or a name without a
/// value fails the load.
pub fn parse_args(args: &[Vec<u8>]) -> Result<Vec<(&'static str, String)>, String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(name) = it.next() {
        let name = String::from_utf8_lossy(name);
        let Some(&known) = KNOWN.iter().find(|k| k.eq_ignore_ascii_case(&name)) else {
            return Err(format!(
                "unknown module argument '{name}' (known: {})",
                KNOWN.join(", ")
            ));
        };
        let Some(value) = it.next() else {
            return Err(format!("module argument '{name}' has no value"));
        };
        let value = String::from_utf8(value.clone()).map_err(|_| format!("module argument '{name}' is not UTF-8"))?;
        out.push((known, value));
    }
    Ok(out)
}

/// `yes` or `no`, any case, as Redis's own boolean options take them.
pub fn yes_no(option: &str, value: &str) -> Result<bool, String> {
    if value.eq_ignore_ascii_case("yes") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("no") {
        Ok(false)
    } else {
        Err(format!("{option} must be yes or no, not '{value}'"))
    }
}

/// A `mmap.max-keys` value: a count of keys, 0 for no cap of its own.
pub fn max_keys(value: &str) -> Result<i64, String> {
    value
        .parse::<i64>()
        .ok()
        .filter(|&n| n >= 0)
        .ok_or_else(|| format!("mmap.max-keys must be an integer of 0 or more, not '{value}'"))
}

/// The `mmap.fsync` mode a name stands for, any case.
pub fn fsync_mode(name: &str) -> Result<Mode, String> {
    MODES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, m)| m)
        .ok_or_else(|| format!("mmap.fsync must be always, everysec or no, not '{name}'"))
}

/// Registers the options, applies redis.conf and `MODULE LOADEX` values, and
/// opens `mmap.dir`. An error names the option that was wrong.
pub fn load(ctx: *mut raw::RedisModuleCtx, args: &[Vec<u8>]) -> Result<(), String> {
    let args = parse_args(args)?;
    // The last value given for `name`, as Redis takes the last of a repeated option.
    let given = |name: &str| args.iter().rev().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
    let fsync_default = given("fsync").map(fsync_mode).transpose()?;
    register_fsync(ctx, fsync_default.unwrap_or(Mode::Everysec))?;
    let short_default = given("short-names")
        .map(|v| yes_no("mmap.short-names", v))
        .transpose()?;
    register_bool(
        ctx,
        c"short-names",
        short_default.unwrap_or(true),
        &settings::SHORT_NAMES,
        false,
    )?;
    let content_default = given("rdb-content")
        .map(|v| yes_no("mmap.rdb-content", v))
        .transpose()?;
    register_bool(
        ctx,
        c"rdb-content",
        content_default.unwrap_or(false),
        &settings::RDB_CONTENT,
        true,
    )?;
    let max_keys_default = given("max-keys").map(max_keys).transpose()?;
    register_max_keys(ctx, max_keys_default.unwrap_or(0))?;
    let threads_default = given("threads")
        .map(|v| count("mmap.threads", v, MAX_THREADS))
        .transpose()?;
    register_count(
        ctx,
        c"threads",
        threads_default.unwrap_or_else(default_threads),
        MAX_THREADS,
        &THREADS,
    )?;
    let offload_default = given("offload-bytes")
        .map(|v| count("mmap.offload-bytes", v, i64::MAX))
        .transpose()?;
    register_count(
        ctx,
        c"offload-bytes",
        offload_default.unwrap_or(settings::DEFAULT_OFFLOAD_BYTES as i64),
        i64::MAX,
        &OFFLOAD,
    )?;
    let dir_default = match given("dir") {
        Some(v) => v.to_string(),
        None => std::env::current_dir()
            .map_err(|e| format!("mmap.dir: cannot read the working directory: {e}"))?
            .display()
            .to_string(),
    };
    let name = c"dir";
    let default = CString::new(dir_default).map_err(|_| "mmap.dir contains a NUL byte".to_string())?;
    // SAFETY: a live load context; the callbacks and NUL-terminated strings outlive the call.
    let rc = unsafe {
        api!(RedisModule_RegisterStringConfig)(
            ctx,
            name.as_ptr(),
            default.as_ptr(),
            raw::REDISMODULE_CONFIG_IMMUTABLE,
            Some(get_dir),
            Some(set_dir),
            None,
            ptr::null_mut(),
        )
    };
    registered(rc, "mmap.dir")?;
    // SAFETY: a live load context.
    if unsafe { api!(RedisModule_LoadConfigs)(ctx) } != raw::Status::Ok as c_int {
        return Err("mmap.dir: the configured value was refused (see the line above)".into());
    }
    let s = DIR_STRING.load(Ordering::Relaxed);
    if s.is_null() {
        return Err("mmap.dir was never set".into());
    }
    // SAFETY: set_dir stored a live string, freed only when replaced.
    let dir = String::from_utf8_lossy(unsafe { bytes(s) }).into_owned();
    let sandbox = Sandbox::new(Path::new(&dir)).map_err(|e| format!("mmap.dir '{dir}': {e}"))?;
    log("notice", &format!("mapping files beneath {}", sandbox.root().display()));
    settings::set_sandbox(sandbox);
    Ok(())
}

/// The most worker threads `mmap.threads` takes.
const MAX_THREADS: i64 = 256;

/// `mmap.threads` by default: one per core, so that a long read uses every
/// core while the main thread goes on serving.
fn default_threads() -> i64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as i64)
}

/// A count option's value: an integer from 0 to `max`.
pub fn count(option: &str, value: &str, max: i64) -> Result<i64, String> {
    value
        .parse::<i64>()
        .ok()
        .filter(|&n| (0..=max).contains(&n))
        .ok_or_else(|| format!("{option} must be an integer from 0 to {max}, not '{value}'"))
}

/// A numeric option: how `CONFIG GET` reads it and `CONFIG SET` applies it.
struct Count {
    get: fn() -> i64,
    set: fn(i64) -> Result<(), String>,
}

static THREADS: Count = Count {
    get: || pool::threads() as i64,
    set: |n| pool::set_threads(n as usize).map_err(|e| format!("cannot start a worker thread: {e}")),
};

static OFFLOAD: Count = Count {
    get: || settings::offload_bytes() as i64,
    set: |n| {
        settings::OFFLOAD_BYTES.store(n as u64, Ordering::Relaxed);
        Ok(())
    },
};

fn register_count(
    ctx: *mut raw::RedisModuleCtx,
    name: &'static CStr,
    default: i64,
    max: i64,
    count: &'static Count,
) -> Result<(), String> {
    (count.set)(default)?;
    // SAFETY: a live load context; the callbacks and `count` (the private
    // data) live as long as the module.
    let rc = unsafe {
        api!(RedisModule_RegisterNumericConfig)(
            ctx,
            name.as_ptr(),
            default,
            raw::REDISMODULE_CONFIG_DEFAULT,
            0,
            max,
            Some(get_count),
            Some(set_count),
            None,
            ptr::from_ref(count).cast_mut().cast(),
        )
    };
    registered(rc, &format!("mmap.{}", name.to_string_lossy()))
}

/// # Safety
/// Called by Redis for `CONFIG GET`, with the `Count` `register_count` gave.
unsafe extern "C" fn get_count(_name: *const c_char, count: *mut c_void) -> i64 {
    ((*count.cast::<Count>()).get)()
}

/// # Safety
/// Called by Redis with a value within the registered bounds, the `Count`
/// `register_count` gave, and a writable `err` slot.
unsafe extern "C" fn set_count(
    _name: *const c_char,
    val: i64,
    count: *mut c_void,
    err: *mut *mut raw::RedisModuleString,
) -> c_int {
    match ((*count.cast::<Count>()).set)(val) {
        Ok(()) => raw::Status::Ok as c_int,
        Err(msg) => {
            log("warning", &msg);
            if !err.is_null() {
                *err = api!(RedisModule_CreateString)(ptr::null_mut(), msg.as_ptr().cast(), msg.len());
            }
            raw::Status::Err as c_int
        }
    }
}

/// The result of a `RedisModule_Register*Config` call, as the load sees it.
fn registered(rc: c_int, name: &str) -> Result<(), String> {
    if rc == raw::Status::Ok as c_int {
        Ok(())
    } else {
        Err(format!("cannot register {name}"))
    }
}

fn register_fsync(ctx: *mut raw::RedisModuleCtx, default: Mode) -> Result<(), String> {
    // Redis keeps the pointers it is given: leak them once per load.
    let names: &'static mut [*const c_char] = Box::leak(
        MODES
            .iter()
            .map(|(n, _)| CString::new(*n).expect("no NUL").into_raw() as *const c_char)
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    let values: &'static [c_int] = Box::leak(
        MODES
            .iter()
            .map(|&(_, m)| m as c_int)
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    fsync::set_mode(default);
    // SAFETY: a live load context; names and values live for the process.
    let rc = unsafe {
        api!(RedisModule_RegisterEnumConfig)(
            ctx,
            c"fsync".as_ptr(),
            default as c_int,
            raw::REDISMODULE_CONFIG_DEFAULT,
            names.as_mut_ptr(),
            values.as_ptr(),
            MODES.len() as c_int,
            Some(get_fsync),
            Some(set_fsync),
            None,
            ptr::null_mut(),
        )
    };
    registered(rc, "mmap.fsync")
}

/// Registers a yes/no option kept in `flag`, changeable at run time if `mutable`.
fn register_bool(
    ctx: *mut raw::RedisModuleCtx,
    name: &'static CStr,
    default: bool,
    flag: &'static AtomicBool,
    mutable: bool,
) -> Result<(), String> {
    flag.store(default, Ordering::Relaxed);
    let flags = if mutable {
        raw::REDISMODULE_CONFIG_DEFAULT
    } else {
        raw::REDISMODULE_CONFIG_IMMUTABLE
    };
    // SAFETY: a live load context; the callbacks and the flag (the private
    // data) live as long as the module.
    let rc = unsafe {
        api!(RedisModule_RegisterBoolConfig)(
            ctx,
            name.as_ptr(),
            default as c_int,
            flags,
            Some(get_bool),
            Some(set_bool),
            None,
            ptr::from_ref(flag).cast_mut().cast(),
        )
    };
    registered(rc, &format!("mmap.{}", name.to_string_lossy()))
}

/// # Safety
/// Called by Redis for `CONFIG GET`, with the flag `register_bool` gave.
unsafe extern "C" fn get_bool(_name: *const c_char, flag: *mut c_void) -> c_int {
    (*flag.cast::<AtomicBool>()).load(Ordering::Relaxed) as c_int
}

/// # Safety
/// Called by Redis with the flag `register_bool` gave.
unsafe extern "C" fn set_bool(
    _name: *const c_char,
    val: c_int,
    flag: *mut c_void,
    _err: *mut *mut raw::RedisModuleString,
) -> c_int {
    (*flag.cast::<AtomicBool>()).store(val != 0, Ordering::Relaxed);
    raw::Status::Ok as c_int
}

fn register_max_keys(ctx: *mut raw::RedisModuleCtx, default: i64) -> Result<(), String> {
    limits::set_configured(default as u64);
    // SAFETY: a live load context; the callbacks live as long as the module.
    let rc = unsafe {
        api!(RedisModule_RegisterNumericConfig)(
            ctx,
            c"max-keys".as_ptr(),
            default,
            raw::REDISMODULE_CONFIG_DEFAULT,
            0,
            i64::MAX,
            Some(get_max_keys),
            Some(set_max_keys),
            None,
            ptr::null_mut(),
        )
    };
    registered(rc, "mmap.max-keys")
}

/// # Safety
/// Called by Redis for `CONFIG GET`.
unsafe extern "C" fn get_max_keys(_name: *const c_char, _privdata: *mut c_void) -> i64 {
    limits::configured() as i64
}

/// # Safety
/// Called by Redis with a value within the registered bounds. Lowering it
/// below the keys bound now unbinds nothing: it refuses new ones.
unsafe extern "C" fn set_max_keys(
    _name: *const c_char,
    val: i64,
    _privdata: *mut c_void,
    _err: *mut *mut raw::RedisModuleString,
) -> c_int {
    limits::set_configured(val.max(0) as u64);
    raw::Status::Ok as c_int
}

/// # Safety
/// Called by Redis for `CONFIG GET`.
unsafe extern "C" fn get_fsync(_name: *const c_char, _privdata: *mut c_void) -> c_int {
    fsync::mode() as c_int
}

/// # Safety
/// Called by Redis with one of the registered values.
unsafe extern "C" fn set_fsync(
    _name: *const c_char,
    val: c_int,
    _privdata: *mut c_void,
    _err: *mut *mut raw::RedisModuleString,
) -> c_int {
    match MODES.iter().find(|&&(_, m)| m as c_int == val) {
        Some(&(_, m)) => {
            fsync::set_mode(m);
            raw::Status::Ok as c_int
        }
        None => raw::Status::Err as c_int,
    }
}

fn check_dir(dir: &str) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(format!("mmap.dir '{dir}' is not a directory")),
        Err(e) => Err(format!("mmap.dir '{dir}': {e}")),
    }
}

/// # Safety
/// Called by Redis with the main thread's lock held.
unsafe extern "C" fn get_dir(_name: *const c_char, _privdata: *mut c_void) -> *mut raw::RedisModuleString {
    DIR_STRING.load(Ordering::Relaxed)
}

/// # Safety
/// Called by Redis with a live value string and a writable `err` slot.
unsafe extern "C" fn set_dir(
    _name: *const c_char,
    val: *mut raw::RedisModuleString,
    _privdata: *mut c_void,
    err: *mut *mut raw::RedisModuleString,
) -> c_int {
    let value = String::from_utf8_lossy(bytes(val)).into_owned();
    if let Err(msg) = check_dir(&value) {
        log("warning", &msg);
        if !err.is_null() {
            *err = api!(RedisModule_CreateString)(ptr::null_mut(), msg.as_ptr().cast(), msg.len());
        }
        return raw::Status::Err as c_int;
    }
    let s = api!(RedisModule_CreateString)(ptr::null_mut(), value.as_ptr().cast(), value.len());
    let old = DIR_STRING.swap(s, Ordering::Relaxed);
    if !old.is_null() {
        api!(RedisModule_FreeString)(ptr::null_mut(), old);
    }
    raw::Status::Ok as c_int
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<Vec<u8>> {
        args.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    #[test]
    fn dir_pair_is_accepted() {
        assert_eq!(parse_args(&v(&["dir", "/x"])).unwrap(), vec![("dir", "/x".to_string())]);
        assert_eq!(parse_args(&v(&[])).unwrap(), vec![]);
    }

    #[test]
    fn unknown_or_unpaired_arguments_are_named() {
        let e = parse_args(&v(&["size", "3"])).unwrap_err();
        assert!(e.contains("'size'"), "{e}");
        let e = parse_args(&v(&["dir"])).unwrap_err();
        assert!(e.contains("'dir' has no value"), "{e}");
    }

    #[test]
    fn fsync_modes_are_named_in_any_case() {
        assert_eq!(fsync_mode("always"), Ok(Mode::Always));
        assert_eq!(fsync_mode("EverySec"), Ok(Mode::Everysec));
        assert_eq!(fsync_mode("no"), Ok(Mode::No));
        assert!(fsync_mode("sometimes").unwrap_err().contains("'sometimes'"));
        assert_eq!(
            parse_args(&v(&["fsync", "no", "dir", "/d"])).unwrap(),
            vec![("fsync", "no".to_string()), ("dir", "/d".to_string())]
        );
    }

    #[test]
    fn short_names_take_yes_or_no() {
        assert_eq!(yes_no("mmap.short-names", "yes"), Ok(true));
        assert_eq!(yes_no("mmap.short-names", "NO"), Ok(false));
        let e = yes_no("mmap.short-names", "maybe").unwrap_err();
        assert!(e.contains("mmap.short-names") && e.contains("'maybe'"), "{e}");
        assert_eq!(
            parse_args(&v(&["short-names", "no"])).unwrap(),
            vec![("short-names", "no".to_string())]
        );
    }

    #[test]
    fn max_keys_is_a_count() {
        assert_eq!(max_keys("0"), Ok(0));
        assert_eq!(max_keys("50000"), Ok(50_000));
        for bad in ["-1", "x", "1.5", ""] {
            assert!(max_keys(bad).unwrap_err().contains("mmap.max-keys"), "{bad}");
        }
        assert_eq!(
            parse_args(&v(&["max-keys", "10"])).unwrap(),
            vec![("max-keys", "10".to_string())]
        );
    }

    #[test]
    fn dir_must_be_a_directory() {
        let d = tempfile::tempdir().unwrap();
        assert!(check_dir(d.path().to_str().unwrap()).is_ok());
        let f = d.path().join("f");
        std::fs::write(&f, b"").unwrap();
        assert!(check_dir(f.to_str().unwrap()).unwrap_err().contains("not a directory"));
        assert!(check_dir("/nonexistent/xyz").is_err());
    }
}
