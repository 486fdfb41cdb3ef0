//! [`KvStore`] on SQLite: one `kv(tbl, k, v)` table, WITHOUT ROWID, primary key
//! (tbl, k) so that scans are index range reads. WAL mode, one connection holding the
//! database exclusively.
//!
//! Durability: commits run with `synchronous=NORMAL`, so a committed transaction is in
//! the WAL file before `transact` returns and survives a crash of the process. With
//! [`Durability::Full`] the WAL is also fsync'd before `transact` returns, by group
//! commit: one caller fsyncs for every transaction committed before it started, while
//! the others wait for that fsync instead of issuing their own.

use crate::{Durability, KvRead, KvStore, KvTxn, Row};
use rusqlite::{params, Connection, OptionalExtension};
use std::fs::File;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Condvar, Mutex};
use virga_core::{AwsError, AwsResult};

fn db_err(e: rusqlite::Error) -> AwsError {
    AwsError::internal(format!("storage error: {e}"))
}

pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// Set for [`Durability::Full`].
    group_sync: Option<GroupSync>,
}

/// Group commit of the WAL for power-loss durability.
struct GroupSync {
    wal: File,
    state: Mutex<SyncState>,
    done: Condvar,
}

#[derive(Default)]
struct SyncState {
    /// Transactions committed so far (numbered in commit order).
    committed: u64,
    /// All transactions up to this number are on stable storage.
    synced: u64,
    syncing: bool,
}

impl GroupSync {
    /// Numbers a commit; called while the connection is still held, so numbers follow
    /// commit order.
    fn committed(&self) -> AwsResult<u64> {
        let mut st = self
            .state
            .lock()
            .map_err(|_| AwsError::internal("sync state poisoned"))?;
        st.committed += 1;
        Ok(st.committed)
    }

    /// Returns once commit `n` is on stable storage.
    fn wait_synced(&self, n: u64) -> AwsResult<()> {
        let poisoned = || AwsError::internal("sync state poisoned");
        let mut st = self.state.lock().map_err(|_| poisoned())?;
        loop {
            if st.synced >= n {
                return Ok(());
            }
            if !st.syncing {
                st.syncing = true;
                let target = st.committed;
                drop(st);
                let result = self.wal.sync_data();
                st = self.state.lock().map_err(|_| poisoned())?;
                st.syncing = false;
                if result.is_ok() {
                    st.synced = st.synced.max(target);
                }
                self.done.notify_all();
                result.map_err(|e| AwsError::internal(format!("fsync of the WAL failed: {e}")))?;
            } else {
                st = self.done.wait(st).map_err(|_| poisoned())?;
            }
        }
    }
}

/// `kv` keeps rows in key order inside its B-tree (WITHOUT ROWID), which suits small
/// records. Tables named `blob.*` hold values of kilobytes, which a WITHOUT ROWID
/// B-tree would push into mostly empty overflow pages (measured: 5 KB of file per
/// 1 KB value), so they live in `kv_large`, an ordinary rowid table.
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS kv (tbl TEXT NOT NULL, k BLOB NOT NULL, v BLOB NOT NULL, PRIMARY KEY (tbl, k)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv_large (tbl TEXT NOT NULL, k BLOB NOT NULL, v BLOB NOT NULL, PRIMARY KEY (tbl, k));";

/// The SQL table holding a logical table.
fn physical(table: &str) -> &'static str {
    if table.starts_with("blob.") {
        "kv_large"
    } else {
        "kv"
    }
}

impl SqliteStore {
    pub fn open(path: &Path, durability: Durability) -> AwsResult<SqliteStore> {
        let c = Connection::open(path).map_err(db_err)?;
        c.busy_timeout(std::time::Duration::from_millis(200))
            .map_err(db_err)?;
        c.set_prepared_statement_cache_capacity(64);
        c.execute_batch(
            "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-16000;",
        )
        .map_err(|e| {
            AwsError::internal(format!(
                "cannot open {} (is another Virga using this data dir?): {e}",
                path.display()
            ))
        })?;
        c.execute_batch(SCHEMA).map_err(|e| {
            AwsError::internal(format!(
                "cannot open {} (is another Virga using this data dir?): {e}",
                path.display()
            ))
        })?;
        // One connection holding the database exclusively: no file-lock system calls per
        // transaction, a page cache that stays valid, and a second Virga on the same
        // data dir is refused instead of corrupting it.
        c.execute_batch("BEGIN IMMEDIATE; COMMIT;").map_err(|e| {
            AwsError::internal(format!(
                "cannot lock {} (is another Virga using this data dir?): {e}",
                path.display()
            ))
        })?;
        let group_sync = match durability {
            Durability::Process => None,
            Durability::Full => {
                let mut wal = path.as_os_str().to_owned();
                wal.push("-wal");
                let wal = File::options()
                    .read(true)
                    .write(true)
                    .open(&wal)
                    .map_err(|e| AwsError::internal(format!("cannot open the WAL: {e}")))?;
                Some(GroupSync {
                    wal,
                    state: Mutex::new(SyncState::default()),
                    done: Condvar::new(),
                })
            }
        };
        Ok(SqliteStore {
            conn: Mutex::new(c),
            group_sync,
        })
    }

    pub fn in_memory() -> AwsResult<SqliteStore> {
        let c = Connection::open_in_memory().map_err(db_err)?;
        c.set_prepared_statement_cache_capacity(64);
        c.execute_batch(SCHEMA).map_err(db_err)?;
        Ok(SqliteStore {
            conn: Mutex::new(c),
            group_sync: None,
        })
    }
}

struct Conn<'a>(&'a Connection);

impl KvRead for Conn<'_> {
    fn get(&self, table: &str, key: &[u8]) -> AwsResult<Option<Vec<u8>>> {
        self.0
            .prepare_cached(&format!(
                "SELECT v FROM {} WHERE tbl = ?1 AND k = ?2",
                physical(table)
            ))
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
        let mut sql = format!("SELECT k, v FROM {} WHERE tbl = ?1", physical(table));
        let args = Conn::bounds(start, end, &mut sql);
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

    fn count(&self, table: &str, start: Bound<&[u8]>, end: Bound<&[u8]>) -> AwsResult<u64> {
        self.count_rows(table, start, end)
    }
}

impl Conn<'_> {
    /// ` AND k >= ?n ...` for the bounds, with their arguments.
    fn bounds<'b>(start: Bound<&'b [u8]>, end: Bound<&'b [u8]>, sql: &mut String) -> Vec<&'b [u8]> {
        let mut args: Vec<&[u8]> = Vec::new();
        for (b, incl, excl) in [(start, ">=", ">"), (end, "<=", "<")] {
            match b {
                Bound::Included(k) => {
                    args.push(k);
                    sql.push_str(&format!(" AND k {incl} ?{}", args.len() + 1));
                }
                Bound::Excluded(k) => {
                    args.push(k);
                    sql.push_str(&format!(" AND k {excl} ?{}", args.len() + 1));
                }
                Bound::Unbounded => {}
            }
        }
        args
    }
}

impl Conn<'_> {
    fn count_rows(&self, table: &str, start: Bound<&[u8]>, end: Bound<&[u8]>) -> AwsResult<u64> {
        let mut sql = format!("SELECT COUNT(*) FROM {} WHERE tbl = ?1", physical(table));
        let args = Conn::bounds(start, end, &mut sql);
        let mut stmt = self.0.prepare_cached(&sql).map_err(db_err)?;
        let mut params: Vec<&dyn rusqlite::ToSql> = vec![&table];
        for a in &args {
            params.push(a);
        }
        stmt.query_row(params.as_slice(), |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
            .map_err(db_err)
    }
}

impl KvTxn for Conn<'_> {
    fn put(&mut self, table: &str, key: &[u8], value: &[u8]) -> AwsResult<()> {
        self.0
            .prepare_cached(&format!(
                "INSERT OR REPLACE INTO {} (tbl, k, v) VALUES (?1, ?2, ?3)",
                physical(table)
            ))
            .map_err(db_err)?
            .execute(params![table, key, value])
            .map_err(db_err)?;
        Ok(())
    }

    fn delete(&mut self, table: &str, key: &[u8]) -> AwsResult<()> {
        self.0
            .prepare_cached(&format!(
                "DELETE FROM {} WHERE tbl = ?1 AND k = ?2",
                physical(table)
            ))
            .map_err(db_err)?
            .execute(params![table, key])
            .map_err(db_err)?;
        Ok(())
    }

    fn delete_range(&mut self, table: &str, start: &[u8], end: &[u8]) -> AwsResult<u64> {
        self.0
            .prepare_cached(&format!(
                "DELETE FROM {} WHERE tbl = ?1 AND k >= ?2 AND k < ?3",
                physical(table)
            ))
            .map_err(db_err)?
            .execute(params![table, start, end])
            .map(|n| n as u64)
            .map_err(db_err)
    }
}

impl KvStore for SqliteStore {
    fn transact_dyn(&self, f: &mut dyn FnMut(&mut dyn KvTxn) -> AwsResult<()>) -> AwsResult<()> {
        let mut guard = self
            .conn
            .lock()
            .map_err(|_| AwsError::internal("storage connection poisoned"))?;
        let tx = guard.transaction().map_err(db_err)?;
        let mut conn = Conn(&tx);
        f(&mut conn)?;
        tx.commit().map_err(db_err)?;
        let Some(gs) = &self.group_sync else {
            return Ok(());
        };
        let n = gs.committed()?;
        drop(guard);
        gs.wait_synced(n)
    }

    fn read_dyn(&self, f: &mut dyn FnMut(&dyn KvRead) -> AwsResult<()>) -> AwsResult<()> {
        let guard = self
            .conn
            .lock()
            .map_err(|_| AwsError::internal("storage connection poisoned"))?;
        f(&Conn(&guard))
    }

    fn clear(&self, table_prefix: &str) -> AwsResult<()> {
        let guard = self
            .conn
            .lock()
            .map_err(|_| AwsError::internal("storage connection poisoned"))?;
        let end = crate::prefix_end(table_prefix.as_bytes())
            .and_then(|e| String::from_utf8(e).ok())
            .unwrap_or_else(|| "\u{10FFFF}".to_string());
        for t in ["kv", "kv_large"] {
            guard
                .execute(
                    &format!("DELETE FROM {t} WHERE tbl >= ?1 AND tbl < ?2"),
                    params![table_prefix, end],
                )
                .map_err(db_err)?;
        }
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
        let n = s
            .read(|r| r.count("t", Bound::Included(b"b"), Bound::Excluded(b"d")))
            .unwrap();
        assert_eq!(n, 2);
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

    #[test]
    fn full_durability_group_commits_concurrent_writers() {
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(
            SqliteStore::open(&dir.path().join("db"), Durability::Full).unwrap(),
        );
        let threads: Vec<_> = (0..8u8)
            .map(|i| {
                let s = s.clone();
                std::thread::spawn(move || {
                    let s: &dyn KvStore = &*s;
                    for j in 0..20u8 {
                        s.transact(|t| t.put("t", &[i, j], &[j])).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let gs = s.group_sync.as_ref().unwrap();
        let st = gs.state.lock().unwrap();
        assert_eq!(st.committed, 160);
        assert_eq!(st.synced, 160);
        drop(st);
        let s: &dyn KvStore = &*s;
        let rows = s
            .read(|r| r.scan("t", Bound::Unbounded, Bound::Unbounded, 1000, false))
            .unwrap();
        assert_eq!(rows.len(), 160);
    }

    #[test]
    fn second_open_of_the_same_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("db");
        let _first = SqliteStore::open(&p, Durability::Process).unwrap();
        let second = SqliteStore::open(&p, Durability::Process);
        assert!(second.is_err());
    }
}
