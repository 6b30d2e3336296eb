//! Splitting the cache's text formats: fields separated by ASCII bytes, and
//! object ids in hex.

use git2::Oid;

/// `s` split at the first `sep`, an ASCII byte (for the short fields of the
/// cache files this beats `str::split_once`).
pub(crate) fn cut(s: &str, sep: u8) -> Option<(&str, &str)> {
    let i = memchr::memchr(sep, s.as_bytes())?;
    // `sep` is ASCII: both halves are valid UTF-8.
    Some((&s[..i], &s[i + 1..]))
}

/// The fields of `s` separated by `sep`, an ASCII byte.
pub(crate) fn fields_of(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        match cut(r, sep) {
            Some((field, tail)) => {
                rest = Some(tail);
                Some(field)
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// A 40-digit lowercase hex object id (without a round trip through libgit2).
pub(crate) fn oid_from_hex(hex: &str) -> Option<Oid> {
    let raw: [u8; 20] = crate::hex::decode_array(hex)?;
    Oid::from_bytes(&raw).ok()
}

/// An optional field as the cache files write it: `-` for none, `=value`.
pub(crate) fn optional(v: Option<&str>) -> String {
    v.map_or_else(|| "-".to_string(), |s| format!("={s}"))
}

/// An optional field read back (`None` when it is neither form).
pub(crate) fn parse_optional(field: &str) -> Option<Option<String>> {
    match field.strip_prefix('=') {
        Some(v) => Some(Some(v.to_string())),
        None if field == "-" => Some(None),
        None => None,
    }
}
