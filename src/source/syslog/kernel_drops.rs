//! Datagrams the kernel dropped before the UDP listener read them (its receive queue was
//! full). Owns the reading of the `drops` column of `/proc/net/udp` (or `udp6`) for the
//! listener's socket, found by its inode. Receives the socket's inode and family; emits the
//! kernel's count.
//!
//! Why this way: `SO_RXQ_OVFL` (the count as ancillary data on each datagram) is not in
//! rustix and the workspace has no `unsafe`; the proc table holds the same counter and is
//! plain text. It is read at most once a second, not per datagram. A Unix datagram socket
//! has no such count: its senders wait (or are refused) when its queue is full.

use std::path::Path;

/// The `drops` of the socket with inode `inode` in the text of `/proc/net/udp{,6}`.
pub fn drops_in(table: &str, inode: u64) -> Option<u64> {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout
    // inode ref pointer drops
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let ino: u64 = f.get(9)?.parse().ok()?;
        if ino != inode {
            return None;
        }
        f.get(12)?.parse().ok()
    })
}

/// The kernel's drop count for the UDP socket with inode `inode` (`ipv6`: which table), or
/// `None` if it cannot be read.
pub fn udp_drops(inode: u64, ipv6: bool) -> Option<u64> {
    let table = if ipv6 {
        "/proc/net/udp6"
    } else {
        "/proc/net/udp"
    };
    let text = std::fs::read_to_string(Path::new(table)).ok()?;
    drops_in(&text, inode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drops_column_of_our_inode() {
        let table = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
  251: 0100007F:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 123456 2 0000000000000000 0\n\
  252: 0100007F:A3B4 00000000:0000 07 00000000:00034000 00:00000000 00000000     0        0 777 2 0000000000000000 220031\n";
        assert_eq!(drops_in(table, 777), Some(220031));
        assert_eq!(drops_in(table, 123456), Some(0));
        assert_eq!(drops_in(table, 1), None);
        assert_eq!(drops_in("", 1), None);
    }

    #[test]
    fn a_real_socket_is_found() {
        use std::os::fd::AsFd;
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let ino = rustix::fs::fstat(s.as_fd()).unwrap().st_ino;
        assert_eq!(udp_drops(ino, false), Some(0));
    }
}
