//! redis-mmap: a Redis module that binds a key to a file of raw
//! little-endian `f64` values and reads and writes it in place through `mmap`.
//!
//! - `core`: the Redis-free part (mapped vector, number text, sandbox);
//! - `ffi`: the unsafe module-API surface (entry point, context, keys, IO);
//! - `commands`: the command table and its handlers;
//! - `persist`: type callbacks, encodings, server events, flushing;
//! - `binding`: what a key holds, and the registry of bound files;
//! - `fault`: failures that test builds can switch on.

mod binding;
mod commands;
mod core;
mod error;
mod fault;
mod ffi;
mod persist;
mod stats;
