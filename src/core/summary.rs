//! `MMAP.STATS` in one pass: count, NaNs, sum, min, max, mean and
//! population standard deviation of a run of values, NaNs skipped and
//! counted as numpy's `nan*` functions do. Knows nothing of Redis.
//!
//! The values arrive in blocks small enough to stay in the first-level
//! cache. Each block is summed pairwise (leaves of 128 values over eight
//! lanes, as numpy does) and its spread taken around its own mean in a
//! second walk over the cached block, so memory is read once. Blocks are
//! merged with compensated summation for the sum and Chan's formula for the
//! spread. Float kinds are summed in double precision; integer kinds exactly.

use super::kind::{narrow, Bf16, Number, Value, BRAIN, F16, HALF};

/// Values per block: two buffers of this many doubles fit a 32 KiB L1.
pub const BLOCK: usize = 1024;

/// Values per segment: a summary is the parts of its segments merged in
/// order, whoever computed each part, so that a summary split across
/// worker threads is the same, to the bit, as one taken in one pass.
pub const SEGMENT: usize = 64 * BLOCK;
const LEAF: usize = 128;
const LANES: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Values that are not NaN.
    pub count: u64,
    pub nan: u64,
    pub sum: f64,
    /// `None` when no value is counted.
    pub min: Option<Value>,
    pub max: Option<Value>,
    pub mean: Option<f64>,
    pub std: Option<f64>,
}

impl Summary {
    /// The summary of no values.
    pub const EMPTY: Summary = Summary {
        count: 0,
        nan: 0,
        sum: 0.0,
        min: None,
        max: None,
        mean: None,
        std: None,
    };
}

/// Totals over the blocks seen so far: the part of a summary over a run of
/// values.
#[derive(Clone)]
pub struct Acc {
    count: u64,
    nan: u64,
    /// Compensated sum of the float blocks' sums: running sum, correction,
    /// and the plain sum, which wins once an infinity makes the correction NaN.
    sum: f64,
    comp: f64,
    plain: f64,
    /// The exact sum of an integer kind.
    exact: i128,
    mean: f64,
    m2: f64,
    lo: Extreme,
    hi: Extreme,
}

/// The least or greatest value counted so far, in the kind's own domain.
#[derive(Clone, Copy)]
pub enum Extreme {
    None,
    Float(f64),
    Int(i128),
}

impl Default for Acc {
    fn default() -> Acc {
        Acc::new()
    }
}

impl Acc {
    pub fn new() -> Acc {
        Acc {
            count: 0,
            nan: 0,
            sum: 0.0,
            comp: 0.0,
            plain: 0.0,
            exact: 0,
            mean: 0.0,
            m2: 0.0,
            lo: Extreme::None,
            hi: Extreme::None,
        }
    }

    /// Merges a block of `n` counted values with mean `mean` and sum of
    /// squared deviations `m2` (Chan, Golub and LeVeque).
    fn merge(&mut self, n: u64, mean: f64, m2: f64) {
        if n == 0 {
            return;
        }
        let (na, nb) = (self.count as f64, n as f64);
        let total = na + nb;
        let delta = mean - self.mean;
        self.mean += delta * (nb / total);
        self.m2 += m2 + delta * delta * (na * nb / total);
        self.count += n;
    }

    /// Neumaier's compensated addition of a block's sum.
    fn add_float(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.comp += (self.sum - t) + x;
        } else {
            self.comp += (x - t) + self.sum;
        }
        self.sum = t;
        self.plain += x;
    }

    /// Merges the part of the values that follow this part's.
    pub fn absorb(&mut self, p: &Acc) {
        self.nan += p.nan;
        let plain = self.plain + p.plain;
        self.add_float(p.sum);
        self.comp += p.comp;
        self.plain = plain;
        self.exact += p.exact;
        match (p.lo, p.hi) {
            (Extreme::Float(lo), Extreme::Float(hi)) => self.float_range(lo, hi),
            (Extreme::Int(lo), Extreme::Int(hi)) => self.int_range(lo, hi),
            _ => {}
        }
        self.merge(p.count, p.mean, p.m2);
    }

    fn float_range(&mut self, lo: f64, hi: f64) {
        self.lo = Extreme::Float(match self.lo {
            Extreme::Float(x) if x <= lo => x,
            _ => lo,
        });
        self.hi = Extreme::Float(match self.hi {
            Extreme::Float(x) if x >= hi => x,
            _ => hi,
        });
    }

    fn int_range(&mut self, lo: i128, hi: i128) {
        self.lo = Extreme::Int(match self.lo {
            Extreme::Int(x) => x.min(lo),
            _ => lo,
        });
        self.hi = Extreme::Int(match self.hi {
            Extreme::Int(x) => x.max(hi),
            _ => hi,
        });
    }

    fn finish<T: Summed>(self) -> Summary {
        let sum = if T::INTEGER {
            self.exact as f64
        } else if (self.sum + self.comp).is_finite() {
            self.sum + self.comp
        } else {
            self.plain
        };
        let counted = self.count > 0;
        let n = self.count as f64;
        Summary {
            count: self.count,
            nan: self.nan,
            sum,
            min: T::extreme(self.lo),
            max: T::extreme(self.hi),
            mean: counted.then(|| sum / n),
            std: counted.then(|| (self.m2 / n).sqrt()),
        }
    }
}

/// An element kind `MMAP.STATS` can summarise: every kind.
pub trait Summed: Number {
    const INTEGER: bool;

    /// Adds a block of at most `BLOCK` values to the totals.
    fn fold(block: &[Self], acc: &mut Acc);

    fn extreme(x: Extreme) -> Option<Value>;
}

/// Summarises `n` values, handed out a block at a time by `fill`, which
/// copies the `block.len()` values from offset `at` into `block`.
pub fn summarize<T: Summed>(n: usize, mut fill: impl FnMut(usize, &mut [T])) -> Summary {
    let mut acc = Acc::new();
    for at in (0..n).step_by(SEGMENT) {
        acc.absorb(&part::<T>(SEGMENT.min(n - at), |o, block| fill(at + o, block)));
    }
    acc.finish::<T>()
}

/// The part of a summary over at most one segment of values, handed out
/// as by `summarize`. Parts of whole segments, absorbed in order, give
/// what `summarize` gives.
pub fn part<T: Summed>(n: usize, mut fill: impl FnMut(usize, &mut [T])) -> Acc {
    debug_assert!(n <= SEGMENT);
    let zero = T::decode(&[0u8; 8][..T::SIZE]);
    let mut buf = [zero; BLOCK];
    let mut acc = Acc::new();
    let mut at = 0;
    while at < n {
        let block = &mut buf[..BLOCK.min(n - at)];
        fill(at, block);
        T::fold(block, &mut acc);
        at += block.len();
    }
    acc
}

/// `part` of values read in place: the same blocks, so the same part.
pub fn part_of<T: Summed>(values: &[T]) -> Acc {
    debug_assert!(values.len() <= SEGMENT);
    let mut acc = Acc::new();
    for block in values.chunks(BLOCK) {
        T::fold(block, &mut acc);
    }
    acc
}

/// The summary of the parts of consecutive segments, in order.
pub fn finish<T: Summed>(parts: &[Acc]) -> Summary {
    let mut acc = Acc::new();
    for p in parts {
        acc.absorb(p);
    }
    acc.finish::<T>()
}

/// Sums eight lane totals as numpy does, in a fixed tree.
fn lanes_sum(s: &[f64; LANES]) -> f64 {
    ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
}

/// Sums by halves.
fn pairwise(xs: &[f64]) -> f64 {
    match xs.len() {
        0 => 0.0,
        1 => xs[0],
        n => pairwise(&xs[..n / 2]) + pairwise(&xs[n / 2..]),
    }
}

/// Folds a block of doubles, NaNs among them: with AVX2 where the CPU has
/// it. The same operations in the same order either way (Rust fuses no
/// multiply with an add), so the result is the same to the bit.
fn fold_doubles(w: &[f64], acc: &mut Acc) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked above.
        return unsafe { fold_doubles_avx2(w, acc) };
    }
    fold_doubles_here(w, acc)
}

/// `fold_doubles_here` in AVX2 instructions, eight lanes as two vectors
/// of four, each lane's operations those of the portable code: the sum of
/// the real values (a NaN adds +0.0), a count, `x < lo ? x : lo` (which
/// `vminpd` is), `x > hi ? x : hi` (`vmaxpd`), then `(x - mean)^2` summed.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn fold_doubles_avx2(w: &[f64], acc: &mut Acc) {
    use std::arch::x86_64::*;
    if !w.len().is_multiple_of(LEAF) {
        // A short last block: the portable code, no faster need.
        return fold_doubles_here(w, acc);
    }
    let mut leaves = [0.0; BLOCK / LEAF];
    let (mut c0, mut c1) = (_mm256_setzero_si256(), _mm256_setzero_si256());
    let (mut lo0, mut lo1) = (_mm256_set1_pd(f64::INFINITY), _mm256_set1_pd(f64::INFINITY));
    let (mut hi0, mut hi1) = (_mm256_set1_pd(f64::NEG_INFINITY), _mm256_set1_pd(f64::NEG_INFINITY));
    let p = w.as_ptr();
    for (k, out) in leaves.iter_mut().enumerate().take(w.len() / LEAF) {
        let (mut s0, mut s1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        for i in (k * LEAF..(k + 1) * LEAF).step_by(LANES) {
            // SAFETY: i + 8 <= w.len(): whole leaves only, checked above.
            let (x0, x1) = (_mm256_loadu_pd(p.add(i)), _mm256_loadu_pd(p.add(i + 4)));
            let (r0, r1) = (_mm256_cmp_pd::<_CMP_ORD_Q>(x0, x0), _mm256_cmp_pd::<_CMP_ORD_Q>(x1, x1));
            s0 = _mm256_add_pd(s0, _mm256_and_pd(r0, x0));
            s1 = _mm256_add_pd(s1, _mm256_and_pd(r1, x1));
            c0 = _mm256_sub_epi64(c0, _mm256_castpd_si256(r0));
            c1 = _mm256_sub_epi64(c1, _mm256_castpd_si256(r1));
            lo0 = _mm256_min_pd(x0, lo0);
            lo1 = _mm256_min_pd(x1, lo1);
            hi0 = _mm256_max_pd(x0, hi0);
            hi1 = _mm256_max_pd(x1, hi1);
        }
        *out = lanes_sum(&lanes_of(s0, s1));
    }
    let mut count = [0u64; LANES];
    _mm256_storeu_si256(count.as_mut_ptr().cast(), c0);
    _mm256_storeu_si256(count.as_mut_ptr().add(4).cast(), c1);
    let n = count.iter().sum::<u64>();
    acc.nan += w.len() as u64 - n;
    if n == 0 {
        return;
    }
    // `+ 0.0` as the portable code adds its empty remainder: -0.0 becomes +0.0.
    let sum = pairwise(&leaves[..w.len() / LEAF]) + 0.0;
    let mean = sum / n as f64;
    let m = _mm256_set1_pd(mean);
    let (mut q0, mut q1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    for i in (0..w.len()).step_by(LANES) {
        // SAFETY: as above.
        let (x0, x1) = (_mm256_loadu_pd(p.add(i)), _mm256_loadu_pd(p.add(i + 4)));
        let d0 = _mm256_and_pd(_mm256_cmp_pd::<_CMP_ORD_Q>(x0, x0), _mm256_sub_pd(x0, m));
        let d1 = _mm256_and_pd(_mm256_cmp_pd::<_CMP_ORD_Q>(x1, x1), _mm256_sub_pd(x1, m));
        q0 = _mm256_add_pd(q0, _mm256_mul_pd(d0, d0));
        q1 = _mm256_add_pd(q1, _mm256_mul_pd(d1, d1));
    }
    let m2 = lanes_sum(&lanes_of(q0, q1));
    acc.add_float(sum);
    let (lo, hi) = (lanes_of(lo0, lo1), lanes_of(hi0, hi1));
    acc.float_range(
        lo.iter().copied().fold(f64::INFINITY, f64::min),
        hi.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    acc.merge(n, mean, m2);
}

/// Eight lanes held in two vectors, in order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn lanes_of(a: std::arch::x86_64::__m256d, b: std::arch::x86_64::__m256d) -> [f64; LANES] {
    use std::arch::x86_64::*;
    let mut out = [0.0; LANES];
    _mm256_storeu_pd(out.as_mut_ptr(), a);
    _mm256_storeu_pd(out.as_mut_ptr().add(4), b);
    out
}

#[inline(always)]
fn fold_doubles_here(w: &[f64], acc: &mut Acc) {
    let mut leaves = [0.0; BLOCK / LEAF];
    let mut count = [0u64; LANES];
    let mut lo = [f64::INFINITY; LANES];
    let mut hi = [f64::NEG_INFINITY; LANES];
    let mut tail = 0.0;
    let mut tail_count = 0;
    for (leaf, out) in w.chunks(LEAF).zip(leaves.iter_mut()) {
        let mut s = [0.0; LANES];
        let lanes = leaf.chunks_exact(LANES);
        for x in lanes.remainder() {
            if !x.is_nan() {
                tail += x;
                tail_count += 1;
                lo[0] = lo[0].min(*x);
                hi[0] = hi[0].max(*x);
            }
        }
        for c in lanes {
            for l in 0..LANES {
                let x = c[l];
                let real = !x.is_nan();
                s[l] += if real { x } else { 0.0 };
                count[l] += real as u64;
                lo[l] = if x < lo[l] { x } else { lo[l] };
                hi[l] = if x > hi[l] { x } else { hi[l] };
            }
        }
        *out = lanes_sum(&s);
    }
    let n = count.iter().sum::<u64>() + tail_count;
    acc.nan += w.len() as u64 - n;
    if n == 0 {
        return;
    }
    let sum = pairwise(&leaves[..w.len().div_ceil(LEAF)]) + tail;
    let mean = sum / n as f64;
    let mut q = [0.0; LANES];
    let lanes = w.chunks_exact(LANES);
    let mut m2 = lanes
        .remainder()
        .iter()
        .filter(|x| !x.is_nan())
        .map(|x| (x - mean) * (x - mean))
        .sum::<f64>();
    for c in lanes {
        for l in 0..LANES {
            let x = c[l];
            let d = if x.is_nan() { 0.0 } else { x - mean };
            q[l] += d * d;
        }
    }
    m2 += lanes_sum(&q);
    acc.add_float(sum);
    acc.float_range(
        lo.iter().copied().fold(f64::INFINITY, f64::min),
        hi.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    // An infinity makes the block's mean and spread NaN, as numpy's std.
    acc.merge(n, mean, m2);
}

/// A float16's value as a float32, exactly, without branches: a NaN's
/// payload is not kept (NaNs are only counted here).
fn half_to_single(h: u16) -> f32 {
    let h = h as u32;
    let sign = (h & 0x8000) << 16;
    let magnitude = h & 0x7fff;
    let normal = (magnitude << 13) + (112 << 23);
    let special = (magnitude << 13) | 0x7f80_0000;
    // Below 2^-14 the value is the fraction times 2^-24, exact in f32.
    let small = (magnitude as f32 * (1.0 / 16_777_216.0)).to_bits();
    let bits = if magnitude >= 0x7c00 {
        special
    } else if magnitude < 0x0400 {
        small
    } else {
        normal
    };
    f32::from_bits(bits | sign)
}

macro_rules! float_summed {
    ($t:ty, $widen:expr, $back:expr) => {
        impl Summed for $t {
            const INTEGER: bool = false;

            fn fold(block: &[$t], acc: &mut Acc) {
                let widen: fn($t) -> f64 = $widen;
                let mut w = [0.0f64; BLOCK];
                for (o, &x) in w.iter_mut().zip(block) {
                    *o = widen(x);
                }
                fold_doubles(&w[..block.len()], acc);
            }

            fn extreme(x: Extreme) -> Option<Value> {
                let back: fn(f64) -> $t = $back;
                match x {
                    Extreme::Float(v) => Some(back(v).value()),
                    _ => None,
                }
            }
        }
    };
}

impl Summed for f64 {
    const INTEGER: bool = false;

    fn fold(block: &[f64], acc: &mut Acc) {
        fold_doubles(block, acc);
    }

    fn extreme(x: Extreme) -> Option<Value> {
        match x {
            Extreme::Float(v) => Some(v.value()),
            _ => None,
        }
    }
}
float_summed!(f32, |x| x as f64, |x| x as f32);
float_summed!(F16, |x| half_to_single(x.0) as f64, |x| F16(narrow(x, HALF)));
float_summed!(Bf16, |x| f32::from_bits((x.0 as u32) << 16) as f64, |x| Bf16(narrow(
    x, BRAIN
)));

/// Folds a block of integers: the sum exactly (in 64-bit lanes for kinds
/// of up to 32 bits, whose block sums cannot overflow them), the spread in
/// doubles around the block's exact mean.
fn fold_integers<T: Number + Ord + Into<i128>>(block: &[T], wide: fn(T) -> f64, acc: &mut Acc) {
    if block.is_empty() {
        return;
    }
    let exact: i128 = if T::SIZE <= 4 {
        let mut s = [0i64; LANES];
        let lanes = block.chunks_exact(LANES);
        let tail: i64 = lanes.remainder().iter().map(|&x| Into::<i128>::into(x) as i64).sum();
        for c in lanes {
            for l in 0..LANES {
                s[l] += Into::<i128>::into(c[l]) as i64;
            }
        }
        (s.iter().sum::<i64>() + tail) as i128
    } else {
        block.iter().map(|&x| x.into()).sum()
    };
    let (lo, hi) = block
        .iter()
        .fold((block[0], block[0]), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let n = block.len();
    let mean = exact as f64 / n as f64;
    let m2: f64 = block.iter().map(|&x| (wide(x) - mean) * (wide(x) - mean)).sum();
    acc.exact += exact;
    acc.int_range(lo.into(), hi.into());
    acc.merge(n as u64, mean, m2);
}

macro_rules! integer_summed {
    ($($t:ty),*) => {$(
        impl Summed for $t {
            const INTEGER: bool = true;

            fn fold(block: &[$t], acc: &mut Acc) {
                fold_integers(block, |x| x as f64, acc);
            }

            fn extreme(x: Extreme) -> Option<Value> {
                match x {
                    // The value came from this kind, so it fits.
                    Extreme::Int(v) => <$t>::try_from(v).ok().map(Number::value),
                    _ => None,
                }
            }
        }
    )*};
}

integer_summed!(i8, u8, i16, u16, i32, u32, i64, u64);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::kind::widen;

    fn of<T: Summed>(values: &[T]) -> Summary {
        summarize::<T>(values.len(), |at, out| out.copy_from_slice(&values[at..at + out.len()]))
    }

    /// Exact sum of doubles, by integer arithmetic on their bits scaled to 2^-1074.
    fn exact_sum(values: &[f64]) -> f64 {
        let mut parts: Vec<f64> = Vec::new();
        // Shewchuk's algorithm (as Python's math.fsum).
        for &x in values {
            let mut x = x;
            let mut i = 0;
            for j in 0..parts.len() {
                let mut y = parts[j];
                if x.abs() < y.abs() {
                    std::mem::swap(&mut x, &mut y);
                }
                let hi = x + y;
                let lo = y - (hi - x);
                if lo != 0.0 {
                    parts[i] = lo;
                    i += 1;
                }
                x = hi;
            }
            parts.truncate(i);
            parts.push(x);
        }
        parts.iter().sum()
    }

    fn rng(seed: &mut u64) -> f64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn doubles_match_a_two_pass_reference_and_an_exact_sum() {
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        // Every length around the lanes, leaves and blocks.
        for n in [0, 1, 7, 8, 9, 127, 128, 129, 1023, 1024, 1025, 5000, 100_003] {
            let values: Vec<f64> = (0..n).map(|_| rng(&mut seed) * 2e6 - 5e5).collect();
            let s = of(&values);
            assert_eq!((s.count, s.nan), (n as u64, 0));
            let exact = exact_sum(&values);
            assert!(
                (s.sum - exact).abs() <= 1e-15 * exact.abs().max(1.0),
                "{n}: {} vs {exact}",
                s.sum
            );
            if n == 0 {
                assert_eq!((s.min, s.max, s.mean, s.std), (None, None, None, None));
                continue;
            }
            let mean = exact / n as f64;
            let var = values.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
            assert!((s.std.unwrap() - var.sqrt()).abs() <= 1e-12 * var.sqrt(), "{n}");
            assert!((s.mean.unwrap() - mean).abs() <= 1e-15 * mean.abs());
            let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!((s.min, s.max), (Some(Value::F64(lo)), Some(Value::F64(hi))));
        }
    }

    #[test]
    fn nans_are_counted_and_skipped() {
        let mut values = vec![f64::NAN; 3000];
        for (i, v) in values.iter_mut().enumerate().filter(|(i, _)| i % 3 == 0) {
            *v = i as f64;
        }
        values[1] = f64::from_bits(0xfff0_0000_0000_0001);
        let s = of(&values);
        assert_eq!((s.count, s.nan), (1000, 2000));
        let kept: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        assert_eq!(s.sum, kept.iter().sum::<f64>());
        assert_eq!((s.min, s.max), (Some(Value::F64(0.0)), Some(Value::F64(2997.0))));
        assert_eq!(s.mean, Some(1498.5));
        let all_nan = of(&[f64::NAN; 5]);
        assert_eq!(
            (all_nan.count, all_nan.nan, all_nan.sum, all_nan.min, all_nan.std),
            (0, 5, 0.0, None, None)
        );
    }

    #[test]
    fn infinities_give_what_numpy_gives() {
        let s = of(&[1.0, f64::INFINITY, 2.0]);
        assert_eq!(
            (s.sum, s.max, s.min),
            (f64::INFINITY, Some(Value::F64(f64::INFINITY)), Some(Value::F64(1.0)))
        );
        assert!(s.std.unwrap().is_nan());
        assert!(of(&[f64::INFINITY, f64::NEG_INFINITY]).sum.is_nan());
    }

    #[test]
    fn cancellation_does_not_lose_the_small_terms() {
        // Across blocks the sum is compensated: left to right, each 1.0
        // added to 1e16 is lost.
        let mut values = vec![0.0; 3 * BLOCK];
        values[0] = 1e16;
        values[BLOCK..2 * BLOCK - 1].fill(1.0);
        values[2 * BLOCK] = -1e16;
        assert_eq!(values.iter().sum::<f64>(), 0.0);
        assert_eq!(of(&values).sum, 1023.0);
        let spread = of(&[1e9 + 1.0, 1e9 + 2.0, 1e9 + 3.0]);
        assert!((spread.std.unwrap() - (2.0f64 / 3.0).sqrt()).abs() < 1e-9);
    }

    #[test]
    fn integers_sum_exactly_and_keep_their_kind() {
        let values: Vec<i64> = vec![i64::MAX, i64::MAX, i64::MIN, 5];
        let s = of(&values);
        assert_eq!(s.sum, (i64::MAX as i128 * 2 + i64::MIN as i128 + 5) as f64);
        assert_eq!((s.min, s.max), (Some(Value::Int(i64::MIN)), Some(Value::Int(i64::MAX))));
        let big = of(&[u64::MAX, 1]);
        assert_eq!(big.max, Some(Value::Big(u64::MAX)));
        assert_eq!(big.sum, 18446744073709551616.0);
        let bytes: Vec<u8> = (0..3000).map(|i| (i % 256) as u8).collect();
        let s = of(&bytes);
        assert_eq!(s.sum, bytes.iter().map(|&b| b as f64).sum::<f64>());
        assert_eq!((s.min, s.max, s.nan), (Some(Value::Int(0)), Some(Value::Int(255)), 0));
        let mean = s.sum / 3000.0;
        let var = bytes.iter().map(|&b| (b as f64 - mean).powi(2)).sum::<f64>() / 3000.0;
        assert!((s.std.unwrap() - var.sqrt()).abs() < 1e-12);
        let small: Vec<i8> = vec![-128, 127, -1];
        assert_eq!(of(&small).sum, -2.0);
    }

    #[test]
    fn half_widening_is_exact_for_every_pattern() {
        for b in 0..=u16::MAX {
            let want = widen(b, HALF);
            let got = half_to_single(b) as f64;
            if want.is_nan() {
                assert!(got.is_nan(), "{b:#x}");
            } else {
                assert_eq!(got.to_bits(), want.to_bits(), "{b:#x}");
            }
        }
    }

    #[test]
    fn sixteen_bit_floats_keep_their_kind() {
        let halves: Vec<F16> = [0x3c00u16, 0xc000, 0x7e00, 0x0001].map(F16).to_vec(); // 1, -2, NaN, 2^-24
        let s = of(&halves);
        assert_eq!((s.count, s.nan), (3, 1));
        assert_eq!((s.min, s.max), (Some(Value::F16(0xc000)), Some(Value::F16(0x3c00))));
        assert_eq!(s.sum, -1.0 + 2f64.powi(-24));
        let brains: Vec<Bf16> = [0x3f80u16, 0x4000].map(Bf16).to_vec(); // 1, 2
        let s = of(&brains);
        assert_eq!((s.sum, s.max), (3.0, Some(Value::Bf16(0x4000))));
        assert_eq!(of(&[0.5f32, 0.25]).min, Some(Value::F32(0.25)));
    }
}

#[cfg(test)]
mod parts {
    use super::*;

    fn fields(a: &Acc) -> (u64, u64, u64, u64, u64, u64, u64) {
        let e = |x: Extreme| match x {
            Extreme::Float(v) => v.to_bits(),
            _ => 1,
        };
        (
            a.count,
            a.nan,
            a.sum.to_bits(),
            a.comp.to_bits(),
            a.m2.to_bits(),
            e(a.lo),
            e(a.hi),
        )
    }

    fn values(n: usize, seed: u64) -> Vec<f64> {
        let mut x = seed;
        (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                match i % 97 {
                    3 => f64::NAN,
                    5 => -0.0,
                    7 if seed.is_multiple_of(3) => f64::INFINITY,
                    _ => (x >> 11) as f64 / (1u64 << 40) as f64 - 2048.0,
                }
            })
            .collect()
    }

    #[test]
    fn the_vector_code_gives_the_portable_code_s_bits() {
        for seed in 1..40 {
            let v = values(BLOCK, seed);
            let (mut a, mut b) = (Acc::new(), Acc::new());
            fold_doubles_here(&v, &mut a);
            fold_doubles(&v, &mut b);
            assert_eq!(fields(&a), fields(&b), "seed {seed}");
        }
    }

    #[test]
    fn parts_of_segments_in_any_split_give_the_one_pass_summary() {
        let v = values(3 * SEGMENT + 1234, 11);
        let whole = summarize::<f64>(v.len(), |at, out| out.copy_from_slice(&v[at..at + out.len()]));
        let parts: Vec<Acc> = v.chunks(SEGMENT).map(part_of::<f64>).collect();
        let split = finish::<f64>(&parts);
        assert_eq!(format!("{whole:?}"), format!("{split:?}"));
        assert_eq!(whole.count + whole.nan, v.len() as u64);
    }
}
