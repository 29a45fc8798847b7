//! redis-mmap: a Redis module that binds a key to a file of raw
//! little-endian `f64` values and reads and writes it in place through `mmap`.
//!
//! The layers, each using only those above it in this list:
//!
//! - `core`: the Redis-free part (mapped vector, kinds, number text,
//!   sandbox, statistics, counters, errors, option values);
//! - `ffi`: the unsafe module-API surface (context, keys, arguments, IO
//!   handles, blocked clients), knowing nothing of the commands;
//! - `binding`: what a key holds, the registry of bound files, and when
//!   files reach the disk;
//! - `work`: the worker threads that run long reads, and how their
//!   results reach the blocked client;
//! - `persist`: type callbacks, encodings, server events;
//! - `commands`: the command table and its handlers;
//! - `module`: the wiring (entry point, options, registration).

mod binding;
mod commands;
mod core;
mod ffi;
mod module;
mod persist;
mod work;
