//! The redactor every piece of log data passes through before it leaves the
//! pipeline: metric labels, stored sample lines, alert signals and the
//! function's own log lines.
//!
//! Two jobs, one scan:
//!
//! - **Masking** (no key needed, also used by [`crate::domain::scrub`]):
//!   JWTs, `Bearer`/`Basic`/`Authorization` credentials, values of
//!   secret-named keys in `key=value`, `key: value` and JSON/Python-dict forms,
//!   URL userinfo, credential query parameters (`code`, `sig`, …), cookie
//!   values, AWS access key ids, Entra client secrets, GitHub/Slack tokens,
//!   Slack webhook paths and private-key PEM blocks become `***`. The key
//!   name (`password=***`), the auth scheme (`Bearer ***`), cookie names and
//!   the URL host stay, so the line stays readable.
//! - **Pseudonymization** (keyed): emails and IPv4/IPv6 addresses become
//!   `email:<12 hex>` / `ip:<12 hex>`, the first 48 bits of
//!   `HMAC-SHA256(key, canonical value)`. Stable for one key, so per-principal
//!   alert windows keep working; meaningless without the key.
//!
//! All patterns live in one table ([`branch_patterns`]). Their alternation
//! finds the next match with one DFA scan and no captures (on a clean line
//! that scan is all the work, and nothing is allocated); the small anchored
//! regex of each branch then tells which branch matched and gives its groups.
//! Code that knows the branch handles the match, which lets it look at the
//! neighbours (no look-around in `regex`), reject a candidate (a version
//! string, an `std::io` path) and mask a value whose extent a regex cannot
//! express (quoted strings with escapes, cookie lists, PEM bodies).
//!
//! Cost, measured on a loaded 2-vCPU machine (release): ~200–350 ns for a
//! clean 140–240 byte line, ~1.0–1.4 µs for a line with an address or a
//! secret (one HMAC and a verification scan). Every repetition that can run
//! on without ending a match is bounded, so the cost of adversarial input
//! stays proportional to its length (worst seen: 0.2 s for 240 KB of `1::`).

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{LazyLock, OnceLock};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use regex::{Captures, Regex, RegexBuilder};
use serde_json::Value;
use sha2::Sha256;

/// What a masked secret becomes.
pub const MASK: &str = "***";

/// Hex characters of the HMAC kept in a pseudonym (48 bits).
pub const PSEUDONYM_HEX_CHARS: usize = 12;

/// A redaction pass can expose a neighbour to another pattern (a masked JWT
/// right before `::1`); passes repeat until nothing changes, at most this
/// many times, so redacting twice gives what redacting once gives.
const MAX_PASSES: usize = 4;

/// Secret-named keys (case-insensitive). A key *ending* in one of these is
/// secret too (`db_password`, `AZURE_CLIENT_SECRET`, `x-api-key`,
/// `SessionToken`, `PHPSESSID`); `token_type` or `password_policy` are not.
/// `auth` only as a whole word part (`auth`, `basic_auth`, `x-auth`), so
/// `oauth` is not.
const SECRET_KEY: &str = concat!(
    r"[a-z0-9_.-]{0,64}?(?:passwords?|passwd|passphrase|pwd|secrets?|tokens?|credentials?",
    r"|cookies?|assertion|code[_-]?verifier|authorization|sess(?:ion)?[_-]?id|session",
    r"|(?:api|secret|private|signing|encryption|access|account|client|master|routing)[_-]?keys?)",
    r"|(?:[a-z0-9_.-]{0,64}[_.-])?auth",
);

/// Query parameters that are credentials only in a URL query / form body
/// (`?code=` is an OAuth authorization code; a `code=500` elsewhere is not).
/// `state` is deliberately absent: it is a CSRF nonce, not a credential, and
/// BlindspotX's "Invalid state parameter" messages need it.
const QUERY_KEY: &str = "code|sig|signature|x-amz-signature|x-amz-credential";

/// An email domain: up to 8 labels of at most 63 characters and a
/// 2–24 letter TLD. Every repetition in the patterns that can run without
/// ending a match is bounded like this, so a long run of such characters
/// costs O(run), not O(run²).
const DOMAIN: &str = r"[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}";

const OCTET: &str = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";

/// What the scan finds. Listed in priority order: where two could start at
/// the same offset, the earlier wins (`1.2.3.4@example.com` is an email).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    PrivateKey,
    Jwt,
    UrlUserinfo,
    SlackWebhook,
    AwsKeyId,
    VendorToken,
    EntraSecret,
    SecretKeyValue,
    QueryCredential,
    Bearer,
    Basic,
    Email,
    EmailEncoded,
    Ipv6,
    Ipv4,
}

impl Kind {
    /// Whether a match of this kind can start with `b` (skips hopeless
    /// branches before running their regex).
    fn may_start_with(self, b: u8) -> bool {
        match self {
            Kind::PrivateKey => b == b'-',
            Kind::Jwt => b == b'e',
            Kind::UrlUserinfo => b.is_ascii_alphabetic(),
            Kind::SlackWebhook => b == b'h',
            Kind::AwsKeyId => b == b'A',
            Kind::VendorToken => b == b'g' || b == b'x',
            Kind::EntraSecret => {
                b.is_ascii_alphanumeric() || matches!(b, b'_' | b'~' | b'.' | b'-')
            }
            Kind::SecretKeyValue => b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'),
            Kind::QueryCredential => b == b'?' || b == b'&',
            Kind::Bearer | Kind::Basic => b == b'b' || b == b'B',
            Kind::Email | Kind::EmailEncoded => {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
            }
            Kind::Ipv6 => b.is_ascii_hexdigit() || b == b':',
            Kind::Ipv4 => b.is_ascii_digit(),
        }
    }
}

/// (kind, needs an ASCII word boundary before it, pattern).
fn branch_patterns() -> [(Kind, bool, String); 15] {
    [
        (
            Kind::PrivateKey,
            false,
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z0-9 ]*-----".to_owned(),
        ),
        (
            Kind::Jwt,
            true,
            r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)?"
                .to_owned(),
        ),
        // Greedy: with an unescaped '@' in the password the last one ends the userinfo.
        (
            Kind::UrlUserinfo,
            true,
            r#"[A-Za-z][A-Za-z0-9+.-]{0,31}://(?P<userinfo>[^/\s?#"'<>]{0,256})@"#.to_owned(),
        ),
        (
            Kind::SlackWebhook,
            false,
            r"hooks\.slack\.com/services/(?P<slackpath>[A-Za-z0-9/]+)".to_owned(),
        ),
        (
            Kind::AwsKeyId,
            true,
            r"(?:AKIA|ASIA)[A-Z0-9]{16}(?-u:\b)".to_owned(),
        ),
        (
            Kind::VendorToken,
            true,
            r"gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}|xox[abposr]-[A-Za-z0-9-]{10,}"
                .to_owned(),
        ),
        // Entra ID (Azure AD) client secret: 3 chars, a digit, "Q~", 31-34 chars.
        (
            Kind::EntraSecret,
            false,
            r"[A-Za-z0-9_~.-]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}".to_owned(),
        ),
        (
            Kind::SecretKeyValue,
            true,
            format!(
                r#"(?P<key>(?i-u:{SECRET_KEY}))(?P<kq>\\?["'])?[ \t]*[:=][ \t]*(?P<vq>\\?["'])?"#
            ),
        ),
        (
            Kind::QueryCredential,
            false,
            format!(r"[?&](?i-u:{QUERY_KEY})="),
        ),
        (
            Kind::Bearer,
            true,
            r"(?i-u:bearer)[ \t]+(?P<bearer>[A-Za-z0-9._~+/-]+=*)".to_owned(),
        ),
        (
            Kind::Basic,
            true,
            r"(?i-u:basic)[ \t]+(?P<basic>[A-Za-z0-9+/]+={0,2})".to_owned(),
        ),
        (
            Kind::Email,
            false,
            format!(r"[A-Za-z0-9._%+-]{{1,64}}@{DOMAIN}"),
        ),
        (
            Kind::EmailEncoded,
            false,
            format!(r"[A-Za-z0-9._+-]{{1,64}}%40{DOMAIN}"),
        ),
        // Candidates only; `std::net` decides. Needs "::" or all 8 groups, so
        // times (`10:30:00.123`) and MAC addresses are never candidates.
        // Bounded, so rejecting a candidate costs O(1), not O(line).
        (
            Kind::Ipv6,
            false,
            concat!(
                r"[0-9A-Fa-f:]{0,39}::[0-9A-Fa-f:.]{0,39}",
                r"|(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}",
                r"|(?:[0-9A-Fa-f]{1,4}:){6}[0-9]{1,3}(?:\.[0-9]{1,3}){3}"
            )
            .to_owned(),
        ),
        (
            Kind::Ipv4,
            true,
            format!(r"{OCTET}(?:\.{OCTET}){{3}}(?-u:\b)"),
        ),
    ]
}

struct Branch {
    kind: Kind,
    boundary: bool,
    /// The branch alone, anchored: identifies a match of [`Patterns::any`]
    /// and gives its groups at the cost of a small automaton. Compiled at
    /// its first use: most text never matches most branches, and compiling
    /// them all took as long as compiling [`Patterns::any`].
    anchored: OnceLock<Regex>,
    source: String,
}

impl Branch {
    #[allow(clippy::expect_used)] // constant patterns, compiled by every test below
    fn anchored(&self) -> &Regex {
        self.anchored
            .get_or_init(|| Regex::new(&self.source).expect("redaction branch compiles"))
    }
}

struct Patterns {
    /// Every branch in one alternation: one DFA scan finds the next match
    /// (and, on clean text, that there is none) without captures.
    any: Regex,
    branches: Vec<Branch>,
}

#[allow(clippy::expect_used)] // constant patterns, compiled by every test below
static PATTERNS: LazyLock<Patterns> = LazyLock::new(|| {
    let sources = branch_patterns();
    let any = sources
        .iter()
        .map(|(_, boundary, p)| {
            let b = if *boundary { r"(?-u:\b)" } else { "" };
            format!("(?:{b}(?:{p}))")
        })
        .collect::<Vec<_>>()
        .join("|");
    let branches = sources
        .into_iter()
        .map(|(kind, boundary, p)| Branch {
            kind,
            boundary,
            anchored: OnceLock::new(),
            source: format!("^(?:{p})"),
        })
        .collect();
    Patterns {
        // The union of every branch outgrows the lazy DFA's default 2 MB
        // cache on varied input and is then rebuilt over and over (26 µs per
        // line instead of about 1 µs); 8 MB holds it.
        any: RegexBuilder::new(&any)
            .dfa_size_limit(8 << 20)
            .build()
            .expect("redaction pattern compiles"),
        branches,
    }
});

#[allow(clippy::expect_used)] // constant pattern, covered by the JSON tests
static SECRET_KEY_EXACT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!("^(?i-u:{SECRET_KEY})$")).expect("secret key pattern compiles")
});

/// Compiles the redaction patterns now instead of at the first redaction
/// (about 10 ms): a caller with a core to spare (replay, while it loads the
/// rules) runs this on a thread of its own, so no worker waits for it.
pub fn prepare() {
    LazyLock::force(&PATTERNS);
    LazyLock::force(&SECRET_KEY_EXACT);
}

/// What a pseudonym stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PseudonymKind {
    /// An email address; lower-cased before hashing.
    Email,
    /// An IPv4 or IPv6 address; canonical form before hashing
    /// (`2001:DB8:0::1` = `2001:db8::1`, `::ffff:192.0.2.1` = `192.0.2.1`).
    Ip,
}

impl PseudonymKind {
    /// `email:` or `ip:`.
    pub fn prefix(self) -> &'static str {
        match self {
            PseudonymKind::Email => "email:",
            PseudonymKind::Ip => "ip:",
        }
    }

    /// Whether `value` already is a pseudonym of this kind.
    pub fn is_pseudonym(self, value: &str) -> bool {
        value.strip_prefix(self.prefix()).is_some_and(|hex| {
            hex.len() == PSEUDONYM_HEX_CHARS
                && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
    }
}

/// A rejected redactor configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedactError {
    #[error(
        "pseudonymization key is {len} bytes; at least {min} are required",
        min = Redactor::MIN_KEY_BYTES
    )]
    KeyTooShort { len: usize },
}

/// Masks secrets and pseudonymizes emails and IPs with a keyed HMAC.
#[derive(Clone)]
pub struct Redactor {
    /// HMAC state with the key already absorbed; cloned per pseudonym.
    mac: Hmac<Sha256>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Redactor { key: *** }")
    }
}

impl Redactor {
    /// Shortest accepted pseudonymization key: a short key could be found by
    /// hashing guessed emails/IPs.
    pub const MIN_KEY_BYTES: usize = 16;

    /// `key` is the configured pseudonymization secret (its bytes).
    pub fn new(key: &[u8]) -> Result<Self, RedactError> {
        if key.len() < Self::MIN_KEY_BYTES {
            return Err(RedactError::KeyTooShort { len: key.len() });
        }
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .map_err(|_| RedactError::KeyTooShort { len: key.len() })?;
        Ok(Redactor { mac })
    }

    /// `text` with secrets masked and emails/IPs pseudonymized; borrowed
    /// (no allocation) when there is nothing to change, the common case.
    pub fn redact_text<'t>(&self, text: &'t str) -> Cow<'t, str> {
        to_fixpoint(text, Some(self))
    }

    /// Redacts a JSON value in place: values under secret-named keys become
    /// `"***"` whatever their type; values under IP/email-named keys
    /// (`ip_address`, `client_ip`, `email`, `user_email`, …) are
    /// pseudonymized even when they do not look like an address; every other
    /// string (object keys included) goes through [`Self::redact_text`].
    pub fn redact_json(&self, value: &mut Value) {
        self.walk(value, None);
    }

    /// The pseudonym of one value, for callers that extract an IP or email
    /// field themselves (the alert engine's grouping key). A value that
    /// already is a pseudonym of `kind` is returned unchanged, so fields
    /// redacted earlier in the pipeline keep their pseudonym.
    pub fn pseudonym(&self, kind: PseudonymKind, value: &str) -> String {
        let value = value.trim();
        if kind.is_pseudonym(value) {
            return value.to_owned();
        }
        let canonical = match kind {
            PseudonymKind::Email => value.to_lowercase(),
            PseudonymKind::Ip => canonical_ip(value),
        };
        let mut mac = self.mac.clone();
        mac.update(canonical.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(kind.prefix().len() + PSEUDONYM_HEX_CHARS);
        out.push_str(kind.prefix());
        for byte in digest.iter().take(PSEUDONYM_HEX_CHARS / 2) {
            out.push(hex_digit(byte >> 4));
            out.push(hex_digit(byte & 0x0f));
        }
        out
    }

    fn walk(&self, value: &mut Value, field: Option<PseudonymKind>) {
        match value {
            Value::String(s) => {
                if let Some(kind) = field {
                    self.pseudonymize_field(s, kind);
                } else if let Cow::Owned(redacted) = self.redact_text(s) {
                    *s = redacted;
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.walk(item, field);
                }
            }
            Value::Object(map) => {
                for (key, item) in map.iter_mut() {
                    if is_secret_key(key) {
                        *item = Value::String(MASK.to_owned());
                    } else {
                        self.walk(item, pseudonym_key(key));
                    }
                }
                // Keys can hold data too (`{"ana@example.com": 3}`); rebuild
                // the map only in the rare case one changes.
                if map
                    .keys()
                    .any(|k| matches!(self.redact_text(k), Cow::Owned(_)))
                {
                    let old = std::mem::take(map);
                    for (key, item) in old {
                        map.insert(self.redact_text(&key).into_owned(), item);
                    }
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// A string under an IP/email key: addresses inside are pseudonymized
    /// (`"203.0.113.7, 10.0.0.1"` → two pseudonyms); a value with none
    /// (`"unknown"`, a bare user name) becomes one pseudonym as a whole,
    /// unless it is already redaction output (then it stays, so redacting a
    /// record twice changes nothing).
    fn pseudonymize_field(&self, s: &mut String, kind: PseudonymKind) {
        if s.trim().is_empty() {
            return;
        }
        if kind == PseudonymKind::Ip && s.trim().parse::<IpAddr>().is_ok() {
            *s = self.pseudonym(kind, s); // the common case, without a scan
            return;
        }
        match self.redact_text(s) {
            Cow::Owned(redacted) => *s = redacted,
            Cow::Borrowed(_) if !is_redaction_output(s) => *s = self.pseudonym(kind, s),
            Cow::Borrowed(_) => {}
        }
    }
}

/// Masks secret shapes only (no pseudonymization, no key): the shared
/// masking of [`Redactor::redact_text`] and [`crate::domain::scrub::Scrubber`].
pub fn mask_secrets(text: &str) -> Cow<'_, str> {
    to_fixpoint(text, None)
}

fn to_fixpoint<'t>(text: &'t str, redactor: Option<&Redactor>) -> Cow<'t, str> {
    let Cow::Owned(mut current) = redact_pass(text, redactor) else {
        return Cow::Borrowed(text);
    };
    for _ in 1..MAX_PASSES {
        match redact_pass(&current, redactor) {
            Cow::Borrowed(_) => break,
            Cow::Owned(next) => current = next,
        }
    }
    Cow::Owned(current)
}

/// The output of one pass, allocated on the first actual change.
struct Edits<'t> {
    src: &'t str,
    out: String,
    copied: usize,
    changed: bool,
}

impl<'t> Edits<'t> {
    fn new(src: &'t str) -> Self {
        Edits {
            src,
            out: String::new(),
            copied: 0,
            changed: false,
        }
    }

    /// Replaces `src[start..end]`; edits come in increasing order. Replacing
    /// a span by what it already is (`***` by `***`) is no change.
    fn replace(&mut self, start: usize, end: usize, with: &str) {
        if start < self.copied || end < start || self.src.get(start..end) == Some(with) {
            return;
        }
        if !self.changed {
            self.out.reserve(self.src.len() + 16);
            self.changed = true;
        }
        self.out.push_str(&self.src[self.copied..start]);
        self.out.push_str(with);
        self.copied = end;
    }

    fn finish(mut self) -> Cow<'t, str> {
        if !self.changed {
            return Cow::Borrowed(self.src);
        }
        self.out.push_str(&self.src[self.copied..]);
        Cow::Owned(self.out)
    }
}

/// What a branch handler decided.
enum Step {
    /// Handled (changed or not); scanning resumes at this byte offset.
    ResumeAt(usize),
    /// Not what it looked like (a version string, `std::io`): scanning
    /// resumes one character after the candidate's start.
    Reject,
}

/// One match of [`Patterns::any`], identified.
struct Hit<'t> {
    kind: Kind,
    start: usize,
    end: usize,
    /// Groups of the branch, on `text[start..end]`; only for branches with groups.
    caps: Option<Captures<'t>>,
}

impl Hit<'_> {
    /// A group's absolute byte range.
    fn group(&self, name: &str) -> Option<(usize, usize)> {
        let m = self.caps.as_ref()?.name(name)?;
        Some((self.start + m.start(), self.start + m.end()))
    }
}

fn identify<'t>(text: &'t str, start: usize, end: usize) -> Option<Hit<'t>> {
    let span = &text[start..end];
    let boundary_before = {
        let word = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
        word(text.as_bytes().get(start.wrapping_sub(1))) != word(text.as_bytes().get(start))
    };
    // The first branch (in priority order) matching at `start` is the one the
    // alternation chose; its match is exactly `span`.
    let first = *span.as_bytes().first()?;
    let branch = PATTERNS
        .branches
        .iter()
        .filter(|b| (boundary_before || !b.boundary) && b.kind.may_start_with(first))
        .find(|b| b.anchored().is_match(span))?;
    let caps = match branch.kind {
        Kind::UrlUserinfo
        | Kind::SlackWebhook
        | Kind::SecretKeyValue
        | Kind::Bearer
        | Kind::Basic => Some(branch.anchored().captures(span)?),
        _ => None,
    };
    Some(Hit {
        kind: branch.kind,
        start,
        end,
        caps,
    })
}

fn redact_pass<'t>(text: &'t str, redactor: Option<&Redactor>) -> Cow<'t, str> {
    // The first search doubles as the prefilter: one DFA scan, no captures,
    // no allocation. Clean lines (timestamps, versions, `status=200`) end here.
    let Some(mut found) = PATTERNS.any.find(text) else {
        return Cow::Borrowed(text);
    };
    let mut edits = Edits::new(text);
    loop {
        let (start, end) = (found.start(), found.end());
        let hit = identify(text, start, end);
        // The branches are the alternation's parts; the property tests hold
        // this for arbitrary text.
        debug_assert!(hit.is_some(), "unidentified match {:?}", &text[start..end]);
        let step = match hit {
            Some(hit) => handle(&hit, text, redactor, &mut edits),
            None => Step::Reject,
        };
        let pos = match step {
            Step::ResumeAt(resume) if resume > start => resume.max(end),
            Step::ResumeAt(_) | Step::Reject => next_char(text, start),
        };
        if pos >= text.len() {
            break;
        }
        match PATTERNS.any.find_at(text, pos) {
            Some(next) => found = next,
            None => break,
        }
    }
    edits.finish()
}

fn handle(hit: &Hit<'_>, text: &str, redactor: Option<&Redactor>, edits: &mut Edits<'_>) -> Step {
    let (start, end) = (hit.start, hit.end);
    match hit.kind {
        Kind::PrivateKey => pem(text, end, edits),
        Kind::Jwt | Kind::VendorToken | Kind::EntraSecret => {
            edits.replace(start, end, MASK);
            Step::ResumeAt(end)
        }
        Kind::UrlUserinfo => {
            if let Some((s, e)) = hit.group("userinfo").filter(|(s, e)| e > s) {
                edits.replace(s, e, MASK);
            }
            // Resume after '@': the host may be an IP to pseudonymize.
            Step::ResumeAt(end)
        }
        Kind::SlackWebhook => {
            if let Some((s, e)) = hit.group("slackpath") {
                edits.replace(s, e, MASK);
            }
            Step::ResumeAt(end)
        }
        Kind::AwsKeyId => {
            // Keep AKIA (long-term) / ASIA (temporary): useful, not secret.
            edits.replace(start + 4, end, MASK);
            Step::ResumeAt(end)
        }
        Kind::SecretKeyValue => key_value(hit, text, edits),
        Kind::QueryCredential => {
            let value_end = scan_until(text, end, |c| {
                c.is_whitespace() || matches!(c, '&' | '#' | '"' | '\'' | '<' | '>' | '\\')
            });
            if value_end > end {
                edits.replace(end, value_end, MASK);
            }
            Step::ResumeAt(value_end)
        }
        Kind::Bearer | Kind::Basic => {
            let group = if hit.kind == Kind::Basic {
                "basic"
            } else {
                "bearer"
            };
            let Some((s, e)) = hit.group(group) else {
                return Step::Reject;
            };
            if hit.kind == Kind::Basic && !is_basic_credential(&text[s..e]) {
                return Step::Reject; // "basic auth failed" is prose
            }
            edits.replace(s, e, MASK);
            Step::ResumeAt(e)
        }
        Kind::Email | Kind::EmailEncoded => {
            if let Some(r) = redactor {
                let address = text[start..end].replacen("%40", "@", 1);
                edits.replace(start, end, &r.pseudonym(PseudonymKind::Email, &address));
            }
            Step::ResumeAt(end)
        }
        Kind::Ipv6 => ipv6(text, start, end, redactor, edits),
        Kind::Ipv4 => ipv4(text, start, end, redactor, edits),
    }
}

/// A secret-named key and its separator were matched; mask the value.
fn key_value(hit: &Hit<'_>, text: &str, edits: &mut Edits<'_>) -> Step {
    let start = hit.end;
    let Some((key_start, key_end)) = hit.group("key") else {
        return Step::Reject;
    };
    let key = &text[key_start..key_end];
    let key = key.to_ascii_lowercase();
    let authorization = key.ends_with("authorization");
    if let Some((vq_start, vq_end)) = hit.group("vq") {
        let (content_end, resume) = closing_quote(text, start, &text[vq_start..vq_end]);
        let content = &text[start..content_end];
        if !content.is_empty() {
            let masked = if authorization {
                mask_auth_quoted(content)
            } else {
                Cow::Borrowed(MASK)
            };
            edits.replace(start, content_end, &masked);
        }
        return Step::ResumeAt(resume);
    }
    let rest = &text[start..];
    match rest.chars().next() {
        // `token == x`, `auth::method`, a nested object/array: not a value.
        None | Some('=' | ':' | '{' | '[') => return Step::Reject,
        Some(c) if c.is_whitespace() => return Step::Reject,
        _ => {}
    }
    if authorization {
        return mask_auth_unquoted(text, start, edits);
    }
    if (key.ends_with("cookie") || key.ends_with("cookies"))
        && let Some(end) = mask_cookie_list(text, start, edits)
    {
        return Step::ResumeAt(end);
    }
    let end = scan_until(text, start, is_value_end);
    if end == start {
        return Step::Reject;
    }
    let value = &text[start..end];
    match hit.group("kq") {
        // A quoted key with an unquoted value is JSON / a Python dict
        // (`"token": 123`, `'password': None`): keep it one by quoting the mask.
        Some((kq_start, kq_end)) if value != MASK => {
            let q = &text[kq_start..kq_end];
            edits.replace(start, end, &format!("{q}{MASK}{q}"));
        }
        _ => edits.replace(start, end, MASK),
    }
    Step::ResumeAt(end)
}

fn is_value_end(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\'' | ',' | ';' | '&' | ')' | ']' | '}' | '<' | '>' | '\\'
        )
}

/// Where the quoted value starting at `start` ends: (end of content, resume
/// offset after the closing quote). Unterminated (a truncated event): the
/// value runs to the end of the line.
fn closing_quote(text: &str, start: usize, opening: &str) -> (usize, usize) {
    let bytes = text.as_bytes();
    let line_end = |from: usize| {
        text[from..]
            .find(['\n', '\r'])
            .map_or(text.len(), |i| from + i)
    };
    if opening.len() == 2 {
        // `\"value\"` inside an escaped JSON string: ends at the next `\"`.
        return match text[start..].find(opening) {
            Some(i) if !text[start..start + i].contains(['\n', '\r']) => {
                (start + i, start + i + opening.len())
            }
            _ => (line_end(start), line_end(start)),
        };
    }
    let quote = opening.as_bytes().first().copied().unwrap_or(b'"');
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'\n' | b'\r' => return (i, i),
            b if b == quote => return (i, i + 1),
            _ => i += 1,
        }
    }
    (text.len(), text.len())
}

const AUTH_SCHEMES: &[&str] = &[
    "bearer",
    "basic",
    "digest",
    "token",
    "negotiate",
    "ntlm",
    "hoba",
    "mutual",
    "dpop",
    "mac",
    "hmac",
    "apikey",
    "aws4-hmac-sha256",
    "sharedkey",
    "sharedaccesssignature",
];

fn is_auth_scheme(word: &str) -> bool {
    AUTH_SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(word))
}

/// `Bearer abc` → `Bearer ***`; no known scheme → `***`.
fn mask_auth_quoted(content: &str) -> Cow<'static, str> {
    let scheme_end = content.find(char::is_whitespace).unwrap_or(content.len());
    let rest = content[scheme_end..].trim_start();
    if is_auth_scheme(&content[..scheme_end]) && !rest.is_empty() {
        let kept = &content[..content.len() - rest.len()];
        Cow::Owned(format!("{kept}{MASK}"))
    } else {
        Cow::Borrowed(MASK)
    }
}

/// An unquoted `Authorization:` value: keep a known scheme, mask the
/// credential and, for parameter lists (`Credential=…, Signature=…`), every
/// comma-continued parameter.
fn mask_auth_unquoted(text: &str, start: usize, edits: &mut Edits<'_>) -> Step {
    let token_end = |from: usize| {
        scan_until(text, from, |c| {
            c.is_whitespace() || matches!(c, '"' | '\'' | '\\')
        })
    };
    let skip_blanks = |from: usize| scan_until(text, from, |c| c != ' ' && c != '\t');
    let first_end = token_end(start);
    if first_end == start {
        return Step::Reject;
    }
    let mut from = start;
    if is_auth_scheme(&text[start..first_end]) {
        let next = skip_blanks(first_end);
        if next == first_end || token_end(next) == next {
            return Step::ResumeAt(first_end); // a scheme alone: nothing secret
        }
        from = next;
    }
    let mut end = token_end(from);
    while text[from..end].ends_with(',') {
        let next = skip_blanks(end);
        let next_end = token_end(next);
        if next == end || next_end == next {
            break;
        }
        end = next_end;
    }
    edits.replace(from, end, MASK);
    Step::ResumeAt(end)
}

/// Cookie attributes: not secret, kept (`Path=/`, `Max-Age=3600`).
const COOKIE_ATTRIBUTES: &[&str] = &[
    "path", "domain", "expires", "max-age", "samesite", "priority", "version", "comment",
];

/// `Cookie: a=1; b=2` / `Set-Cookie: sid=abc; Path=/; HttpOnly`: mask each
/// cookie's value, keep names and attributes. `None` when the value is not a
/// `name=value` list (then it is masked as one token).
fn mask_cookie_list(text: &str, start: usize, edits: &mut Edits<'_>) -> Option<usize> {
    let name_end =
        |from: usize| scan_until(text, from, |c| c == '=' || c == ';' || is_value_end(c));
    let first = name_end(start);
    if first == start || !text[first..].starts_with('=') {
        return None;
    }
    let mut pos = start;
    loop {
        let end_of_name = name_end(pos);
        let name = &text[pos..end_of_name];
        let mut end = end_of_name;
        if text[end_of_name..].starts_with('=') {
            let value_start = end_of_name + 1;
            let value_end = if text[value_start..].starts_with('"') {
                text[value_start + 1..]
                    .find('"')
                    .map_or(value_start + 1, |i| value_start + 1 + i + 1)
            } else {
                scan_until(text, value_start, |c| {
                    c.is_whitespace() || matches!(c, ';' | '"' | '\'' | '\\')
                })
            };
            let attribute = COOKIE_ATTRIBUTES
                .iter()
                .any(|a| a.eq_ignore_ascii_case(name));
            if !attribute && value_end > value_start {
                edits.replace(value_start, value_end, MASK);
            }
            end = value_end;
        }
        if !text[end..].starts_with(';') {
            return Some(end);
        }
        let next = scan_until(text, end + 1, |c| c != ' ' && c != '\t');
        if name_end(next) == next {
            return Some(end + 1);
        }
        pos = next;
    }
}

/// A private key PEM block: keep the BEGIN/END lines, mask the body. A
/// truncated block (no END line) is masked to the end of the text.
fn pem(text: &str, body_start: usize, edits: &mut Edits<'_>) -> Step {
    let (body_end, resume) = match text[body_start..].find("-----END ") {
        Some(i) => {
            let marker = body_start + i;
            let after = marker + "-----END ".len();
            let end = text[after..]
                .find("-----")
                .map_or(text.len(), |j| after + j + "-----".len());
            (marker, end)
        }
        None => (text.len(), text.len()),
    };
    if body_end > body_start {
        edits.replace(body_start, body_end, MASK);
    }
    Step::ResumeAt(resume)
}

/// `Basic <base64>` credentials decode to `user:password`; prose does not.
fn is_basic_credential(token: &str) -> bool {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine
        .decode(token)
        .is_ok_and(|bytes| bytes.contains(&b':'))
}

fn ipv4(
    text: &str,
    start: usize,
    end: usize,
    redactor: Option<&Redactor>,
    edits: &mut Edits<'_>,
) -> Step {
    let before = &text[..start];
    let after = &text[end..];
    let mut prev = before.chars().rev();
    let p1 = prev.next();
    let p2 = prev.next();
    // Part of a longer dotted number (an OID, `1.2.3.4.5`).
    if p1 == Some('.') && p2.is_some_and(|c| c.is_ascii_digit()) {
        return Step::Reject;
    }
    let mut next = after.chars();
    if next.next() == Some('.') && next.next().is_some_and(|c| c.is_ascii_digit()) {
        return Step::Reject;
    }
    // A product version (`Chrome/120.0.0.0` in a user agent).
    if p1 == Some('/') && p2.is_some_and(|c| c.is_ascii_alphabetic()) {
        return Step::Reject;
    }
    if let Some(r) = redactor {
        edits.replace(
            start,
            end,
            &r.pseudonym(PseudonymKind::Ip, &text[start..end]),
        );
    }
    Step::ResumeAt(end)
}

fn ipv6(
    text: &str,
    start: usize,
    end: usize,
    redactor: Option<&Redactor>,
    edits: &mut Edits<'_>,
) -> Step {
    // Trailing sentence punctuation or a `:` before prose is not part of it.
    let mut candidate = &text[start..end];
    loop {
        if let Some(c) = candidate.strip_suffix('.') {
            candidate = c;
        } else if candidate.ends_with(':') && !candidate.ends_with("::") {
            candidate = &candidate[..candidate.len() - 1];
        } else {
            break;
        }
    }
    let end = start + candidate.len();
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    // `std::io`, `Foo::bar`, `$1::uuid`: part of an identifier.
    if text[..start]
        .chars()
        .next_back()
        .is_some_and(|c| word(c) || c == ':' || c == '.')
    {
        return Step::Reject;
    }
    let mut next = text[end..].chars();
    match (next.next(), next.next()) {
        (Some(c), _) if word(c) => return Step::Reject,
        (Some(':' | '.'), Some(c)) if word(c) => return Step::Reject,
        _ => {}
    }
    // Real addresses have a decimal digit (`fe80::1`, `::1`) or all 8 groups;
    // this spares `::` alone and hex-word paths like `dead::beef`.
    let colons = candidate.bytes().filter(|&b| b == b':').count();
    if !(candidate.bytes().any(|b| b.is_ascii_digit()) || colons == 7)
        || candidate.parse::<Ipv6Addr>().is_err()
    {
        return Step::Reject;
    }
    if let Some(r) = redactor {
        edits.replace(start, end, &r.pseudonym(PseudonymKind::Ip, candidate));
    }
    Step::ResumeAt(end)
}

/// One canonical text per address, so equal addresses share a pseudonym.
fn canonical_ip(value: &str) -> String {
    let bare = value.trim_start_matches('[').trim_end_matches(']');
    let bare = bare.split_once('%').map_or(bare, |(addr, _zone)| addr);
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => match value.parse::<SocketAddr>() {
            // `203.0.113.7:52144`, `[2001:db8::1]:443`: the address, not the port.
            Ok(addr) => canonical_ip(&addr.ip().to_string()),
            Err(_) => value.to_ascii_lowercase(),
        },
    }
}

/// Whether `value` holds a mask or a pseudonym, i.e. was redacted already.
fn is_redaction_output(value: &str) -> bool {
    value.contains(MASK)
        || [PseudonymKind::Email, PseudonymKind::Ip]
            .iter()
            .any(|kind| {
                value.match_indices(kind.prefix()).any(|(i, prefix)| {
                    value
                        .get(i..i + prefix.len() + PSEUDONYM_HEX_CHARS)
                        .is_some_and(|candidate| kind.is_pseudonym(candidate))
                })
            })
}

/// Whether a JSON key names a secret (same vocabulary as the text patterns).
fn is_secret_key(key: &str) -> bool {
    SECRET_KEY_EXACT.is_match(key)
}

/// JSON keys whose value is an IP or email address whatever it looks like.
fn pseudonym_key(key: &str) -> Option<PseudonymKind> {
    let mut norm = [0u8; 24];
    let mut len = 0;
    for b in key.bytes().filter(|b| !matches!(b, b'_' | b'-' | b'.')) {
        if len == norm.len() {
            return None;
        }
        norm[len] = b.to_ascii_lowercase();
        len += 1;
    }
    match &norm[..len] {
        b"ip" | b"ipaddress" | b"ipaddr" | b"clientip" | b"clientaddress" | b"clientaddr"
        | b"remoteip" | b"remoteaddr" | b"remoteaddress" | b"sourceip" | b"srcip"
        | b"sourceaddress" | b"peerip" | b"userip" | b"realip" | b"xrealip" | b"forwardedfor"
        | b"xforwardedfor" => Some(PseudonymKind::Ip),
        b"email" | b"useremail" | b"emailaddress" | b"mail" | b"upn" | b"userprincipalname"
        | b"preferredusername" => Some(PseudonymKind::Email),
        _ => None,
    }
}

fn scan_until(text: &str, from: usize, stop: impl Fn(char) -> bool) -> usize {
    text[from..].find(stop).map_or(text.len(), |i| from + i)
}

fn next_char(text: &str, at: usize) -> usize {
    text[at..]
        .chars()
        .next()
        .map_or(text.len(), |c| at + c.len_utf8())
}

fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(nibble & 0x0f)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const KEY: &[u8] = b"test-pseudonym-key-0123456789";

    fn redactor() -> Redactor {
        Redactor::new(KEY).unwrap()
    }

    fn redact(text: &str) -> String {
        redactor().redact_text(text).into_owned()
    }

    /// (line, substrings that must be gone, substrings that must stay)
    type Case = (
        &'static str,
        &'static [&'static str],
        &'static [&'static str],
    );

    const CORPUS: &[Case] = &[
        (
            "2025-05-18 07:42:55,101 - app.db - ERROR - Database error: (psycopg2.OperationalError) connection failed\nTraceback (most recent call last):\n  File \"/app/db.py\", line 12, in connect\n    engine = create_engine(\"postgresql+asyncpg://blindspotx:S3cr3t-Pa55@db.internal:5432/auth\")",
            &["S3cr3t-Pa55", "blindspotx:"],
            &[
                "postgresql+asyncpg://***@db.internal:5432/auth",
                "Database error:",
                "line 12, in connect",
            ],
        ),
        (
            "2025-05-18 07:43:00,001 - app.cache - ERROR - Error 111 connecting to redis://:r3disPass@cache.internal:6379. Connection refused.",
            &["r3disPass"],
            &["redis://***@cache.internal:6379. Connection refused."],
        ),
        (
            "sqlalchemy.exc.OperationalError: could not connect to postgres://admin:p@ss@word@10.0.0.5:5432/auth",
            &["p@ss@word", "admin", "10.0.0.5"],
            &["postgres://***@ip:", ":5432/auth"],
        ),
        (
            "INFO:     203.0.113.7:52144 - \"GET /api/auth/callback?code=0.AXoAbCdEf-GhIjKlMnOp_QrStUv&state=9f3c2a7e-1b4d-4c8a-9e6f-2d7b1a0c5e33&session_state=4e1f HTTP/1.1\" 302 Found",
            &["0.AXoAbCdEf-GhIjKlMnOp_QrStUv", "203.0.113.7"],
            &[
                "?code=***&state=9f3c2a7e-1b4d-4c8a-9e6f-2d7b1a0c5e33&session_state=4e1f",
                ":52144 - \"GET /api/auth/callback",
                "302 Found",
            ],
        ),
        (
            "2025-05-18 07:44:01,010 - app.middleware - DEBUG - request headers: {'host': 'auth.example.com', 'authorization': 'Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI3YzBlIn0.c2lnbmF0dXJl', 'user-agent': 'curl/8.5.0'}",
            &["eyJzdWIiOiI3YzBlIn0", "c2lnbmF0dXJl"],
            &[
                "'authorization': 'Bearer ***'",
                "'host': 'auth.example.com'",
                "'user-agent': 'curl/8.5.0'",
            ],
        ),
        (
            "Authorization: Bearer 2YotnFZFEjr1zCsicMWpAA",
            &["2YotnFZFEjr1zCsicMWpAA"],
            &["Authorization: Bearer ***"],
        ),
        (
            "> Authorization: Basic YWRtaW46aHVudGVyMg==\n> Accept: */*",
            &["YWRtaW46aHVudGVyMg"],
            &["Authorization: Basic ***", "Accept: */*"],
        ),
        (
            "proxy forwarded Basic YWxhZGRpbjpvcGVuc2VzYW1l to upstream",
            &["YWxhZGRpbjpvcGVuc2VzYW1l"],
            &["proxy forwarded Basic *** to upstream"],
        ),
        (
            "aws: Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20250520/eu-west-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024 status=403",
            &["IOSFODNN7EXAMPLE", "fe5f80f77d5fa3be"],
            &["Authorization: AWS4-HMAC-SHA256 *** status=403"],
        ),
        (
            r#"{"timestamp":"2025-05-20T10:30:00.123Z","level":"WARNING","logger":"security","message":"Login form","username":"ana","password":"Tr0ub4dor&3"}"#,
            &["Tr0ub4dor&3"],
            &[
                r#""password":"***""#,
                r#""level":"WARNING""#,
                r#""username":"ana""#,
            ],
        ),
        (
            r#"{"token_type":"Bearer","access_token":"eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJhcGkifQ.sig-_x","refresh_token":"0.AXoA-refresh-R3fr3sh","id_token":"eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.","expires_in":3599,"pin":null}"#,
            &["eyJhdWQiOiJhcGkifQ", "R3fr3sh", "eyJzdWIiOiIxIn0"],
            &[
                r#""token_type":"Bearer""#,
                r#""access_token":"***""#,
                r#""expires_in":3599"#,
            ],
        ),
        (
            r#"{"level":"INFO","message":"Token operation","client_secret":12345,"api_key":"k-42","session_id":"s%3Aabc.def"}"#,
            &["12345", "k-42", "s%3Aabc.def"],
            &[
                r#""client_secret":"***""#,
                r#""api_key":"***""#,
                r#""session_id":"***""#,
                r#""message":"Token operation""#,
            ],
        ),
        (
            "POST https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token body=client_id=4a1aa1d5-c567-49d0-ad0b-cd957a47f842&client_secret=Abc8Q~dEfGhIjKlMnOpQrStUvWxYz0123456789ab&grant_type=authorization_code&code=0.AXoA1234-abcd",
            &["dEfGhIjKlMnOpQrStUv", "0.AXoA1234-abcd"],
            &[
                "client_id=4a1aa1d5-c567-49d0-ad0b-cd957a47f842",
                "client_secret=***",
                "grant_type=authorization_code",
                "&code=***",
                "login.microsoftonline.com",
            ],
        ),
        (
            "ValueError: invalid credentials for tenant; AZURE_CLIENT_SECRET is Xy78Q~aBcDeFgHiJkLmNoPqRsTuVwXyZ01234567 (expired)",
            &["aBcDeFgHiJkLmNoPqRsTuVwXyZ01234567"],
            &["AZURE_CLIENT_SECRET is *** (expired)"],
        ),
        (
            "< Set-Cookie: session=9f86d081884c7d659a2feaa0c55ad015; Path=/; HttpOnly; Secure; SameSite=Lax",
            &["9f86d081884c7d659a2feaa0c55ad015"],
            &["Set-Cookie: session=***; Path=/; HttpOnly; Secure; SameSite=Lax"],
        ),
        (
            "Set-Cookie: refresh=Zm9vYmFy==; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Max-Age=3600; Domain=auth.example.com",
            &["Zm9vYmFy"],
            &[
                "Set-Cookie: refresh=***; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Max-Age=3600; Domain=auth.example.com",
            ],
        ),
        (
            "Cookie: csrftoken=Kx9aQ2; sessionid=abcdef123456; theme=dark",
            &["Kx9aQ2", "abcdef123456"],
            &["Cookie: csrftoken=***; sessionid=***; theme=***"],
        ),
        (
            "botocore creds: aws_access_key_id=AKIAIOSFODNN7EXAMPLE aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY region=eu-west-1",
            &[
                "IOSFODNN7EXAMPLE",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ],
            &[
                "aws_access_key_id=AKIA***",
                "aws_secret_access_key=***",
                "region=eu-west-1",
            ],
        ),
        (
            "[default]\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\nregion = eu-west-1",
            &["wJalrXUtnFEMI"],
            &["aws_secret_access_key = ***\nregion = eu-west-1"],
        ),
        (
            r#"{"Credentials": {"AccessKeyId": "ASIAY34FZKBOKMUTVV7A", "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "SessionToken": "IQoJb3JpZ2luX2VjEHAaCWV1LXdlc3QtMSJHMEUCIQ", "Expiration": "2025-05-20T11:30:00Z"}}"#,
            &["Y34FZKBOKMUTVV7A", "wJalrXUtnFEMI", "IQoJb3JpZ2luX2Vj"],
            &[
                r#""AccessKeyId": "ASIA***""#,
                r#""SecretAccessKey": "***""#,
                r#""SessionToken": "***""#,
                r#""Expiration": "2025-05-20T11:30:00Z""#,
            ],
        ),
        (
            "2025-05-18 07:50:00,000 - app.core.jwt - ERROR - Failed to load signing key: -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1c7+9z5Pad7OejecsQ0bu3aumHlK4HnOVEMvOe5sgjD\nx2Q0ZL3l4b9Y2T0qk0y8+3zZ\n-----END RSA PRIVATE KEY----- (bad padding)",
            &["MIIEowIBAAKCAQEA", "x2Q0ZL3l4b9Y2T0qk0y8"],
            &[
                "Failed to load signing key: -----BEGIN RSA PRIVATE KEY-----***-----END RSA PRIVATE KEY----- (bad padding)",
            ],
        ),
        (
            "truncated event: -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ",
            &["b3BlbnNzaC1rZXktdjEAAAAA"],
            &["truncated event: -----BEGIN OPENSSH PRIVATE KEY-----***"],
        ),
        (
            "TypeError: connect(host='db.internal', user='blindspotx', password='pa$$ w0rd\\'s', sslmode='require')",
            &["pa$$", "w0rd"],
            &["password='***'", "host='db.internal'", "sslmode='require'"],
        ),
        (
            "psycopg.OperationalError: connection failed: host=db.internal port=5432 user=blindspotx password=hunter2hunter2 dbname=auth",
            &["hunter2hunter2"],
            &["host=db.internal port=5432 user=blindspotx password=*** dbname=auth"],
        ),
        (
            "settings loaded: SECRET_KEY: 'django-insecure-9x!q', DEBUG: False, JWT_SECRET=s3cr3t-jwt, POSTGRES_PASSWORD=\"pg pass\"",
            &["django-insecure-9x!q", "s3cr3t-jwt", "pg pass"],
            &[
                "SECRET_KEY: '***'",
                "DEBUG: False",
                "JWT_SECRET=***",
                "POSTGRES_PASSWORD=\"***\"",
            ],
        ),
        (
            "upstream call failed: X-API-Key: sk_test_51HxYzAbCdEf status=403",
            &["sk_test_51HxYzAbCdEf"],
            &["X-API-Key: *** status=403"],
        ),
        (
            "GET /v1/scan?apikey=9a8b7c6d5e4f&format=json HTTP/1.1",
            &["9a8b7c6d5e4f"],
            &["/v1/scan?apikey=***&format=json HTTP/1.1"],
        ),
        (
            "GET /legacy/login?user=ana&password=hunter22&next=/home HTTP/1.1",
            &["hunter22"],
            &["?user=ana&password=***&next=/home"],
        ),
        (
            "blob upload failed: https://acct.blob.core.windows.net/logs/x.gz?sv=2022-11-02&sp=rw&sig=AbCdEf%2BgHiJk%3D: 403",
            &["AbCdEf%2BgHiJk%3D"],
            &["acct.blob.core.windows.net/logs/x.gz?sv=2022-11-02&sp=rw&sig=***"],
        ),
        (
            "2025-05-18 07:42:54,855 - app.core.security - INFO - Access token created for user Ana.Silva@Example.com, expires at 2025-05-18 10:42:54.855515",
            &["Ana.Silva", "Example.com"],
            &[
                "Access token created for user email:",
                ", expires at 2025-05-18 10:42:54.855515",
            ],
        ),
        (
            "httpx.HTTPStatusError: 401 Unauthorized for url 'https://graph.microsoft.com/v1.0/me' (sent bearer EwBwA8l6BAAURSN/FHlDW5xN74t6GzbtsBBeBUYAAZ)",
            &["EwBwA8l6BAAURSN"],
            &["(sent bearer ***)", "'https://graph.microsoft.com/v1.0/me'"],
        ),
        (
            "incident-notifier: POST https://hooks.slack.com/services/T0123ABCD/B0456EFGH/xYzAbC123dEf456gHi failed: 404",
            &["xYzAbC123dEf456gHi", "T0123ABCD"],
            &["https://hooks.slack.com/services/*** failed: 404"],
        ),
        (
            "CI: GITHUB_TOKEN is ghp_1234567890abcdefghijklmnopqrstuvwxyz and SLACK_BOT xoxb-123456789012-abcdefABCDEF",
            &["ghp_1234567890", "xoxb-123456789012"],
            &["GITHUB_TOKEN is *** and SLACK_BOT ***"],
        ),
        (
            "INFO:     [2001:db8:85a3::8a2e:370:7334]:443 - \"POST /api/auth/login HTTP/1.1\" 401 Unauthorized",
            &["2001:db8", "8a2e:370:7334"],
            &[
                "INFO:     [ip:",
                "]:443 - \"POST /api/auth/login HTTP/1.1\" 401 Unauthorized",
            ],
        ),
        (
            r#"{"message": "upstream said {\"error\": \"invalid_grant\", \"refresh_token\": \"0.AXoA-rt-XYZ\", \"expires\": 5}"}"#,
            &["0.AXoA-rt-XYZ"],
            &[
                r#"\"refresh_token\": \"***\""#,
                r#"\"error\": \"invalid_grant\""#,
                r#"\"expires\": 5"#,
            ],
        ),
        (
            r#"{"routing_key": "R0123456789ABCDEF0123456789ABCDE", "event_action": "trigger"}"#,
            &["R0123456789ABCDEF"],
            &[r#""routing_key": "***""#, r#""event_action": "trigger""#],
        ),
        (
            "2025-05-18 07:46:00,000 - security - WARNING - Token validation failed token=tok_live_8f7e6d5c reason=expired from 198.51.100.23",
            &["tok_live_8f7e6d5c", "198.51.100.23"],
            &["Token validation failed token=*** reason=expired from ip:"],
        ),
        (
            "curl -H 'Authorization: token ghs_16C7e42F292c6912E7710c838347Ae178B4a' https://api.github.com",
            &["ghs_16C7e42F292c6912E7710c838347Ae178B4a"],
            &["'Authorization: token ***' https://api.github.com"],
        ),
    ];

    #[test]
    fn corpus_secrets_are_gone_and_context_stays() {
        assert!(CORPUS.len() >= 25);
        for (line, gone, kept) in CORPUS {
            let out = redact(line);
            for secret in *gone {
                assert!(
                    !out.contains(secret),
                    "{secret:?} survived in\n{line}\n→ {out}"
                );
            }
            for context in *kept {
                assert!(
                    out.contains(context),
                    "{context:?} lost in\n{line}\n→ {out}"
                );
            }
            assert_eq!(redact(&out), out, "not idempotent: {line}");
        }
    }

    #[test]
    fn masking_alone_masks_the_corpus_but_keeps_addresses() {
        for (line, gone, _) in CORPUS {
            let out = mask_secrets(line);
            for secret in *gone {
                let is_address = secret.contains('@')
                    || secret.contains("Silva")
                    || secret.contains(".com")
                    || secret.parse::<IpAddr>().is_ok()
                    || secret.contains("2001:")
                    || secret.contains(":7334");
                assert!(
                    is_address || !out.contains(secret),
                    "{secret:?} survived in {out}"
                );
            }
        }
        let line = "login by ana@example.com from 203.0.113.7 with password=x";
        assert_eq!(
            mask_secrets(line),
            "login by ana@example.com from 203.0.113.7 with password=***"
        );
    }

    #[test]
    fn exact_outputs() {
        let r = redactor();
        let ip = r.pseudonym(PseudonymKind::Ip, "203.0.113.7");
        let email = r.pseudonym(PseudonymKind::Email, "ana@example.com");
        for (line, want) in [
            ("password=abc", "password=***".to_owned()),
            (r#"{"token": null}"#, r#"{"token": "***"}"#.to_owned()),
            ("'secret': None", "'secret': '***'".to_owned()),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln.",
                "jwt ***.".to_owned(),
            ),
            (
                "ssh://git@github.com/org/repo",
                "ssh://***@github.com/org/repo".to_owned(),
            ),
            (
                "user ana@example.com from 203.0.113.7",
                format!("user {email} from {ip}"),
            ),
            ("to=Ana%40Example.com&x=1", format!("to={email}&x=1")),
            ("peer ::ffff:203.0.113.7 again", format!("peer {ip} again")),
            ("Authorization: Bearer", "Authorization: Bearer".to_owned()),
            ("Authorization: abc123", "Authorization: ***".to_owned()),
        ] {
            assert_eq!(r.redact_text(line), want, "{line}");
        }
    }

    #[test]
    fn clean_lines_are_borrowed() {
        let r = redactor();
        for line in [
            "",
            "2025-05-18 07:42:54,855 - app.drift - INFO - Starting drift detection job",
            "2025-05-18 07:45:10,200 - app.api.auth - WARNING - Invalid state parameter: 3c6e0b8a-9c0b-4f8e-8f1a-2b7d5c9e1f00",
            r#"{"timestamp":"2025-05-20T10:30:00.123Z","level":"INFO","logger":"security","message":"Token operation","operation":"revoke","token_type":"refresh","status":"success","user_id":"7c0e4f2a"}"#,
            r#"{"logger":"performance","message":"API request completed","endpoint":"/api/users/:id","method":"GET","status_code":200,"duration_ms":41.7}"#,
            "Traceback (most recent call last):\n  File \"/app/main.py\", line 3, in <module>\nKeyError: 'x'",
            "python 3.11.4 uvicorn 0.29.0 status=200 code=E42 at 10:30:00.123",
            "connection refused (os error 111)",
            "std::io::Error at Foo::bar, SELECT $1::uuid, x::text, MAC 00:1a:2b:3c:4d:5e",
            "Basic authentication failed; missing bearer",
            "OID 1.3.6.1.4.1.311 and version 1.2.3.4.5 and Chrome/120.0.0.0 Safari/537.36",
            "Ünïcödé ✓ ログ 10:30 — fine",
        ] {
            assert!(matches!(r.redact_text(line), Cow::Borrowed(_)), "{line}");
            assert!(matches!(mask_secrets(line), Cow::Borrowed(_)), "{line}");
        }
    }

    #[test]
    fn ipv4_addresses_not_versions_or_times() {
        let r = redactor();
        let ip = |s: &str| r.pseudonym(PseudonymKind::Ip, s);
        for (line, addr) in [
            ("client 10.0.0.5 connected", "10.0.0.5"),
            ("ip=203.0.113.7,", "203.0.113.7"),
            ("(192.168.1.10)", "192.168.1.10"),
            ("from 8.8.8.8.", "8.8.8.8"),
            ("peer=255.255.255.255:80", "255.255.255.255"),
            ("x-forwarded-for: 0.0.0.0", "0.0.0.0"),
        ] {
            let out = r.redact_text(line);
            assert!(out.contains(&ip(addr)), "{line} → {out}");
            assert!(!out.contains(addr), "{line} → {out}");
        }
        for line in [
            "version 1.2.3",
            "at 10:30:00.123",
            "2025-05-20T10:30:00.123Z",
            "v1.2.3.4",
            "999.1.1.1",
            "1.2.3.4.5",
            "01.02.03.04",
            "took 1.234s",
        ] {
            assert_eq!(r.redact_text(line), line);
        }
    }

    #[test]
    fn ipv6_addresses_in_their_forms() {
        let r = redactor();
        let ip = |s: &str| r.pseudonym(PseudonymKind::Ip, s);
        assert_eq!(ip("2001:DB8:0:0:0:0:0:1"), ip("2001:db8::1"));
        assert_eq!(ip("::ffff:192.0.2.1"), ip("192.0.2.1"));
        assert_eq!(ip("[2001:db8::1]"), ip("2001:db8::1"));
        assert_eq!(ip("fe80::1%eth0"), ip("fe80::1"));
        assert_eq!(ip("203.0.113.7:52144"), ip("203.0.113.7"));
        assert_ne!(ip("2001:db8::1"), ip("2001:db8::2"));
        for (line, want) in [
            ("from ::1 port 22", format!("from {} port 22", ip("::1"))),
            ("fe80::1%eth0 up", format!("{}%eth0 up", ip("fe80::1"))),
            ("[2001:db8::1]:443", format!("[{}]:443", ip("2001:db8::1"))),
            (
                "addr 2001:0db8:85a3:0000:0000:8a2e:0370:7334 ok",
                format!("addr {} ok", ip("2001:db8:85a3::8a2e:370:7334")),
            ),
            (
                "gone: 2001:db8::. Next",
                format!("gone: {}. Next", ip("2001:db8::")),
            ),
            (
                "peer 2001:db8::7: reset",
                format!("peer {}: reset", ip("2001:db8::7")),
            ),
        ] {
            assert_eq!(r.redact_text(line), want, "{line}");
        }
    }

    #[test]
    fn pseudonyms_are_stable_keyed_and_case_folded() {
        let a = redactor();
        let b = Redactor::new(b"another-key-of-enough-bytes").unwrap();
        let e = a.pseudonym(PseudonymKind::Email, "ana@example.com");
        assert_eq!(e, a.pseudonym(PseudonymKind::Email, "Ana@Example.COM"));
        assert_eq!(
            e,
            a.clone()
                .pseudonym(PseudonymKind::Email, " ana@example.com ")
        );
        assert_eq!(
            e,
            Redactor::new(KEY)
                .unwrap()
                .pseudonym(PseudonymKind::Email, "ana@example.com")
        );
        assert_ne!(e, b.pseudonym(PseudonymKind::Email, "ana@example.com"));
        assert_ne!(e, a.pseudonym(PseudonymKind::Email, "bob@example.com"));
        assert!(PseudonymKind::Email.is_pseudonym(&e), "{e}");
        assert_eq!(e.len(), "email:".len() + PSEUDONYM_HEX_CHARS);
        let i = a.pseudonym(PseudonymKind::Ip, "203.0.113.7");
        assert!(PseudonymKind::Ip.is_pseudonym(&i), "{i}");
        assert_ne!(i, b.pseudonym(PseudonymKind::Ip, "203.0.113.7"));
        // Known-answer: HMAC-SHA256(key, "203.0.113.7"), first 6 bytes.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(KEY).unwrap();
        mac.update(b"203.0.113.7");
        let digest = mac.finalize().into_bytes();
        let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(i, format!("ip:{hex}"));
        // Already a pseudonym (a field redacted earlier): unchanged.
        assert_eq!(a.pseudonym(PseudonymKind::Ip, &i), i);
        assert_eq!(a.pseudonym(PseudonymKind::Email, &e), e);
        // Text and direct pseudonyms agree, so alert keys match stored samples.
        assert_eq!(a.redact_text("Ana@Example.com"), e);
        assert_eq!(a.redact_text("203.0.113.7"), i);
    }

    #[test]
    fn short_keys_are_refused_and_the_key_never_shows() {
        assert_eq!(
            Redactor::new(b"too-short").unwrap_err(),
            RedactError::KeyTooShort { len: 9 }
        );
        assert_eq!(
            Redactor::new(b"").unwrap_err().to_string(),
            "pseudonymization key is 0 bytes; at least 16 are required"
        );
        assert!(Redactor::new(&[7u8; 16]).is_ok());
        assert_eq!(format!("{:?}", redactor()), "Redactor { key: *** }");
    }

    #[test]
    fn json_values_by_key_and_by_shape() {
        let r = redactor();
        let ip = |s: &str| r.pseudonym(PseudonymKind::Ip, s);
        let email = |s: &str| r.pseudonym(PseudonymKind::Email, s);
        let mut record = json!({
            "timestamp": "2025-05-20T10:30:00.123Z",
            "logger": "security",
            "message": "Authentication attempt by Ana@Example.com",
            "user_id": "7c0e4f2a",
            "ip_address": "203.0.113.7",
            "client_ip": "203.0.113.7, 10.0.0.1",
            "email": "Ana@Example.com",
            "user_email": "not-an-address",
            "remote_addr": "",
            "success": false,
            "method": "password",
            "token_type": "access",
            "password": "hunter2",
            "refresh_token": 12345,
            "client_secret": {"value": "abc"},
            "Cookie": ["a=1", "b=2"],
            "session_id": "s1",
            "is_secret": true,
            "headers": {"Authorization": "Bearer xyz", "X-Forwarded-For": ["198.51.100.23"]},
            "attempts_by_email": {"bob@example.com": 3},
            "changes": [{"setting": "jwt_secret", "old": "x", "new": "dsn postgres://u:pw@db/x"}]
        });
        r.redact_json(&mut record);
        let want = json!({
            "timestamp": "2025-05-20T10:30:00.123Z",
            "logger": "security",
            "message": format!("Authentication attempt by {}", email("ana@example.com")),
            "user_id": "7c0e4f2a",
            "ip_address": ip("203.0.113.7"),
            "client_ip": format!("{}, {}", ip("203.0.113.7"), ip("10.0.0.1")),
            "email": email("ana@example.com"),
            "user_email": email("not-an-address"),
            "remote_addr": "",
            "success": false,
            "method": "password",
            "token_type": "access",
            "password": "***",
            "refresh_token": "***",
            "client_secret": "***",
            "Cookie": "***",
            "session_id": "***",
            "is_secret": "***",
            "headers": {"Authorization": "***", "X-Forwarded-For": [ip("198.51.100.23")]},
            "attempts_by_email": {email("bob@example.com"): 3},
            "changes": [{"setting": "jwt_secret", "old": "x", "new": "dsn postgres://***@db/x"}]
        });
        assert_eq!(record, want);
        let mut again = record.clone();
        r.redact_json(&mut again);
        assert_eq!(again, record, "redact_json is idempotent");
    }

    #[test]
    fn secret_key_vocabulary() {
        for key in [
            "password",
            "PASSWORD",
            "db_password",
            "passwd",
            "pwd",
            "secret",
            "client_secret",
            "clientSecret",
            "token",
            "access_token",
            "refresh_token",
            "id_token",
            "SessionToken",
            "api_key",
            "apikey",
            "x-api-key",
            "X-API-Key",
            "authorization",
            "Proxy-Authorization",
            "cookie",
            "set-cookie",
            "session",
            "sessionid",
            "session_id",
            "PHPSESSID",
            "aws_secret_access_key",
            "SecretAccessKey",
            "private_key",
            "routing_key",
            "auth",
            "basic_auth",
            "code_verifier",
            "client_assertion",
            "credentials",
            "AccountKey",
        ] {
            assert!(is_secret_key(key), "{key} should be secret");
        }
        for key in [
            "token_type",
            "tokens_used",
            "password_policy",
            "user_id",
            "oauth",
            "author",
            "state",
            "session_state",
            "code",
            "status_code",
            "operation",
            "method",
            "key",
            "cache_key",
            "aws_access_key_id",
            "secret_name",
            "active_sessions",
        ] {
            assert!(!is_secret_key(key), "{key} should not be secret");
        }
    }

    #[test]
    fn oauth_state_and_free_text_codes_stay() {
        let line = "GET /cb?state=9f3c2a7e&code=SplxlOBeZQQYbYS6WxSbIA exit code=3 status_code=500";
        assert_eq!(
            redact(line),
            "GET /cb?state=9f3c2a7e&code=*** exit code=3 status_code=500"
        );
    }

    /// Pieces that combine into tricky inputs for the property tests.
    const FRAGMENTS: &[&str] = &[
        "password",
        "token",
        "Authorization",
        "Cookie",
        "Set-Cookie",
        "session",
        "api_key",
        "=",
        ": ",
        ":",
        "::",
        "\"",
        "'",
        "\\\"",
        "\\",
        " ",
        "\n",
        ";",
        ",",
        "&",
        "?code=",
        "@",
        ".",
        "/",
        "***",
        "ip:",
        "email:",
        "Bearer ",
        "Basic ",
        "dXNlcjpwYXNz",
        "eyJhbGciOiJIUzI1NiJ9",
        "eyJ",
        "ana@example.com",
        "Ana%40Example.com",
        "postgres://u:p@h/db",
        "https://",
        "1.2.3.4",
        "10.0.0.1",
        "255",
        "::1",
        "fe80::",
        "2001:db8::1",
        "::ffff:",
        "0a1b2c3d4e5f",
        "AKIAIOSFODNN7EXAMPLE",
        "-----BEGIN PRIVATE KEY-----",
        "-----END PRIVATE KEY-----",
        "abc8Q~dEfGhIjKlMnOpQrStUvWxYz0123456789ab",
        "ghp_",
        "hooks.slack.com/services/",
        "{",
        "}",
        "[",
        "]",
        "Path=/",
        "x",
        "7",
        "a1",
    ];

    fn tricky() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            3 => proptest::sample::select(FRAGMENTS).prop_map(str::to_owned),
            1 => "[a-f0-9:.@=/ ]{1,6}",
            1 => any::<char>().prop_map(String::from),
        ];
        proptest::collection::vec(piece, 0..16).prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn redaction_never_panics_and_is_idempotent(text in tricky()) {
            let r = redactor();
            let once = r.redact_text(&text).into_owned();
            prop_assert_eq!(r.redact_text(&once).into_owned(), once.clone());
            let masked = mask_secrets(&text).into_owned();
            prop_assert_eq!(mask_secrets(&masked).into_owned(), masked);
        }

        #[test]
        fn arbitrary_text_never_panics_and_is_idempotent(text in any::<String>()) {
            let r = redactor();
            let once = r.redact_text(&text).into_owned();
            prop_assert_eq!(r.redact_text(&once).into_owned(), once);
        }

        #[test]
        fn json_redaction_is_idempotent(
            pairs in proptest::collection::vec(
                (proptest::sample::select(&["password", "ip", "email", "msg", "token_type", "Cookie"][..]), tricky()),
                0..6,
            )
        ) {
            let r = redactor();
            let mut value = Value::Object(
                pairs.into_iter().map(|(k, v)| (k.to_owned(), Value::String(v))).collect(),
            );
            r.redact_json(&mut value);
            let mut again = value.clone();
            r.redact_json(&mut again);
            prop_assert_eq!(again, value);
        }
    }
}
