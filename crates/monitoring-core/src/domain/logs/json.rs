//! The JSON object of a record, borrowed from the event text.
//!
//! `serde_json::Value` allocates a `String` for every key and string value
//! and a map node per field: about half of a record's cost in the pipeline.
//! Here serde_json still does the parsing, but strings without escapes point
//! into the event text and an object is one `Vec` of fields, so a typical
//! record costs one allocation. Duplicate keys resolve like serde_json's
//! map: the last one wins.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

/// A JSON value whose strings borrow from the parsed text where they can.
#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    /// Fields in document order.
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl<'a> Json<'a> {
    /// Parses `text`; errors are serde_json's.
    pub fn parse(text: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// [`Self::parse`], filling `spare` with the fields when `text` is an
    /// object: with [`Self::into_spare`], one field vector serves every
    /// record of a stream instead of an allocation each.
    pub fn parse_reusing(text: &'a str, spare: Fields<'a>) -> Result<Self, serde_json::Error> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let value = JsonSeed(spare).deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(value)
    }

    /// An object's field vector, emptied, to parse the next record into
    /// (its allocation kept: the collect is done in place).
    pub fn into_spare(self) -> Fields<'static> {
        match self {
            Json::Object(mut fields) => {
                fields.clear();
                // Not `filter`: the items change type (their lifetime).
                #[allow(clippy::unnecessary_filter_map)]
                fields.into_iter().filter_map(|_| None).collect()
            }
            _ => Vec::new(),
        }
    }

    /// The field `key` of an object (the last one when repeated).
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        match self {
            // Keys are short and many share a length: comparing the first
            // byte before the rest skips most memcmp calls.
            Json::Object(fields) => fields
                .iter()
                .rev()
                .find(|(k, _)| {
                    k.len() == key.len()
                        && k.as_bytes().first() == key.as_bytes().first()
                        && k == key
                })
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Element `index` of an array.
    pub fn index(&self, index: usize) -> Option<&Json<'a>> {
        match self {
            Json::Array(items) => items.get(index),
            _ => None,
        }
    }

    /// The values of an object's fields (each key once, last wins) or the
    /// items of an array; nothing for scalars.
    pub fn children(&self) -> Box<dyn Iterator<Item = &Json<'a>> + '_> {
        match self {
            Json::Object(fields) => Box::new(
                fields
                    .iter()
                    .enumerate()
                    .filter(|(i, (k, _))| !fields[i + 1..].iter().any(|(later, _)| later == k))
                    .map(|(_, (_, v))| v),
            ),
            Json::Array(items) => Box::new(items.iter()),
            _ => Box::new(std::iter::empty()),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Json::Object(_))
    }
}

impl From<&serde_json::Value> for Json<'static> {
    fn from(value: &serde_json::Value) -> Self {
        use serde_json::Value;
        match value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => Json::Number(n.clone()),
            Value::String(s) => Json::String(Cow::Owned(s.clone())),
            Value::Array(items) => Json::Array(items.iter().map(Json::from).collect()),
            Value::Object(map) => Json::Object(
                map.iter()
                    .map(|(k, v)| (Cow::Owned(k.clone()), Json::from(v)))
                    .collect(),
            ),
        }
    }
}

/// The fields of an object, in document order.
pub type Fields<'a> = Vec<(Cow<'a, str>, Json<'a>)>;

/// Parses a value into a given field vector (see [`Json::parse_reusing`]).
struct JsonSeed<'a>(Fields<'a>);

impl<'de> DeserializeSeed<'de> for JsonSeed<'de> {
    type Value = Json<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json<'de>, D::Error> {
        deserializer.deserialize_any(JsonVisitor { spare: self.0 })
    }
}

/// A string that borrows from the input when it has no escapes (serde's
/// own `Cow<str>` always copies).
struct Str<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor { spare: Vec::new() })
    }
}

/// `spare` becomes the fields if the value is an object.
struct JsonVisitor<'de> {
    spare: Fields<'de>,
}

impl<'de> Visitor<'de> for JsonVisitor<'de> {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // serde_json never yields a non-finite float from text.
        Ok(Number::from_f64(v).map_or(Json::Null, Json::Number))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Json::String(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Json::String(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Json::String(Cow::Owned(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        Deserialize::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = self.spare;
        if fields.capacity() == 0 {
            // Log records carry a dozen fields or so.
            fields.reserve(map.size_hint().unwrap_or(12).min(64));
        }
        while let Some(Str(key)) = map.next_key()? {
            fields.push((key, map.next_value()?));
        }
        Ok(Json::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_without_escapes_borrow() {
        let text = r#"{"a":"plain","b":"esc\"aped","c":[1,-2,3.5,true,null],"d":{"e":"x"}}"#;
        let json = Json::parse(text).unwrap();
        assert!(matches!(
            json.get("a"),
            Some(Json::String(Cow::Borrowed("plain")))
        ));
        assert!(matches!(json.get("b"), Some(Json::String(Cow::Owned(s))) if s == "esc\"aped"));
        let c = json.get("c").unwrap();
        assert_eq!(c.index(0), Some(&Json::Number(1.into())));
        assert_eq!(c.index(1), Some(&Json::Number((-2).into())));
        assert_eq!(c.index(4), Some(&Json::Null));
        assert_eq!(
            json.get("d")
                .and_then(|d| d.get("e"))
                .and_then(Json::as_str),
            Some("x")
        );
        assert_eq!(json.get("missing"), None);
    }

    #[test]
    fn a_spare_field_vector_is_filled_and_given_back() {
        let first = Json::parse_reusing(r#"{"a":"x","b":[{"c":1}]}"#, Vec::new()).unwrap();
        let spare = first.into_spare();
        assert!(spare.is_empty());
        let (room, at) = (spare.capacity(), spare.as_ptr() as usize);
        assert!(room >= 2);
        let text = String::from(r#"{"k":"v","n":2}"#);
        let second = Json::parse_reusing(&text, spare).unwrap();
        assert_eq!(second, Json::parse(&text).unwrap());
        let Json::Object(fields) = &second else {
            panic!("not an object");
        };
        assert_eq!(
            (fields.capacity(), fields.as_ptr() as usize),
            (room, at),
            "the same allocation"
        );
        assert_eq!(
            Json::parse_reusing("[1]", second.into_spare()).unwrap(),
            Json::parse("[1]").unwrap()
        );
        assert!(Json::parse_reusing("{} x", Vec::new()).is_err());
        assert!(Json::String(Cow::Borrowed("s")).into_spare().is_empty());
    }

    #[test]
    fn the_last_duplicate_key_wins_like_serde_json() {
        let text = r#"{"k":1,"other":true,"k":2}"#;
        let json = Json::parse(text).unwrap();
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(json.get("k"), Some(&Json::Number(2.into())));
        assert_eq!(json.get("k").cloned(), value.get("k").map(Json::from));
        assert_eq!(json.children().count(), 2, "each key once");
    }

    #[test]
    fn agrees_with_serde_json_value() {
        let text = r#"{"n":9007199254740993,"f":-0.25,"e":1e3,"u":"\u00e9","nested":[[0,1],[{"x":null}]]}"#;
        let json = Json::parse(text).unwrap();
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        for key in ["n", "f", "e", "u", "nested"] {
            assert_eq!(
                json.get(key).cloned(),
                value.get(key).map(Json::from),
                "{key}"
            );
        }
        assert!(Json::parse("{\"a\":").is_err());
        assert!(Json::parse("[1,]").is_err());
    }
}
