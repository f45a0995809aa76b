//! The writes: each one transaction that locks its table's row first, so
//! that its precondition, the ids it gives and the columns it adds are
//! decided with no other write to the table in between, on any instance.
//! The rules are the file store's (`store::table::rules`).

use std::collections::HashSet;
use std::sync::Arc;

use deadpool_postgres::Transaction;
use futures_util::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use super::feed::{self, batch};
use super::schemas::declared;
use super::{commit_failed, db, row_of, stored, Meta, Shared, META_COLUMNS};
use crate::feed::{Batch, Op as FeedOp, RowChange, What};
use crate::store::table::rules::{
    check_body_id, int_id, validate_columns, validate_fields, validate_id, without,
};
use crate::store::table::{row_version, Table};
use crate::store::{Error, Expect, Fields, Records, Result, Row, TableInfo, Written};

/// A write's transaction: read committed whatever the database's default
/// (each write locks its table's row first, which is what serialises
/// writes; a stricter default would only add refusals to retry).
pub(super) async fn begin(
    client: &mut deadpool_postgres::Object,
) -> std::result::Result<Transaction<'_>, tokio_postgres::Error> {
    client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::ReadCommitted)
        .start()
        .await
}

/// Runs a statement of a write's transaction, prepared once per connection.
async fn exec(tx: &Transaction<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
    let statement = tx.prepare_cached(sql).await.map_err(db)?;
    tx.execute(&statement, params).await.map_err(db)
}

/// The one row a statement of a write's transaction answers.
async fn one(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<tokio_postgres::Row> {
    let statement = tx.prepare_cached(sql).await.map_err(db)?;
    tx.query_one(&statement, params).await.map_err(db)
}

/// The row, if any, a statement of a write's transaction answers.
async fn maybe(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<tokio_postgres::Row>> {
    let statement = tx.prepare_cached(sql).await.map_err(db)?;
    tx.query_opt(&statement, params).await.map_err(db)
}

/// How long a write's answer waits, at most, for its changes to reach this
/// instance's feed (they are committed already: only the feed lags).
const FEED_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// Ends a write's transaction whose changes [`touch`] recorded (numbered
/// up to `last`): commits, then returns once this instance's feed has
/// them, so that a client reads its own write in the feed of the instance
/// it wrote through.
async fn commit(store: &Shared, tx: Transaction<'_>, changes: Batch, last: u64) -> Result<()> {
    tx.commit().await.map_err(commit_failed)?;
    seen(store, changes, last).await;
    Ok(())
}

/// Returns once this instance's feed has a write's committed `changes`,
/// numbered up to `last` (see [`commit`]).
pub(super) async fn seen(store: &Shared, changes: Batch, last: u64) {
    store.follower.committed(changes, last, FEED_PATIENCE).await;
}

/// Rows written with one `INSERT` each below this; by `COPY` from it on.
const COPY_FROM_ROWS: usize = 8;

/// Locks a table's row for the transaction. With `create`, a table that
/// does not exist is made (empty, with only its id column) and reported
/// as created; the transaction's end undoes that if the write fails.
pub(super) async fn lock(
    tx: &Transaction<'_>,
    table: &str,
    create: Option<&str>,
) -> Result<Option<(Meta, bool)>> {
    let select = format!("SELECT {META_COLUMNS} FROM csvd_tables WHERE name = $1 FOR UPDATE");
    if let Some(row) = maybe(tx, &select, &[&table]).await? {
        return Ok(Some((Meta::from_row(&row)?, false)));
    }
    let Some(id_column) = create else {
        return Ok(None);
    };
    let columns = vec![id_column.to_string()];
    // Two instances may make the same table at once: the second waits for
    // the first, then finds its row.
    const MAKE: &str = "INSERT INTO csvd_tables (name, key, columns, id_col, version, \
        modified, row_count, max_int_id, next_seq) \
        VALUES ($1, nextval('csvd_keys'), $2, 0, 0, now(), 0, 0, 1) \
        ON CONFLICT (name) DO NOTHING";
    let made = exec(tx, MAKE, &[&table, &columns]).await?;
    let row = one(tx, &select, &[&table]).await?;
    Ok(Some((Meta::from_row(&row)?, made == 1)))
}

/// The table's version as a precondition sees it: none for a table this
/// write is making.
fn current(store: &Shared, meta: &Meta, created: bool) -> Option<u64> {
    (!created).then(|| store.version(meta.version))
}

/// What [`touch`] answers: the version and time clients see, and the
/// last sequence number of the write's changes (0: none).
struct Touched {
    version: u64,
    modified: std::time::SystemTime,
    last: u64,
}

/// Saves the table's row after a write (new columns, a new version, the
/// counters) and records the write's changes for the feed, in one
/// statement: the write's last before its commit, so the feed's counter is
/// locked for as short a time as can be (see `feed.rs`).
async fn touch(
    store: &Shared,
    tx: &Transaction<'_>,
    meta: &Meta,
    changes: &Batch,
) -> Result<Touched> {
    let id_col = i32::try_from(meta.id_col).unwrap_or(i32::MAX);
    const TOUCH: &str = "UPDATE csvd_tables SET columns = $2, id_col = $3, row_count = $4, \
        max_int_id = $5, next_seq = $6, version = nextval('csvd_versions'), modified = now() \
        WHERE key = $1 RETURNING version, modified";
    let n = i64::try_from(changes.len()).unwrap_or(i64::MAX);
    let max_int_id = meta.max_int_id as i64;
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &meta.key,
        &meta.columns,
        &id_col,
        &meta.row_count,
        &max_int_id,
        &meta.next_seq,
    ];
    let payload;
    let sql = if n == 0 {
        TOUCH
    } else {
        payload = feed::encode(changes);
        params.push(&n);
        params.push(&payload);
        feed::TOUCH_AND_RECORD
    };
    let row = one(tx, sql, &params).await?;
    let last = if n == 0 {
        0
    } else {
        row.try_get::<_, i64>(2).map_err(db)?.max(0) as u64
    };
    Ok(Touched {
        version: store.version(row.try_get(0).map_err(db)?),
        modified: row.try_get(1).map_err(db)?,
        last,
    })
}

/// Where a column is, added at the end when new.
fn column_index(columns: &mut Vec<String>, name: &str) -> usize {
    match columns.iter().position(|c| c == name) {
        Some(at) => at,
        None => {
            columns.push(name.to_string());
            columns.len() - 1
        }
    }
}

fn note_id(meta: &mut Meta, id: &str) {
    if let Some(n) = int_id(id) {
        meta.max_int_id = meta.max_int_id.max(n);
    }
}

/// What csvd computes of each cell for SQL to compare and sort with (the
/// `nums` and `sorts` columns of `schema.sql`): by the very functions the
/// file store's queries use, so both backends agree to the bit.
fn numbers(cells: &[&str]) -> (Vec<Option<f64>>, Vec<Option<f64>>) {
    let nums = cells
        .iter()
        .map(|c| crate::query::typed_number(c))
        .collect();
    let sorts = cells.iter().map(|c| crate::query::sort_number(c)).collect();
    (nums, sorts)
}

/// Writes new rows at the end of the table's order.
async fn append(tx: &Transaction<'_>, meta: &mut Meta, rows: &[(String, Row)]) -> Result<()> {
    let width = meta.columns.len();
    if rows.len() < COPY_FROM_ROWS {
        for (id, row) in rows {
            let given: Vec<&str> = row.cells(width).collect();
            let (nums, sorts) = numbers(&given);
            let kept: Vec<_> = given.iter().map(|c| stored(c)).collect();
            let cells: Vec<&str> = kept.iter().map(|c| c.as_ref()).collect();
            exec(
                tx,
                "INSERT INTO csvd_rows (tab, id, seq, cells, nums, sorts) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&meta.key, id, &meta.next_seq, &cells, &nums, &sorts],
            )
            .await?;
            meta.next_seq += 1;
        }
        return Ok(());
    }
    let sink = tx
        .copy_in("COPY csvd_rows (tab, id, seq, cells, nums, sorts) FROM STDIN (FORMAT binary)")
        .await
        .map_err(db)?;
    // The columns COPY names, in order, and their types.
    let types = [
        Type::INT8,
        Type::TEXT,
        Type::INT8,
        Type::TEXT_ARRAY,
        Type::FLOAT8_ARRAY,
        Type::FLOAT8_ARRAY,
    ];
    let writer = BinaryCopyInWriter::new(sink, &types);
    pin_mut!(writer);
    for (id, row) in rows {
        let given: Vec<&str> = row.cells(width).collect();
        let (nums, sorts) = numbers(&given);
        let kept: Vec<_> = given.iter().map(|c| stored(c)).collect();
        let cells: Vec<&str> = kept.iter().map(|c| c.as_ref()).collect();
        let values: [&(dyn ToSql + Sync); 6] =
            [&meta.key, id, &meta.next_seq, &cells, &nums, &sorts];
        writer.as_mut().write(&values).await.map_err(db)?;
        meta.next_seq += 1;
    }
    writer.finish().await.map_err(db)?;
    Ok(())
}

/// Whether any of these ids is a row of the table already: the first, in
/// their order.
async fn taken(tx: &Transaction<'_>, key: i64, ids: &[&str]) -> Result<Option<String>> {
    if ids.is_empty() {
        return Ok(None);
    }
    let row = maybe(
        tx,
        "SELECT g.id FROM unnest($2::text[]) WITH ORDINALITY AS g(id, n) \
                 WHERE EXISTS (SELECT 1 FROM csvd_rows r WHERE r.tab = $1 AND r.id = g.id) \
                 ORDER BY g.n LIMIT 1",
        &[&key, &ids],
    )
    .await?;
    row.map(|r| r.try_get(0).map_err(db)).transpose()
}

/// Makes records' rows for a locked table: checks them (nothing changes
/// for records that fail), gives ids, grows the columns. `pending` holds
/// the ids of rows made for the same transaction but not written yet.
/// Returns the rows made, each with its id, for [`append`].
async fn insert_rows(
    tx: &Transaction<'_>,
    id_column: &str,
    meta: &mut Meta,
    records: Records,
    pending: &mut HashSet<String>,
) -> Result<Vec<(String, Row)>> {
    let Records {
        columns,
        rows,
        numbered,
    } = records;
    validate_columns(&columns)?;
    // Numbered rows carry no id of their own: they get the ids the table
    // gives, which are the same numbers in a table with no integer id.
    let given_at = columns
        .iter()
        .position(|c| c == id_column)
        .filter(|_| !numbered);
    // The ids given, checked in body order as the file store checks them:
    // the first that is invalid, repeated or taken refuses the insert.
    let mut given: Vec<&str> = Vec::new();
    let mut stop = None;
    if let Some(k) = given_at {
        let mut seen = HashSet::with_capacity(rows.len());
        for row in &rows {
            let id = row.get(k);
            if id.is_empty() {
                continue;
            }
            if let Err(err) = validate_id(id) {
                stop = Some(err);
                break;
            }
            if !seen.insert(id) || pending.contains(id) {
                stop = Some(Error::IdTaken(id.to_string()));
                break;
            }
            given.push(id);
        }
    }
    // A taken id before the first refusal found here comes first.
    if let Some(id) = taken(tx, meta.key, &given).await? {
        return Err(Error::IdTaken(id));
    }
    if let Some(err) = stop {
        return Err(err);
    }
    let taken_ints: HashSet<u64> = given.iter().filter_map(|id| int_id(id)).collect();
    let map: Vec<usize> = columns
        .iter()
        .map(|c| column_index(&mut meta.columns, c))
        .collect();
    let width = meta.columns.len();
    let id_col = meta.id_col;
    let mut from = vec![None; width];
    for (j, &at) in map.iter().enumerate() {
        from[at] = Some(j);
    }
    let mut made = Vec::with_capacity(rows.len());
    for row in rows {
        let id = match given_at.map(|k| row.get(k)).filter(|id| !id.is_empty()) {
            Some(id) => {
                note_id(meta, id);
                id.to_string()
            }
            None => loop {
                meta.max_int_id = meta
                    .max_int_id
                    .checked_add(1)
                    .ok_or_else(crate::store::table::no_id_left)?;
                if !taken_ints.contains(&meta.max_int_id) {
                    break meta.max_int_id.to_string();
                }
            },
        };
        let cells = (0..width).map(|c| {
            if c == id_col {
                id.as_str()
            } else {
                from[c].map_or("", |j| row.get(j))
            }
        });
        let built = Row::from_cells(cells);
        made.push((id, built));
    }
    pending.extend(made.iter().map(|(id, _)| id.clone()));
    meta.row_count += i64::try_from(made.len()).unwrap_or(i64::MAX);
    Ok(made)
}

/// The answer to an insert: the rows made, with the columns after it.
fn inserted(columns: &[String], id_col: usize, made: &[(String, Row)]) -> Written {
    let columns = Arc::new(columns.to_vec());
    let versions = made
        .iter()
        .map(|(_, row)| row_version(&columns, row))
        .collect();
    Written {
        columns,
        id_col: Some(id_col),
        rows: made.iter().map(|(_, row)| row.clone()).collect(),
        versions,
        created: true,
    }
}

/// One insert in a transaction of its own: for an insert with a
/// precondition, which is checked against the table as the write finds it.
pub(super) async fn insert(
    store: &Shared,
    table: &str,
    records: Records,
    expect: &Expect,
) -> Result<Written> {
    let id_column = store.id_column.as_str();
    let mut client = store.client().await?;
    let tx = begin(&mut client).await.map_err(db)?;
    let (mut meta, created) = lock(&tx, table, Some(id_column))
        .await?
        .ok_or_else(|| Error::NoTable(table.to_string()))?;
    expect.check(current(store, &meta, created))?;
    if let Some(schema) = declared(&tx, meta.key).await? {
        schema
            .check_records(&records, id_column)
            .map_err(Error::Declared)?;
    }
    let made = insert_rows(&tx, id_column, &mut meta, records, &mut HashSet::new()).await?;
    append(&tx, &mut meta, &made).await?;
    let rows = made.iter().map(|(_, row)| row.clone()).collect();
    let changes = batch(
        table,
        &meta.columns,
        Some(meta.id_col),
        What::Inserted(rows),
    );
    let touched = touch(store, &tx, &meta, &changes).await?;
    commit(store, tx, changes, touched.last).await?;
    Ok(inserted(&meta.columns, meta.id_col, &made))
}

/// Inserts without preconditions that arrived together for one table, in
/// one transaction: one lock, one commit, each insert checked on its own.
/// An insert refused (a taken id, a bad field) is answered so and writes
/// nothing; the others are applied as if one after another. A failure of
/// the database fails them all. Returns the answers and the last sequence
/// number of the batch's changes, which the answers wait for ([`seen`]).
pub(super) async fn insert_batch(
    store: &Shared,
    table: &str,
    batch: Vec<Records>,
) -> (Vec<Result<Written>>, Option<(Batch, u64)>) {
    let n = batch.len();
    let failed = |err: Error| ((0..n).map(|_| Err(again(&err))).collect(), None);
    let id_column = store.id_column.as_str();
    let mut client = match store.client().await {
        Ok(client) => client,
        Err(err) => return failed(err),
    };
    let tx = match begin(&mut client).await {
        Ok(tx) => tx,
        Err(err) => return failed(db(err)),
    };
    let mut meta = match lock(&tx, table, Some(id_column)).await {
        Ok(Some((meta, _))) => meta,
        Ok(None) => return failed(Error::NoTable(table.to_string())),
        Err(err) => return failed(err),
    };
    let schema = match declared(&tx, meta.key).await {
        Ok(schema) => schema,
        Err(err) => return failed(err),
    };
    let mut answers = Vec::with_capacity(n);
    let mut rows = Vec::new();
    let mut pending = HashSet::new();
    for records in batch {
        if let Some(Err(err)) = schema
            .as_ref()
            .map(|s| s.check_records(&records, id_column))
        {
            answers.push(Err(Error::Declared(err)));
            continue;
        }
        match insert_rows(&tx, id_column, &mut meta, records, &mut pending).await {
            Ok(made) => {
                answers.push(Ok(inserted(&meta.columns, meta.id_col, &made)));
                rows.extend(made);
            }
            Err(err) if refused(&err) => answers.push(Err(err)),
            Err(err) => return failed(err),
        }
    }
    if rows.is_empty() {
        // Nothing to commit (and a table made for them is not kept).
        return (answers, None);
    }
    // Every row of the batch in one statement (or one COPY).
    if let Err(err) = append(&tx, &mut meta, &rows).await {
        return failed(err);
    }
    let made = rows.into_iter().map(|(_, row)| row).collect();
    let changes = feed::batch(
        table,
        &meta.columns,
        Some(meta.id_col),
        What::Inserted(made),
    );
    let last = match touch(store, &tx, &meta, &changes).await {
        Ok(touched) => touched.last,
        Err(err) => return failed(err),
    };
    match tx.commit().await {
        Ok(()) => (answers, Some((changes, last))),
        Err(err) => failed(commit_failed(err)),
    }
}

/// Whether an error refuses one write, leaving its transaction usable:
/// found before anything of that write was sent.
fn refused(err: &Error) -> bool {
    matches!(
        err,
        Error::IdTaken(_) | Error::InvalidId(_) | Error::InvalidField(_) | Error::Declared(_)
    )
}

/// The same error again, for each write of a batch that one failure ends.
fn again(err: &Error) -> Error {
    match err {
        Error::Unavailable(why) => Error::Unavailable(why.clone()),
        Error::OutcomeUnknown(why) => Error::OutcomeUnknown(why.clone()),
        Error::NoTable(name) => Error::NoTable(name.clone()),
        other => Error::Io(std::io::Error::other(other.to_string())),
    }
}

/// Locks a table (made when `create` names its id column) and reads one
/// of its rows, checking a row write's precondition against it.
async fn locked_row(
    tx: &Transaction<'_>,
    table: &str,
    id: &str,
    create: Option<&str>,
    expect: &Expect,
) -> Result<(Meta, Option<Row>)> {
    let (meta, _) = lock(tx, table, create)
        .await?
        .ok_or_else(|| Error::NoTable(table.to_string()))?;
    let found = maybe(
        tx,
        "SELECT cells FROM csvd_rows WHERE tab = $1 AND id = $2",
        &[&meta.key, &id],
    )
    .await?;
    let row = found.map(|row| row_of(&row, 0)).transpose()?;
    expect.check(row.as_ref().map(|row| row_version(&meta.columns, row)))?;
    Ok((meta, row))
}

/// `PUT` (every field given, the others empty; made when absent) or
/// `PATCH` (the given fields; the row must exist) of one row.
pub(super) async fn put_row(
    store: &Shared,
    table: &str,
    id: &str,
    record: Fields,
    expect: &Expect,
    patch: bool,
) -> Result<Written> {
    let id_column = store.id_column.as_str();
    if !patch {
        validate_id(id)?;
    }
    validate_fields(&record)?;
    check_body_id(&record, id, id_column)?;
    let mut client = store.client().await?;
    let tx = begin(&mut client).await.map_err(db)?;
    let create = (!patch).then_some(id_column);
    let (mut meta, base) = locked_row(&tx, table, id, create, expect).await?;
    if patch && base.is_none() {
        return Err(Error::NoRow(id.to_string()));
    }
    if let Some(schema) = declared(&tx, meta.key).await? {
        schema
            .check_fields(&record, id, !patch, id_column)
            .map_err(Error::Declared)?;
    }
    let mut fields = without(&record, id_column);
    if !patch {
        fields.insert(0, (id_column.to_string(), id.to_string()));
    }
    let positions: Vec<usize> = fields
        .iter()
        .map(|(name, _)| column_index(&mut meta.columns, name))
        .collect();
    let width = meta.columns.len();
    let mut cells: Vec<&str> = match (&base, patch) {
        (Some(row), true) => row.cells(width).collect(),
        _ => vec![""; width],
    };
    for (&at, (_, value)) in positions.iter().zip(&fields) {
        cells[at] = value;
    }
    let row = Row::from_cells(&cells);
    let created = base.is_none();
    let change = RowChange {
        op: if created {
            FeedOp::Insert
        } else {
            FeedOp::Update
        },
        before: base.clone(),
        after: Some(row.clone()),
    };
    if created {
        note_id(&mut meta, id);
        append(&tx, &mut meta, &[(id.to_string(), row.clone())]).await?;
        meta.row_count += 1;
    } else {
        let (nums, sorts) = numbers(&cells);
        let kept: Vec<_> = cells.iter().map(|c| stored(c)).collect();
        let cells: Vec<&str> = kept.iter().map(|c| c.as_ref()).collect();
        exec(
            &tx,
            "UPDATE csvd_rows SET cells = $3, nums = $4, sorts = $5 WHERE tab = $1 AND id = $2",
            &[&meta.key, &id, &cells, &nums, &sorts],
        )
        .await?;
    }
    let changes = batch(
        table,
        &meta.columns,
        Some(meta.id_col),
        What::Rows(vec![change]),
    );
    let touched = touch(store, &tx, &meta, &changes).await?;
    commit(store, tx, changes, touched.last).await?;
    let columns = Arc::new(meta.columns);
    let version = row_version(&columns, &row);
    Ok(Written {
        columns,
        id_col: Some(meta.id_col),
        rows: vec![row],
        versions: vec![version],
        created,
    })
}

pub(super) async fn delete_row(
    store: &Shared,
    table: &str,
    id: &str,
    expect: &Expect,
) -> Result<()> {
    let mut client = store.client().await?;
    let tx = begin(&mut client).await.map_err(db)?;
    let (mut meta, base) = locked_row(&tx, table, id, None, expect).await?;
    if base.is_none() {
        return Err(Error::NoRow(id.to_string()));
    }
    exec(
        &tx,
        "DELETE FROM csvd_rows WHERE tab = $1 AND id = $2",
        &[&meta.key, &id],
    )
    .await?;
    meta.row_count -= 1;
    let gone = RowChange {
        op: FeedOp::Delete,
        before: base,
        after: None,
    };
    let changes = batch(
        table,
        &meta.columns,
        Some(meta.id_col),
        What::Rows(vec![gone]),
    );
    let touched = touch(store, &tx, &meta, &changes).await?;
    commit(store, tx, changes, touched.last).await?;
    Ok(())
}

pub(super) async fn replace_table(
    store: &Shared,
    table: &str,
    records: Records,
    expect: &Expect,
) -> Result<(TableInfo, bool)> {
    let id_column = store.id_column.as_str();
    let mut client = store.client().await?;
    let tx = begin(&mut client).await.map_err(db)?;
    let (mut meta, created) = lock(&tx, table, Some(id_column))
        .await?
        .ok_or_else(|| Error::NoTable(table.to_string()))?;
    expect.check(current(store, &meta, created))?;
    if let Some(schema) = declared(&tx, meta.key).await? {
        schema
            .check_records(&records, id_column)
            .map_err(Error::Declared)?;
    }
    // The new table is built by the file store's own rules, in memory (the
    // records are there already), then copied in.
    let built = Table::from_records(records, id_column, 0)?;
    exec(&tx, "DELETE FROM csvd_rows WHERE tab = $1", &[&meta.key]).await?;
    meta.columns = built.columns().to_vec();
    meta.id_col = built.id_col().unwrap_or(0);
    meta.next_seq = 1;
    meta.max_int_id = 0;
    let rows: Vec<(String, Row)> = built
        .rows()
        .into_iter()
        .map(|row| (row.get(meta.id_col).to_string(), row))
        .collect();
    for (id, _) in &rows {
        note_id(&mut meta, id);
    }
    append(&tx, &mut meta, &rows).await?;
    meta.row_count = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let changes = batch(table, &meta.columns, Some(meta.id_col), What::Replaced);
    let Touched {
        version,
        modified,
        last,
    } = touch(store, &tx, &meta, &changes).await?;
    commit(store, tx, changes, last).await?;
    Ok((
        TableInfo {
            name: table.to_string(),
            rows: rows.len(),
            columns: meta.columns,
            modified,
            version,
            error: None,
            notice: None,
        },
        created,
    ))
}

pub(super) async fn delete_table(store: &Shared, table: &str, expect: &Expect) -> Result<()> {
    let mut client = store.client().await?;
    let tx = begin(&mut client).await.map_err(db)?;
    let (meta, _) = lock(&tx, table, None)
        .await?
        .ok_or_else(|| Error::NoTable(table.to_string()))?;
    expect.check(current(store, &meta, false))?;
    exec(&tx, "DELETE FROM csvd_rows WHERE tab = $1", &[&meta.key]).await?;
    exec(&tx, "DELETE FROM csvd_tables WHERE key = $1", &[&meta.key]).await?;
    exec(&tx, "DELETE FROM csvd_schemas WHERE tab = $1", &[&meta.key]).await?;
    // No table row left to touch: the changes are recorded on their own,
    // as the last statement.
    let changes = batch(table, &[], None, What::Dropped);
    let last = feed::record(&tx, &changes).await?;
    commit(store, tx, changes, last).await?;
    Ok(())
}
