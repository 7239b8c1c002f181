//! Unit tests of command actions: pure tests of the two substitution passes, then small
//! shell actions (built from option maps) run for real in temp dirs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::{Duration, Instant};

use banhammer_config::{ActionSpec, Options};

use super::script::{self, is_inline_safe};
use super::tags::{tags, Properties};
use super::*;

fn options(opts: &[(&str, &str)]) -> Options {
    opts.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn spec(opts: &[(&str, &str)]) -> ActionSpec {
    ActionSpec {
        name: "test".into(),
        actname: "test-action".into(),
        file: "<test>".into(),
        args: Options::new(),
        options: options(opts),
    }
}

/// An action whose options are `opts` plus `dir` = the temp dir (for `<dir>` in scripts).
fn action(dir: &Path, opts: &[(&str, &str)]) -> CommandAction {
    let mut all = opts.to_vec();
    let d = dir.display().to_string();
    all.push(("dir", &d));
    CommandAction::new("jail", &spec(&all)).unwrap()
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

fn ticket(ip: &str) -> Ticket {
    let mut t = Ticket::new(ip, 1_700_000_000.0, 600);
    t.failures = 3;
    t
}

// ----- the tag scanner and the static pass -----

#[test]
fn scanner_finds_tags_like_fail2ban() {
    let names: Vec<&str> = tags("a <x> <y z> <_p_<type>> <<b> c>d <> <F-USER>")
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["x", "type", "b", "F-USER"]);
}

#[test]
fn static_pass_is_recursive_and_nested() {
    let props = Properties::new(
        options(&[
            (
                "actionban",
                "<cmd> -I f2b-<name> <_ports_<type>> -s <ip><br>done<sp>.",
            ),
            ("cmd", "<iptables> -w"),
            ("iptables", "iptables"),
            ("name", "web"),
            ("type", "multiport"),
            ("_ports_multiport", "-m multiport --dports <port>"),
            ("port", "80,443"),
        ]),
        60.0,
    );
    assert_eq!(
        props.render("actionban", Family::Inet4).unwrap(),
        "iptables -w -I f2b-web -m multiport --dports 80,443 -s <ip>\ndone ."
    );
}

#[test]
fn family_variant_wins_for_its_family() {
    let props = Properties::new(
        options(&[
            ("actionban", "<iptables> <blocktype> <family>"),
            ("iptables", "iptables"),
            ("iptables?family=inet6", "ip6tables"),
            ("actionstart", "echo start <family> >> <dir>/log"),
            ("actionstop", "echo stop <family> >> <dir>/log"),
            ("blocktype", "REJECT"),
        ]),
        60.0,
    );
    assert!(props.has_family_variants());
    assert_eq!(
        props.render("actionban", Family::Inet4).unwrap(),
        "iptables REJECT <family>"
    );
    assert_eq!(
        props.render("actionban", Family::Inet6).unwrap(),
        "ip6tables REJECT <family>"
    );
}

#[test]
fn static_pass_knows_timeout_and_hostnames_but_not_bantime() {
    let props = Properties::new(
        options(&[
            ("actionban", "<timeout> <bantime> <sh-hostname> <unknown>"),
            ("bantime", "3600"),
        ]),
        90.0,
    );
    let out = props.render("actionban", Family::Inet4).unwrap();
    assert!(out.starts_with("90 <bantime> "), "{out}");
    assert!(!out.contains("<sh-hostname>"));
    assert!(out.ends_with(" <unknown>"));
}

#[test]
fn self_reference_is_a_config_error() {
    let err =
        CommandAction::new("jail", &spec(&[("actionban", "x <a>"), ("a", "<a>y")])).unwrap_err();
    assert!(matches!(err, CommandError::Config { .. }), "{err}");
    assert!(err.to_string().contains("actionban"), "{err}");
}

#[test]
fn bad_timeout_is_a_config_error() {
    let err = CommandAction::new("jail", &spec(&[("timeout", "soon")])).unwrap_err();
    assert!(err.to_string().contains("timeout"), "{err}");
    assert!(CommandAction::new("jail", &spec(&[("timeout", "2m")])).is_ok());
}

#[test]
fn fqdn_from_hosts_file() {
    let hosts = "127.0.0.1 localhost\n127.0.1.1 web1.example.org web1 # here\n";
    assert_eq!(hostname::qualify("web1", hosts), "web1.example.org");
    assert_eq!(hostname::qualify("other", hosts), "other");
}

// ----- the dynamic pass -----

#[test]
fn safe_values_are_inlined() {
    let mut t = ticket("192.0.2.7");
    t.fields.insert("user".into(), "root p".into());
    let s = script::build(
        "iptables -s <ip> -j DROP # <F-USER> <family> <bantime> <failures> <time>",
        &t,
        Family::Inet4,
    );
    assert_eq!(
        s.text,
        "iptables -s 192.0.2.7 -j DROP # root p inet4 600 3 1700000000.0"
    );
    assert!(s.args.is_empty());
}

#[test]
fn unsafe_values_become_positional_parameters() {
    let mut t = ticket("192.0.2.7");
    t.fields.insert("user".into(), "a$b".into());
    let s = script::build(r#"echo "<ip> <F-USER>" <F-USER>"#, &t, Family::Inet4);
    assert_eq!(
        s.text,
        "f2bV_F_user=${1} \necho \"192.0.2.7 ${f2bV_F_user}\" ${f2bV_F_user}"
    );
    assert_eq!(s.args, ["a$b"]);
}

#[test]
fn missing_f_group_is_empty_and_unknown_tags_stay() {
    let s = script::build(
        "<F-USER>|<F-user>|<STDIN>|<ip>",
        &ticket("::1"),
        Family::Inet6,
    );
    assert_eq!(s.text, "|<F-user>|<STDIN>|::1");
}

#[test]
fn values_are_not_scanned_for_tags_again() {
    let mut t = ticket("192.0.2.7");
    t.fields.insert("user".into(), "<ip>".into());
    t.matches = vec!["<F-USER>".into()];
    let s = script::build("<F-USER> <matches>", &t, Family::Inet4);
    assert_eq!(s.args, ["<ip>", "<F-USER>"]);
}

#[test]
fn the_whitelist_refuses_every_shell_special() {
    for c in "\\#&;`|*?~<>^()[]{}$'\"\n\r\t!\0\x1b".chars() {
        assert!(!is_inline_safe(&format!("a{c}b")), "{c:?} inlined");
    }
    assert!(is_inline_safe("2001:db8::1/64"));
    assert!(is_inline_safe("user@example.org,+x=y-z %"));
    assert!(
        !is_inline_safe(&"a".repeat(1000)),
        "long values go as arguments"
    );
}

#[test]
fn ip_rev_and_db_fallbacks() {
    let mut t = ticket("192.0.2.7");
    t.matches = vec!["l1".into(), "l2".into()];
    assert_eq!(t.tag_value(Family::Inet4, "ip-rev").unwrap(), "7.2.0.192.");
    assert_eq!(t.tag_value(Family::Inet4, "ipmatches").unwrap(), "l1\nl2");
    assert_eq!(t.tag_value(Family::Inet4, "ipjailfailures").unwrap(), "3");
    assert_eq!(t.tag_value(Family::Inet4, "restored").unwrap(), "0");
    assert_eq!(t.tag_value(Family::Inet4, "jail.banned").unwrap(), "");
    t.jail = Some(JailCounters {
        banned: 4,
        ..JailCounters::default()
    });
    assert_eq!(t.tag_value(Family::Inet4, "jail.banned").unwrap(), "4");
    let v6 = ticket("2001:db8::1");
    let rev = v6.tag_value(Family::Inet6, "ip-rev").unwrap();
    assert!(
        rev.starts_with("1.0.0.0.") && rev.ends_with(".8.b.d.0.1.0.0.2."),
        "{rev}"
    );
    assert_eq!(Family::of("2001:db8::/32"), Family::Inet6);
    assert_eq!(Family::of("192.0.2.0/24"), Family::Inet4);
    assert_eq!(Family::of("alice"), Family::Unspecified);
}

#[test]
fn huge_values_are_cut_at_a_line_end() {
    let mut t = ticket("192.0.2.7");
    t.matches = (0..5000)
        .map(|i| format!("line {i} {}", "x".repeat(40)))
        .collect();
    let s = script::build("<matches>", &t, Family::Inet4);
    assert_eq!(s.truncated, ["matches"]);
    assert!(s.args[0].len() <= 64 * 1024);
    assert!(s.args[0].ends_with(&"x".repeat(40)));
}

// ----- running: injection -----

const PAYLOADS: &[&str] = &[
    "$(touch {X})",
    "`touch {X}`",
    "a;touch {X}",
    "x\ntouch {X}",
    "'",
    "\"",
    "\"; touch {X}; \"",
    "'; touch {X}; '",
    "${IFS}$(touch${IFS}{X})",
    "a|touch {X}",
    "a&&touch {X}",
    "\\",
    "*",
    "<ip>",
    "-rf",
    "x\r\x1b[2Jy",
];

#[test]
fn log_text_never_executes_and_arrives_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("X");
    let mut a = action(
        dir.path(),
        &[(
            "actionban",
            "printf %s \"<F-USER>\" > <dir>/user\nprintf %s \"<matches>\" > <dir>/matches\nprintf %s <ip> > <dir>/ip",
        )],
    );
    for payload in PAYLOADS {
        let payload = payload.replace("{X}", &x.display().to_string());
        let mut t = ticket("192.0.2.7");
        t.fields.insert("user".into(), payload.clone());
        t.matches = vec![payload.clone(), format!("second {payload}")];
        a.ban(&t).unwrap();
        assert_eq!(read(dir.path(), "user"), payload);
        assert_eq!(
            read(dir.path(), "matches"),
            format!("{payload}\nsecond {payload}")
        );
        assert_eq!(read(dir.path(), "ip"), "192.0.2.7");
        assert!(!x.exists(), "payload {payload:?} executed");
    }
}

#[test]
fn every_ascii_character_arrives_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = String::new();
    let mut t = ticket("192.0.2.7");
    for b in 0u8..128 {
        t.fields.insert(format!("c{b}"), format!("<{}>", b as char));
        cmd.push_str(&format!("printf %s \"<F-C{b}>\" > <dir>/c{b}\n"));
    }
    let mut a = action(dir.path(), &[("actionban", &cmd)]);
    a.ban(&t).unwrap();
    for b in 0u8..128 {
        let expected = match b {
            0 => "<\u{FFFD}>".to_string(),
            _ => format!("<{}>", b as char),
        };
        assert_eq!(read(dir.path(), &format!("c{b}")), expected, "byte {b}");
    }
}

#[test]
fn a_hostile_key_is_a_parameter_too() {
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("X");
    let mut a = action(
        dir.path(),
        &[("actionban", "printf %s \"<ip>\" > <dir>/ip")],
    );
    let key = format!("1.2.3.4;touch {}", x.display());
    a.ban(&ticket(&key)).unwrap();
    assert_eq!(read(dir.path(), "ip"), key);
    assert!(!x.exists());
}

#[test]
fn ten_and_more_parameters_keep_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = String::new();
    let mut t = ticket("192.0.2.7");
    for i in 0..12 {
        t.fields.insert(format!("v{i}"), format!("value {i};"));
        cmd.push_str(&format!("printf '%s\\n' \"<F-V{i}>\" >> <dir>/out\n"));
    }
    let mut a = action(dir.path(), &[("actionban", &cmd)]);
    a.ban(&t).unwrap();
    let expected: String = (0..12).map(|i| format!("value {i};\n")).collect();
    assert_eq!(read(dir.path(), "out"), expected);
}

// ----- running: timeout, errors -----

#[test]
fn timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = action(
        dir.path(),
        &[
            ("timeout", "0.3"),
            ("actionstart", "sleep 30 &\necho $! > <dir>/pid\nsleep 30"),
        ],
    );
    let started = Instant::now();
    let err = a.start().unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "{err}");
    assert!(
        matches!(
            err,
            CommandError::Failed {
                op: Op::Start,
                cause: Cause::TimedOut(_),
                ..
            }
        ),
        "{err}"
    );
    let pid = read(dir.path(), "pid").trim().to_string();
    assert!(!pid.is_empty());
    // The background sleep is gone (or a zombie nobody reaped yet: dead all the same).
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let alive = stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'));
        if !alive {
            break;
        }
        assert!(Instant::now() < deadline, "background sleep {pid} survived");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_failure_names_action_operation_address_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = action(
        dir.path(),
        &[(
            "actionban",
            "echo progress; echo 'no such chain' >&2; exit 3",
        )],
    );
    let err = a.ban(&ticket("192.0.2.7")).unwrap_err();
    let text = err.to_string();
    for part in [
        "jail",
        "test-action",
        "ban 192.0.2.7",
        "exit code 3",
        "no such chain",
    ] {
        assert!(text.contains(part), "{part:?} missing in {text}");
    }
}

#[test]
fn output_does_not_wait_for_background_helpers() {
    let dir = tempfile::tempdir().unwrap();
    // The helper keeps stdout open for 3 s; the action itself is done at once.
    let mut a = action(dir.path(), &[("actionstart", "sleep 3 & echo started")]);
    let started = Instant::now();
    a.start().unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
}

// ----- the lifecycle -----

/// An action logging each operation to `<dir>/log`; `extra` adds or overrides options.
fn logging_action(dir: &Path, extra: &[(&str, &str)]) -> CommandAction {
    let mut opts = vec![
        ("actionstart", "echo start >> <dir>/log"),
        ("actionstop", "echo stop >> <dir>/log"),
        ("actionban", "echo ban <ip> >> <dir>/log"),
        ("actionunban", "echo unban <ip> >> <dir>/log"),
    ];
    for (k, v) in extra {
        opts.retain(|(key, _)| key != k);
        opts.push((*k, *v));
    }
    action(dir, &opts)
}

fn log(dir: &Path) -> Vec<String> {
    read(dir, "log").lines().map(String::from).collect()
}

#[test]
fn check_repair_retry_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = logging_action(
        dir.path(),
        &[
            ("actionban", "echo ban <ip> >> <dir>/log; [ -e <dir>/ok ]"),
            ("actioncheck", "echo check >> <dir>/log; [ -e <dir>/ok ]"),
            ("actionrepair", "echo repair >> <dir>/log; touch <dir>/ok"),
        ],
    );
    a.start().unwrap();
    a.ban(&ticket("192.0.2.7")).unwrap();
    assert_eq!(
        log(dir.path()),
        [
            "start",
            "ban 192.0.2.7",
            "check",
            "repair",
            "check",
            "ban 192.0.2.7"
        ]
    );
}

#[test]
fn without_repair_the_family_is_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = logging_action(
        dir.path(),
        &[
            ("actionban", "echo ban <ip> >> <dir>/log; [ -e <dir>/ok ]"),
            ("actioncheck", "echo check >> <dir>/log; [ -e <dir>/ok ]"),
            (
                "actionstart",
                "echo start <family> >> <dir>/log; touch <dir>/ok",
            ),
            ("actionstop", "echo stop <family> >> <dir>/log"),
            ("actionstart_on_demand", "true"),
        ],
    );
    a.ban(&ticket("192.0.2.7")).unwrap();
    let first = log(dir.path());
    assert_eq!(first, ["start inet4", "ban 192.0.2.7"]);
    std::fs::remove_file(dir.path().join("ok")).unwrap();
    std::fs::remove_file(dir.path().join("log")).unwrap();
    a.ban(&ticket("192.0.2.8")).unwrap();
    assert_eq!(
        log(dir.path()),
        [
            "ban 192.0.2.8",
            "check",
            "stop inet4",
            "start inet4",
            "check",
            "ban 192.0.2.8"
        ]
    );
}

#[test]
fn without_check_a_failed_command_is_retried_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = logging_action(dir.path(), &[("actionban", "echo ban >> <dir>/log; false")]);
    assert!(a.ban(&ticket("192.0.2.7")).is_err());
    assert_eq!(log(dir.path()), ["ban", "ban"]);
}

#[test]
fn unban_repairs_only_when_allowed() {
    for (allowed, expected) in [
        ("false", vec!["unban", "check"]),
        ("true", vec!["unban", "check", "repair", "check", "unban"]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut a = logging_action(
            dir.path(),
            &[
                ("actionunban", "echo unban >> <dir>/log; [ -e <dir>/ok ]"),
                ("actioncheck", "echo check >> <dir>/log; [ -e <dir>/ok ]"),
                ("actionrepair", "echo repair >> <dir>/log; touch <dir>/ok"),
                ("actionrepair_on_unban", allowed),
                ("actionstart", ""),
                ("actionban", ""),
            ],
        );
        a.ban(&ticket("192.0.2.7")).unwrap();
        let result = a.unban(&ticket("192.0.2.7"));
        assert_eq!(result.is_ok(), allowed == "true", "{result:?}");
        assert_eq!(
            log(dir.path()),
            expected,
            "actionrepair_on_unban = {allowed}"
        );
    }
}

#[test]
fn on_demand_start_per_family() {
    let dir = tempfile::tempdir().unwrap();
    // A family variant makes the action start on demand by default.
    let mut a = logging_action(
        dir.path(),
        &[
            ("actionstart", "echo start <family> >> <dir>/log"),
            ("actionstop", "echo stop <family> >> <dir>/log"),
            ("blocktype", "REJECT"),
            ("blocktype?family=inet6", "REJECT6"),
            ("actionban", "echo ban <ip> <blocktype> >> <dir>/log"),
        ],
    );
    a.start().unwrap();
    assert!(log(dir.path()).is_empty());
    a.ban(&ticket("192.0.2.7")).unwrap();
    a.ban(&ticket("192.0.2.8")).unwrap();
    a.ban(&ticket("2001:db8::1")).unwrap();
    a.unban(&ticket("2001:db8::1")).unwrap();
    assert_eq!(
        log(dir.path()),
        [
            "start inet4",
            "ban 192.0.2.7 REJECT",
            "ban 192.0.2.8 REJECT",
            "start inet6",
            "ban 2001:db8::1 REJECT6",
            "unban 2001:db8::1"
        ]
    );
    a.stop(&[]).unwrap();
    assert_eq!(log(dir.path())[6..], ["stop inet4", "stop inet6"]);
}

#[test]
fn variants_started_at_once_when_not_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = logging_action(
        dir.path(),
        &[
            ("actionstart", "echo start <family> >> <dir>/log"),
            ("x?family=inet6", "y"),
            ("actionstart_on_demand", "false"),
        ],
    );
    a.start().unwrap();
    assert_eq!(log(dir.path()), ["start inet4", "start inet6"]);
}

#[test]
fn a_shared_setup_starts_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = logging_action(
        dir.path(),
        &[
            ("actionstart", "echo start >> <dir>/log"),
            ("actionstop", "echo stop >> <dir>/log"),
            ("actionstart_on_demand", "yes"),
        ],
    );
    a.ban(&ticket("192.0.2.7")).unwrap();
    a.ban(&ticket("2001:db8::1")).unwrap();
    a.stop(&[]).unwrap();
    assert_eq!(
        log(dir.path()),
        ["start", "ban 192.0.2.7", "ban 2001:db8::1", "stop"]
    );
}

#[test]
fn unban_only_in_a_family_that_had_bans() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = logging_action(dir.path(), &[]);
    a.start().unwrap();
    a.unban(&ticket("192.0.2.7")).unwrap();
    assert_eq!(log(dir.path()), ["start"]);
}

#[test]
fn norestored_skips_restored_tickets() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = logging_action(
        dir.path(),
        &[
            ("norestored", "True"),
            ("actionprolong", "echo prolong <ip> >> <dir>/log"),
        ],
    );
    assert!(a.norestored());
    a.start().unwrap();
    let mut restored = ticket("192.0.2.7");
    restored.restored = true;
    a.ban(&restored).unwrap();
    a.prolong(&restored).unwrap();
    a.unban(&restored).unwrap();
    a.ban(&ticket("192.0.2.8")).unwrap();
    a.prolong(&ticket("192.0.2.8")).unwrap();
    assert_eq!(
        log(dir.path()),
        ["start", "ban 192.0.2.8", "prolong 192.0.2.8"]
    );
}

#[test]
fn prolong_without_actionprolong_runs_nothing_and_reban_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = logging_action(dir.path(), &[]);
    assert!(!a.prolongable());
    a.prolong(&ticket("192.0.2.7")).unwrap();
    a.reban(&ticket("192.0.2.7")).unwrap();
    let mut b = logging_action(
        dir.path(),
        &[("actionreban", "echo reban <ip> >> <dir>/log")],
    );
    b.reban(&ticket("192.0.2.8")).unwrap();
    assert_eq!(log(dir.path()), ["ban 192.0.2.7", "reban 192.0.2.8"]);
}

#[test]
fn stop_flushes_once_when_it_can() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = logging_action(dir.path(), &[("actionflush", "echo flush >> <dir>/log")]);
    a.start().unwrap();
    let banned = [ticket("192.0.2.7"), ticket("192.0.2.8")];
    for t in &banned {
        a.ban(t).unwrap();
    }
    a.stop(&banned).unwrap();
    assert_eq!(log(dir.path())[3..], ["flush", "stop"]);
}

#[test]
fn stop_unbans_each_ticket_without_flush() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = logging_action(dir.path(), &[]);
    a.start().unwrap();
    let banned = [ticket("192.0.2.7"), ticket("192.0.2.8")];
    for t in &banned {
        a.ban(t).unwrap();
    }
    a.stop(&banned).unwrap();
    assert_eq!(
        log(dir.path())[3..],
        ["unban 192.0.2.7", "unban 192.0.2.8", "stop"]
    );
}

#[test]
fn uses_tag_sees_every_operation() {
    let a = CommandAction::new(
        "jail",
        &spec(&[
            ("actionban", "echo <ipmatches> <F-USER> <_x>"),
            ("_x", "<jail.banned>"),
            ("actionunban", "echo <ip>"),
        ]),
    )
    .unwrap();
    for tag in ["ipmatches", "F-USER", "jail.banned", "ip"] {
        assert!(a.uses_tag(tag), "{tag}");
    }
    assert!(!a.uses_tag("ipjailmatches"));
    assert!(!a.uses_tag("_x"));
}

#[test]
fn start_stop_scripts_see_the_jail_bantime() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = logging_action(
        dir.path(),
        &[("actionstart", "echo start <bantime> <ip>. >> <dir>/log")],
    )
    .with_jail_bantime(86400);
    a.start().unwrap();
    assert_eq!(log(dir.path()), ["start 86400 ."]);
}

#[test]
fn the_worker_keeps_order_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let a = logging_action(dir.path(), &[]);
    let w = spawn_worker(a).unwrap();
    w.call(ActionCmd::Start).unwrap();
    for i in 1..=5 {
        w.send(ActionCmd::Ban(ticket(&format!("192.0.2.{i}"))))
            .unwrap();
        w.send(ActionCmd::Unban(ticket(&format!("192.0.2.{i}"))))
            .unwrap();
    }
    w.stop(vec![]).unwrap();
    let mut expected = vec!["start".to_string()];
    for i in 1..=5 {
        expected.push(format!("ban 192.0.2.{i}"));
        expected.push(format!("unban 192.0.2.{i}"));
    }
    expected.push("stop".into());
    assert_eq!(log(dir.path()), expected);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any text a log line can carry reaches the command verbatim (NUL aside) and
        /// is either inlined because it is made of harmless characters only, or passed
        /// as a parameter.
        #[test]
        fn any_value_round_trips(value in "\\PC{0,40}|[\\x00-\\x7f]{0,40}") {
            let mut t = ticket("192.0.2.7");
            t.fields.insert("user".into(), value.clone());
            let s = script::build("printf %s \"<F-USER>\"", &t, Family::Inet4);
            let clean = value.replace('\0', "\u{FFFD}");
            if is_inline_safe(&clean) {
                prop_assert_eq!(&s.text, &format!("printf %s \"{clean}\""));
            } else {
                prop_assert_eq!(&s.text, "f2bV_F_user=${1} \nprintf %s \"${f2bV_F_user}\"");
                prop_assert_eq!(&s.args, &vec![clean.clone()]);
            }
            let out = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(&s.text)
                .arg("sh")
                .args(&s.args)
                .output()
                .unwrap();
            prop_assert_eq!(String::from_utf8_lossy(&out.stdout), clean);
        }
    }
}
