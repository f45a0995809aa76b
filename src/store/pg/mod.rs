//! The PostgreSQL backend: the same tables, kept in a PostgreSQL database
//! that any number of csvd instances serve at once.
//!
//! A csvd table is one row of `csvd_tables` (its columns, version and
//! counters) and its rows are rows of `csvd_rows` (`schema.sql`). Every
//! value travels as a bound parameter; column names are data, never SQL.
//! A write is one transaction that first locks its table's row, so writes
//! to a table are serialised across every instance: preconditions, ids and
//! growing columns are decided under that lock, and a write is answered
//! only after its transaction has committed. Reads run in one
//! repeatable-read transaction, so the head, the total and the rows of an
//! answer come from one version of the table.
//!
//! Queries are pushed down to SQL where SQL gives exactly the file store's
//! answer (`select`); the rest is evaluated here on the rows SQL narrowed.
//!
//! Every write also records its changes, numbered in one order for every
//! instance, and every instance follows them into its change feed (`feed`).

mod feed;
mod schemas;
mod select;
mod writes;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;

use crate::feed::{Feed, Retention};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use super::{
    validate_table_name, Counter, Error, Expect, Fields, Records, Result, Row, RowView, SchemaView,
    Selected, Store, StoreStats, TableInfo, Written,
};
use crate::store::schema::Types;

const SCHEMA: &str = include_str!("schema.sql");
/// The advisory lock instances take while they set the schema up.
const SCHEMA_LOCK: i64 = 0x6373_7664; // "csvd"

/// How the backend reaches its database.
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// Connections kept open to the database (shared by every request).
    pub connections: usize,
    /// How long a request waits for a connection, or for one to be made,
    /// before it is answered 503.
    pub wait: Duration,
    /// How long one request's work in the database may take before it is
    /// answered 503 (a database that stopped answering without closing its
    /// connections).
    pub deadline: Duration,
    /// Refuse every write.
    pub read_only: bool,
    /// How much of the change feed is kept.
    pub changes: Retention,
}

impl Default for PgOptions {
    fn default() -> PgOptions {
        PgOptions {
            connections: 16,
            wait: Duration::from_secs(5),
            deadline: Duration::from_secs(30),
            read_only: false,
            changes: Retention::default(),
        }
    }
}

/// Tables kept in a PostgreSQL database.
pub struct PgStore {
    shared: Arc<Shared>,
    /// Inserts waiting to be written, by table.
    queues: Mutex<HashMap<String, Arc<Mutex<Queue>>>>,
    /// Every instance's changes, once committed.
    feed: Arc<Feed>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.follower.stop.send_replace(true);
    }
}

/// What a store's requests, and the tasks that write batches, share.
pub struct Shared {
    pool: Pool,
    id_column: String,
    /// Mixed into every table version (see `schema.sql`).
    epoch: u64,
    read_only: bool,
    deadline: Duration,
    /// Connections kept aside for single-statement reads (a row by id),
    /// shared by every request: their queries are pipelined, so many
    /// lookups cost one round of system calls and wake-ups instead of one
    /// each.
    readers: Vec<tokio::sync::RwLock<Option<Arc<deadpool_postgres::Object>>>>,
    next_reader: AtomicU64,
    transactions: AtomicU64,
    failures: AtomicU64,
    /// Inserts written in a batch with others, and the batches.
    batched: AtomicU64,
    batches: AtomicU64,
    /// The change feed and its listener.
    follower: Arc<feed::Follower>,
    /// Each table's declared datatypes as last read, for the change feed.
    types: Mutex<HashMap<String, Types>>,
}

impl std::ops::Deref for PgStore {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.shared
    }
}

/// One table's inserts without preconditions, waiting for the task that
/// writes them: writes to one table are serialised by its lock anyway, so
/// those that arrive while one is being written go together in the next
/// transaction — one lock and one commit for all of them (group commit).
#[derive(Default)]
struct Queue {
    waiting: Vec<(Records, oneshot::Sender<Result<Written>>)>,
    /// Whether a task is writing this table's batches.
    writing: bool,
}

/// Connections shared by single-statement reads.
const READERS: usize = 2;

/// Records in one batch, at most: a batch's transaction stays short.
const BATCH_ROWS: usize = 50_000;

/// Whether a data source names a PostgreSQL database rather than a
/// directory.
pub fn is_url(source: &str) -> bool {
    source.starts_with("postgres://") || source.starts_with("postgresql://")
}

impl PgStore {
    /// Connects to the database at `url` and sets up the schema; fails if
    /// the database cannot be reached now.
    pub async fn open(
        url: &str,
        id_column: &str,
        options: PgOptions,
    ) -> anyhow::Result<Arc<PgStore>> {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| anyhow::anyhow!("{} is not a PostgreSQL URL: {e}", redact(url)))?;
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            anyhow::bail!(
                "sslmode=require: this build talks to PostgreSQL without TLS; reach it over a \
                 private network or a local socket, or drop sslmode"
            );
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.wait);
        }
        // A database that went away without closing its connections is
        // noticed by the kernel within about ten seconds.
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(5))
            .keepalives_interval(Duration::from_secs(2))
            .keepalives_retries(3);
        if config.get_application_name().is_none() {
            config.application_name("csvd");
        }
        let listener_config = config.clone();
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.connections.max(1))
            .wait_timeout(Some(options.wait))
            .create_timeout(Some(options.wait))
            .recycle_timeout(Some(options.wait))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| anyhow::anyhow!("cannot set up the connection pool: {e}"))?;
        let mut client = pool
            .get()
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to {}: {}", redact(url), pool_error(e)))?;
        let encoding: String = client
            .query_one("SHOW server_encoding", &[])
            .await?
            .try_get(0)?;
        if encoding != "UTF8" {
            anyhow::bail!(
                "the database's encoding is {encoding}: csvd keeps text as UTF-8 and needs a \
                 UTF8 database (createdb -E UTF8 -T template0 …)"
            );
        }
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .await?;
        tx.batch_execute(SCHEMA).await.map_err(|e| {
            let hint = if e.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
            {
                "; csvd creates its tables (csvd_tables, csvd_rows, …) at start: give its user \
                 CREATE on the schema, or the database (createdb -O USER)"
            } else {
                ""
            };
            anyhow::anyhow!(
                "cannot set up csvd's tables in the database: {}{hint}",
                describe(&e)
            )
        })?;
        let epoch: String = tx
            .query_one(
                &tx.prepare_cached("SELECT value FROM csvd_meta WHERE key = 'epoch'")
                    .await
                    .map_err(db)?,
                &[],
            )
            .await?
            .try_get(0)?;
        tx.commit().await?;
        let feed = feed::load(&client, options.changes)
            .await
            .map_err(|e| anyhow::anyhow!("cannot read the change feed: {e}"))?;
        drop(client);
        let follower = Arc::new(feed::Follower {
            published: tokio::sync::watch::Sender::new(feed.last_seq()),
            feed: feed.clone(),
            stop: tokio::sync::watch::Sender::new(false),
            poke: tokio::sync::Notify::new(),
            publishing: Mutex::new(()),
        });
        tokio::spawn(feed::listen(
            listener_config,
            follower.clone(),
            options.changes,
        ));
        Ok(Arc::new(PgStore {
            shared: Arc::new(Shared {
                pool,
                id_column: id_column.to_string(),
                epoch: xxhash_rust::xxh3::xxh3_64(epoch.as_bytes()),
                read_only: options.read_only,
                deadline: options.deadline,
                // Kept aside only where the pool has room to spare.
                readers: (0..READERS)
                    .filter(|_| options.connections >= 4 * READERS)
                    .map(|_| tokio::sync::RwLock::new(None))
                    .collect(),
                next_reader: AtomicU64::new(0),
                transactions: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                batched: AtomicU64::new(0),
                batches: AtomicU64::new(0),
                follower,
                types: Mutex::default(),
            }),
            queues: Mutex::default(),
            feed,
        }))
    }

    /// An insert without preconditions: queued for its table's writing
    /// task, which is started if none runs.
    async fn queue_insert(&self, table: &str, records: Records) -> Result<Written> {
        let queue = self
            .queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(table.to_string())
            .or_default()
            .clone();
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
            q.waiting.push((records, reply));
            !std::mem::replace(&mut q.writing, true)
        };
        if start {
            // A task of its own: the batch is written even if the request
            // that started it goes away.
            tokio::spawn(write_batches(self.shared.clone(), table.to_string(), queue));
        }
        answer.await.unwrap_or_else(|_| {
            Err(Error::OutcomeUnknown(
                "the write was cut short, so it may or may not have been applied; read it \
                     back before you repeat it"
                    .into(),
            ))
        })
    }
}

/// Writes a table's queued inserts, a batch at a time, until none waits.
async fn write_batches(shared: Arc<Shared>, table: String, queue: Arc<Mutex<Queue>>) {
    // Should this task ever end otherwise than by finding the queue empty
    // (a panic), the inserts waiting are refused and the next insert
    // starts a new task, instead of every later insert waiting for ever.
    struct Ending(Arc<Mutex<Queue>>, bool);
    impl Drop for Ending {
        fn drop(&mut self) {
            if !self.1 {
                return;
            }
            let mut q = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            q.writing = false;
            for (_, reply) in q.waiting.drain(..) {
                let _ = reply.send(Err(Error::Unavailable(
                    "the writer of this table stopped; nothing of this insert was written".into(),
                )));
            }
        }
    }
    let mut ending = Ending(queue.clone(), true);
    loop {
        let batch = {
            let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
            if q.waiting.is_empty() {
                // Ended as it should, under the lock: a writer started
                // from now on is another task's.
                q.writing = false;
                ending.1 = false;
                return;
            }
            let mut rows = 0;
            let take = q
                .waiting
                .iter()
                .take_while(|(records, _)| {
                    rows += records.len();
                    rows <= BATCH_ROWS
                })
                .count()
                .max(1);
            q.waiting.drain(..take).collect::<Vec<_>>()
        };
        let (records, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        shared.batches.fetch_add(1, Ordering::Relaxed);
        shared
            .batched
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        let (answers, committed) = writes::insert_batch(&shared, &table, records).await;
        // Answered once the changes are in this instance's feed; meanwhile
        // the next batch is written.
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Some((changes, last)) = committed {
                writes::seen(&shared, changes, last).await;
            }
            for (reply, answer) in replies.into_iter().zip(answers) {
                let _ = reply.send(answer);
            }
        });
    }
}

impl Shared {
    /// Runs one request's work in the database within the deadline. A
    /// read past it is refused; a write past it may have been applied (its
    /// commit may be what did not answer), and the answer says so.
    async fn within<T>(
        &self,
        write: bool,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.deadline, work).await {
            Ok(result) => result,
            Err(_) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                let secs = self.deadline.as_secs_f64();
                Err(if write {
                    Error::OutcomeUnknown(format!(
                        "the database did not answer within {secs} s, so the write may or may not \
                         have been applied; read it back before you repeat it"
                    ))
                } else {
                    Error::Unavailable(format!("the database did not answer within {secs} s"))
                })
            }
        }
    }

    /// A connection for one statement that reads, shared with other
    /// requests; taken from the pool once, and again when it was lost.
    async fn reader(&self) -> Result<Arc<deadpool_postgres::Object>> {
        if self.readers.is_empty() {
            return Ok(Arc::new(self.client().await?));
        }
        let at = self.next_reader.fetch_add(1, Ordering::Relaxed) as usize % self.readers.len();
        let slot = &self.readers[at];
        if let Some(client) = slot.read().await.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        let mut held = slot.write().await;
        if let Some(client) = held.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        *held = None;
        let client = Arc::new(self.client().await?);
        *held = Some(client.clone());
        Ok(client)
    }

    /// A connection from the pool, or 503 when none can be had in time.
    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.transactions.fetch_add(1, Ordering::Relaxed);
        self.pool.get().await.map_err(|e| {
            self.failures.fetch_add(1, Ordering::Relaxed);
            Error::Unavailable(format!("the database cannot be reached: {}", pool_error(e)))
        })
    }

    /// The version clients see of a table at `raw` (a value of
    /// `csvd_versions`): never the same for two writes, across instances,
    /// restarts and databases made anew.
    fn version(&self, raw: i64) -> u64 {
        version_of(self.epoch, raw)
    }

    fn writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::Unavailable(
                "this server is read-only (--read-only)".into(),
            ));
        }
        Ok(())
    }
}

/// A table version from the database's epoch and a value of `csvd_versions`.
fn version_of(epoch: u64, raw: i64) -> u64 {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&epoch.to_le_bytes());
    bytes[8..].copy_from_slice(&raw.to_le_bytes());
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

/// The parts of a URL fit to print (without its password).
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((user, host)) => {
                let user = user.split(':').next().unwrap_or_default();
                format!("{scheme}://{user}@{host}")
            }
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

fn pool_error(err: deadpool_postgres::PoolError) -> String {
    use deadpool_postgres::PoolError;
    match err {
        PoolError::Timeout(_) => "no connection could be had in time".to_string(),
        PoolError::Backend(err) => describe(&err),
        other => other.to_string(),
    }
}

/// A database error in words: the server's own message when it sent one.
fn describe(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(err) {
            Some(source) => format!("{err}: {source}"),
            None => err.to_string(),
        },
    }
}

/// What a failed statement means for the client: the database being away
/// (or shutting down, or out of connections) is 503, to be retried; any
/// other refusal is a storage failure.
fn db(err: tokio_postgres::Error) -> Error {
    let away = match err.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            // Connection exceptions, shutdown, too many connections,
            // serialisation failures and deadlocks: try again later.
            code.starts_with("08")
                || code.starts_with("57P")
                || code == "53300"
                || code == "40001"
                || code == "40P01"
        }
        // Lost or refused connections; not a column of an unexpected type
        // (someone changed csvd's tables), which is a storage failure.
        None => {
            err.is_closed()
                || std::error::Error::source(&err).is_some_and(|s| s.is::<std::io::Error>())
                || err.to_string().starts_with("error connecting")
                || err.to_string().contains("timeout")
        }
    };
    if away {
        Error::Unavailable(format!(
            "the database cannot be reached: {}",
            describe(&err)
        ))
    } else {
        Error::Io(std::io::Error::other(format!(
            "the database refused: {}",
            describe(&err)
        )))
    }
}

/// A commit that failed midway: when the connection was lost, the write
/// may have been applied, and the client is told so.
fn commit_failed(err: tokio_postgres::Error) -> Error {
    if err.as_db_error().is_none() {
        Error::OutcomeUnknown(format!(
            "the connection to the database was lost while the write was committed, so it may \
             or may not have been applied; read it back before you repeat it ({})",
            describe(&err)
        ))
    } else {
        db(err)
    }
}

/// A row of `csvd_tables`.
#[derive(Clone, Debug)]
struct Meta {
    key: i64,
    columns: Vec<String>,
    id_col: usize,
    version: i64,
    modified: SystemTime,
    row_count: i64,
    /// Kept in a `bigint` as its bits: ids count up to 2^64 - 1.
    max_int_id: u64,
    next_seq: i64,
}

const META_COLUMNS: &str =
    "key, columns, id_col, version, modified, row_count, max_int_id, next_seq";

impl Meta {
    fn from_row(row: &tokio_postgres::Row) -> Result<Meta> {
        let id_col: i32 = row.try_get(2).map_err(db)?;
        let columns: Vec<String> = row.try_get(1).map_err(db)?;
        // Only a hand edit of csvd's tables could break this.
        let id_col = usize::try_from(id_col)
            .ok()
            .filter(|&at| at < columns.len())
            .ok_or_else(|| {
                Error::Io(std::io::Error::other(format!(
                    "csvd_tables names id column {id_col} of {} columns: the table's row was \
                     changed by hand",
                    columns.len()
                )))
            })?;
        Ok(Meta {
            key: row.try_get(0).map_err(db)?,
            columns,
            id_col,
            version: row.try_get(3).map_err(db)?,
            modified: row.try_get(4).map_err(db)?,
            row_count: row.try_get(5).map_err(db)?,
            max_int_id: row.try_get::<_, i64>(6).map_err(db)? as u64,
            next_seq: row.try_get(7).map_err(db)?,
        })
    }
}

/// A row's cells from column `at` of a result (`cells text[]`).
fn row_of(row: &tokio_postgres::Row, at: usize) -> Result<Row> {
    let cells: Cells = row.try_get(at).map_err(db)?;
    Ok(cells.0)
}

/// A cell as PostgreSQL keeps it. Its `text` cannot hold a NUL, so NUL is
/// stored as the bytes 01 01 and a byte 01 as 01 02: a code that keeps
/// every cell apart and keeps their byte order, so equality and
/// comparisons in SQL (and `COLLATE "C"` sorting) give what they give on
/// the cells themselves.
pub(super) fn stored(cell: &str) -> std::borrow::Cow<'_, str> {
    if !cell.bytes().any(|b| b <= 1) {
        return std::borrow::Cow::Borrowed(cell);
    }
    let mut out = String::with_capacity(cell.len() + 4);
    for c in cell.chars() {
        match c {
            '\0' => out.push_str("\u{1}\u{1}"),
            '\u{1}' => out.push_str("\u{1}\u{2}"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A cell as it was given, from its stored form (see [`stored`]).
fn unstored(cell: &str) -> std::borrow::Cow<'_, str> {
    if !cell.contains('\u{1}') {
        return std::borrow::Cow::Borrowed(cell);
    }
    let mut out = String::with_capacity(cell.len());
    let mut chars = cell.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\u{1}') {
            (_, true) => match chars.next() {
                Some('\u{1}') => out.push('\0'),
                _ => out.push('\u{1}'),
            },
            (c, false) => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A `text[]` read straight into a [`Row`] from PostgreSQL's binary array
/// format, with no list of cells in between: rows are read by the million.
struct Cells(Row);

/// The elements of a one-dimensional binary `text[]`, checked already.
#[derive(Clone)]
struct Elements<'a> {
    raw: &'a [u8],
    left: usize,
}

impl<'a> Iterator for Elements<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let (len, rest) = self.raw.split_first_chunk::<4>()?;
        let len = i32::from_be_bytes(*len);
        // NULL (-1) reads as an empty cell.
        let len = usize::try_from(len).unwrap_or(0);
        let (text, rest) = rest.split_at_checked(len)?;
        self.raw = rest;
        std::str::from_utf8(text).ok()
    }
}

impl<'a> tokio_postgres::types::FromSql<'a> for Cells {
    fn from_sql(
        _: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> std::result::Result<Cells, Box<dyn std::error::Error + Sync + Send>> {
        let word = |at: usize| -> Option<i32> {
            Some(i32::from_be_bytes(raw.get(at..at + 4)?.try_into().ok()?))
        };
        let dims = word(0).ok_or("a short array")?;
        let (left, start) = match dims {
            0 => (0, 12),
            1 => (usize::try_from(word(12).ok_or("a short array")?)?, 20),
            _ => return Err("cells are a one-dimensional array".into()),
        };
        let elements = Elements {
            raw: raw.get(start..).ok_or("a short array")?,
            left,
        };
        // Every element is read once to check it, so the row is never cut.
        let mut coded = false;
        let mut count = 0;
        for cell in elements.clone() {
            coded |= cell.contains('\u{1}');
            count += 1;
        }
        if count != left {
            return Err("a damaged array of cells".into());
        }
        if coded {
            return Ok(Cells(Row::from_cells(elements.map(unstored))));
        }
        Ok(Cells(Row::from_cells_twice(elements)))
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        *ty == tokio_postgres::types::Type::TEXT_ARRAY
    }
}

#[async_trait::async_trait]
impl Store for PgStore {
    fn feed(&self) -> &Arc<Feed> {
        &self.feed
    }

    async fn tables(&self) -> Result<Vec<TableInfo>> {
        self.within(false, async {
            let client = self.client().await?;
            let rows = client
                .query(
                    &client
                        .prepare_cached(
                            "SELECT name, row_count, columns, modified, version FROM csvd_tables \
                 ORDER BY name COLLATE \"C\"",
                        )
                        .await
                        .map_err(db)?,
                    &[],
                )
                .await
                .map_err(db)?;
            rows.iter()
                .map(|row| {
                    let count: i64 = row.try_get(1).map_err(db)?;
                    Ok(TableInfo {
                        name: row.try_get(0).map_err(db)?,
                        rows: usize::try_from(count).unwrap_or(0),
                        columns: row.try_get(2).map_err(db)?,
                        modified: row.try_get(3).map_err(db)?,
                        version: self.version(row.try_get(4).map_err(db)?),
                        error: None,
                        notice: None,
                    })
                })
                .collect()
        })
        .await
    }

    async fn select(&self, table: &str, query: &str) -> Result<Selected> {
        validate_table_name(table)?;
        self.within(false, select::select(self, table, query)).await
    }

    async fn row(&self, table: &str, id: &str) -> Result<RowView> {
        self.within(false, async {
            validate_table_name(table)?;
            let client = self.reader().await?;
            let found = client
                .query_opt(
                    &client
                        .prepare_cached(
                            "SELECT t.columns, t.id_col, t.modified, r.cells FROM csvd_tables t \
                 LEFT JOIN csvd_rows r ON r.tab = t.key AND r.id = $2 WHERE t.name = $1",
                        )
                        .await
                        .map_err(db)?,
                    &[&table, &id],
                )
                .await
                .map_err(db)?
                .ok_or_else(|| Error::NoTable(table.to_string()))?;
            let cells: Option<Cells> = found.try_get(3).map_err(db)?;
            let cells = cells.ok_or_else(|| Error::NoRow(id.to_string()))?;
            let columns: Vec<String> = found.try_get(0).map_err(db)?;
            let id_col: i32 = found.try_get(1).map_err(db)?;
            let row = cells.0;
            let id_col = usize::try_from(id_col)
                .ok()
                .filter(|&at| at < columns.len());
            Ok(RowView {
                version: super::table::row_version(&columns, &row),
                columns: Arc::new(columns),
                id_col,
                row,
                modified: found.try_get(2).map_err(db)?,
            })
        })
        .await
    }

    async fn insert(&self, table: &str, records: Records, expect: &Expect) -> Result<Written> {
        validate_table_name(table)?;
        self.writable()?;
        if expect.if_match.is_none() && expect.if_none_match.is_none() {
            return self.within(true, self.queue_insert(table, records)).await;
        }
        self.within(true, writes::insert(self, table, records, expect))
            .await
    }

    async fn put_row(
        &self,
        table: &str,
        id: &str,
        record: Fields,
        expect: &Expect,
    ) -> Result<Written> {
        validate_table_name(table)?;
        self.writable()?;
        self.within(
            true,
            writes::put_row(self, table, id, record, expect, false),
        )
        .await
    }

    async fn patch_row(
        &self,
        table: &str,
        id: &str,
        record: Fields,
        expect: &Expect,
    ) -> Result<Written> {
        validate_table_name(table)?;
        self.writable()?;
        self.within(true, writes::put_row(self, table, id, record, expect, true))
            .await
    }

    async fn delete_row(&self, table: &str, id: &str, expect: &Expect) -> Result<()> {
        validate_table_name(table)?;
        self.writable()?;
        self.within(true, writes::delete_row(self, table, id, expect))
            .await
    }

    async fn replace_table(
        &self,
        table: &str,
        records: Records,
        expect: &Expect,
    ) -> Result<(TableInfo, bool)> {
        validate_table_name(table)?;
        self.writable()?;
        self.within(true, writes::replace_table(self, table, records, expect))
            .await
    }

    async fn delete_table(&self, table: &str, expect: &Expect) -> Result<()> {
        validate_table_name(table)?;
        self.writable()?;
        self.within(true, writes::delete_table(self, table, expect))
            .await
    }

    async fn types(&self, table: &str) -> Types {
        if validate_table_name(table).is_err() {
            return Types::default();
        }
        match self.within(false, self.types_of(table)).await {
            Ok(types) => types,
            Err(err) => {
                tracing::warn!(table, "cannot read the declared columns: {err}");
                self.types_known(table)
            }
        }
    }

    fn types_now(&self, table: &str) -> Types {
        self.types_known(table)
    }

    async fn schema(&self, table: &str) -> Result<SchemaView> {
        validate_table_name(table)?;
        self.within(false, self.view(table)).await
    }

    async fn put_schema(
        &self,
        table: &str,
        doc: serde_json::Value,
        expect: &Expect,
    ) -> Result<SchemaView> {
        validate_table_name(table)?;
        self.writable()?;
        self.within(true, self.declare(table, doc, expect)).await
    }

    async fn delete_schema(&self, table: &str, expect: &Expect) -> Result<()> {
        validate_table_name(table)?;
        self.writable()?;
        self.within(true, self.undeclare(table, expect)).await
    }

    async fn record_json(&self, table: &str, columns: &[String]) -> Result<()> {
        validate_table_name(table)?;
        self.writable()?;
        self.within(true, self.note_json(table, columns)).await
    }

    async fn singular(&self, table: &str) -> Result<Option<super::Singular>> {
        validate_table_name(table)?;
        self.within(false, async {
            let client = self.reader().await?;
            let found = client
                .query_opt(
                    &client
                        .prepare_cached("SELECT own_id FROM csvd_singular WHERE name = $1")
                        .await
                        .map_err(db)?,
                    &[&table],
                )
                .await
                .map_err(db)?;
            found
                .map(|row| {
                    Ok(super::Singular {
                        own_id: row.try_get(0).map_err(db)?,
                    })
                })
                .transpose()
        })
        .await
    }

    async fn singulars(&self) -> Result<Vec<(String, super::Singular)>> {
        self.within(false, async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT name, own_id FROM csvd_singular ORDER BY name COLLATE \"C\"",
                    &[],
                )
                .await
                .map_err(db)?;
            rows.iter()
                .map(|row| {
                    Ok((
                        row.try_get(0).map_err(db)?,
                        super::Singular {
                            own_id: row.try_get(1).map_err(db)?,
                        },
                    ))
                })
                .collect()
        })
        .await
    }

    async fn set_singular(&self, table: &str, singular: Option<super::Singular>) -> Result<()> {
        validate_table_name(table)?;
        self.writable()?;
        self.within(true, async {
            let client = self.client().await?;
            match singular {
                Some(mark) => client
                    .execute(
                        "INSERT INTO csvd_singular (name, own_id) VALUES ($1, $2) \
                         ON CONFLICT (name) DO UPDATE SET own_id = EXCLUDED.own_id",
                        &[&table, &mark.own_id],
                    )
                    .await
                    .map_err(db)?,
                None => client
                    .execute("DELETE FROM csvd_singular WHERE name = $1", &[&table])
                    .await
                    .map_err(db)?,
            };
            Ok(())
        })
        .await
    }

    async fn flush(&self) -> Result<()> {
        // Every acknowledged write is committed already; the feed's
        // listener stops (the server is shutting down).
        self.follower.stop.send_replace(true);
        Ok(())
    }

    async fn stats(&self) -> StoreStats {
        StoreStats {
            counters: vec![
                Counter {
                    name: "postgres_transactions_total",
                    help: "Connections taken from the pool for a request's work.",
                    value: self.transactions.load(Ordering::Relaxed),
                },
                Counter {
                    name: "postgres_batched_inserts_total",
                    help: "Inserts without a precondition, written by their table's batches.",
                    value: self.batched.load(Ordering::Relaxed),
                },
                Counter {
                    name: "postgres_insert_batches_total",
                    help: "Transactions that wrote a batch of inserts.",
                    value: self.batches.load(Ordering::Relaxed),
                },
                Counter {
                    name: "postgres_unreachable_total",
                    help:
                        "Requests answered 503 because no connection to the database could be had.",
                    value: self.failures.load(Ordering::Relaxed),
                },
            ],
        }
    }
}
