//! Quantities as people type them: sizes like `256M`, durations like `10s`.
//!
//! The same parsers serve the command line and the agent's JSON bodies, so that
//! `plateau disk --size 256M` and `POST /disk {"size": "256M"}` mean the same thing.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A size in bytes. Parsed from `4096`, `4K`, `256M`, `1G` (binary multiples, as fio
/// and dd read them) or `256MiB`; serialized as an integer number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_size::Config::new()
            .with_binary()
            .parse_size(text.trim())
            .map(ByteSize)
            .map_err(|err| format!("invalid size '{text}' ({err}); use e.g. 4096, 4K, 256M or 1G"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u64); 3] = [("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)];
        for (suffix, factor) in UNITS {
            if self.0 >= factor && self.0.is_multiple_of(factor) {
                return write!(f, "{}{suffix}", self.0 / factor);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Bytes(n) => Ok(ByteSize(n)),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A duration parsed from `10s`, `500ms`, `2m` or a bare number of seconds (`10`, `0.5`).
/// Serialized as a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub Duration);

impl FromStr for Span {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        if let Ok(secs) = trimmed.parse::<f64>() {
            return Duration::try_from_secs_f64(secs)
                .map(Span)
                .map_err(|_| format!("invalid duration '{text}': must be a non-negative number of seconds"));
        }
        humantime::parse_duration(trimmed)
            .map(Span)
            .map_err(|err| format!("invalid duration '{text}' ({err}); use e.g. 10s, 500ms or 2m"))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.0.as_secs_f64())
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(f64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Secs(secs) => Duration::try_from_secs_f64(secs)
                .map(Span)
                .map_err(|_| serde::de::Error::custom(format!("invalid duration {secs}: must be >= 0"))),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A rate in bits per second, parsed as iperf3's `-b` reads it: `100M`, `1.5G`, `500K`
/// or a bare number, with decimal multiples (1M = 10^6 bits/s).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct BitRate(pub u64);

impl FromStr for BitRate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let (number, factor) = match trimmed.char_indices().last() {
            Some((at, 'k' | 'K')) => (&trimmed[..at], 1e3),
            Some((at, 'm' | 'M')) => (&trimmed[..at], 1e6),
            Some((at, 'g' | 'G')) => (&trimmed[..at], 1e9),
            Some((at, 't' | 'T')) => (&trimmed[..at], 1e12),
            _ => (trimmed, 1.0),
        };
        let value: f64 = number
            .parse()
            .map_err(|_| format!("invalid rate '{text}'; use bits per second like 100M, 1.5G or 500K"))?;
        if !value.is_finite() || value < 0.0 {
            return Err(format!("invalid rate '{text}': must be a positive number of bits per second"));
        }
        Ok(BitRate((value * factor).round() as u64))
    }
}

impl fmt::Display for BitRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = self.0 as f64;
        match self.0 {
            n if n >= 1_000_000_000 => write!(f, "{}G", bits / 1e9),
            n if n >= 1_000_000 => write!(f, "{}M", bits / 1e6),
            n if n >= 1_000 => write!(f, "{}K", bits / 1e3),
            n => write!(f, "{n}"),
        }
    }
}

impl Serialize for BitRate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for BitRate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bits(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Bits(n) => Ok(BitRate(n)),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// The OpenAPI schema of a value that is a number or a string with a unit suffix.
fn number_or_text(number: utoipa::openapi::schema::Type, description: &str, example: &str) -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(number).minimum(Some(0)))
        .item(ObjectBuilder::new().schema_type(Type::String).max_length(Some(32)).examples([example]))
        .description(Some(description))
        .into()
}

/// Implements the OpenAPI schema of a unit type that is a number or a suffixed string.
macro_rules! number_or_text_schema {
    ($unit:ty, $number:ident, $description:literal, $example:literal) => {
        impl utoipa::PartialSchema for $unit {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
                number_or_text(utoipa::openapi::schema::Type::$number, $description, $example).into()
            }
        }
        impl utoipa::ToSchema for $unit {}
    };
}

number_or_text_schema!(ByteSize, Integer, "bytes, as an integer or with a binary suffix (K, M, G, T)", "256M");
number_or_text_schema!(Span, Number, "a duration: seconds as a number, or with a unit (500ms, 10s, 2m)", "10s");
number_or_text_schema!(BitRate, Integer, "bits per second, as an integer or with a decimal suffix (K, M, G)", "100M");

/// Megabytes (10^6 bytes) per second from a byte count and an elapsed time; 0 for no time.
pub fn mb_per_sec(bytes: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { bytes as f64 / secs / 1e6 } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_binary_multiples() {
        assert_eq!("4096".parse::<ByteSize>().unwrap().bytes(), 4096);
        assert_eq!("4K".parse::<ByteSize>().unwrap().bytes(), 4096);
        assert_eq!("256M".parse::<ByteSize>().unwrap().bytes(), 256 << 20);
        assert_eq!("1G".parse::<ByteSize>().unwrap().bytes(), 1 << 30);
        assert_eq!("256MiB".parse::<ByteSize>().unwrap().bytes(), 256 << 20);
        let err = "lots".parse::<ByteSize>().unwrap_err();
        assert!(err.contains("invalid size 'lots'"), "{err}");
        assert_eq!(ByteSize(256 << 20).to_string(), "256M");
        assert_eq!(ByteSize(1000).to_string(), "1000");
    }

    #[test]
    fn sizes_deserialize_from_strings_and_integers() {
        let from_text: ByteSize = serde_json::from_str("\"1M\"").unwrap();
        let from_int: ByteSize = serde_json::from_str("1048576").unwrap();
        assert_eq!(from_text, from_int);
        assert!(serde_json::from_str::<ByteSize>("\"-3M\"").is_err());
    }

    #[test]
    fn durations_accept_units_and_bare_seconds() {
        assert_eq!("10s".parse::<Span>().unwrap().0, Duration::from_secs(10));
        assert_eq!("500ms".parse::<Span>().unwrap().0, Duration::from_millis(500));
        assert_eq!("2m".parse::<Span>().unwrap().0, Duration::from_secs(120));
        assert_eq!("1.5".parse::<Span>().unwrap().0, Duration::from_millis(1500));
        assert!("-1".parse::<Span>().is_err());
        assert!("soon".parse::<Span>().is_err());
        let from_json: Span = serde_json::from_str("\"3s\"").unwrap();
        assert_eq!(from_json.0, Duration::from_secs(3));
    }

    #[test]
    fn rates_are_decimal_bits_per_second() {
        assert_eq!("100M".parse::<BitRate>().unwrap().0, 100_000_000);
        assert_eq!("1.5G".parse::<BitRate>().unwrap().0, 1_500_000_000);
        assert_eq!("500k".parse::<BitRate>().unwrap().0, 500_000);
        assert_eq!("64000".parse::<BitRate>().unwrap().0, 64_000);
        assert!("-5M".parse::<BitRate>().is_err());
        assert!("fast".parse::<BitRate>().unwrap_err().contains("100M"));
        assert_eq!(BitRate(200_000_000).to_string(), "200M");
        let from_json: BitRate = serde_json::from_str("\"2G\"").unwrap();
        assert_eq!(from_json.0, 2_000_000_000);
    }

    #[test]
    fn mb_per_sec_is_decimal_megabytes() {
        assert_eq!(mb_per_sec(5_000_000, Duration::from_secs(1)), 5.0);
        assert_eq!(mb_per_sec(5_000_000, Duration::ZERO), 0.0);
    }
}
