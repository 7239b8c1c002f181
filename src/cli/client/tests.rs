//! The client's pure layers: fail2ban-client's output for each reply (expected texts
//! produced by fail2ban 1.0.2's own `Beautifier`), word mapping, and flag mapping.

use jiff::tz::TimeZone;
use serde_json::json;

use super::format::{format_reply, format_reply_as, Flavor};
use super::words::{invocation, INVALID};
use super::*;
use crate::control::protocol::{BanEntry, JailBans, JailStatus, Reply};

fn req_get(jail: Option<&str>, option: &str, args: &[&str]) -> Request {
    Request::Get {
        jail: jail.map(Into::into),
        option: option.into(),
        args: args.iter().map(|s| (*s).to_string()).collect(),
    }
}

fn value(option: &str, v: serde_json::Value) -> Reply {
    Reply::Value {
        option: option.into(),
        value: v,
    }
}

fn get(jail: Option<&str>, option: &str, args: &[&str], v: serde_json::Value) -> String {
    format_reply_as(
        &req_get(jail, option, args),
        &value(option, v),
        Flavor::Basic,
        &TimeZone::UTC,
    )
}

fn sshd_status() -> JailStatus {
    JailStatus {
        name: "sshd".into(),
        currently_failed: 2,
        total_failed: 17,
        files: vec!["/var/log/auth.log".into(), "/var/log/x".into()],
        journal_matches: None,
        currently_banned: 1,
        total_banned: 3,
        banned: vec!["192.0.2.7".into(), "2001:db8::1".into()],
    }
}

#[test]
fn ping_version_counts_reload_stop() {
    assert_eq!(
        format_reply(&Request::Ping, &Reply::Pong),
        "Server replied: pong"
    );
    let v = Reply::Version {
        version: "1.0.2".into(),
    };
    assert_eq!(format_reply(&Request::Version, &v), "1.0.2");
    let ban = Request::Ban {
        jail: "sshd".into(),
        ips: vec!["192.0.2.7".into()],
        force: false,
    };
    assert_eq!(format_reply(&ban, &Reply::Count { count: 1 }), "1");
    let reload = Request::Reload { jail: None };
    let done = Reply::Reloaded {
        messages: vec!["jail sshd reloaded".into()],
    };
    assert_eq!(format_reply(&reload, &done), "OK");
    assert_eq!(
        format_reply(&Request::Stop, &Reply::Ok),
        "Shutdown successful"
    );
}

#[test]
fn status_of_all_jails() {
    let reply = Reply::Status {
        jails: vec!["sshd".into(), "nginx-http-auth".into()],
    };
    assert_eq!(
        format_reply(&Request::Status { jail: None }, &reply),
        "Status\n|- Number of jail:\t2\n`- Jail list:\tnginx-http-auth, sshd"
    );
    let none = Reply::Status { jails: vec![] };
    assert_eq!(
        format_reply(&Request::Status { jail: None }, &none),
        "Status\n|- Number of jail:\t0\n`- Jail list:\t"
    );
}

#[test]
fn status_of_a_jail() {
    let req = Request::Status {
        jail: Some("sshd".into()),
    };
    let reply = Reply::JailStatus(sshd_status());
    assert_eq!(
        format_reply(&req, &reply),
        "Status for the jail: sshd\n|- Filter\n|  |- Currently failed:\t2\n|  |- Total failed:\t17\n|  `- File list:\t/var/log/auth.log /var/log/x\n`- Actions\n   |- Currently banned:\t1\n   |- Total banned:\t3\n   `- Banned IP list:\t192.0.2.7 2001:db8::1"
    );
    // fail2ban 1.0.2's `short` drops the banned list and keeps the file list.
    let mut s = sshd_status();
    s.files.clear();
    assert_eq!(
        format_reply_as(&req, &Reply::JailStatus(s), Flavor::Short, &TimeZone::UTC),
        "Status for the jail: sshd\n|- Filter\n|  |- Currently failed:\t2\n|  |- Total failed:\t17\n|  `- File list:\t\n`- Actions\n   |- Currently banned:\t1\n   `- Total banned:\t3"
    );
    let mut j = sshd_status();
    j.journal_matches = Some(vec![
        "_SYSTEMD_UNIT=sshd.service".into(),
        "_COMM=sshd".into(),
    ]);
    let text = format_reply(&req, &Reply::JailStatus(j));
    assert!(
        text.contains("|  `- Journal matches:\t_SYSTEMD_UNIT=sshd.service + _COMM=sshd\n"),
        "{text}"
    );
    assert!(!text.contains("File list"));
}

#[test]
fn banned_in_python_repr() {
    let reply = Reply::Banned {
        jails: vec![
            JailBans {
                jail: "sshd".into(),
                ips: vec!["1.2.3.4".into()],
            },
            JailBans {
                jail: "recidive".into(),
                ips: vec![],
            },
        ],
    };
    assert_eq!(
        format_reply(&Request::Banned { ips: vec![] }, &reply),
        "[{'sshd': ['1.2.3.4']}, {'recidive': []}]"
    );
    let per_ip = Reply::BannedIn {
        jails: vec![vec!["sshd".into(), "recidive".into()], vec![]],
    };
    let req = Request::Banned {
        ips: vec!["1.2.3.4".into(), "5.6.7.8".into()],
    };
    assert_eq!(format_reply(&req, &per_ip), "[['sshd', 'recidive'], []]");
}

#[test]
fn get_lists() {
    assert_eq!(
        get(Some("sshd"), "logpath", &[], json!(["/a", "/b"])),
        "Current monitored log file(s):\n|- /a\n`- /b"
    );
    assert_eq!(
        get(Some("sshd"), "logpath", &[], json!([])),
        "No file is currently monitored"
    );
    assert_eq!(
        get(Some("sshd"), "failregex", &[], json!(["^a$", "^b$"])),
        "The following regular expression are defined:\n|- [0]: ^a$\n`- [1]: ^b$"
    );
    assert_eq!(
        get(Some("sshd"), "ignoreregex", &[], json!([])),
        "No regular expression is defined"
    );
    assert_eq!(
        get(Some("sshd"), "ignoreip", &[], json!(["127.0.0.1/8", "::1"])),
        "These IP addresses/networks are ignored:\n|- 127.0.0.1/8\n`- ::1"
    );
    assert_eq!(
        get(Some("sshd"), "ignoreip", &[], json!([])),
        "No IP address/network is ignored"
    );
    assert_eq!(
        get(Some("sshd"), "actions", &[], json!(["nftables", "mail"])),
        "The jail sshd has the following actions:\nnftables, mail"
    );
    assert_eq!(
        get(Some("sshd"), "actions", &[], json!([])),
        "No actions for jail sshd"
    );
    assert_eq!(
        get(
            Some("sshd"),
            "journalmatch",
            &[],
            json!([["_SYSTEMD_UNIT=sshd.service"], ["_COMM=sshd"]])
        ),
        "Current match filter:\n_SYSTEMD_UNIT=sshd.service + _COMM=sshd"
    );
}

#[test]
fn get_datepattern() {
    assert_eq!(
        get(
            Some("sshd"),
            "datepattern",
            &[],
            json!([null, "Default Detectors"])
        ),
        "Current date pattern set to: Default Detectors"
    );
    assert_eq!(
        get(Some("sshd"), "datepattern", &[], json!(["%Y", "Year"])),
        "Current date pattern set to: %Y (Year)"
    );
    assert_eq!(
        get(Some("sshd"), "datepattern", &[], json!(null)),
        "Current date pattern set to: Not set/required"
    );
}

#[test]
fn get_bare_values() {
    assert_eq!(get(Some("sshd"), "findtime", &[], json!(600)), "600");
    assert_eq!(get(Some("sshd"), "usedns", &[], json!("warn")), "warn");
    assert_eq!(get(Some("sshd"), "bantime", &[], json!(600.5)), "600.5");
    assert_eq!(get(Some("sshd"), "banned", &["1.2.3.4"], json!(1)), "1");
    assert_eq!(
        get(Some("sshd"), "banned", &[], json!(["1.2.3.4", "5.6.7.8"])),
        "['1.2.3.4', '5.6.7.8']"
    );
    assert_eq!(
        get(Some("sshd"), "banned", &["a", "b"], json!([1, 0])),
        "[1, 0]"
    );
    assert_eq!(get(Some("sshd"), "ignoreself", &[], json!(true)), "True");
}

#[test]
fn get_server_options() {
    assert_eq!(
        get(None, "loglevel", &[], json!("INFO")),
        "Current logging level is 'INFO'"
    );
    assert_eq!(
        get(None, "loglevel", &[], json!(20)),
        "Current logging level is 'INFO'"
    );
    assert_eq!(
        get(None, "logtarget", &[], json!("/var/log/banhammer.log")),
        "Current logging target is:\n`- /var/log/banhammer.log"
    );
    assert_eq!(
        get(
            None,
            "dbfile",
            &[],
            json!("/var/lib/banhammer/banhammer.sqlite3")
        ),
        "Current database file is:\n`- /var/lib/banhammer/banhammer.sqlite3"
    );
    assert_eq!(
        get(None, "dbfile", &[], json!(null)),
        "Database currently disabled"
    );
    assert_eq!(
        get(None, "dbpurgeage", &[], json!(86400.0)),
        "Current database purge age is:\n`- 86400seconds"
    );
    assert_eq!(get(None, "dbmaxmatches", &[], json!(10)), "10");
}

#[test]
fn get_banip() {
    let ips = json!(["192.0.2.7", "192.0.2.8"]);
    assert_eq!(
        get(Some("sshd"), "banip", &[], ips.clone()),
        "192.0.2.7 192.0.2.8"
    );
    assert_eq!(
        get(Some("sshd"), "banip", &[","], ips),
        "192.0.2.7,192.0.2.8"
    );
    let entries = serde_json::to_value(vec![
        BanEntry {
            ip: "192.0.2.7".into(),
            time_of_ban: 1_700_000_000.75,
            bantime: 600.0,
        },
        BanEntry {
            ip: "2001:db8::1".into(),
            time_of_ban: 1_700_000_000.0,
            bantime: -1.0,
        },
    ])
    .unwrap();
    assert_eq!(
        get(Some("sshd"), "banip", &["--with-time"], entries),
        "192.0.2.7 \t2023-11-14 22:13:20 + 600 = 2023-11-14 22:23:20\n\
         2001:db8::1 \t2023-11-14 22:13:20 + -1 = 9999-12-31 23:59:59"
    );
}

#[test]
fn ban_times_use_the_given_zone() {
    let tz = TimeZone::fixed(jiff::tz::offset(2));
    assert_eq!(format::time2str(0.0, &tz), "1970-01-01 02:00:00");
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

fn mapped(s: &str) -> Request {
    invocation(&words(s)).unwrap().request
}

#[test]
fn fail2ban_client_words() {
    assert_eq!(mapped("ping"), Request::Ping);
    assert_eq!(mapped("version"), Request::Version);
    assert_eq!(mapped("stop"), Request::Stop);
    assert_eq!(mapped("status"), Request::Status { jail: None });
    assert_eq!(
        mapped("status sshd"),
        Request::Status {
            jail: Some("sshd".into())
        }
    );
    let short = invocation(&words("status sshd short")).unwrap();
    assert_eq!(short.flavor, Flavor::Short);
    assert_eq!(
        mapped("set sshd banip 1.2.3.4 5.6.7.8"),
        Request::Ban {
            jail: "sshd".into(),
            ips: words("1.2.3.4 5.6.7.8"),
            force: false,
        }
    );
    let unban_in_jail = Request::Unban {
        jail: Some("sshd".into()),
        ips: words("1.2.3.4"),
        all: false,
    };
    assert_eq!(mapped("set sshd unbanip 1.2.3.4"), unban_in_jail);
    assert_eq!(
        mapped("set sshd unbanip --report-absent 1.2.3.4"),
        unban_in_jail
    );
    assert_eq!(
        mapped("unban --all"),
        Request::Unban {
            jail: None,
            ips: vec![],
            all: true
        }
    );
    assert_eq!(
        mapped("unban 1.2.3.4 5.6.7.8"),
        Request::Unban {
            jail: None,
            ips: words("1.2.3.4 5.6.7.8"),
            all: false
        }
    );
    assert_eq!(mapped("banned"), Request::Banned { ips: vec![] });
    assert_eq!(
        mapped("banned 1.2.3.4"),
        Request::Banned {
            ips: words("1.2.3.4")
        }
    );
    assert_eq!(mapped("get loglevel"), req_get(None, "loglevel", &[]));
    assert_eq!(
        mapped("get sshd banip --with-time"),
        req_get(Some("sshd"), "banip", &["--with-time"])
    );
    assert_eq!(
        mapped("get sshd banned 1.2.3.4"),
        req_get(Some("sshd"), "banned", &["1.2.3.4"])
    );
    assert_eq!(mapped("reload"), Request::Reload { jail: None });
    assert_eq!(mapped("reload --all"), Request::Reload { jail: None });
    assert_eq!(
        mapped("reload sshd"),
        Request::Reload {
            jail: Some("sshd".into())
        }
    );
}

#[test]
fn invalid_words() {
    for bad in [
        "",
        "frobnicate",
        "status sshd loud",
        "set sshd banip",
        "set sshd unbanip",
        "unban",
        "reload a b",
    ] {
        assert_eq!(invocation(&words(bad)), Err(INVALID.to_string()), "{bad:?}");
    }
    let e = invocation(&words("set sshd bantime 600")).unwrap_err();
    assert!(e.starts_with(INVALID) && e.contains("reload"), "{e}");
    let e = invocation(&words("reload --unban")).unwrap_err();
    assert!(e.contains("--unban is not supported"), "{e}");
}

#[test]
fn unban_flags() {
    assert_eq!(
        unban(false, words("sshd 1.2.3.4")).unwrap(),
        Request::Unban {
            jail: Some("sshd".into()),
            ips: words("1.2.3.4"),
            all: false
        }
    );
    assert_eq!(
        unban(false, words("1.2.3.4 2001:db8::/32")).unwrap(),
        Request::Unban {
            jail: None,
            ips: words("1.2.3.4 2001:db8::/32"),
            all: false
        }
    );
    assert_eq!(
        unban(true, words("sshd")).unwrap(),
        Request::Unban {
            jail: Some("sshd".into()),
            ips: vec![],
            all: true
        }
    );
    assert!(unban(false, words("sshd")).is_err());
    assert!(unban(true, words("1.2.3.4")).is_err());
}

#[test]
fn get_flags() {
    assert_eq!(
        super::get(words("loglevel"), false).unwrap(),
        req_get(None, "loglevel", &[])
    );
    assert_eq!(
        super::get(words("sshd banip"), true).unwrap(),
        req_get(Some("sshd"), "banip", &["--with-time"])
    );
    assert!(super::get(words("loglevel"), true).is_err());
}

#[test]
fn socket_path_from_flag_config_or_default() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        socket_path(dir.path(), Some(Path::new("/tmp/x.sock"))).unwrap(),
        PathBuf::from("/tmp/x.sock")
    );
    assert_eq!(
        socket_path(dir.path(), None).unwrap(),
        PathBuf::from(DEFAULT_SOCKET)
    );
    std::fs::write(
        dir.path().join("fail2ban.local"),
        "[Definition]\nsocket = /run/other/b.sock\n",
    )
    .unwrap();
    assert_eq!(
        socket_path(dir.path(), None).unwrap(),
        PathBuf::from("/run/other/b.sock")
    );
    assert_eq!(
        socket_path(&dir.path().join("missing"), None).unwrap(),
        PathBuf::from(DEFAULT_SOCKET)
    );
}
