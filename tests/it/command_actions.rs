//! action.d command actions run for real: our `iptables-multiport` action, resolved from
//! our shipped action.d files through the seed recipe's jail, and `iptables-ipset-proto6`,
//! inside a network namespace each test creates. Root, `ip`, `iptables`, `ipset` and
//! python3 are required: the tests skip loudly without them and fail under CI=true
//! (scripts/test installs `iptables` and `ipset`). Only loopback addresses inside the
//! namespace are used.

use banhammer::action::command::{CommandAction, Ticket};
use banhammer::embedded::EMBEDDED_CONFIG;
use banhammer_config::{read_jail, ActionSpec, ConfigTree};

use crate::env;
use crate::netns::Netns;

/// The seed recipe's jail, with the action spelled as the project brief gives it.
const JAIL_LOCAL: &str = "[wordpress]
enabled = true
filter = wordpress
logpath = {LOG}
findtime = 3600
bantime = 86400
action = iptables-multiport[name=wordpress, port=\"http,https\", protocol=tcp]
";

/// The seed recipe's CentOS jail as published (explicit action, numeric ports).
const JAIL_LOCAL_CENTOS: &str = "[wordpress]
enabled = true
filter = wordpress
logpath = {LOG}
findtime = 3600
bantime = 86400
action = iptables-multiport[name=wordpress,port=\"80,443\"]
";

/// The recipe's jail with another action.
fn with_action(action: &str) -> String {
    JAIL_LOCAL.replace(
        "iptables-multiport[name=wordpress, port=\"http,https\", protocol=tcp]",
        action,
    )
}

/// The `wordpress` jail's only action, resolved from `jail_local` on top of our shipped
/// config tree.
fn wordpress_action(jail_local: &str) -> ActionSpec {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    std::fs::write(&log, "").unwrap();
    std::fs::write(
        dir.path().join("jail.local"),
        jail_local.replace("{LOG}", &log.display().to_string()),
    )
    .unwrap();
    let tree = ConfigTree::new(EMBEDDED_CONFIG, Some(dir.path().to_path_buf()));
    let jail = read_jail(&tree, "wordpress").unwrap();
    assert_eq!(jail.bantime, 86400.0);
    assert_eq!(jail.actions.len(), 1, "{:#?}", jail.actions);
    jail.actions.into_iter().next().unwrap()
}

/// A namespace where iptables can run, or `None` after a loud skip.
fn namespace(tag: &str) -> Option<Netns> {
    if !env::require(
        "iptables (Debian package iptables)",
        env::have_command("iptables") && env::have_command("ip6tables"),
    ) {
        return None;
    }
    Netns::new(tag)
}

/// `CommandAction` for `spec` running its scripts inside `ns`.
fn in_namespace(ns: &Netns, spec: &ActionSpec) -> CommandAction {
    CommandAction::new("wordpress", spec)
        .unwrap()
        .with_shell(vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            ns.name.clone(),
            "/bin/sh".into(),
        ])
        .with_jail_bantime(86400)
}

/// `iptables -S` (or ip6tables) inside the namespace.
fn rules(ns: &Netns, program: &str) -> String {
    let out = ns.command(program).arg("-S").output().unwrap();
    assert!(
        out.status.success(),
        "{program} -S: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn ticket(ip: &str) -> Ticket {
    let mut t = Ticket::new(ip, 1_700_000_000.0, 86400);
    t.failures = 3;
    t.matches = vec![format!(
        "Nov 25 10:00:00 web wordpress(example.org)[42]: Authentication failure for admin from {ip}"
    )];
    t
}

#[test]
fn recipe_jail_resolves_to_our_iptables_multiport() {
    let spec = wordpress_action(JAIL_LOCAL);
    assert_eq!(spec.name, "iptables-multiport");
    assert_eq!(spec.actname, "iptables-multiport");
    let action = CommandAction::new("wordpress", &spec).unwrap();
    assert!(action.uses_tag("ip"));
    assert!(!action.uses_tag("ipmatches"), "no database read needed");
    let ban = &spec.options["actionban"];
    assert!(
        ban.contains("-I f2b-wordpress 1 -s <ip> -j <blocktype>"),
        "{ban}"
    );
    let start = &spec.options["actionstart"];
    assert!(start.contains("--dports http,https"), "{start}");
    assert!(start.contains("'tcp'"), "{start}");

    let centos = wordpress_action(JAIL_LOCAL_CENTOS);
    assert!(centos.options["actionstart"].contains("--dports 80,443"));
    CommandAction::new("wordpress", &centos).unwrap();
}

#[test]
fn iptables_multiport_bans_and_unbans_inside_a_namespace() {
    let Some(mut ns) = namespace("cmd-ipt") else {
        return;
    };
    let spec = wordpress_action(JAIL_LOCAL);
    let mut action = in_namespace(&ns, &spec);
    ns.listen(&[("127.0.0.1", 80), ("127.0.0.1", 443)]);

    // The action has IPv6 variants, so it starts on demand: nothing yet.
    action.start().unwrap();
    assert!(!rules(&ns, "iptables").contains("f2b-wordpress"));
    assert!(ns.connects("127.0.0.23", "127.0.0.1", 80));

    action.ban(&ticket("127.0.0.23")).unwrap();
    let v4 = rules(&ns, "iptables");
    assert!(v4.contains("-N f2b-wordpress"), "{v4}");
    assert!(
        v4.contains("-A INPUT -p tcp -m multiport --dports 80,443 -j f2b-wordpress"),
        "{v4}"
    );
    assert!(
        v4.contains(
            "-A f2b-wordpress -s 127.0.0.23/32 -j REJECT --reject-with icmp-port-unreachable"
        ),
        "{v4}"
    );
    assert!(
        !ns.connects("127.0.0.23", "127.0.0.1", 80),
        "banned, port 80"
    );
    assert!(
        !ns.connects("127.0.0.23", "127.0.0.1", 443),
        "banned, port 443"
    );
    assert!(ns.connects("127.0.0.24", "127.0.0.1", 80), "not banned");

    // An IPv6 ban starts the inet6 side with ip6tables and its own reject type.
    action.ban(&ticket("2001:db8::7")).unwrap();
    let v6 = rules(&ns, "ip6tables");
    assert!(
        v6.contains(
            "-A f2b-wordpress -s 2001:db8::7/128 -j REJECT --reject-with icmp6-port-unreachable"
        ),
        "{v6}"
    );

    action.unban(&ticket("127.0.0.23")).unwrap();
    assert!(ns.connects("127.0.0.23", "127.0.0.1", 80), "unbanned");
    assert!(!rules(&ns, "iptables").contains("127.0.0.23"));

    // Someone flushes the firewall: the next ban fails, actioncheck notices, the family
    // is restarted and the ban retried.
    let out = ns.command("iptables").args(["-F"]).status().unwrap();
    assert!(out.success());
    let out = ns.command("iptables").args(["-X"]).status().unwrap();
    assert!(out.success());
    action.ban(&ticket("127.0.0.25")).unwrap();
    assert!(
        !ns.connects("127.0.0.25", "127.0.0.1", 443),
        "re-banned after repair"
    );
    assert!(ns.connects("127.0.0.24", "127.0.0.1", 443));

    // Stop removes everything we added, in both families.
    action
        .stop(&[ticket("127.0.0.25"), ticket("2001:db8::7")])
        .unwrap();
    assert!(!rules(&ns, "iptables").contains("f2b-wordpress"));
    assert!(!rules(&ns, "ip6tables").contains("f2b-wordpress"));
    assert!(ns.connects("127.0.0.25", "127.0.0.1", 443));
}

#[test]
fn hostile_log_text_stays_data_in_a_real_action() {
    let Some(ns) = namespace("cmd-inj") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    // A ban that also records the user name as an iptables comment.
    let mut spec = wordpress_action(JAIL_LOCAL);
    spec.options.insert(
        "actionban".into(),
        "<iptables> -I f2b-<name> 1 -s <ip> -m comment --comment \"<F-USER>\" -j <blocktype>"
            .into(),
    );
    let mut action = in_namespace(&ns, &spec);
    let user = format!(
        "x\"; touch {}; echo \"$(touch {})",
        marker.display(),
        marker.display()
    );
    let mut t = ticket("127.0.0.23");
    t.fields.insert("user".into(), user.clone());
    action.ban(&t).unwrap();
    assert!(!marker.exists(), "log text was executed");
    let v4 = rules(&ns, "iptables");
    assert!(
        v4.contains("touch"),
        "the comment holds the text verbatim: {v4}"
    );
    action.stop(&[t]).unwrap();
}

#[test]
fn every_shipped_action_resolves_and_renders() {
    let names: Vec<&str> = EMBEDDED_CONFIG
        .iter()
        .filter_map(|(path, _)| path.strip_prefix("action.d/")?.strip_suffix(".conf"))
        .collect();
    assert!(names.contains(&"iptables-ipset-proto6"), "{names:?}");
    for name in names {
        let spec = wordpress_action(&with_action(name));
        let action = CommandAction::new("wordpress", &spec)
            .unwrap_or_else(|e| panic!("action.d/{name}.conf: {e}"));
        assert!(
            action.uses_tag("ip"),
            "action.d/{name}.conf never uses <ip>"
        );
    }
}

#[test]
fn iptables_ipset_bans_through_the_set_inside_a_namespace() {
    if !env::require("ipset (Debian package ipset)", env::have_command("ipset")) {
        return;
    }
    let Some(mut ns) = namespace("cmd-ipset") else {
        return;
    };
    let spec = wordpress_action(&with_action(
        "iptables-ipset-proto6[name=wordpress, port=\"http,https\", ipsettime=\"<timeout-bantime>\"]",
    ));
    let mut action = in_namespace(&ns, &spec);
    ns.listen(&[("127.0.0.1", 443)]);
    action.start().unwrap();

    action.ban(&ticket("127.0.0.23")).unwrap();
    let set = ns
        .command("ipset")
        .args(["list", "f2b-wordpress"])
        .output()
        .unwrap();
    let set = String::from_utf8(set.stdout).unwrap();
    // The kernel holds the ban's own time (86400 s) since ipsettime = <timeout-bantime>.
    assert!(set.contains("127.0.0.23 timeout 86"), "{set}");
    assert!(!ns.connects("127.0.0.23", "127.0.0.1", 443), "banned");
    assert!(ns.connects("127.0.0.24", "127.0.0.1", 443), "not banned");

    let mut v6 = ticket("2001:db8::7");
    v6.bantime = -1;
    action.ban(&v6).unwrap();
    let set6 = ns
        .command("ipset")
        .args(["list", "f2b-wordpress6"])
        .output()
        .unwrap();
    let set6 = String::from_utf8(set6.stdout).unwrap();
    assert!(set6.contains("family inet6"), "{set6}");
    assert!(set6.contains("2001:db8::7 timeout 0"), "permanent: {set6}");

    action.unban(&ticket("127.0.0.23")).unwrap();
    assert!(ns.connects("127.0.0.23", "127.0.0.1", 443), "unbanned");

    action.stop(&[v6]).unwrap();
    let left = ns.command("ipset").arg("list").output().unwrap();
    assert!(String::from_utf8(left.stdout).unwrap().trim().is_empty());
    assert!(!rules(&ns, "iptables").contains("match-set"));
    assert!(!rules(&ns, "ip6tables").contains("match-set"));
}
