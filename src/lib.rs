//! tagback: catch Django downgrades in Docker stack files and generate the
//! exact backward-migration rollback.
//!
//! The library never prints; renderers write to an `io::Write` and the
//! binary decides the exit code (0 safe, 1 unsafe, 2 error).
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod cli;
pub mod config;
pub mod demo;
pub mod deploy;
pub mod django;
pub mod error;
pub mod finding;
pub mod fs;
#[doc(hidden)]
pub mod fuzzing;
pub mod git;
pub mod guard;
pub mod hex;
pub mod ledger;
pub mod packages;
pub mod plan;
pub mod report;
pub mod script;
pub mod source;
pub mod stack;

pub use error::{Error, Result};

/// How a command ended, mapped to the process exit code by `main`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing unsafe (exit 0).
    Safe,
    /// Something is unsafe or was refused (exit 1).
    Unsafe,
}

impl Outcome {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Safe => 0,
            Outcome::Unsafe => 1,
        }
    }

    /// `Unsafe` if either is.
    pub fn and(self, other: Outcome) -> Outcome {
        if self == Outcome::Unsafe || other == Outcome::Unsafe {
            Outcome::Unsafe
        } else {
            Outcome::Safe
        }
    }
}
