use super::*;
use std::path::PathBuf;

fn parsed(datagram: &[u8]) -> (u8, u8, String) {
    let r = parse_datagram(datagram, b"myhost");
    (
        r.facility,
        r.severity,
        String::from_utf8_lossy(&r.line).into_owned(),
    )
}

fn line(datagram: &[u8]) -> String {
    parsed(datagram).2
}

/// A machine with root, www-data, nginx (user and group), a `webdev` group without a user
/// of that name, and nobody/nogroup.
fn accounts() -> Accounts {
    Accounts::from_text(
        "root:x:0:0::/root:/bin/sh\nwww-data:x:33:33::/var/www:/x\nnginx:x:101:101::/:/x\n\
         nobody:x:65534:65534::/:/x\n",
        "root:x:0:\nwww-data:x:33:\nnginx:x:101:\nwebdev:x:500:alice\nnogroup:x:65534:\n",
    )
}

fn listen(backend: &str) -> Result<SyslogListen, String> {
    SyslogListen::from_backend_in(backend, Some(DEFAULT_GROUP), &accounts())
}

#[test]
fn backend_values() {
    let l = listen("syslog").unwrap();
    assert_eq!(l.socket, Some(PathBuf::from(DEFAULT_SOCKET)));
    assert_eq!((l.udp, l.mode, l.facilities), (None, 0o660, None));
    // root:www-data, root and www-data may send, 200 a second (burst 1000) each.
    assert_eq!((l.group, l.senders.clone()), (33, vec![0, 33]));
    assert_eq!(
        l.rate,
        Rate {
            per_sec: 200,
            burst: 1000
        }
    );
    assert!(l.notes.is_empty(), "{:?}", l.notes);

    let l = listen("syslog[socket=/tmp/x.sock, mode=0660]").unwrap();
    assert_eq!(l.socket, Some(PathBuf::from("/tmp/x.sock")));
    assert_eq!(l.mode, 0o660);

    // udp alone: no Unix socket.
    let l = listen("syslog[udp=127.0.0.1:5514]").unwrap();
    assert_eq!(l.socket, None);
    assert_eq!(l.udp, Some("127.0.0.1:5514".parse().unwrap()));

    let l =
        listen("syslog[socket=/run/b/s.sock, udp=\"[::1]:5514\", facility=auth authpriv]").unwrap();
    assert!(l.socket.is_some());
    assert_eq!(l.udp, Some("[::1]:5514".parse().unwrap()));
    assert!(l.accepts(4) && l.accepts(10) && !l.accepts(1) && !l.accepts(200));
    let l = listen("syslog[facility=local7 3]").unwrap();
    assert!(l.accepts(23) && l.accepts(3) && !l.accepts(4));

    // Another web server's account: its group, root and its user may send.
    let l = listen("syslog[group=nginx, rate=10]").unwrap();
    assert_eq!((l.group, l.senders.clone()), (101, vec![0, 101]));
    assert_eq!(
        l.rate,
        Rate {
            per_sec: 10,
            burst: 50
        }
    );
    // Numbers work for both; senders replace the default list.
    let l = listen("syslog[group=33, senders=0 nobody 1000]").unwrap();
    assert_eq!((l.group, l.senders.clone()), (33, vec![0, 65534, 1000]));
    // A group without a user of its name: only root by default, and a note says so.
    let l = listen("syslog[group=webdev]").unwrap();
    assert_eq!((l.group, l.senders.clone()), (500, vec![0]));
    assert!(l.notes[0].contains("only root may send"), "{:?}", l.notes);
    // A mode that lets everyone send is allowed, with a note.
    let l = listen("syslog[mode=0666]").unwrap();
    assert!(l.notes[0].contains("every local user"), "{:?}", l.notes);
    // udp alone needs no group and says nothing about one.
    let l = SyslogListen::from_backend_in("syslog[udp=127.0.0.1:1]", None, &accounts()).unwrap();
    assert!(l.notes.is_empty());
}

/// The default group is the caller's; when this machine has no such group the socket is
/// root's group (a notice, not an error), while a group named explicitly must exist.
#[test]
fn the_default_group_falls_back_to_root_an_explicit_one_must_exist() {
    let none = Accounts::from_text("root:x:0:0::/:/x\n", "root:x:0:\n");
    let l = SyslogListen::from_backend_in("syslog", Some("www-data"), &none).unwrap();
    assert_eq!((l.group, l.senders.clone()), (0, vec![0]));
    assert_eq!(l.notes.len(), 1);
    assert!(
        l.notes[0].contains("www-data does not exist") && l.notes[0].contains("only root"),
        "{:?}",
        l.notes
    );
    let l = SyslogListen::from_backend_in("syslog", None, &none).unwrap();
    assert_eq!(l.group, 0);
    let e = SyslogListen::from_backend_in("syslog[group=www-data]", Some("www-data"), &none)
        .unwrap_err();
    assert!(e.contains("group = www-data: no such group"), "{e}");
    let e = listen("syslog[senders=root ghost]").unwrap_err();
    assert!(e.contains("no such user \"ghost\""), "{e}");
}

#[test]
fn bad_backend_values_are_explained() {
    let e = listen("syslog[udp=0.0.0.0:5514]").unwrap_err();
    assert!(e.contains("not a loopback address"), "{e}");
    let e = listen("syslog[udp=192.0.2.1:514]").unwrap_err();
    assert!(e.contains("not a loopback address"), "{e}");
    let e = listen("syslog[udp=localhost]").unwrap_err();
    assert!(e.contains("ADDRESS:PORT"), "{e}");
    let e = listen("syslog[mode=999]").unwrap_err();
    assert!(e.contains("octal"), "{e}");
    let e = listen("syslog[udp=127.0.0.1:1, mode=0600]").unwrap_err();
    assert!(e.contains("mode applies to a Unix socket"), "{e}");
    let e = listen("syslog[facility=nope]").unwrap_err();
    assert!(e.contains("unknown facility \"nope\""), "{e}");
    let e = listen("syslog[sock=/x, port=1]").unwrap_err();
    assert!(e.contains("unknown arguments port, sock"), "{e}");
    for (bad, why) in [
        (
            "syslog[udp=127.0.0.1:1, group=www-data]",
            "group applies to a Unix socket",
        ),
        (
            "syslog[udp=127.0.0.1:1, senders=root]",
            "senders applies to a Unix socket",
        ),
        ("syslog[senders=]", "senders is empty"),
        ("syslog[group=]", "group is empty"),
        ("syslog[rate=0]", "rate = 0"),
        ("syslog[rate=lots]", "rate = lots"),
    ] {
        let e = listen(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
    let e = listen("systemd").unwrap_err();
    assert!(e.contains("not a syslog backend"), "{e}");
}

#[test]
fn glibc_local_form_gets_this_host() {
    // What PHP's syslog() (glibc) sends to a local socket: no HOST.
    let (f, s, l) = parsed(b"<38>Nov 25 15:55:15 wordpress(192.0.2.7)[1234]: Authentication failure for admin from 192.0.2.7");
    assert_eq!((f, s), (4, 6));
    assert_eq!(
        l,
        "myhost wordpress(192.0.2.7)[1234]: Authentication failure for admin from 192.0.2.7"
    );
    assert_eq!(
        line(b"<86>Nov  5 01:02:03 sshd[77]: Failed password"),
        "myhost sshd[77]: Failed password"
    );
    assert_eq!(
        line(b"<13>Nov 25 15:55:15 root: hello"),
        "myhost root: hello"
    );
}

#[test]
fn rfc3164_with_host() {
    assert_eq!(
        line(b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8"),
        "mymachine su: 'su root' failed for lonvick on /dev/pts/8"
    );
    assert_eq!(
        line(b"<13>Nov 25 15:55:15 web1.example.org app[5]: x"),
        "web1.example.org app[5]: x"
    );
    // An RFC 3339 time where the BSD one would be (rsyslog's high-precision forwarding).
    assert_eq!(
        line(b"<13>2026-11-25T15:55:15.123456+01:00 web2 sshd[9]: Invalid user"),
        "web2 sshd[9]: Invalid user"
    );
    // A space is added after the tag's colon, as rsyslog's file format does.
    assert_eq!(line(b"<13>Nov 25 15:55:15 app:msg"), "myhost app: msg");
}

#[test]
fn rfc5424() {
    let (f, s, l) = parsed(
        b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 \
          [exampleSDID@32473 iut=\"3\" eventSource=\"Appli\\]cation\"] \xEF\xBB\xBFAn application event",
    );
    assert_eq!((f, s), (20, 5));
    assert_eq!(l, "mymachine.example.com evntslog: An application event");
    assert_eq!(
        line(b"<38>1 - - sshd 4242 - - Failed password for root"),
        "myhost sshd[4242]: Failed password for root"
    );
    // Nil app, no message, several SD elements.
    assert_eq!(
        line(b"<38>1 2026-01-01T00:00:00Z h - - - [a x=\"1\"][b]"),
        "h -: "
    );
}

#[test]
fn malformed_rfc5424_falls_back_to_3164() {
    // A missing header field: kept whole, as rsyslog's 3164 parser would.
    assert_eq!(line(b"<13>1 only three"), "myhost 1 only three");
    assert_eq!(
        line(b"<13>1 - h a p m [unterminated"),
        "myhost 1 - h a p m [unterminated"
    );
}

#[test]
fn garbage_is_a_message() {
    assert_eq!(
        parsed(b"no header at all"),
        (1, 5, "myhost no header at all".into())
    );
    // PRI above 191 is not a PRI.
    assert_eq!(line(b"<999>x: y"), "myhost <999>x: y");
    assert_eq!(line(b"<>x"), "myhost <>x");
    assert_eq!(line(b""), "myhost ");
    assert_eq!(line(b"<13>"), "myhost ");
    assert_eq!(line(b"<13>Nov 25 15:55:15"), "myhost ");
}

#[test]
fn injected_lines_are_escaped() {
    let l = line(b"<38>Nov 25 15:55:15 wordpress[1]: Authentication failure for \"x\nNov 25 15:55:16 myhost sshd[2]: Failed password for root from 203.0.113.9\" from 192.0.2.7");
    assert!(!l.contains('\n'));
    assert!(l.contains("#012Nov 25"), "{l}");
    assert_eq!(
        line(b"<13>Nov 25 15:55:15 a: x\ty\r\0z\x7f"),
        "myhost a: x#011y#015#000z#177"
    );
    // Trailing terminators are not part of the message.
    assert_eq!(line(b"<13>Nov 25 15:55:15 a: x\n\0"), "myhost a: x");
}

#[test]
fn invalid_utf8_is_kept() {
    let r = parse_datagram(b"<13>Nov 25 15:55:15 a: caf\xe9 \xff", b"h");
    assert_eq!(r.line, b"h a: caf\xe9 \xff");
}

#[test]
fn hostname_is_a_word() {
    let h = local_hostname();
    assert!(!h.is_empty() && !h.contains('.') && !h.contains(' '), "{h}");
}

/// Parses `d`, returning the record and the bytes the parser looked at.
fn parse_counted(d: &[u8]) -> (SyslogRecord, u64) {
    let before = parse::WORK.with(|w| w.get());
    let r = parse_datagram(d, b"h");
    (r, parse::WORK.with(|w| w.get()) - before)
}

/// Datagram-shaped bytes: fragments of headers, structured data, quotes and escapes,
/// repeated (the shapes that could make a parser go back and forth), up to the limit.
fn datagram_like() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let piece = prop_oneof![
        Just(b"<13>".to_vec()),
        Just(b"<165>1 ".to_vec()),
        Just(b"2026-11-25T15:55:15Z ".to_vec()),
        Just(b"Nov 25 15:55:15 ".to_vec()),
        Just(b"- ".to_vec()),
        Just(b"[".to_vec()),
        Just(b"]".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"\\".to_vec()),
        Just(b"a=\"".to_vec()),
        Just(b": ".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\0".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(piece, 0..300).prop_map(|v| {
        let mut d = v.concat();
        d.truncate(MAX_DATAGRAM);
        d
    })
}

proptest::proptest! {
    // Fewer, larger cases: generating the pieces is the slow part (debug builds).
    #![proptest_config(proptest::test_runner::Config::with_cases(64))]

    /// No datagram up to the limit makes the parser look at a byte more than a few times
    /// (work counted, not timed), or makes a line more than four times its size (an
    /// escaped control character is four bytes); always one clean line.
    #[test]
    fn parse_work_and_output_are_linear(d in datagram_like()) {
        let (r, work) = parse_counted(&d);
        let n = d.len() as u64;
        proptest::prop_assert!(work <= 8 * n + 64, "{} bytes looked at for {}", work, n);
        proptest::prop_assert!(r.line.len() as u64 <= 4 * n + 8);
        proptest::prop_assert!(r.line.iter().all(|&b| b >= 0x20 && b != 0x7f));
    }
}

proptest::proptest! {
    #[test]
    fn any_datagram_gives_one_clean_line(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
        let r = parse_datagram(&bytes, b"h");
        proptest::prop_assert!(r.line.iter().all(|&b| b >= 0x20 && b != 0x7f));
        proptest::prop_assert!(r.facility < 24 && r.severity < 8);
    }


    #[test]
    fn structured_headers_never_panic(
        pri in 0u16..300,
        version in "[0-9 ]{0,2}",
        rest in "[-\\[\\]\"\\\\ a-z0-9=:.]{0,60}",
    ) {
        let d = format!("<{pri}>{version}{rest}");
        let r = parse_datagram(d.as_bytes(), b"h");
        proptest::prop_assert!(!r.line.is_empty());
    }

    #[test]
    fn glibc_messages_survive_whole(msg in "[^\\x00-\\x1f\\x7f]{0,100}") {
        let d = format!("<38>Nov 25 15:55:15 wordpress[12]: {msg}");
        let l = parse_datagram(d.as_bytes(), b"h").line;
        let want = format!("h wordpress[12]: {msg}");
        proptest::prop_assert_eq!(String::from_utf8(l).unwrap(), want);
    }
}

/// The worst shapes written out at the limit: the bound holds at full size too.
#[test]
fn parse_work_at_the_limit() {
    for unit in [
        &b"["[..],
        b"[a=\"",
        b"\"",
        b"<13>1 ",
        b"- ",
        b"\n",
        b"Nov 25 15:55:15 ",
    ] {
        let mut d = b"<13>1 - h a p m ".to_vec();
        while d.len() + unit.len() <= MAX_DATAGRAM {
            d.extend_from_slice(unit);
        }
        let (_, work) = parse_counted(&d);
        assert!(work <= 8 * d.len() as u64 + 64, "{work} for {}", d.len());
    }
}
