//! [`KvStore`] on SQLite: one `kv(tbl, k, v)` table, WITHOUT ROWID, primary key
//! (tbl, k) so that scans are index range reads. WAL mode; one writer connection and
//! a few reader connections so reads do not wait for writes.

use crate::{Durability, KvRead, KvStore, KvTxn, Row};
use rusqlite::{params, Connection, OptionalExtension};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use virga_core::{AwsError, AwsResult};

fn db_err(e: rusqlite::Error) -> AwsError {
    AwsError::internal(format!("storage error: {e}"))
}

pub struct SqliteStore {
    writer: Mutex<Connection>,
    /// Empty for an in-memory store: its one connection serves reads too.
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS kv (tbl TEXT NOT NULL, k BLOB NOT NULL, v BLOB NOT NULL, PRIMARY KEY (tbl, k)) WITHOUT ROWID;";

impl SqliteStore {
    pub fn open(path: &Path, durability: Durability) -> AwsResult<SqliteStore> {
        let sync = match durability {
            Durability::Process => "NORMAL",
            Durability::Full => "FULL",
        };
        let open = || -> AwsResult<Connection> {
            let c = Connection::open(path).map_err(db_err)?;
            c.busy_timeout(std::time::Duration::from_secs(30))
                .map_err(db_err)?;
            c.set_prepared_statement_cache_capacity(64);
            c.execute_batch(&format!(
                "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA synchronous={sync}; PRAGMA cache_size=-16000;"
            ))
            .map_err(db_err)?;
            Ok(c)
        };
        let writer = open()?;
        writer.execute_batch(SCHEMA).map_err(db_err)?;
        // One connection holding the database exclusively: no file-lock system calls per
        // transaction, a page cache that stays valid, and a second Virga on the same
        // data dir is refused instead of corrupting it.
        writer
            .execute_batch("BEGIN IMMEDIATE; COMMIT;")
            .map_err(|e| {
                AwsError::internal(format!("the data dir is in use by another process? {e}"))
            })?;
        let readers = Vec::new();
        Ok(SqliteStore {
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }

    pub fn in_memory() -> AwsResult<SqliteStore> {
        let c = Connection::open_in_memory().map_err(db_err)?;
        c.set_prepared_statement_cache_capacity(64);
        c.execute_batch(SCHEMA).map_err(db_err)?;
        Ok(SqliteStore {
            writer: Mutex::new(c),
            readers: Vec::new(),
            next_reader: AtomicUsize::new(0),
        })
    }
}

struct Conn<'a>(&'a Connection);

impl KvRead for Conn<'_> {
    fn get(&self, table: &str, key: &[u8]) -> AwsResult<Option<Vec<u8>>> {
        self.0
            .prepare_cached("SELECT v FROM kv WHERE tbl = ?1 AND k = ?2")
            .map_err(db_err)?
            .query_row(params![table, key], |r| r.get(0))
            .optional()
            .map_err(db_err)
    }

    fn scan(
        &self,
        table: &str,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
        reverse: bool,
    ) -> AwsResult<Vec<Row>> {
        let mut sql = String::from("SELECT k, v FROM kv WHERE tbl = ?1");
        let mut args: Vec<&[u8]> = Vec::new();
        match start {
            Bound::Included(s) => {
                args.push(s);
                sql.push_str(&format!(" AND k >= ?{}", args.len() + 1));
            }
            Bound::Excluded(s) => {
                args.push(s);
                sql.push_str(&format!(" AND k > ?{}", args.len() + 1));
            }
            Bound::Unbounded => {}
        }
        match end {
            Bound::Included(e) => {
                args.push(e);
                sql.push_str(&format!(" AND k <= ?{}", args.len() + 1));
            }
            Bound::Excluded(e) => {
                args.push(e);
                sql.push_str(&format!(" AND k < ?{}", args.len() + 1));
            }
            Bound::Unbounded => {}
        }
        sql.push_str(if reverse {
            " ORDER BY k DESC"
        } else {
            " ORDER BY k ASC"
        });
        sql.push_str(&format!(" LIMIT {}", limit.min(i64::MAX as usize)));
        let mut stmt = self.0.prepare_cached(&sql).map_err(db_err)?;
        let mut params: Vec<&dyn rusqlite::ToSql> = vec![&table];
        for a in &args {
            params.push(a);
        }
        let rows = stmt
            .query_map(params.as_slice(), |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
    }
}

impl KvTxn for Conn<'_> {
    fn put(&mut self, table: &str, key: &[u8], value: &[u8]) -> AwsResult<()> {
        self.0
            .prepare_cached("INSERT OR REPLACE INTO kv (tbl, k, v) VALUES (?1, ?2, ?3)")
            .map_err(db_err)?
            .execute(params![table, key, value])
            .map_err(db_err)?;
        Ok(())
    }

    fn delete(&mut self, table: &str, key: &[u8]) -> AwsResult<()> {
        self.0
            .prepare_cached("DELETE FROM kv WHERE tbl = ?1 AND k = ?2")
            .map_err(db_err)?
            .execute(params![table, key])
            .map_err(db_err)?;
        Ok(())
    }
}

impl KvStore for SqliteStore {
    fn transact_dyn(&self, f: &mut dyn FnMut(&mut dyn KvTxn) -> AwsResult<()>) -> AwsResult<()> {
        let mut guard = self
            .writer
            .lock()
            .map_err(|_| AwsError::internal("storage writer poisoned"))?;
        let tx = guard.transaction().map_err(db_err)?;
        let mut conn = Conn(&tx);
        f(&mut conn)?;
        tx.commit().map_err(db_err)
    }

    fn read_dyn(&self, f: &mut dyn FnMut(&dyn KvRead) -> AwsResult<()>) -> AwsResult<()> {
        if self.readers.is_empty() {
            let guard = self
                .writer
                .lock()
                .map_err(|_| AwsError::internal("storage writer poisoned"))?;
            return f(&Conn(&guard));
        }
        // The writer's page cache stays valid across its own commits, while a reader's is
        // dropped whenever another connection has written: read on the writer when free.
        if let Ok(g) = self.writer.try_lock() {
            return f(&Conn(&g));
        }
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.readers.len() {
            if let Ok(g) = self.readers[(start + i) % self.readers.len()].try_lock() {
                return f(&Conn(&g));
            }
        }
        let g = self.readers[start % self.readers.len()]
            .lock()
            .map_err(|_| AwsError::internal("storage reader poisoned"))?;
        f(&Conn(&g))
    }

    fn clear(&self, table_prefix: &str) -> AwsResult<()> {
        let guard = self
            .writer
            .lock()
            .map_err(|_| AwsError::internal("storage writer poisoned"))?;
        let end = crate::prefix_end(table_prefix.as_bytes())
            .and_then(|e| String::from_utf8(e).ok())
            .unwrap_or_else(|| "\u{10FFFF}".to_string());
        guard
            .execute(
                "DELETE FROM kv WHERE tbl >= ?1 AND tbl < ?2",
                params![table_prefix, end],
            )
            .map_err(db_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(s: &dyn KvStore) {
        s.transact(|t| {
            for k in ["a", "b", "c", "d"] {
                t.put("t", k.as_bytes(), k.as_bytes())?;
            }
            t.put("other", b"a", b"x")
        })
        .unwrap();
        let r: AwsResult<()> = s.transact(|t| {
            t.put("t", b"e", b"e")?;
            Err(AwsError::internal("abort"))
        });
        assert!(r.is_err());
        let rows = s
            .read(|r| r.scan("t", Bound::Included(b"b"), Bound::Excluded(b"d"), 10, false))
            .unwrap();
        assert_eq!(
            rows,
            vec![
                (b"b".to_vec(), b"b".to_vec()),
                (b"c".to_vec(), b"c".to_vec())
            ]
        );
        let rows = s
            .read(|r| r.scan("t", Bound::Unbounded, Bound::Unbounded, 2, true))
            .unwrap();
        assert_eq!(rows[0].0, b"d");
        assert_eq!(rows.len(), 2);
        assert_eq!(s.read(|r| r.get("t", b"e")).unwrap(), None);
        s.transact(|t| t.delete("t", b"a")).unwrap();
        assert_eq!(s.read(|r| r.get("t", b"a")).unwrap(), None);
        assert_eq!(
            s.read(|r| r.get("other", b"a")).unwrap(),
            Some(b"x".to_vec())
        );
    }

    #[test]
    fn memory_store() {
        exercise(&SqliteStore::in_memory().unwrap() as &dyn KvStore);
    }

    #[test]
    fn file_store_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("db.sqlite");
        {
            let s = SqliteStore::open(&p, Durability::Process).unwrap();
            exercise(&s as &dyn KvStore);
        }
        let s = SqliteStore::open(&p, Durability::Full).unwrap();
        let s: &dyn KvStore = &s;
        assert_eq!(s.read(|r| r.get("t", b"b")).unwrap(), Some(b"b".to_vec()));
    }
}
