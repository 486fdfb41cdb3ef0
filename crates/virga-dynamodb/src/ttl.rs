//! Time to live: a background sweeper deletes items whose TTL attribute (epoch
//! seconds) is in the past by Virga's clock, reading the `ddb.ttl` index rather
//! than the tables. The deletions appear in the table's stream as REMOVE records
//! made by the service (`userIdentity` dynamodb.amazonaws.com), as on AWS. Until
//! the sweeper has run, expired items are still readable, as on AWS.

use crate::data::load_item;
use crate::keys::{self, write_item, Actor};
use crate::state::{self, TTL};
use crate::DynamoDb;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;
use virga_core::AwsResult;
use virga_store::KeyBuf;

/// How often the sweeper looks for expired items.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Items deleted per transaction.
const BATCH: usize = 100;
/// AWS does not delete items whose TTL is more than five years in the past.
const MAX_AGE_SECS: u64 = 5 * 365 * 24 * 3600;

pub fn start(ddb: Arc<DynamoDb>) {
    tokio::spawn(async move {
        let mut last_trim = std::time::Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(SWEEP_EVERY) => {}
                _ = ddb.ttl_wake.notified() => {}
            }
            if let Err(e) = sweep(&ddb) {
                tracing::warn!("DynamoDB TTL sweep failed: {}", e.message);
            }
            if last_trim.elapsed() > Duration::from_secs(60) {
                last_trim = std::time::Instant::now();
                if let Err(e) = crate::streams::trim(&ddb) {
                    tracing::warn!("DynamoDB stream trim failed: {}", e.message);
                }
            }
        }
    });
}

/// Deletes every expired item of every table with TTL enabled; returns how many.
pub fn sweep(ddb: &DynamoDb) -> AwsResult<usize> {
    let now = ddb.clock.now_secs_f64().max(0.0) as u64;
    let mut deleted = 0;
    for meta in crate::streams::tables(ddb)? {
        if !meta.ttl_enabled {
            continue;
        }
        let from = KeyBuf::new()
            .u64(meta.uid)
            .u64(now.saturating_sub(MAX_AGE_SECS))
            .into_vec();
        // Expiry seconds < now: the TTL attribute is in the past.
        let to = KeyBuf::new().u64(meta.uid).u64(now).into_vec();
        loop {
            let _guard = ddb.write_lock.lock().unwrap_or_else(|p| p.into_inner());
            let n = ddb.store.transact(|t| {
                // Re-read the table inside the transaction: TTL may have been turned off.
                let Some(current) = state::load_table(t, &meta.region, &meta.name)? else {
                    return Ok(0);
                };
                if current.uid != meta.uid || !current.ttl_enabled {
                    return Ok(0);
                }
                let rows = t.scan(
                    TTL,
                    Bound::Included(from.as_slice()),
                    Bound::Excluded(to.as_slice()),
                    BATCH,
                    false,
                )?;
                let attr = current.ttl_attribute.clone().unwrap_or_default();
                for (ttl_key, item_key) in &rows {
                    t.delete(TTL, ttl_key)?;
                    let Some(old) = load_item(t, item_key)? else {
                        continue;
                    };
                    // Only if the item still carries this expiry (a stale entry must
                    // not delete an item whose TTL moved to the future).
                    if keys::ttl_key(&current, &attr, &old, item_key).as_deref()
                        == Some(ttl_key.as_slice())
                    {
                        write_item(ddb, t, &current, item_key, Some(&old), None, Actor::Ttl)?;
                    }
                }
                Ok(rows.len())
            })?;
            deleted += n;
            if n < BATCH {
                break;
            }
        }
    }
    Ok(deleted)
}
