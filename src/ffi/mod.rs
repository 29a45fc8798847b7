//! The unsafe surface of the module API, in one place: the entry point and
//! command registration, the context, keys and arguments commands see, the
//! IO handles of the type callbacks, configuration and `INFO`. Everything
//! outside this folder works with the safe values it hands out.

use std::ffi::{c_char, CString};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use redis_module::raw;

/// A Redis string, as the module API passes it.
pub type RStr = raw::RedisModuleString;

/// Calls a function of the module API. Redis fills these in before any of
/// our code runs, so a missing one is a programming error.
macro_rules! api {
    ($name:ident) => {
        redis_module::raw::$name.expect(concat!("Redis module API lacks ", stringify!($name)))
    };
}
pub(crate) use api;

/// The module API functions on every command's path: `hot!` calls them
/// without `api!`'s check, which `init` makes once, at load, with
/// `hot_api::missing` (a server without one of them does not load the module).
/// `hot!` of a function not listed here does not compile.
macro_rules! hot_list {
    ($($name:ident)*) => {
        pub mod hot_api {
            $(
                #[allow(non_upper_case_globals)]
                pub const $name: () = ();
            )*

            /// The first function of the list the server lacks.
            pub fn missing() -> Option<&'static str> {
                $(
                    // SAFETY: reads a pointer the module API filled in at
                    // load, before any command runs, and never changes after.
                    if unsafe { redis_module::raw::$name }.is_none() {
                        return Some(stringify!($name));
                    }
                )*
                None
            }
        }
    };
}

hot_list! {
    RedisModule_StringPtrLen
    RedisModule_OpenKey
    RedisModule_CloseKey
    RedisModule_ModuleTypeGetType
    RedisModule_ModuleTypeGetValue
    RedisModule_GetContextFlags
    RedisModule_ReplyWithLongLong
    RedisModule_ReplyWithDouble
    RedisModule_ReplyWithStringBuffer
    RedisModule_ReplyWithNull
    RedisModule_ReplicateVerbatim
    RedisModule_NotifyKeyspaceEvent
}

/// Calls a function of `hot_list`, which `init` found present.
macro_rules! hot {
    ($name:ident) => {{
        let () = $crate::ffi::hot_api::$name;
        match redis_module::raw::$name {
            Some(f) => f,
            // SAFETY: `init` refuses to load on a server that lacks any
            // function of `hot_list`, and no command runs before `init`.
            None => std::hint::unreachable_unchecked(),
        }
    }};
}

pub mod blocked;
pub mod ctx;
pub mod io;
pub mod limits;

/// A context that names the module in log lines (`<mmap>`); Redis's log
/// reads only the module's name from it, so any thread may use it.
static LOG_CTX: AtomicPtr<raw::RedisModuleCtx> = AtomicPtr::new(ptr::null_mut());

/// A detached context with a client of its own: what the data type's
/// callbacks, which get no context that can open keys, look keys up with.
/// Used on the main thread only, where the server's data is ours to read.
static LOOKUP_CTX: AtomicPtr<raw::RedisModuleCtx> = AtomicPtr::new(ptr::null_mut());

/// Keeps the detached contexts for `log` and `find_claim`, once, at load.
///
/// # Safety
/// `ctx` must be the live load context.
pub unsafe fn keep_contexts(ctx: *mut raw::RedisModuleCtx) {
    if let Some(detach) = raw::RedisModule_GetDetachedThreadSafeContext {
        LOG_CTX.store(detach(ctx), Ordering::Relaxed);
        LOOKUP_CTX.store(detach(ctx), Ordering::Relaxed);
    }
}

/// A context to look keys up with, for code that has no command context
/// (a `RESTORE`'s load of its payload); on the main thread only. `None` on
/// a server without detached contexts.
pub fn lookup() -> Option<&'static ctx::Ctx> {
    let ctx = LOOKUP_CTX.load(Ordering::Relaxed);
    // SAFETY: a detached context kept for the module's life; the caller
    // is on the main thread.
    (!ctx.is_null()).then(|| unsafe { ctx::Ctx::from_raw(ctx) })
}

/// Writes to the Redis log. Safe from any thread.
pub fn log(level: &str, msg: &str) {
    let (Ok(level), Ok(msg)) = (CString::new(level), CString::new(msg.replace('\0', "?"))) else {
        return;
    };
    let ctx = LOG_CTX.load(Ordering::Relaxed);
    // SAFETY: reading the function table; outside Redis (unit tests) it is empty.
    match unsafe { raw::RedisModule_Log } {
        // SAFETY: a detached context or NULL, both allowed; "%s" consumes exactly one C string.
        Some(f) => unsafe { f(ctx, level.as_ptr(), c"%s".as_ptr(), msg.as_ptr()) },
        None => eprintln!("{}", msg.to_string_lossy()),
    }
}

/// Bytes of a Redis string, valid while the string lives.
///
/// # Safety
/// `s` must be a live `RedisModuleString` that outlives `'a`.
#[inline(always)]
pub unsafe fn bytes<'a>(s: *const raw::RedisModuleString) -> &'a [u8] {
    // Left unset: every server writes the length whenever it is asked for
    // one, even for a NULL string (whose text is an error message).
    let mut len = std::mem::MaybeUninit::<usize>::uninit();
    let p = hot!(RedisModule_StringPtrLen)(s, len.as_mut_ptr());
    // Never NULL: Redis and Valkey answer a NULL string with an error text.
    debug_assert!(!p.is_null());
    // SAFETY: the call above wrote the length; `p` points at the string's
    // `len` bytes, which live as long as the string does.
    std::slice::from_raw_parts(p.cast(), len.assume_init())
}

/// A new Redis string holding `b`; the caller frees it.
///
/// # Safety
/// Needs the module API (inside redis-server).
pub unsafe fn new_string(b: &[u8]) -> *mut raw::RedisModuleString {
    api!(RedisModule_CreateString)(ptr::null_mut(), b.as_ptr().cast::<c_char>(), b.len())
}
