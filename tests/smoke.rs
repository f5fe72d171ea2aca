mod support;
use support::*;

#[test]
fn lists_and_downloads_over_a_real_socket() {
    let dir = TempDir::new("smoke");
    dir.write("a.txt", "hello\n");
    let server = start(dir.path());
    let mut c = Conn::open(server.addr());
    let list = c.cmd("IndexGet longlist");
    assert_eq!(list.names(), ["a.txt"]);
    let (r150, bytes, done) = download(&mut c, server.addr(), "a.txt");
    assert_eq!(bytes, b"hello\n");
    assert_eq!(done.code, 226, "{:?} {:?}", r150.lines, done.lines);
    // The data channel is reused: the same port and token, the same connection.
    let again = c.cmd("FileDownload a.txt");
    assert_eq!(data_of(&again), data_of(&r150));
}
