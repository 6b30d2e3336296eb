//! Lowercase hexadecimal, the one way tagback spells digests and ids.

use std::fmt::Write as _;

/// `bytes` as lowercase hex, two digits each.
pub fn encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `N` bytes from exactly `2 * N` lowercase hex digits (what [`encode`]
/// writes; any other spelling is refused, so a cache line that was edited
/// by hand is a miss). `None` when `hex` is not that.
pub fn decode_array<const N: usize>(hex: &str) -> Option<[u8; N]> {
    let hex = hex.as_bytes();
    if hex.len() != 2 * N {
        return None;
    }
    // A warm plan decodes an id per cached migration: one table lookup per
    // digit, and one test for all of them.
    let mut out = [0u8; N];
    let mut bad = 0;
    for (b, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let (h, l) = (DIGIT[usize::from(pair[0])], DIGIT[usize::from(pair[1])]);
        bad |= h | l;
        *b = (h << 4) | (l & 0x0f);
    }
    (bad & NOT_A_DIGIT == 0).then_some(out)
}

/// Marks a byte that is not a lowercase hex digit in [`DIGIT`].
const NOT_A_DIGIT: u8 = 0x80;

/// The value of each lowercase hex digit; [`NOT_A_DIGIT`] for other bytes.
static DIGIT: [u8; 256] = {
    let mut t = [NOT_A_DIGIT; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_is_not_hex() {
        assert_eq!(encode(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(
            decode_array::<4>("000fa5ff"),
            Some([0x00, 0x0f, 0xa5, 0xff])
        );
        assert_eq!(
            decode_array::<4>("000FA5FF"),
            None,
            "uppercase is not what encode writes"
        );
        assert_eq!(decode_array::<4>("000fa5f"), None);
        assert_eq!(decode_array::<4>("000fa5fz"), None);
        assert_eq!(decode_array::<4>("000fa5fg"), None);
        assert_eq!(decode_array::<2>("000fa5ff"), None);
        for bad in [0u8, b'/', b':', b'`', b'g', b'G', 0x80, 0xff] {
            let text = [b'0', bad];
            let text = String::from_utf8_lossy(&text);
            assert_eq!(decode_array::<1>(&text), None, "{text:?}");
        }
        let all: [u8; 256] = std::array::from_fn(|i| i as u8);
        assert_eq!(decode_array::<256>(&encode(&all)), Some(all));
        assert_eq!(encode(&[]), "");
    }
}
