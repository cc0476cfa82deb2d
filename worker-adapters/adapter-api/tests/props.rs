//! Property tests of the SSE decoder: engine bytes are outside input, and the network splits
//! them wherever it likes.

use adapter_api::sse::data_lines;
use futures_util::{stream, FutureExt, StreamExt};
use proptest::prelude::*;

type Decoded = Vec<Result<String, String>>;

/// Decodes `bytes` delivered in chunks cut at `cuts` (positions modulo the length).
fn decode(bytes: &[u8], cuts: &[usize]) -> Decoded {
    let mut cuts: Vec<usize> = cuts
        .iter()
        .map(|c| c % (bytes.len() + 1))
        .chain([0, bytes.len()])
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let chunks: Vec<Result<Vec<u8>, String>> = cuts
        .windows(2)
        .map(|w| Ok(bytes[w[0]..w[1]].to_vec()))
        .collect();
    // Every chunk is ready at once, so the decoder never waits.
    data_lines(stream::iter(chunks))
        .collect::<Decoded>()
        .now_or_never()
        .expect("the decoder waited on a stream that was always ready")
}

/// Bytes with a high share of the ones SSE framing is made of.
fn sse_noise() -> impl Strategy<Value = Vec<u8>> {
    let framing = prop::sample::select(b"data: \n\r:{}".to_vec());
    prop::collection::vec(prop_oneof![any::<u8>(), framing], 0..256)
}

/// One event as an engine writes it: optional comment, `event:` and `id:` lines, one `data:`
/// line, then a blank line; LF or CRLF.
fn event() -> impl Strategy<Value = (String, String)> {
    (
        "[^\r\n]{0,40}",
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(payload, crlf, comment, named, spaced)| {
            // The decoder, like SSE, drops the space after `data:`; a payload starting with
            // whitespace is not a well-formed case for the comparison.
            let payload = payload.trim_start().to_string();
            let nl = if crlf { "\r\n" } else { "\n" };
            let mut text = String::new();
            if comment {
                text.push_str(&format!(": keep-alive{nl}"));
            }
            if named {
                text.push_str(&format!("event: token{nl}id: 7{nl}"));
            }
            let sep = if spaced { " " } else { "" };
            text.push_str(&format!("data:{sep}{payload}{nl}{nl}"));
            (text, payload)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_split_anywhere_decode_as_unsplit(
        bytes in sse_noise(),
        cuts in prop::collection::vec(any::<usize>(), 0..16),
    ) {
        let whole = decode(&bytes, &[]);
        prop_assert_eq!(decode(&bytes, &cuts), whole);
    }

    #[test]
    fn well_formed_events_split_anywhere_yield_every_payload(
        events in prop::collection::vec(event(), 0..12),
        cuts in prop::collection::vec(any::<usize>(), 0..24),
    ) {
        let bytes: String = events.iter().map(|(text, _)| text.as_str()).collect();
        let expected: Decoded = events.into_iter().map(|(_, payload)| Ok(payload)).collect();
        prop_assert_eq!(&decode(bytes.as_bytes(), &[]), &expected);
        prop_assert_eq!(decode(bytes.as_bytes(), &cuts), expected);
    }

    #[test]
    fn every_split_into_single_bytes_is_the_same(bytes in sse_noise()) {
        let every: Vec<usize> = (0..bytes.len()).collect();
        prop_assert_eq!(decode(&bytes, &every), decode(&bytes, &[]));
    }
}
