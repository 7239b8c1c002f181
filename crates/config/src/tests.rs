//! Crate-level tests: the real `/etc/fail2ban` tree (skipped loudly when absent, a failure
//! under `CI=true`, where scripts/test installs it), the seed recipe
//! overlaid on it, and small synthetic trees for jail/filter/action resolution.

use super::*;
use std::path::Path;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn real_tree() -> Option<ConfigTree> {
    if Path::new("/etc/fail2ban/jail.conf").is_file() {
        Some(ConfigTree::new(&[], Some("/etc/fail2ban".into())))
    } else {
        assert!(
            !in_ci(),
            "/etc/fail2ban is missing under CI=true (scripts/test installs fail2ban)"
        );
        eprintln!("\n!!! SKIPPED: /etc/fail2ban not installed (run scripts/test as root) !!!\n");
        None
    }
}

/// The seed recipe, in the project's shared folder beside the repository.
fn recipe_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seed/recipe")
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Dev aid: `BH_DUMP_DIR=/etc/fail2ban BH_DUMP_OUT=/tmp/x.json cargo test -p banhammer-config dev_dump -- --ignored`
/// writes every force-enabled jail as JSON for comparison with fail2ban's own reader.
#[test]
#[ignore]
fn dev_dump_all_jails() {
    let dir = std::env::var("BH_DUMP_DIR").unwrap_or_else(|_| "/etc/fail2ban".into());
    let out = std::env::var("BH_DUMP_OUT").unwrap_or_else(|_| "/tmp/bh-dump.json".into());
    let t = ConfigTree::new(&[], Some(dir.into()));
    let jails = crate::jail::read_jails_forced(&t, true).unwrap();
    let mut o = String::from("{");
    for (i, j) in jails.jails.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        o.push_str(&format!("{}:{{", json_str(&j.name)));
        let f = j.filter.as_ref();
        let list = |v: &[String]| {
            format!(
                "[{}]",
                v.iter().map(|s| json_str(s)).collect::<Vec<_>>().join(",")
            )
        };
        o.push_str(&format!(
            "\"failregex\":{},",
            list(f.map_or(&[][..], |f| &f.failregex))
        ));
        o.push_str(&format!(
            "\"ignoreregex\":{},",
            list(f.map_or(&[][..], |f| &f.ignoreregex))
        ));
        if let Some(f) = f {
            if let Some(p) = &f.prefregex {
                o.push_str(&format!("\"prefregex\":{},", json_str(p)));
            }
            if let Some(p) = &f.datepattern {
                o.push_str(&format!("\"datepattern\":{},", json_str(p)));
            }
            if let Some(m) = f.maxlines {
                o.push_str(&format!("\"maxlines\":\"{m}\","));
            }
        }
        o.push_str("\"actions\":{");
        for (k, a) in j.actions.iter().enumerate() {
            if k > 0 {
                o.push(',');
            }
            let opts: Vec<String> = a
                .options
                .iter()
                .map(|(k, v)| format!("{}:{}", json_str(k), json_str(v)))
                .collect();
            o.push_str(&format!("{}:{{{}}}", json_str(&a.actname), opts.join(",")));
        }
        o.push_str("}}");
    }
    o.push('}');
    std::fs::write(out, o).unwrap();
}

#[test]
fn real_tree_reads_and_sshd_matches_fail2ban() {
    let Some(t) = real_tree() else { return };
    let all = read_jails(&t).unwrap();
    assert!(all.jails.len() > 50);
    let sshd = all.jails.iter().find(|j| j.name == "sshd").unwrap();
    assert!(
        sshd.enabled,
        "Debian's jail.d/defaults-debian.conf enables sshd"
    );
    assert!(sshd.origin.starts_with("/etc/fail2ban/jail.conf:"));
    let f = sshd.filter.as_ref().unwrap();
    assert_eq!(f.name, "sshd");
    assert_eq!(f.options["mode"], "normal");
    assert_eq!(f.logtype, "file");
    assert!(f.failregex.len() > 5);
    assert_eq!(f.maxlines, Some(1));
    assert_eq!(f.datepattern.as_deref(), Some("{^LN-BEG}"));
    assert_eq!(f.journalmatch, ["_SYSTEMD_UNIT=sshd.service + _COMM=sshd"]);
    // From `fail2ban-client -c /etc/fail2ban -d` (fail2ban 1.0.2, Debian bookworm).
    assert_eq!(
        f.prefregex.as_deref().unwrap(),
        r"^<F-MLFID>(?:\[\])?\s*(?:<[^.]+\.[^.]+>\s+)?(?:\S+\s+)?(?:kernel:\s?\[ *\d+\.\d+\]:?\s+)?(?:@vserver_\S+\s+)?(?:(?:(?:\[\d+\])?:\s+[\[\(]?sshd(?:\(\S+\))?[\]\)]?:?|[\[\(]?sshd(?:\(\S+\))?[\]\)]?:?(?:\[\d+\])?:?)\s+)?(?:\[ID \d+ \S+\]\s+)?</F-MLFID>(?:(?:error|fatal): (?:PAM: )?)?<F-CONTENT>.+</F-CONTENT>$"
    );
    assert_eq!(
        f.failregex[0],
        r"^[aA]uthentication (?:failure|error|failed) for <F-USER>.*</F-USER> from <HOST>( via \S+)?(?: (?:port \d+|on \S+|\[preauth\])){0,3}\s*$"
    );
    assert_eq!(
        f.failregex[2],
        r"^Failed publickey for invalid user <F-USER>(?P<cond_user>\S+)|(?:(?! from ).)*?</F-USER> from <HOST>(?: (?:port \d+|on \S+)){0,2}(?: ssh\d*)?(?(cond_user): |(?:(?:(?! from ).)*)$)"
    );
    assert_eq!(sshd.maxretry, 5);
    assert_eq!(sshd.findtime, 600.0);
    assert_eq!(sshd.bantime, 600.0);
    assert_eq!(
        sshd.logpaths,
        [LogPath {
            pattern: "/var/log/auth.log".into(),
            tail: false
        }]
    );
    assert_eq!(sshd.options["fail2ban_confpath"], "/etc/fail2ban");
    let a = &sshd.actions[0];
    assert_eq!(
        (a.name.as_str(), a.actname.as_str()),
        ("iptables-multiport", "iptables-multiport")
    );
    assert_eq!(a.args["chain"], "<known/chain>");
    assert_eq!(
        a.options["actionban"],
        "<iptables> -I f2b-sshd 1 -s <ip> -j <blocktype>"
    );
    assert_eq!(a.options["name"], "sshd");
    assert_eq!(a.options["chain"], "INPUT");
    assert_eq!(
        a.options["actioncheck"],
        "for proto in $(echo 'tcp' | sed 's/,/ /g'); do\n<iptables> -C INPUT -p $proto -m multiport --dports ssh -j f2b-sshd\ndone"
    );
    assert!(a.options.contains_key("iptables?family=inet6"));
    // the same jail through the fast path
    let one = read_jail(&t, "sshd").unwrap();
    assert_eq!(one.filter, sshd.filter);
    assert!(read_jail(&t, "no-such-jail").is_err());
    // server settings
    let s = read_server(&t).unwrap();
    assert_eq!(s.socket.as_deref(), Some("/var/run/fail2ban/fail2ban.sock"));
    assert_eq!(s.dbpurgeage, Some(86400.0));
    // dump stream
    let d = dump_commands(&all);
    assert_eq!(d[0], ["add", "sshd", "auto"]);
    assert!(d.contains(&vec![
        "set".to_string(),
        "sshd".into(),
        "maxretry".into(),
        "5".into()
    ]));
    assert_eq!(d.last().unwrap(), &["start", "sshd"]);
}

#[test]
fn real_tree_every_jail_resolves_when_forced() {
    let Some(t) = real_tree() else { return };
    let all = crate::jail::read_jails_forced(&t, true).unwrap();
    for j in &all.jails {
        let f = j.filter.as_ref().unwrap_or_else(|| panic!("{}", j.name));
        assert!(
            !f.failregex.is_empty() || j.name == "pass2allow-ftp",
            "{}",
            j.name
        );
        assert!(!j.actions.is_empty(), "{}", j.name);
        for r in f.failregex.iter().chain(&f.ignoreregex) {
            assert!(!r.contains("%("), "{}: {r}", j.name);
        }
    }
    let rec = all.jails.iter().find(|j| j.name == "recidive").unwrap();
    assert_eq!(rec.bantime, 604_800.0);
    assert_eq!(rec.findtime, 86_400.0);
    assert_eq!(rec.actions[0].name, "iptables-allports");
}

/// Copy the real tree into a temp dir (so recipe files can be added to it).
fn copy_tree(src: &Path, dst: &Path) {
    for e in std::fs::read_dir(src).unwrap().flatten() {
        let p = e.path();
        let q = dst.join(e.file_name());
        if p.is_dir() {
            std::fs::create_dir_all(&q).unwrap();
            copy_tree(&p, &q);
        } else {
            std::fs::copy(&p, &q).unwrap();
        }
    }
}

#[test]
fn recipe_wordpress_ubuntu_and_centos() {
    let recipe = recipe_dir();
    let recipe = recipe.as_path();
    if !recipe.join("filter.d/wordpress.conf").is_file() || real_tree().is_none() {
        assert!(
            !in_ci(),
            "the seed recipe or /etc/fail2ban is missing under CI=true"
        );
        eprintln!("\n!!! SKIPPED: seed recipe or /etc/fail2ban missing !!!\n");
        return;
    }
    for (flavour, logpath, port) in [
        ("ubuntu", "/var/log/auth.log", "http,https"),
        ("centos", "/var/log/secure", "80,443"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(Path::new("/etc/fail2ban"), dir.path());
        std::fs::copy(
            recipe.join("filter.d/wordpress.conf"),
            dir.path().join("filter.d/wordpress.conf"),
        )
        .unwrap();
        std::fs::copy(
            recipe.join(format!("jail.local.{flavour}")),
            dir.path().join("jail.local"),
        )
        .unwrap();
        let t = ConfigTree::new(&[], Some(dir.path().into()));
        let all = read_jails(&t).unwrap();
        let wp = all.jails.iter().find(|j| j.name == "wordpress").unwrap();
        assert!(wp.enabled);
        assert!(wp.origin.ends_with("jail.local:1"), "{}", wp.origin);
        assert_eq!(wp.findtime, 3600.0);
        assert_eq!(wp.bantime, 86400.0);
        assert_eq!(wp.logpaths[0].pattern, logpath);
        let f = wp.filter.as_ref().unwrap();
        assert_eq!(f.failregex.len(), 2);
        assert!(
            f.failregex[0].starts_with(r"^(?:\[\])?\s*(?:<[^.]+\.[^.]+>\s+)?"),
            "{}",
            f.failregex[0]
        );
        assert!(f.failregex[0].contains("wordpress"), "{}", f.failregex[0]);
        assert!(f.failregex[0].ends_with("Authentication failure for .* from <HOST>$"));
        assert!(f.ignoreregex.is_empty());
        let a = &wp.actions[0];
        assert_eq!(a.name, "iptables-multiport");
        assert_eq!(a.options["port"], port);
        assert_eq!(
            a.options["actionban"],
            "<iptables> -I f2b-wordpress 1 -s <ip> -j <blocktype>"
        );
        // the explicit-file path (fail2ban-regex): includes fall back to the tree
        let direct =
            read_filter_file(&t, &recipe.join("filter.d/wordpress.conf"), &Options::new()).unwrap();
        assert_eq!(direct.failregex, f.failregex);
    }
}

const EMBEDDED: &[(&str, &str)] = &[
    (
        "jail.conf",
        "[DEFAULT]\nbackend = auto\nmode = normal\nfilter = %(__name__)s[mode=%(mode)s]\nport = 0:65535\n\
         banaction = fw\naction_ = %(banaction)s[port=\"%(port)s\", chain=\"<known/chain>\"]\naction = %(action_)s\n\
         maxretry = 5\nfindtime = 10m\nbantime = 1h 30m\nchain = <known/chain>\n\
         [web]\nport = http,https\nlogpath = /var/log/web.log\n  /var/log/web2.log tail\n\
         [off]\nlogpath = /x\n",
    ),
    (
        "filter.d/common.conf",
        "[DEFAULT]\n__prefix_line = <lt_<logtype>/__prefix_line>\n[lt_file]\n__prefix_line = FILE:\n[lt_journal]\n__prefix_line = JOURNAL:\n",
    ),
    (
        "filter.d/web.conf",
        "[INCLUDES]\nbefore = common.conf\n[Init]\nmaxlines = 1\n[Definition]\nmdre-normal = ^n <HOST>$\nmdre-extra = ^x <HOST>$\n\
         failregex = ^%(__prefix_line)sfail <HOST>$\n            <mdre-<mode>>\nignoreregex =\n",
    ),
    (
        "action.d/fw.conf",
        "[Init]\nchain = INPUT\nblocktype = DROP\n[Init?family=inet6]\nblocktype = DROP6\n\
         [Definition]\nactionban = fw -A <chain> -p <port> -s <ip> -j <blocktype> # <name> %(port)s\n\
         actionunban = fw -D <chain> <ip> <F-USER> <logpath>\nactionstart_on_demand = yes\n",
    ),
];

#[test]
fn embedded_tree_with_overlay_local() {
    let (_d, t0) = crate::layered::tests::tree_with(&[(
        "jail.local",
        "[web]\nenabled = true\nmode = extra\nbogus_opt = 1\nport = %(known/port)s,8080\n\
         [DEFAULT]\nfindtime = 2*1d\n",
    )]);
    let t = ConfigTree::new(EMBEDDED, t0.overlay().map(Path::to_path_buf));
    let all = read_jails(&t).unwrap();
    assert_eq!(
        all.jails
            .iter()
            .map(|j| j.name.as_str())
            .collect::<Vec<_>>(),
        ["web", "off"]
    );
    let web = &all.jails[0];
    assert!(web.enabled && !all.jails[1].enabled);
    assert_eq!(web.origin, "<embedded>/jail.conf:13");
    assert_eq!(web.bantime, 5400.0);
    assert_eq!(web.findtime, 172_800.0);
    assert_eq!(
        web.logpaths,
        [
            LogPath {
                pattern: "/var/log/web.log".into(),
                tail: false
            },
            LogPath {
                pattern: "/var/log/web2.log".into(),
                tail: true
            }
        ]
    );
    let f = web.filter.as_ref().unwrap();
    assert_eq!(f.failregex, ["^FILE:fail <HOST>$", "^x <HOST>$"]);
    assert!(f.ignoreregex.is_empty());
    assert_eq!(f.maxlines, Some(1));
    assert_eq!(f.options["mode"], "extra");
    let a = &web.actions[0];
    assert_eq!(a.args["port"], "http,https,8080");
    assert_eq!(
        a.options["actionban"],
        "fw -A INPUT -p http,https,8080 -s <ip> -j <blocktype> # web http,https,8080"
    );
    // runtime tags stay, jail options fall back as tag values
    assert_eq!(
        a.options["actionunban"],
        "fw -D INPUT <ip> <F-USER> /var/log/web.log\n/var/log/web2.log tail"
    );
    assert_eq!(a.options["blocktype?family=inet6"], "DROP6");
    assert_eq!(a.options["actionstart_on_demand"], "True");
    let w: Vec<_> = all
        .warnings
        .iter()
        .filter(|w| w.message.contains("bogus_opt"))
        .collect();
    assert_eq!(w.len(), 1);
    assert!(w[0].origin.ends_with("jail.local:4"), "{}", w[0].origin);

    // read_filter: logtype follows the backend var; args override
    let mut vars = Options::new();
    vars.insert("backend".into(), "systemd".into());
    let f = read_filter(&t, "web[mode=normal]", &vars).unwrap();
    assert_eq!(f.logtype, "journal");
    assert_eq!(f.failregex, ["^JOURNAL:fail <HOST>$", "^n <HOST>$"]);
    assert_eq!(f.file, "<embedded>/filter.d/web.conf");
    assert!(read_filter(&t, "nope", &Options::new()).is_err());
}

#[test]
fn errors_carry_file_and_line() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "[web]\nenabled = true\nbantime = soon\n",
            "jail.local:3: bantime of jail [web]",
            "duration",
        ),
        (
            "[web]\nenabled = true\naction = nosuch\n",
            "jail.local:3: unable to read action",
            "action.d/nosuch",
        ),
        (
            "[web]\nenabled = true\nfilter = nosuch\n",
            "jail.local:3: unable to read the filter",
            "filter.d/nosuch",
        ),
        (
            "[web]\nenabled = true\nfilter = web[mode=\n",
            "jail.local:3: unexpected option syntax",
            "name[",
        ),
        (
            "[web]\nenabled = true\nport = %(nope)s\n",
            "jail.local:3: bad option reference",
            "nope",
        ),
        (
            "[web]\nenabled = true\n[web]\n",
            "jail.local:3: section [web] already exists",
            "once",
        ),
    ];
    for (local, want, also) in cases {
        let (_d, t0) = crate::layered::tests::tree_with(&[("jail.local", local)]);
        let t = ConfigTree::new(EMBEDDED, t0.overlay().map(Path::to_path_buf));
        let e = read_jails(&t).unwrap_err().to_string();
        assert!(e.contains(want) && e.contains(also), "{local:?} → {e}");
    }
    // disabled jails never fail
    let (_d, t0) = crate::layered::tests::tree_with(&[(
        "jail.local",
        "[off]\nbantime = soon\naction = nosuch\n",
    )]);
    let t = ConfigTree::new(EMBEDDED, t0.overlay().map(Path::to_path_buf));
    assert!(read_jails(&t).is_ok());
}

#[test]
fn tag_self_reference_is_an_error() {
    let (_d, t0) = crate::layered::tests::tree_with(&[
        ("jail.local", "[web]\nenabled = true\naction = loop\n"),
        (
            "action.d/loop.conf",
            "[Definition]\nactionban = <a>\na = x<b>\nb = <a>\n",
        ),
    ]);
    let t = ConfigTree::new(EMBEDDED, t0.overlay().map(Path::to_path_buf));
    let e = read_jails(&t).unwrap_err().to_string();
    assert!(
        e.contains("loop.conf") && e.contains("refers to itself"),
        "{e}"
    );
}

/// Every string a resolved jail holds (options, filter regexes and options, action options).
fn jail_values(j: &JailSpec) -> Vec<&String> {
    let mut out: Vec<&String> = j.options.values().collect();
    if let Some(f) = &j.filter {
        out.extend(f.failregex.iter().chain(&f.ignoreregex));
        out.extend(f.options.values());
    }
    for a in &j.actions {
        out.extend(a.options.values());
    }
    out
}

#[test]
fn real_trees_expand_well_under_the_bounds() {
    use crate::budget::{Budget, MAX_READ_WORK, MAX_VALUE_BYTES};
    // Debian's tree and ours, every jail forced on: a tenth of each bound is plenty of room.
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let mut trees = vec![ConfigTree::new(&[], Some(ours))];
    trees.extend(real_tree());
    for t in &trees {
        let b = Budget::new();
        let all = crate::jail::read_jails_within(t, true, &b).unwrap();
        assert!(all.jails.len() >= 10);
        assert!(
            b.spent() < MAX_READ_WORK / 10,
            "{:?}: {}",
            t.overlay(),
            b.spent()
        );
        let longest = all
            .jails
            .iter()
            .flat_map(jail_values)
            .map(String::len)
            .max();
        assert!(longest.unwrap() < MAX_VALUE_BYTES / 10, "{longest:?}");
    }
}
