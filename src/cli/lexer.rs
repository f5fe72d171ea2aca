//! The command line as a stream of flags and values, in the manner of
//! lexopt: [`Lexer::next`] says what the next argument is, and the parser
//! that asked decides whether a flag takes a value by asking for one
//! ([`Lexer::value`]). A value is taken as it is written, even when it
//! looks like a flag, so `-c "--x=y"` runs the command `--x=y`.
//!
//! The forms: `--name`, `--name=value` (only for a flag that takes a
//! value), `--name value`, `-c`, `-c value`, `-cvalue`, `-c=value`, and
//! short flags run together (`-hV`). Anything else, `-` included, is a
//! value.

use std::fmt;

use super::UsageError;

/// One item of the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// `-c`: one letter after a dash.
    Short(char),
    /// `--share`, named without its dashes.
    Long(String),
    /// Anything that is not a flag: a subcommand, a target.
    Value(String),
}

impl fmt::Display for Arg {
    /// A flag as it is written (`-c`, `--share`), a value as it is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Short(c) => write!(f, "-{c}"),
            Arg::Long(name) => write!(f, "--{name}"),
            Arg::Value(v) => f.write_str(v),
        }
    }
}

/// What is left of the argument the last flag came from.
#[derive(Debug)]
enum Rest {
    /// After `--name=`: the flag's value, if it takes one.
    Value(String),
    /// After `-c`: more short flags, or the flag's value (`-cNOOP`,
    /// `-c=NOOP`).
    Shorts(String),
}

/// The arguments after the program name, taken apart one at a time.
#[derive(Debug)]
pub struct Lexer {
    args: std::vec::IntoIter<String>,
    rest: Option<Rest>,
    /// The last flag, as written: what a message is about.
    last: String,
}

impl Lexer {
    pub fn new(args: impl IntoIterator<Item = String>) -> Lexer {
        Lexer {
            args: args.into_iter().collect::<Vec<_>>().into_iter(),
            rest: None,
            last: String::new(),
        }
    }

    /// The next flag or value; None at the end. A value written into the
    /// last flag (`--overwrite=no`) and not taken by [`Lexer::value`] is
    /// an error here: that flag takes none. (Not an iterator: it can fail,
    /// and [`Lexer::value`] takes arguments between two calls.)
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Arg>, UsageError> {
        match self.rest.take() {
            Some(Rest::Value(v)) => return Err(self.takes_no_value(&v)),
            Some(Rest::Shorts(s)) => match s.strip_prefix('=') {
                Some(v) => return Err(self.takes_no_value(v)),
                None => return Ok(Some(self.short(&s))),
            },
            None => {}
        }
        let Some(arg) = self.args.next() else {
            return Ok(None);
        };
        if let Some(long) = arg.strip_prefix("--") {
            let name = match long.split_once('=') {
                Some((name, value)) => {
                    self.rest = Some(Rest::Value(value.to_string()));
                    name
                }
                None => long,
            };
            self.last = format!("--{name}");
            return Ok(Some(Arg::Long(name.to_string())));
        }
        match arg.strip_prefix('-') {
            Some(shorts) if !shorts.is_empty() => Ok(Some(self.short(shorts))),
            _ => Ok(Some(Arg::Value(arg))),
        }
    }

    /// The value of the flag just yielded: the one written into it
    /// (`--name=value`, `-cvalue`, `-c=value`), else the next argument,
    /// whatever it looks like.
    pub fn value(&mut self) -> Result<String, UsageError> {
        match self.rest.take() {
            Some(Rest::Value(v)) => Ok(v),
            Some(Rest::Shorts(s)) => Ok(s.strip_prefix('=').unwrap_or(&s).to_string()),
            None => self
                .args
                .next()
                .ok_or_else(|| UsageError(format!("{} needs a value", self.last))),
        }
    }

    /// The first letter of `shorts` as a flag; the others wait in `rest`.
    fn short(&mut self, shorts: &str) -> Arg {
        let mut chars = shorts.chars();
        let c = chars.next().unwrap_or('-');
        if !chars.as_str().is_empty() {
            self.rest = Some(Rest::Shorts(chars.as_str().to_string()));
        }
        self.last = format!("-{c}");
        Arg::Short(c)
    }

    fn takes_no_value(&self, value: &str) -> UsageError {
        UsageError(format!(
            "{} takes no value (given '{value}'); write it alone",
            self.last
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every item of `args`, a flag followed by its value where `valued`
    /// names it, as text: `-c=NOOP` → `["-c", "NOOP"]`.
    fn lexed(args: &[&str], valued: &[&str]) -> Result<Vec<String>, UsageError> {
        let mut lex = Lexer::new(args.iter().map(|a| a.to_string()));
        let mut out = Vec::new();
        while let Some(arg) = lex.next()? {
            let text = arg.to_string();
            let takes = matches!(arg, Arg::Short(_) | Arg::Long(_)) && valued.contains(&&*text);
            out.push(text);
            if takes {
                out.push(lex.value()?);
            }
        }
        Ok(out)
    }

    #[test]
    fn flags_and_values_in_every_form() {
        let valued = ["-c", "--command", "--share"];
        for (args, items) in [
            (&["-c", "NOOP"][..], &["-c", "NOOP"][..]),
            (&["-c=NOOP"], &["-c", "NOOP"]),
            (&["-cNOOP"], &["-c", "NOOP"]),
            (&["--command=NOOP"], &["--command", "NOOP"]),
            (&["--command", "NOOP"], &["--command", "NOOP"]),
            // A value is taken as written, flags and `=` included.
            (&["-c", "--x=y"], &["-c", "--x=y"]),
            (&["-c", "-h"], &["-c", "-h"]),
            (&["--share=a=b"], &["--share", "a=b"]),
            (&["--share="], &["--share", ""]),
            (&["-c=", "x"], &["-c", "", "x"]),
            (&["-hV", "-", "host:1"], &["-h", "-V", "-", "host:1"]),
            (&["--overwrite", "x"], &["--overwrite", "x"]),
            (&["--"], &["--"]),
        ] {
            assert_eq!(lexed(args, &valued).unwrap(), items, "{args:?}");
        }
    }

    #[test]
    fn a_value_given_to_a_flag_without_one_is_refused() {
        let valued = ["-c", "--share"];
        for (args, says) in [
            (
                &["--overwrite=no", "-c", "NOOP"][..],
                "--overwrite takes no value",
            ),
            (
                &["-c", "NOOP", "--overwrite=no"],
                "--overwrite takes no value",
            ),
            (&["-h=1"], "-h takes no value"),
            (&["-V=", "x"], "-V takes no value"),
            (&["--share"], "--share needs a value"),
            (&["-c"], "-c needs a value"),
        ] {
            let e = lexed(args, &valued).unwrap_err();
            assert!(e.0.contains(says), "{args:?}: {e}");
        }
    }
}
