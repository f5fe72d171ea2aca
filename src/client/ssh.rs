//! Reaching a peer through ssh: `ssh://[user@]host[:port][/path]` starts
//!
//! ```text
//! ssh [-p PORT] -- [USER@]HOST 'REMOTE' 'serve' '--stdio' ['--share' 'PATH']
//! ```
//!
//! and runs the control connection over its stdin and stdout (see
//! `pipe`). REMOTE is `--remote-command` (default `p2pshare`);
//! [`SSH_ENV`] replaces `ssh` itself, split into words by
//! [`split_command`]. ssh joins the words after the host into one line
//! for the remote shell, so each is single-quoted ([`quote_remote`]).
//!
//! A connection that ends before the greeting is told by what ssh's exit
//! status and its last lines on stderr say (ssh's own message passes
//! through above it): the remote command not found, the login or the
//! host key refused, the host not reached, or the remote side ending
//! early.

use std::io;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use super::control::Client;
use super::error::ClientError;
use super::out::tell;
use super::pipe::{ChildPipe, Ended};
use super::settings::Settings;
use super::transport::Peer;
use crate::addr::{self, SshTarget};
use crate::history::History;
use crate::protocol::Transport;

/// The environment variable that replaces the ssh command, as
/// `RSYNC_RSH` and `GIT_SSH_COMMAND` do.
pub const SSH_ENV: &str = "P2PSHARE_SSH";

/// The remote command when `--remote-command` does not name one.
pub const DEFAULT_REMOTE: &str = "p2pshare";

/// Connects to the peer `settings.target` names: through ssh for an
/// `ssh://` URL, else over TCP.
pub(crate) fn connect(
    settings: &Settings,
    history: Option<Arc<History>>,
) -> Result<Client, ClientError> {
    let secret = settings.secret.as_deref();
    match addr::parse_ssh(&settings.target) {
        None => Client::connect(&settings.target, settings.timeout, history, secret),
        Some(Err(e)) => Err(ClientError::Connect(
            settings.target.clone(),
            io::Error::new(io::ErrorKind::InvalidInput, e),
        )),
        Some(Ok(t)) => connect_ssh(settings, &t, history),
    }
}

/// True when `target` is an `ssh://` URL.
pub fn is_ssh(target: &str) -> bool {
    addr::parse_ssh(target).is_some()
}

/// The transport a download from `target` asks for: over ssh there is
/// only the one stream, so `FileDownload UDP` goes inline as TCP does
/// (said on stderr).
pub(crate) fn transport_for(target: &str, asked: Transport) -> Transport {
    if asked == Transport::Udp && is_ssh(target) {
        tell!("p2pshare: over ssh the bytes go inside the ssh connection, not over UDP");
        return Transport::Tcp;
    }
    asked
}

fn connect_ssh(
    s: &Settings,
    t: &SshTarget,
    history: Option<Arc<History>>,
) -> Result<Client, ClientError> {
    let url = s.target.clone();
    let cannot = |e: io::Error| ClientError::Connect(url.clone(), e);
    // Trying again changes nothing: a wrong P2PSHARE_SSH, no ssh.
    let unusable = |e: io::Error| ClientError::Unusable(url.clone(), e);
    let env = std::env::var_os(SSH_ENV);
    let ssh_words = match &env {
        None => vec!["ssh".to_string()],
        Some(v) => {
            let v = v.to_str().ok_or_else(|| {
                unusable(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{SSH_ENV} is not UTF-8"),
                ))
            })?;
            split_command(v).map_err(|e| {
                unusable(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{SSH_ENV}: {e}"),
                ))
            })?
        }
    };
    let remote = s.remote_command.as_deref().unwrap_or(DEFAULT_REMOTE);
    let argv = command_line(&ssh_words, t, remote);
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().map_err(|e| {
        let how = if env.is_some() {
            format!("check {SSH_ENV}")
        } else {
            format!("install OpenSSH's client, or name another in {SSH_ENV}")
        };
        unusable(io::Error::new(
            e.kind(),
            format!("cannot run '{}': {e} ({how})", argv[0]),
        ))
    })?;
    let ended = Arc::new(Mutex::new(Ended::default()));
    let pipe = ChildPipe::new(child, s.timeout, ended.clone()).map_err(&cannot)?;
    let held = pipe.held();
    let peer = Peer::Ssh(url.clone());
    let secret = s.secret.as_deref();
    let connected = Client::over(Box::new(pipe), peer, s.timeout, history, secret);
    // The pipe is dropped by now when it failed: the child ended, or was
    // ended, and its stderr is all there.
    match &connected {
        Ok(_) => {
            *last_failure() = Vec::new();
            held.release();
        }
        Err(_) => tell_once(held.take()),
    }
    match connected {
        Err(e @ (ClientError::Io(_) | ClientError::Closed(..) | ClientError::Protocol(_))) => {
            let ended = std::mem::take(&mut *ended.lock().unwrap_or_else(|p| p.into_inner()));
            Err(early_end(&url, t, remote, &ended, &e))
        }
        other => other,
    }
}

/// What ssh said on stderr the last time it failed to connect.
fn last_failure() -> std::sync::MutexGuard<'static, Vec<String>> {
    static LAST: Mutex<Vec<String>> = Mutex::new(Vec::new());
    LAST.lock().unwrap_or_else(|p| p.into_inner())
}

/// Shows what ssh said on stderr before it failed, unless it said just
/// that the time before (a peer mode that waits for the other side tries
/// again and again).
fn tell_once(lines: Vec<String>) {
    let mut last = last_failure();
    if *last != lines {
        for l in &lines {
            tell!("{l}");
        }
        *last = lines;
    }
}

/// Why the ssh connection ended before a usable greeting, from ssh's
/// exit status and its last words on stderr.
fn early_end(
    url: &str,
    t: &SshTarget,
    remote: &str,
    ended: &Ended,
    e: &ClientError,
) -> ClientError {
    let host = &t.host;
    let said = |needle: &str| {
        ended
            .tail
            .iter()
            .any(|l| l.to_ascii_lowercase().contains(needle))
    };
    let code = ended.status.and_then(|s| s.code());
    let above = "ssh's message is above";
    let (fatal, why) = match code {
        Some(127) => (
            true,
            format!(
                "the remote command '{remote}' was not found on {host} (exit status 127). Install p2pshare there (e.g. `cargo install --path .` from its source, into a folder on the PATH of a non-interactive ssh login), or name its full path with --remote-command"
            ),
        ),
        Some(126) => (
            true,
            format!(
                "the remote command '{remote}' on {host} cannot be run (exit status 126: not executable?); give an executable p2pshare with --remote-command"
            ),
        ),
        Some(255) if said("host key verification failed") || said("identification has changed") => (
            true,
            format!("ssh refused the host key of {host} ({above}); check known_hosts before you trust it"),
        ),
        Some(255) if said("permission denied") || said("too many authentication failures") => (
            true,
            format!("ssh could not log in to {host}: the login was refused ({above})"),
        ),
        Some(255) => (
            false,
            format!("ssh could not reach or log in to {host} (exit status 255; {above})"),
        ),
        _ => {
            let status = match (code, ended.status) {
                (Some(c), _) => format!("exit status {c}"),
                (None, Some(s)) => s.to_string(),
                (None, None) => "its status unknown".to_string(),
            };
            let what = match e {
                ClientError::Protocol(m) => format!(
                    "sent something other than p2pshare's greeting ({m}); does a login script of {host} print to stdout?"
                ),
                _ => format!(
                    "ended before its greeting ({status}); is '{remote}' a p2pshare with `serve --stdio`? Its message, if any, is above"
                ),
            };
            (true, format!("the remote side ({remote} on {host}) {what}"))
        }
    };
    let e = io::Error::other(why);
    if fatal {
        ClientError::Unusable(url.to_string(), e)
    } else {
        ClientError::Connect(url.to_string(), e)
    }
}

/// The ssh command line for `t`: `ssh` (or its replacement's words), the
/// port, `--`, the destination, and the remote command's words, each
/// single-quoted for the remote shell.
pub fn command_line(ssh: &[String], t: &SshTarget, remote: &str) -> Vec<String> {
    let mut argv: Vec<String> = ssh.to_vec();
    if let Some(p) = t.port {
        argv.push("-p".into());
        argv.push(p.to_string());
    }
    argv.push("--".into());
    argv.push(t.destination());
    let mut words = vec![remote.to_string(), "serve".into(), "--stdio".into()];
    if let Some(path) = &t.path {
        words.push("--share".into());
        words.push(path.clone());
    }
    argv.extend(words.iter().map(|w| quote_remote(w)));
    argv
}

/// One word for a POSIX shell, single-quoted: `it's` is `'it'\''s'`.
pub fn quote_remote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// Splits [`SSH_ENV`] into words: blanks (space, TAB, newline) separate
/// them; `'...'` is taken as it is; inside `"..."` a backslash escapes
/// `"` and `\` only; outside quotes a backslash escapes the next
/// character. Nothing else is expanded: no variables, no `~`, no globs.
pub fn split_command(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err("a ' without its closing '".into()),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err("a \" without its closing \"".into()),
                        },
                        Some(c) => w.push(c),
                        None => return Err("a \" without its closing \"".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err("a \\ at the end escapes nothing".into()),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    if words.is_empty() {
        return Err("names no command".into());
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ssh_command_is_split_like_a_shell_line_without_expansions() {
        let ok = |s: &str| split_command(s).unwrap();
        assert_eq!(ok("ssh"), ["ssh"]);
        assert_eq!(
            ok("  ssh -i 'my key' -o \"UserKnownHostsFile=/a b\"\t-v\n"),
            ["ssh", "-i", "my key", "-o", "UserKnownHostsFile=/a b", "-v"]
        );
        assert_eq!(
            ok(r#"a\ b "c\"d\\e\f" 'g\h' $HOME ~"#),
            ["a b", r#"c"d\e\f"#, r"g\h", "$HOME", "~"]
        );
        assert_eq!(ok("''"), [""]);
        for (bad, says) in [
            ("", "no command"),
            ("  ", "no command"),
            ("ssh 'x", "closing '"),
            ("ssh \"x", "closing \""),
            ("ssh \\", "escapes nothing"),
        ] {
            let e = split_command(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn every_remote_word_is_quoted_and_the_host_comes_after_dash_dash() {
        let t = addr::parse_ssh("ssh://me@example.org:2222/~/it's%20here")
            .unwrap()
            .unwrap();
        let ssh = split_command("ssh -F none").unwrap();
        assert_eq!(
            command_line(&ssh, &t, "/opt/p 2p/p2pshare"),
            [
                "ssh",
                "-F",
                "none",
                "-p",
                "2222",
                "--",
                "me@example.org",
                "'/opt/p 2p/p2pshare'",
                "'serve'",
                "'--stdio'",
                "'--share'",
                r"'it'\''s here'",
            ]
        );
        let t = addr::parse_ssh("ssh://[::1]").unwrap().unwrap();
        assert_eq!(
            command_line(&["ssh".into()], &t, DEFAULT_REMOTE),
            ["ssh", "--", "::1", "'p2pshare'", "'serve'", "'--stdio'"]
        );
        // What the remote shell makes of the words: themselves.
        let words = ["a b", "it's", "$(x) `y` \\ \" ; *", "\n"];
        let line: Vec<String> = words.iter().map(|w| quote_remote(w)).collect();
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s\\0' {}", line.join(" ")))
            .output()
            .unwrap();
        let got: Vec<&[u8]> = out
            .stdout
            .split(|b| *b == 0)
            .filter(|w| !w.is_empty())
            .collect();
        let want: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        assert_eq!(got, want);
    }
}
