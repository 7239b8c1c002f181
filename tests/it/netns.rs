//! A network namespace for tests that touch the firewall: created by the test, `lo` up,
//! deleted (with the helper processes the test started in it) on drop. Root, `ip` and
//! python3 are required: without them the test skips loudly, and fails under CI=true.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::env;

pub const PYTHON: &str = "/usr/bin/python3";

/// A network namespace with `lo` up; deleted (and its helper processes killed) on drop.
pub struct Netns {
    pub name: String,
    pub children: Vec<Child>,
}

impl Netns {
    /// `None` (after a loud skip message) when the machine cannot run these tests.
    pub fn new(tag: &str) -> Option<Netns> {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        if !env::require("root (network namespaces, nftables)", root)
            || !env::require("nft (Debian package nftables)", env::have_command("nft"))
            || !env::require("ip (Debian package iproute2)", env::have_command("ip"))
            || !env::require("/usr/bin/python3", std::path::Path::new(PYTHON).exists())
        {
            return None;
        }
        let name = format!("bh-test-{}-{tag}", std::process::id());
        run("ip", &["netns", "add", &name]);
        let ns = Netns {
            name,
            children: Vec::new(),
        };
        run("ip", &["-n", &ns.name, "link", "set", "lo", "up"]);
        Some(ns)
    }

    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    pub fn nft(&self, args: &[&str]) -> String {
        let out = self.command("nft").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "nft {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// TCP listeners (backlog only: the handshake completes without accept) on `addrs`.
    pub fn listen(&mut self, addrs: &[(&str, u16)]) {
        let script = r#"
import socket, sys
socks = []
for a in sys.argv[1:]:
    host, port = a.rsplit(":", 1)
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(64)
    socks.append(s)
print("ready", flush=True)
sys.stdin.read()
"#;
        let mut child = self
            .command(PYTHON)
            .arg("-c")
            .arg(script)
            .args(addrs.iter().map(|(h, p)| format!("{h}:{p}")))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        self.children.push(child);
        assert_eq!(line.trim(), "ready", "listener did not start");
    }

    /// Whether a TCP connection from `src` to `dst:port` succeeds (inside the namespace).
    pub fn connects(&self, src: &str, dst: &str, port: u16) -> bool {
        let script = r#"
import socket, sys
src, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET)
s.settimeout(1.0)
s.bind((src, 0))
try:
    s.connect((dst, port))
except OSError:
    sys.exit(1)
"#;
        self.command(PYTHON)
            .arg("-c")
            .arg(script)
            .args([src, dst, &port.to_string()])
            .status()
            .unwrap()
            .success()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

pub fn run(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().unwrap();
    assert!(status.success(), "{program} {args:?}: {status}");
}
