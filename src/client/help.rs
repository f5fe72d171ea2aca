//! The console's `help`: the protocol's commands as its command table
//! declares them ([`protocol::COMMANDS`], the same usage and text as the
//! peer's `HELP`), with the client's own lines for what it does
//! differently (patterns, `--overwrite`, uploads from the share folder,
//! `HELP` answered by the peer, `--secret`), then the names and the local
//! commands.

use crate::protocol::{self, Dialect};

/// The commands the client runs its own way: verb, usage, text.
const OWN: &[(&str, &str, &str)] = &[
    (
        "FileDownload",
        "FileDownload [TCP|UDP] [--overwrite] <name-or-pattern>",
        "verified download into the share folder; a partial one resumes by itself; \
         --overwrite replaces a local file whose content differs, for this command",
    ),
    (
        "FileUpload",
        "FileUpload <name-or-pattern>",
        "send files from the share folder (if the peer allows)",
    ),
    (
        "HELP",
        "HELP [<command>]",
        "the peer's list of commands, or one command's usage",
    ),
    (
        "History",
        "History [<n>] [--only <verb>] [--no-poll]",
        "the PEER's history (the other side's records); the lowercase local \
         command history shows this side's",
    ),
    (
        "AUTH",
        "AUTH <secret>",
        "authenticate where the peer requires a secret, sending it as it is (--secret \
         logs in on connecting by AUTH PROOF instead, never sending it)",
    ),
];

/// Commands of the client alone, not sent as typed: usage, text.
const CLIENT_ONLY: &[(&str, &str)] = &[
    (
        "Sync [--dry-run] [--delete] [--force-delete] [<pattern>]",
        "pull the peer's changes into the share folder: new and changed files \
         downloaded, files changed on both sides: the newer under the name, the other \
         beside it as NAME.sync-conflict-TIME-ID.EXT; --delete moves files deleted there \
         into the state folder's trash, where every version a download replaces goes \
         too; --dry-run shows the plan only",
    ),
    (
        "Sync --restore [<name> [<time>]]",
        "list what Sync put into the trash, newest first, or bring a version of \
         <name> back (the newest, or the one of that time); a different file under \
         that name goes to the trash in turn",
    ),
];

const NAMES_AND_LOCAL: &str = "\
Names are written as the client shows them: quotes around spaces, \\t \\n
\\r \\\\ for TAB, LF, CR and a backslash, \\u{HEX} for other control characters.
Local commands (lowercase):
  history [<n>] [--only <verb>] [--no-poll]
                  THIS side's history (requests received and made), only
                  one command's rows, or without the pollers' FileHash
                  checkall; History (capital H) is the peer's
  help            this text
  exit            same as QUIT
";

/// Where a command's text starts, and how wide the help may be.
const TEXT_COLUMN: usize = 18;
const WIDTH: usize = 78;

/// The console's help text.
pub fn text() -> String {
    let mut out = String::from("Commands go to the peer, typed as over nc (case-insensitive):\n");
    for spec in protocol::COMMANDS {
        if spec.dialect != Dialect::P2pshare {
            continue;
        }
        let (usage, help) = match OWN.iter().find(|(verb, ..)| *verb == spec.verb) {
            Some((_, usage, help)) => (*usage, *help),
            None => (spec.usage, spec.help),
        };
        entry(&mut out, usage, help);
    }
    for (usage, help) in CLIENT_ONLY {
        entry(&mut out, usage, help);
    }
    out.push_str(NAMES_AND_LOCAL);
    out
}

/// `  usage` and its text from [`TEXT_COLUMN`] on, on the same line when
/// the usage leaves room, wrapped at [`WIDTH`].
fn entry(out: &mut String, usage: &str, help: &str) {
    let usage = format!("  {usage}");
    let mut line = if usage.len() + 2 <= TEXT_COLUMN {
        format!("{usage:TEXT_COLUMN$}")
    } else {
        out.push_str(&usage);
        out.push('\n');
        " ".repeat(TEXT_COLUMN)
    };
    let mut words = 0;
    for word in help.split_whitespace() {
        if words > 0 && line.len() + 1 + word.len() > WIDTH {
            out.push_str(&line);
            out.push('\n');
            line = " ".repeat(TEXT_COLUMN);
            words = 0;
        }
        if words > 0 {
            line.push(' ');
        }
        line.push_str(word);
        words += 1;
    }
    out.push_str(&line);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_of_the_table_is_in_the_help_once() {
        let help = text();
        // The FTP verbs are for FTP clients: the console has no use for
        // them.
        for spec in protocol::COMMANDS {
            if spec.dialect != Dialect::P2pshare {
                assert!(!help.contains(spec.usage), "{}", spec.usage);
                continue;
            }
            let own = OWN.iter().find(|(verb, ..)| *verb == spec.verb);
            let usage = own.map_or(spec.usage, |(_, usage, _)| usage);
            let lines = help
                .lines()
                .filter(|l| l.trim_start().starts_with(usage))
                .count();
            assert_eq!(lines, 1, "{usage}:\n{help}");
        }
        // The client's own lines are about commands the table has.
        for (verb, ..) in OWN {
            assert!(protocol::find(verb).is_some(), "{verb}");
        }
        assert!(help.lines().all(|l| l.len() <= WIDTH), "{help}");
    }

    #[test]
    fn history_and_history_say_whose_they_are() {
        let help = text();
        let remote = help.find("  History [").expect("History");
        let local = help.find("  history [").expect("history");
        assert!(help[remote..].contains("the PEER's history"), "{help}");
        assert!(help[local..].contains("THIS side's history"), "{help}");
    }

    #[test]
    fn short_usages_share_their_line_and_long_texts_wrap() {
        let mut out = String::new();
        entry(&mut out, "NOOP", "do nothing, answer 200");
        assert_eq!(out, "  NOOP            do nothing, answer 200\n");
        let mut out = String::new();
        entry(
            &mut out,
            "FileHash verify <name> | checkall",
            &"word ".repeat(20),
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "  FileHash verify <name> | checkall");
        assert!(lines[1..].iter().all(|l| l.starts_with(&" ".repeat(18))));
        assert_eq!(lines.len(), 3, "{out}");
    }
}
