//! Text forms of indices and values. Knows nothing of Redis.
//!
//! Indices follow Redis's own integer rules (`string2ll`): an optional `-`,
//! then digits with no leading zero, within `i64`. Values follow Redis's
//! double rules (`string2d`: no blanks, no overflow to infinity, no underflow
//! to zero) and add `nan` so that every bit pattern a file can hold has a
//! text form that parses back to the same bits:
//! `nan`/`-nan` for the two usual quiet NaNs, `nan(0x...)` (glibc `strtod`'s
//! notation) for any other payload.

use super::kind::{widen, Bf16, Format, Number, Value, BRAIN, DOUBLE, F16, HALF, SINGLE};

const SIGN: u64 = 1 << 63;

/// Parses a decimal `i64` as Redis does. Inlined for the common texts,
/// one to eight digits: each single-value command parses one index, and a
/// call would cost a tenth of the parse.
#[inline(always)]
pub fn parse_index(s: &[u8]) -> Option<i64> {
    // One digit first: the length test alone decides the common case.
    if let [c] = *s {
        let d = u64::from(c).wrapping_sub(u64::from(b'0'));
        return if d <= 9 { Some(d as i64) } else { None };
    }
    match *s {
        [b'1'..=b'9', ..] if s.len() <= 8 => {
            if s.len() >= 4 {
                return eight_digits(s).map(|n| n as i64);
            }
            let mut n = 0;
            for &c in s {
                let d = c.wrapping_sub(b'0');
                if d > 9 {
                    return None;
                }
                n = n * 10 + i64::from(d);
            }
            Some(n)
        }
        _ => parse_index_general(s),
    }
}

/// Signs, zero and long texts, out of line.
#[inline(never)]
fn parse_index_general(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, s),
    };
    match digits {
        [] => return None,
        [b'0'] if !neg => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    // i64's bounds have 19 digits, and 19 digits fit a u64: one unchecked
    // loop, then a range test.
    if digits.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + d as u64;
    }
    if neg {
        (n <= 1 << 63).then(|| 0u64.wrapping_sub(n) as i64)
    } else {
        i64::try_from(n).ok()
    }
}

/// Four to eight ASCII digits at once: an index of a large vector costs
/// about as much to parse as one of a small one.
#[inline]
fn eight_digits(s: &[u8]) -> Option<u64> {
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    let n = s.len();
    debug_assert!((4..=8).contains(&n));
    // Two loads that overlap when n < 8; byte k of `w` is s[k].
    let head = u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as u64;
    let tail = u32::from_le_bytes([s[n - 4], s[n - 3], s[n - 2], s[n - 1]]) as u64;
    let w = head | tail << ((n - 4) * 8);
    // Right-aligned in eight places, '0's in front: "500000" reads as "00500000".
    let pad = ((8 - n) * 8) as u32;
    let w = w << pad | ZEROS & ((1u64 << pad) - 1);
    // Every byte 0x30..=0x39: its high nibble 3, and still 3 after adding 6.
    const HIGH: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    if (w & HIGH) | ((w.wrapping_add(0x0606_0606_0606_0606) & HIGH) >> 4) != 0x3333_3333_3333_3333 {
        return None;
    }
    // Digit pairs, then fours, then all eight, each by one multiply.
    let d = w - ZEROS;
    let d = d.wrapping_mul(10).wrapping_add(d >> 8);
    const LOW: u64 = 0x0000_00ff_0000_00ff;
    let d = ((d & LOW).wrapping_mul(100 + (1_000_000 << 32)))
        .wrapping_add(((d >> 16) & LOW).wrapping_mul(1 + (10_000 << 32)))
        >> 32;
    Some(d)
}

/// A number's text, parsed by Redis's double rules, before it is fitted
/// to a kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Parsed {
    Finite(f64),
    /// `inf`, `-inf`; true when negative.
    Inf(bool),
    /// `nan`, `-nan`, or `nan(0x...)` with its payload.
    Nan {
        neg: bool,
        frac: Option<u64>,
    },
}

/// Parses a value: a decimal double, `inf`, `-inf`, `nan`, or `nan(0x...)`.
pub fn parse_value(s: &[u8]) -> Option<f64> {
    f64::parse(s).ok()
}

/// Parses a number by Redis's double rules (no blanks, no overflow to
/// infinity, no underflow to zero), plus the NaN forms. A payload is
/// returned as written, at most 13 hex digits; the kind checks it fits.
#[inline]
pub fn parse_number(s: &[u8]) -> Option<Parsed> {
    match parse_plain(s) {
        Some(v) => Some(Parsed::Finite(v)),
        None => parse_general(s),
    }
}

/// Out of line: the plain decimals above are inlined where values are
/// parsed, and everything else comes here.
#[cold]
#[inline(never)]
fn parse_general(s: &[u8]) -> Option<Parsed> {
    let text = std::str::from_utf8(s).ok()?;
    let (neg, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    // Compared as bytes: the text may hold a multi-byte character anywhere.
    if body.as_bytes().get(..3).is_some_and(|w| w.eq_ignore_ascii_case(b"nan")) {
        return parse_nan(&body[3..]).map(|frac| Parsed::Nan { neg, frac });
    }
    // Rust's grammar is strtod's minus hex floats; it also refuses blanks.
    let v: f64 = text.parse().ok()?;
    let word = body.bytes().next().is_some_and(|c| c.is_ascii_alphabetic());
    if v.is_infinite() {
        // A word is `inf` or `infinity`; digits that overflow are refused, as Redis does.
        return word.then_some(Parsed::Inf(neg));
    }
    if v == 0.0 && mantissa_has_nonzero(body) {
        return None; // underflow to zero, as Redis refuses it
    }
    Some(Parsed::Finite(v))
}

/// Powers of ten a double holds exactly.
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// The common text of a value, a plain decimal (`1.25`, `-3`, `0.5`, `.5`,
/// `1.`) of one to 15 digits, without the general parser: its digits make
/// an integer below 2^53 and its decimals a power of ten, both exact, so
/// one correctly rounded division gives the value the text names. `None`
/// for anything else (exponents, more digits, words), which the general
/// parser then takes.
#[inline(always)]
pub fn parse_plain(s: &[u8]) -> Option<f64> {
    // One test for an unsigned text: both signs sort below '0'. Each sign
    // has its own copy of the digit loops, so none carries a sign along.
    match *s.first()? {
        c if c >= b'0' => plain_digits(s),
        b'.' => plain_digits(s),
        b'-' => plain_digits(&s[1..]).map(|v| -v),
        b'+' => plain_digits(&s[1..]),
        _ => None,
    }
}

/// `parse_plain` of a text without its sign.
#[inline(always)]
fn plain_digits(body: &[u8]) -> Option<f64> {
    // 16 bytes at most: with a point, 15 digits, so `m` cannot overflow
    // and the decimals index POW10.
    if body.len() > 16 {
        return None;
    }
    // The whole part, then the decimals: no test for the point per digit.
    // Digits widened before the subtraction: one instruction fewer a digit.
    let digit = |c: u8| Some(u64::from(c).wrapping_sub(u64::from(b'0'))).filter(|&d| d <= 9);
    let mut m = 0u64;
    let mut rest = body;
    while let Some(d) = rest.first().and_then(|&c| digit(c)) {
        m = m * 10 + d;
        rest = &rest[1..];
    }
    let decimals = match *rest {
        [] if body.is_empty() || body.len() > 15 => return None, // no digit, or 16
        [] => 0,
        // A point and at least one digit: `.` alone is no number.
        [b'.', ref tail @ ..] if body.len() >= 2 => {
            for &c in tail {
                m = m * 10 + digit(c)?;
            }
            tail.len()
        }
        _ => return None,
    };
    // Below 2^53 as a signed integer: one conversion instruction. The
    // mask changes nothing (decimals < 16) but spares a bounds check.
    Some(m as i64 as f64 / POW10[decimals & 15])
}

/// Parses an integer by Redis's rules (an optional `-`, digits with no
/// leading zero), of any size: within `u64` exactly (uint64's upper half is
/// past `i64`), beyond it as the nearest bound of `i128`, which is out of
/// every kind's range.
pub fn parse_integer(s: &[u8]) -> Option<i128> {
    if let Some(n) = parse_index(s) {
        return Some(n.into());
    }
    let (neg, digits) = match s.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, s),
    };
    if digits.first().is_none_or(|&c| c == b'0') || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = std::str::from_utf8(digits)
        .ok()?
        .parse::<u64>()
        .map_or(i128::MAX, i128::from);
    Some(if neg { -n } else { n })
}

fn parse_nan(rest: &str) -> Option<Option<u64>> {
    if rest.is_empty() {
        return Some(None);
    }
    let hex = rest.strip_prefix("(0x")?.strip_suffix(')')?;
    // `from_str_radix` alone would also take a sign: `nan(0x+1)`.
    if hex.is_empty() || hex.len() > 13 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(Some)
}

fn mantissa_has_nonzero(body: &str) -> bool {
    body.bytes()
        .take_while(|c| !matches!(c, b'e' | b'E'))
        .any(|c| (b'1'..=b'9').contains(&c))
}

/// Room for each form: integers (itoa), other finite values (ryu), and
/// for the rest (short decimals, the longest NaN `-nan(0xfffffffffffff)`,
/// a 16-bit float's digits) a few bytes of text.
pub struct ValueBuf {
    ryu: ryu::Buffer,
    int: itoa::Buffer,
    text: [u8; 32],
}

impl Default for ValueBuf {
    fn default() -> Self {
        ValueBuf {
            ryu: ryu::Buffer::new(),
            int: itoa::Buffer::new(),
            text: [0; 32],
        }
    }
}

/// Below this, ryu writes an integral value as its digits and `.0`; the
/// digits alone, from itoa, are the same text found several times faster.
const PLAIN_INTEGER: f64 = 1e15;

impl ValueBuf {
    /// The shortest text that parses back to exactly `v`'s bits, as the
    /// bytes a reply carries (always ASCII).
    pub fn format(&mut self, v: f64) -> &[u8] {
        // Counts, ids and indices are common content: write them as integers.
        // The cast saturates and sends NaN to 0, so the comparison alone
        // tells integral values apart without calling libm's `trunc`;
        // -0.0 is left to ryu, which keeps its sign.
        let n = v as i64;
        if n as f64 == v && v.abs() < PLAIN_INTEGER && v.to_bits() != SIGN {
            return self.int.format(n).as_bytes();
        }
        self.general(v)
    }

    /// Out of line, so that the integer path above keeps a small frame.
    #[inline(never)]
    fn general(&mut self, v: f64) -> &[u8] {
        if let Some(n) = self.decimal(v) {
            return &self.text[..n];
        }
        if v.is_finite() {
            let s = self.ryu.format_finite(v);
            return s.strip_suffix(".0").unwrap_or(s).as_bytes();
        }
        let bits = v.to_bits();
        self.special(DOUBLE, bits, v.is_infinite())
    }

    /// A value with at most six decimals (halves, cents, thousandths) as
    /// ryu would write it, found with one multiply and one divide: scaled by
    /// 10^6, rounded, and checked to divide back to exactly `v`. Below 2^51
    /// after scaling, the value's neighbours are closer together than 10^-6,
    /// so at most one decimal of six places names it: when the check passes,
    /// that decimal, less its trailing zeros, is the shortest text and ryu's.
    /// `None` past the bounds (ryu writes 1e-5 and below with an exponent),
    /// for more decimals, and for integers, which `format` writes itself.
    fn decimal(&mut self, v: f64) -> Option<usize> {
        const LIMIT: f64 = (1u64 << 51) as f64 / 1e6;
        let a = v.abs();
        if !(1e-4..LIMIT).contains(&a) {
            return None; // NaN too
        }
        // Below 2^51 adding a half is exact, so the cast rounds half up.
        let m = (a * 1e6 + 0.5) as u64;
        if m as f64 / 1e6 != a {
            return None;
        }
        let (mut m, mut places) = (m, 6);
        while m % 10 == 0 && places > 0 {
            m /= 10;
            places -= 1;
        }
        if places == 0 {
            return None;
        }
        let unit = 10u64.pow(places);
        let (whole, mut frac) = (m / unit, m % unit);
        let int = self.int.format(whole).as_bytes();
        let mut n = 0;
        if v < 0.0 {
            self.text[0] = b'-';
            n = 1;
        }
        self.text[n..n + int.len()].copy_from_slice(int);
        n += int.len();
        self.text[n] = b'.';
        for i in (0..places as usize).rev() {
            self.text[n + 1 + i] = b'0' + (frac % 10) as u8;
            frac /= 10;
        }
        Some(n + 1 + places as usize)
    }

    /// The text of a value of any kind, the shortest that parses back, by
    /// that kind's rules, to the same bits.
    pub fn value(&mut self, v: Value) -> &[u8] {
        match v {
            Value::Int(n) => self.int.format(n).as_bytes(),
            Value::Big(n) => self.int.format(n).as_bytes(),
            Value::F64(x) => self.format(x),
            Value::F32(x) => self.single(x),
            Value::F16(b) => self.half(b, HALF, |t| F16::parse(t).ok().map(|x| x.0)),
            Value::Bf16(b) => self.half(b, BRAIN, |t| Bf16::parse(t).ok().map(|x| x.0)),
        }
    }

    fn single(&mut self, x: f32) -> &[u8] {
        let n = x as i64;
        if n as f32 == x && x.abs() < PLAIN_INTEGER as f32 && x.to_bits() != 1 << 31 {
            return self.int.format(n).as_bytes();
        }
        if !x.is_finite() {
            return self.special(SINGLE, x.to_bits() as u64, x.is_infinite());
        }
        let s = self.ryu.format_finite(x);
        s.strip_suffix(".0").unwrap_or(s).as_bytes()
    }

    /// A 16-bit float: the fewest significant digits that parse back to
    /// it, written as the double they make is (`0.1`, not `1e-1`).
    fn half(&mut self, b: u16, f: Format, parse: fn(&[u8]) -> Option<u16>) -> &[u8] {
        let x = widen(b, f);
        if !x.is_finite() {
            return self.special(f, b as u64, x.is_infinite());
        }
        use std::io::Write;
        // A 16-bit float needs at most 5 digits; 17 always suffice for a double.
        for digits in 1..=17 {
            let mut cur = std::io::Cursor::new(&mut self.text[..]);
            if write!(cur, "{:.*e}", digits - 1, x).is_err() {
                break;
            }
            let n = cur.position() as usize;
            if parse(&self.text[..n]) == Some(b) {
                let y = parse_value(&self.text[..n]).expect("written as a double");
                return self.format(y);
            }
        }
        self.format(x)
    }

    /// Infinities and NaNs of format `f`: `inf`, `nan` for the usual quiet
    /// NaN, `nan(0x...)` with the fraction bits for any other.
    fn special(&mut self, f: Format, bits: u64, infinite: bool) -> &[u8] {
        let (neg, frac) = f.nan_parts(bits);
        let sign = if neg { "-" } else { "" };
        if infinite {
            return if neg { b"-inf" } else { b"inf" };
        }
        if frac == f.quiet() {
            return if neg { b"-nan" } else { b"nan" };
        }
        use std::io::Write;
        let mut cur = std::io::Cursor::new(&mut self.text[..]);
        write!(cur, "{sign}nan(0x{frac:x})").expect("buffer fits the longest NaN form");
        let n = cur.position() as usize;
        &self.text[..n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXP_MASK: u64 = 0x7ff0_0000_0000_0000;
    const FRAC_MASK: u64 = 0x000f_ffff_ffff_ffff;
    const QUIET_NAN: u64 = 0x7ff8_0000_0000_0000;

    /// A deterministic stream of well-spread 64-bit patterns.
    fn xorshift(mut x: u64) -> impl Iterator<Item = u64> {
        std::iter::repeat_with(move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        })
    }

    impl ValueBuf {
        fn text(&mut self, v: f64) -> &str {
            std::str::from_utf8(self.format(v)).expect("ASCII")
        }
    }

    /// What ryu writes for a finite double, as `format` shapes it.
    fn ryu_text(v: f64) -> String {
        let mut b = ryu::Buffer::new();
        let s = b.format_finite(v);
        s.strip_suffix(".0").unwrap_or(s).to_owned()
    }

    #[test]
    fn short_decimals_are_written_as_ryu_writes_them() {
        let mut buf = ValueBuf::default();
        let mut fast = 0;
        let check = |v: f64, buf: &mut ValueBuf| {
            let took = buf.decimal(v).is_some();
            assert_eq!(buf.text(v), ryu_text(v), "{v:e} ({:#x})", v.to_bits());
            took
        };
        // The common content: halves, cents, thousandths, millionths, both signs.
        for i in 0..200_000u64 {
            for d in [2.0, 100.0, 1000.0, 1e6] {
                for v in [i as f64 / d, -(i as f64) / d, (i * 7919 % 1_000_003) as f64 / d] {
                    fast += usize::from(check(v, &mut buf));
                }
            }
        }
        assert!(fast > 500_000, "the short path took only {fast} values");
        // Random decimals of up to 17 digits and 0 to 9 places, parsed as a
        // reader would, and random bit patterns of every magnitude.
        let mut rng = xorshift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..300_000 {
            let (m, places) = (rng.next().unwrap() % 100_000_000_000_000_000, rng.next().unwrap() % 10);
            let v: f64 = format!("{m}e-{places}").parse().unwrap();
            check(v, &mut buf);
            let x = f64::from_bits(rng.next().unwrap());
            if x.is_finite() {
                check(x % 1e12, &mut buf);
            }
        }
        // The bounds: ryu's switch to exponents, 2^51 after scaling, ties.
        for v in [
            1e-4,
            1e-5,
            1.5e-5,
            0.0001234,
            0.000999999,
            0.1,
            0.3,
            0.1 + 0.2,
            2251799813.6,
            2251799813.685247,
            2251799813.685248,
            2251799813.68525,
            1.0000005,
            0.9999995,
            123456.5,
            -0.5,
            5e-324,
        ] {
            check(v, &mut buf);
        }
    }

    #[test]
    fn plain_decimals_parse_as_the_general_parser_does() {
        let mut rng = xorshift(0x2545_f491_4f6c_dd1d);
        for _ in 0..500_000 {
            let r = rng.next().unwrap();
            let digits = 1 + (r % 16) as usize;
            let body: String = (0..digits)
                .map(|i| char::from(b'0' + ((r >> (4 + 3 * i)) % 10) as u8))
                .collect();
            let point = (r >> 56) as usize % (digits + 1);
            let sign = ["", "-", "+"][(r >> 62) as usize % 3];
            let text = match point {
                0 => format!("{sign}{body}"),
                p => format!("{sign}{}.{}", &body[..p], &body[p..]),
            };
            let want: f64 = text.parse().unwrap();
            match parse_plain(text.as_bytes()) {
                Some(v) => assert_eq!(v.to_bits(), want.to_bits(), "{text}"),
                // Only 16 digits are left to the general parser.
                None => assert!(digits > 15, "{text}"),
            }
            assert_eq!(parse_number(text.as_bytes()), Some(Parsed::Finite(want)), "{text}");
        }
        for text in [
            "1.25",
            "-0",
            "-0.0",
            "0.1",
            "+7",
            "999999999999999",
            "0.00000000000001",
            "123456.5",
            ".5",
            "-.5",
            "+.25",
            "1.",
            "-7.",
            "999999999999999.",
            ".999999999999999",
        ] {
            let want: f64 = text.parse().unwrap();
            assert_eq!(
                parse_plain(text.as_bytes()).map(f64::to_bits),
                Some(want.to_bits()),
                "{text}"
            );
        }
        for text in [
            "",
            "-",
            "+",
            ".",
            "-.",
            "+.",
            "1..2",
            "..5",
            ".5.",
            "1.2.3",
            "1e3",
            "1 ",
            " 1",
            "0x10",
            "1_0",
            "--1",
            "+-1",
            "/5",
            ",5",
            "*1.5",
            "1.-2",
            "12345678901234567",
            "9999999999999999",
            "9999999999999999.",
            ".9999999999999999",
        ] {
            assert_eq!(parse_plain(text.as_bytes()), None, "{text}");
        }
        // What the plain parser takes, the general one reads alike.
        for text in [".5", "-.5", "1.", "-7.", "+.25", "1.25", "-0"] {
            let plain = parse_plain(text.as_bytes()).map(Parsed::Finite);
            assert_eq!(plain, parse_general(text.as_bytes()), "{text}");
        }
    }

    #[test]
    fn indices_follow_redis_integer_rules() {
        assert_eq!(parse_index(b"0"), Some(0));
        assert_eq!(parse_index(b"5"), Some(5));
        assert_eq!(parse_index(b"-1"), Some(-1));
        assert_eq!(parse_index(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_index(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_index(b"2305843009213693955"), Some(2305843009213693955));
        // Around the 19 digits of i64's bounds.
        assert_eq!(parse_index(b"999999999999999999"), Some(999_999_999_999_999_999));
        assert_eq!(parse_index(b"-999999999999999999"), Some(-999_999_999_999_999_999));
        assert_eq!(parse_index(b"1000000000000000000"), Some(1_000_000_000_000_000_000));
        assert_eq!(parse_index(b"99999999999999999x"), None);
        for bad in [
            &b""[..],
            b"-",
            b"/",
            b":",
            b"a",
            b"abc",
            b"1.5",
            b"+1",
            b" 1",
            b"1 ",
            b"01",
            b"-0",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"99999999999999999999",
            b"9999999999999999999",
            b"-9999999999999999999",
            b"1e3",
        ] {
            assert_eq!(parse_index(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    /// The eight-digit path against the plain loop, on every length it
    /// takes and texts that are digits but for one byte.
    #[test]
    fn indices_of_four_to_eight_digits_parse_as_a_loop_would() {
        let plain = |s: &[u8]| -> Option<i64> { std::str::from_utf8(s).ok()?.parse().ok() };
        for x in xorshift(0x9e37_79b9_7f4a_7c15).take(400_000) {
            let len = 4 + (x % 5) as usize;
            let mut s: Vec<u8> = (0..len).map(|i| b'0' + ((x >> (8 + 4 * i)) % 10) as u8).collect();
            s[0] = b'1' + (s[0] - b'0') % 9;
            if x >> 60 == 0 {
                // One digit replaced by a byte that is not one.
                let at = (x >> 40) as usize % len;
                s[at] = [b'/', b':', b' ', 0, 0xff, b'.', b'a', 0xb9][(x >> 50) as usize % 8];
            }
            let neg = x >> 59 & 1 == 1;
            if neg {
                s.insert(0, b'-');
            }
            let want = if s.iter().any(|c| !c.is_ascii_digit() && *c != b'-') {
                None
            } else {
                plain(&s)
            };
            assert_eq!(parse_index(&s), want, "{:?}", String::from_utf8_lossy(&s));
        }
        for n in [
            1000i64, 9999, 10000, 12345678, 99999999, 10000000, 500000, -500000, -99999999,
        ] {
            assert_eq!(parse_index(n.to_string().as_bytes()), Some(n));
        }
        assert_eq!(parse_index(b"0123"), None);
        assert_eq!(parse_index(b"-0123"), None);
    }

    #[test]
    fn values_parse_like_redis_plus_nan() {
        assert_eq!(parse_value(b"0.5"), Some(0.5));
        assert_eq!(parse_value(b"-3"), Some(-3.0));
        assert_eq!(parse_value(b"1e-20"), Some(1e-20));
        assert_eq!(parse_value(b".5"), Some(0.5));
        assert_eq!(parse_value(b"inf"), Some(f64::INFINITY));
        assert_eq!(parse_value(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_value(b"+Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_value(b"5e-324").unwrap().to_bits(), 1);
        assert_eq!(parse_value(b"-0").unwrap().to_bits(), (-0.0f64).to_bits());
        assert_eq!(parse_value(b"0e5"), Some(0.0));
        assert_eq!(parse_value(b"nan").unwrap().to_bits(), QUIET_NAN);
        assert_eq!(parse_value(b"NaN").unwrap().to_bits(), QUIET_NAN);
        assert_eq!(parse_value(b"-nan").unwrap().to_bits(), QUIET_NAN | SIGN);
        assert_eq!(parse_value(b"nan(0x1)").unwrap().to_bits(), EXP_MASK | 1);
        for bad in [
            &b""[..],
            b"abc",
            b" 1",
            b"1 ",
            b"1,5",
            b"1e400",
            b"-1e400",
            b"1e-400",
            b"nan(0x0)",
            b"nan(1)",
            b"nan(0x10000000000000)",
            b"nanx",
            b"0x1p3",
            b"\xff",
            b"nan(0x+1)",
            b"nan(0x-1)",
            b"nan(0x 1)",
            "ab\u{20ac}".as_bytes(),
            "-xy\u{20ac}".as_bytes(),
            "na\u{20ac}".as_bytes(),
            "nan(0x\u{20ac})".as_bytes(),
            "1\u{20ac}".as_bytes(),
        ] {
            assert_eq!(parse_value(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn no_input_makes_the_parsers_panic() {
        // Every string of up to three bytes drawn from ASCII and the bytes of
        // multi-byte characters, then random longer ones.
        let alphabet: Vec<u8> = b"0159-+.eEnNaixX()"
            .iter()
            .copied()
            .chain("\u{20ac}\u{e9}".bytes())
            .chain([0xff, 0x80, 0])
            .collect();
        let mut inputs: Vec<Vec<u8>> = vec![Vec::new()];
        for len in 1..=3 {
            let mut idx = vec![0usize; len];
            loop {
                inputs.push(idx.iter().map(|&i| alphabet[i]).collect());
                let Some(p) = (0..len).rev().find(|&p| idx[p] + 1 < alphabet.len()) else {
                    break;
                };
                idx[p] += 1;
                idx[p + 1..].iter_mut().for_each(|i| *i = 0);
            }
        }
        for x in xorshift(0x2545_f491_4f6c_dd1d).take(50_000) {
            let len = (x % 24) as usize;
            let mut v = b"-nan(0x".to_vec();
            v.truncate((x >> 8) as usize % 8);
            v.extend((0..len).map(|i| alphabet[((x >> (i % 48)) as usize + i) % alphabet.len()]));
            inputs.push(v);
        }
        for s in &inputs {
            let _ = parse_value(s);
            let _ = parse_index(s);
        }
    }

    #[test]
    fn formatting_is_shortest_and_plain() {
        let mut b = ValueBuf::default();
        assert_eq!(b.text(0.5), "0.5");
        assert_eq!(b.text(0.1), "0.1");
        assert_eq!(b.text(5.0), "5");
        assert_eq!(b.text(100.0), "100");
        assert_eq!(b.text(-0.0), "-0");
        assert_eq!(b.text(1e-20), "1e-20");
        assert_eq!(b.text(f64::INFINITY), "inf");
        assert_eq!(b.text(f64::NEG_INFINITY), "-inf");
        assert_eq!(b.text(f64::NAN), "nan");
        assert_eq!(b.text(f64::from_bits(SIGN | EXP_MASK | 0xabc)), "-nan(0xabc)");
    }

    #[test]
    fn every_kind_of_bit_pattern_round_trips() {
        let mut b = ValueBuf::default();
        let mut patterns = vec![
            0,
            SIGN,
            1,
            FRAC_MASK,
            EXP_MASK,
            EXP_MASK | SIGN,
            QUIET_NAN,
            QUIET_NAN | SIGN,
            EXP_MASK | 1,
            EXP_MASK | FRAC_MASK | SIGN,
            0.1f64.to_bits(),
            f64::MAX.to_bits(),
            f64::MIN_POSITIVE.to_bits(),
            1e-20f64.to_bits(),
        ];
        // A deterministic spread over the whole space.
        patterns.extend(xorshift(0x9e37_79b9_7f4a_7c15).take(20_000));
        for bits in patterns {
            let text = b.text(f64::from_bits(bits)).to_owned();
            let back = parse_value(text.as_bytes()).unwrap_or_else(|| panic!("{text} does not parse"));
            assert_eq!(back.to_bits(), bits, "{text}");
        }
    }

    #[test]
    fn integers_take_the_short_path_and_print_as_ryu_would() {
        let mut b = ValueBuf::default();
        let mut r = ryu::Buffer::new();
        for v in [
            0.0,
            1.0,
            -1.0,
            7.0,
            500000.0,
            -813769.0,
            999_999_999_999_999.0,
            -999_999_999_999_999.0,
        ] {
            let want = r.format_finite(v).strip_suffix(".0").unwrap().to_string();
            assert_eq!(b.text(v), want, "{v}");
        }
        assert_eq!(b.text(-0.0), "-0");
        assert_eq!(b.text(1e15), "1000000000000000");
        assert_eq!(b.text(1e16), "1e16");
        assert_eq!(b.text(0.5), "0.5");
        assert_eq!(b.text(-2.5), "-2.5");
    }

    /// Parses a value's text back by its kind's rules.
    fn back(v: Value, text: &[u8]) -> Option<Value> {
        match v {
            Value::F64(_) => f64::parse(text).ok().map(Value::F64),
            Value::F32(_) => f32::parse(text).ok().map(Value::F32),
            Value::F16(_) => F16::parse(text).ok().map(|x| Value::F16(x.0)),
            Value::Bf16(_) => Bf16::parse(text).ok().map(|x| Value::Bf16(x.0)),
            Value::Int(_) | Value::Big(_) => None,
        }
    }

    fn same_bits(a: Value, b: Value) -> bool {
        match (a, b) {
            (Value::F32(x), Value::F32(y)) => x.to_bits() == y.to_bits(),
            (Value::F64(x), Value::F64(y)) => x.to_bits() == y.to_bits(),
            _ => a == b,
        }
    }

    #[test]
    fn every_16_bit_float_round_trips_through_its_text() {
        let mut b = ValueBuf::default();
        for bits in 0..=u16::MAX {
            for v in [Value::F16(bits), Value::Bf16(bits)] {
                let text = b.value(v).to_owned();
                let got = back(v, &text).unwrap_or_else(|| panic!("{v:?}: {:?}", String::from_utf8_lossy(&text)));
                assert_eq!(got, v, "{}", String::from_utf8_lossy(&text));
            }
        }
    }

    #[test]
    fn float32_round_trips_including_nan_payloads_and_subnormals() {
        let mut b = ValueBuf::default();
        let special = [
            0u32,
            1,
            0x8000_0000,
            0x007f_ffff,
            0x7f80_0000,
            0xff80_0000,
            0x7fc0_0000,
            0x7f80_0001,
            0xffff_ffff,
        ];
        let spread = xorshift(0x1234_5678_9abc_def1).take(50_000).map(|x| x as u32);
        for bits in special.into_iter().chain(spread) {
            let v = Value::F32(f32::from_bits(bits));
            let text = b.value(v).to_owned();
            let got = back(v, &text).unwrap_or_else(|| panic!("{bits:#x}: {:?}", String::from_utf8_lossy(&text)));
            assert!(same_bits(got, v), "{bits:#x} {}", String::from_utf8_lossy(&text));
        }
    }

    #[test]
    fn each_kind_writes_its_shortest_plain_text() {
        let mut b = ValueBuf::default();
        let mut t = |v| String::from_utf8(b.value(v).to_vec()).unwrap();
        assert_eq!(t(Value::F32(0.1)), "0.1");
        assert_eq!(t(Value::F32(16777216.0)), "16777216");
        assert_eq!(t(Value::F32(-0.0)), "-0");
        assert_eq!(t(Value::F32(f32::from_bits(1))), "1e-45");
        assert_eq!(t(Value::F32(f32::NAN)), "nan");
        assert_eq!(t(Value::F32(f32::from_bits(0xffc0_0001))), "-nan(0x400001)");
        assert_eq!(t(Value::F16(0x2e66)), "0.1");
        assert_eq!(t(Value::F16(0x7bff)), "65500");
        assert_eq!(t(Value::F16(0x0001)), "6e-8");
        assert_eq!(t(Value::F16(0x7c01)), "nan(0x1)");
        assert_eq!(t(Value::F16(0xfc00)), "-inf");
        assert_eq!(t(Value::Bf16(0x3dcd)), "0.1");
        assert_eq!(t(Value::Bf16(0x3f80)), "1");
        assert_eq!(t(Value::Int(-128)), "-128");
        assert_eq!(t(Value::Big(u64::MAX)), "18446744073709551615");
    }
}
