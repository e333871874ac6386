//! Opening the log's own files: never through a symbolic link, and never
//! anything but a regular file (or, for partition and group folders, a real
//! directory). A link or a device where the log keeps a file is damage,
//! named as such, and never written through: a link planted as a segment
//! would otherwise let an append truncate and overwrite any file on the
//! machine.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// How a log file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Read only; the file must exist.
    Read,
    /// Append only; the file must exist.
    Append,
    /// Append only, created when missing.
    AppendCreate,
    /// Read and write, created when missing, never truncated (lock files).
    ReadWriteCreate,
    /// Read and write, created when missing (fixed-slot files).
    ReadWrite,
    /// Write only, newly created: fails when the name exists (temporaries).
    CreateNew,
    /// Write only, created or truncated (rebuilt indexes).
    Truncate,
}

/// Opens `path` as `mode` without following a symbolic link, then checks
/// that what was opened is a regular file. A link or any other kind of file
/// gives an error whose message says the log is damaged. Not-found stays
/// [`io::ErrorKind::NotFound`], so callers can treat a missing file as they
/// need.
pub fn open(path: &Path, mode: Mode) -> io::Result<File> {
    let mut options = OpenOptions::new();
    match mode {
        Mode::Read => options.read(true),
        Mode::Append => options.append(true),
        Mode::AppendCreate => options.append(true).create(true),
        Mode::ReadWriteCreate | Mode::ReadWrite => {
            options.read(true).write(true).create(true).truncate(false)
        }
        Mode::CreateNew => options.write(true).create_new(true),
        Mode::Truncate => options.write(true).create(true).truncate(true),
    };
    // O_NONBLOCK keeps the open of a FIFO planted in the log from hanging;
    // it is cleared again once the file is known to be regular.
    options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(damaged(path, "a symbolic link"))
        }
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            return Err(damaged(path, "a socket or a FIFO"))
        }
        Err(e) => return Err(e),
    };
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(damaged(path, describe(kind)));
    }
    clear_nonblock(&file)?;
    Ok(file)
}

/// Checks that `path` is a real directory (not a link to one); NotFound
/// when it is missing.
pub fn check_dir(path: &Path) -> io::Result<()> {
    let kind = fs::symlink_metadata(path)?.file_type();
    if kind.is_dir() {
        Ok(())
    } else {
        Err(damaged_dir(path, describe(kind)))
    }
}

/// Checks that `path`, when it exists, is a regular file and not a link;
/// returns its length (None when missing).
pub fn regular_len(path: &Path) -> io::Result<Option<u64>> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_file() => Ok(Some(meta.len())),
        Ok(meta) => Err(damaged(path, describe(meta.file_type()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens the regular file at `root/PARTS…` for reading without following
/// a symbolic link anywhere below `root` (`root` itself may be one: the
/// user named it). Each directory is opened relative to the one before
/// with O_NOFOLLOW, so a link planted or swapped in on the way cannot
/// redirect the open outside `root`. A part that is not a plain name, a
/// link, or anything but a directory on the way or a regular file at the
/// end gives `refuse(path, what)`, so the caller phrases the damage in its
/// own terms; a missing part stays [`io::ErrorKind::NotFound`].
pub fn open_beneath(
    root: &Path,
    parts: &[&str],
    refuse: impl Fn(&Path, &str) -> io::Error,
) -> io::Result<File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut dir = File::open(root)?;
    let mut path = root.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        path.push(part);
        let last = i + 1 == parts.len();
        let name = match std::ffi::CString::new(*part) {
            Ok(name) if !matches!(*part, "" | "." | "..") && !part.contains('/') => name,
            _ => return Err(refuse(&path, "not a plain file name")),
        };
        let kind = if last {
            libc::O_NONBLOCK
        } else {
            libc::O_DIRECTORY
        };
        let flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW | kind;
        // SAFETY: an open directory descriptor and a NUL-terminated name.
        let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::ELOOP) => refuse(&path, "a symbolic link"),
                Some(libc::ENOTDIR) => match fs::symlink_metadata(&path) {
                    Ok(meta) if meta.is_file() => refuse(&path, "a file where a directory belongs"),
                    Ok(meta) => refuse(&path, describe(meta.file_type())),
                    Err(_) => e,
                },
                _ => e,
            });
        }
        // SAFETY: `fd` is a descriptor just opened, owned by nothing else.
        let file = unsafe { File::from_raw_fd(fd) };
        if last {
            let kind = file.metadata()?.file_type();
            if !kind.is_file() {
                return Err(refuse(&path, describe(kind)));
            }
            clear_nonblock(&file)?;
            return Ok(file);
        }
        dir = file;
    }
    Err(refuse(&path, "not a file name"))
}

fn clear_nonblock(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own, with integer arguments.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn describe(kind: fs::FileType) -> &'static str {
    if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

fn damaged(path: &Path, what: &str) -> io::Error {
    io::Error::other(format!(
        "damaged log: {} is {what}, not a regular file the log created; the log never follows links or opens other files. Remove it (or restore the log's own file) and run `log-tail --verify`",
        path.display()
    ))
}

fn damaged_dir(path: &Path, what: &str) -> io::Error {
    io::Error::other(format!(
        "damaged log: {} is {what}, not a directory the log created; the log never follows links. Remove it (or restore the log's own directory) and run `log-tail --verify`",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_links_fifos_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"precious").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for mode in [
            Mode::Read,
            Mode::Append,
            Mode::Truncate,
            Mode::ReadWriteCreate,
        ] {
            let err = open(&link, mode).unwrap_err().to_string();
            assert!(err.contains("is a symbolic link"), "{err}");
        }
        assert_eq!(fs::read(&target).unwrap(), b"precious");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = open(&fifo, Mode::Read).unwrap_err().to_string();
        assert!(err.contains("a FIFO"), "{err}");
        let err = open(dir.path(), Mode::Read).unwrap_err().to_string();
        assert!(err.contains("a directory"), "{err}");
        assert!(check_dir(dir.path()).is_ok());
        let dlink = dir.path().join("dlink");
        std::os::unix::fs::symlink(dir.path(), &dlink).unwrap();
        assert!(check_dir(&dlink).is_err());
        assert_eq!(
            open(&dir.path().join("none"), Mode::Read)
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotFound
        );
        assert!(open(&target, Mode::Read).is_ok());
    }
}
