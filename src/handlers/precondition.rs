//! `If-Match`: which versions of a user a change may replace (RFC 9110, 13.1.1).

use hyper::header::{HeaderMap, IF_MATCH};

/// What `If-Match` allows: any version (no header, or `*`) or the ones it lists.
///
/// Comparison is strong: a weak tag (`W/"3"`) never matches, and neither does anything that
/// is not an entity tag, so a header that lists nothing matchable refuses every version.
pub(super) enum IfMatch {
    Any,
    Versions(Vec<u32>),
}

impl IfMatch {
    /// Reads every `If-Match` header of a request.
    pub(super) fn of(headers: &HeaderMap) -> Self {
        let mut values = headers.get_all(IF_MATCH).iter().peekable();
        if values.peek().is_none() {
            return IfMatch::Any;
        }
        let mut versions = Vec::new();
        for value in values {
            for tag in value.to_str().unwrap_or_default().split(',').map(str::trim) {
                if tag == "*" {
                    return IfMatch::Any;
                }
                let digits = tag.strip_prefix('"').and_then(|t| t.strip_suffix('"'));
                if let Some(v) = digits.and_then(|d| d.parse::<u32>().ok()) {
                    versions.push(v);
                }
            }
        }
        IfMatch::Versions(versions)
    }

    /// Returns true if and only if a change of the user at `version` may go ahead.
    pub(super) fn accepts(&self, version: u32) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Versions(v) => v.contains(&version),
        }
    }
}
