//! redis-mmap: a Redis module that binds a key to a file of raw
//! little-endian `f64` values and reads and writes it in place through `mmap`.

mod binding;
mod callbacks;
mod commands;
mod config;
mod ctx;
mod docs;
mod error;
mod fsync;
mod info;
mod num;
mod sandbox;
mod setup;
mod vector;

use std::ffi::c_int;

use redis_module::native_types::RedisType;
use redis_module::raw::{RedisModuleCtx as RCtx, RedisModuleString as RStr};
use redis_module::{redis_module, Context, RedisString, Status};

/// The type name is stored in every RDB: it can never change.
static MMAP_TYPE: RedisType = RedisType::new("mmap-vect", callbacks::ENCODING, callbacks::METHODS);

// Redis's allocator is only there inside redis-server; unit tests run without it.
#[cfg(not(test))]
type Alloc = redis_module::alloc::RedisAlloc;
#[cfg(not(test))]
const ALLOC: Alloc = redis_module::alloc::RedisAlloc;
#[cfg(test)]
type Alloc = std::alloc::System;
#[cfg(test)]
const ALLOC: Alloc = std::alloc::System;

redis_module! {
    name: "mmap",
    version: 1,
    allocator: (Alloc, ALLOC),
    data_types: [MMAP_TYPE],
    init: init,
}

fn init(ctx: &Context, args: &[RedisString]) -> Status {
    setup::init(ctx, args, &MMAP_TYPE, COMMANDS)
}

const COMMANDS: &[(&docs::Spec, setup::CmdFn)] = &[
    (&docs::MMAP, mmap),
    (&docs::VGET, vget),
    (&docs::VMGET, vmget),
    (&docs::VSET, vset),
    (&docs::VADD, vadd),
    (&docs::VRESIZE, vresize),
    (&docs::VPOP, vpop),
    (&docs::VCOUNT, vcount),
    (&docs::VCLEAR, vclear),
    #[cfg(feature = "fault-injection")]
    (&docs::MMAP_PANIC, panic),
];

extern "C" fn mmap(c: *mut RCtx, v: *mut *mut RStr, n: c_int) -> c_int {
    ctx::run(c, v, n, &docs::MMAP, commands::mmap)
}
extern "C" fn vget(c: *mut RCtx, v: *mut *mut RStr, n: c_int) -> c_int {
    ctx::run(c, v, n, &docs::VGET, commands::vget)
}
extern "C" fn vmget(c: *mut RCtx, v: *mut *mut RStr, n: c_int) -> c_int {
    ctx::run(c, v, n, &docs::VMGET, commands::vmget)
}
extern "C" fn vset(c: *mut RCtx, v: *mut *mut RStr, n: c_int) -> c_int {
    ctx::run(c, v, n, &docs::VSET, commands::vset)
}
extern "C" fn vadd(c: *mut RCtx, v: *mut *mut RStr, n: c_int) -> c_int {
    ctx::run(c, v, n, &docs::VADD, commands::vadd)
}
extern "C" fn vresize(c: *mut RCtx, v: *mut *mut RStr, n: c_int) -> c_int {
    ctx::run(c, v, n, &docs::VRESIZE, commands::vresize)
}
extern "C" fn vpop(c: *mut RCtx, v: *mut *mut RStr, n: c_int) -> c_int {
    ctx::run(c, v, n, &docs::VPOP, commands::vpop)
}
extern "C" fn vcount(c: *mut RCtx, v: *mut *mut RStr, n: c_int) -> c_int {
    ctx::run(c, v, n, &docs::VCOUNT, commands::vcount)
}
extern "C" fn vclear(c: *mut RCtx, v: *mut *mut RStr, n: c_int) -> c_int {
    ctx::run(c, v, n, &docs::VCLEAR, commands::vclear)
}
#[cfg(feature = "fault-injection")]
extern "C" fn panic(c: *mut RCtx, v: *mut *mut RStr, n: c_int) -> c_int {
    ctx::run(c, v, n, &docs::MMAP_PANIC, commands::panic)
}
