//! Thread per connection over one shared index: 100 sessions connected at
//! the same time, all listing, hashing and downloading at once, every one
//! getting complete and correct answers.

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};
use std::thread;

use crate::support::*;
use p2pshare::server::Config;

const SESSIONS: usize = 100;

fn hundred_sessions_list_hash_and_download_at_once() {
    let dir = TempDir::new("concurrency");
    let mut files = BTreeMap::new();
    for i in 0..30u64 {
        let name = format!("d{}/file{i:02}.bin", i % 4);
        let content = pseudo_random((i as usize * 9973) % 300_000, i);
        dir.write(&name, &content);
        files.insert(name, content);
    }
    let files = Arc::new(files);
    let names: Vec<String> = files.keys().cloned().collect();
    // All sessions come from 127.0.0.1, so the per-address cap (an
    // anti-flood limit of its own) is raised to let 100 in; the overall
    // session limit stays at its default.
    let server = start_with(Config {
        max_per_ip: SESSIONS,
        ..config(dir.path())
    });

    // Every session is connected and greeted before any starts, so all
    // 100 are open on the server at once.
    let sessions: Vec<DataSession> = (0..SESSIONS)
        .map(|_| DataSession::open(server.addr()))
        .collect();
    let go = Arc::new(Barrier::new(SESSIONS));
    let workers: Vec<_> = sessions
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            let files = files.clone();
            let names = names.clone();
            let go = go.clone();
            thread::spawn(move || {
                go.wait();
                // > IndexGet longlist
                let list = s.conn.cmd("IndexGet longlist");
                assert_eq!(list.names(), names, "session {i}");
                for row in list.rows() {
                    assert_eq!(row[1], files[&row[0]].len().to_string());
                }
                // > FileHash checkall
                let sums = s.conn.cmd("FileHash checkall");
                assert_eq!(sums.names(), names, "session {i}");
                for row in sums.rows() {
                    assert_eq!(row[1], md5_hex(&files[&row[0]]), "session {i}");
                }
                // > FileHash verify <name>
                let one = &names[i % names.len()];
                let v = s.conn.cmd(&format!("FileHash verify {one}"));
                assert_eq!(v.rows()[0][..2], [one.clone(), md5_hex(&files[one])]);
                // Two downloads over the session's one data connection.
                for k in [i, i + 7] {
                    let name = &names[k % names.len()];
                    let f = s
                        .fetch(name, None)
                        .unwrap_or_else(|r| panic!("session {i}: {name}: {:?}", r.lines));
                    assert!(f.bytes == files[name], "session {i}: {name}");
                    assert_eq!(f.done.code, 226, "session {i}: {:?}", f.done.lines);
                }
                assert_eq!(s.conn.cmd("QUIT").code, 221);
            })
        })
        .collect();
    let failed = workers
        .into_iter()
        .map(|w| w.join())
        .filter(Result::is_err)
        .count();
    assert_eq!(failed, 0, "{failed} of {SESSIONS} sessions failed");

    // And the server still answers afterwards.
    let mut c = Conn::open(server.addr());
    assert_eq!(c.cmd("IndexGet longlist").names(), names);
}

cases![hundred_sessions_list_hash_and_download_at_once,];
