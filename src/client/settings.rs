//! Everything the client needs to reach a peer and store what it gets.

use std::path::PathBuf;
use std::time::Duration;

use super::sync::trash::Bounds;
use super::transport::DEFAULT_PORT;

/// Everything the client needs to reach a peer and store what it gets.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The peer, `HOST[:PORT]`.
    pub target: String,
    /// The local shared folder: where downloads land, uploads come from.
    pub share: PathBuf,
    pub secret: Option<String>,
    /// Replace local files whose content differs.
    pub overwrite: bool,
    /// How long any one wait on the peer may take: connect, greeting,
    /// each reply line (a whole reply: scaled to its lines, see
    /// `deadline`), a stalled transfer.
    pub timeout: Duration,
    /// UDP payload size for `FileDownload UDP`; None picks by path.
    pub udp_payload: Option<usize>,
    /// How much Sync's trash keeps.
    pub trash: Bounds,
    /// The program an `ssh://` peer runs on the remote side
    /// (`--remote-command`); None: `p2pshare`.
    pub remote_command: Option<String>,
}

impl Default for Settings {
    /// The peer on this machine's default port, `./shared`, a minute's
    /// patience.
    fn default() -> Settings {
        Settings {
            target: format!("127.0.0.1:{DEFAULT_PORT}"),
            share: PathBuf::from("shared"),
            secret: None,
            overwrite: false,
            timeout: Duration::from_secs(60),
            udp_payload: None,
            trash: Bounds::default(),
            remote_command: None,
        }
    }
}
