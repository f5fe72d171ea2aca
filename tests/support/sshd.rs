//! A throwaway OpenSSH server on 127.0.0.1 for the tests that reach a
//! peer through `ssh://`: its own host key and user key (made by
//! `ssh-keygen` in a temp folder), its own config (a free port, no PAM,
//! no passwords, only that user key), run as `sshd -D -e -f CONFIG` and
//! killed on drop. The client side pins the host key through
//! `UserKnownHostsFile` with `StrictHostKeyChecking=yes`.
//!
//! It needs root (sshd changes to the user who logs in) and OpenSSH's
//! server and client; the tests that use it are ignored in a plain
//! `cargo test`, and `.ci/run` runs them.

#![allow(dead_code)]

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::TempDir;

/// The name the host key is pinned under (`HostKeyAlias`), whatever port
/// reaches it.
const ALIAS: &str = "p2pshare-test-sshd";

/// A running sshd; killed and reaped on drop.
pub struct Sshd {
    dir: TempDir,
    child: Child,
    pub port: u16,
    pub user: String,
}

/// Runs a command to its end; panics with its output when it fails.
fn run(cmd: &mut Command) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn keygen(path: &Path) {
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "p2pshare-test", "-f"])
        .arg(path));
}

/// The name of the user the tests run as.
fn user_name() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

impl Sshd {
    /// Starts sshd on a free port of 127.0.0.1 (another one when a
    /// clash makes it fail) and waits until it accepts connections.
    pub fn start() -> Sshd {
        let dir = TempDir::new("sshd");
        let _ = fs::create_dir_all("/run/sshd");
        keygen(&dir.path().join("host_key"));
        keygen(&dir.path().join("user_key"));
        fs::copy(
            dir.path().join("user_key.pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        let user = user_name();
        let mut last = String::new();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let config = dir.path().join("sshd_config");
            let p = |name: &str| dir.path().join(name).display().to_string();
            fs::write(
                &config,
                format!(
                    "Port {port}\n\
                     ListenAddress 127.0.0.1\n\
                     HostKey {}\n\
                     AuthorizedKeysFile {}\n\
                     PidFile {}\n\
                     PasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\n\
                     PubkeyAuthentication yes\n\
                     UsePAM no\n\
                     PermitRootLogin prohibit-password\n\
                     StrictModes no\n\
                     AcceptEnv none\n",
                    p("host_key"),
                    p("authorized_keys"),
                    p("sshd.pid"),
                ),
            )
            .unwrap();
            let log = fs::File::create(dir.path().join("sshd.log")).unwrap();
            let mut child = Command::new("/usr/sbin/sshd")
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start /usr/sbin/sshd");
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let until = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    last = fs::read_to_string(dir.path().join("sshd.log")).unwrap_or_default();
                    break;
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    let known = format!(
                        "{ALIAS} {}",
                        fs::read_to_string(dir.path().join("host_key.pub")).unwrap()
                    );
                    fs::write(dir.path().join("known_hosts"), known).unwrap();
                    return Sshd {
                        dir,
                        child,
                        port,
                        user,
                    };
                }
                assert!(Instant::now() < until, "sshd did not start listening");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("sshd would not start: {last}");
    }

    /// The key the server takes.
    pub fn key(&self) -> PathBuf {
        self.dir.path().join("user_key")
    }

    /// The known_hosts file that pins the server's host key.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// What sshd logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// A `P2PSHARE_SSH` that logs in with `key` and trusts only the host
    /// key pinned in `known_hosts`, without asking anything.
    pub fn ssh_with(&self, key: &Path, known_hosts: &Path) -> String {
        format!(
            "ssh -F none -i '{}' -o IdentitiesOnly=yes -o UserKnownHostsFile='{}' -o HostKeyAlias={ALIAS} -o StrictHostKeyChecking=yes -o BatchMode=yes -o LogLevel=ERROR",
            key.display(),
            known_hosts.display()
        )
    }

    /// [`Sshd::ssh_with`] the user key and the pinned host key.
    pub fn ssh_with_key(&self, key: &Path) -> String {
        self.ssh_with(key, &self.known_hosts())
    }

    /// The `P2PSHARE_SSH` of the tests: the user key.
    pub fn ssh(&self) -> String {
        self.ssh_with_key(&self.key())
    }

    /// `ssh://USER@127.0.0.1:PORT/PATH`, the path's bytes that an URL
    /// cannot hold as they are %-escaped.
    pub fn url(&self, path: &Path) -> String {
        self.url_at(self.port, path)
    }

    /// [`Sshd::url`] at another port (a forwarder's).
    pub fn url_at(&self, port: u16, path: &Path) -> String {
        let mut p = String::new();
        for b in path.display().to_string().bytes() {
            if b.is_ascii_alphanumeric() || b"/._-~".contains(&b) {
                p.push(b as char);
            } else {
                p.push_str(&format!("%{b:02X}"));
            }
        }
        format!("ssh://{}@127.0.0.1:{port}{p}", self.user)
    }

    /// A throwaway key the server does not take.
    pub fn stranger_key(&self) -> PathBuf {
        let k = self.dir.path().join("stranger_key");
        if !k.exists() {
            keygen(&k);
        }
        k
    }

    /// Another known_hosts file that pins another host key under the
    /// same name.
    pub fn wrong_known_hosts(&self) -> PathBuf {
        let k = self.dir.path().join("other_host_key");
        if !k.exists() {
            keygen(&k);
        }
        let file = self.dir.path().join("wrong_known_hosts");
        let line = format!(
            "{ALIAS} {}",
            fs::read_to_string(k.with_extension("pub")).unwrap()
        );
        fs::write(&file, line).unwrap();
        file
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
