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

use std::collections::{HashMap, VecDeque};
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
    pub before: Option<Row>,
    pub after: Option<Row>,
}

/// What one write changed.
#[derive(Clone, Debug)]
pub enum What {
    /// Rows inserted, updated or deleted, one change each.
    Rows(Vec<RowChange>),
    /// Rows inserted, one change each (a bulk insert, kept as its rows).
    Inserted(Vec<Row>),
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
                (change.op, change.before.as_ref(), change.after.as_ref())
            }
            What::Inserted(rows) => (Op::Insert, None, Some(&rows[i])),
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
        let rows = |row: &Option<Row>| row.as_ref().map_or(0, |r| r.size());
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
    /// Nothing before this was ever kept by this feed (changes from before
    /// a restart): a position before it is gone whatever its table.
    floor: u64,
    /// For each table, the last sequence number of its changes let go: a
    /// subscriber of that table at or after it has lost nothing.
    let_go: HashMap<Arc<str>, u64>,
}

/// What subscribers wait on: the last sequence number, and whether the
/// feed is closing (the server shuts down).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Signal {
    last: u64,
    closed: bool,
}

/// Connected subscribers' positions (the last change each took), by the
/// table they follow (`None`: every table).
type Places = HashMap<Option<Arc<str>>, Vec<Weak<AtomicU64>>>;

/// The feed of one store.
pub struct Feed {
    retention: Retention,
    ring: Mutex<Ring>,
    /// Wakes the subscribers of every table.
    signal: watch::Sender<Signal>,
    /// Wakes the subscribers of one table only, so that a write wakes no
    /// one who follows another table.
    tables: Mutex<HashMap<Arc<str>, watch::Sender<Signal>>>,
    places: Mutex<Places>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("last", &self.last_seq())
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Batches holding changes after a position, and how far they reach.
#[derive(Debug, Default)]
pub struct Read {
    /// The batches of the followed table (or all) with changes after the
    /// position, in order; skip each one's changes at or before it.
    pub batches: Vec<Arc<Batch>>,
    /// Every change up to here was looked at: those of other tables were
    /// passed over, those of `batches` are in them.
    pub upto: u64,
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
                floor: last + 1,
                let_go: HashMap::new(),
            }),
            signal: watch::Sender::new(Signal {
                last,
                closed: false,
            }),
            tables: Mutex::new(HashMap::new()),
            places: Mutex::new(HashMap::new()),
        })
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        lock(&self.ring)
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
        let mut touched: Vec<Arc<str>> = Vec::new();
        for batch in batches {
            if batch.is_empty() || batch.first <= ring.last {
                continue;
            }
            if ring.batches.is_empty() && ring.changes == 0 && batch.first > ring.last + 1 {
                // Numbers in between were never published here: nothing
                // from before can be kept.
                ring.oldest = batch.first;
                ring.floor = batch.first;
            }
            ring.last = batch.last();
            ring.changes += batch.len() as usize;
            ring.bytes += batch.weight();
            if !touched.contains(&batch.table) {
                touched.push(batch.table.clone());
            }
            ring.batches.push_back(Arc::new(batch));
        }
        if touched.is_empty() {
            return;
        }
        self.trim(&mut ring);
        let last = ring.last;
        drop(ring);
        self.signal.send_modify(|s| s.last = last);
        let mut tables = lock(&self.tables);
        for table in touched {
            if let Some(sender) = tables.get(&table) {
                if sender.receiver_count() == 0 {
                    tables.remove(&table);
                } else {
                    sender.send_modify(|s| s.last = last);
                }
            }
        }
    }

    /// Lets go of the oldest batches nobody needs any more.
    fn trim(&self, ring: &mut Ring) {
        while ring.batches.len() > 1 {
            let front = &ring.batches[0];
            let without = ring.changes - front.len() as usize;
            if without < self.retention.keep {
                break;
            }
            if ring.bytes <= self.retention.memory && self.needed(front) {
                break;
            }
            let front = ring.batches.pop_front().expect("more than one batch");
            ring.changes -= front.len() as usize;
            ring.bytes -= front.weight();
            ring.oldest = ring.batches[0].first;
            ring.let_go.insert(front.table.clone(), front.last());
        }
    }

    /// Whether a connected subscriber has yet to read part of `batch`:
    /// only those of every table and of the batch's table are looked at.
    fn needed(&self, batch: &Batch) -> bool {
        let mut places = lock(&self.places);
        let mut behind = |key: Option<Arc<str>>| {
            let Some(list) = places.get_mut(&key) else {
                return false;
            };
            list.retain(|p| p.strong_count() > 0);
            let any = list
                .iter()
                .filter_map(Weak::upgrade)
                .any(|p| p.load(Ordering::Acquire) < batch.last());
            if list.is_empty() {
                places.remove(&key);
            }
            any
        };
        behind(None) || behind(Some(batch.table.clone()))
    }

    /// Where a reader that gives no position starts: before the oldest
    /// change kept.
    pub fn start(&self) -> u64 {
        self.ring().oldest - 1
    }

    /// Checks that every change after `since` (of `table`, or of every
    /// table) is still kept.
    pub fn check(&self, since: u64, table: Option<&str>) -> Result<(), Gone> {
        check(&self.ring(), since, table)
    }

    /// The batches holding changes after `since` (of `table`, or of every
    /// table), up to about `max` changes (at least one batch when there is
    /// any).
    pub fn read(&self, since: u64, max: usize, table: Option<&str>) -> Result<Read, Gone> {
        let ring = self.ring();
        check(&ring, since, table)?;
        let from = ring.batches.partition_point(|b| b.last() <= since);
        let mut read = Read {
            batches: Vec::new(),
            upto: since,
        };
        let mut taken = 0u64;
        for batch in ring.batches.range(from..) {
            if table.is_some_and(|t| *t != *batch.table) {
                read.upto = batch.last();
                continue;
            }
            if !read.batches.is_empty() && taken >= max as u64 {
                break;
            }
            taken += batch.last() - batch.first.max(since + 1) + 1;
            read.upto = batch.last();
            read.batches.push(batch.clone());
        }
        Ok(read)
    }

    /// A subscriber at `since` to `table` (or every table): the feed keeps
    /// the changes after its position for it (within the memory bound),
    /// and it is woken only by the writes it follows.
    pub fn subscribe(
        self: &Arc<Feed>,
        since: u64,
        table: Option<&str>,
    ) -> Result<Subscription, Gone> {
        let position = Arc::new(AtomicU64::new(since));
        let table: Option<Arc<str>> = table.map(Arc::from);
        let signal = {
            let ring = self.ring();
            check(&ring, since, table.as_deref())?;
            lock(&self.places)
                .entry(table.clone())
                .or_default()
                .push(Arc::downgrade(&position));
            match &table {
                None => self.signal.subscribe(),
                Some(name) => {
                    let now = *self.signal.borrow();
                    lock(&self.tables)
                        .entry(name.clone())
                        .or_insert_with(|| watch::Sender::new(now))
                        .subscribe()
                }
            }
        };
        Ok(Subscription {
            feed: self.clone(),
            table,
            position,
            signal,
        })
    }

    /// Ends every subscription once it has read what was published (the
    /// server is shutting down).
    pub fn close(&self) {
        self.signal.send_modify(|s| s.closed = true);
        for sender in lock(&self.tables).values() {
            sender.send_modify(|s| s.closed = true);
        }
    }
}

fn check(ring: &Ring, since: u64, table: Option<&str>) -> Result<(), Gone> {
    let next = since.saturating_add(1);
    if next >= ring.oldest {
        return Ok(());
    }
    let gone = |oldest: u64| Gone {
        since,
        oldest,
        last: ring.last,
    };
    if next < ring.floor {
        return Err(gone(ring.oldest));
    }
    match table {
        // A table's subscriber lost nothing if none of its table's
        // changes after its position was let go.
        Some(table) => match ring.let_go.get(table) {
            Some(&last) if last > since => Err(gone(last + 1)),
            _ => Ok(()),
        },
        None => Err(gone(ring.oldest)),
    }
}

/// What a subscriber gets next.
#[derive(Debug)]
pub enum Next {
    /// Batches with changes after the position (skip those at or before it).
    Batches(Read),
    /// The subscriber fell behind what is kept.
    Gone(Gone),
    /// The feed closed and everything published was read.
    Closed,
}

/// One subscriber's place in the feed. Dropping it lets the feed go of the
/// changes it held.
pub struct Subscription {
    feed: Arc<Feed>,
    table: Option<Arc<str>>,
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
    /// `max` changes. Changes of other tables are passed over (the
    /// position moves past them). Cancel-safe.
    pub async fn next(&mut self, max: usize) -> Next {
        loop {
            let position = self.position();
            match self.feed.read(position, max, self.table.as_deref()) {
                Err(gone) => return Next::Gone(gone),
                Ok(read) if !read.batches.is_empty() => return Next::Batches(read),
                Ok(read) => self.advance(read.upto),
            }
            let signal = *self.signal.borrow_and_update();
            if signal.last > self.position() {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Row {
        Row::from_cells(cells.iter().copied())
    }

    fn inserted_in(table: &str, first: u64, n: usize) -> Batch {
        Batch {
            first,
            table: Arc::from(table),
            columns: Arc::new(vec!["id".into()]),
            id_col: Some(0),
            what: What::Inserted((0..n).map(|i| row(&[&i.to_string()])).collect()),
        }
    }

    fn inserted(first: u64, n: usize) -> Batch {
        inserted_in("t", first, n)
    }

    fn retention(keep: usize) -> Retention {
        Retention {
            keep,
            memory: 1 << 20,
        }
    }

    fn seqs(read: &Read, since: u64) -> Vec<u64> {
        read.batches
            .iter()
            .flat_map(|b| b.after(since).map(|c| c.seq).collect::<Vec<_>>())
            .collect()
    }

    #[test]
    fn numbers_follow_and_old_positions_are_gone() {
        let feed = Feed::new(retention(3), 10);
        assert_eq!(feed.start(), 10);
        assert!(feed.check(10, None).is_ok());
        assert!(feed.check(9, None).is_err(), "before the restart");
        assert!(feed.check(9, Some("t")).is_err(), "whatever the table");
        feed.publish([inserted(11, 2), inserted(13, 2), inserted(15, 1)]);
        assert_eq!(feed.last_seq(), 15);
        // 13..15 are the last three: 11 and 12 may go.
        assert_eq!(feed.oldest_seq(), 13);
        assert_eq!(
            feed.check(11, None),
            Err(Gone {
                since: 11,
                oldest: 13,
                last: 15
            })
        );
        let read = feed.read(13, 10, None).unwrap();
        assert_eq!(seqs(&read, 13), [14, 15]);
        assert_eq!(read.upto, 15);
        // A batch published again is skipped.
        feed.publish([inserted(15, 1)]);
        assert_eq!(feed.last_seq(), 15);
    }

    #[test]
    fn a_tables_subscriber_loses_only_its_tables_changes() {
        let feed = Feed::new(retention(1), 0);
        feed.publish([inserted_in("a", 1, 1), inserted_in("b", 2, 1)]);
        feed.publish([inserted_in("b", 3, 1)]);
        assert_eq!(feed.oldest_seq(), 3);
        // a's change 1 went: a subscriber of a at 0 lost it, one of b did not.
        assert!(feed.check(0, Some("a")).is_err());
        assert!(feed.check(1, Some("a")).is_ok());
        assert_eq!(
            feed.check(0, Some("b")),
            Err(Gone {
                since: 0,
                oldest: 3,
                last: 3
            })
        );
        assert!(feed.check(2, Some("b")).is_ok());
        // Reading a table passes over the others' batches.
        let read = feed.read(2, 10, Some("a")).unwrap();
        assert!(read.batches.is_empty());
        assert_eq!(read.upto, 3);
    }

    #[test]
    fn a_lagging_subscriber_keeps_what_it_needs_within_memory() {
        let feed = Feed::new(retention(1), 0);
        let sub = feed.subscribe(0, None).unwrap();
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
        // A subscriber of another table holds nothing back.
        let other = feed.subscribe(7, Some("quiet")).unwrap();
        feed.publish([inserted(8, 1)]);
        assert_eq!(feed.oldest_seq(), 8);
        assert!(feed.check(other.position(), Some("quiet")).is_ok());
        // Over the memory bound, a lagging subscriber loses its place.
        let small = Feed::new(
            Retention {
                keep: 1,
                memory: 100,
            },
            0,
        );
        let sub = small.subscribe(0, None).unwrap();
        for first in 1..=5 {
            small.publish([inserted(first, 1)]);
        }
        assert!(small.check(sub.position(), None).is_err());
    }

    #[tokio::test]
    async fn subscribers_wake_for_their_changes_and_end_on_close() {
        let feed = Feed::new(retention(100), 0);
        let mut sub = feed.subscribe(0, Some("t")).unwrap();
        let waiter = tokio::spawn(async move {
            let Next::Batches(read) = sub.next(10).await else {
                panic!("expected changes");
            };
            sub.advance(read.upto);
            let end = sub.next(10).await;
            (seqs(&read, 0), matches!(end, Next::Closed), sub.position())
        });
        tokio::task::yield_now().await;
        feed.publish([inserted_in("other", 1, 2)]);
        feed.publish([inserted(3, 3)]);
        feed.publish([inserted_in("other", 6, 1)]);
        feed.close();
        let (seqs, closed, position) = waiter.await.unwrap();
        assert_eq!(seqs, [3, 4, 5], "only its table's changes");
        assert!(closed);
        assert_eq!(position, 6, "and past the others'");
    }
}
