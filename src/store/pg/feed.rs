//! The change feed on PostgreSQL, one order for every instance.
//!
//! A write's transaction records its changes before it commits: it takes a
//! range of sequence numbers from the one row of `csvd_feed` and adds one
//! row to `csvd_changes` holding the batch, encoded here. Taking the range
//! is an `UPDATE` of that row, whose lock is held until the transaction
//! ends: a second writer's `UPDATE` waits for the first to commit (then
//! reads the counter the first left) or to roll back (then reads the
//! counter as it was, so the numbers of a refused write are given again).
//! Hence numbers are given in commit order and are never skipped, on every
//! instance at once. The lock is taken last, just before the commit, so
//! writers are serialised only for that statement and the commit.
//!
//! Every instance follows the table: a listener of its own (one connection
//! outside the pool, `LISTEN csvd_changes`) reads the rows after the last
//! it published whenever a write commits (its `NOTIFY`), every few seconds
//! anyway, and after reconnecting, and publishes them to the instance's
//! [`Feed`] in order. It also prunes old rows, one instance at a time.
//! A write of this instance, once committed, publishes its own batch when
//! it is the next of the feed (saving the listener's round trip), or else
//! waits for the listener: publishing is one at a time and in order, so
//! neither way can skip a change the other has not published yet.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

use crate::feed::{Batch, Feed, Op, Retention, RowChange, What};
use crate::store::{Result, Row};

use super::{db, describe};

/// The version of the encoding of a batch (the first byte of `payload`).
const VERSION: u8 = 1;

/// The channel writes notify and listeners listen on.
pub(super) const CHANNEL: &str = "csvd_changes";

/// The advisory lock of the instance pruning `csvd_changes`.
const PRUNE_LOCK: i64 = 0x6373_7664_6665_6564; // "csvdfeed"

/// Rows of `csvd_changes` read at a time.
const READ_ROWS: i64 = 500;

/// How often the listener reads the table without being told to.
const POLL: Duration = Duration::from_secs(3);

/// How long the listener waits for a missing sequence number before it
/// goes on without it.
const GAP_WAIT: Duration = Duration::from_secs(5);

/// Changes are pruned only once older than this, so that an instance
/// restarting meanwhile can still load them.
const PRUNE_AGE: &str = "10 minutes";

/// Pruned after this many changes, or after [`PRUNE_EVERY`].
const PRUNE_CHANGES: u64 = 1000;
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Rows of `csvd_changes` deleted in one round at most.
const PRUNE_ROWS: i64 = 5000;

const KIND_ROWS: u8 = 1;
const KIND_INSERTED: u8 = 2;
const KIND_REPLACED: u8 = 3;
const KIND_DROPPED: u8 = 4;

/// A batch's bytes for `csvd_changes.payload` (its `first` is the row's
/// key, not part of them). Lengths and counts are u32 little-endian, text
/// is its UTF-8 bytes after its length, a row is its cell count then its
/// cells.
pub(super) fn encode(batch: &Batch) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(VERSION);
    let kind = match &batch.what {
        What::Rows(_) => KIND_ROWS,
        What::Inserted(_) => KIND_INSERTED,
        What::Replaced => KIND_REPLACED,
        What::Dropped => KIND_DROPPED,
    };
    out.push(kind);
    put_str(&mut out, &batch.table);
    put_u32(&mut out, batch.id_col.map_or(0, |at| at + 1));
    put_u32(&mut out, batch.columns.len());
    for column in batch.columns.iter() {
        put_str(&mut out, column);
    }
    match &batch.what {
        What::Rows(changes) => {
            put_u32(&mut out, changes.len());
            for change in changes {
                out.push(change.op.code());
                let flags =
                    u8::from(change.before.is_some()) | (u8::from(change.after.is_some()) << 1);
                out.push(flags);
                for row in [&change.before, &change.after].into_iter().flatten() {
                    put_row(&mut out, row);
                }
            }
        }
        What::Inserted(rows) => {
            put_u32(&mut out, rows.len());
            for row in rows {
                put_row(&mut out, row);
            }
        }
        What::Replaced | What::Dropped => {}
    }
    out
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u32(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn put_row(out: &mut Vec<u8>, row: &Row) {
    put_u32(out, row.len());
    for at in 0..row.len() {
        put_str(out, row.get(at));
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let (head, rest) = self
            .bytes
            .split_at_checked(n)
            .ok_or_else(|| "cut short".to_string())?;
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self) -> std::result::Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> std::result::Result<usize, String> {
        let word: [u8; 4] = self.take(4)?.try_into().expect("four bytes");
        Ok(u32::from_le_bytes(word) as usize)
    }

    fn str(&mut self) -> std::result::Result<&'a str, String> {
        let len = self.u32()?;
        std::str::from_utf8(self.take(len)?).map_err(|_| "text that is not UTF-8".to_string())
    }

    /// A count of items of at least `min` bytes each: never more than the
    /// bytes left could hold (a damaged count allocates nothing).
    fn count(&mut self, min: usize) -> std::result::Result<usize, String> {
        let n = self.u32()?;
        if n.saturating_mul(min) > self.bytes.len() {
            return Err("a count past the end".into());
        }
        Ok(n)
    }

    fn row(&mut self) -> std::result::Result<Row, String> {
        let n = self.count(4)?;
        let mut cells = Vec::with_capacity(n);
        for _ in 0..n {
            cells.push(self.str()?);
        }
        Ok(Row::from_cells(cells))
    }
}

/// The batch numbered from `first` whose bytes are `payload`.
pub(super) fn decode(first: u64, payload: &[u8]) -> std::result::Result<Batch, String> {
    let mut r = Reader { bytes: payload };
    let version = r.u8()?;
    if version != VERSION {
        return Err(format!("an encoding of version {version}, not {VERSION}"));
    }
    let kind = r.u8()?;
    let table = Arc::from(r.str()?);
    let id_col = r.u32()?.checked_sub(1);
    let n = r.count(4)?;
    let mut columns = Vec::with_capacity(n);
    for _ in 0..n {
        columns.push(r.str()?.to_string());
    }
    let what = match kind {
        KIND_ROWS => {
            let n = r.count(2)?;
            let mut changes = Vec::with_capacity(n);
            for _ in 0..n {
                let op = Op::from_code(r.u8()?).ok_or("an unknown kind of change")?;
                let flags = r.u8()?;
                let before = (flags & 1 != 0).then(|| r.row()).transpose()?;
                let after = (flags & 2 != 0).then(|| r.row()).transpose()?;
                changes.push(RowChange { op, before, after });
            }
            What::Rows(changes)
        }
        KIND_INSERTED => {
            let n = r.count(4)?;
            let mut rows = Vec::with_capacity(n);
            for _ in 0..n {
                rows.push(r.row()?);
            }
            What::Inserted(rows)
        }
        KIND_REPLACED => What::Replaced,
        KIND_DROPPED => What::Dropped,
        other => return Err(format!("an unknown kind of batch ({other})")),
    };
    if !r.bytes.is_empty() {
        return Err("bytes after the batch".into());
    }
    Ok(Batch {
        first,
        table,
        columns: Arc::new(columns),
        id_col,
        what,
    })
}

/// The batch of one write, numbered once recorded.
pub(super) fn batch(table: &str, columns: &[String], id_col: Option<usize>, what: What) -> Batch {
    Batch {
        first: 0,
        table: Arc::from(table),
        columns: Arc::new(columns.to_vec()),
        id_col,
        what,
    }
}

/// [`record`] after the write's update of its table's row (`$1` to `$6`:
/// see `writes::touch`), in one statement: answers the table's version,
/// its time and the last number taken.
pub(super) const TOUCH_AND_RECORD: &str = "WITH t AS (UPDATE csvd_tables SET columns = $2, \
    id_col = $3, row_count = $4, max_int_id = $5, next_seq = $6, \
    version = nextval('csvd_versions'), modified = now() WHERE key = $1 \
    RETURNING version, modified), \
    s AS (UPDATE csvd_feed SET next = next + $7::bigint RETURNING next - $7::bigint AS first), \
    c AS (INSERT INTO csvd_changes (first, n, payload) SELECT first, $7::bigint, $8 FROM s \
    RETURNING first) \
    SELECT t.version, t.modified, c.first + $7::bigint - 1, \
    pg_notify('csvd_changes', (c.first + $7::bigint - 1)::text) FROM t, c";

/// Records a write's changes in its transaction, as its last statement
/// before the commit: takes the numbers (and with them the lock of the
/// counter's row, held until the commit), keeps the batch and notifies the
/// listeners (delivered at the commit, not before). One round trip.
/// Returns the last number taken.
pub(super) async fn record(tx: &deadpool_postgres::Transaction<'_>, batch: &Batch) -> Result<u64> {
    let n = batch.len();
    if n == 0 {
        return Ok(0);
    }
    const RECORD: &str = "WITH s AS (UPDATE csvd_feed SET next = next + $1::bigint \
        RETURNING next - $1::bigint AS first), \
        c AS (INSERT INTO csvd_changes (first, n, payload) SELECT first, $1::bigint, $2 FROM s \
        RETURNING first) \
        SELECT first + $1::bigint - 1, pg_notify('csvd_changes', (first + $1::bigint - 1)::text) \
        FROM c";
    let payload = encode(batch);
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    let statement = tx.prepare_cached(RECORD).await.map_err(db)?;
    let row = tx
        .query_one(&statement, &[&n, &payload])
        .await
        .map_err(db)?;
    let last: i64 = row.try_get(0).map_err(db)?;
    Ok(last as u64)
}

/// What the store and its listener share.
pub(super) struct Follower {
    pub feed: Arc<Feed>,
    /// The last sequence number the listener published.
    pub published: watch::Sender<u64>,
    /// Set when the store goes: the listener ends.
    pub stop: watch::Sender<bool>,
    /// Wakes the listener: a write of this instance committed.
    pub poke: Notify,
    /// Held while publishing: a batch is published only right after the
    /// one before it, by the listener or by the write that made it.
    pub publishing: std::sync::Mutex<()>,
}

impl Follower {
    /// Publishes what was read from `csvd_changes`.
    fn publish(&self, batches: Vec<Batch>, position: u64) {
        let _turn = self.turn();
        self.feed.publish(batches);
        let last = position.max(self.feed.last_seq());
        self.published.send_if_modified(|at| {
            let newer = last > *at;
            *at = (*at).max(last);
            newer
        });
    }

    fn turn(&self) -> std::sync::MutexGuard<'_, ()> {
        self.publishing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// After a write of this instance committed its `batch`, numbered up
    /// to `last`: publishes it at once when it is the next change of the
    /// feed (nothing committed in between by another instance is still
    /// unread), else waits until the listener published it, at most
    /// `patience`. Either way the write is answered with its change in
    /// this instance's feed.
    pub async fn committed(&self, mut batch: Batch, last: u64, patience: Duration) {
        if last == 0 || batch.is_empty() {
            return;
        }
        batch.first = last + 1 - batch.len();
        {
            let _turn = self.turn();
            if self.feed.last_seq() + 1 == batch.first {
                self.feed.publish([batch]);
                self.published.send_if_modified(|at| {
                    let newer = last > *at;
                    *at = (*at).max(last);
                    newer
                });
                return;
            }
        }
        self.wait_for(last, patience).await;
    }

    /// Waits until the listener published the change numbered `last` (a
    /// write's own changes are in this instance's feed when it is
    /// answered), at most `patience`.
    pub async fn wait_for(&self, last: u64, patience: Duration) {
        if last == 0 || *self.published.borrow() >= last {
            return;
        }
        self.poke.notify_one();
        let mut published = self.published.subscribe();
        let _ = tokio::time::timeout(patience, published.wait_for(|&at| at >= last)).await;
    }
}

/// A row of `csvd_changes`: its numbers, and its batch unless it cannot
/// be read (written by a later csvd, or damaged by hand: passed over).
struct Recorded {
    first: u64,
    n: u64,
    batch: std::result::Result<Batch, String>,
}

impl Recorded {
    fn last(&self) -> u64 {
        self.first + self.n.max(1) - 1
    }

    /// The batch, or `None` after a warning that it is passed over.
    fn take(self) -> Option<Batch> {
        let last = self.last();
        match self.batch {
            Ok(batch) => Some(batch),
            Err(why) => {
                tracing::warn!(
                    "the change feed passes over changes {} to {}: they cannot be read ({why})",
                    self.first,
                    last
                );
                None
            }
        }
    }
}

fn read_row(row: &tokio_postgres::Row) -> Result<Recorded> {
    let first: i64 = row.try_get(0).map_err(db)?;
    let n: i64 = row.try_get(1).map_err(db)?;
    let payload: &[u8] = row.try_get(2).map_err(db)?;
    let (first, n) = (first.max(0) as u64, n.max(0) as u64);
    let batch = decode(first, payload).and_then(|batch| {
        if batch.len() == n {
            Ok(batch)
        } else {
            Err(format!("{} changes where {n} were recorded", batch.len()))
        }
    });
    Ok(Recorded { first, n, batch })
}

/// The feed an instance starts with: the last `keep` changes recorded,
/// numbered on from the counter when none is.
pub(super) async fn load(client: &Client, retention: Retention) -> Result<Arc<Feed>> {
    let next: i64 = client
        .query_one("SELECT next FROM csvd_feed", &[])
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(db)?;
    let keep = i64::try_from(retention.keep).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "SELECT first, n::bigint, payload FROM csvd_changes \
             WHERE first + n > $1::bigint - $2::bigint ORDER BY first",
            &[&next, &keep],
        )
        .await
        .map_err(db)?;
    let recorded = rows.iter().map(read_row).collect::<Result<Vec<_>>>()?;
    let start = recorded
        .first()
        .map_or((next - 1).max(0) as u64, |r| r.first - 1);
    let feed = Feed::new(retention, start);
    feed.publish(recorded.into_iter().filter_map(Recorded::take));
    Ok(feed)
}

/// Follows `csvd_changes` for the feed until the store stops it,
/// reconnecting (with backoff) whenever the database goes away.
pub(super) async fn listen(config: Config, follower: Arc<Follower>, retention: Retention) {
    let mut stop = follower.stop.subscribe();
    let mut backoff = Duration::from_millis(100);
    let mut prune = Prune {
        changes: 0,
        last: tokio::time::Instant::now(),
        keep: retention.keep,
        position: follower.feed.last_seq(),
    };
    loop {
        if *stop.borrow() {
            return;
        }
        let outcome = tokio::select! {
            outcome = follow(&config, &follower, &mut prune, &mut backoff) => outcome,
            _ = stop.wait_for(|&s| s) => return,
        };
        if let Err(why) = outcome {
            tracing::warn!(
                "the change feed lost the database ({why}); reconnecting in {} ms",
                backoff.as_millis()
            );
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stop.wait_for(|&s| s) => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// What the listener keeps across connections.
struct Prune {
    /// Changes read since the last pruning, and when that was.
    changes: u64,
    last: tokio::time::Instant,
    keep: usize,
    /// The last change read (published, or passed over).
    position: u64,
}

/// One connection's worth of following; returns why it ended.
async fn follow(
    config: &Config,
    follower: &Follower,
    prune: &mut Prune,
    backoff: &mut Duration,
) -> std::result::Result<(), String> {
    let (mut client, mut connection) = config.connect(NoTls).await.map_err(|e| describe(&e))?;
    // Each notification's number (0 when unreadable).
    let (told, mut notices) = tokio::sync::mpsc::unbounded_channel::<u64>();
    // The connection's messages: notifications wake the loop below; its
    // end (the channel closing) ends this round.
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(note))) => {
                    if told.send(note.payload().parse().unwrap_or(0)).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    });
    let _driver = AbortOnDrop(driver);
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(|e| describe(&e))?;
    let read = client
        .prepare(
            "SELECT first, n::bigint, payload FROM csvd_changes WHERE first > $1 \
             ORDER BY first LIMIT $2",
        )
        .await
        .map_err(|e| describe(&e))?;
    *backoff = Duration::from_millis(100);
    let mut gap_since: Option<tokio::time::Instant> = None;
    let mut wanted = true;
    loop {
        // Read everything after the last published (after connecting, too:
        // what was committed while away).
        while wanted {
            let last = prune.position.max(follower.feed.last_seq());
            let rows = client
                .query(&read, &[&(last as i64), &READ_ROWS])
                .await
                .map_err(|e| describe(&e))?;
            let full = rows.len() as i64 == READ_ROWS;
            let mut batches = Vec::with_capacity(rows.len());
            let mut expected = last + 1;
            let mut taken = 0;
            for row in &rows {
                let recorded = read_row(row).map_err(|e| e.to_string())?;
                if recorded.first != expected {
                    // Impossible by construction (see the module's
                    // comment), or pruned while this instance was away:
                    // waited for a while, then passed over.
                    let since = *gap_since.get_or_insert_with(tokio::time::Instant::now);
                    if since.elapsed() < GAP_WAIT {
                        break;
                    }
                    tracing::warn!(
                        "the change feed has no changes {expected} to {}; going on without them",
                        recorded.first - 1
                    );
                }
                gap_since = None;
                expected = recorded.last() + 1;
                prune.position = recorded.last();
                prune.changes += recorded.n;
                taken += 1;
                batches.extend(recorded.take());
            }
            follower.publish(batches, prune.position);
            wanted = full && taken == rows.len();
        }
        if prune.changes >= PRUNE_CHANGES || prune.last.elapsed() >= PRUNE_EVERY {
            prune.changes = 0;
            prune.last = tokio::time::Instant::now();
            prune_round(&mut client, prune.keep)
                .await
                .map_err(|e| describe(&e))?;
        }
        let wait = if gap_since.is_some() {
            Duration::from_millis(50)
        } else {
            POLL
        };
        tokio::select! {
            told = notices.recv() => {
                let Some(mut newest) = told else {
                    return Err("the connection closed".into());
                };
                // Every notification waiting is answered by one read, and
                // none is needed for changes published already (a write
                // of this instance publishes its own when it can).
                while let Ok(seq) = notices.try_recv() {
                    newest = newest.max(seq);
                }
                wanted = newest == 0 || newest > prune.position.max(follower.feed.last_seq());
            }
            () = follower.poke.notified() => wanted = true,
            () = tokio::time::sleep(wait) => wanted = true,
        }
    }
}

/// Deletes old changes, a bounded number, unless another instance is at it.
async fn prune_round(
    client: &mut Client,
    keep: usize,
) -> std::result::Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let got: bool = tx
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&PRUNE_LOCK])
        .await?
        .try_get(0)?;
    if got {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        tx.execute(
            &format!(
                "DELETE FROM csvd_changes WHERE first IN (SELECT first FROM csvd_changes \
                 WHERE first + n <= (SELECT next FROM csvd_feed) - $1::bigint \
                 AND at < now() - interval '{PRUNE_AGE}' ORDER BY first LIMIT $2)"
            ),
            &[&keep, &PRUNE_ROWS],
        )
        .await?;
    }
    tx.commit().await
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Row {
        Row::from_cells(cells.iter().copied())
    }

    fn cells(row: &Row) -> Vec<String> {
        (0..row.len()).map(|at| row.get(at).to_string()).collect()
    }

    fn same(a: &Batch, b: &Batch) {
        assert_eq!(a.first, b.first);
        assert_eq!(a.table, b.table);
        assert_eq!(a.columns, b.columns);
        assert_eq!(a.id_col, b.id_col);
        assert_eq!(a.len(), b.len());
        for seq in a.first..a.first + a.len() {
            let (x, y) = (a.get(seq), b.get(seq));
            assert_eq!(x.op, y.op);
            assert_eq!(x.before.map(cells), y.before.map(cells));
            assert_eq!(x.after.map(cells), y.after.map(cells));
        }
    }

    fn samples() -> Vec<Batch> {
        let columns = vec!["id".to_string(), "name".into(), "".into(), "nul\0l".into()];
        vec![
            batch(
                "people",
                &columns,
                Some(0),
                What::Inserted(vec![
                    row(&["1", "Kim", "", "a\0b"]),
                    row(&["2"]),
                    row(&[]),
                    row(&["3", "\u{1}\u{1}", "é ☃", ""]),
                ]),
            ),
            batch(
                "people",
                &columns,
                Some(0),
                What::Rows(vec![
                    RowChange {
                        op: Op::Insert,
                        before: None,
                        after: Some(row(&["4", "x"])),
                    },
                    RowChange {
                        op: Op::Update,
                        before: Some(row(&["4", "x"])),
                        after: Some(row(&["4", "y\0", ""])),
                    },
                    RowChange {
                        op: Op::Update,
                        before: None,
                        after: Some(row(&["4", "z"])),
                    },
                    RowChange {
                        op: Op::Delete,
                        before: Some(row(&["4", "z"])),
                        after: None,
                    },
                ]),
            ),
            batch("t", &columns[..1], Some(0), What::Replaced),
            batch("", &[], None, What::Dropped),
            batch("empty", &[], None, What::Inserted(Vec::new())),
        ]
    }

    #[test]
    fn every_kind_of_batch_round_trips() {
        for (i, mut sample) in samples().into_iter().enumerate() {
            sample.first = 10 + i as u64;
            let bytes = encode(&sample);
            let back = decode(sample.first, &bytes).unwrap();
            same(&sample, &back);
        }
    }

    #[test]
    fn damaged_payloads_are_refused_not_trusted() {
        let bytes = encode(&samples()[1]);
        for cut in 0..bytes.len() {
            assert!(decode(1, &bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(1, &longer).is_err());
        let mut other = bytes.clone();
        other[0] = 9;
        assert!(decode(1, &other).unwrap_err().contains("version 9"));
        // A huge count allocates nothing.
        let mut huge = encode(&samples()[0]);
        let at = huge.len() - encode_rows_len(&samples()[0]);
        huge[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(1, &huge).is_err());
    }

    /// Bytes of an `Inserted` batch from its row count on.
    fn encode_rows_len(batch: &Batch) -> usize {
        let What::Inserted(rows) = &batch.what else {
            unreachable!()
        };
        let mut out = Vec::new();
        put_u32(&mut out, rows.len());
        for r in rows {
            put_row(&mut out, r);
        }
        out.len()
    }
}
