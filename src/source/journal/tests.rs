use super::child::{read_line_capped, LineRead};
use super::options::shell_words;
use super::*;
use std::io::BufReader;

fn opts(backend: &str, matches: &str) -> JournalOptions {
    JournalOptions::from_backend(backend, matches).unwrap()
}

fn args(o: &JournalOptions, start: &JournalStart) -> Vec<String> {
    o.journalctl_args(start, &[])
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

fn line(json: &str) -> String {
    String::from_utf8(parse_entry(json.as_bytes()).unwrap().line).unwrap()
}

#[test]
fn bare_systemd_reads_the_system_journal_like_fail2ban() {
    let o = opts("systemd", "");
    assert_eq!(o.location, JournalLocation::System);
    // fail2ban's default flags: SYSTEM_ONLY, without LOCAL_ONLY.
    assert_eq!(o.flags, Some(4));
    assert!(o.matches.is_empty());
    let a = args(&o, &JournalStart::Tail);
    assert!(a.contains(&"--merge".to_string()) && a.contains(&"--system".to_string()));
    assert!(a.contains(&"--lines=0".to_string()));
    assert_eq!(a.last().map(String::as_str), Some("--"));
}

#[test]
fn backend_arguments() {
    let o = opts("systemd[journalpath=/var/log/journal/remote]", "");
    assert_eq!(
        o.location,
        JournalLocation::Directory("/var/log/journal/remote".into())
    );
    assert_eq!(o.flags, None, "fail2ban sets no flags with a path");
    let a = args(&o, &JournalStart::Since(1700000000.25));
    let i = a.iter().position(|x| x == "--directory").unwrap();
    assert_eq!(a[i + 1], "/var/log/journal/remote");
    assert!(a.contains(&"--since=@1700000000.250000".to_string()));
    assert!(!a.contains(&"--merge".to_string()));

    let o = opts("systemd[journalfiles=/a/x.journal /b/*.journal]", "");
    assert_eq!(
        o.location,
        JournalLocation::Files(vec!["/a/x.journal".into(), "/b/*.journal".into()])
    );
    let o = opts("systemd[journalflags=1, namespace=web]", "");
    assert_eq!(o.flags, Some(1));
    assert_eq!(o.namespace.as_deref(), Some("web"));
    let a = args(&o, &JournalStart::Cursor("s=1;i=2".into()));
    assert!(a.contains(&"--namespace=web".to_string()));
    assert!(a.contains(&"--after-cursor=s=1;i=2".to_string()));
    assert!(!a.contains(&"--merge".to_string()) && !a.contains(&"--system".to_string()));
}

#[test]
fn bad_backend_arguments_are_named() {
    let e = JournalOptions::from_backend("systemd[journalpat=/x, flagz=1]", "").unwrap_err();
    assert!(
        e.contains("unknown arguments") && e.contains("journalpat") && e.contains("flagz"),
        "{e}"
    );
    let e =
        JournalOptions::from_backend("systemd[journalpath=/x, journalfiles=/y]", "").unwrap_err();
    assert!(e.contains("together"), "{e}");
    let e = JournalOptions::from_backend("systemd[journalflags=2]", "").unwrap_err();
    assert!(e.contains("RUNTIME_ONLY"), "{e}");
    let e = JournalOptions::from_backend("systemd[journalflags=lots]", "").unwrap_err();
    assert!(e.contains("expected a number"), "{e}");
    let e = JournalOptions::from_backend("polling", "").unwrap_err();
    assert!(e.contains("not a journal backend"), "{e}");
    let e = JournalOptions::from_backend("systemd[journalpath=/x", "").unwrap_err();
    assert!(e.starts_with("backend = systemd[journalpath=/x: "), "{e}");
    let e = JournalOptions::from_backend("systemd[namespace=a b]", "").unwrap_err();
    assert!(e.contains("namespace"), "{e}");
}

#[test]
fn journalmatch_groups_lines_and_quotes() {
    let o = opts("systemd", "_SYSTEMD_UNIT=sshd.service + _COMM=sshd");
    assert_eq!(
        o.matches,
        vec![vec!["_SYSTEMD_UNIT=sshd.service"], vec!["_COMM=sshd"]]
    );
    // Lines are ORed (fail2ban adds each line with a disjunction).
    let o = opts(
        "systemd",
        "_SYSTEMD_UNIT=a.service _PID=1\n\nSYSLOG_IDENTIFIER=\"my app\"",
    );
    assert_eq!(
        o.matches,
        vec![
            vec!["_SYSTEMD_UNIT=a.service", "_PID=1"],
            vec!["SYSLOG_IDENTIFIER=my app"]
        ]
    );
    let a = args(&o, &JournalStart::Tail);
    let dd = a.iter().position(|x| x == "--").unwrap();
    assert_eq!(
        &a[dd + 1..],
        [
            "_SYSTEMD_UNIT=a.service",
            "_PID=1",
            "+",
            "SYSLOG_IDENTIFIER=my app"
        ]
    );
    // Empty groups are dropped, as sd-journal ignores an empty disjunction.
    let o = opts("systemd", "+ A=1 + + B=2 +");
    assert_eq!(o.matches, vec![vec!["A=1"], vec!["B=2"]]);
}

#[test]
fn journalmatch_words_are_validated() {
    for bad in [
        "/usr/sbin/sshd",
        "_comm=sshd",
        "--since=yesterday",
        "1FIELD=x",
        "FIELD",
        "'unterminated",
        "=value",
    ] {
        let e = JournalOptions::from_backend("systemd", bad).unwrap_err();
        assert!(e.starts_with("journalmatch"), "{bad}: {e}");
    }
}

#[test]
fn shell_words_like_shlex() {
    assert_eq!(
        shell_words(r#"a 'b c' "d \"e\"" f\ g"#).unwrap(),
        ["a", "b c", "d \"e\"", "f g"]
    );
    assert_eq!(shell_words(r#"X="a\nb""#).unwrap(), [r"X=a\nb"]);
    assert_eq!(shell_words("''").unwrap(), [""]);
    assert!(shell_words("a\\").is_err());
}

#[test]
fn entry_formats_like_fail2ban() {
    let j = r#"{"__CURSOR":"s=abc;i=1;t=6611beb99cb40","__REALTIME_TIMESTAMP":"1700000000123456",
        "_HOSTNAME":"web1","SYSLOG_IDENTIFIER":"sshd","_PID":"42","_COMM":"sshd-session",
        "MESSAGE":"Failed password for root from 192.0.2.1 port 22 ssh2"}"#;
    let e = parse_entry(j.as_bytes()).unwrap();
    assert_eq!(
        String::from_utf8(e.line).unwrap(),
        "web1 sshd[42]: Failed password for root from 192.0.2.1 port 22 ssh2"
    );
    assert_eq!(e.time, Some(1700000000.123456));
    assert_eq!(e.cursor.as_deref(), Some("s=abc;i=1;t=6611beb99cb40"));
}

#[test]
fn entry_field_fallbacks() {
    // SYSLOG_PID before _PID; _COMM when there is no SYSLOG_IDENTIFIER.
    assert_eq!(
        line(r#"{"_COMM":"dovecot","_PID":"7","SYSLOG_PID":"8","MESSAGE":"x"}"#),
        "dovecot[8]: x"
    );
    // No host, no identifier: only the message.
    assert_eq!(line(r#"{"MESSAGE":"just this"}"#), "just this");
    // Host and no identifier.
    assert_eq!(line(r#"{"_HOSTNAME":"h","MESSAGE":"m"}"#), "h m");
    // No message: fail2ban joins an empty string (trailing space).
    assert_eq!(
        line(r#"{"_HOSTNAME":"h","SYSLOG_IDENTIFIER":"app"}"#),
        "h app: "
    );
    // Empty values count as missing.
    assert_eq!(
        line(
            r#"{"_HOSTNAME":"","SYSLOG_IDENTIFIER":"","_COMM":"c","SYSLOG_PID":"","MESSAGE":"m"}"#
        ),
        "c: m"
    );
    // A PID that is not a number is kept as written; a hex one is converted; zero is
    // falsy in Python (skipped).
    assert_eq!(
        line(r#"{"SYSLOG_IDENTIFIER":"a","SYSLOG_PID":"x1","MESSAGE":"m"}"#),
        "a[x1]: m"
    );
    assert_eq!(
        line(r#"{"SYSLOG_IDENTIFIER":"a","SYSLOG_PID":"0x10","MESSAGE":"m"}"#),
        "a[16]: m"
    );
    assert_eq!(
        line(r#"{"SYSLOG_IDENTIFIER":"a","SYSLOG_PID":"007","MESSAGE":"m"}"#),
        "a[7]: m"
    );
    assert_eq!(
        line(r#"{"SYSLOG_IDENTIFIER":"a","SYSLOG_PID":"0","_PID":"5","MESSAGE":"m"}"#),
        "a[5]: m"
    );
    // Missing everything: an empty line, no time.
    let e = parse_entry(b"{}").unwrap();
    assert!(e.line.is_empty() && e.time.is_none() && e.cursor.is_none());
}

#[test]
fn entry_message_as_bytes_or_repeated() {
    // journalctl writes a value that is not printable UTF-8 as an array of bytes.
    let j = r#"{"SYSLOG_IDENTIFIER":"sshd","MESSAGE":[98,97,100,32,255,10,116,119,111]}"#;
    let e = parse_entry(j.as_bytes()).unwrap();
    assert_eq!(e.line, b"sshd: bad \xff\\ntwo");
    // A field set twice is an array of values: fail2ban joins them with spaces.
    assert_eq!(
        line(r#"{"SYSLOG_IDENTIFIER":"x","MESSAGE":["one",[116,119,111]]}"#),
        "x: one two"
    );
}

/// journalctl prints a field it did not print whole as `null` (over its size limit without
/// `--all`). Such an entry used to be formatted with the field left out; now it is never
/// an entry (a cut MESSAGE could end in any address), and its cursor is where reading goes
/// on.
#[test]
fn a_journal_message_that_is_not_whole_is_never_matched() {
    let j = r#"{"__CURSOR":"s=1;i=9","SYSLOG_IDENTIFIER":"x","MESSAGE":null}"#;
    match parse_entry(j.as_bytes()) {
        Err(EntryError::Incomplete { field, cursor }) => {
            assert_eq!(field, "MESSAGE");
            assert_eq!(cursor.as_deref(), Some("s=1;i=9"));
        }
        other => panic!("{other:?}"),
    }
    // Any field of the line: a missing IDENT shifts the message under the prefix.
    for field in [
        "_HOSTNAME",
        "SYSLOG_IDENTIFIER",
        "_COMM",
        "SYSLOG_PID",
        "_PID",
    ] {
        let j = format!(r#"{{"{field}":null,"MESSAGE":"Failed password from 192.0.2.1"}}"#);
        assert!(
            matches!(parse_entry(j.as_bytes()), Err(EntryError::Incomplete { field: f, .. }) if f == field),
            "{field}"
        );
    }
    // Fields that are not part of the line may be null.
    let j = r#"{"_SYSTEMD_UNIT":null,"MESSAGE":"m"}"#;
    assert_eq!(parse_entry(j.as_bytes()).unwrap().line, b"m");
    // Absent is not null: formatted as before.
    assert_eq!(line(r#"{"SYSLOG_IDENTIFIER":"x"}"#), "x: ");
}

#[test]
fn entry_newlines_become_backslash_n() {
    assert_eq!(
        line(r#"{"SYSLOG_IDENTIFIER":"php","MESSAGE":"user admin\nhost 1.2.3.4"}"#),
        r"php: user admin\nhost 1.2.3.4"
    );
}

#[test]
fn entry_time_prefers_the_source_timestamp() {
    let j = r#"{"__REALTIME_TIMESTAMP":"1700000005000000","_SOURCE_REALTIME_TIMESTAMP":"1700000000500000"}"#;
    assert_eq!(parse_entry(j.as_bytes()).unwrap().time, Some(1700000000.5));
    let j = r#"{"__REALTIME_TIMESTAMP":"junk"}"#;
    assert_eq!(parse_entry(j.as_bytes()).unwrap().time, None);
}

#[test]
fn kernel_entries_carry_the_monotonic_time() {
    assert_eq!(
        line(
            r#"{"SYSLOG_IDENTIFIER":"kernel","_SOURCE_MONOTONIC_TIMESTAMP":"12345678","__MONOTONIC_TIMESTAMP":"99","MESSAGE":"oops"}"#
        ),
        "kernel: [   12.345678] oops"
    );
    assert_eq!(
        line(r#"{"SYSLOG_IDENTIFIER":"kernel","__MONOTONIC_TIMESTAMP":"1500000","MESSAGE":"m"}"#),
        "kernel: [    1.500000] m"
    );
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for bad in [
        &b""[..],
        b"not json",
        b"[1,2]",
        b"{\"MESSAGE\":[1000]}",
        b"{\"MESSAGE\":{}}",
    ] {
        assert!(
            parse_entry(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn cursor_time_reads_the_t_field() {
    assert_eq!(
        cursor_time("s=e0;i=2;b=01;m=7d0;t=6611bee94bbc0;x=4a"),
        Some(0x6611bee94bbc0_u64 as f64 / 1e6)
    );
    assert_eq!(cursor_time("garbage"), None);
}

#[test]
fn capped_lines() {
    let data = b"short\nthis one is too long\nok\nlast".to_vec();
    let mut r = BufReader::with_capacity(4, &data[..]);
    let mut buf = Vec::new();
    let mut got = Vec::new();
    loop {
        match read_line_capped(&mut r, &mut buf, 8).unwrap() {
            LineRead::Line => got.push(String::from_utf8(buf.clone()).unwrap()),
            LineRead::TooLong(n) => got.push(format!("<{n}>")),
            LineRead::Eof => break,
        }
    }
    assert_eq!(got, ["short", "<20>", "ok", "last"]);
}

#[test]
fn journalfiles_expand_or_fail() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.journal"), b"").unwrap();
    std::fs::write(dir.path().join("b.journal"), b"").unwrap();
    let pattern = format!("{}/*.journal", dir.path().display());
    let o = opts(&format!("systemd[journalfiles={pattern}]"), "");
    let files = o.expand_files().unwrap();
    assert_eq!(files.len(), 2);
    let a = o.journalctl_args(&JournalStart::Tail, &files);
    assert_eq!(a.iter().filter(|x| *x == "--file").count(), 2);
    let o = opts("systemd[journalfiles=/nonexistent/*.journal]", "");
    assert_eq!(
        o.expand_files().unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
}

/// A JSON value for one field: a string, bytes, null, an array of those, or junk.
fn field_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        ".{0,40}".prop_map(serde_json::Value::from),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
        any::<i64>().prop_map(serde_json::Value::from),
        "[0-9]{0,20}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        proptest::collection::vec(inner, 0..4).prop_map(serde_json::Value::from)
    })
}

proptest::proptest! {
    #[test]
    fn parse_entry_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
        let _ = parse_entry(&bytes);
    }

    /// Entries of any shape (the fields we read with any kind of value, nulls, nesting):
    /// no panic; an entry is one line; a null in a field of the line is never an entry; the
    /// line is linear in the input (at most the input's bytes, newlines doubled, plus the
    /// fixed words we add) — it is all the work done after serde_json's one pass.
    #[test]
    fn any_entry_shape_is_one_bounded_line_or_refused(
        fields in proptest::collection::btree_map(
            proptest::sample::select(vec![
                "MESSAGE", "_HOSTNAME", "SYSLOG_IDENTIFIER", "_COMM", "SYSLOG_PID", "_PID",
                "__REALTIME_TIMESTAMP", "_SOURCE_REALTIME_TIMESTAMP", "__MONOTONIC_TIMESTAMP",
                "_SOURCE_MONOTONIC_TIMESTAMP", "__CURSOR", "OTHER",
            ]),
            field_value(),
            0..8,
        ),
    ) {
        let obj: serde_json::Map<String, serde_json::Value> =
            fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let json = serde_json::Value::Object(obj).to_string();
        let line_fields = ["MESSAGE", "_HOSTNAME", "SYSLOG_IDENTIFIER", "_COMM", "SYSLOG_PID", "_PID"];
        let has_null = line_fields.iter().any(|f| fields.get(f) == Some(&serde_json::Value::Null));
        match parse_entry(json.as_bytes()) {
            Ok(e) => {
                proptest::prop_assert!(!has_null, "a null field became an entry: {}", json);
                proptest::prop_assert!(!e.line.contains(&b'\n'));
                proptest::prop_assert!(e.line.len() <= 2 * json.len() + 64, "{} from {}", e.line.len(), json.len());
            }
            Err(EntryError::Incomplete { .. }) => proptest::prop_assert!(has_null),
            Err(EntryError::Json(_)) => {}
        }
    }

    /// journalctl's stdout cut into lines, whatever the reads: exactly the lines of the
    /// input, the long ones reported by length and never passed on, the buffer bounded.
    #[test]
    fn journalctl_output_splits_into_exactly_its_lines(
        input in proptest::collection::vec(
            proptest::prop_oneof![1 => proptest::strategy::Just(b'\n'), 6 => proptest::num::u8::ANY], 0..300),
        cap in 1usize..30,
        read_size in 1usize..17,
    ) {
        let mut r = BufReader::with_capacity(read_size, &input[..]);
        let mut buf = Vec::new();
        let mut got = Vec::new();
        loop {
            match read_line_capped(&mut r, &mut buf, cap).unwrap() {
                LineRead::Line => got.push(Ok(buf.clone())),
                LineRead::TooLong(n) => got.push(Err(n)),
                LineRead::Eof => break,
            }
            proptest::prop_assert!(buf.len() <= cap);
        }
        let mut want = Vec::new();
        let mut pieces: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
        // A last piece without newline counts unless it is empty.
        if pieces.last().is_some_and(|p| p.is_empty()) {
            pieces.pop();
        }
        for p in pieces {
            want.push(if p.len() <= cap { Ok(p.to_vec()) } else { Err(p.len()) });
        }
        proptest::prop_assert_eq!(got, want);
    }

    #[test]
    fn formatted_entries_are_one_line(msg in ".*", ident in "[a-z]{0,8}") {
        let j = serde_json::json!({"SYSLOG_IDENTIFIER": ident, "MESSAGE": msg}).to_string();
        let e = parse_entry(j.as_bytes()).unwrap();
        proptest::prop_assert!(!e.line.contains(&b'\n'));
    }
}
