//! The change feed: every acknowledged change, numbered, kept for a while
//! so that subscribers can follow a table and resume after a disconnect.
//!
//! A backend numbers its changes (a **sequence number**, increasing, never
//! given twice to published changes) and publishes them here in order, each
//! only once it is durable. The feed keeps them in memory as the backend
//! handed them over — one [`Batch`] per write, sharing the rows with the
//! table — and subscribers read from it by position, so a slow subscriber
//! costs a number, never a queue of copies.
//!
//! What is kept: at least the last `keep` changes, and beyond that every
//! change some connected subscriber has not read yet, as long as the rows
//! kept stay within `memory` bytes. A position older than what is kept is
//! [`Gone`]: the subscriber is told so (a 410, or a final event), never
//! handed a silent gap.

pub mod render;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use tokio::sync::watch;

use crate::store::Row;

/// How much of the feed is kept.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// At least this many of the latest changes (`--changes-keep`).
    pub keep: usize,
    /// Beyond `keep`, changes lagging subscribers still need are kept while
    /// the rows held stay under this many bytes (`--changes-memory`).
    pub memory: usize,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            keep: 10_000,
            memory: 64 << 20,
        }
    }
}

/// What a change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Insert,
    Update,
    Delete,
    ReplaceTable,
    DeleteTable,
}

impl Op {
    /// The name clients see (`op`, and the SSE event's name).
    pub fn name(self) -> &'static str {
        match self {
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Delete => "delete",
            Op::ReplaceTable => "replace_table",
            Op::DeleteTable => "delete_table",
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Op::Insert => 1,
            Op::Update => 2,
            Op::Delete => 3,
            Op::ReplaceTable => 4,
            Op::DeleteTable => 5,
        }
    }

    pub fn from_code(code: u8) -> Option<Op> {
        Some(match code {
            1 => Op::Insert,
            2 => Op::Update,
            3 => Op::Delete,
            4 => Op::ReplaceTable,
            5 => Op::DeleteTable,
            _ => return None,
        })
    }
}

/// One row's change: the row before (updates, deletes) and after (inserts,
/// updates). A backend that does not know the row before an update (a
/// change recovered from a log) leaves it out; filters then judge the row
/// after alone.
#[derive(Clone, Debug)]
pub struct RowChange {
    pub op: Op,
    pub before: Option<Arc<Row>>,
    pub after: Option<Arc<Row>>,
}

/// What one write changed.
#[derive(Clone, Debug)]
pub enum What {
    /// Rows inserted, updated or deleted, one change each.
    Rows(Vec<RowChange>),
    /// Rows inserted, one change each (a bulk insert, kept as its rows).
    Inserted(Vec<Arc<Row>>),
    /// The whole table replaced (or created by a replacement): one change.
    Replaced,
    /// The table deleted: one change.
    Dropped,
}

/// The changes of one write to one table, numbered from `first` on.
#[derive(Clone, Debug)]
pub struct Batch {
    /// The sequence number of the first change; the others follow it.
    pub first: u64,
    pub table: Arc<str>,
    /// The table's columns after the write (a row before it is read with
    /// them too: columns only grow between replacements).
    pub columns: Arc<Vec<String>>,
    pub id_col: Option<usize>,
    pub what: What,
}

/// One change of a batch, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct Change<'a> {
    pub seq: u64,
    pub table: &'a str,
    pub columns: &'a Arc<Vec<String>>,
    pub id_col: Option<usize>,
    pub op: Op,
    pub before: Option<&'a Row>,
    pub after: Option<&'a Row>,
}

impl Change<'_> {
    /// The row's id (`None` for table changes).
    pub fn id(&self) -> Option<&str> {
        let col = self.id_col?;
        self.after.or(self.before).map(|row| row.get(col))
    }
}

impl Batch {
    /// How many changes (sequence numbers) the batch holds.
    pub fn len(&self) -> u64 {
        match &self.what {
            What::Rows(rows) => rows.len() as u64,
            What::Inserted(rows) => rows.len() as u64,
            What::Replaced | What::Dropped => 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sequence number of the last change.
    pub fn last(&self) -> u64 {
        self.first + self.len().saturating_sub(1)
    }

    /// The change numbered `seq`, which must be in the batch.
    pub fn get(&self, seq: u64) -> Change<'_> {
        let i = (seq - self.first) as usize;
        let (op, before, after) = match &self.what {
            What::Rows(rows) => {
                let change = &rows[i];
                (change.op, change.before.as_deref(), change.after.as_deref())
            }
            What::Inserted(rows) => (Op::Insert, None, Some(&*rows[i])),
            What::Replaced => (Op::ReplaceTable, None, None),
            What::Dropped => (Op::DeleteTable, None, None),
        };
        Change {
            seq,
            table: &self.table,
            columns: &self.columns,
            id_col: self.id_col,
            op,
            before,
            after,
        }
    }

    /// Every change after `after`, in order.
    pub fn after(&self, after: u64) -> impl Iterator<Item = Change<'_>> + '_ {
        let from = self.first.max(after.saturating_add(1));
        (from..self.first + self.len()).map(move |seq| self.get(seq))
    }

    /// Bytes of rows the batch holds, roughly (the rows may be shared with
    /// the table, but the feed may outlive them there).
    fn weight(&self) -> usize {
        const CHANGE: usize = 48;
        let rows = |row: &Option<Arc<Row>>| row.as_ref().map_or(0, |r| r.size());
        match &self.what {
            What::Rows(changes) => changes
                .iter()
                .map(|c| CHANGE + rows(&c.before) + rows(&c.after))
                .sum(),
            What::Inserted(inserted) => inserted.iter().map(|r| CHANGE + r.size()).sum(),
            What::Replaced | What::Dropped => CHANGE,
        }
    }
}

/// A position the feed no longer covers: changes after it were let go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("changes after {since} are no longer kept; the oldest kept is {oldest}")]
pub struct Gone {
    pub since: u64,
    /// The oldest sequence number kept (the last one + 1 when none is).
    pub oldest: u64,
    pub last: u64,
}

struct Ring {
    batches: VecDeque<Arc<Batch>>,
    /// Changes the batches hold.
    changes: usize,
    /// Their weight.
    bytes: usize,
    /// The oldest sequence number kept; every later one up to `last` is
    /// either kept or was never published (a refused write's number).
    oldest: u64,
    /// The last sequence number published (0: none yet).
    last: u64,
}

/// What subscribers wait on: the last sequence number, and whether the
/// feed is closing (the server shuts down).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Signal {
    last: u64,
    closed: bool,
}

/// The feed of one store.
pub struct Feed {
    retention: Retention,
    ring: Mutex<Ring>,
    signal: watch::Sender<Signal>,
    /// Each connected subscriber's position (the last change it took).
    positions: Mutex<Vec<Weak<AtomicU64>>>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("last", &self.last_seq())
            .finish()
    }
}

impl Feed {
    /// A feed whose last change so far was numbered `last` (0: none), of
    /// which nothing is kept.
    pub fn new(retention: Retention, last: u64) -> Arc<Feed> {
        Arc::new(Feed {
            retention,
            ring: Mutex::new(Ring {
                batches: VecDeque::new(),
                changes: 0,
                bytes: 0,
                oldest: last + 1,
                last,
            }),
            signal: watch::Sender::new(Signal {
                last,
                closed: false,
            }),
            positions: Mutex::new(Vec::new()),
        })
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// The last sequence number published (0 when there is none).
    pub fn last_seq(&self) -> u64 {
        self.ring().last
    }

    /// The oldest sequence number kept (`last_seq() + 1` when none is).
    pub fn oldest_seq(&self) -> u64 {
        self.ring().oldest
    }

    /// Publishes batches, numbered in order after everything published so
    /// far, each durable already. A batch numbered at or below the last
    /// published is skipped (a backend that reads its changes back may see
    /// one twice).
    pub fn publish(&self, batches: impl IntoIterator<Item = Batch>) {
        let mut ring = self.ring();
        let mut any = false;
        for batch in batches {
            if batch.is_empty() || batch.first <= ring.last {
                continue;
            }
            if ring.batches.is_empty() && ring.changes == 0 && batch.first > ring.last + 1 {
                // Numbers in between were never published: nothing to keep.
                ring.oldest = batch.first;
            }
            ring.last = batch.last();
            ring.changes += batch.len() as usize;
            ring.bytes += batch.weight();
            ring.batches.push_back(Arc::new(batch));
            any = true;
        }
        if !any {
            return;
        }
        self.trim(&mut ring);
        let last = ring.last;
        drop(ring);
        self.signal.send_modify(|s| s.last = last);
    }

    /// Lets go of the oldest batches nobody needs any more.
    fn trim(&self, ring: &mut Ring) {
        let mut needed = None;
        while ring.batches.len() > 1 {
            let front = &ring.batches[0];
            let without = ring.changes - front.len() as usize;
            if without < self.retention.keep {
                break;
            }
            let wanted = *needed.get_or_insert_with(|| self.slowest());
            let still_needed = wanted.is_some_and(|at| at < front.last());
            if still_needed && ring.bytes <= self.retention.memory {
                break;
            }
            let front = ring.batches.pop_front().expect("more than one batch");
            ring.changes -= front.len() as usize;
            ring.bytes -= front.weight();
            ring.oldest = ring.batches[0].first;
        }
    }

    /// The position of the slowest connected subscriber.
    fn slowest(&self) -> Option<u64> {
        let mut positions = self
            .positions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        positions.retain(|p| p.strong_count() > 0);
        positions
            .iter()
            .filter_map(Weak::upgrade)
            .map(|p| p.load(Ordering::Acquire))
            .min()
    }

    /// Where a reader that gives no position starts: before the oldest
    /// change kept.
    pub fn start(&self) -> u64 {
        self.ring().oldest - 1
    }

    /// Checks that changes after `since` are all kept.
    pub fn check(&self, since: u64) -> Result<(), Gone> {
        let ring = self.ring();
        check(&ring, since)
    }

    /// The batches holding changes after `since`, up to about `max`
    /// changes (at least one batch when there is any).
    pub fn read(&self, since: u64, max: usize) -> Result<Vec<Arc<Batch>>, Gone> {
        let ring = self.ring();
        check(&ring, since)?;
        let from = ring.batches.partition_point(|b| b.last() <= since);
        let mut out = Vec::new();
        let mut taken = 0u64;
        for batch in ring.batches.range(from..) {
            if !out.is_empty() && taken >= max as u64 {
                break;
            }
            taken += batch.last() - batch.first.max(since + 1) + 1;
            out.push(batch.clone());
        }
        Ok(out)
    }

    /// A subscriber at `since`, whose position holds changes after it for
    /// it (within the memory bound).
    pub fn subscribe(self: &Arc<Feed>, since: u64) -> Result<Subscription, Gone> {
        let position = Arc::new(AtomicU64::new(since));
        {
            let ring = self.ring();
            check(&ring, since)?;
            self.positions
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Arc::downgrade(&position));
        }
        Ok(Subscription {
            feed: self.clone(),
            position,
            signal: self.signal.subscribe(),
        })
    }

    /// Connected subscribers.
    pub fn subscribers(&self) -> usize {
        let mut positions = self
            .positions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        positions.retain(|p| p.strong_count() > 0);
        positions.len()
    }

    /// Ends every subscription once it has read what was published (the
    /// server is shutting down).
    pub fn close(&self) {
        self.signal.send_modify(|s| s.closed = true);
    }

    pub fn is_closed(&self) -> bool {
        self.signal.borrow().closed
    }
}

fn check(ring: &Ring, since: u64) -> Result<(), Gone> {
    if since.saturating_add(1) < ring.oldest {
        return Err(Gone {
            since,
            oldest: ring.oldest,
            last: ring.last,
        });
    }
    Ok(())
}

/// What a subscriber gets next.
#[derive(Debug)]
pub enum Next {
    /// Batches with changes after the position (skip those at or before it).
    Batches(Vec<Arc<Batch>>),
    /// The subscriber fell behind what is kept.
    Gone(Gone),
    /// The feed closed and everything published was read.
    Closed,
}

/// One subscriber's place in the feed. Dropping it lets the feed go of the
/// changes it held.
pub struct Subscription {
    feed: Arc<Feed>,
    position: Arc<AtomicU64>,
    signal: watch::Receiver<Signal>,
}

impl Subscription {
    /// The last change taken.
    pub fn position(&self) -> u64 {
        self.position.load(Ordering::Acquire)
    }

    /// Marks every change up to `seq` as taken.
    pub fn advance(&self, seq: u64) {
        self.position.fetch_max(seq, Ordering::AcqRel);
    }

    /// Batches after the position, as soon as there are any, up to about
    /// `max` changes. Cancel-safe.
    pub async fn next(&mut self, max: usize) -> Next {
        loop {
            let position = self.position();
            match self.feed.read(position, max) {
                Err(gone) => return Next::Gone(gone),
                Ok(batches) if !batches.is_empty() => return Next::Batches(batches),
                Ok(_) => {}
            }
            let signal = *self.signal.borrow_and_update();
            if signal.last > position {
                // Published after the read, before the borrow: read again.
                continue;
            }
            if signal.closed {
                return Next::Closed;
            }
            if self.signal.changed().await.is_err() {
                return Next::Closed;
            }
        }
    }

    /// Like [`Subscription::next`], but the position is not advanced when
    /// nothing new came: the caller may read without waiting.
    pub fn try_next(&self, max: usize) -> Result<Vec<Arc<Batch>>, Gone> {
        self.feed.read(self.position(), max)
    }

    pub fn feed(&self) -> &Arc<Feed> {
        &self.feed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Arc<Row> {
        Arc::new(Row::from_cells(cells.iter().copied()))
    }

    fn inserted(first: u64, n: usize) -> Batch {
        Batch {
            first,
            table: Arc::from("t"),
            columns: Arc::new(vec!["id".into()]),
            id_col: Some(0),
            what: What::Inserted((0..n).map(|i| row(&[&i.to_string()])).collect()),
        }
    }

    fn retention(keep: usize) -> Retention {
        Retention {
            keep,
            memory: 1 << 20,
        }
    }

    #[test]
    fn numbers_follow_and_old_positions_are_gone() {
        let feed = Feed::new(retention(3), 10);
        assert_eq!(feed.start(), 10);
        assert!(feed.check(10).is_ok());
        assert!(feed.check(9).is_err());
        feed.publish([inserted(11, 2), inserted(13, 2), inserted(15, 1)]);
        assert_eq!(feed.last_seq(), 15);
        // 13..15 are the last three: 11 and 12 may go.
        assert_eq!(feed.oldest_seq(), 13);
        assert_eq!(
            feed.check(11),
            Err(Gone {
                since: 11,
                oldest: 13,
                last: 15
            })
        );
        let batches = feed.read(13, 10).unwrap();
        let seqs: Vec<u64> = batches
            .iter()
            .flat_map(|b| b.after(13).map(|c| c.seq).collect::<Vec<_>>())
            .collect();
        assert_eq!(seqs, [14, 15]);
        // A batch published again is skipped.
        feed.publish([inserted(15, 1)]);
        assert_eq!(feed.last_seq(), 15);
    }

    #[test]
    fn a_lagging_subscriber_keeps_what_it_needs_within_memory() {
        let feed = Feed::new(retention(1), 0);
        let sub = feed.subscribe(0).unwrap();
        for first in 1..=5 {
            feed.publish([inserted(first, 1)]);
        }
        assert_eq!(feed.oldest_seq(), 1, "kept for the subscriber");
        sub.advance(3);
        feed.publish([inserted(6, 1)]);
        assert_eq!(feed.oldest_seq(), 4);
        drop(sub);
        feed.publish([inserted(7, 1)]);
        assert_eq!(feed.oldest_seq(), 7);
        // Over the memory bound, a lagging subscriber loses its place.
        let small = Feed::new(
            Retention {
                keep: 1,
                memory: 100,
            },
            0,
        );
        let sub = small.subscribe(0).unwrap();
        for first in 1..=5 {
            small.publish([inserted(first, 1)]);
        }
        assert!(small.check(sub.position()).is_err());
    }

    #[tokio::test]
    async fn subscribers_wake_for_new_changes_and_end_on_close() {
        let feed = Feed::new(retention(100), 0);
        let mut sub = feed.subscribe(0).unwrap();
        let waiter = tokio::spawn(async move {
            let Next::Batches(batches) = sub.next(10).await else {
                panic!("expected changes");
            };
            sub.advance(batches.last().unwrap().last());
            let end = sub.next(10).await;
            (batches.len(), matches!(end, Next::Closed))
        });
        tokio::task::yield_now().await;
        feed.publish([inserted(1, 3)]);
        feed.close();
        let (batches, closed) = waiter.await.unwrap();
        assert_eq!(batches, 1);
        assert!(closed);
    }
}
