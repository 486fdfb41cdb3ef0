//! Virga's durable storage, shared by every service.
//!
//! * [`KvStore`]: ordered key-value tables with atomic transactions. Services keep their
//!   state in named tables whose keys are built with [`key::KeyBuf`] so that byte order
//!   is the order they need (S3 keys for listing, DynamoDB (pk, sk), SQS visible-at).
//!   [`SqliteStore`] implements it on SQLite in WAL mode; a PostgreSQL implementation
//!   can stand behind the same trait later.
//! * [`BlobStore`]: large immutable byte streams (object bodies), written to a temporary
//!   name and renamed into place, read by range.

pub mod blob;
pub mod key;
pub mod sqlite;

pub use blob::{BlobStore, BlobWriter, FileBlobStore, FinishedBlob, InlineBlobStore, MemBlobStore};
pub use key::KeyBuf;
pub use sqlite::SqliteStore;

use std::ops::Bound;
use virga_core::AwsResult;

/// How hard a write is pushed to disk before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Survives a crash of the Virga process (kill -9): SQLite WAL, synchronous=NORMAL.
    Process,
    /// Also survives power loss: fsync on every commit and blob.
    Full,
}

/// A (key, value) pair read from a table.
pub type Row = (Vec<u8>, Vec<u8>);

/// Reads, available both inside and outside transactions.
pub trait KvRead {
    fn get(&self, table: &str, key: &[u8]) -> AwsResult<Option<Vec<u8>>>;
    /// Rows with `start <= key < end` (per the bounds), in key order (or reverse), at most `limit`.
    fn scan(
        &self,
        table: &str,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
        reverse: bool,
    ) -> AwsResult<Vec<Row>>;
    /// How many rows lie between the bounds (an index count, without reading values).
    fn count(&self, table: &str, start: Bound<&[u8]>, end: Bound<&[u8]>) -> AwsResult<u64>;
}

/// A transaction: reads see its own writes; all of it commits or none.
pub trait KvTxn: KvRead {
    fn put(&mut self, table: &str, key: &[u8], value: &[u8]) -> AwsResult<()>;
    fn delete(&mut self, table: &str, key: &[u8]) -> AwsResult<()>;
    /// Deletes every row with `start <= key < end`; returns how many.
    fn delete_range(&mut self, table: &str, start: &[u8], end: &[u8]) -> AwsResult<u64>;
}

pub trait KvStore: Send + Sync {
    /// Runs `f` in one transaction: committed (durably, per [`Durability`]) when `f`
    /// returns Ok, rolled back when it returns Err. Use [`dyn KvStore::transact`].
    fn transact_dyn(&self, f: &mut dyn FnMut(&mut dyn KvTxn) -> AwsResult<()>) -> AwsResult<()>;
    /// Runs `f` against a consistent snapshot. Use [`dyn KvStore::read`].
    fn read_dyn(&self, f: &mut dyn FnMut(&dyn KvRead) -> AwsResult<()>) -> AwsResult<()>;
    /// Removes every table whose name starts with `table_prefix` (`POST /_virga/reset`).
    fn clear(&self, table_prefix: &str) -> AwsResult<()>;
}

impl dyn KvStore + '_ {
    pub fn transact<T>(&self, f: impl FnOnce(&mut dyn KvTxn) -> AwsResult<T>) -> AwsResult<T> {
        let mut f = Some(f);
        let mut out = None;
        self.transact_dyn(&mut |t| {
            if let Some(f) = f.take() {
                out = Some(f(t)?);
            }
            Ok(())
        })?;
        out.ok_or_else(|| virga_core::AwsError::internal("transaction did not run"))
    }

    pub fn read<T>(&self, f: impl FnOnce(&dyn KvRead) -> AwsResult<T>) -> AwsResult<T> {
        let mut f = Some(f);
        let mut out = None;
        self.read_dyn(&mut |r| {
            if let Some(f) = f.take() {
                out = Some(f(r)?);
            }
            Ok(())
        })?;
        out.ok_or_else(|| virga_core::AwsError::internal("read did not run"))
    }
}

/// A number that grows with every call and across restarts (microseconds since the
/// epoch, bumped past the last one handed out): keys that sort rows of a durable queue
/// or outbox in the order they were written.
pub fn write_order() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let prev = LAST
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
            Some(now.max(last + 1))
        })
        .unwrap_or(now);
    now.max(prev + 1)
}

/// Every row whose key starts with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}
