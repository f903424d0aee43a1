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
//! Both are compiled at load, although most runs never need the Unicode one:
//! a pattern can fit the size limit in ASCII mode and not in Unicode mode
//! (`(?:\w{100}){100}`), and that must be an error when the rule file loads,
//! not a rule that silently stops matching at the first accented name.

use std::sync::Arc;

use regex_automata::nfa::thompson::{self, NFA, WhichCaptures, pikevm::PikeVM};
use regex_automata::util::{pool::Pool, syntax};
use regex_automata::{Input, MatchKind, hybrid};
use regex_syntax::hir::Hir;

/// The lazy DFA's cache may grow to 256 MiB: with the ~36 patterns of the
/// default rules a 32 MiB cache was cleared over and over (replay 0.74 s →
/// 0.63 s on the bench corpus); it is only filled as far as the texts seen
/// need.
const DFA_SIZE_LIMIT: usize = 256 << 20;

/// The regex crate's limit on a compiled program, so a set compiles here
/// exactly when `regex::RegexSet` would.
const NFA_SIZE_LIMIT: usize = 10 << 20;

/// Why not `regex::RegexSet`: its builder prepares what a regex's `find`
/// needs (a reverse NFA, literal prefixes for a prefilter), which a set
/// asked only *which* patterns match never uses; building the two sets that way was most of replay's start-up
/// (257 M of 347 M instructions on an empty file). Here each mode compiles
/// the forward NFA once, for the lazy DFA and, should the DFA give up (a
/// Unicode word boundary on non-ASCII text, a thrashing cache), for the
/// PikeVM, as `regex::RegexSet` falls back to.
///
/// The search state (the lazy DFA's states, built as texts need them) is
/// kept in a pool, as regex keeps its own: it outlives each batch of
/// records, and the thread that made the set takes its state without a
/// lock. A clone has its own pool (see its `Clone` impl).
#[derive(Debug)]
pub(crate) struct PatternSet {
    modes: Arc<Modes>,
    caches: Pool<PatternCache>,
}

#[derive(Debug)]
struct Modes {
    /// `None` when some pattern needs Unicode mode.
    ascii: Option<Engines>,
    unicode: Engines,
    len: usize,
}

/// The compiled engines are shared; the search state is not: threads
/// sharing one pool hand the state around and, under contention, make
/// fresh ones that start cold (each replay worker clones the rules).
impl Clone for PatternSet {
    fn clone(&self) -> Self {
        PatternSet {
            modes: Arc::clone(&self.modes),
            caches: Pool::new(PatternCache::default),
        }
    }
}

/// How the set parses its patterns: in Unicode mode, as
/// `regex_syntax::Parser::new()` does (a test holds the two together).
fn syntax_config(unicode: bool) -> syntax::Config {
    syntax::Config::new().unicode(unicode).utf8(unicode)
}

#[derive(Debug, Clone)]
struct Engines {
    dfa: Option<hybrid::dfa::DFA>,
    pikevm: PikeVM,
}

/// The search state of a [`PatternSet`], made for each mode when first
/// needed.
#[derive(Debug, Clone, Default)]
struct PatternCache {
    ascii: Option<Caches>,
    unicode: Option<Caches>,
}

#[derive(Debug, Clone)]
struct Caches {
    dfa: Option<hybrid::dfa::Cache>,
    pikevm: regex_automata::nfa::thompson::pikevm::Cache,
    hits: regex_automata::PatternSet,
}

impl Engines {
    /// `parsed`: the patterns already parsed in this mode.
    fn new(patterns: &[String], unicode: bool, parsed: Option<&[Arc<Hir>]>) -> Option<Self> {
        let mut compiler = thompson::Compiler::new();
        compiler.syntax(syntax_config(unicode)).configure(
            NFA::config()
                .utf8(unicode)
                .which_captures(WhichCaptures::None)
                .nfa_size_limit(Some(NFA_SIZE_LIMIT))
                .shrink(false),
        );
        let nfa = match parsed {
            Some(hirs) if hirs.len() == patterns.len() => compiler.build_many_from_hir(hirs),
            _ => compiler.build_many(patterns),
        }
        .ok()?;
        let pikevm = PikeVM::builder()
            .configure(PikeVM::config().match_kind(MatchKind::All))
            .build_from_nfa(nfa.clone())
            .ok()?;
        // The settings regex's own lazy DFA runs with: it gives up rather
        // than rebuild states forever when the cache keeps being cleared.
        let dfa = hybrid::dfa::DFA::builder()
            .configure(
                hybrid::dfa::DFA::config()
                    .match_kind(MatchKind::All)
                    .unicode_word_boundary(true)
                    .cache_capacity(DFA_SIZE_LIMIT)
                    .skip_cache_capacity_check(false)
                    .minimum_cache_clear_count(Some(3))
                    .minimum_bytes_per_state(Some(10)),
            )
            .build_from_nfa(nfa)
            .ok();
        Some(Engines { dfa, pikevm })
    }

    fn caches(&self) -> Caches {
        Caches {
            dfa: self.dfa.as_ref().map(hybrid::dfa::DFA::create_cache),
            pikevm: self.pikevm.create_cache(),
            hits: regex_automata::PatternSet::new(self.pikevm.pattern_len()),
        }
    }

    fn hits(&self, text: &[u8], caches: &mut Caches) -> u64 {
        let input = Input::new(text);
        caches.hits.clear();
        let by_dfa = match (&self.dfa, &mut caches.dfa) {
            (Some(dfa), Some(cache)) => dfa
                .try_which_overlapping_matches(cache, &input, &mut caches.hits)
                .is_ok(),
            _ => false,
        };
        if !by_dfa {
            caches.hits.clear();
            self.pikevm
                .which_overlapping_matches(&mut caches.pikevm, &input, &mut caches.hits);
        }
        caches
            .hits
            .iter()
            .fold(0, |acc, at| acc | (1 << at.as_usize()))
    }
}

impl PatternSet {
    /// `None` when the set does not compile (its program past the size
    /// limit) or holds more than 64 patterns (the hits are a `u64`): the
    /// caller then tries each regex on its own.
    ///
    /// `unicode_parsed`, when given, is each pattern as
    /// `regex_syntax::Parser::new()` parses it (Unicode mode, the
    /// defaults): what this set would parse, so it is not parsed twice.
    pub(crate) fn new(patterns: &[String], unicode_parsed: Option<&[Arc<Hir>]>) -> Option<Self> {
        if patterns.len() > 64 {
            return None;
        }
        let ascii = Engines::new(patterns, false, None);
        let unicode = Engines::new(patterns, true, unicode_parsed)?;
        Some(PatternSet {
            modes: Arc::new(Modes {
                ascii,
                unicode,
                len: patterns.len(),
            }),
            caches: Pool::new(PatternCache::default),
        })
    }

    /// Which patterns match `text`, as bits (at most 64 patterns).
    pub(crate) fn hits(&self, text: &str) -> u64 {
        let modes = &*self.modes;
        if modes.len == 0 {
            return 0;
        }
        let mut cache = self.caches.get();
        match &modes.ascii {
            Some(ascii) if text.is_ascii() => {
                let caches = cache.ascii.get_or_insert_with(|| ascii.caches());
                ascii.hits(text.as_bytes(), caches)
            }
            _ => {
                let caches = cache.unicode.get_or_insert_with(|| modes.unicode.caches());
                modes.unicode.hits(text.as_bytes(), caches)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(patterns: &[&str]) -> PatternSet {
        PatternSet::new(
            &patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            None,
        )
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
        assert!(s.modes.ascii.is_some());
    }

    #[test]
    fn a_set_too_big_in_unicode_mode_is_refused_even_if_ascii_mode_fits() {
        assert!(PatternSet::new(&[r"(?:\w{100}){100}".to_string()], None).is_none());
    }

    #[test]
    fn a_unicode_only_pattern_uses_the_unicode_build_for_every_text() {
        let s = set(&[r"\p{Greek}+", "plain"]);
        assert!(s.modes.ascii.is_none());
        assert_eq!(s.hits("αβγ plain"), 0b11);
        assert_eq!(s.hits("plain"), 0b10);
    }

    #[test]
    fn the_search_state_outlives_each_search_and_a_clone_has_its_own() {
        // Made per search (or per batch of records), the lazy DFA would
        // start cold every time: the pipeline bench lost a quarter of its
        // throughput that way.
        let s = set(&[r"(?i)\btoken\b"]);
        assert_eq!(s.hits("token expired"), 1);
        assert!(s.caches.get().ascii.is_some());
        let clone = s.clone();
        assert!(clone.caches.get().ascii.is_none());
        assert_eq!(clone.hits("no match"), 0);
        assert!(Arc::ptr_eq(&s.modes, &clone.modes));
    }

    #[test]
    fn patterns_parsed_by_validation_are_parsed_as_the_set_parses_them() {
        // The rule set hands the set the parser's Hirs in place of the
        // patterns: the two parsers must agree (flags, limits, Unicode).
        let rules = crate::domain::rules::RuleSet::default_rules().expect("default rules");
        let mut checked = 0;
        for re in rules.regex_patterns() {
            let validated = regex_syntax::Parser::new().parse(re).expect("parses");
            let set =
                regex_automata::util::syntax::parse_with(re, &syntax_config(true)).expect("parses");
            assert_eq!(validated, set, "{re}");
            checked += 1;
        }
        assert!(checked > 30, "{checked}");
        // And a set built from them answers as one built from the text.
        let patterns = [r"(?i)\bdatabase\s+error\b", r"\w+@\w+", r"(?x) a \s b # c"];
        let texts: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        let hirs: Vec<Arc<Hir>> = patterns
            .iter()
            .map(|p| Arc::new(regex_syntax::Parser::new().parse(p).expect("parses")))
            .collect();
        let parsed = PatternSet::new(&texts, Some(&hirs)).expect("compiles");
        let fresh = PatternSet::new(&texts, None).expect("compiles");
        for text in [
            "Database  error",
            "é database error",
            "ü@é",
            "a b",
            "ab",
            "x",
        ] {
            assert_eq!(parsed.hits(text), fresh.hits(text), "{text:?}");
        }
    }

    #[test]
    fn case_folding_beyond_ascii_is_kept_for_text_that_is_not_ascii() {
        // (?i)k matches the Kelvin sign in Unicode mode.
        let s = set(&["(?i)kelvin"]);
        assert_eq!(s.hits("\u{212A}elvin"), 1);
        assert_eq!(s.hits("KELVIN"), 1);
    }
}
