//! Copying the template datadir the fastest way the filesystem allows, in process (no
//! `cp` to spawn): a reflink (`FICLONE`: btrfs, xfs, bcachefs share the blocks until one
//! side writes), else a kernel-side copy of the file's data only (`SEEK_DATA` /
//! `SEEK_HOLE` + `copy_file_range`), so the holes [`sparsify`] punched into the template
//! cost nothing. Most of an initialized datadir is zeros (preallocated InnoDB pages, the
//! redo log), so a sparse template copies about a third of its bytes.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// `_IOW(0x94, 9, int)`: clone all of the source file's extents into the destination.
const FICLONE: libc::c_ulong = 0x4004_9409;
/// Zero runs shorter than this stay data: a hole must cover whole filesystem blocks.
const HOLE_GRAIN: usize = 16 * 1024;

/// How a tree was copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CloneStats {
    pub files: usize,
    /// Files that shared their blocks with the source (reflinks).
    pub reflinked: usize,
    /// Bytes of data copied (holes and reflinks excluded).
    pub copied: u64,
}

/// Copy the directory tree `src` to `dst` (which must not exist), modes kept.
pub fn clone_tree(src: &Path, dst: &Path) -> io::Result<CloneStats> {
    let mut stats = CloneStats::default();
    clone_dir(src, dst, &mut stats)?;
    Ok(stats)
}

fn clone_dir(src: &Path, dst: &Path, stats: &mut CloneStats) -> io::Result<()> {
    fs::create_dir(dst)?;
    fs::set_permissions(dst, fs::metadata(src)?.permissions())?;
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        if kind.is_dir() {
            clone_dir(&from, &to, stats)?;
        } else if kind.is_file() {
            clone_file(&from, &to, stats)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
        }
    }
    Ok(())
}

fn clone_file(src: &Path, dst: &Path, stats: &mut CloneStats) -> io::Result<()> {
    let from = File::open(src)?;
    let meta = from.metadata()?;
    let to = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(meta.permissions().mode())
        .open(dst)?;
    stats.files += 1;
    // SAFETY: FICLONE takes the source descriptor as its argument; both are open files.
    if unsafe { libc::ioctl(to.as_raw_fd(), FICLONE as _, from.as_raw_fd()) } == 0 {
        stats.reflinked += 1;
        return Ok(());
    }
    // No reflinks here (ext4, tmpfs, another filesystem): copy the data extents only.
    let len = meta.len();
    let mut offset = 0u64;
    while offset < len {
        let Some(data) = seek(&from, offset, libc::SEEK_DATA)? else {
            break; // only a hole is left
        };
        let end = seek(&from, data, libc::SEEK_HOLE)?.unwrap_or(len).min(len);
        copy_range(&from, &to, data, end - data)?;
        stats.copied += end - data;
        offset = end;
    }
    // A trailing hole: the size says it.
    to.set_len(len)?;
    Ok(())
}

/// `lseek(fd, offset, whence)`; `None` past the last data (ENXIO).
fn seek(file: &File, offset: u64, whence: libc::c_int) -> io::Result<Option<u64>> {
    // SAFETY: lseek on an open descriptor has no memory-safety preconditions.
    let at = unsafe { libc::lseek(file.as_raw_fd(), offset as libc::off_t, whence) };
    if at >= 0 {
        return Ok(Some(at as u64));
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ENXIO) {
        Ok(None)
    } else {
        Err(e)
    }
}

/// `len` bytes at `offset` from `from` to the same offset in `to`, in the kernel.
fn copy_range(from: &File, to: &File, offset: u64, len: u64) -> io::Result<()> {
    let (mut src_off, mut dst_off) = (offset as libc::loff_t, offset as libc::loff_t);
    let mut left = len as usize;
    while left > 0 {
        // SAFETY: both descriptors are open; the offsets are ours and updated by the call.
        let n = unsafe {
            libc::copy_file_range(
                from.as_raw_fd(),
                &mut src_off,
                to.as_raw_fd(),
                &mut dst_off,
                left,
                0,
            )
        };
        match n {
            n if n > 0 => left -= n as usize,
            0 => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            _ => {
                let e = io::Error::last_os_error();
                // Across filesystems on old kernels, or unsupported: copy through memory.
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EXDEV | libc::ENOSYS | libc::EINVAL)
                ) {
                    return copy_through_memory(from, to, src_off as u64, left as u64);
                }
                return Err(e);
            }
        }
    }
    Ok(())
}

fn copy_through_memory(from: &File, to: &File, offset: u64, len: u64) -> io::Result<()> {
    let (mut from, mut to) = (from, to);
    from.seek(SeekFrom::Start(offset))?;
    to.seek(SeekFrom::Start(offset))?;
    io::copy(&mut from.take(len), &mut to)?;
    Ok(())
}

/// Rewrite every file under `dir` with its zero runs as holes (once, on the template):
/// every later copy then skips them. Data is unchanged byte for byte.
pub fn sparsify(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            sparsify(&path)?;
        } else if kind.is_file() {
            sparsify_file(&path)?;
        }
    }
    Ok(())
}

fn sparsify_file(path: &Path) -> io::Result<()> {
    let mut from = File::open(path)?;
    let meta = from.metadata()?;
    let tmp = path.with_extension("sparse-tmp");
    let mut to = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(meta.permissions().mode())
        .open(&tmp)?;
    let mut buf = vec![0u8; HOLE_GRAIN];
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut from, &mut buf)?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|&b| b != 0) {
            to.seek(SeekFrom::Start(offset))?;
            to.write_all(&buf[..n])?;
        }
        offset += n as u64;
    }
    to.set_len(meta.len())?;
    to.sync_all()?;
    fs::rename(&tmp, path)
}

fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparse_tree_copies_byte_for_byte_with_its_holes() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        // Data, a long zero run, data, then a trailing zero run.
        let mut content = vec![7u8; 5000];
        content.extend(vec![0u8; 256 * 1024]);
        content.extend(vec![9u8; 3]);
        content.extend(vec![0u8; 64 * 1024]);
        fs::write(src.join("sub/f"), &content).unwrap();
        fs::write(src.join("small"), b"x").unwrap();
        fs::write(src.join("empty"), b"").unwrap();
        fs::set_permissions(src.join("small"), fs::Permissions::from_mode(0o640)).unwrap();
        sparsify(&src).unwrap();
        assert_eq!(fs::read(src.join("sub/f")).unwrap(), content);

        let dst = dir.path().join("dst");
        let stats = clone_tree(&src, &dst).unwrap();
        assert_eq!(stats.files, 3);
        assert_eq!(fs::read(dst.join("sub/f")).unwrap(), content);
        assert_eq!(fs::read(dst.join("small")).unwrap(), b"x");
        assert_eq!(fs::read(dst.join("empty")).unwrap(), b"");
        let mode = fs::metadata(dst.join("small"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
        use std::os::unix::fs::MetadataExt;
        let allocated = fs::metadata(src.join("sub/f")).unwrap().blocks() * 512;
        if stats.reflinked == 0 && allocated < content.len() as u64 {
            // The filesystem kept the holes (ext4, xfs, tmpfs): they were not copied.
            assert!(stats.copied < content.len() as u64, "{stats:?}");
        }
    }
}
