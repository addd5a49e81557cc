//! Opening maillog_file: maillog_file_prefixes, maillog_file_permissions,
//! and never creating it from a set-gid program (Postfix's
//! maillog_client.c and logwriter.c).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::Error;

/// maillog_file_permissions' default: only the owner reads the log.
pub const DEFAULT_FILE_PERMISSIONS: u32 = 0o600;

/// The mode for maillog_file_permissions' value: `0600` or `0644`, the
/// two Postfix accepts; `None` for anything else (Postfix warns "ignoring
/// bad permissions" and keeps 0600).
pub fn parse_file_permissions(value: &str) -> Option<u32> {
    match value.trim() {
        "0600" => Some(0o600),
        "0644" => Some(0o644),
        _ => None,
    }
}

/// How [`crate::Setup`] opens maillog_file.
#[derive(Debug, Clone)]
pub(crate) struct FilePolicy {
    /// The mode of a file we create.
    pub(crate) mode: u32,
    /// maillog_file_prefixes, when checked.
    pub(crate) prefixes: Option<Vec<String>>,
    /// Whether a missing file may be created.
    pub(crate) create: bool,
}

impl Default for FilePolicy {
    fn default() -> FilePolicy {
        FilePolicy {
            mode: DEFAULT_FILE_PERMISSIONS,
            prefixes: None,
            create: true,
        }
    }
}

impl FilePolicy {
    /// The open file, or `None` when it does not exist and may not be
    /// created (the caller logs to syslog then).
    pub(crate) fn open(&self, path: &Path) -> Result<Option<File>, Error> {
        if let Some(prefixes) = &self.prefixes {
            // A plain string prefix, as Postfix's strncmp.
            let text = path.to_string_lossy();
            if !prefixes.iter().any(|p| text.starts_with(p.as_str())) {
                return Err(Error::BadPrefix {
                    path: path.to_path_buf(),
                });
            }
        }
        match open_append(path, self.mode, self.create) {
            Ok(f) => Ok(Some(f)),
            Err(e) if !self.create && e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::OpenMaillog {
                path: PathBuf::from(path),
                source,
            }),
        }
    }
}

/// Opens maillog_file for appending. `/dev/stdout` and `/dev/stderr`
/// (the usual choice in containers, with `postfix start-fg`) are the
/// process's own descriptors. Other paths must be regular files with one
/// link and not symbolic links, since the opener is often root and the
/// directory may not be (the checks of Postfix's safe_open).
fn open_append(path: &Path, mode: u32, create: bool) -> io::Result<File> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    if path == Path::new("/dev/stdout") {
        return io::stdout().as_fd().try_clone_to_owned().map(File::from);
    }
    if path == Path::new("/dev/stderr") {
        return io::stderr().as_fd().try_clone_to_owned().map(File::from);
    }
    // O_APPEND makes every write land at the end of the file, so records
    // from many processes never overwrite each other. std adds O_CLOEXEC.
    let file = std::fs::OpenOptions::new()
        .create(create)
        .append(true)
        .mode(mode)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() || meta.nlink() != 1 {
        return Err(io::Error::other("not a regular file with exactly one link"));
    }
    Ok(file)
}
