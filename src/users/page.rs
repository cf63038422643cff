//! Pages of the user list: where a page starts (the cursor) and how long it is (the limit).

/// Where a page of the user list starts: after the user created `n`-th (exclusive), in the
/// store's creation order. Clients see it as opaque text (lowercase hex).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, PartialOrd, Ord)]
pub struct Cursor(pub u64);

impl Cursor {
    /// Parses a cursor as [`Cursor::encode`] writes it: 1 to 16 lowercase hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        let ok = (1..=16).contains(&text.len())
            && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| u64::from_str_radix(text, 16).ok().map(Cursor))
            .flatten()
    }

    /// The cursor's text.
    pub fn encode(self) -> String {
        format!("{:016x}", self.0)
    }
}

/// Users per page when the client does not say.
pub const DEFAULT_LIMIT: usize = 50;
/// Most users per page.
pub const MAX_LIMIT: usize = 1000;

/// Parses a page size: a decimal number from 1 to [`MAX_LIMIT`], in at most four digits.
pub fn parse_limit(text: &str) -> Option<usize> {
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|n| (1..=MAX_LIMIT).contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn limits_and_cursors() {
        assert_eq!(parse_limit("1"), Some(1));
        assert_eq!(parse_limit("1000"), Some(1000));
        assert_eq!(parse_limit("0050"), Some(50));
        for bad in ["0", "1001", "", "-1", "1e3", "10000", " 5", "+5"] {
            assert_eq!(parse_limit(bad), None, "{bad:?}");
        }
        assert_eq!(Cursor::parse("00000000000000ff"), Some(Cursor(255)));
        assert_eq!(Cursor::parse("f"), Some(Cursor(15)));
        for bad in ["", "G", "00000000000000000", "FF", "+f", " 1"] {
            assert_eq!(Cursor::parse(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn cursors_round_trip(n in any::<u64>()) {
            prop_assert_eq!(Cursor::parse(&Cursor(n).encode()), Some(Cursor(n)));
        }

        /// Any text of digits and near-digits: a limit is accepted exactly when it is 1 to 4
        /// ASCII digits worth 1 to 1000.
        #[test]
        fn limits_are_accepted_exactly_in_range(text in "[0-9+ -]{0,5}") {
            let reference = (1..=4).contains(&text.len())
                && text.bytes().all(|b| b.is_ascii_digit())
                && (1..=1000).contains(&text.parse::<u32>().unwrap());
            prop_assert_eq!(parse_limit(&text).is_some(), reference);
        }
    }
}
