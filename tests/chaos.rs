//! Chaos: 16 clients send random valid and invalid commands, garbage bytes, half-sent
//! commands and abrupt resets (SO_LINGER 0) for a few seconds; afterwards the server
//! still answers PING on every shard thread and its log shows no panic.

mod common;

use common::Server;

// Bad input of every kind never kills a shard thread or the process.
#[test]
fn survives_garbage_and_resets() {
    let server = Server::darter(&["--proactor_threads", "2"]);
    let status = std::process::Command::new("python3")
        .args(["tools/chaos.py", &server.port.to_string(), "6"])
        .status()
        .expect("python3 runs tools/chaos.py");
    assert!(status.success(), "server stopped answering after the chaos run");
    // Several fresh connections land on both threads (SO_REUSEPORT spreads them).
    for _ in 0..8 {
        let mut c = server.client();
        let pong: String = redis::cmd("PING").query(&mut c).unwrap();
        assert_eq!(pong, "PONG");
    }
    assert!(!server.log().contains("panicked"), "a thread panicked:\n{}", server.log());
}
