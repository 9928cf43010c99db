//! The world: how many functions, which of them live in loadable modules, how many tracers.
//!
//! Text form (one line, used in reproducer files):
//! `world functions=4 tracers=2 module=m0:f2,f3`. Module functions start unloaded.

use crate::ids::{FnId, ModId};
use std::fmt;

/// Upper bounds that keep every loop and table bounded.
pub const FUNCTIONS_MAX: u16 = 60_000;
pub const MODULES_MAX: u8 = 8;
pub const TRACERS_MAX: u8 = 8;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct World {
    pub functions: u16,
    pub tracers: u8,
    /// For each module, its functions (disjoint, sorted).
    pub modules: Vec<Vec<FnId>>,
}

impl World {
    /// A world with `functions` built-in functions, two tracers and no modules.
    pub fn new(functions: u16) -> World {
        World {
            functions,
            tracers: 2,
            modules: Vec::new(),
        }
    }

    /// Adds a module holding `fns`.
    pub fn with_module(mut self, fns: &[u16]) -> World {
        self.modules.push(fns.iter().map(|&f| FnId(f)).collect());
        self
    }

    pub fn fns(&self) -> impl Iterator<Item = FnId> {
        (0..self.functions).map(FnId)
    }

    /// The module a function lives in, if any.
    pub fn module_of(&self, f: FnId) -> Option<ModId> {
        self.modules
            .iter()
            .position(|m| m.contains(&f))
            .map(|i| ModId(i as u8))
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.functions == 0 || self.functions > FUNCTIONS_MAX {
            return Err(format!(
                "functions must be between 1 and {FUNCTIONS_MAX}, found {}",
                self.functions
            ));
        }
        if self.tracers > TRACERS_MAX {
            return Err(format!(
                "tracers must be at most {TRACERS_MAX}, found {}",
                self.tracers
            ));
        }
        if self.modules.len() > MODULES_MAX as usize {
            return Err(format!(
                "at most {MODULES_MAX} modules, found {}",
                self.modules.len()
            ));
        }
        let mut seen = vec![false; self.functions as usize];
        for (i, m) in self.modules.iter().enumerate() {
            if m.is_empty() {
                return Err(format!("module m{i} has no functions"));
            }
            for f in m {
                let slot = seen.get_mut(f.0 as usize).ok_or_else(|| {
                    format!(
                        "module m{i} names {f}, but the world has only {} functions",
                        self.functions
                    )
                })?;
                if *slot {
                    return Err(format!("{f} is listed in two modules"));
                }
                *slot = true;
            }
        }
        Ok(())
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "world functions={} tracers={}",
            self.functions, self.tracers
        )?;
        for (i, m) in self.modules.iter().enumerate() {
            let fns: Vec<String> = m.iter().map(|x| x.to_string()).collect();
            write!(f, " module=m{i}:{}", fns.join(","))?;
        }
        Ok(())
    }
}

impl std::str::FromStr for World {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut words = s.split_whitespace();
        if words.next() != Some("world") {
            return Err(format!("expected `world functions=N ...`, found `{s}`"));
        }
        let mut w = World {
            functions: 0,
            tracers: 2,
            modules: Vec::new(),
        };
        for word in words {
            let (k, v) = word
                .split_once('=')
                .ok_or_else(|| format!("expected key=value in world line, found `{word}`"))?;
            match k {
                "functions" => {
                    w.functions = v.parse().map_err(|_| format!("bad function count `{v}`"))?
                }
                "tracers" => {
                    w.tracers = v.parse().map_err(|_| format!("bad tracer count `{v}`"))?
                }
                "module" => {
                    let (name, fns) = v
                        .split_once(':')
                        .ok_or_else(|| format!("expected module=mN:f1,f2, found `{v}`"))?;
                    let id: ModId = name.parse()?;
                    if id.0 as usize != w.modules.len() {
                        return Err(format!(
                            "modules must be numbered in order: expected m{}, found {name}",
                            w.modules.len()
                        ));
                    }
                    let mut list = fns
                        .split(',')
                        .map(|x| x.parse::<FnId>())
                        .collect::<Result<Vec<_>, _>>()?;
                    list.sort();
                    w.modules.push(list);
                }
                _ => {
                    return Err(format!(
                        "unknown world key `{k}` (expected functions, tracers, module)"
                    ))
                }
            }
        }
        w.validate()?;
        Ok(w)
    }
}
