//! User and group names of this machine, for the syslog socket's `group=` and `senders=`.
//! Owns the lookup of a name in `/etc/passwd` and `/etc/group` (and of a number's name, for
//! messages). Receives those files' text; emits ids.
//!
//! Read from the files, not through NSS: the workspace has no `unsafe` (so no
//! `getpwnam`), and the accounts a web server runs as (`www-data`, `nginx`, `apache`) are
//! local system accounts. An account that only NSS knows (LDAP…) is given by number.

/// The accounts of `/etc/passwd` and `/etc/group`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accounts {
    users: Vec<(String, u32)>,
    groups: Vec<(String, u32)>,
}

impl Accounts {
    /// This machine's accounts (a file that cannot be read counts as empty: names then
    /// fail to resolve, with an error naming them, and numbers still work).
    pub fn system() -> Accounts {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        Accounts::from_text(&read("/etc/passwd"), &read("/etc/group"))
    }

    /// Accounts from the text of a passwd and a group file (`name:x:id:…` lines; comments,
    /// NIS `+`/`-` lines and malformed lines are ignored).
    pub fn from_text(passwd: &str, group: &str) -> Accounts {
        Accounts {
            users: entries(passwd),
            groups: entries(group),
        }
    }

    /// The uid of user `name`.
    pub fn uid(&self, name: &str) -> Option<u32> {
        find(&self.users, name)
    }

    /// The gid of group `name`.
    pub fn gid(&self, name: &str) -> Option<u32> {
        find(&self.groups, name)
    }

    /// The name of group `gid`, if it has one.
    pub fn group_name(&self, gid: u32) -> Option<&str> {
        self.groups
            .iter()
            .find(|(_, id)| *id == gid)
            .map(|(n, _)| n.as_str())
    }
}

fn entries(text: &str) -> Vec<(String, u32)> {
    text.lines()
        .filter(|l| !l.starts_with(['#', '+', '-']))
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let _password = f.next()?;
            let id = f.next()?.parse().ok()?;
            (!name.is_empty()).then(|| (name.to_string(), id))
        })
        .collect()
}

/// The first entry named `name` (as getpwnam: the first one wins).
fn find(list: &[(String, u32)], name: &str) -> Option<u32> {
    list.iter().find(|(n, _)| n == name).map(|&(_, id)| id)
}

/// A user or group given as a name or a number: the number, or the name looked up.
pub(super) fn resolve(word: &str, lookup: impl Fn(&str) -> Option<u32>) -> Option<u32> {
    match word.parse::<u32>() {
        Ok(n) => Some(n),
        Err(_) => lookup(word),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        let a = Accounts::from_text(
            "root:x:0:0:root:/root:/bin/bash\n# comment\n+nis\nwww-data:x:33:33::/var/www:/x\nbad\nwww-data:x:99:99::/:/\n",
            "root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n",
        );
        assert_eq!(a.uid("www-data"), Some(33), "the first entry wins");
        assert_eq!(a.uid("nobody"), None);
        assert_eq!(a.gid("nogroup"), Some(65534));
        assert_eq!(a.group_name(33), Some("www-data"));
        assert_eq!(resolve("1000", |n| a.uid(n)), Some(1000));
        assert_eq!(resolve("root", |n| a.uid(n)), Some(0));
        assert_eq!(resolve("ghost", |n| a.uid(n)), None);
    }
}
