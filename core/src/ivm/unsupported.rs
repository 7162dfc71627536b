//! Why a query cannot be maintained differentially: the construct, named for the user as the
//! object of "DIFFERENTIAL cannot maintain a query that uses …", and, where there is one, what to
//! do about it. Raised by DIFFERENTIAL and IMMEDIATE as `0A000` with the hint; AUTO names the
//! construct in its NOTICE and refreshes FULL.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The construct (`a volatile function (random(), ...)`).
    pub construct: String,
    /// What the user can do instead, when something specific can be said.
    pub hint: Option<String>,
}

impl Unsupported {
    pub fn new(construct: impl Into<String>) -> Unsupported {
        Unsupported {
            construct: construct.into(),
            hint: None,
        }
    }

    /// The same, with `hint`.
    pub fn hint(self, hint: impl Into<String>) -> Unsupported {
        Unsupported {
            hint: Some(hint.into()),
            ..self
        }
    }

    /// Nothing to report: FULL was asked for, or no rewrite applies (the query's own reason
    /// stands).
    pub fn none() -> Unsupported {
        Unsupported::new("")
    }

    pub fn is_none(&self) -> bool {
        self.construct.is_empty()
    }

    pub fn contains(&self, s: &str) -> bool {
        self.construct.contains(s)
    }
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.construct)
    }
}

impl From<String> for Unsupported {
    fn from(construct: String) -> Unsupported {
        Unsupported::new(construct)
    }
}

impl From<&str> for Unsupported {
    fn from(construct: &str) -> Unsupported {
        Unsupported::new(construct)
    }
}

impl From<Unsupported> for String {
    fn from(u: Unsupported) -> String {
        u.construct
    }
}
