//! Blocked clients: a command that hands its work to another thread
//! blocks its client; the other thread's result comes back as a `Reply`,
//! run on the main thread with the client's context, which answers it.
//! Every other client is served meanwhile.

use std::collections::HashMap;
use std::ffi::{c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use redis_module::raw;

use super::ctx::{log_panic, Args, Ctx};
use crate::core::error::{Error, Result};

/// What answers a blocked client, on the main thread: it gets the context
/// and the command's arguments, as a command does, and replies; an error
/// becomes the error reply.
pub type Reply = Box<dyn FnOnce(&Ctx, &Args) -> Result<()> + Send>;

/// The private data a blocked client is unblocked with.
struct Pending {
    name: &'static CStr,
    reply: Option<Reply>,
    /// The worker answered into the thread-safe context: nothing to add.
    answered: bool,
    /// That context, freed on the main thread (it holds one of the
    /// server's temporary clients, whose pool only the main thread touches).
    tsc: *mut raw::RedisModuleCtx,
}

/// A blocked client, to be answered from any thread with `reply`. Dropped
/// unanswered, it answers with an error, so that no client waits forever.
pub struct Blocked {
    bc: *mut raw::RedisModuleBlockedClient,
    name: &'static CStr,
    gone: Arc<AtomicBool>,
    /// A thread-safe context bound to the client, made on the main thread:
    /// replies made through it from a worker (see `answer`) accumulate in
    /// the client's own reply buffer, which the server hands over whole
    /// when the client is unblocked.
    tsc: *mut raw::RedisModuleCtx,
    resp3: bool,
}

// SAFETY: `RedisModule_UnblockClient`, the one call made with `bc` off the
// main thread, is thread-safe; the rest is plain data.
unsafe impl Send for Blocked {}

/// The flags under which a client cannot block: the server answers a
/// blocking command there with an error instead.
const NO_BLOCKING: c_int = (raw::REDISMODULE_CTX_FLAGS_MULTI
    | raw::REDISMODULE_CTX_FLAGS_LUA
    | raw::REDISMODULE_CTX_FLAGS_DENY_BLOCKING
    | raw::REDISMODULE_CTX_FLAGS_LOADING) as c_int;

/// The flags of each blocked client whose client may disconnect, by the
/// handle's address: the disconnect callback gets only the handle.
static WAITING: Mutex<Option<HashMap<usize, Arc<AtomicBool>>>> = Mutex::new(None);

fn waiting<R>(f: impl FnOnce(&mut HashMap<usize, Arc<AtomicBool>>) -> R) -> R {
    let mut w = WAITING.lock().unwrap_or_else(|p| p.into_inner());
    f(w.get_or_insert_with(HashMap::new))
}

impl Ctx {
    /// Blocks the running command's client until `Blocked::reply`; `None`
    /// where it cannot block (inside MULTI, a script or a function, while
    /// loading, or where the server denies it), and the command runs
    /// inline there. `name` is the command's, for errors.
    pub fn block(&self, name: &'static CStr) -> Option<Blocked> {
        if self.flags() & NO_BLOCKING != 0 {
            return None;
        }
        // SAFETY: a live command context; the callbacks live as long as the
        // module; no timeout.
        let bc = unsafe { api!(RedisModule_BlockClient)(self.ptr(), Some(on_reply), None, Some(on_free), 0) };
        if bc.is_null() {
            return None;
        }
        let gone = Arc::new(AtomicBool::new(false));
        waiting(|w| w.insert(bc as usize, gone.clone()));
        // SAFETY: a live blocked client, on the main thread; the callback
        // lives as long as the module; the context is freed by `on_free`.
        let tsc = unsafe {
            api!(RedisModule_SetDisconnectCallback)(bc, Some(on_disconnect));
            api!(RedisModule_GetThreadSafeContext)(bc)
        };
        Some(Blocked {
            bc,
            name,
            gone,
            tsc,
            resp3: self.resp3(),
        })
    }
}

impl Blocked {
    /// Set once the client has disconnected: the work is for no one, and
    /// may stop.
    pub fn gone(&self) -> &Arc<AtomicBool> {
        &self.gone
    }

    /// Unblocks the client; `reply` answers it on the main thread (unless
    /// it has disconnected: then `reply` is dropped there unrun).
    pub fn reply(mut self, reply: Reply) {
        self.unblock(Some(reply), false);
    }

    /// Answers the client here, on the calling thread: `answer` gets a
    /// context whose replies go to the client's reply buffer, and whether
    /// the client speaks RESP3; then the client is unblocked and the
    /// server sends what was added, without copying it again. The reply
    /// functions are the only calls made through the context, as the
    /// module API allows off the main thread for a context bound to a
    /// blocked client.
    pub fn answer(mut self, answer: impl FnOnce(&Ctx, bool)) {
        // The server always gives one (its allocator aborts rather than fail).
        assert!(!self.tsc.is_null(), "a blocked client has its thread-safe context");
        // SAFETY: the context bound to this blocked client, not yet
        // unblocked; only reply functions are called through it.
        answer(unsafe { Ctx::from_raw(self.tsc) }, self.resp3);
        self.unblock(None, true);
    }

    fn unblock(&mut self, reply: Option<Reply>, answered: bool) {
        let bc = std::mem::replace(&mut self.bc, ptr::null_mut());
        if bc.is_null() {
            return;
        }
        waiting(|w| w.remove(&(bc as usize)));
        let pending = Box::into_raw(Box::new(Pending {
            name: self.name,
            reply,
            answered,
            tsc: std::mem::replace(&mut self.tsc, ptr::null_mut()),
        }));
        // SAFETY: a blocked client not unblocked before (its handle is
        // taken above); the server owns `pending` from here and hands it to
        // `on_reply` and then `on_free`.
        unsafe { api!(RedisModule_UnblockClient)(bc, pending.cast()) };
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        self.unblock(None, false);
    }
}

/// # Safety
/// Called by the server on the main thread, with the blocked client's
/// context and arguments, its private data a `Pending`.
unsafe extern "C" fn on_reply(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    let pending = api!(RedisModule_GetBlockedClientPrivateData)(ctx).cast::<Pending>();
    let ctx = Ctx::from_raw(ctx);
    if pending.is_null() || argv.is_null() || argc < 1 {
        ctx.reply_error(&Error::Lost);
        return raw::Status::Ok as c_int;
    }
    // SAFETY: the `Pending` `unblock` gave, freed only by `on_free`, after this.
    let pending = &mut *pending;
    if pending.answered {
        return raw::Status::Ok as c_int;
    }
    let args = Args::new(argv, argc as usize, pending.name, ptr::null_mut());
    let Some(reply) = pending.reply.take() else {
        ctx.reply_error(&Error::Lost);
        return raw::Status::Ok as c_int;
    };
    match catch_unwind(AssertUnwindSafe(|| reply(ctx, &args))) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => ctx.reply_error(&e),
        Err(payload) => {
            log_panic(args.name(), payload.as_ref());
            ctx.reply_error(&Error::Panic(args.name().to_owned()));
        }
    }
    raw::Status::Ok as c_int
}

/// # Safety
/// Called by the server once per unblocked client, with its private data.
unsafe extern "C" fn on_free(_ctx: *mut raw::RedisModuleCtx, privdata: *mut c_void) {
    if !privdata.is_null() {
        // SAFETY: the `Pending` `unblock` boxed, freed once, here.
        let pending = Box::from_raw(privdata.cast::<Pending>());
        if !pending.tsc.is_null() {
            // SAFETY: the thread-safe context `block` made, on the main
            // thread, no longer used by any worker (the client is unblocked).
            api!(RedisModule_FreeThreadSafeContext)(pending.tsc);
        }
    }
}

/// # Safety
/// Called by the server on the main thread when a blocked client disconnects.
unsafe extern "C" fn on_disconnect(_ctx: *mut raw::RedisModuleCtx, bc: *mut raw::RedisModuleBlockedClient) {
    if let Some(gone) = waiting(|w| w.remove(&(bc as usize))) {
        gone.store(true, Ordering::Release);
    }
}
