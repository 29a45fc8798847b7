//! Element kinds: what one value of a file is, how many bytes it takes,
//! and how it reads from and turns into text. Knows nothing of Redis.
//!
//! Every kind is little-endian with no header, as numpy writes
//! `array.astype(dtype).tofile(path)`.

use std::ffi::CStr;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};

use super::num::{parse_integer, parse_number, parse_plain, Parsed};
use super::vector::Element;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Int8,
    Uint8,
    Int16,
    Uint16,
    Int32,
    Uint32,
    Int64,
    Uint64,
    Float16,
    Bfloat16,
    Float32,
    Float64,
}

impl Kind {
    pub const ALL: [Kind; 12] = [
        Kind::Int8,
        Kind::Uint8,
        Kind::Int16,
        Kind::Uint16,
        Kind::Int32,
        Kind::Uint32,
        Kind::Int64,
        Kind::Uint64,
        Kind::Float16,
        Kind::Bfloat16,
        Kind::Float32,
        Kind::Float64,
    ];

    /// Every name `TYPE` takes, aliases last, for error messages.
    pub fn names() -> String {
        let all: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).chain(["float", "double"]).collect();
        all.join(", ")
    }

    pub fn name(self) -> &'static str {
        self.cname().to_str().expect("ASCII")
    }

    /// The name as a C string, as commands written to a log carry it.
    pub const fn cname(self) -> &'static CStr {
        match self {
            Kind::Int8 => c"int8",
            Kind::Uint8 => c"uint8",
            Kind::Int16 => c"int16",
            Kind::Uint16 => c"uint16",
            Kind::Int32 => c"int32",
            Kind::Uint32 => c"uint32",
            Kind::Int64 => c"int64",
            Kind::Uint64 => c"uint64",
            Kind::Float16 => c"float16",
            Kind::Bfloat16 => c"bfloat16",
            Kind::Float32 => c"float32",
            Kind::Float64 => c"float64",
        }
    }

    /// A kind by name, in any case; `float` and `double` are float32 and float64.
    pub fn parse(s: &[u8]) -> Option<Kind> {
        if s.eq_ignore_ascii_case(b"float") {
            return Some(Kind::Float32);
        }
        if s.eq_ignore_ascii_case(b"double") {
            return Some(Kind::Float64);
        }
        Kind::ALL
            .into_iter()
            .find(|k| s.eq_ignore_ascii_case(k.name().as_bytes()))
    }

    pub const fn size(self) -> usize {
        match self {
            Kind::Int8 | Kind::Uint8 => 1,
            Kind::Int16 | Kind::Uint16 | Kind::Float16 | Kind::Bfloat16 => 2,
            Kind::Int32 | Kind::Uint32 | Kind::Float32 => 4,
            Kind::Int64 | Kind::Uint64 | Kind::Float64 => 8,
        }
    }

    /// The number saved in RDBs and DUMP payloads. float64 is 0, which is
    /// what every encoding before kinds existed wrote.
    pub const fn code(self) -> u64 {
        match self {
            Kind::Float64 => 0,
            Kind::Int8 => 1,
            Kind::Uint8 => 2,
            Kind::Int16 => 3,
            Kind::Uint16 => 4,
            Kind::Int32 => 5,
            Kind::Uint32 => 6,
            Kind::Int64 => 7,
            Kind::Uint64 => 8,
            Kind::Float16 => 9,
            Kind::Bfloat16 => 10,
            Kind::Float32 => 11,
        }
    }

    pub fn from_code(code: u64) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The range of an integer kind, for its error message.
    pub fn range(self) -> Option<(i128, i128)> {
        Some(match self {
            Kind::Int8 => (i8::MIN.into(), i8::MAX.into()),
            Kind::Uint8 => (0, u8::MAX.into()),
            Kind::Int16 => (i16::MIN.into(), i16::MAX.into()),
            Kind::Uint16 => (0, u16::MAX.into()),
            Kind::Int32 => (i32::MIN.into(), i32::MAX.into()),
            Kind::Uint32 => (0, u32::MAX.into()),
            Kind::Int64 => (i64::MIN.into(), i64::MAX.into()),
            Kind::Uint64 => (0, u64::MAX.into()),
            _ => return None,
        })
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a key binds its file: the element kind, and whether the file is
/// mapped read-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    pub kind: Kind,
    pub readonly: bool,
}

impl Spec {
    /// What `MMAP key path` with no options binds, and what every binding
    /// saved before kinds existed was.
    pub const DEFAULT: Spec = Spec {
        kind: Kind::Float64,
        readonly: false,
    };
}

impl std::fmt::Display for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = if self.readonly { "read-only" } else { "writable" };
        write!(f, "{} ({mode})", self.kind)
    }
}

/// One value read from a file, as a reply carries it. Floats keep their
/// bits: a NaN payload must reach the client unchanged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    Int(i64),
    /// A uint64 above `i64::MAX`.
    Big(u64),
    F64(f64),
    F32(f32),
    F16(u16),
    Bf16(u16),
}

impl Value {
    /// The value as a double, exactly (every float kind widens without
    /// loss); `None` for integers.
    pub fn as_f64(self) -> Option<f64> {
        match self {
            Value::Int(_) | Value::Big(_) => None,
            Value::F64(v) => Some(v),
            Value::F32(v) => Some(v as f64),
            Value::F16(b) => Some(widen(b, HALF)),
            Value::Bf16(b) => Some(widen(b, BRAIN)),
        }
    }

    /// Whether the value is its kind's one usual NaN (positive, quiet, no
    /// payload): the only NaN a RESP3 double can carry.
    pub fn is_plain_nan(self) -> bool {
        match self {
            Value::F64(v) => v.to_bits() == 0x7ff8_0000_0000_0000,
            Value::F32(v) => v.to_bits() == 0x7fc0_0000,
            Value::F16(b) => b == 0x7e00,
            Value::Bf16(b) => b == 0x7fc0,
            _ => false,
        }
    }
}

/// Why a text is not a value of a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bad {
    /// Not a number at all (for a float kind), or a NaN payload wider than the kind's.
    NotNumber,
    /// Not an integer, for an integer kind (a fraction, an exponent, inf, nan).
    NotInteger,
    /// An integer outside the kind's range.
    Range,
    /// A finite number too large for the float kind.
    Overflow,
}

/// An element kind with its text forms.
pub trait Number: Element {
    const KIND: Kind;

    /// Parses a value as a command gives it: Redis integers for integer
    /// kinds; for float kinds a double rounded to the nearest value of the
    /// kind, `inf`, or a NaN.
    fn parse(text: &[u8]) -> Result<Self, Bad>;

    /// The kind's common texts, parsed inline; `None` leaves the text to
    /// `parse`, called out of line so that this path saves no registers.
    #[inline]
    fn parse_quick(_text: &[u8]) -> Option<Self> {
        None
    }

    fn value(self) -> Value;
}

// Other processes may read and write the same pages at any time: an atomic
// access (a plain aligned move on x86-64 and arm64) keeps that free of data
// races and moves bits unchanged, NaN payloads included.
macro_rules! element {
    ($t:ty, $atomic:ty, $bits:ty, $to:expr, $from:expr) => {
        impl Element for $t {
            const SIZE: usize = std::mem::size_of::<$bits>();

            unsafe fn load(p: *const u8) -> $t {
                let f: fn($bits) -> $t = $from;
                f(<$bits>::from_le((*(p as *const $atomic)).load(Ordering::Relaxed)))
            }

            unsafe fn store(p: *mut u8, v: $t) {
                let f: fn($t) -> $bits = $to;
                (*(p as *const $atomic)).store(f(v).to_le(), Ordering::Relaxed)
            }

            fn encode(self, out: &mut [u8]) {
                let f: fn($t) -> $bits = $to;
                out.copy_from_slice(&f(self).to_le_bytes())
            }

            fn decode(bytes: &[u8]) -> $t {
                let f: fn($bits) -> $t = $from;
                f(<$bits>::from_le_bytes(bytes.try_into().expect("one element")))
            }
        }
    };
}

element!(i8, AtomicU8, u8, |v| v as u8, |b| b as i8);
element!(u8, AtomicU8, u8, |v| v, |b| b);
element!(i16, AtomicU16, u16, |v| v as u16, |b| b as i16);
element!(u16, AtomicU16, u16, |v| v, |b| b);
element!(i32, AtomicU32, u32, |v| v as u32, |b| b as i32);
element!(u32, AtomicU32, u32, |v| v, |b| b);
element!(i64, AtomicU64, u64, |v| v as u64, |b| b as i64);
element!(u64, AtomicU64, u64, |v| v, |b| b);
element!(f32, AtomicU32, u32, f32::to_bits, f32::from_bits);
element!(f64, AtomicU64, u64, f64::to_bits, f64::from_bits);
element!(F16, AtomicU16, u16, |v| v.0, F16);
element!(Bf16, AtomicU16, u16, |v| v.0, Bf16);

macro_rules! integer {
    ($t:ty, $kind:ident) => {
        impl Number for $t {
            const KIND: Kind = Kind::$kind;

            fn parse(text: &[u8]) -> Result<$t, Bad> {
                let n = parse_integer(text).ok_or(Bad::NotInteger)?;
                <$t>::try_from(n).map_err(|_| Bad::Range)
            }

            fn value(self) -> Value {
                match i64::try_from(self) {
                    Ok(n) => Value::Int(n),
                    // Only a uint64 can be out of i64's range.
                    Err(_) => Value::Big(self as u64),
                }
            }
        }
    };
}

integer!(i8, Int8);
integer!(u8, Uint8);
integer!(i16, Int16);
integer!(u16, Uint16);
integer!(i32, Int32);
integer!(u32, Uint32);
integer!(i64, Int64);
integer!(u64, Uint64);

impl Number for f64 {
    const KIND: Kind = Kind::Float64;

    /// Inlined where values are stored: a plain decimal needs no more.
    #[inline]
    fn parse(text: &[u8]) -> Result<f64, Bad> {
        match parse_plain(text) {
            Some(v) => Ok(v),
            None => parse_f64_general(text),
        }
    }

    #[inline]
    fn parse_quick(text: &[u8]) -> Option<f64> {
        parse_plain(text)
    }

    fn value(self) -> Value {
        Value::F64(self)
    }
}

#[cold]
#[inline(never)]
fn parse_f64_general(text: &[u8]) -> Result<f64, Bad> {
    match parse_number(text).ok_or(Bad::NotNumber)? {
        Parsed::Finite(v) => Ok(v),
        Parsed::Inf(neg) => Ok(if neg { f64::NEG_INFINITY } else { f64::INFINITY }),
        Parsed::Nan { neg, frac } => nan(DOUBLE, neg, frac).map(f64::from_bits),
    }
}

impl Number for f32 {
    const KIND: Kind = Kind::Float32;

    fn parse(text: &[u8]) -> Result<f32, Bad> {
        match parse_number(text).ok_or(Bad::NotNumber)? {
            Parsed::Finite(_) => {
                // Parsed again straight to f32: through f64 first, a text
                // near a tie between two f32 values could round twice.
                let v: f32 = std::str::from_utf8(text)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or(Bad::NotNumber)?;
                if v.is_infinite() {
                    return Err(Bad::Overflow);
                }
                Ok(v)
            }
            Parsed::Inf(neg) => Ok(if neg { f32::NEG_INFINITY } else { f32::INFINITY }),
            Parsed::Nan { neg, frac } => nan(SINGLE, neg, frac).map(|b| f32::from_bits(b as u32)),
        }
    }

    fn value(self) -> Value {
        Value::F32(self)
    }
}

/// An IEEE 754 binary16 value, as its bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub struct F16(pub u16);

/// A bfloat16 value (float32's top half), as its bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub struct Bf16(pub u16);

impl Number for F16 {
    const KIND: Kind = Kind::Float16;

    fn parse(text: &[u8]) -> Result<F16, Bad> {
        parse_half(text, HALF).map(F16)
    }

    fn value(self) -> Value {
        Value::F16(self.0)
    }
}

impl Number for Bf16 {
    const KIND: Kind = Kind::Bfloat16;

    fn parse(text: &[u8]) -> Result<Bf16, Bad> {
        parse_half(text, BRAIN).map(Bf16)
    }

    fn value(self) -> Value {
        Value::Bf16(self.0)
    }
}

/// A binary float format: bits of exponent and of fraction.
#[derive(Clone, Copy)]
pub struct Format {
    exp: u32,
    frac: u32,
}

pub const HALF: Format = Format { exp: 5, frac: 10 };
pub const BRAIN: Format = Format { exp: 8, frac: 7 };
pub const SINGLE: Format = Format { exp: 8, frac: 23 };
pub const DOUBLE: Format = Format { exp: 11, frac: 52 };

impl Format {
    const fn frac_mask(self) -> u64 {
        (1 << self.frac) - 1
    }

    const fn exp_mask(self) -> u64 {
        ((1 << self.exp) - 1) << self.frac
    }

    const fn sign(self) -> u64 {
        1 << (self.exp + self.frac)
    }

    const fn bias(self) -> i32 {
        (1 << (self.exp - 1)) - 1
    }

    /// The fraction bits of this format's usual quiet NaN.
    pub const fn quiet(self) -> u64 {
        1 << (self.frac - 1)
    }

    /// Splits a NaN's bits into its sign and fraction.
    pub const fn nan_parts(self, bits: u64) -> (bool, u64) {
        (bits & self.sign() != 0, bits & self.frac_mask())
    }
}

/// The bits of a NaN of `f`: the usual quiet one, or one with the payload
/// given (which must fit the format's fraction and not be zero).
fn nan(f: Format, neg: bool, frac: Option<u64>) -> Result<u64, Bad> {
    let frac = match frac {
        None => f.quiet(),
        Some(p) if p != 0 && p <= f.frac_mask() => p,
        Some(_) => return Err(Bad::NotNumber),
    };
    Ok(if neg { f.sign() } else { 0 } | f.exp_mask() | frac)
}

fn parse_half(text: &[u8], f: Format) -> Result<u16, Bad> {
    match parse_number(text).ok_or(Bad::NotNumber)? {
        Parsed::Finite(v) => {
            let b = narrow(v, f);
            if b as u64 & f.exp_mask() == f.exp_mask() {
                return Err(Bad::Overflow);
            }
            Ok(b)
        }
        Parsed::Inf(neg) => Ok(narrow(if neg { f64::NEG_INFINITY } else { f64::INFINITY }, f)),
        Parsed::Nan { neg, frac } => nan(f, neg, frac).map(|b| b as u16),
    }
}

/// Rounds a double that is not a NaN to the nearest value of a 16-bit
/// format, ties to even; too large a value becomes infinity.
pub fn narrow(v: f64, f: Format) -> u16 {
    let bits = v.to_bits();
    let sign = if bits >> 63 != 0 { f.sign() } else { 0 };
    let field = ((bits >> 52) & 0x7ff) as i32;
    if field == 0x7ff {
        return (sign | f.exp_mask()) as u16;
    }
    // v = m * 2^(e - 52), exactly.
    let (e, m) = if field == 0 {
        (-1022, bits & DOUBLE.frac_mask())
    } else {
        (field - 1023, bits & DOUBLE.frac_mask() | 1 << 52)
    };
    // Scaled so that one unit is the result's last place: below the
    // smallest normal exponent, the place of the subnormals.
    let min_exp = 1 - f.bias();
    let top = e.max(min_exp);
    let shift = (52 - f.frac as i32 + top - e) as u32;
    let q = if shift >= 64 {
        0
    } else {
        let (q, rem, half) = (m >> shift, m & ((1 << shift) - 1), 1u64 << (shift - 1));
        q + u64::from(rem > half || (rem == half && q & 1 == 1))
    };
    // The exponent field and the implicit bit add up: a carry out of the
    // fraction moves to the next binade, and past the largest to infinity.
    let magnitude = (((top - min_exp) as u64) << f.frac) + q;
    (sign | magnitude.min(f.exp_mask())) as u16
}

/// A 16-bit format's value as a double, exactly.
pub fn widen(b: u16, f: Format) -> f64 {
    let b = b as u64;
    let sign = if b & f.sign() != 0 { -1.0 } else { 1.0 };
    let field = (b & f.exp_mask()) >> f.frac;
    let frac = b & f.frac_mask();
    if field == f.exp_mask() >> f.frac {
        return if frac == 0 {
            sign * f64::INFINITY
        } else {
            f64::NAN.copysign(sign)
        };
    }
    let (m, e) = if field == 0 {
        (frac, 1 - f.bias())
    } else {
        (frac | 1 << f.frac, field as i32 - f.bias())
    };
    // m * 2^(e - frac); the power of two is a normal double for both formats.
    let scale = f64::from_bits(((e - f.frac as i32 + 1023) as u64) << 52);
    sign * (m as f64 * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all16() -> impl Iterator<Item = u16> {
        0..=u16::MAX
    }

    fn is_nan(b: u16, f: Format) -> bool {
        b as u64 & f.exp_mask() == f.exp_mask() && b as u64 & f.frac_mask() != 0
    }

    #[test]
    fn names_sizes_and_codes() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.name().as_bytes()), Some(k));
            assert_eq!(Kind::parse(k.name().to_uppercase().as_bytes()), Some(k));
            assert_eq!(Kind::from_code(k.code()), Some(k));
            assert!(Kind::names().contains(k.name()));
        }
        assert_eq!(Kind::parse(b"Float"), Some(Kind::Float32));
        assert_eq!(Kind::parse(b"DOUBLE"), Some(Kind::Float64));
        assert_eq!(Kind::parse(b"f64"), None);
        assert_eq!(Kind::from_code(0), Some(Kind::Float64));
        assert_eq!(Kind::from_code(12), None);
        assert_eq!(Kind::Bfloat16.size(), 2);
        assert_eq!(<F16 as Element>::SIZE, 2);
        assert_eq!(<i8 as Element>::SIZE, 1);
    }

    #[test]
    fn integers_take_redis_integers_within_their_range() {
        assert_eq!(i8::parse(b"-128"), Ok(-128));
        assert_eq!(i8::parse(b"127"), Ok(127));
        assert_eq!(i8::parse(b"128"), Err(Bad::Range));
        assert_eq!(u8::parse(b"-1"), Err(Bad::Range));
        assert_eq!(u64::parse(b"18446744073709551615"), Ok(u64::MAX));
        assert_eq!(u64::parse(b"18446744073709551616"), Err(Bad::Range));
        assert_eq!(i64::parse(b"-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(i64::parse(b"9223372036854775808"), Err(Bad::Range));
        assert_eq!(
            i64::parse(b"99999999999999999999999999999999999999999"),
            Err(Bad::Range)
        );
        for bad in [
            &b"1.5"[..],
            b"1e3",
            b"inf",
            b"nan",
            b"",
            b"+1",
            b"01",
            b" 1",
            b"-0",
            b"0x10",
        ] {
            assert_eq!(i32::parse(bad), Err(Bad::NotInteger), "{:?}", bad);
        }
        assert_eq!(u64::MAX.value(), Value::Big(u64::MAX));
        assert_eq!((i64::MAX as u64).value(), Value::Int(i64::MAX));
        assert_eq!((-5i8).value(), Value::Int(-5));
    }

    #[test]
    fn every_16_bit_pattern_widens_and_narrows_back() {
        for f in [HALF, BRAIN] {
            for b in all16().filter(|&b| !is_nan(b, f)) {
                assert_eq!(narrow(widen(b, f), f), b, "{b:#06x}");
            }
        }
        // bfloat16 is float32's top half.
        for b in all16().filter(|&b| !is_nan(b, BRAIN)) {
            assert_eq!(widen(b, BRAIN), f32::from_bits((b as u32) << 16) as f64);
        }
        assert_eq!(widen(0x3c00, HALF), 1.0);
        assert_eq!(widen(0x0001, HALF), 2f64.powi(-24));
        assert_eq!(widen(0x7bff, HALF), 65504.0);
    }

    #[test]
    fn narrowing_rounds_to_nearest_ties_to_even() {
        for f in [HALF, BRAIN] {
            // Between each pair of neighbouring finite positives.
            for b in 0..(f.exp_mask() as u16 - 1) {
                let (lo, hi) = (widen(b, f), widen(b + 1, f));
                let mid = (lo + hi) / 2.0;
                let even = if b & 1 == 0 { b } else { b + 1 };
                assert_eq!(narrow(mid, f), even, "tie above {b:#06x}");
                assert_eq!(narrow(mid.next_down(), f), b);
                assert_eq!(narrow(mid.next_up(), f), b + 1);
                assert_eq!(narrow(-mid.next_up(), f), (b + 1) | f.sign() as u16);
            }
        }
        // Past the largest value, half a unit up, it is infinity.
        assert_eq!(narrow(65520.0, HALF), 0x7c00);
        assert_eq!(narrow(65519.99, HALF), 0x7bff);
        assert_eq!(narrow(1e-10, HALF), 0);
        assert_eq!(narrow(-0.0, HALF), 0x8000);
    }

    #[test]
    fn floats_parse_round_and_refuse_overflow() {
        assert_eq!(f32::parse(b"0.1"), Ok(0.1f32));
        assert_eq!(f32::parse(b"1e39"), Err(Bad::Overflow));
        assert_eq!(f32::parse(b"-1e39"), Err(Bad::Overflow));
        assert_eq!(f32::parse(b"3.4028235e38"), Ok(f32::MAX));
        assert_eq!(f32::parse(b"inf"), Ok(f32::INFINITY));
        assert_eq!(f32::parse(b"1e-50"), Ok(0.0));
        assert_eq!(f32::parse(b"nan").unwrap().to_bits(), 0x7fc0_0000);
        assert_eq!(f32::parse(b"-nan(0x1)").unwrap().to_bits(), 0xff80_0001);
        assert_eq!(f32::parse(b"nan(0x800000)"), Err(Bad::NotNumber));
        assert_eq!(f32::parse(b"abc"), Err(Bad::NotNumber));
        assert_eq!(F16::parse(b"65504"), Ok(F16(0x7bff)));
        assert_eq!(F16::parse(b"65520"), Err(Bad::Overflow));
        assert_eq!(F16::parse(b"-inf"), Ok(F16(0xfc00)));
        assert_eq!(F16::parse(b"nan(0x3ff)"), Ok(F16(0x7fff)));
        assert_eq!(F16::parse(b"nan(0x400)"), Err(Bad::NotNumber));
        assert_eq!(Bf16::parse(b"1"), Ok(Bf16(0x3f80)));
        assert_eq!(Bf16::parse(b"1e39"), Err(Bad::Overflow));
        assert_eq!(Bf16::parse(b"3e38"), Ok(Bf16(0x7f62)));
        assert_eq!(f64::parse(b"1e400"), Err(Bad::NotNumber));
    }

    #[test]
    fn plain_nans_are_each_kinds_own() {
        assert!(f32::parse(b"nan").unwrap().value().is_plain_nan());
        assert!(F16::parse(b"nan").unwrap().value().is_plain_nan());
        assert!(Bf16::parse(b"nan").unwrap().value().is_plain_nan());
        assert!(f64::parse(b"nan").unwrap().value().is_plain_nan());
        assert!(!f64::parse(b"-nan").unwrap().value().is_plain_nan());
        assert!(!Value::Int(0).is_plain_nan());
    }
}
