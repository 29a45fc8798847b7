//! Every error a command can reply with. Each message starts with a Redis
//! error code and names what was wrong.

use crate::core::kind::{Bad, Kind, Spec};
use crate::core::sandbox::PathError;
use crate::core::vector::OpenError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("ERR index '{0}' is not a decimal 64-bit integer")]
    BadIndex(String),
    #[error("{}", bad_value(value, *kind, *why))]
    BadValue { value: String, kind: Kind, why: Bad },
    #[error("ERR unknown element kind '{0}' (known: {names})", names = Kind::names())]
    UnknownKind(String),
    #[error("ERR {command} option {option} is given twice")]
    Repeated { command: String, option: &'static str },
    #[error("ERR {command} option {option} needs a value")]
    NoOptionValue { command: String, option: &'static str },
    #[error("ERR length '{0}' is not a decimal 64-bit integer of 0 or more")]
    BadLength(String),
    #[error("ERR length {len} is too large: a vector holds at most {max} values (64 TiB)")]
    TooLong { len: usize, max: usize },
    #[error("ERR unknown {command} option '{option}' (known: {known})")]
    BadOption {
        command: String,
        option: String,
        known: &'static str,
    },
    #[error("ERR a blob of {bytes} bytes is not a whole number of {kind} values ({size} bytes each); nothing was written", size = kind.size())]
    Ragged { bytes: usize, kind: Kind },
    #[error("ERR cannot write {n} values at index {at}: the vector holds {len}; nothing was written")]
    Outside { at: i64, n: usize, len: usize },
    #[error("ERR syntax error: {0}")]
    Syntax(String),
    #[error("ERR {0} takes index value pairs: the last index has no value")]
    OddPairs(String),
    #[error("ERR no such key '{0}': bind it to a file first with MMAP {0} <path>")]
    NoKey(String),
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    #[error("ERR key '{key}' is bound to '{bound}', not to '{asked}'")]
    OtherFile { key: String, bound: String, asked: String },
    #[error("ERR key '{key}' is bound as {bound}, not as {asked}")]
    OtherSpec { key: String, bound: Spec, asked: Spec },
    #[error("ERR key '{0}' is read-only (mapped with READONLY)")]
    ReadOnly(String),
    #[error("ERR cannot map '{path}': the file is already bound to key '{key}'")]
    AlreadyBound { path: String, key: String },
    #[error("ERR cannot bind another key: {0}")]
    TooManyKeys(String),
    #[error("ERR cannot map '{path}': the file is locked by another process")]
    Locked { path: String },
    #[error("ERR cannot map '{path}': {cause}")]
    Path { path: String, cause: PathError },
    #[error("ERR cannot map '{path}': the file {cause}")]
    Open { path: String, cause: OpenError },
    #[error("ERR key '{key}' is bound to '{path}', which cannot be opened ({cause}); put the file back and run MMAP {key} {path}, or DEL {key}")]
    Broken { key: String, path: String, cause: String },
    #[error("ERR cannot write '{path}': {cause}; nothing was changed")]
    Content { path: String, cause: String },
    #[error("IOERR key '{key}': file '{path}': {cause}{lost}; the key is broken until the file can be used again (MMAP {key} {path} binds it at once)")]
    Fault {
        key: String,
        path: String,
        cause: String,
        lost: String,
    },
    #[error("IOERR key '{key}': file '{path}': {cause}")]
    Read { key: String, path: String, cause: String },
    #[error("ERR writing '{path}' failed: {cause}; nothing was changed")]
    Write { path: String, cause: std::io::Error },
    #[error("ERR cannot list the files under mmap.dir: {0}")]
    Listing(String),
    #[error("ERR internal error in {0}; see the server log")]
    Panic(String),
    #[error("ERR the read's worker thread ended without a result; see the server log")]
    Lost,
}

/// Boxed: a result then fits in registers, and the common path, which
/// succeeds, carries no room for the largest error.
pub type Result<T> = std::result::Result<T, Box<Error>>;

impl Error {
    /// Why a file could not be bound, without the code and path around it.
    pub fn cause(&self) -> String {
        match self {
            Error::Path { cause, .. } => cause.to_string(),
            Error::Open { cause, .. } => format!("the file {cause}"),
            Error::AlreadyBound { key, .. } => format!("the file is already bound to key '{key}'"),
            Error::Locked { .. } => "the file is locked by another process".into(),
            Error::TooManyKeys(why) => why.clone(),
            Error::Content { cause, .. } => cause.clone(),
            Error::Write { cause, .. } => format!("writing the file failed: {cause}"),
            other => other.to_string(),
        }
    }
}

fn bad_value(value: &str, kind: Kind, why: Bad) -> String {
    match (why, kind.range()) {
        (Bad::Range, Some((lo, hi))) => format!("ERR value '{value}' is out of range for {kind} ({lo}..{hi})"),
        (Bad::Overflow, _) => format!("ERR value '{value}' overflows {kind}"),
        (Bad::NotInteger, _) => format!("ERR value '{value}' is not an integer ({kind} takes integers only)"),
        _ => format!("ERR value '{value}' is not a number (decimal double, inf, -inf or nan)"),
    }
}

/// Text for a user-supplied argument inside an error message.
pub fn shown(arg: &[u8]) -> String {
    const MAX: usize = 64;
    let s = String::from_utf8_lossy(&arg[..arg.len().min(MAX)]);
    let s: String = s.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    if arg.len() > MAX {
        format!("{s}...")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_starts_with_an_error_code() {
        let io = || std::io::Error::from_raw_os_error(libc::ENOSPC);
        let all = [
            Error::BadIndex("x".into()),
            Error::BadValue {
                value: "x".into(),
                kind: Kind::Int8,
                why: Bad::Range,
            },
            Error::UnknownKind("x".into()),
            Error::ReadOnly("k".into()),
            Error::Repeated {
                command: "mmap".into(),
                option: "TYPE",
            },
            Error::NoOptionValue {
                command: "mmap".into(),
                option: "TYPE",
            },
            Error::OtherSpec {
                key: "k".into(),
                bound: Spec::DEFAULT,
                asked: Spec {
                    kind: Kind::Int8,
                    readonly: true,
                },
            },
            Error::BadLength("x".into()),
            Error::TooLong {
                len: 1 << 60,
                max: 1 << 43,
            },
            Error::BadOption {
                command: "MMAP".into(),
                option: "x".into(),
                known: "CREATE",
            },
            Error::OddPairs("VSET".into()),
            Error::Ragged {
                bytes: 7,
                kind: Kind::Int32,
            },
            Error::Outside { at: -1, n: 2, len: 5 },
            Error::Syntax("mmap.stats takes start and stop together, or neither".into()),
            Error::NoKey("k".into()),
            Error::WrongType,
            Error::OtherFile {
                key: "k".into(),
                bound: "a".into(),
                asked: "b".into(),
            },
            Error::AlreadyBound {
                path: "p".into(),
                key: "k".into(),
            },
            Error::Locked { path: "p".into() },
            Error::TooManyKeys("100 keys are bound".into()),
            Error::Path {
                path: "p".into(),
                cause: PathError::Symlink,
            },
            Error::Open {
                path: "p".into(),
                cause: OpenError::BadSize(3, 8),
            },
            Error::Broken {
                key: "k".into(),
                path: "p".into(),
                cause: "gone".into(),
            },
            Error::Write {
                path: "p".into(),
                cause: io(),
            },
            Error::Content {
                path: "p".into(),
                cause: "the stream ended".into(),
            },
            Error::Listing("permission denied".into()),
            Error::Panic("VGET".into()),
        ];
        for e in all {
            let m = e.to_string();
            let code = m.split(' ').next().unwrap();
            assert!(code == "ERR" || code == "WRONGTYPE", "{m}");
            assert!(!m.contains('\n') && !m.contains('\r'), "{m}");
        }
    }

    #[test]
    fn value_errors_name_the_kind_and_its_range() {
        let e = |value: &str, kind, why| {
            Error::BadValue {
                value: value.into(),
                kind,
                why,
            }
            .to_string()
        };
        assert_eq!(
            e("128", Kind::Int8, Bad::Range),
            "ERR value '128' is out of range for int8 (-128..127)"
        );
        assert_eq!(
            e("-1", Kind::Uint64, Bad::Range),
            "ERR value '-1' is out of range for uint64 (0..18446744073709551615)"
        );
        assert_eq!(
            e("1e39", Kind::Float32, Bad::Overflow),
            "ERR value '1e39' overflows float32"
        );
        assert_eq!(
            e("1.5", Kind::Int16, Bad::NotInteger),
            "ERR value '1.5' is not an integer (int16 takes integers only)"
        );
        assert_eq!(
            e("x", Kind::Float64, Bad::NotNumber),
            "ERR value 'x' is not a number (decimal double, inf, -inf or nan)"
        );
    }

    #[test]
    fn shown_arguments_are_short_and_single_line() {
        assert_eq!(shown(b"abc"), "abc");
        assert_eq!(shown(b"a\r\nb"), "a??b");
        let long = shown(&[b'x'; 100]);
        assert_eq!(long.len(), 67);
        assert!(long.ends_with("..."));
    }
}
