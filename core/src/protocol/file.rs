//! Protocol files (`base = "<preset>"` plus overrides), `key=value` overrides from the command
//! line, and what goes wrong reading them.

use super::{Protocol, PRESETS, SWITCHES};
use std::fmt;

impl Protocol {
    /// The protocol of a `key = value` text (a protocol file): `base = "<preset>"` first, then
    /// overrides, `#` comments and blank lines allowed.
    pub fn parse_file(text: &str) -> Result<Protocol, ProtocolError> {
        let mut proto: Option<Protocol> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (k, v) = line.split_once('=').ok_or_else(|| ProtocolError::Syntax {
                line: i + 1,
                text: raw.to_string(),
            })?;
            let (k, v) = (k.trim(), v.trim().trim_matches('"'));
            if k == "base" {
                if proto.is_some() {
                    return Err(ProtocolError::Syntax {
                        line: i + 1,
                        text: "`base` given twice".into(),
                    });
                }
                proto = Some(
                    Protocol::preset(v)
                        .ok_or_else(|| ProtocolError::UnknownPreset(v.to_string()))?,
                );
                continue;
            }
            let p = proto.as_mut().ok_or(ProtocolError::MissingBase)?;
            p.set(k, v).map_err(|e| e.at_line(i + 1))?;
        }
        let p = proto.ok_or(ProtocolError::MissingBase)?;
        p.validate()?;
        Ok(p)
    }
}

/// What went wrong reading a protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    UnknownPreset(String),
    UnknownSwitch(String),
    UnknownValue {
        switch: &'static str,
        value: String,
        allowed: &'static [&'static str],
    },
    Inexpressible(String),
    MissingBase,
    Syntax {
        line: usize,
        text: String,
    },
    AtLine(usize, Box<ProtocolError>),
}

impl ProtocolError {
    fn at_line(self, line: usize) -> ProtocolError {
        ProtocolError::AtLine(line, Box::new(self))
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::UnknownPreset(p) => {
                let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
                write!(f, "unknown protocol `{p}` (presets: {})", names.join(", "))
            }
            ProtocolError::UnknownSwitch(s) => {
                let names: Vec<&str> = SWITCHES.iter().map(|s| s.name).collect();
                write!(f, "unknown switch `{s}` (switches: {})", names.join(", "))
            }
            ProtocolError::UnknownValue {
                switch,
                value,
                allowed,
            } => {
                write!(
                    f,
                    "unknown value `{value}` for switch `{switch}` (allowed: {})",
                    allowed.join(", ")
                )
            }
            ProtocolError::Inexpressible(why) => {
                write!(f, "the model cannot express this protocol: {why}")
            }
            ProtocolError::MissingBase => {
                write!(f, "protocol file must start with `base = \"<preset>\"`")
            }
            ProtocolError::Syntax { line, text } => {
                write!(f, "line {line}: expected `key = value`, found `{text}`")
            }
            ProtocolError::AtLine(line, e) => write!(f, "line {line}: {e}"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Resolves a protocol from a preset name plus `key=value` overrides.
pub fn resolve(name: &str, sets: &[(String, String)]) -> Result<Protocol, ProtocolError> {
    let mut p =
        Protocol::preset(name).ok_or_else(|| ProtocolError::UnknownPreset(name.to_string()))?;
    for (k, v) in sets {
        p.set(k, v)?;
    }
    p.validate()?;
    Ok(p)
}

/// Splits a `key=value` argument.
pub fn parse_assignment(s: &str) -> Result<(String, String), ProtocolError> {
    let (k, v) = s.split_once('=').ok_or_else(|| ProtocolError::Syntax {
        line: 0,
        text: s.to_string(),
    })?;
    Ok((k.trim().to_string(), v.trim().trim_matches('"').to_string()))
}
