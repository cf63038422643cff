//! `If-Match`: which versions of a user a change may replace (RFC 9110, 13.1.1).
//!
//! The field is `"*"` alone, or a comma-separated list of entity tags (`"3"`, `W/"3"`), empty
//! list elements allowed (RFC 9110, 5.6.1); several field lines are one list. Anything else is
//! not an `If-Match` at all and is refused with 400, rather than read as a false condition:
//! a client that sends one has a bug it should hear about, and a 412 would tell it the user
//! changed.
//!
//! Comparison is strong (8.8.3.2): a weak tag never matches, and a strong one only if its
//! opaque text is exactly the user's `ETag`: `"03"` is a valid tag that matches no version.

use hyper::header::{HeaderMap, IF_MATCH};

/// What `If-Match` allows: any version (no header, or `*`) or the ones it lists.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum IfMatch {
    Any,
    Versions(Vec<u32>),
}

/// The field is not `*` or a list of entity tags.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Malformed;

/// Returns true if and only if `b` may stand inside an entity tag's quotes (`etagc`: visible
/// ASCII but the double quote, or obs-text).
fn etagc(b: u8) -> bool {
    b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80
}

/// Parses one list element (already trimmed): `Some(tag)` with the tag's opaque text for a
/// strong tag, `None` for a weak one.
fn entity_tag(element: &[u8]) -> Result<Option<&[u8]>, Malformed> {
    let (weak, quoted) = match element.strip_prefix(b"W/") {
        Some(rest) => (true, rest),
        None => (false, element),
    };
    let opaque = (quoted.strip_prefix(b"\""))
        .and_then(|t| t.strip_suffix(b"\""))
        .ok_or(Malformed)?;
    if !opaque.iter().all(|&b| etagc(b)) {
        return Err(Malformed);
    }
    Ok((!weak).then_some(opaque))
}

/// The version an opaque tag names, if it is one userd writes: a decimal number without
/// leading zeros.
fn version_of(opaque: &[u8]) -> Option<u32> {
    let canonical = !opaque.is_empty() && (opaque == b"0" || opaque[0] != b'0');
    let digits = opaque.iter().all(u8::is_ascii_digit);
    (canonical && digits)
        .then(|| std::str::from_utf8(opaque).ok()?.parse().ok())
        .flatten()
}

fn trim(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

impl IfMatch {
    /// Reads every `If-Match` field line of a request.
    pub(super) fn of(headers: &HeaderMap) -> Result<Self, Malformed> {
        let lines: Vec<&[u8]> = headers
            .get_all(IF_MATCH)
            .iter()
            .map(|v| trim(v.as_bytes()))
            .collect();
        if lines.is_empty() {
            return Ok(IfMatch::Any);
        }
        if lines.len() == 1 && lines[0] == b"*" {
            return Ok(IfMatch::Any);
        }
        let mut versions = Vec::new();
        for element in lines.iter().flat_map(|line| line.split(|&b| b == b',')) {
            let element = trim(element);
            if element.is_empty() {
                continue; // an empty list element, which a recipient must accept
            }
            if let Some(v) = entity_tag(element)?.and_then(version_of) {
                versions.push(v);
            }
        }
        Ok(IfMatch::Versions(versions))
    }

    /// Returns true if and only if a change of the user at `version` may go ahead.
    pub(super) fn accepts(&self, version: u32) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Versions(v) => v.contains(&version),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;
    use proptest::prelude::*;

    fn of(lines: &[&[u8]]) -> Result<IfMatch, Malformed> {
        let mut h = HeaderMap::new();
        for line in lines {
            h.append(IF_MATCH, HeaderValue::from_bytes(line).unwrap());
        }
        IfMatch::of(&h)
    }

    #[test]
    fn the_field_is_star_alone_or_a_list_of_entity_tags() {
        use IfMatch::*;
        assert_eq!(of(&[]), Ok(Any));
        assert_eq!(of(&[b"*"]), Ok(Any));
        assert_eq!(of(&[b"\"3\""]), Ok(Versions(vec![3])));
        assert_eq!(of(&[b"\"3\", W/\"4\" ,\"5\""]), Ok(Versions(vec![3, 5])));
        assert_eq!(of(&[b"\"3\"", b"\"4\""]), Ok(Versions(vec![3, 4])));
        // Empty list elements, and an empty list, are allowed; nothing matches then.
        assert_eq!(of(&[b""]), Ok(Versions(vec![])));
        assert_eq!(of(&[b", ,\"1\","]), Ok(Versions(vec![1])));
        // Valid tags that name no version userd writes.
        assert_eq!(
            of(&[b"\"03\", \"+2\", \"x\", \"\", \"\xe9\""]),
            Ok(Versions(vec![]))
        );
        assert_eq!(of(&[b"\"0\""]), Ok(Versions(vec![0])));
        assert_eq!(of(&[b"\"99999999999\""]), Ok(Versions(vec![])));
        for bad in [
            &b"3"[..],
            b"\"3",
            b"W/3",
            b"w/\"3\"",
            b"\"a\"b\"",
            b"\"3\" \"4\"",
            b"*, \"3\"",
            b"\"3\", *",
            b"\"a b\"",
        ] {
            assert_eq!(
                of(&[bad]),
                Err(Malformed),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // `*` is only `*` alone: not beside another field line either.
        assert_eq!(of(&[b"*", b"\"3\""]), Err(Malformed));
    }

    #[test]
    fn comparison_is_strong() {
        let m = of(&[b"W/\"2\", \"3\""]).unwrap();
        assert!(m.accepts(3));
        assert!(!m.accepts(2));
        assert!(IfMatch::Any.accepts(7));
    }

    proptest! {
        /// Any list of well-formed tags parses, and keeps exactly the strong canonical ones.
        #[test]
        fn lists_of_tags_parse_to_their_strong_versions(
            tags in proptest::collection::vec((any::<bool>(), 0u32..20, any::<bool>()), 0..6),
            spaces in "[ \t]{0,2}",
        ) {
            let mut text = Vec::new();
            let mut expected = Vec::new();
            for (i, (weak, v, padded)) in tags.iter().enumerate() {
                if i > 0 {
                    text.extend_from_slice(format!("{spaces},{spaces}").as_bytes());
                }
                let opaque = if *padded { format!("0{v}") } else { v.to_string() };
                if *weak {
                    text.extend_from_slice(b"W/");
                }
                text.extend_from_slice(format!("\"{opaque}\"").as_bytes());
                if !weak && !padded {
                    expected.push(*v);
                }
            }
            prop_assert_eq!(of(&[&text]), Ok(IfMatch::Versions(expected)));
        }
    }
}
