//! Looking through text eight bytes at a time for a byte a sink must treat specially (a quote for
//! JSON, a control character for a terminal): most text in a record is keys and short values
//! that have none, and a byte-by-byte loop was among the worker's largest costs (BENCHMARKS.md,
//! eighth sitting). The tests are those of "Bit Twiddling Hacks" (S. E. Anderson): a byte below
//! `n`, a byte equal to `b`, found in all eight bytes of a word at once.

const ONES: u64 = 0x0101_0101_0101_0101;
/// The high bit of every byte.
pub(crate) const HIGH: u64 = 0x8080_8080_8080_8080;

/// Non-zero when a byte of `word` is below `n` (`n` at most 128).
pub(crate) fn below(word: u64, n: u8) -> u64 {
    debug_assert!(n <= 128, "the test holds for n up to 128");
    word.wrapping_sub(ONES * u64::from(n)) & !word & HIGH
}

/// Non-zero when a byte of `word` is `byte`.
pub(crate) fn equal(word: u64, byte: u8) -> u64 {
    below(word ^ (ONES * u64::from(byte)), 1)
}

/// Whether `found` is true of a word of `bytes`: each eight bytes in turn, then the last eight
/// (overlapping); text shorter than a word is filled up with `a`, which `found` must not find.
pub(crate) fn any_word(bytes: &[u8], found: impl Fn(u64) -> bool) -> bool {
    let word_at = |at: usize| {
        let mut eight = [0; 8];
        eight.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(eight)
    };
    if bytes.len() < 8 {
        // Filled in a register: a copy to memory and a load of the whole word would stall on the
        // partial stores.
        let word = bytes
            .iter()
            .rev()
            .fold(u64::from_le_bytes([b'a'; 8]), |word, &b| {
                (word << 8) | u64::from(b)
            });
        return found(word);
    }
    let mut any = false;
    let mut at = 0;
    while at + 8 <= bytes.len() {
        any |= found(word_at(at));
        at += 8;
    }
    any | found(word_at(bytes.len() - 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_is_looked_at_whatever_the_length_and_place() {
        let special = |w| below(w, 0x20) | equal(w, b'"') | (w & HIGH) != 0;
        assert!(!any_word(b"", special), "empty text");
        for len in 1..40 {
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut text = b"bcdefghi".repeat(5)[..len].to_vec();
                    text[at] = byte;
                    let below_space = any_word(&text, |w| below(w, 0x20) != 0);
                    assert_eq!(below_space, text.iter().any(|&b| b < 0x20), "{text:?}");
                    let quote = any_word(&text, |w| equal(w, b'"') != 0);
                    assert_eq!(quote, text.contains(&b'"'), "{text:?}");
                    let high = any_word(&text, |w| w & HIGH != 0);
                    assert_eq!(high, text.iter().any(|&b| b >= 0x80), "{text:?}");
                }
            }
        }
    }
}
