//! Typed units of the policy file: `30s`, `10MiB`, `100/min`. Each parses
//! from a string and fails with a sentence that says what would be accepted.

use serde::{Deserialize, Deserializer};
use std::fmt;
use std::time::Duration as StdDuration;

/// A duration written as `<integer><unit>` with unit ms, s, m, h or d.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub StdDuration);

/// A size written as `<integer><unit>` with unit B, KiB, MiB, GiB (or KB/MB/GB as powers of 1000).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

/// A rate written as `<integer>/<unit>` with unit s, sec, second, min, minute, h, hour, d, day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: StdDuration,
}

fn split_number(text: &str) -> Option<(u64, &str)> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let number = text[..digits].parse().ok()?;
    Some((number, text[digits..].trim()))
}

impl Duration {
    pub fn parse(text: &str) -> Result<Self, String> {
        let hint = "write a whole number and a unit: 500ms, 30s, 15m, 12h or 90d";
        let (n, unit) =
            split_number(text).ok_or_else(|| format!("`{text}` is not a duration; {hint}"))?;
        let millis_per_unit: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(format!("`{text}` has no unit; {hint}")),
            _ => return Err(format!("`{text}` has an unknown unit `{unit}`; {hint}")),
        };
        let millis = n
            .checked_mul(millis_per_unit)
            .ok_or_else(|| format!("`{text}` is too long a duration"))?;
        Ok(Duration(StdDuration::from_millis(millis)))
    }
}

impl ByteSize {
    pub fn parse(text: &str) -> Result<Self, String> {
        let hint = "write a whole number and a unit: 512B, 16KiB, 10MiB or 1GiB";
        let (n, unit) =
            split_number(text).ok_or_else(|| format!("`{text}` is not a size; {hint}"))?;
        let factor: u64 = match unit {
            "B" | "" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "KB" | "kB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            _ => return Err(format!("`{text}` has an unknown unit `{unit}`; {hint}")),
        };
        n.checked_mul(factor)
            .map(ByteSize)
            .ok_or_else(|| format!("`{text}` is too large a size"))
    }
}

impl Rate {
    pub fn parse(text: &str) -> Result<Self, String> {
        let hint = "write requests per unit of time: 10/s, 100/min, 5000/h or 20000/d";
        let (count, rest) =
            split_number(text).ok_or_else(|| format!("`{text}` is not a rate; {hint}"))?;
        let unit = rest
            .strip_prefix('/')
            .map(str::trim)
            .ok_or_else(|| format!("`{text}` is not a rate; {hint}"))?;
        let per = match unit {
            "s" | "sec" | "second" => StdDuration::from_secs(1),
            "m" | "min" | "minute" => StdDuration::from_secs(60),
            "h" | "hour" => StdDuration::from_secs(3_600),
            "d" | "day" => StdDuration::from_secs(86_400),
            _ => return Err(format!("`{text}` has an unknown unit `{unit}`; {hint}")),
        };
        let count = u32::try_from(count)
            .ok()
            .filter(|c| *c > 0)
            .ok_or_else(|| format!("`{text}` must allow between 1 and 4294967295 requests"))?;
        Ok(Rate { count, per })
    }
}

macro_rules! deserialize_from_str {
    ($ty:ty, $what:expr) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$ty, E> {
                        <$ty>::parse(v).map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(V)
            }
        }
    };
}

/// The schema of a unit type: a string of its syntax (docs/policy.md "Units").
macro_rules! string_schema {
    ($ty:ty, $name:literal, $pattern:literal, $description:literal) => {
        impl schemars::JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "pattern": $pattern,
                    "description": $description
                })
            }
        }
    };
}

string_schema!(
    Duration,
    "Duration",
    r"^\s*[0-9]+\s*(ms|s|m|h|d)\s*$",
    "A whole number and a unit: ms, s, m, h or d (e.g. 30s)."
);
string_schema!(
    ByteSize,
    "ByteSize",
    r"^\s*[0-9]+\s*(B|KiB|MiB|GiB|KB|kB|MB|GB)?\s*$",
    "A whole number and a unit: B, KiB, MiB, GiB (or KB, MB, GB in powers of 1000), e.g. 16KiB."
);
string_schema!(
    Rate,
    "Rate",
    r"^\s*[0-9]+\s*/\s*(s|sec|second|m|min|minute|h|hour|d|day)\s*$",
    "Requests per unit of time: 10/s, 100/min, 5000/h or 20000/d."
);

deserialize_from_str!(Duration, "a duration such as 30s");
deserialize_from_str!(ByteSize, "a size such as 16KiB");
deserialize_from_str!(Rate, "a rate such as 100/min");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            Duration::parse("500ms").map(|d| d.0),
            Ok(StdDuration::from_millis(500))
        );
        assert_eq!(
            Duration::parse("30s").map(|d| d.0),
            Ok(StdDuration::from_secs(30))
        );
        assert_eq!(
            Duration::parse("15m").map(|d| d.0),
            Ok(StdDuration::from_secs(900))
        );
        assert_eq!(
            Duration::parse("12h").map(|d| d.0),
            Ok(StdDuration::from_secs(43_200))
        );
        assert_eq!(
            Duration::parse("90d").map(|d| d.0),
            Ok(StdDuration::from_secs(7_776_000))
        );
        for bad in [
            "",
            "10",
            "ten s",
            "10 parsecs",
            "-1s",
            "1.5s",
            "99999999999999999999d",
        ] {
            assert!(Duration::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(ByteSize::parse("16KiB"), Ok(ByteSize(16_384)));
        assert_eq!(ByteSize::parse("10MiB"), Ok(ByteSize(10_485_760)));
        assert_eq!(ByteSize::parse("512"), Ok(ByteSize(512)));
        assert_eq!(ByteSize::parse("2MB"), Ok(ByteSize(2_000_000)));
        assert!(ByteSize::parse("10 Mib").is_err());
        assert!(ByteSize::parse("lots").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(
            Rate::parse("100/min"),
            Ok(Rate {
                count: 100,
                per: StdDuration::from_secs(60)
            })
        );
        assert_eq!(
            Rate::parse("10/s"),
            Ok(Rate {
                count: 10,
                per: StdDuration::from_secs(1)
            })
        );
        for bad in ["0/s", "10", "10/fortnight", "/s", "5000000000/s"] {
            assert!(Rate::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
