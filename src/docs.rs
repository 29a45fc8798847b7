//! What `COMMAND INFO` and `COMMAND DOCS` say of each command.

/// One argument after the key: name, type, and whether it repeats.
pub struct Arg {
    pub name: &'static str,
    pub kind: ArgKind,
    pub multiple: bool,
}

#[derive(Clone, Copy)]
pub enum ArgKind {
    String,
    Integer,
    Double,
    /// An optional keyword, its name the token.
    Token,
    /// An `index value` pair, shown as a block.
    Pair,
}

pub struct Spec {
    pub name: &'static str,
    /// Redis command flags: `fast` only where O(1), `deny-oom` where data grows.
    pub flags: &'static str,
    /// Redis arity: exact when positive, a minimum when negative.
    pub arity: i32,
    pub write: bool,
    pub summary: &'static str,
    pub complexity: &'static str,
    pub args: &'static [Arg],
}

const fn arg(name: &'static str, kind: ArgKind, multiple: bool) -> Arg {
    Arg { name, kind, multiple }
}

pub const SINCE: &str = "0.1.0";

pub static MMAP: Spec = Spec {
    name: "MMAP",
    flags: "write deny-oom",
    arity: -3,
    write: true,
    summary: "Binds the key to a file of raw little-endian f64 values under mmap.dir, creating the file if absent (while loading or following a master: only with CREATE). Returns the number of values.",
    complexity: "O(1)",
    args: &[arg("path", ArgKind::String, false), arg("CREATE", ArgKind::Token, false)],
};

pub static VGET: Spec = Spec {
    name: "VGET",
    flags: "readonly fast",
    arity: 3,
    write: false,
    summary: "Returns the value at an index, or nil when the index is out of range or the key is missing.",
    complexity: "O(1)",
    args: &[arg("index", ArgKind::Integer, false)],
};

pub static VMGET: Spec = Spec {
    name: "VMGET",
    flags: "readonly",
    arity: -3,
    write: false,
    summary: "Returns the values at several indices, nil for each index out of range.",
    complexity: "O(N) where N is the number of indices",
    args: &[arg("index", ArgKind::Integer, true)],
};

pub static VSET: Spec = Spec {
    name: "VSET",
    flags: "write",
    arity: -4,
    write: true,
    summary: "Writes values at indices in place, skipping indices out of range. Returns how many were written.",
    complexity: "O(N) where N is the number of pairs",
    args: &[arg("index value", ArgKind::Pair, true)],
};

pub static VADD: Spec = Spec {
    name: "VADD",
    flags: "write deny-oom",
    arity: -3,
    write: true,
    summary: "Appends values to the end of the file. Returns how many were appended.",
    complexity: "O(N) where N is the number of values added, whatever the file size",
    args: &[arg("value", ArgKind::Double, true)],
};

pub static VRESIZE: Spec = Spec {
    name: "VRESIZE",
    flags: "write deny-oom",
    arity: 3,
    write: true,
    summary: "Makes the vector exactly length values long: cuts the file, or extends it with zeros. Returns the number of values before.",
    complexity: "O(1): a cut or a sparse extension",
    args: &[arg("length", ArgKind::Integer, false)],
};

pub static VPOP: Spec = Spec {
    name: "VPOP",
    flags: "write fast",
    arity: 2,
    write: true,
    summary: "Removes and returns the last value, or nil when there is none.",
    complexity: "O(1)",
    args: &[],
};

pub static VCOUNT: Spec = Spec {
    name: "VCOUNT",
    flags: "readonly fast",
    arity: 2,
    write: false,
    summary: "Returns the number of values, 0 for a missing key.",
    complexity: "O(1)",
    args: &[],
};

pub static VCLEAR: Spec = Spec {
    name: "VCLEAR",
    flags: "write",
    arity: 2,
    write: true,
    summary: "Truncates the file to 0 bytes. Returns the number of values it held.",
    complexity: "O(N) for the file system to release the file's blocks",
    args: &[],
};

#[cfg(feature = "fault-injection")]
pub static MMAP_PANIC: Spec = Spec {
    name: "MMAP.PANIC",
    flags: "readonly",
    arity: -1,
    write: false,
    summary: "Test builds only: panics, to show that a panic becomes an error reply.",
    complexity: "O(1)",
    args: &[],
};

impl Spec {
    /// Whether `argc` arguments (the command name included) fit the arity,
    /// and, for a command whose arguments do not repeat (MMAP's optional
    /// CREATE), its documented arguments.
    pub fn fits(&self, argc: usize) -> bool {
        let a = self.arity.unsigned_abs() as usize;
        if self.arity >= 0 {
            return argc == a; // the hot commands: no walk over the arguments
        }
        let most = if self.args.iter().any(|x| x.multiple) {
            usize::MAX
        } else {
            2 + self.args.len()
        };
        argc >= a && argc <= most
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arity_is_exact_or_a_minimum() {
        assert!(VGET.fits(3) && !VGET.fits(2) && !VGET.fits(4));
        assert!(VMGET.fits(3) && VMGET.fits(300) && !VMGET.fits(2));
        assert!(VSET.fits(4) && VSET.fits(5) && !VSET.fits(3));
        assert!(MMAP.fits(3) && MMAP.fits(4) && !MMAP.fits(5) && !MMAP.fits(2));
    }
}
