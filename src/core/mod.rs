//! The Redis-free core: the mapped vector, element kinds and their text,
//! the sandbox that confines paths, the limit on bound keys, and the
//! SIGBUS handler that guards the mappings. Nothing here calls the module
//! API, so all of it is tested with plain `cargo test`.

pub mod column;
pub mod counters;
pub mod error;
pub mod fault;
pub mod kind;
pub mod limits;
pub mod num;
pub mod sandbox;
pub mod settings;
pub mod sigbus;
pub mod summary;
pub mod vector;
pub mod view;
