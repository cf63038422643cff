//! What makes a user's fields valid, and how they are normalised.
//!
//! Values are parsed once into types that cannot be invalid ("parse, don't validate"): a
//! [`NewUser`] or a [`Patch`] always holds a trimmed name of 1 to [`NAME_MAX_CHARS`]
//! characters without control characters and a trimmed email of at most [`EMAIL_MAX_BYTES`]
//! bytes with one `@`, something on each side and no whitespace. The messages a client sees
//! for each [`Invalid`] are in the response module's table, with every other message.

use std::borrow::Cow;

/// Most characters in a name.
pub const NAME_MAX_CHARS: usize = 200;

/// Most bytes in an email (the longest address SMTP's path limit allows).
pub const EMAIL_MAX_BYTES: usize = 254;

/// Why a user's fields were refused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Invalid {
    /// The name is empty once trimmed.
    NameRequired,
    /// The name has more than [`NAME_MAX_CHARS`] characters.
    NameTooLong,
    /// The name holds a control character (a newline, a tab, NUL, ...).
    NameControl,
    /// The email has no `@`.
    EmailInvalid,
    /// The email has more than one `@`.
    EmailManyAt,
    /// Nothing before the `@`.
    EmailNoLocal,
    /// Nothing after the `@`.
    EmailNoDomain,
    /// Whitespace (or another control character) inside the email.
    EmailWhitespace,
    /// The email has more than [`EMAIL_MAX_BYTES`] bytes.
    EmailTooLong,
    /// A change that changes nothing: neither `name` nor `email` given.
    NothingToUpdate,
}

/// Returns true if and only if every byte is printable ASCII (most names and emails are):
/// then the checks by character need not decode a character.
fn printable_ascii(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// Trims a name and checks it; the article's check (empty) comes first.
fn parse_name(name: &str) -> Result<&str, Invalid> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Invalid::NameRequired);
    }
    if !printable_ascii(name) && name.chars().any(char::is_control) {
        return Err(Invalid::NameControl);
    }
    // Counting characters is only needed past the byte length that 200 one-byte ones take.
    if name.len() > NAME_MAX_CHARS && name.chars().count() > NAME_MAX_CHARS {
        return Err(Invalid::NameTooLong);
    }
    Ok(name)
}

/// Trims an email and checks it; the article's check (an `@`) comes first.
fn parse_email(email: &str) -> Result<&str, Invalid> {
    let email = email.trim();
    // One pass over the bytes finds the first `@`, a second one, a space and anything outside
    // printable ASCII; the checks then go in the article's order, as separate scans would.
    let (mut at, mut many_at, mut space, mut printable) = (None, false, false, true);
    for (i, &b) in email.as_bytes().iter().enumerate() {
        match b {
            b'@' if at.is_none() => at = Some(i),
            b'@' => many_at = true,
            b' ' => space = true,
            0x21..=0x7e => {}
            _ => printable = false,
        }
    }
    let Some(at) = at else {
        return Err(Invalid::EmailInvalid);
    };
    if many_at {
        return Err(Invalid::EmailManyAt);
    }
    let spaced = || email.chars().any(|c| c.is_whitespace() || c.is_control());
    if space || (!printable && spaced()) {
        return Err(Invalid::EmailWhitespace);
    }
    if at == 0 {
        return Err(Invalid::EmailNoLocal);
    }
    if at + 1 == email.len() {
        return Err(Invalid::EmailNoDomain);
    }
    if email.len() > EMAIL_MAX_BYTES {
        return Err(Invalid::EmailTooLong);
    }
    Ok(email)
}

/// The form of an email that uniqueness is decided on: trimmed and lowercased, so that
/// `Ann@Example.com` and ` ann@example.com` are one address. Borrowed when the email is
/// its own key already (ASCII with no capital: most are).
pub fn email_key(email: &str) -> Cow<'_, str> {
    let email = email.trim();
    if email.is_ascii() {
        if email.bytes().any(|b| b.is_ascii_uppercase()) {
            return Cow::Owned(email.to_ascii_lowercase());
        }
        return Cow::Borrowed(email);
    }
    Cow::Owned(email.to_lowercase())
}

/// A validated, normalised new user, borrowing from the request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NewUser<'a> {
    name: &'a str,
    email: &'a str,
}

impl<'a> NewUser<'a> {
    /// Trims both fields and checks them in the article's order: the name first, then the email.
    pub fn parse(name: &'a str, email: &'a str) -> Result<Self, Invalid> {
        let name = parse_name(name)?;
        let email = parse_email(email)?;
        Ok(NewUser { name, email })
    }

    /// The trimmed name.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The trimmed email.
    pub fn email(&self) -> &'a str {
        self.email
    }
}

/// A validated change to a user: a new name, a new email, or both.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Patch<'a> {
    name: Option<&'a str>,
    email: Option<&'a str>,
}

impl<'a> Patch<'a> {
    /// Trims and checks the fields given, with the same rules as [`NewUser::parse`]; at least
    /// one must be given.
    pub fn parse(name: Option<&'a str>, email: Option<&'a str>) -> Result<Self, Invalid> {
        if name.is_none() && email.is_none() {
            return Err(Invalid::NothingToUpdate);
        }
        Ok(Patch {
            name: name.map(parse_name).transpose()?,
            email: email.map(parse_email).transpose()?,
        })
    }

    /// The new trimmed name, if the patch changes it.
    pub fn name(&self) -> Option<&'a str> {
        self.name
    }

    /// The new trimmed email, if the patch changes it.
    pub fn email(&self) -> Option<&'a str> {
        self.email
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn validation_keeps_the_articles_order() {
        assert_eq!(NewUser::parse("  ", "nope"), Err(Invalid::NameRequired));
        assert_eq!(NewUser::parse("Ann", "nope"), Err(Invalid::EmailInvalid));
        let u = NewUser::parse("  Ann ", "\tann@example.com\n").unwrap();
        assert_eq!((u.name(), u.email()), ("Ann", "ann@example.com"));
    }

    #[test]
    fn each_rule_has_its_reason() {
        let long = "n".repeat(201);
        assert_eq!(NewUser::parse(&long, "a@b"), Err(Invalid::NameTooLong));
        assert!(NewUser::parse(&"é".repeat(200), "a@b").is_ok());
        assert_eq!(NewUser::parse("A\u{7}n", "a@b"), Err(Invalid::NameControl));
        assert_eq!(NewUser::parse("Ann", "a@b@c"), Err(Invalid::EmailManyAt));
        assert_eq!(NewUser::parse("Ann", "@b"), Err(Invalid::EmailNoLocal));
        assert_eq!(NewUser::parse("Ann", "a@"), Err(Invalid::EmailNoDomain));
        assert_eq!(
            NewUser::parse("Ann", "a b@c"),
            Err(Invalid::EmailWhitespace)
        );
        let email = format!("{}@b", "a".repeat(253));
        assert_eq!(NewUser::parse("Ann", &email), Err(Invalid::EmailTooLong));
        assert!(NewUser::parse("Ann", &email[1..]).is_ok());
        assert_eq!(Patch::parse(None, None), Err(Invalid::NothingToUpdate));
        assert_eq!(email_key("  Ann@Example.COM "), "ann@example.com");
        assert!(matches!(email_key(" ann@x "), Cow::Borrowed("ann@x")));
        assert_eq!(email_key("ÉLA@X"), "éla@x");
    }

    /// A name that is valid: any characters but control ones, a non-blank middle, whitespace
    /// around (trimmed away), up to the limit.
    pub(crate) fn valid_name() -> impl Strategy<Value = String> {
        (
            "\\s{0,2}",
            "[^\\p{C}\\s]",
            "[^\\p{C}]{0,60}",
            "[^\\p{C}\\s]",
            "\\s{0,2}",
        )
            .prop_map(|(a, first, mid, last, b)| format!("{a}{first}{mid}{last}{b}"))
    }

    /// An email that is valid: one `@`, no whitespace or control character inside, whitespace
    /// around.
    pub(crate) fn valid_email() -> impl Strategy<Value = String> {
        let part = "[^\\s@\\p{C}]{1,30}";
        ("\\s{0,2}", part, part, "\\s{0,2}").prop_map(|(a, l, d, b)| format!("{a}{l}@{d}{b}"))
    }

    /// Names and emails of every kind: mostly valid, and each way of being invalid.
    pub(crate) fn any_fields() -> impl Strategy<Value = (String, String)> {
        let name = prop_oneof![
            6 => valid_name(),
            1 => "\\s{0,3}",
            1 => ("[a-z]{1,5}", "\\p{Cc}", "[a-z]{1,5}").prop_map(|(a, c, b)| format!("{a}{c}{b}")),
            1 => "[a-zé]{201,230}",
        ];
        let email = prop_oneof![
            6 => valid_email(),
            1 => "[a-z.]{0,12}",
            1 => "[a-z]{1,4}@[a-z]{1,4}@[a-z@]{0,4}",
            1 => "\\s?@[a-z]{1,5}",
            1 => "[a-z]{1,5}@\\s?",
            1 => "[a-z]{1,4}[ \\t\\x00\\x7f\\u{2003}][a-z]{0,4}@[a-z]{1,4}",
            1 => ("[a-z]{250,260}", "[a-z]{1,5}").prop_map(|(l, d)| format!("{l}@{d}")),
        ];
        (name, email)
    }

    /// The reason a name and email must be refused with, by the rules as the README states
    /// them, written independently of the code above; `None` if both are valid.
    fn expected(name: &str, email: &str) -> Option<Invalid> {
        let (name, email) = (name.trim(), email.trim());
        if name.is_empty() {
            return Some(Invalid::NameRequired);
        }
        if name.chars().any(char::is_control) {
            return Some(Invalid::NameControl);
        }
        if name.chars().count() > 200 {
            return Some(Invalid::NameTooLong);
        }
        let ats = email.matches('@').count();
        if ats == 0 {
            return Some(Invalid::EmailInvalid);
        }
        if ats > 1 {
            return Some(Invalid::EmailManyAt);
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Some(Invalid::EmailWhitespace);
        }
        if email.starts_with('@') {
            return Some(Invalid::EmailNoLocal);
        }
        if email.ends_with('@') {
            return Some(Invalid::EmailNoDomain);
        }
        (email.len() > 254).then_some(Invalid::EmailTooLong)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// The fast paths of the email key change nothing: it is the trimmed email, lowercased.
        #[test]
        fn the_email_key_is_the_trimmed_lowercased_email(email in "\\s?[a-zA-Z0-9@.ÉéİK]{0,12}\\s?") {
            prop_assert_eq!(email_key(&email), email.trim().to_lowercase());
        }

        #[test]
        fn fields_are_refused_exactly_as_the_rules_say((name, email) in any_fields()) {
            let got = NewUser::parse(&name, &email);
            prop_assert_eq!(got.err(), expected(&name, &email));
            if let Ok(user) = got {
                prop_assert_eq!(user.name(), name.trim());
                prop_assert_eq!(user.email(), email.trim());
            }
        }
    }

    /// Most generated cases are valid, and every reason is reached: the property above tests
    /// the branch it is named for.
    #[test]
    fn the_field_generator_reaches_every_reason() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let mut seen = std::collections::HashMap::new();
        for _ in 0..3000 {
            let (name, email) = any_fields().new_tree(&mut runner).unwrap().current();
            *seen.entry(expected(&name, &email)).or_insert(0) += 1;
        }
        assert!(seen[&None] > 1000, "valid cases: {seen:?}");
        for reason in [
            Invalid::NameRequired,
            Invalid::NameTooLong,
            Invalid::NameControl,
            Invalid::EmailInvalid,
            Invalid::EmailManyAt,
            Invalid::EmailNoLocal,
            Invalid::EmailNoDomain,
            Invalid::EmailWhitespace,
            Invalid::EmailTooLong,
        ] {
            assert!(
                seen.get(&Some(reason)).is_some_and(|&n| n > 10),
                "{reason:?}: {seen:?}"
            );
        }
    }
}
