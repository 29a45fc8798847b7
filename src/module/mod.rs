//! The module's wiring, on top of everything else: the entry point that
//! loads it, the options, the registration of the command table and the
//! entry points commands are reached by.

mod config;
mod entry;
mod info;
mod register;
