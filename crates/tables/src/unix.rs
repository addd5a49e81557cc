//! unix: tables: `unix:passwd.byname` (getpwnam) and `unix:group.byname`
//! (getgrnam), answering in the passwd(5) and group(5) line formats.

use nix::unistd::{Group, User};

use crate::{Error, SyntaxError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnixTable {
    Passwd,
    Group,
}

impl UnixTable {
    pub(crate) fn open(spec: &str, name: &str) -> Result<UnixTable, Error> {
        match name {
            "passwd.byname" => Ok(UnixTable::Passwd),
            "group.byname" => Ok(UnixTable::Group),
            _ => Err(Error::Inline {
                spec: spec.to_string(),
                kind: SyntaxError::UnknownUnixMap,
            }),
        }
    }

    pub(crate) fn lookup(&self, key: &str) -> Result<Option<String>, Error> {
        if key.is_empty() || key.contains('\0') {
            return Ok(None);
        }
        let io = |e: nix::Error| Error::io(std::path::Path::new(self.name()), e.into());
        match self {
            UnixTable::Passwd => Ok(User::from_name(key).map_err(io)?.map(|u| passwd_line(&u))),
            UnixTable::Group => Ok(Group::from_name(key).map_err(io)?.map(|g| group_line(&g))),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            UnixTable::Passwd => "unix:passwd.byname",
            UnixTable::Group => "unix:group.byname",
        }
    }
}

fn passwd_line(u: &User) -> String {
    format!(
        "{}:{}:{}:{}:{}:{}:{}",
        u.name,
        u.passwd.to_string_lossy(),
        u.uid,
        u.gid,
        u.gecos.to_string_lossy(),
        u.dir.display(),
        u.shell.display()
    )
}

fn group_line(g: &Group) -> String {
    format!(
        "{}:{}:{}:{}",
        g.name,
        g.passwd.to_string_lossy(),
        g.gid,
        g.mem.join(",")
    )
}

#[cfg(test)]
mod tests {
    use crate::{Flags, open};

    #[test]
    fn root_is_in_passwd_and_group() {
        let t = open("unix:passwd.byname", Flags::default()).unwrap();
        let v = t.lookup("root").unwrap().unwrap();
        assert!(v.starts_with("root:"), "{v}");
        assert_eq!(v.split(':').nth(2), Some("0"));
        assert_eq!(t.lookup("no-such-user-xyzzy").unwrap(), None);
        assert_eq!(t.lookup("a\0b").unwrap(), None);
        let t = open("unix:group.byname", Flags::default()).unwrap();
        assert!(t.lookup("root").unwrap().unwrap().starts_with("root:"));
        assert!(open("unix:hosts", Flags::default()).is_err());
    }
}
