//! Blob storage for large immutable bodies. A blob is written under a temporary name
//! and renamed into place on commit, so a crash never leaves a half-written blob
//! visible; with [`Durability::Full`] the file and its directory are fsync'd first.

use crate::Durability;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use virga_core::{AwsError, AwsResult};

fn io_err(e: std::io::Error) -> AwsError {
    AwsError::internal(format!("blob storage error: {e}"))
}

pub trait BlobWriter: Send {
    fn write(&mut self, data: &[u8]) -> AwsResult<()>;
    /// Makes the blob durable and visible; returns its id.
    fn commit(self: Box<Self>) -> AwsResult<String>;
    /// Like `commit`, but a blob that lives in the key-value store is left for the
    /// caller to write in the transaction that records it (one commit instead of two,
    /// and no orphan if that transaction fails).
    fn finish(self: Box<Self>) -> AwsResult<FinishedBlob> {
        Ok(FinishedBlob {
            id: self.commit()?,
            pending: None,
        })
    }
}

/// A written blob; see [`BlobWriter::finish`].
pub struct FinishedBlob {
    pub id: String,
    /// (table, data) still to be written in the recording transaction.
    pending: Option<(&'static str, Vec<u8>)>,
}

impl FinishedBlob {
    /// Writes what the blob still needs inside the transaction that records it.
    pub fn write_in(&self, t: &mut dyn crate::KvTxn) -> AwsResult<()> {
        match &self.pending {
            Some((table, data)) => t.put(table, self.id.as_bytes(), data),
            None => Ok(()),
        }
    }
}

pub trait BlobStore: Send + Sync {
    fn writer(&self) -> AwsResult<Box<dyn BlobWriter>>;
    /// Reads `len` bytes of blob `id` from `offset`.
    fn open(&self, id: &str, offset: u64, len: u64) -> AwsResult<Box<dyn Read + Send>>;
    fn delete(&self, id: &str) -> AwsResult<()>;
    fn clear(&self) -> AwsResult<()>;
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

pub struct FileBlobStore {
    root: PathBuf,
    durability: Durability,
}

impl FileBlobStore {
    pub fn open(root: &Path, durability: Durability) -> AwsResult<FileBlobStore> {
        fs::create_dir_all(root.join("tmp")).map_err(io_err)?;
        // Temporary files of writes a crash interrupted are garbage.
        if let Ok(entries) = fs::read_dir(root.join("tmp")) {
            for e in entries.flatten() {
                let _ = fs::remove_file(e.path());
            }
        }
        Ok(FileBlobStore {
            root: root.to_path_buf(),
            durability,
        })
    }

    fn path_of(&self, id: &str) -> AwsResult<PathBuf> {
        if id.len() < 3 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(AwsError::internal(format!("invalid blob id {id:?}")));
        }
        Ok(self.root.join(&id[..2]).join(id))
    }
}

struct FileWriter {
    file: Option<File>,
    tmp: PathBuf,
    dest_dir: PathBuf,
    id: String,
    durability: Durability,
}

impl BlobWriter for FileWriter {
    fn write(&mut self, data: &[u8]) -> AwsResult<()> {
        match self.file.as_mut() {
            Some(f) => f.write_all(data).map_err(io_err),
            None => Err(AwsError::internal("blob writer already closed")),
        }
    }

    fn commit(mut self: Box<Self>) -> AwsResult<String> {
        let file = self
            .file
            .take()
            .ok_or_else(|| AwsError::internal("blob writer already closed"))?;
        if self.durability == Durability::Full {
            file.sync_all().map_err(io_err)?;
        }
        drop(file);
        fs::create_dir_all(&self.dest_dir).map_err(io_err)?;
        fs::rename(&self.tmp, self.dest_dir.join(&self.id)).map_err(io_err)?;
        if self.durability == Durability::Full {
            File::open(&self.dest_dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err)?;
        }
        Ok(std::mem::take(&mut self.id))
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl BlobStore for FileBlobStore {
    fn writer(&self) -> AwsResult<Box<dyn BlobWriter>> {
        let id = new_id();
        let tmp = self.root.join("tmp").join(&id);
        let file = File::create(&tmp).map_err(io_err)?;
        Ok(Box::new(FileWriter {
            file: Some(file),
            tmp,
            dest_dir: self.root.join(&id[..2]),
            id,
            durability: self.durability,
        }))
    }

    fn open(&self, id: &str, offset: u64, len: u64) -> AwsResult<Box<dyn Read + Send>> {
        let mut f = File::open(self.path_of(id)?).map_err(io_err)?;
        f.seek(SeekFrom::Start(offset)).map_err(io_err)?;
        Ok(Box::new(f.take(len)))
    }

    fn delete(&self, id: &str) -> AwsResult<()> {
        match fs::remove_file(self.path_of(id)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(e)),
        }
    }

    fn clear(&self) -> AwsResult<()> {
        if let Ok(entries) = fs::read_dir(&self.root) {
            for e in entries.flatten() {
                let name = e.file_name();
                if name.len() == 2 {
                    fs::remove_dir_all(e.path()).map_err(io_err)?;
                }
            }
        }
        Ok(())
    }
}

/// Blobs kept in memory, for `--ephemeral`.
#[derive(Default)]
pub struct MemBlobStore {
    blobs: Arc<Mutex<HashMap<String, Arc<Vec<u8>>>>>,
}

struct MemWriter {
    buf: Vec<u8>,
    blobs: Arc<Mutex<HashMap<String, Arc<Vec<u8>>>>>,
}

impl BlobWriter for MemWriter {
    fn write(&mut self, data: &[u8]) -> AwsResult<()> {
        self.buf.extend_from_slice(data);
        Ok(())
    }

    fn commit(self: Box<Self>) -> AwsResult<String> {
        let id = new_id();
        self.blobs
            .lock()
            .map_err(|_| AwsError::internal("blob map poisoned"))?
            .insert(id.clone(), Arc::new(self.buf));
        Ok(id)
    }
}

struct ArcSlice(Arc<Vec<u8>>);

impl AsRef<[u8]> for ArcSlice {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl BlobStore for MemBlobStore {
    fn writer(&self) -> AwsResult<Box<dyn BlobWriter>> {
        Ok(Box::new(MemWriter {
            buf: Vec::new(),
            blobs: self.blobs.clone(),
        }))
    }

    fn open(&self, id: &str, offset: u64, len: u64) -> AwsResult<Box<dyn Read + Send>> {
        let data = self
            .blobs
            .lock()
            .map_err(|_| AwsError::internal("blob map poisoned"))?
            .get(id)
            .cloned()
            .ok_or_else(|| AwsError::internal(format!("missing blob {id}")))?;
        let mut c = Cursor::new(ArcSlice(data));
        c.set_position(offset);
        Ok(Box::new(c.take(len)))
    }

    fn delete(&self, id: &str) -> AwsResult<()> {
        self.blobs
            .lock()
            .map_err(|_| AwsError::internal("blob map poisoned"))?
            .remove(id);
        Ok(())
    }

    fn clear(&self) -> AwsResult<()> {
        self.blobs
            .lock()
            .map_err(|_| AwsError::internal("blob map poisoned"))?
            .clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn exercise(s: &dyn BlobStore) {
        let mut w = s.writer().unwrap();
        w.write(b"hello ").unwrap();
        w.write(b"world").unwrap();
        let id = w.commit().unwrap();
        let mut out = String::new();
        s.open(&id, 6, 5).unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out, "world");
        // An abandoned writer leaves nothing behind.
        let mut w2 = s.writer().unwrap();
        w2.write(b"partial").unwrap();
        drop(w2);
        s.delete(&id).unwrap();
        assert!(s.open(&id, 0, 1).is_err());
    }

    #[test]
    fn file_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileBlobStore::open(dir.path(), Durability::Full).unwrap();
        super::tests::exercise(&s);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn memory_blobs() {
        exercise(&MemBlobStore::default());
    }
}

/// Keeps blobs up to `threshold` bytes inside the key-value store and larger ones in
/// `inner`. Small objects are the common case, and creating a file per object costs far
/// more (inode allocation, rename) than a row in the database.
pub struct InlineBlobStore {
    kv: Arc<dyn crate::KvStore>,
    inner: Arc<dyn BlobStore>,
    threshold: usize,
}

/// The table inline blobs live in.
pub const INLINE_TABLE: &str = "blob.inline";

impl InlineBlobStore {
    pub fn new(kv: Arc<dyn crate::KvStore>, inner: Arc<dyn BlobStore>, threshold: usize) -> Self {
        InlineBlobStore {
            kv,
            inner,
            threshold,
        }
    }
}

/// Ids that increase with time, so inline blobs are appended to the database's B-tree
/// (random ids leave its pages half empty: measured 3x the data size).
fn sequential_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut cur = LAST.load(Ordering::Relaxed);
    loop {
        let next = cur.max(now) + 1;
        match LAST.compare_exchange(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return format!("{next:016x}{:08x}", rand_u32()),
            Err(actual) => cur = actual,
        }
    }
}

/// A little randomness so ids from two processes sharing a store do not collide.
fn rand_u32() -> u32 {
    uuid::Uuid::new_v4().as_u128() as u32
}

/// Inline blob ids start with `i`, which a file blob id (hex) never does.
fn is_inline(id: &str) -> bool {
    id.starts_with('i')
}

struct InlineWriter {
    kv: Arc<dyn crate::KvStore>,
    inner: Arc<dyn BlobStore>,
    threshold: usize,
    buf: Vec<u8>,
    spilled: Option<Box<dyn BlobWriter>>,
}

impl BlobWriter for InlineWriter {
    fn write(&mut self, data: &[u8]) -> AwsResult<()> {
        if let Some(w) = self.spilled.as_mut() {
            return w.write(data);
        }
        if self.buf.len() + data.len() <= self.threshold {
            self.buf.extend_from_slice(data);
            return Ok(());
        }
        let mut w = self.inner.writer()?;
        w.write(&self.buf)?;
        w.write(data)?;
        self.buf = Vec::new();
        self.spilled = Some(w);
        Ok(())
    }

    fn finish(self: Box<Self>) -> AwsResult<FinishedBlob> {
        if let Some(w) = self.spilled {
            return w.finish();
        }
        Ok(FinishedBlob {
            id: format!("i{}", sequential_id()),
            pending: Some((INLINE_TABLE, self.buf)),
        })
    }

    fn commit(self: Box<Self>) -> AwsResult<String> {
        if let Some(w) = self.spilled {
            return w.commit();
        }
        let id = format!("i{}", sequential_id());
        let buf = self.buf;
        self.kv
            .transact(|t| t.put(INLINE_TABLE, id.as_bytes(), &buf))?;
        Ok(id)
    }
}

impl BlobStore for InlineBlobStore {
    fn writer(&self) -> AwsResult<Box<dyn BlobWriter>> {
        Ok(Box::new(InlineWriter {
            kv: self.kv.clone(),
            inner: self.inner.clone(),
            threshold: self.threshold,
            buf: Vec::new(),
            spilled: None,
        }))
    }

    fn open(&self, id: &str, offset: u64, len: u64) -> AwsResult<Box<dyn Read + Send>> {
        if !is_inline(id) {
            return self.inner.open(id, offset, len);
        }
        let data = self
            .kv
            .read(|r| r.get(INLINE_TABLE, id.as_bytes()))?
            .ok_or_else(|| AwsError::internal(format!("missing blob {id}")))?;
        let mut c = Cursor::new(data);
        c.set_position(offset);
        Ok(Box::new(c.take(len)))
    }

    fn delete(&self, id: &str) -> AwsResult<()> {
        if is_inline(id) {
            self.kv.transact(|t| t.delete(INLINE_TABLE, id.as_bytes()))
        } else {
            self.inner.delete(id)
        }
    }

    fn clear(&self) -> AwsResult<()> {
        self.kv.clear(INLINE_TABLE)?;
        self.inner.clear()
    }
}

#[cfg(test)]
mod inline_tests {
    use super::*;

    #[test]
    fn small_inline_large_spilled() {
        let dir = tempfile::tempdir().unwrap();
        let kv: Arc<dyn crate::KvStore> = Arc::new(crate::SqliteStore::in_memory().unwrap());
        let files: Arc<dyn BlobStore> =
            Arc::new(FileBlobStore::open(dir.path(), Durability::Process).unwrap());
        let s = InlineBlobStore::new(kv, files, 8);
        let mut w = s.writer().unwrap();
        w.write(b"tiny").unwrap();
        let small = w.commit().unwrap();
        assert!(is_inline(&small));
        let mut w = s.writer().unwrap();
        w.write(b"0123").unwrap();
        w.write(b"456789").unwrap();
        let big = w.commit().unwrap();
        assert!(!is_inline(&big));
        let mut out = String::new();
        s.open(&big, 2, 5)
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "23456");
        super::tests::exercise(&s);
    }
}
