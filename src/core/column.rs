//! A mapped vector of any kind behind one interface: the kind is chosen
//! once, when the file is opened, and every command after that goes
//! through `Column` without looking at it again. Knows nothing of Redis.

use std::fs::File;
use std::io;
use std::sync::Arc;

use super::kind::{Bad, Bf16, Kind, Number, Value, F16};
use super::summary::{self, summarize, Acc, Summary, Summed};
use super::vector::{MappedVec, OpenError, Span};

/// Why a write was refused. Nothing was changed.
#[derive(Debug)]
pub enum Rejected {
    /// The `at`-th value given is not a value of the kind.
    Value {
        at: usize,
        why: Bad,
    },
    /// A length past the most values a file of the kind may hold.
    TooLong {
        len: usize,
        max: usize,
    },
    /// Raw bytes that are not a whole number of elements.
    Ragged {
        bytes: usize,
    },
    /// Raw elements that would not all lie within a vector of `len`.
    Outside {
        at: i64,
        n: usize,
        len: usize,
    },
    Io(io::Error),
}

impl From<io::Error> for Rejected {
    fn from(e: io::Error) -> Rejected {
        Rejected::Io(e)
    }
}

/// The indices `start..=stop` selects in a vector of `len` values, by
/// `LRANGE`'s rules: a negative index counts from the end, ends past either
/// side are clipped, and a start after the stop selects nothing.
pub fn clip(start: i64, stop: i64, len: usize) -> std::ops::Range<usize> {
    let n = len as i128;
    let from_end = |i: i64| if i < 0 { i as i128 + n } else { i as i128 };
    let (start, stop) = (from_end(start).max(0), from_end(stop).min(n - 1));
    if start > stop {
        return 0..0;
    }
    start as usize..stop as usize + 1
}

/// The values a write command gives, as text, by position.
pub type Texts<'t> = &'t dyn Fn(usize) -> &'t [u8];

pub trait Column: Send + Sync {
    fn kind(&self) -> Kind;
    fn len(&self) -> usize;
    /// The most values a file of this kind may hold.
    fn max_len(&self) -> usize;
    fn file(&self) -> &Arc<File>;
    fn file_bytes(&self) -> usize;
    fn reserved_bytes(&self) -> usize;
    fn writable(&self) -> bool;
    fn get(&self, index: usize) -> Option<Value>;

    /// The value at each index, `None` where it is out of range (negative
    /// included): one call for a whole `MMAP.MGET`.
    fn gather(&self, indices: &[i64], out: &mut Vec<Option<Value>>);

    /// Parses the `indices.len()` values of `texts`, then writes each whose
    /// index is in range; returns how many were written. All or nothing.
    fn set(&mut self, indices: &[i64], texts: Texts) -> Result<usize, Rejected>;

    /// `set` of one pair, without the parse buffer: whether `i` was in
    /// range. A read-only vector writes nothing; the caller, which knows
    /// how the file was opened, refuses the write first. The small error
    /// lets the result travel in registers.
    fn set_one(&mut self, i: i64, text: &[u8]) -> Result<bool, Bad>;

    /// Parses `n` values of `texts`, then appends them, with `hold` to the
    /// tail where there is room (see `MappedVec::settle`). All or nothing.
    fn extend(&mut self, n: usize, texts: Texts, hold: bool) -> Result<(), Rejected>;

    /// Writes the tail to the file.
    fn settle(&mut self) -> io::Result<()>;

    /// The tail's bytes: appended values not yet in the file.
    fn tail(&self) -> &[u8];

    /// The values of `from..to`, in order.
    fn each(&self, from: usize, to: usize, f: &mut dyn FnMut(Value));

    /// The bytes of `from..to` as the file holds them.
    fn span(&self, from: usize, to: usize) -> Span<'_>;

    /// Count, NaNs, sum, min, max, mean and standard deviation of `from..to`.
    fn summary(&self, from: usize, to: usize) -> Summary;

    /// Writes raw elements from index `at`; returns how many. All or nothing.
    fn write_bytes(&mut self, at: i64, bytes: &[u8]) -> Result<usize, Rejected>;

    /// Appends raw elements, with `hold` as for `extend`. All or nothing.
    fn append_bytes(&mut self, bytes: &[u8], hold: bool) -> Result<(), Rejected>;

    fn pop(&mut self) -> io::Result<Option<Value>>;
    fn truncate(&mut self, len: usize) -> io::Result<()>;
    /// Cuts the file, or extends it with zeros, to `len` values.
    fn resize(&mut self, len: usize) -> Result<(), Rejected>;
    /// The offset of a fault taken in the mapping and not yet handled.
    fn fault(&self) -> Option<usize>;
    /// Bytes of the file in memory (see `view::resident`).
    fn resident(&self) -> io::Result<usize>;
    /// A read-only mapping follows its file's length now (see
    /// `MappedVec::follow`); returns it.
    fn follow(&mut self) -> io::Result<usize>;
}

/// Opens a file as a vector of `kind`: the one place the kind is matched.
pub fn open(kind: Kind, file: File, writable: bool) -> Result<Box<dyn Column>, OpenError> {
    fn typed<T: Summed>(file: File, writable: bool) -> Result<Box<dyn Column>, OpenError> {
        Ok(Box::new(Typed::<T> {
            vec: MappedVec::open(file, writable)?,
            parsed: Vec::new(),
        }))
    }
    match kind {
        Kind::Int8 => typed::<i8>(file, writable),
        Kind::Uint8 => typed::<u8>(file, writable),
        Kind::Int16 => typed::<i16>(file, writable),
        Kind::Uint16 => typed::<u16>(file, writable),
        Kind::Int32 => typed::<i32>(file, writable),
        Kind::Uint32 => typed::<u32>(file, writable),
        Kind::Int64 => typed::<i64>(file, writable),
        Kind::Uint64 => typed::<u64>(file, writable),
        Kind::Float16 => typed::<F16>(file, writable),
        Kind::Bfloat16 => typed::<Bf16>(file, writable),
        Kind::Float32 => typed::<f32>(file, writable),
        Kind::Float64 => typed::<f64>(file, writable),
    }
}

/// What a worker needs of a kind to read a file's bytes, matched once per
/// command.
#[derive(Clone, Copy)]
pub struct Reader {
    pub size: usize,
    /// The part of a summary over the values held in `bytes` (at most one
    /// segment's, whole elements).
    pub part: fn(&[u8]) -> Acc,
    /// The summary of consecutive segments' parts.
    pub finish: fn(&[Acc]) -> Summary,
    /// The value held in one element's bytes.
    pub decode: fn(&[u8]) -> Value,
}

/// The `Reader` of `kind`.
pub fn reader(kind: Kind) -> Reader {
    fn typed<T: Summed>() -> Reader {
        Reader {
            size: T::SIZE,
            part: |bytes| {
                // SAFETY: every bit pattern is a value of each element type
                // (plain integers and floats, the 16-bit floats' bits
                // transparent), and the file is little-endian as this host
                // is. The values may change under the read (another program,
                // a write on the main thread): `fold` reads each as what it
                // holds at that moment, and relies on no two reads agreeing.
                let (pre, values, post) = unsafe { bytes.align_to::<T>() };
                if pre.is_empty() && post.is_empty() {
                    return summary::part_of::<T>(values);
                }
                let n = bytes.len() / T::SIZE;
                summary::part::<T>(n, |at, out| {
                    let src = &bytes[at * T::SIZE..(at + out.len()) * T::SIZE];
                    // SAFETY: `out` holds exactly `src.len()` bytes of
                    // plain elements (integers, floats, and the 16-bit
                    // floats' transparent bits), every bit pattern a value,
                    // and the file is little-endian as this host is.
                    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), out.as_mut_ptr().cast::<u8>(), src.len()) };
                })
            },
            finish: summary::finish::<T>,
            decode: |b| T::decode(b).value(),
        }
    }
    match kind {
        Kind::Int8 => typed::<i8>(),
        Kind::Uint8 => typed::<u8>(),
        Kind::Int16 => typed::<i16>(),
        Kind::Uint16 => typed::<u16>(),
        Kind::Int32 => typed::<i32>(),
        Kind::Uint32 => typed::<u32>(),
        Kind::Int64 => typed::<i64>(),
        Kind::Uint64 => typed::<u64>(),
        Kind::Float16 => typed::<F16>(),
        Kind::Bfloat16 => typed::<Bf16>(),
        Kind::Float32 => typed::<f32>(),
        Kind::Float64 => typed::<f64>(),
    }
}

/// The value held in `bytes`, one element of `kind` as the file holds it.
pub fn decode(kind: Kind, bytes: &[u8]) -> Value {
    fn one<T: Number>(b: &[u8]) -> Value {
        T::decode(b).value()
    }
    let f = match kind {
        Kind::Int8 => one::<i8>,
        Kind::Uint8 => one::<u8>,
        Kind::Int16 => one::<i16>,
        Kind::Uint16 => one::<u16>,
        Kind::Int32 => one::<i32>,
        Kind::Uint32 => one::<u32>,
        Kind::Int64 => one::<i64>,
        Kind::Uint64 => one::<u64>,
        Kind::Float16 => one::<F16>,
        Kind::Bfloat16 => one::<Bf16>,
        Kind::Float32 => one::<f32>,
        Kind::Float64 => one::<f64>,
    };
    f(bytes)
}

struct Typed<T: Summed> {
    vec: MappedVec<T>,
    /// Values parsed before any is written, kept between commands.
    parsed: Vec<T>,
}

impl<T: Summed> Typed<T> {
    /// How many elements `bytes` holds, if a whole number.
    fn whole(&self, bytes: &[u8]) -> Result<usize, Rejected> {
        if !bytes.len().is_multiple_of(T::SIZE) {
            return Err(Rejected::Ragged { bytes: bytes.len() });
        }
        Ok(bytes.len() / T::SIZE)
    }

    /// Parses `n` texts into `parsed`; a huge command's room is not kept.
    fn parse(&mut self, n: usize, texts: Texts) -> Result<(), Rejected> {
        const KEEP: usize = 1 << 16;
        self.parsed.clear();
        if self.parsed.capacity() > KEEP {
            self.parsed.shrink_to(KEEP);
        }
        for at in 0..n {
            let v = T::parse(texts(at)).map_err(|why| Rejected::Value { at, why })?;
            self.parsed.push(v);
        }
        Ok(())
    }

    /// `set_one` of a text the quick parser left: the kind's full rules.
    #[inline(never)]
    fn set_one_parsed(&mut self, i: i64, text: &[u8]) -> Result<bool, Bad> {
        let v = T::parse(text)?;
        Ok(self.vec.set(i as usize, v))
    }
}

impl<T: Summed> Column for Typed<T> {
    fn kind(&self) -> Kind {
        T::KIND
    }

    fn len(&self) -> usize {
        self.vec.len()
    }

    fn max_len(&self) -> usize {
        MappedVec::<T>::max_len()
    }

    fn file(&self) -> &Arc<File> {
        self.vec.file()
    }

    fn file_bytes(&self) -> usize {
        self.vec.file_bytes()
    }

    fn reserved_bytes(&self) -> usize {
        self.vec.reserved_bytes()
    }

    fn writable(&self) -> bool {
        self.vec.writable()
    }

    fn get(&self, index: usize) -> Option<Value> {
        self.vec.get(index).map(T::value)
    }

    fn gather(&self, indices: &[i64], out: &mut Vec<Option<Value>>) {
        // Loads first, replies after: random reads into a large file miss
        // the cache, and a loop free of calls lets the CPU wait for them
        // together.
        out.extend(
            indices
                .iter()
                .map(|&i| usize::try_from(i).ok().and_then(|i| self.get(i))),
        );
    }

    fn set(&mut self, indices: &[i64], texts: Texts) -> Result<usize, Rejected> {
        self.vec.check_writable()?;
        self.parse(indices.len(), texts)?;
        let vec = &mut self.vec;
        let n = indices
            .iter()
            .zip(&self.parsed)
            .filter(|&(&i, &v)| usize::try_from(i).is_ok_and(|i| vec.set(i, v)))
            .count();
        Ok(n)
    }

    fn set_one(&mut self, i: i64, text: &[u8]) -> Result<bool, Bad> {
        let Some(v) = T::parse_quick(text) else {
            return self.set_one_parsed(i, text);
        };
        // A negative index wraps past every length: one range test.
        Ok(self.vec.set(i as usize, v))
    }

    fn extend(&mut self, n: usize, texts: Texts, hold: bool) -> Result<(), Rejected> {
        self.vec.check_writable()?;
        self.parse(n, texts)?;
        Ok(self.vec.extend(&self.parsed, hold)?)
    }

    fn settle(&mut self) -> io::Result<()> {
        self.vec.settle()
    }

    fn tail(&self) -> &[u8] {
        self.vec.tail()
    }

    fn each(&self, from: usize, to: usize, f: &mut dyn FnMut(Value)) {
        for i in from..to.min(self.len()) {
            if let Some(v) = self.vec.get(i) {
                f(v.value());
            }
        }
    }

    fn span(&self, from: usize, to: usize) -> Span<'_> {
        self.vec.span(from, to)
    }

    #[inline]
    fn fault(&self) -> Option<usize> {
        self.vec.fault()
    }

    fn follow(&mut self) -> io::Result<usize> {
        self.vec.follow()
    }

    fn resident(&self) -> io::Result<usize> {
        self.vec.resident()
    }

    fn summary(&self, from: usize, to: usize) -> Summary {
        let to = to.min(self.len());
        let from = from.min(to);
        summarize::<T>(to - from, |at, out| self.vec.copy_out(from + at, out))
    }

    fn write_bytes(&mut self, at: i64, bytes: &[u8]) -> Result<usize, Rejected> {
        self.vec.check_writable()?;
        let n = self.whole(bytes)?;
        let inside = usize::try_from(at).is_ok_and(|at| self.vec.write_bytes(at, bytes));
        if !inside {
            return Err(Rejected::Outside { at, n, len: self.len() });
        }
        Ok(n)
    }

    fn append_bytes(&mut self, bytes: &[u8], hold: bool) -> Result<(), Rejected> {
        self.vec.check_writable()?;
        self.whole(bytes)?;
        Ok(self.vec.append_bytes(bytes, hold)?)
    }

    fn pop(&mut self) -> io::Result<Option<Value>> {
        Ok(self.vec.pop()?.map(T::value))
    }

    fn truncate(&mut self, len: usize) -> io::Result<()> {
        self.vec.truncate(len)
    }

    fn resize(&mut self, len: usize) -> Result<(), Rejected> {
        let max = self.max_len();
        if len > max {
            return Err(Rejected::TooLong { len, max });
        }
        Ok(self.vec.resize(len)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn column(dir: &tempfile::TempDir, kind: Kind, bytes: &[u8]) -> (std::path::PathBuf, Box<dyn Column>) {
        let path = dir.path().join(kind.name());
        std::fs::write(&path, bytes).unwrap();
        let file = OpenOptions::new().read(true).write(true).open(&path).unwrap();
        (path, open(kind, file, true).unwrap())
    }

    fn set(c: &mut dyn Column, indices: &[i64], values: &[&str]) -> Result<usize, Rejected> {
        let texts = |i: usize| values[i].as_bytes();
        c.set(indices, &texts)
    }

    fn extend(c: &mut dyn Column, values: &[&str]) -> Result<(), Rejected> {
        let texts = |i: usize| values[i].as_bytes();
        c.extend(values.len(), &texts, false)
    }

    #[test]
    fn each_kind_reads_and_writes_its_own_width() {
        let dir = tempfile::tempdir().unwrap();
        for kind in Kind::ALL {
            let (path, mut c) = column(&dir, kind, &vec![0u8; 3 * kind.size()]);
            assert_eq!((c.kind(), c.len(), c.file_bytes()), (kind, 3, 3 * kind.size()));
            assert_eq!(set(&mut *c, &[0, 2], &["1", "2"]).unwrap(), 2);
            extend(&mut *c, &["100"]).unwrap();
            assert_eq!(std::fs::metadata(&path).unwrap().len(), 4 * kind.size() as u64);
            let got: Vec<Value> = (0..4).map(|i| c.get(i).unwrap()).collect();
            let bytes = std::fs::read(&path).unwrap();
            for (i, v) in got.iter().enumerate() {
                assert_eq!(decode(kind, &bytes[i * kind.size()..][..kind.size()]), *v);
            }
            assert_eq!(c.get(1), Some(decode(kind, &vec![0; kind.size()])));
            assert_eq!(c.get(4), None);
            assert_eq!(c.pop().unwrap(), got.last().copied());
            assert_eq!(c.max_len(), (1 << 46) / kind.size());
        }
    }

    #[test]
    fn a_bad_value_anywhere_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut c) = column(&dir, Kind::Int8, &[0, 0]);
        let e = set(&mut *c, &[0, 1], &["5", "300"]).unwrap_err();
        assert!(matches!(e, Rejected::Value { at: 1, why: Bad::Range }), "{e:?}");
        let e = extend(&mut *c, &["5", "1.5"]).unwrap_err();
        assert!(
            matches!(
                e,
                Rejected::Value {
                    at: 1,
                    why: Bad::NotInteger
                }
            ),
            "{e:?}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), [0, 0]);
        // Out-of-range indices are skipped, in-range ones written.
        assert_eq!(set(&mut *c, &[-1, 1, 2], &["1", "-2", "3"]).unwrap(), 1);
        assert_eq!(std::fs::read(&path).unwrap(), [0, 0xfe]);
    }

    #[test]
    fn a_read_only_column_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ro");
        std::fs::write(&path, [0u8; 8]).unwrap();
        let mut c = open(Kind::Float32, File::open(&path).unwrap(), false).unwrap();
        assert!(!c.writable());
        assert!(matches!(set(&mut *c, &[0], &["1"]), Err(Rejected::Io(_))));
        assert!(matches!(extend(&mut *c, &["1"]), Err(Rejected::Io(_))));
        assert_eq!(c.get(1), Some(Value::F32(0.0)));
    }

    #[test]
    fn ranges_follow_lrange() {
        assert_eq!(clip(0, -1, 5), 0..5);
        assert_eq!(clip(1, 2, 5), 1..3);
        assert_eq!(clip(-2, -1, 5), 3..5);
        assert_eq!(clip(-100, 100, 5), 0..5);
        assert_eq!(clip(3, 1, 5), 0..0);
        assert_eq!(clip(5, 10, 5), 0..0);
        assert_eq!(clip(4, 4, 5), 4..5);
        assert_eq!(clip(-6, -6, 5), 0..0);
        assert_eq!(clip(0, -1, 0), 0..0);
        assert_eq!(clip(i64::MIN, i64::MAX, 3), 0..3);
        assert_eq!(clip(i64::MAX, i64::MIN, 3), 0..0);
    }

    #[test]
    fn raw_bytes_write_whole_elements_inside_the_vector_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut c) = column(&dir, Kind::Int16, &[0u8; 8]);
        assert_eq!(c.write_bytes(1, &[1, 0, 2, 0]).unwrap(), 2);
        assert_eq!(std::fs::read(&path).unwrap(), [0, 0, 1, 0, 2, 0, 0, 0]);
        for (at, bytes) in [(3, &[9u8, 9, 9, 9][..]), (-1, &[9, 9][..]), (4, &[9, 9][..])] {
            let e = c.write_bytes(at, bytes).unwrap_err();
            assert!(matches!(e, Rejected::Outside { len: 4, .. }), "{e:?}");
        }
        let e = c.write_bytes(0, &[9, 9, 9]).unwrap_err();
        assert!(matches!(e, Rejected::Ragged { bytes: 3 }), "{e:?}");
        assert!(matches!(
            c.append_bytes(&[9], false),
            Err(Rejected::Ragged { bytes: 1 })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), [0, 0, 1, 0, 2, 0, 0, 0]);
        // Nothing at the very end is still inside.
        assert_eq!(c.write_bytes(4, &[]).unwrap(), 0);
        c.append_bytes(&[7, 0, 8, 0], false).unwrap();
        assert_eq!(c.len(), 6);
        assert_eq!(std::fs::read(&path).unwrap()[8..], [7, 0, 8, 0]);
        let mut got = Vec::new();
        c.span(1, 3).copy_into(&mut got);
        assert_eq!(got, [1, 0, 2, 0]);
        c.span(6, 9).copy_into(&mut got);
        assert_eq!(got, [1, 0, 2, 0], "nothing past the end");
        let mut seen = Vec::new();
        c.each(3, 10, &mut |v| seen.push(v));
        assert_eq!(seen, [Value::Int(0), Value::Int(7), Value::Int(8)]);
        let s = c.summary(0, 6);
        assert_eq!((s.count, s.sum, s.max), (6, 18.0, Some(Value::Int(8))));
    }

    #[test]
    fn a_read_only_column_refuses_raw_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ro");
        std::fs::write(&path, [0u8; 8]).unwrap();
        let mut c = open(Kind::Float64, File::open(&path).unwrap(), false).unwrap();
        assert!(matches!(c.write_bytes(0, &[1; 8]), Err(Rejected::Io(_))));
        assert!(matches!(c.append_bytes(&[1; 8], true), Err(Rejected::Io(_))));
        assert_eq!(std::fs::read(&path).unwrap(), [0; 8]);
    }

    #[test]
    fn a_size_not_a_multiple_of_the_element_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odd");
        std::fs::write(&path, [0u8; 6]).unwrap();
        let e = open(Kind::Int32, File::open(&path).unwrap(), false).err().unwrap();
        assert!(matches!(e, OpenError::BadSize(6, 4)), "{e}");
        assert!(open(Kind::Int16, File::open(&path).unwrap(), false).is_ok());
    }
}
