//! Resource limits written in docker's value syntax (`--memory 512m`, `--cpus 1.5`,
//! `--pids 256`), parsed once into the units the engine API takes; `none` lifts a limit
//! ([`Limit`]).

use std::fmt;
use std::str::FromStr;

/// Why a resource limit could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LimitError {
    /// The memory size is not a number with an optional unit (b, k, m, g, t, p).
    #[error(
        "invalid memory size {0:?}: expected a number with an optional unit, like 512m or 1.5g"
    )]
    Memory(String),
    /// The CPU count is not a positive decimal number with at most 9 decimal places.
    #[error("invalid number of CPUs {0:?}: expected a positive decimal number, like 1.5")]
    Cpus(String),
    /// The process count is not a positive integer.
    #[error("invalid process limit {0:?}: expected a positive integer, like 256")]
    Pids(String),
}

/// A memory limit in bytes, written like docker's `--memory`: a decimal number followed by
/// an optional binary unit `b`, `k`, `m`, `g`, `t` or `p` (case-insensitive, an optional
/// trailing `b`/`ib` is accepted: `512m`, `512MB`, `1.5GiB`). A bare number is bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "TomlScalar")]
pub(crate) struct MemoryLimit(u64);

impl MemoryLimit {
    /// The limit in bytes, as the engine's `HostConfig.Memory` takes it.
    pub(crate) fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for MemoryLimit {
    type Err = LimitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || LimitError::Memory(text.to_owned());
        let lower = text.trim().to_ascii_lowercase();
        let digits_end = lower
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(lower.len());
        let (number, unit) = lower.split_at(digits_end);
        let unit = unit.trim_start();
        let unit = unit
            .strip_suffix("ib")
            .or_else(|| unit.strip_suffix('b').filter(|rest| !rest.is_empty()))
            .unwrap_or(unit);
        let shift = match unit {
            "" | "b" => 0,
            "k" => 10,
            "m" => 20,
            "g" => 30,
            "t" => 40,
            "p" => 50,
            _ => return Err(invalid()),
        };
        let (units, nanos) = parse_decimal(number).ok_or_else(invalid)?;
        let whole = units.checked_shl(shift).filter(|v| v >> shift == units);
        let fraction = (u128::from(nanos) << shift) / 1_000_000_000;
        let bytes = whole
            .and_then(|w| w.checked_add(u64::try_from(fraction).ok()?))
            .filter(|&b| b > 0)
            .ok_or_else(invalid)?;
        Ok(Self(bytes))
    }
}

impl fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.0)
    }
}

/// A CPU limit written like docker's `--cpus`: a positive decimal number of CPUs, stored
/// exactly as billionths of a CPU (the engine's `HostConfig.NanoCpus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "TomlScalar")]
pub(crate) struct CpuLimit(u64);

impl CpuLimit {
    /// The limit in billionths of a CPU.
    pub(crate) fn nano_cpus(self) -> u64 {
        self.0
    }
}

impl FromStr for CpuLimit {
    type Err = LimitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || LimitError::Cpus(text.to_owned());
        let (units, nanos) = parse_decimal(text.trim()).ok_or_else(invalid)?;
        units
            .checked_mul(1_000_000_000)
            .and_then(|n| n.checked_add(nanos))
            .filter(|&n| n > 0)
            .map(Self)
            .ok_or_else(invalid)
    }
}

impl fmt::Display for CpuLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:09} CPUs",
            self.0 / 1_000_000_000,
            self.0 % 1_000_000_000
        )
    }
}

/// A limit on the number of processes (and threads) in the container, a positive integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "TomlScalar")]
pub(crate) struct PidsLimit(u32);

impl PidsLimit {
    /// The limit as the engine's `HostConfig.PidsLimit` takes it.
    pub(crate) fn get(self) -> u32 {
        self.0
    }
}

impl FromStr for PidsLimit {
    type Err = LimitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.trim()
            .parse::<u32>()
            .ok()
            .filter(|&n| n > 0)
            .map(Self)
            .ok_or_else(|| LimitError::Pids(text.to_owned()))
    }
}

impl fmt::Display for PidsLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} processes", self.0)
    }
}

/// A limit as given on the command line or in the settings file: a value, or `none` for
/// no limit at all (which also lifts the launcher's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit<T> {
    /// `none`: no limit.
    Unlimited,
    /// A limit.
    At(T),
}

impl<T> Limit<T> {
    /// The limit, or `None` for no limit.
    pub(crate) fn value(self) -> Option<T> {
        match self {
            Limit::Unlimited => None,
            Limit::At(value) => Some(value),
        }
    }
}

impl<T: FromStr<Err = LimitError>> FromStr for Limit<T> {
    type Err = LimitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.trim().eq_ignore_ascii_case("none") {
            Ok(Limit::Unlimited)
        } else {
            text.parse().map(Limit::At)
        }
    }
}

impl<'de, T: FromStr<Err = LimitError>> serde::Deserialize<'de> for Limit<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let scalar = TomlScalar::deserialize(deserializer)?;
        String::from(scalar)
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A scalar as a TOML settings file may write a limit: `"512m"`, `256` or `1.5`.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
pub(crate) enum TomlScalar {
    /// A string, parsed with the same syntax as the command line.
    Text(String),
    /// An integer.
    Integer(i64),
    /// A float (CPUs); its shortest decimal form is parsed.
    Float(f64),
}

impl From<TomlScalar> for String {
    fn from(value: TomlScalar) -> Self {
        match value {
            TomlScalar::Text(text) => text,
            TomlScalar::Integer(n) => n.to_string(),
            TomlScalar::Float(x) => x.to_string(),
        }
    }
}

macro_rules! deserialize_via_from_str {
    ($($limit:ty),*) => {$(
        impl TryFrom<TomlScalar> for $limit {
            type Error = LimitError;

            fn try_from(value: TomlScalar) -> Result<Self, Self::Error> {
                String::from(value).parse()
            }
        }
    )*};
}
deserialize_via_from_str!(MemoryLimit, CpuLimit, PidsLimit);

/// Splits `12.345` into whole units and billionths, exactly (no floating point), so that
/// `1.1` CPUs is 1_100_000_000 nano-CPUs and not 1_099_999_999.
fn parse_decimal(text: &str) -> Option<(u64, u64)> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || fraction.len() > 9 {
        return None;
    }
    if text.ends_with('.') {
        return None;
    }
    let units = whole.parse::<u64>().ok()?;
    let nanos = format!("{fraction:0<9}").parse::<u64>().ok()?;
    Some((units, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_parse_like_docker() {
        let cases = [
            ("512m", 512 << 20),
            ("512M", 512 << 20),
            ("512mb", 512 << 20),
            ("512MiB", 512 << 20),
            ("1g", 1 << 30),
            ("1.5g", 3 << 29),
            ("64k", 64 << 10),
            ("4096", 4096),
            ("4096b", 4096),
            ("2t", 2 << 40),
        ];
        for (text, bytes) in cases {
            assert_eq!(
                text.parse::<MemoryLimit>().map(MemoryLimit::bytes),
                Ok(bytes),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_memory_sizes_are_rejected() {
        for text in [
            "",
            "m",
            "-1m",
            "12x",
            "1.2.3g",
            "0",
            "0m",
            "1.g",
            "99999999999p",
            "1 mb x",
        ] {
            assert!(
                text.parse::<MemoryLimit>().is_err(),
                "{text:?} was accepted"
            );
        }
    }

    #[test]
    fn cpus_are_exact_decimals() {
        let cases = [
            ("1.5", 1_500_000_000),
            ("1.1", 1_100_000_000),
            ("2", 2_000_000_000),
            ("0.25", 250_000_000),
        ];
        for (text, nanos) in cases {
            assert_eq!(
                text.parse::<CpuLimit>().map(CpuLimit::nano_cpus),
                Ok(nanos),
                "{text}"
            );
        }
        for text in ["0", "0.0", "-1", "1.5x", "", ".5", "1.0000000001"] {
            assert!(text.parse::<CpuLimit>().is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn none_lifts_a_limit_and_anything_else_parses_as_the_limit() {
        assert_eq!("none".parse::<Limit<MemoryLimit>>(), Ok(Limit::Unlimited));
        assert_eq!(" None ".parse::<Limit<PidsLimit>>(), Ok(Limit::Unlimited));
        assert_eq!(
            "2g".parse::<Limit<MemoryLimit>>()
                .map(|l| l.value().map(MemoryLimit::bytes)),
            Ok(Some(2 << 30))
        );
        assert!("nothing".parse::<Limit<CpuLimit>>().is_err());
    }

    #[test]
    fn pids_must_be_positive_integers() {
        assert_eq!("256".parse::<PidsLimit>().map(PidsLimit::get), Ok(256));
        for text in ["0", "-1", "1.5", "many"] {
            assert!(text.parse::<PidsLimit>().is_err(), "{text:?} was accepted");
        }
    }
}
