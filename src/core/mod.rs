//! The Redis-free core: the mapped vector, number text, and the sandbox
//! that confines paths. Nothing here calls the module API, so all of it is
//! tested with plain `cargo test`.

pub mod num;
pub mod sandbox;
pub mod vector;
