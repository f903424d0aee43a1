//! Fuzzes `FilterPattern::parse` on the input and, when it parses, `matches`
//! against fixed messages and JSON values and against the input itself.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use monitoring_core::domain::logs::filter_pattern::FilterPattern;
use monitoring_core::domain::logs::json::Json;

const MESSAGES: &[&str] = &[
    "",
    " ",
    "2025-05-18 07:42:54,855 - app.core.security - ERROR - login failed for user@example.com",
    "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad",
    r#"{"level":"ERROR","message":"timeout","status_code":503,"latency":1.5e3,"ok":false,"user":null,"list":[{"id":1},{"id":"a*b"}],"cluster.name":"prod","nested":{"a":{"b":[true,-0.0,18446744073709551615,-9223372036854775808]}}}"#,
    r#"{"msg":"UNAUTHORIZED","code":"5xx","n":1e308,"m":-1e-308,"big":123456789012345678901234567890,"s":"%regex%"}"#,
    "[1.2.3.4, alice, GET /index.html 200]",
    "ünïcödé ✓ 😀 \\ \" % *",
];

static FIXED: LazyLock<Vec<(&'static str, Option<Json<'static>>)>> = LazyLock::new(|| {
    MESSAGES
        .iter()
        .map(|m| (*m, Json::parse(m).ok()))
        .collect()
});

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    let pattern = match FilterPattern::parse(&text) {
        Ok(p) => p,
        Err(e) => {
            // The column points into the pattern (1-based, in characters,
            // one past the end at most).
            assert!(e.column >= 1);
            assert!(e.column <= text.chars().count() + 1, "{e}");
            return;
        }
    };
    assert_eq!(pattern.as_str(), text);
    assert_eq!(pattern.to_string(), text);

    for (message, json) in FIXED.iter() {
        let _ = pattern.matches(message, json.as_ref());
        // A JSON pattern never matches a non-JSON event.
        if pattern.is_json() {
            assert!(!pattern.matches(message, None));
        }
    }

    let own_json = Json::parse(&text).ok();
    let _ = pattern.matches(&text, own_json.as_ref());
    let _ = pattern.matches(&text, None);

    // Reparsing the source gives the same pattern (same answers).
    if let Ok(again) = FilterPattern::parse(pattern.as_str()) {
        for (message, json) in FIXED.iter() {
            assert_eq!(
                again.matches(message, json.as_ref()),
                pattern.matches(message, json.as_ref())
            );
        }
    } else {
        panic!("pattern parsed once but not twice");
    }
});
