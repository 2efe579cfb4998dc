//! Typed step parameters: `{site}` and `{duration}`.

use crate::units::Dur;
use std::str::FromStr;

/// A site name as written in a step (`site a`).
#[derive(Clone, Debug, PartialEq, Eq, cucumber::Parameter)]
#[param(name = "site", regex = "[a-z0-9]+")]
pub struct Site(pub String);

impl FromStr for Site {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(Site(s.to_string()))
    }
}

/// A duration as written in a step (`30s`, `2m`, `1m30s`, `500ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, cucumber::Parameter)]
#[param(name = "duration", regex = r"\d+(?:\.\d+)?(?:ms|s|m|h)(?:\d+(?:\.\d+)?(?:ms|s|m|h))*")]
pub struct Duration(pub std::time::Duration);

impl FromStr for Duration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse::<Dur>().map(|d| Duration(d.0))
    }
}
