//! Scrubs error text before it is stored or shown to an authenticated caller:
//! driver errors may echo connection strings, passwords or tokens.
//!
//! A [`Scrubber`] is the configured secret values (masked literally) plus the
//! secret-shape masking of [`crate::domain::logs::redact`] (the one place
//! those patterns live), then folded to one line and truncated. It does not
//! pseudonymize: probe details name our own infrastructure, not users.

use std::borrow::Cow;

use super::logs::redact::{MASK, mask_secrets};

/// Longest detail kept; a driver error longer than this is noise anyway.
pub const MAX_DETAIL_CHARS: usize = 300;

/// Masks known secret values and secret-shaped substrings.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    /// Literal values from configuration (passwords, whole URLs, tokens).
    secrets: Vec<String>,
}

impl Scrubber {
    /// `secrets` are the configured secret values; too-short ones are ignored
    /// because masking every "a" would destroy the text without protecting anything.
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .map(Into::into)
            .filter(|s| s.chars().count() >= 4)
            .collect();
        // Longest first, so a URL is masked whole before its password part.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Scrubber { secrets }
    }

    /// One line, at most [`MAX_DETAIL_CHARS`], secrets masked.
    pub fn scrub(&self, text: &str) -> String {
        let mut literal = Cow::Borrowed(text);
        for secret in &self.secrets {
            if literal.contains(secret.as_str()) {
                literal = Cow::Owned(literal.replace(secret.as_str(), MASK));
            }
        }
        let masked = mask_secrets(&literal);
        let one_line: String = masked.split_whitespace().collect::<Vec<_>>().join(" ");
        match one_line.char_indices().nth(MAX_DETAIL_CHARS) {
            Some((cut, _)) => format!("{}…", &one_line[..cut]),
            None => one_line,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrub(text: &str) -> String {
        Scrubber::new(["hunter2-secret", "postgres://app:pw@db/x"]).scrub(text)
    }

    #[test]
    fn masks_configured_values() {
        let s = scrub("auth failed for hunter2-secret and postgres://app:pw@db/x");
        assert!(!s.contains("hunter2"), "{s}");
        assert!(!s.contains("app:pw"), "{s}");
    }

    #[test]
    fn masks_secret_shapes() {
        let corpus = [
            (
                "error connecting to postgres://admin:S3cr3t!@10.0.0.5:5432/auth",
                "S3cr3t",
            ),
            ("redis://:redispass@cache:6379 refused", "redispass"),
            ("host=db user=app password=pa55word dbname=x", "pa55word"),
            (r#"{"password": "jsonpass", "user": "x"}"#, "jsonpass"),
            ("Authorization: Bearer abc.def-ghi", "abc.def"),
            ("token=tok_123456 rejected", "tok_123456"),
            ("api_key: AKIA1234567890", "AKIA1234567890"),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl in header",
                "eyJzdWIiOiIxIn0",
            ),
        ];
        for (text, secret) in corpus {
            let s = Scrubber::default().scrub(text);
            assert!(!s.contains(secret), "{text} → {s}");
        }
    }

    #[test]
    fn keeps_plain_text() {
        let s = Scrubber::default().scrub("connection refused (os error 111)");
        assert_eq!(s, "connection refused (os error 111)");
    }

    #[test]
    fn folds_lines_and_truncates() {
        let s = Scrubber::default().scrub("line one\nTraceback:\n  frame");
        assert_eq!(s, "line one Traceback: frame");
        let long = "é".repeat(MAX_DETAIL_CHARS + 50);
        let s = Scrubber::default().scrub(&long);
        assert_eq!(s.chars().count(), MAX_DETAIL_CHARS + 1);
    }

    #[test]
    fn uses_the_redactors_masking_without_pseudonyms() {
        let s = Scrubber::default();
        assert_eq!(
            s.scrub("Set-Cookie: sid=abc123; Path=/"),
            "Set-Cookie: sid=***; Path=/"
        );
        assert_eq!(
            s.scrub("key -----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----"),
            "key -----BEGIN EC PRIVATE KEY-----***-----END EC PRIVATE KEY-----"
        );
        assert_eq!(
            s.scrub("GET /cb?code=SplxlOBeZQQYbYS6WxSbIA&state=xyz"),
            "GET /cb?code=***&state=xyz"
        );
        // Probe details name our infrastructure: hosts and addresses stay.
        let plain = "no route to 10.0.0.5 (db.internal), admin is ops@example.com";
        assert_eq!(s.scrub(plain), plain);
    }

    #[test]
    fn literal_secrets_then_shapes() {
        let s = Scrubber::new(["S3cr3t-Pa55"])
            .scrub("connect postgres://app:S3cr3t-Pa55@db:5432/x failed; retry with S3cr3t-Pa55");
        assert_eq!(s, "connect postgres://***@db:5432/x failed; retry with ***");
    }

    #[test]
    fn ignores_trivially_short_secrets() {
        let s = Scrubber::new(["ab"]).scrub("about abc");
        assert_eq!(s, "about abc");
    }
}
