//! The small, safe surface of the Redis module API that commands use.
//! Raw pointers stay in here; commands see `Ctx`, `Args` and `Key`.

use std::ffi::{c_char, c_int, CStr, CString};
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use redis_module::raw;

use super::{bytes, log};
use crate::core::counters;
use crate::core::error::{Error, Result};
use crate::core::kind::Value;
use crate::core::num::ValueBuf;

/// A command the module writes into a log (the replication stream and the
/// AOF, or a rewritten AOF), after its name and key: what the callers turn
/// their own commands into, so that this layer knows none of them.
pub enum Line<'a> {
    /// One integer: `name key n`.
    Int(i64),
    /// Words given as bytes, each made a Redis string for the call.
    Texts(&'a [&'a [u8]]),
    /// Redis strings the caller holds (the running command's arguments).
    Strings(&'a [*mut raw::RedisModuleString]),
}

/// Writes a `Line` with `RedisModule_Replicate` or `RedisModule_EmitAOF`,
/// which take the same variadic format after their first argument (a
/// context, an AOF handle). Each format letter matches the arguments
/// after it: "s" a Redis string, "l" a long long, "v" an array of Redis
/// strings and its length. Arguments past the format are not read.
macro_rules! log_line {
    ($f:expr, $to:expr, $name:expr, $key:expr, $line:expr) => {{
        let name: &std::ffi::CStr = $name;
        match $line {
            $crate::ffi::ctx::Line::Int(n) => {
                $f($to, name.as_ptr(), c"sl".as_ptr(), $key, n);
            }
            $crate::ffi::ctx::Line::Strings(v) => {
                $f($to, name.as_ptr(), c"sv".as_ptr(), $key, v.as_ptr(), v.len());
            }
            $crate::ffi::ctx::Line::Texts(words) => {
                let v: Vec<*mut redis_module::raw::RedisModuleString> =
                    words.iter().map(|w| $crate::ffi::new_string(w)).collect();
                $f($to, name.as_ptr(), c"sv".as_ptr(), $key, v.as_ptr(), v.len());
                for s in v {
                    $crate::ffi::api!(RedisModule_FreeString)(std::ptr::null_mut(), s);
                }
            }
        }
    }};
}
pub(crate) use log_line;

static TYPE: AtomicPtr<raw::RedisModuleType> = AtomicPtr::new(ptr::null_mut());

/// The Rust type the module's values are boxes of, for debug checks.
static VALUE: std::sync::OnceLock<std::any::TypeId> = std::sync::OnceLock::new();

/// Records the module's data type once it is created, for key type checks,
/// and the type `T` its values are boxes of.
pub fn set_type<T: 'static>(t: *mut raw::RedisModuleType) {
    TYPE.store(t, Ordering::Relaxed);
    let _ = VALUE.set(std::any::TypeId::of::<T>());
}

pub fn data_type() -> *mut raw::RedisModuleType {
    TYPE.load(Ordering::Relaxed)
}

/// Runs a callback that has no way to answer a client: a panic is logged
/// and `fallback` returned.
pub fn guard<T>(name: &str, fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        log_panic(name, payload.as_ref());
        fallback
    })
}

pub fn log_panic(name: &str, payload: &(dyn std::any::Any + Send)) {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic");
    counters::count_panic();
    log("warning", &format!("panic in {name}: {what}"));
}

/// The arguments of one command call, and the names it was reached by.
pub struct Args<'a> {
    /// The server's own array (the client's), which `replicate_as_sent`
    /// changes for the length of one call; slices of it are made afresh.
    argv: *mut *mut raw::RedisModuleString,
    argc: usize,
    /// The name the client used, lower case.
    name: &'static CStr,
    /// The canonical name as a Redis string, when the client used the
    /// short one: what the logs get in its place.
    canonical: *mut raw::RedisModuleString,
    _call: PhantomData<&'a ()>,
}

impl<'a> Args<'a> {
    /// # Safety
    /// `argv` must be the `argc` (at least one) arguments Redis passed the
    /// running command, live for `'a`; `canonical` NULL, or a Redis string
    /// that lives as long as the module.
    #[inline(always)]
    pub unsafe fn new(
        argv: *mut *mut raw::RedisModuleString,
        argc: usize,
        name: &'static CStr,
        canonical: *mut raw::RedisModuleString,
    ) -> Args<'a> {
        debug_assert!(!argv.is_null() && argc > 0);
        Args {
            argv,
            argc,
            name,
            canonical,
            _call: PhantomData,
        }
    }

    pub fn len(&self) -> usize {
        self.argc
    }

    fn argv(&self) -> &'a [*mut raw::RedisModuleString] {
        // SAFETY: `new`'s contract: argc live strings for 'a. Only
        // `replicate_as_sent` writes the array, while no slice is held.
        unsafe { std::slice::from_raw_parts(self.argv, self.argc) }
    }

    pub fn bytes(&self, i: usize) -> &'a [u8] {
        // SAFETY: argv strings live for the whole command call.
        unsafe { bytes(self.argv()[i]) }
    }

    pub fn raw(&self, i: usize) -> *mut raw::RedisModuleString {
        self.argv()[i]
    }

    /// `name` as the C string it is.
    pub fn cname(&self) -> &'static CStr {
        self.name
    }

    /// The name the client reached the command by, in lower case as
    /// Redis names commands in its own errors, whatever case was typed.
    pub fn name(&self) -> &'static str {
        self.name.to_str().expect("ASCII")
    }
}

/// The server's context of the running callback. A reference to it is the
/// context pointer itself, so handlers pass it in a register and read no
/// memory to reach it.
#[repr(transparent)]
pub struct Ctx(raw::RedisModuleCtx);

// What makes `from_raw` sound: no bytes behind the pointer are Rust's.
const _: () = assert!(std::mem::size_of::<raw::RedisModuleCtx>() == 0);

impl Ctx {
    /// # Safety
    /// `ptr` must be a context Redis passed to the running callback, live
    /// for `'a`.
    pub unsafe fn from_raw<'a>(ptr: *mut raw::RedisModuleCtx) -> &'a Ctx {
        // SAFETY: the server's context type is opaque and of size 0 to
        // Rust, so the reference reads and claims no bytes of it.
        unsafe { &*ptr.cast::<Ctx>() }
    }

    pub(super) fn ptr(&self) -> *mut raw::RedisModuleCtx {
        (self as *const Ctx).cast_mut().cast()
    }

    pub fn flags(&self) -> c_int {
        // SAFETY: a live context.
        unsafe { hot!(RedisModule_GetContextFlags)(self.ptr()) }
    }

    pub fn wrong_arity(&self) {
        // SAFETY: a live command context.
        unsafe { api!(RedisModule_WrongArity)(self.ptr()) };
    }

    pub fn reply_null(&self) {
        // SAFETY: a live command context.
        unsafe { hot!(RedisModule_ReplyWithNull)(self.ptr()) };
    }

    pub fn reply_int(&self, n: i64) {
        // SAFETY: a live command context.
        unsafe { hot!(RedisModule_ReplyWithLongLong)(self.ptr(), n) };
    }

    pub fn reply_array(&self, n: usize) {
        // SAFETY: a live command context.
        unsafe { api!(RedisModule_ReplyWithArray)(self.ptr(), n as _) };
    }

    /// A map of `n` pairs (a flat array of `2n` for RESP2 clients).
    pub fn reply_map(&self, n: usize) {
        // SAFETY: a live command context.
        unsafe { api!(RedisModule_ReplyWithMap)(self.ptr(), n as _) };
    }

    pub fn reply_str(&self, s: &str) {
        // SAFETY: a live command context; Redis copies the buffer.
        unsafe { hot!(RedisModule_ReplyWithStringBuffer)(self.ptr(), s.as_ptr().cast::<c_char>(), s.len()) };
    }

    /// The value of a server option (`CONFIG GET name`), if it has one.
    pub fn config(&self, name: &CStr) -> Option<String> {
        // SAFETY: a live context on the main thread; the reply is freed below.
        unsafe {
            let reply = api!(RedisModule_Call)(
                self.ptr(),
                c"CONFIG".as_ptr(),
                c"cc".as_ptr(),
                c"GET".as_ptr(),
                name.as_ptr(),
            );
            if reply.is_null() {
                return None;
            }
            let value = api!(RedisModule_CallReplyArrayElement)(reply, 1);
            let mut len = 0usize;
            let p = if value.is_null() {
                ptr::null()
            } else {
                api!(RedisModule_CallReplyStringPtr)(value, &mut len)
            };
            let out = (!p.is_null())
                .then(|| String::from_utf8_lossy(std::slice::from_raw_parts(p.cast::<u8>(), len)).into_owned());
            api!(RedisModule_FreeCallReply)(reply);
            out
        }
    }

    /// A field of an `INFO` section, if the server has it.
    pub fn server_info(&self, section: &CStr, field: &CStr) -> Option<String> {
        // SAFETY: reading the function table, then a live context; the
        // field's text lives until the info is freed, after it is copied.
        unsafe {
            let (get, value_of, free) = (
                raw::RedisModule_GetServerInfo?,
                raw::RedisModule_ServerInfoGetFieldC?,
                raw::RedisModule_FreeServerInfo?,
            );
            let info = get(self.ptr(), section.as_ptr());
            if info.is_null() {
                return None;
            }
            let value = value_of(info, field.as_ptr());
            let out = (!value.is_null()).then(|| CStr::from_ptr(value).to_string_lossy().into_owned());
            free(self.ptr(), info);
            out
        }
    }

    /// An integer kind's value as an integer (a uint64 above `i64::MAX` as
    /// a big number, which RESP2 clients get as a bulk string). A float
    /// kind's as a double for RESP3 clients; for RESP2 clients a bulk
    /// string in the shortest form that parses back, by the kind's rules,
    /// to the same bits. RESP3 has one NaN, `,nan`: any other NaN (a
    /// payload, the sign bit) goes as the bulk string RESP2 would get, so
    /// that no reply loses bits.
    pub fn reply_value(&self, v: Value, resp3: bool, buf: &mut ValueBuf) {
        let text = |s: &[u8]| {
            // SAFETY: a live command context; Redis copies the buffer.
            unsafe { hot!(RedisModule_ReplyWithStringBuffer)(self.ptr(), s.as_ptr().cast::<c_char>(), s.len()) };
        };
        let double = |x: f64| {
            // SAFETY: a live command context.
            unsafe { hot!(RedisModule_ReplyWithDouble)(self.ptr(), x) };
        };
        match v {
            // float64 first: the common case, as it was before there were kinds.
            Value::F64(x) if resp3 && (!x.is_nan() || v.is_plain_nan()) => double(x),
            Value::F64(x) => text(buf.format(x)),
            // SAFETY: a live command context.
            Value::Int(n) => unsafe {
                hot!(RedisModule_ReplyWithLongLong)(self.ptr(), n);
            },
            Value::Big(_) => {
                let s = buf.value(v);
                // SAFETY: a live command context; Redis copies the buffer.
                unsafe { api!(RedisModule_ReplyWithBigNumber)(self.ptr(), s.as_ptr().cast::<c_char>(), s.len()) };
            }
            _ => match v.as_f64() {
                Some(x) if resp3 && (!x.is_nan() || v.is_plain_nan()) => double(x),
                _ => text(buf.value(v)),
            },
        }
    }

    /// One bulk string of bytes, copied into the reply.
    pub fn reply_bytes(&self, b: &[u8]) {
        // SAFETY: a live command context; Redis copies the buffer.
        unsafe { hot!(RedisModule_ReplyWithStringBuffer)(self.ptr(), b.as_ptr().cast::<c_char>(), b.len()) };
    }

    /// A map's value that may be missing: a string, or nil.
    pub fn reply_opt_str(&self, s: Option<&str>) {
        match s {
            Some(s) => self.reply_str(s),
            None => self.reply_null(),
        }
    }

    /// A boolean: `#t`/`#f` for RESP3 clients, 1 or 0 for RESP2 ones.
    pub fn reply_bool(&self, b: bool) {
        // SAFETY: a live command context.
        unsafe { api!(RedisModule_ReplyWithBool)(self.ptr(), b as c_int) };
    }

    /// The selected database.
    pub fn db(&self) -> i32 {
        // SAFETY: a live context.
        unsafe { api!(RedisModule_GetSelectedDb)(self.ptr()) }
    }

    /// Selects database `db` for this context; false if there is none.
    fn select(&self, db: i32) -> bool {
        // SAFETY: a live context.
        unsafe { api!(RedisModule_SelectDb)(self.ptr(), db) == raw::Status::Ok as c_int }
    }

    /// The database where a key named `key` holds a value of the module's
    /// type (a `T`) for which `holds` is true, looked for in the selected
    /// database first and then in every other. Reading the key deletes it
    /// if it has expired (on a master). The selected database is restored.
    pub fn find<T: 'static>(&self, key: &[u8], holds: impl Fn(&T) -> bool) -> Option<i32> {
        let here = self.db();
        // SAFETY: inside redis-server; freed below.
        let name = unsafe { super::new_string(key) };
        // Looks in the database selected last.
        let here_holds = || {
            let mut k = self.open_with(name, raw::REDISMODULE_READ | raw::REDISMODULE_OPEN_KEY_NOTOUCH);
            matches!(k.value::<T>(), Ok(Some(v)) if holds(v))
        };
        let found = std::iter::once(here)
            .chain((0..).filter(|&d| d != here))
            .take_while(|&d| self.select(d))
            .find(|_| here_holds());
        self.select(here);
        // SAFETY: a string created above and no longer used.
        unsafe { api!(RedisModule_FreeString)(ptr::null_mut(), name) };
        found
    }

    /// Whether the server is loading an RDB or replaying an AOF.
    pub fn loading(&self) -> bool {
        self.flags() & raw::REDISMODULE_CTX_FLAGS_LOADING as c_int != 0
    }

    pub fn resp3(&self) -> bool {
        self.flags() & raw::REDISMODULE_CTX_FLAGS_RESP3 as c_int != 0
    }

    #[cold]
    #[inline(never)]
    pub fn reply_error(&self, e: &Error) {
        counters::count_error();
        let msg = CString::new(e.to_string().replace('\0', "?")).expect("no NUL");
        // SAFETY: a live command context and a NUL-terminated message.
        unsafe { api!(RedisModule_ReplyWithError)(self.ptr(), msg.as_ptr()) };
    }

    pub fn open(&self, name: *mut raw::RedisModuleString, write: bool) -> Key {
        self.open_with(
            name,
            raw::REDISMODULE_READ | if write { raw::REDISMODULE_WRITE } else { 0 },
        )
    }

    fn open_with(&self, name: *mut raw::RedisModuleString, mode: u32) -> Key {
        // SAFETY: a live context and key name; the key is closed on drop.
        let ptr = unsafe { hot!(RedisModule_OpenKey)(self.ptr(), name, mode as c_int) };
        Key { ptr }
    }

    /// Fires a keyspace event of the module class.
    pub fn notify(&self, event: &CStr, key: *mut raw::RedisModuleString) {
        // SAFETY: a live context, a NUL-terminated event name and a live key name.
        unsafe {
            hot!(RedisModule_NotifyKeyspaceEvent)(self.ptr(), raw::NotifyEvent::MODULE.bits(), event.as_ptr(), key)
        };
    }

    /// Whether the running command came from our master.
    pub fn replicated(&self) -> bool {
        self.flags() & raw::REDISMODULE_CTX_FLAGS_REPLICATED as c_int != 0
    }

    // Each `replicate*` sends a command to the AOF and the replicas, after
    // the running one's earlier ones (several are wrapped in MULTI/EXEC), and
    // counts a change for the `save` rules.

    /// The running command as the client sent it, under its canonical name.
    /// Reached by its short name, the command's own first argument is the
    /// canonical name for the length of the call: every server logs the
    /// array the command was called with (the client's), taking a reference
    /// to each string, so the log has the canonical name at the cost of the
    /// verbatim form, and the client's array is as it was afterwards.
    #[inline]
    pub fn replicate_as_sent(&self, args: &Args) {
        if args.canonical.is_null() {
            // SAFETY: a live command context.
            unsafe { hot!(RedisModule_ReplicateVerbatim)(self.ptr()) };
            return;
        }
        // SAFETY: `argv` is the server's array of the running command (see
        // `Args::new`), writable memory the server reads again only after
        // the command; no slice of it is held across these writes; the
        // canonical name lives as long as the module, and the log takes
        // its own reference to it.
        unsafe {
            let used = *args.argv;
            *args.argv = args.canonical;
            hot!(RedisModule_ReplicateVerbatim)(self.ptr());
            *args.argv = used;
        }
    }

    /// `name key line...`, in place of, or before, the running command.
    pub fn replicate(&self, name: &CStr, key: *mut raw::RedisModuleString, line: Line) {
        // SAFETY: a live command context and key name; `log_line` passes
        // each format letter its argument.
        unsafe { log_line!(api!(RedisModule_Replicate), self.ptr(), name, key, line) };
    }
}

/// An open key, closed when dropped.
pub struct Key {
    ptr: *mut raw::RedisModuleKey,
}

impl Key {
    /// The value held by the key: `None` if the key is empty, `WRONGTYPE`
    /// if it holds something else. Inlined into each command; a key that is
    /// not the module's is the cold path. `T` is the type `set_type` was
    /// given (checked in debug builds).
    #[inline(always)]
    pub fn value<T: 'static>(&mut self) -> Result<Option<&mut T>> {
        if self.ptr.is_null() {
            return Ok(None);
        }
        debug_assert_eq!(VALUE.get(), Some(&std::any::TypeId::of::<T>()));
        // SAFETY: ptr is an open key (NULL only when opened read-only on a
        // missing key); a value of the module's type is a live, boxed `T`
        // that the server keeps until the type's free callback.
        unsafe {
            if hot!(RedisModule_ModuleTypeGetType)(self.ptr) != data_type() {
                self.not_ours()?;
                return Ok(None);
            }
            // Never NULL: every value of the type is a boxed `T`, set by
            // `set` or returned by the RDB loader (whose NULL fails the load).
            let v = hot!(RedisModule_ModuleTypeGetValue)(self.ptr).cast::<T>();
            debug_assert!(!v.is_null());
            Ok(Some(&mut *v))
        }
    }

    /// Fine for an empty key; `WRONGTYPE` for one of another type.
    #[cold]
    #[inline(never)]
    fn not_ours(&self) -> Result<()> {
        // SAFETY: ptr is an open key.
        if unsafe { api!(RedisModule_KeyType)(self.ptr) } == raw::REDISMODULE_KEYTYPE_EMPTY as c_int {
            return Ok(());
        }
        Err(Error::WrongType.into())
    }

    /// Stores a new value of the module's type in an empty key opened for
    /// writing.
    pub fn set<T: 'static>(&mut self, b: T) {
        debug_assert_eq!(VALUE.get(), Some(&std::any::TypeId::of::<T>()));
        let v = Box::into_raw(Box::new(b));
        // SAFETY: a key opened for writing; Redis owns `v` from here and frees it through our free callback.
        unsafe { api!(RedisModule_ModuleTypeSetValue)(self.ptr, data_type(), v.cast()) };
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: ptr is an open key, closed once.
            unsafe { hot!(RedisModule_CloseKey)(self.ptr) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::guard;

    #[test]
    fn guard_turns_a_panic_into_the_fallback() {
        assert_eq!(guard("test", 7, || panic!("boom")), 7);
        assert_eq!(guard("test", 7, || 3), 3);
    }
}
