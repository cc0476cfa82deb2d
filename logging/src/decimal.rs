//! Integers as decimal text without the formatting machinery: the log worker writes a record's
//! numbers twice (its JSON line and its pretty line), and compares the pretty view's context
//! numbers as text; through `write!` each went through `fmt::Formatter` (BENCHMARKS.md, fifth
//! sitting).

use std::io::{self, Write};

/// `value` in decimal, at the end of `buf`.
fn digits(mut value: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return &buf[at..];
        }
    }
}

/// `value` in decimal, in `buf`.
pub(crate) fn u64_str(value: u64, buf: &mut [u8; 20]) -> &str {
    std::str::from_utf8(digits(value, buf)).unwrap_or_default()
}

pub(crate) fn write_u64(out: &mut (impl Write + ?Sized), value: u64) -> io::Result<()> {
    out.write_all(digits(value, &mut [0; 20]))
}

pub(crate) fn write_i64(out: &mut (impl Write + ?Sized), value: i64) -> io::Result<()> {
    if value < 0 {
        out.write_all(b"-")?;
    }
    write_u64(out, value.unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::written as text;

    proptest::proptest! {
        #[test]
        fn integers_read_as_rust_prints_them(u in proptest::num::u64::ANY, i in proptest::num::i64::ANY) {
            proptest::prop_assert_eq!(text(|out| write_u64(out, u)), u.to_string());
            proptest::prop_assert_eq!(text(|out| write_i64(out, i)), i.to_string());
            proptest::prop_assert_eq!(u64_str(u, &mut [0; 20]).to_string(), u.to_string());
        }
    }

    #[test]
    fn the_extremes() {
        assert_eq!(text(|out| write_u64(out, 0)), "0");
        assert_eq!(text(|out| write_u64(out, u64::MAX)), u64::MAX.to_string());
        assert_eq!(text(|out| write_i64(out, i64::MIN)), i64::MIN.to_string());
    }
}
