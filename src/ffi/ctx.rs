//! The small, safe surface of the Redis module API that commands use.
//! Raw pointers stay in here; commands see `Ctx`, `Args` and `Key`.

use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use redis_module::raw;

use super::{bytes, log};
use crate::binding::Binding;
use crate::commands::Command;
use crate::core::kind::Value;
use crate::core::num::ValueBuf;
use crate::error::{Error, Result};
use crate::persist::Logged;
use crate::stats;

/// Writes a `Logged` command with `RedisModule_Replicate` or
/// `RedisModule_EmitAOF`, which take the same variadic format after their
/// first argument (a context, an AOF handle). The path is sent relative to
/// `mmap.dir`, so that it names the same file on any server; values in the
/// shortest text that parses back to the same bits.
///
/// Each format letter matches the arguments after it: "s" a Redis string,
/// "b" a buffer and its length, "c" a C string, "l" a long long, "v" an array
/// of Redis strings and its length. Arguments past the format are not read.
macro_rules! log_command {
    ($f:expr, $to:expr, $key:expr, $cmd:expr) => {{
        let cmd: $crate::persist::Logged = $cmd;
        let name = cmd.name().as_ptr();
        match cmd {
            $crate::persist::Logged::Mmap { rel, spec, create } => {
                let path = rel.as_os_str().as_encoded_bytes();
                let p = path.as_ptr().cast::<std::ffi::c_char>();
                // The options present, in order; the format reads only those.
                let options: Vec<&std::ffi::CStr> = [(spec.readonly, c"READONLY"), (create, c"CREATE")]
                    .into_iter()
                    .filter_map(|(on, o)| on.then_some(o))
                    .collect();
                let fmt = [c"sbcc", c"sbccc", c"sbcccc"][options.len()];
                let [a, b] = [0, 1].map(|i| options.get(i).map_or(c"".as_ptr(), |o| o.as_ptr()));
                let (type_, kind) = (c"TYPE".as_ptr(), spec.kind.cname().as_ptr());
                $f($to, name, fmt.as_ptr(), $key, p, path.len(), type_, kind, a, b);
            }
            $crate::persist::Logged::Resize(len) => {
                $f($to, name, c"sl".as_ptr(), $key, len as i64);
            }
            $crate::persist::Logged::Add { kind, bytes } => {
                let mut buf = $crate::core::num::ValueBuf::default();
                let strings: Vec<*mut redis_module::raw::RedisModuleString> = bytes
                    .chunks_exact(kind.size())
                    .map(|b| $crate::ffi::new_string(buf.value($crate::core::column::decode(kind, b))))
                    .collect();
                $f($to, name, c"sv".as_ptr(), $key, strings.as_ptr(), strings.len());
                for s in strings {
                    $crate::ffi::api!(RedisModule_FreeString)(std::ptr::null_mut(), s);
                }
            }
        }
    }};
}
pub(crate) use log_command;

static TYPE: AtomicPtr<raw::RedisModuleType> = AtomicPtr::new(ptr::null_mut());

/// Records our data type once it is created, for key type checks.
pub fn set_type(t: *mut raw::RedisModuleType) {
    TYPE.store(t, Ordering::Relaxed);
}

pub fn data_type() -> *mut raw::RedisModuleType {
    TYPE.load(Ordering::Relaxed)
}

/// Runs a command reached by its canonical name or (`alias`) its short
/// one: checks its arity, catches any panic, logs it, and answers with an
/// error. Inlined into each entry point, where the command is a constant:
/// the handler is then called directly, in the entry point's frame.
#[inline(always)]
pub fn run(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
    cmd: &'static Command,
    alias: bool,
) -> c_int {
    // SAFETY: Redis passes the command's live context.
    let ctx = unsafe { Ctx::from_raw(ctx) };
    // Every server calls a command with its name in argv[0] at least.
    debug_assert!(!argv.is_null() && argc > 0);
    // SAFETY: Redis passes argc (at least one) valid strings that live for
    // the whole call.
    let argv = unsafe { std::slice::from_raw_parts(argv, argc as usize) };
    let args = Args { argv, cmd, alias };
    // Redis checks arity itself where COMMAND DOCS exist; this covers the rest.
    if !cmd.fits(args.len()) {
        ctx.wrong_arity();
        return raw::Status::Ok as c_int;
    }
    match catch_unwind(AssertUnwindSafe(|| (cmd.run)(ctx, &args))) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => ctx.reply_error(&e),
        Err(payload) => panicked(ctx, &args, payload),
    }
    raw::Status::Ok as c_int
}

/// Out of line, so that each entry point's frame holds only what the
/// command's success needs.
#[cold]
#[inline(never)]
fn panicked(ctx: &Ctx, args: &Args, payload: Box<dyn std::any::Any + Send>) {
    let name = args.name().to_owned();
    log_panic(&name, payload.as_ref());
    ctx.reply_error(&Error::Panic(name));
}

/// Runs a callback that has no way to answer a client: a panic is logged
/// and `fallback` returned.
pub fn guard<T>(name: &str, fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        log_panic(name, payload.as_ref());
        fallback
    })
}

fn log_panic(name: &str, payload: &(dyn std::any::Any + Send)) {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic");
    stats::count_panic();
    log("warning", &format!("panic in {name}: {what}"));
}

/// The arguments of one command call, and the table entry it reached.
pub struct Args<'a> {
    argv: &'a [*mut raw::RedisModuleString],
    cmd: &'static Command,
    /// Whether the client used the short name.
    alias: bool,
}

impl<'a> Args<'a> {
    pub fn len(&self) -> usize {
        self.argv.len()
    }

    pub fn bytes(&self, i: usize) -> &'a [u8] {
        // SAFETY: argv strings live for the whole command call.
        unsafe { bytes(self.argv[i]) }
    }

    pub fn raw(&self, i: usize) -> *mut raw::RedisModuleString {
        self.argv[i]
    }

    /// The name the client reached the command by, in lower case as
    /// Redis names commands in its own errors, whatever case was typed.
    pub fn name(&self) -> &'static str {
        let name = match self.cmd.alias {
            Some(alias) if self.alias => alias,
            _ => self.cmd.name,
        };
        name.to_str().expect("ASCII")
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

    fn ptr(&self) -> *mut raw::RedisModuleCtx {
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

    /// The database where a key named `key` holds the claim `token`,
    /// looked for in the selected database first and then in every other;
    /// see `binding::Finder`. Reading the key deletes it if it has expired
    /// (on a master), which frees its file. The selected database is
    /// restored.
    pub fn find_claim(&self, key: &[u8], token: u64) -> Option<i32> {
        let here = self.db();
        // SAFETY: inside redis-server; freed below.
        let name = unsafe { super::new_string(key) };
        // Looks in the database selected last.
        let holds = || {
            let mut k = self.open_with(name, raw::REDISMODULE_READ | raw::REDISMODULE_OPEN_KEY_NOTOUCH);
            matches!(k.binding(), Ok(Some(b)) if b.token() == Some(token))
        };
        let found = std::iter::once(here)
            .chain((0..).filter(|&d| d != here))
            .take_while(|&d| self.select(d))
            .find(|_| holds());
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
        stats::count_error();
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
    #[inline]
    pub fn replicate_as_sent(&self, args: &Args) {
        if args.alias {
            self.replicate_args(args.cmd.name, args.raw(1), &args.argv[2..]);
        } else {
            // SAFETY: a live command context.
            unsafe { hot!(RedisModule_ReplicateVerbatim)(self.ptr()) };
        }
    }

    /// A command of the module's own in place of, or before, the running one.
    pub fn replicate(&self, key: *mut raw::RedisModuleString, cmd: Logged) {
        // SAFETY: a live command context and key name.
        unsafe { log_command!(api!(RedisModule_Replicate), self.ptr(), key, cmd) };
    }

    /// `cmd key args...`, with arguments taken from the running command.
    pub fn replicate_args(&self, cmd: &CStr, key: *mut raw::RedisModuleString, args: &[*mut raw::RedisModuleString]) {
        // SAFETY: "sv" takes a Redis string, then an array of them and its length.
        unsafe {
            api!(RedisModule_Replicate)(self.ptr(), cmd.as_ptr(), c"sv".as_ptr(), key, args.as_ptr(), args.len())
        };
    }
}

/// An open key, closed when dropped.
pub struct Key {
    ptr: *mut raw::RedisModuleKey,
}

impl Key {
    /// The binding held by the key: `None` if the key is empty,
    /// `WRONGTYPE` if it holds something else. Inlined into each command;
    /// a key that is not ours is the cold path.
    #[inline(always)]
    pub fn binding(&mut self) -> Result<Option<&mut Binding>> {
        if self.ptr.is_null() {
            return Ok(None);
        }
        // SAFETY: ptr is an open key (NULL only when opened read-only on a
        // missing key); a value of our type is a live, boxed Binding that the
        // server keeps until our free callback.
        unsafe {
            if hot!(RedisModule_ModuleTypeGetType)(self.ptr) != data_type() {
                self.not_ours()?;
                return Ok(None);
            }
            // Never NULL: every value of the type is a boxed Binding, set by
            // `set` or returned by the RDB loader (whose NULL fails the load).
            let v = hot!(RedisModule_ModuleTypeGetValue)(self.ptr).cast::<Binding>();
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

    /// Stores a new binding in an empty key opened for writing.
    pub fn set(&mut self, b: Binding) {
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
