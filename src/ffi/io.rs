//! The IO handles Redis gives the data type's callbacks: an RDB or DUMP
//! stream, an AOF being rewritten, a digest.

use std::ffi::{c_char, c_int};

use redis_module::raw;

use super::bytes;
use super::ctx::{log_line, Ctx, Line};

/// An RDB (or DUMP payload) being written or read.
pub struct Rdb {
    io: *mut raw::RedisModuleIO,
}

impl Rdb {
    /// # Safety
    /// `io` must be what Redis passed to the running `rdb_save` or `rdb_load`.
    pub unsafe fn new(io: *mut raw::RedisModuleIO) -> Rdb {
        Rdb { io }
    }

    pub fn save_unsigned(&self, n: u64) {
        // SAFETY: a live IO handle.
        unsafe { api!(RedisModule_SaveUnsigned)(self.io, n) };
    }

    pub fn save_bytes(&self, b: &[u8]) {
        // SAFETY: a live IO handle; Redis copies the buffer.
        unsafe { api!(RedisModule_SaveStringBuffer)(self.io, b.as_ptr().cast::<c_char>(), b.len()) };
    }

    /// `None` once the stream is broken; Redis then fails the load.
    pub fn load_unsigned(&self) -> Option<u64> {
        // SAFETY: a live IO handle.
        let n = unsafe { api!(RedisModule_LoadUnsigned)(self.io) };
        (!self.failed()).then_some(n)
    }

    pub fn load_bytes(&self) -> Option<Vec<u8>> {
        let mut len = 0usize;
        // SAFETY: a live IO handle; the buffer is ours to free.
        unsafe {
            let buf = api!(RedisModule_LoadStringBuffer)(self.io, &mut len);
            if buf.is_null() {
                return None;
            }
            let out = std::slice::from_raw_parts(buf.cast::<u8>(), len).to_vec();
            api!(RedisModule_Free)(buf.cast());
            (!self.failed()).then_some(out)
        }
    }

    fn failed(&self) -> bool {
        // SAFETY: a live IO handle.
        unsafe { api!(RedisModule_IsIOError)(self.io) != 0 }
    }

    /// The name of the key being loaded (empty where Redis gives none).
    pub fn key(&self) -> Vec<u8> {
        // SAFETY: a live IO handle; the name lives as long as it.
        unsafe {
            let name = api!(RedisModule_GetKeyNameFromIO)(self.io);
            if name.is_null() {
                Vec::new()
            } else {
                bytes(name).to_vec()
            }
        }
    }

    /// The database of the key being loaded.
    pub fn db(&self) -> i32 {
        // SAFETY: reading the function table, then a live IO handle.
        unsafe { raw::RedisModule_GetDbIdFromIO.map_or(0, |f| f(self.io)) }
    }

    /// Whether this runs in a fork child (BGSAVE, a full sync's RDB).
    pub fn in_fork_child(&self) -> bool {
        // SAFETY: a live IO handle; its context is valid during the callback.
        let ctx = unsafe { Ctx::from_raw(api!(RedisModule_GetContextFromIO)(self.io)) };
        ctx.flags() & raw::REDISMODULE_CTX_FLAGS_IS_CHILD as c_int != 0
    }

    /// Whether the server is loading (an RDB, an AOF, a full sync), rather
    /// than running RESTORE.
    pub fn loading(&self) -> bool {
        // SAFETY: a live IO handle; its context is valid during the callback.
        unsafe { Ctx::from_raw(api!(RedisModule_GetContextFromIO)(self.io)) }.loading()
    }
}

/// An AOF being rewritten, and the key whose commands go into it.
pub struct Aof {
    io: *mut raw::RedisModuleIO,
    key: *mut raw::RedisModuleString,
}

impl Aof {
    /// # Safety
    /// `io` and `key` must be what Redis passed to the running `aof_rewrite`.
    pub unsafe fn new(io: *mut raw::RedisModuleIO, key: *mut raw::RedisModuleString) -> Aof {
        Aof { io, key }
    }

    /// Writes one command of the key's rebuild: `name key line...`.
    pub fn emit(&self, name: &std::ffi::CStr, line: Line) {
        // SAFETY: a live IO handle and key name; `log_line` passes each
        // format letter its argument.
        unsafe { log_line!(api!(RedisModule_EmitAOF), self.io, name, self.key, line) };
    }

    /// Whether this runs in a fork child (BGREWRITEAOF), not in the server.
    pub fn in_fork_child(&self) -> bool {
        // SAFETY: a live IO handle; its context is valid during the callback.
        let ctx = unsafe { Ctx::from_raw(api!(RedisModule_GetContextFromIO)(self.io)) };
        ctx.flags() & raw::REDISMODULE_CTX_FLAGS_IS_CHILD as c_int != 0
    }
}

/// A digest being computed for `DEBUG DIGEST-VALUE`.
pub struct Digest {
    md: *mut raw::RedisModuleDigest,
}

impl Digest {
    /// # Safety
    /// `md` must be what Redis passed to the running `digest` callback.
    pub unsafe fn new(md: *mut raw::RedisModuleDigest) -> Digest {
        Digest { md }
    }

    pub fn add(&self, b: &[u8]) {
        // SAFETY: a live digest; Redis reads the buffer during the call.
        unsafe { api!(RedisModule_DigestAddStringBuffer)(self.md, b.as_ptr().cast::<c_char>(), b.len()) };
    }

    pub fn end_sequence(&self) {
        // SAFETY: a live digest.
        unsafe { api!(RedisModule_DigestEndSequence)(self.md) };
    }
}
