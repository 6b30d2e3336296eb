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

/// Fill `out` from exactly `2 * out.len()` lowercase hex digits (what
/// [`encode`] writes; any other spelling is refused, so a cache line that
/// was edited by hand is a miss). `false` when `hex` is not that.
pub fn decode_into(hex: &str, out: &mut [u8]) -> bool {
    let hex = hex.as_bytes();
    if hex.len() != 2 * out.len() {
        return false;
    }
    let digit = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    };
    for (i, b) in out.iter_mut().enumerate() {
        match (digit(hex[2 * i]), digit(hex[2 * i + 1])) {
            (Some(h), Some(l)) => *b = (h << 4) | l,
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_is_not_hex() {
        assert_eq!(encode(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        let mut out = [0u8; 4];
        assert!(decode_into("000fa5ff", &mut out));
        assert_eq!(out, [0x00, 0x0f, 0xa5, 0xff]);
        assert!(
            !decode_into("000FA5FF", &mut out),
            "uppercase is not what encode writes"
        );
        assert!(!decode_into("000fa5f", &mut out));
        assert!(!decode_into("000fa5fz", &mut out));
        assert_eq!(encode(&[]), "");
    }
}
