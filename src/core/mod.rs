//! The Redis-free core: the mapped vector, number text, the sandbox
//! that confines paths, and the limit on bound keys. Nothing here calls the module API, so all of it is
//! tested with plain `cargo test`.

pub mod limits;
pub mod num;
pub mod sandbox;
pub mod vector;
