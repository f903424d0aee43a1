//! Every rule regex in one set, so a record's text is scanned once for all
//! of them, in two builds: ASCII mode for ASCII text, Unicode for the rest.
//!
//! Log lines are nearly all ASCII, and on ASCII text a pattern matches the
//! same in both modes: `\w`, `\d`, `\s`, `\b`, `.`, negated classes and case
//! folding (`(?i)k` also takes the Kelvin sign) differ only on characters
//! outside ASCII. The ASCII build's automaton is much smaller (a Unicode
//! `\w` or `(?i)` is a large UTF-8 automaton): it compiles in a fraction of
//! the time and its lazy DFA has fewer states and byte classes to keep in
//! cache. A pattern only Unicode mode accepts (`\p{L}`) makes the ASCII
//! build fail; the Unicode one then serves every text.
//!
//! Both are built at load, although most runs never need the Unicode one:
//! a pattern can fit the size limit in ASCII mode and not in Unicode mode
//! (`(?:\w{100}){100}`), and that must be an error when the rule file loads,
//! not a rule that silently stops matching at the first accented name.

use regex::{RegexSet, RegexSetBuilder, bytes};

/// The lazy DFA's cache may grow to 256 MiB: with the ~36 patterns of the
/// default rules a 32 MiB cache was cleared over and over (replay 0.74 s →
/// 0.63 s on the bench corpus); it is only filled as far as the texts seen
/// need.
const DFA_SIZE_LIMIT: usize = 256 << 20;

#[derive(Debug, Clone)]
pub(crate) struct PatternSet {
    /// `None` when some pattern needs Unicode mode.
    ascii: Option<bytes::RegexSet>,
    unicode: RegexSet,
}

impl PatternSet {
    /// `None` when the set does not compile (its program past the size
    /// limit): the caller then tries each regex on its own.
    pub(crate) fn new(patterns: &[String]) -> Option<Self> {
        let ascii = bytes::RegexSetBuilder::new(patterns)
            .unicode(false)
            .dfa_size_limit(DFA_SIZE_LIMIT)
            .build()
            .ok();
        let unicode = RegexSetBuilder::new(patterns)
            .dfa_size_limit(DFA_SIZE_LIMIT)
            .build()
            .ok()?;
        Some(PatternSet { ascii, unicode })
    }

    /// Which patterns match `text`, as bits (at most 64 patterns).
    pub(crate) fn hits(&self, text: &str) -> u64 {
        let fold = |acc: u64, at: usize| acc | (1 << at);
        match &self.ascii {
            Some(ascii) if text.is_ascii() => ascii.matches(text.as_bytes()).iter().fold(0, fold),
            _ => self.unicode.matches(text).iter().fold(0, fold),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(patterns: &[&str]) -> PatternSet {
        PatternSet::new(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>())
            .expect("compiles")
    }

    #[test]
    fn ascii_and_unicode_texts_match_as_the_unicode_patterns_do() {
        let patterns = [
            r"(?i)\bdatabase\s+error\b",
            r"\w+@\w+",
            r"(?i)^token (?:created|issued)\b",
            r"[^\n]{0,3}x",
            r"\d{3}",
        ];
        let s = set(&patterns);
        let texts = [
            "Database   Error in pool",
            "DATABASE ERROR",
            "databaseerror",
            "user@example",
            "Token created for",
            "tokens created",
            "abx",
            "no digits 12",
            "code 503",
            // Not ASCII: the Unicode build answers.
            "databaseé error",
            "é database error",
            "ünï@cödé",
            "TOKEN CREATED ✓",
            "code ٣٣٣",
            "ſtrange K",
        ];
        for text in texts {
            let want = patterns
                .iter()
                .enumerate()
                .filter(|(_, p)| regex::Regex::new(p).expect("valid").is_match(text))
                .fold(0u64, |acc, (at, _)| acc | (1 << at));
            assert_eq!(s.hits(text), want, "{text:?}");
        }
        assert!(s.ascii.is_some());
    }

    #[test]
    fn a_set_too_big_in_unicode_mode_is_refused_even_if_ascii_mode_fits() {
        assert!(PatternSet::new(&[r"(?:\w{100}){100}".to_string()]).is_none());
    }

    #[test]
    fn a_unicode_only_pattern_uses_the_unicode_build_for_every_text() {
        let s = set(&[r"\p{Greek}+", "plain"]);
        assert!(s.ascii.is_none());
        assert_eq!(s.hits("αβγ plain"), 0b11);
        assert_eq!(s.hits("plain"), 0b10);
    }

    #[test]
    fn case_folding_beyond_ascii_is_kept_for_text_that_is_not_ascii() {
        // (?i)k matches the Kelvin sign in Unicode mode.
        let s = set(&["(?i)kelvin"]);
        assert_eq!(s.hits("\u{212A}elvin"), 1);
        assert_eq!(s.hits("KELVIN"), 1);
    }
}
