//! DynamoDB's number type: an exact decimal of up to 38 significant digits with
//! a magnitude between 1E-130 and 9.99…E+125 (or zero).
//!
//! Held as sign, coefficient and exponent (`value = ±coef × 10^exp`), normalised so
//! the coefficient has no trailing zeros: equal numbers have equal fields, so the
//! derived `Eq`/`Hash` are numeric. 38 digits fit a `u128`, so comparison and
//! formatting allocate nothing and arithmetic needs no big integers.

use std::cmp::Ordering;
use std::fmt;

pub(crate) const MSG_NOT_NUMERIC: &str = "The parameter cannot be converted to a numeric value";
pub(crate) const MSG_TOO_MANY_DIGITS: &str =
    "Attempting to store more than 38 significant digits in a Number";
pub(crate) const MSG_OVERFLOW: &str =
    "Number overflow. Attempting to store a number with magnitude larger than supported range";
pub(crate) const MSG_UNDERFLOW: &str =
    "Number underflow. Attempting to store a number with magnitude smaller than supported range";

const MAX_DIGITS: i64 = 38;
/// Largest and smallest decimal exponent of the leading digit.
const MAX_SCI_EXP: i64 = 125;
const MIN_SCI_EXP: i64 = -130;

const POW10: [u128; 39] = {
    let mut t = [1u128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// An exact DynamoDB number.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Number {
    neg: bool,
    coef: u128,
    exp: i32,
}

/// Decimal digits of `c` (1 for zero).
fn ndigits(c: u128) -> i64 {
    if c == 0 {
        1
    } else {
        i64::from(c.ilog10()) + 1
    }
}

impl Number {
    /// Zero.
    pub const ZERO: Number = Number {
        neg: false,
        coef: 0,
        exp: 0,
    };

    /// Parses a number as DynamoDB accepts it (`-1.5e3`, `+.5`, `0012.30`); no
    /// surrounding spaces, no `NaN`/`Infinity`. Errors are AWS's messages.
    pub fn parse(s: &str) -> Result<Number, String> {
        if s.is_empty() {
            return Err(MSG_NOT_NUMERIC.to_string());
        }
        let bad = || format!("{MSG_NOT_NUMERIC}: {s}");
        let b = s.as_bytes();
        let mut i = 0;
        let mut neg = false;
        if b[0] == b'-' || b[0] == b'+' {
            neg = b[0] == b'-';
            i = 1;
        }
        // Mantissa digits are indexed 0.. in order; a digit's power of ten is
        // int_len - 1 - index.
        let mut idx: i64 = 0;
        let mut int_len: Option<i64> = None;
        let mut first_nz: Option<i64> = None;
        let mut last_nz: i64 = 0;
        let mut coef: u128 = 0;
        let mut any_digit = false;
        while i < b.len() {
            match b[i] {
                c @ b'0'..=b'9' => {
                    any_digit = true;
                    let d = u128::from(c - b'0');
                    if d != 0 {
                        match first_nz {
                            None => {
                                first_nz = Some(idx);
                                coef = d;
                            }
                            Some(first) => {
                                if idx - first < MAX_DIGITS {
                                    // Fits: at most 38 digits so far.
                                    coef = coef * POW10[(idx - last_nz) as usize] + d;
                                }
                            }
                        }
                        last_nz = idx;
                    }
                    idx += 1;
                }
                b'.' if int_len.is_none() => int_len = Some(idx),
                b'e' | b'E' => break,
                _ => return Err(bad()),
            }
            i += 1;
        }
        if !any_digit {
            return Err(bad());
        }
        let int_len = int_len.unwrap_or(idx);
        let mut e10: i64 = 0;
        if i < b.len() {
            i += 1; // the 'e'
            let mut eneg = false;
            if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                eneg = b[i] == b'-';
                i += 1;
            }
            if i >= b.len() {
                return Err(bad());
            }
            while i < b.len() {
                match b[i] {
                    c @ b'0'..=b'9' => {
                        e10 = (e10 * 10 + i64::from(c - b'0')).min(1_000_000_000_000)
                    }
                    _ => return Err(bad()),
                }
                i += 1;
            }
            if eneg {
                e10 = -e10;
            }
        }
        let Some(first) = first_nz else {
            return Ok(Number::ZERO);
        };
        let sci = int_len - 1 - first + e10;
        if sci > MAX_SCI_EXP {
            return Err(MSG_OVERFLOW.to_string());
        }
        if sci < MIN_SCI_EXP {
            return Err(MSG_UNDERFLOW.to_string());
        }
        if last_nz - first + 1 > MAX_DIGITS {
            return Err(MSG_TOO_MANY_DIGITS.to_string());
        }
        let exp = int_len - 1 - last_nz + e10;
        Ok(Number {
            neg,
            coef,
            exp: exp as i32,
        })
    }

    /// A whole number (sizes, counts).
    pub fn from_u64(n: u64) -> Number {
        Number::from_parts(false, u128::from(n), 0).unwrap_or(Number::ZERO)
    }

    /// Normalises and range-checks an arithmetic result.
    fn from_parts(neg: bool, mut coef: u128, mut exp: i64) -> Result<Number, String> {
        if coef == 0 {
            return Ok(Number::ZERO);
        }
        while coef.is_multiple_of(10) {
            coef /= 10;
            exp += 1;
        }
        let nd = ndigits(coef);
        // DynamoDB reports a result needing more than 38 digits as an overflow.
        if nd > MAX_DIGITS || exp + nd - 1 > MAX_SCI_EXP {
            return Err(MSG_OVERFLOW.to_string());
        }
        if exp + nd - 1 < MIN_SCI_EXP {
            return Err(MSG_UNDERFLOW.to_string());
        }
        Ok(Number {
            neg,
            coef,
            exp: exp as i32,
        })
    }

    pub fn is_zero(&self) -> bool {
        self.coef == 0
    }

    pub fn is_negative(&self) -> bool {
        self.neg
    }

    /// -1, 0 or 1.
    pub fn signum(&self) -> i32 {
        if self.coef == 0 {
            0
        } else if self.neg {
            -1
        } else {
            1
        }
    }

    pub fn neg(&self) -> Number {
        if self.coef == 0 {
            *self
        } else {
            Number {
                neg: !self.neg,
                ..*self
            }
        }
    }

    /// Exact sum; a result beyond 38 digits or the range is AWS's overflow/underflow error.
    pub fn add(&self, o: &Number) -> Result<Number, String> {
        if self.coef == 0 {
            return Ok(*o);
        }
        if o.coef == 0 {
            return Ok(*self);
        }
        let lo = self.exp.min(o.exp);
        let scale = |n: &Number| -> Option<u128> {
            let k = (n.exp - lo) as usize;
            if k > 38 {
                None
            } else {
                n.coef.checked_mul(POW10[k])
            }
        };
        // When a shifted coefficient overflows 128 bits, the operands span more
        // than 38 digits and the lowest one survives in the sum: too precise.
        let overflow = || MSG_OVERFLOW.to_string();
        let a = scale(self).ok_or_else(overflow)?;
        let b = scale(o).ok_or_else(overflow)?;
        let (neg, mag) = if self.neg == o.neg {
            (self.neg, a.checked_add(b).ok_or_else(overflow)?)
        } else if a >= b {
            (self.neg, a - b)
        } else {
            (o.neg, b - a)
        };
        Number::from_parts(neg, mag, i64::from(lo))
    }

    /// Exact difference.
    pub fn sub(&self, o: &Number) -> Result<Number, String> {
        self.add(&o.neg())
    }

    /// Bytes DynamoDB counts for the number: one, plus one per pair of digits
    /// (pairs aligned on the decimal point), plus one if negative.
    pub fn size(&self) -> usize {
        if self.coef == 0 {
            return 1;
        }
        let lo = i64::from(self.exp);
        let hi = lo + ndigits(self.coef) - 1;
        let pairs = hi.div_euclid(2) - lo.div_euclid(2) + 1;
        1 + pairs as usize + usize::from(self.neg)
    }

    /// Decimal exponent of the leading digit (0 for zero).
    pub(crate) fn sci_exp(&self) -> i64 {
        if self.coef == 0 {
            0
        } else {
            i64::from(self.exp) + ndigits(self.coef) - 1
        }
    }

    /// The significant digits, most significant first (`[0]` for zero).
    pub(crate) fn digits(&self) -> ([u8; 39], usize) {
        let mut buf = [0u8; 39];
        let n = ndigits(self.coef) as usize;
        let mut c = self.coef;
        for slot in buf[..n].iter_mut().rev() {
            *slot = (c % 10) as u8;
            c /= 10;
        }
        (buf, n)
    }

    /// The value as an `f64` (approximate).
    pub fn to_f64(&self) -> f64 {
        let v: f64 = self.to_string().parse().unwrap_or(0.0);
        v
    }

    /// The value as an `i64` when it is a whole number in range.
    pub fn to_i64(&self) -> Option<i64> {
        if self.coef == 0 {
            return Some(0);
        }
        if self.exp < 0 || self.exp > 38 {
            return None;
        }
        let v = self.coef.checked_mul(POW10[self.exp as usize])?;
        let v = i128::try_from(v).ok()?;
        i64::try_from(if self.neg { -v } else { v }).ok()
    }

    fn cmp_magnitude(&self, o: &Number) -> Ordering {
        let (na, nb) = (ndigits(self.coef), ndigits(o.coef));
        let ea = i64::from(self.exp) + na;
        let eb = i64::from(o.exp) + nb;
        if ea != eb {
            return ea.cmp(&eb);
        }
        let n = na.max(nb);
        let scale = |c: u128, k: i64| c.saturating_mul(POW10[(k as usize).min(38)]);
        scale(self.coef, n - na).cmp(&scale(o.coef, n - nb))
    }
}

impl Ord for Number {
    fn cmp(&self, o: &Number) -> Ordering {
        let (sa, sb) = (self.signum(), o.signum());
        if sa != sb {
            return sa.cmp(&sb);
        }
        match sa {
            0 => Ordering::Equal,
            1 => self.cmp_magnitude(o),
            _ => o.cmp_magnitude(self),
        }
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, o: &Number) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl std::str::FromStr for Number {
    type Err = String;
    fn from_str(s: &str) -> Result<Number, String> {
        Number::parse(s)
    }
}

/// Canonical form as DynamoDB returns it: no exponent, no trailing zeros.
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.coef == 0 {
            return f.write_str("0");
        }
        let (digits, n) = self.digits();
        let mut out = String::with_capacity(n + 8);
        if self.neg {
            out.push('-');
        }
        let ch = |d: u8| char::from(b'0' + d);
        if self.exp >= 0 {
            out.extend(digits[..n].iter().map(|&d| ch(d)));
            out.extend(std::iter::repeat_n('0', self.exp as usize));
        } else {
            let point = n as i64 + i64::from(self.exp);
            if point > 0 {
                let p = point as usize;
                out.extend(digits[..p].iter().map(|&d| ch(d)));
                out.push('.');
                out.extend(digits[p..n].iter().map(|&d| ch(d)));
            } else {
                out.push_str("0.");
                out.extend(std::iter::repeat_n('0', (-point) as usize));
                out.extend(digits[..n].iter().map(|&d| ch(d)));
            }
        }
        f.pad(&out)
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Number({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Number {
        Number::parse(s).unwrap()
    }

    #[test]
    fn canonical_forms() {
        let cases = [
            ("0012.3400", "12.34"),
            ("1.0", "1"),
            ("1.50", "1.5"),
            ("1e2", "100"),
            ("1E+2", "100"),
            ("1.5e-3", "0.0015"),
            ("-00.010", "-0.01"),
            ("-0", "0"),
            ("0.000", "0"),
            ("+3", "3"),
            (".123", "0.123"),
            ("5.", "5"),
            ("0e1000", "0"),
            ("-17e5", "-1700000"),
            ("-17.4E37", "-174000000000000000000000000000000000000"),
            ("1e-130", &format!("0.{}1", "0".repeat(129))),
            (
                "123456789012345678901234567890.12345678",
                "123456789012345678901234567890.12345678",
            ),
            ("100", "100"),
            ("0.1", "0.1"),
            ("10.010", "10.01"),
        ];
        for (input, want) in cases {
            assert_eq!(n(input).to_string(), want, "{input}");
        }
        assert_eq!(
            n("9.9999999999999999999999999999999999999E+125")
                .to_string()
                .len(),
            126
        );
    }

    #[test]
    fn parse_errors() {
        let cases = [
            ("", MSG_NOT_NUMERIC.to_string()),
            ("abc", format!("{MSG_NOT_NUMERIC}: abc")),
            (" 1", format!("{MSG_NOT_NUMERIC}:  1")),
            ("1 ", format!("{MSG_NOT_NUMERIC}: 1 ")),
            ("NaN", format!("{MSG_NOT_NUMERIC}: NaN")),
            ("Infinity", format!("{MSG_NOT_NUMERIC}: Infinity")),
            ("1e", format!("{MSG_NOT_NUMERIC}: 1e")),
            ("1.2.3", format!("{MSG_NOT_NUMERIC}: 1.2.3")),
            ("-", format!("{MSG_NOT_NUMERIC}: -")),
            (".", format!("{MSG_NOT_NUMERIC}: .")),
            ("1e5.5", format!("{MSG_NOT_NUMERIC}: 1e5.5")),
            ("0x10", format!("{MSG_NOT_NUMERIC}: 0x10")),
            (
                "123456789012345678901234567890123456789",
                MSG_TOO_MANY_DIGITS.to_string(),
            ),
            (
                "3.14159265358979323846264338327950288419",
                MSG_TOO_MANY_DIGITS.to_string(),
            ),
            ("1E+126", MSG_OVERFLOW.to_string()),
            ("-1E+126", MSG_OVERFLOW.to_string()),
            ("11e125", MSG_OVERFLOW.to_string()),
            ("1e999999999999999999999", MSG_OVERFLOW.to_string()),
            ("1E-131", MSG_UNDERFLOW.to_string()),
            ("0.9e-130", MSG_UNDERFLOW.to_string()),
        ];
        for (input, want) in cases {
            assert_eq!(Number::parse(input).unwrap_err(), want, "{input:?}");
        }
        // Leading and trailing zeros are not significant.
        assert!(Number::parse("000000000012345678901234567890123456789012345678000000").is_ok());
        assert!(Number::parse("31415926535897932384626433832795028841e30").is_ok());
    }

    #[test]
    fn ordering_is_numeric() {
        let sorted = [
            "-1E+125",
            "-1E+10",
            "-100",
            "-9.99",
            "-1",
            "-0.5",
            "-1e-130",
            "0",
            "1e-130",
            "0.001",
            "0.01",
            "1",
            "1.5",
            "1.52",
            "2",
            "9",
            "10",
            "99.9",
            "100",
            "1E+20",
            "12345678901234567890123456789012345678",
        ];
        for w in sorted.windows(2) {
            assert!(n(w[0]) < n(w[1]), "{} < {}", w[0], w[1]);
        }
        assert_eq!(n("10.0"), n("1e1"));
        assert_eq!(n("10.0").cmp(&n("10")), Ordering::Equal);
        assert_eq!(n("-0"), Number::ZERO);
    }

    #[test]
    fn exact_arithmetic() {
        let tenth = n("0.1");
        let mut acc = Number::ZERO;
        for _ in 0..10 {
            acc = acc.add(&tenth).unwrap();
        }
        assert_eq!(acc.to_string(), "1");
        let cases = [
            ("1", "10000000000000000000000", "10000000000000000000001"),
            ("0.1", "0.2", "0.3"),
            ("5.3", "0.05", "5.35"),
            ("-2.5", "2.5", "0"),
            ("-1", "0.25", "-0.75"),
            ("1e125", "-1e125", "0"),
            (
                "99999999999999999999999999999999999998",
                "1",
                "99999999999999999999999999999999999999",
            ),
            (
                "99999999999999999999999999999999999999",
                "1",
                "100000000000000000000000000000000000000",
            ),
        ];
        for (a, b, want) in cases {
            assert_eq!(n(a).add(&n(b)).unwrap().to_string(), want, "{a} + {b}");
        }
        assert_eq!(
            n("10000000000000000000000")
                .sub(&n("1"))
                .unwrap()
                .to_string(),
            "9999999999999999999999"
        );
        assert_eq!(n("0.3").sub(&n("0.1")).unwrap().to_string(), "0.2");
        assert_eq!(
            n("100000000000000000000.00000001")
                .sub(&n("1"))
                .unwrap()
                .to_string(),
            "99999999999999999999.00000001"
        );
        let over = [
            ("99999999999999999999999999999999999999", "0.1"),
            ("1e50", "1"),
            ("9e125", "9e125"),
            ("9.9999999999999999999999999999999999999E+125", "1E+125"),
            ("1e-130", "1e125"),
        ];
        for (a, b) in over {
            assert_eq!(n(a).add(&n(b)).unwrap_err(), MSG_OVERFLOW, "{a} + {b}");
        }
        assert_eq!(n("9e125").sub(&n("-9e125")).unwrap_err(), MSG_OVERFLOW);
        assert_eq!(
            n("1.0000001e-124").sub(&n("1e-124")).unwrap_err(),
            MSG_UNDERFLOW
        );
    }

    #[test]
    fn sizes() {
        let cases = [
            ("0", 1),
            ("1", 2),
            ("10", 2),
            ("100", 2),
            ("12", 2),
            ("123", 3),
            ("1234", 3),
            ("12.3456", 4),
            ("0.5", 2),
            ("1.5", 3),
            ("-1", 3),
            ("0.0015", 2),
            ("12345678901234567890123456789012345678", 20),
        ];
        for (s, want) in cases {
            assert_eq!(n(s).size(), want, "{s}");
        }
    }

    /// xorshift64*, deterministic.
    fn rng(state: &mut u64) -> u64 {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn random(state: &mut u64, max_digits: u64, exp_span: i64) -> String {
        let digits = 1 + rng(state) % max_digits;
        let mut s = String::new();
        if rng(state).is_multiple_of(2) {
            s.push('-');
        }
        for _ in 0..digits {
            s.push(char::from(b'0' + (rng(state) % 10) as u8));
        }
        let e = (rng(state) % (2 * exp_span as u64 + 1)) as i64 - exp_span;
        format!("{s}e{e}")
    }

    #[test]
    fn ordering_agrees_with_f64() {
        let mut st = 0x1234_5678_9ABC_DEF1;
        for _ in 0..3000 {
            let (a, b) = (random(&mut st, 15, 60), random(&mut st, 15, 60));
            let (x, y) = (n(&a), n(&b));
            let (fx, fy): (f64, f64) = (a.parse().unwrap(), b.parse().unwrap());
            if fx != fy {
                assert_eq!(x.cmp(&y), fx.partial_cmp(&fy).unwrap(), "{a} vs {b}");
            }
            // Canonical text parses back to the same number, and addition commutes.
            assert_eq!(n(&x.to_string()), x, "{a}");
            assert_eq!(x.add(&y), y.add(&x));
        }
    }

    #[test]
    fn addition_agrees_with_integers() {
        let mut st = 99;
        for _ in 0..3000 {
            let a = (rng(&mut st) % 2_000_000_000) as i64 - 1_000_000_000;
            let b = (rng(&mut st) % 2_000_000_000) as i64 - 1_000_000_000;
            let (x, y) = (n(&a.to_string()), n(&b.to_string()));
            assert_eq!(x.add(&y).unwrap().to_i64(), Some(a + b));
            assert_eq!(x.sub(&y).unwrap().to_i64(), Some(a - b));
            // Scaled to decimals, the same sums hold.
            let (xd, yd) = (n(&format!("{a}e-7")), n(&format!("{b}e-7")));
            assert_eq!(xd.add(&yd).unwrap(), n(&format!("{}e-7", a + b)));
        }
    }

    #[test]
    fn conversions() {
        assert_eq!(n("42").to_i64(), Some(42));
        assert_eq!(n("-4.2e1").to_i64(), Some(-42));
        assert_eq!(n("4.2").to_i64(), None);
        assert_eq!(Number::from_u64(1200).to_string(), "1200");
        assert_eq!(Number::from_u64(0), Number::ZERO);
        assert!((n("1.25").to_f64() - 1.25).abs() < 1e-12);
        assert_eq!(format!("{:?}", n("-1.5")), "Number(-1.5)");
    }
}
