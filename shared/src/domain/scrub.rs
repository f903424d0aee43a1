//! Scrubs error text before it is stored or shown to an authenticated caller:
//! driver errors may echo connection strings, passwords or tokens.

use std::sync::LazyLock;

use regex::Regex;

/// Longest detail kept; a driver error longer than this is noise anyway.
pub const MAX_DETAIL_CHARS: usize = 300;
const MASK: &str = "***";

#[allow(clippy::expect_used)] // constant patterns, covered by the tests below
static PATTERNS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        // scheme://user:password@host → scheme://***@host
        (r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@]*@", "${1}***@"),
        // key=value and key: value pairs of libpq strings, INI files, JSON
        (
            r#"(?i)\b(password|passwd|pwd|secret|token|api[_\-]?key|auth)("?\s*[=:]\s*"?)[^\s"',;&]+"#,
            "${1}${2}***",
        ),
        (r"(?i)\bbearer\s+[A-Za-z0-9._~+/\-]+=*", "Bearer ***"),
        // JSON Web Tokens
        (r"\beyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*", "***"),
    ]
    .into_iter()
    .map(|(p, r)| (Regex::new(p).expect("scrub pattern compiles"), r))
    .collect()
});

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
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        for (pattern, replacement) in PATTERNS.iter() {
            if pattern.is_match(&out) {
                out = pattern.replace_all(&out, *replacement).into_owned();
            }
        }
        let one_line: String = out.split_whitespace().collect::<Vec<_>>().join(" ");
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
    fn ignores_trivially_short_secrets() {
        let s = Scrubber::new(["ab"]).scrub("about abc");
        assert_eq!(s, "about abc");
    }
}
