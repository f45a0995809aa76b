//! Reads: a query string answered from the database, in one repeatable-read
//! transaction, by a task that streams the rows as they arrive.
//!
//! What is pushed down to SQL: equality and `_ne` filters, comparisons
//! (`_lt`, `_lte`, `_gt`, `_gte`), the count, `_sort`/`_order` and the
//! window. `_like` (a regular expression in the file store's syntax),
//! `q` and the text operators (`:contains`, `:startsWith`, `:endsWith`;
//! case folded as JavaScript folds it) are evaluated here, on the rows
//! the other filters let through; the sort and window then follow them
//! here too, since which columns sort as numbers depends on every filter.

use std::fmt::Write as _;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::binary_copy::BinaryCopyOutStream;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::IsolationLevel;

use super::{db, row_of, stored, Cells, Meta, Shared, META_COLUMNS};
use crate::query::{self, Op, Query, SortKey, TableView, Test};
use crate::store::{Error, Head, Result, Row, Selected, Snapshot};

/// Rows sent from the reading task at a time.
const BATCH: usize = 512;
/// Batches in flight between the reading task and the answer.
const IN_FLIGHT: usize = 4;

type Param = Box<dyn ToSql + Sync + Send>;

/// A query as SQL: the condition on `csvd_rows` (after `tab = $1`) with
/// its parameters, and whether part of it is left to evaluate here.
struct Plan {
    condition: String,
    params: Vec<Param>,
    residual: bool,
}

/// Texts as the database keeps them.
fn coded(values: &[String]) -> Vec<String> {
    values.iter().map(|v| stored(v).into_owned()).collect()
}

/// A cell of the row being read, as SQL.
fn cell(column: usize) -> String {
    format!("coalesce(cells[{}], '')", column + 1)
}

fn op(op: Op) -> &'static str {
    match op {
        Op::Lt => "<",
        Op::Lte => "<=",
        Op::Gt => ">",
        Op::Gte => ">=",
    }
}

impl Plan {
    fn of(query: &Query) -> Plan {
        let mut plan = Plan {
            condition: String::new(),
            params: Vec::new(),
            // A sort by a path into cells' JSON objects is made here too.
            // So are `_where`'s `or`s.
            residual: query.search.is_some()
                || !query.or.is_empty()
                || query.sort.iter().any(|k| !k.path.is_empty()),
        };
        for filter in &query.filters {
            let cell = cell(filter.column);
            let part = match &filter.test {
                Test::Equals(values) => {
                    let p = plan.param(coded(values));
                    format!("{cell} = ANY({p})")
                }
                Test::NotEquals(values) => {
                    let p = plan.param(coded(values));
                    format!("NOT ({cell} = ANY({p}))")
                }
                Test::Compare(o, operands) => {
                    let o = op(*o);
                    let mut any = Vec::with_capacity(operands.len());
                    for operand in operands {
                        let text = plan.param(stored(&operand.text).into_owned());
                        any.push(match operand.number {
                            Some(number) => {
                                let number = plan.param(number);
                                let num = format!("nums[{}]", filter.column + 1);
                                format!(
                                    "(CASE WHEN {num} IS NOT NULL THEN {num} {o} {number}::float8 \
                                     ELSE {cell} COLLATE \"C\" {o} {text} END)"
                                )
                            }
                            None => format!("({cell} COLLATE \"C\" {o} {text})"),
                        });
                    }
                    format!("({})", any.join(" OR "))
                }
                // `contains`, `startsWith`, `endsWith` fold case as
                // JavaScript does, and look only at cells typed as text.
                // A path into cells' JSON objects is read here too.
                Test::Like(_) | Test::Text(..) | Test::Path(..) => {
                    plan.residual = true;
                    continue;
                }
            };
            let _ = write!(plan.condition, " AND {part}");
        }
        plan
    }

    /// Adds a parameter; its placeholder (`$1` is the table's key).
    fn param(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len() + 1)
    }

    fn params<'a>(&'a self, key: &'a i64) -> Vec<&'a (dyn ToSql + Sync)> {
        std::iter::once(key as &(dyn ToSql + Sync))
            .chain(
                self.params
                    .iter()
                    .map(|p| p.as_ref() as &(dyn ToSql + Sync)),
            )
            .collect()
    }
}

/// `ORDER BY` for the sort keys (columns that hold a number sort as
/// numbers, text after them), ties in table order.
fn order_by(keys: &[SortKey], numeric: &[bool]) -> (String, String) {
    // Sort keys, taken once per row in the inner select.
    let mut computed = String::new();
    let mut order = Vec::new();
    for (k, (key, &numeric)) in keys.iter().zip(numeric).enumerate() {
        let dir = if key.descending { "DESC" } else { "ASC" };
        let cell = cell(key.column);
        if numeric {
            // A short row's missing cells are empty, which sort as 0.
            let n = key.column + 1;
            let _ = write!(
                computed,
                ", CASE WHEN cardinality(sorts) >= {n} THEN sorts[{n}] ELSE 0 END AS n{k}, \
                 {cell} AS t{k}"
            );
            order.push(format!("(n{k} IS NULL) {dir}"));
            order.push(format!("n{k} {dir}"));
            order.push(format!(
                "(CASE WHEN n{k} IS NULL THEN t{k} END) COLLATE \"C\" {dir}"
            ));
        } else {
            let _ = write!(computed, ", {cell} AS t{k}");
            order.push(format!("t{k} COLLATE \"C\" {dir}"));
        }
    }
    order.push("seq ASC".to_string());
    (computed, order.join(", "))
}

/// What the reading task tells first: the table, the query read against
/// it, and the total; then the rows follow.
type Opening = Result<(Head, Query, usize)>;

pub(super) async fn select(store: &Shared, table: &str, raw: &str) -> Result<Selected> {
    let client = store.client().await?;
    let (opening_tx, opening_rx) = oneshot::channel::<Opening>();
    let (rows_tx, rows_rx) = mpsc::channel::<Result<Vec<Row>>>(IN_FLIGHT);
    let epoch = store.epoch;
    let table = table.to_string();
    let raw = raw.to_string();
    tokio::spawn(async move {
        let mut opening = Some(opening_tx);
        let result = read(client, epoch, &table, &raw, &mut opening, &rows_tx).await;
        if let Err(err) = result {
            match opening.take() {
                Some(opening) => {
                    let _ = opening.send(Err(err));
                }
                None => {
                    let _ = rows_tx.send(Err(err)).await;
                }
            }
        }
    });
    let (head, query, total) = opening_rx
        .await
        .map_err(|_| Error::Unavailable("the database read ended early".into()))??;
    let rows = futures_util::stream::unfold(rows_rx, |mut rx| async move {
        let batch = rx.recv().await?;
        Some((batch, rx))
    })
    .map_ok(|batch| futures_util::stream::iter(batch.into_iter().map(Ok)))
    .try_flatten();
    Ok(Selected {
        head,
        query,
        total,
        rows: Box::pin(rows),
    })
}

/// The reading task: opens the transaction, reads the head, plans the
/// query, sends the opening, then the rows in batches. Stops when the
/// answer is dropped.
async fn read(
    mut client: deadpool_postgres::Object,
    epoch: u64,
    table: &str,
    raw: &str,
    opening: &mut Option<oneshot::Sender<Opening>>,
    rows: &mpsc::Sender<Result<Vec<Row>>>,
) -> Result<()> {
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(db)?;
    let meta = tx
        .query_opt(
            &tx.prepare_cached(&format!(
                "SELECT {META_COLUMNS} FROM csvd_tables WHERE name = $1"
            ))
            .await
            .map_err(db)?,
            &[&table],
        )
        .await
        .map_err(db)?
        .map(|row| Meta::from_row(&row))
        .transpose()?
        .ok_or_else(|| Error::NoTable(table.to_string()))?;
    let query = query::parse(raw, &meta.columns)?;
    let head = Head {
        columns: Arc::new(meta.columns.clone()),
        id_col: Some(meta.id_col),
        rows: usize::try_from(meta.row_count).unwrap_or(0),
        version: super::version_of(epoch, meta.version),
        modified: meta.modified,
    };
    let plan = Plan::of(&query);
    let key = meta.key;
    let params = plan.params(&key);
    let open = |opening: &mut Option<oneshot::Sender<Opening>>, query: Query, total: usize| {
        opening
            .take()
            .is_some_and(|o| o.send(Ok((head.clone(), query, total))).is_ok())
    };

    if plan.residual {
        // Read what SQL narrowed, in table order, and answer the rest as
        // the file store does.
        let sql = format!(
            "SELECT cells FROM csvd_rows WHERE tab = $1{} ORDER BY seq",
            plan.condition
        );
        let found = tx
            .query_raw(&sql, params.iter().copied())
            .await
            .map_err(db)?;
        let candidates: Vec<Row> = found
            .map(|row| row.map_err(db).and_then(|row| row_of(&row, 0)))
            .try_collect()
            .await?;
        let snapshot = Snapshot {
            columns: head.columns.clone(),
            id_col: head.id_col,
            rows: candidates,
            version: head.version,
            modified: head.modified,
        };
        let view = Arc::new(TableView::new(snapshot));
        let (query, selection) = query::select_apart(query, view.clone()).await?;
        if !open(opening, query, selection.total) {
            return Ok(());
        }
        let picked = selection.picked;
        let mut batch = Vec::with_capacity(BATCH);
        for at in (0..picked.len()).filter_map(|i| picked.get(i)) {
            batch.push(view.snapshot.rows[at].clone());
            if batch.len() == BATCH && rows.send(Ok(std::mem::take(&mut batch))).await.is_err() {
                return Ok(());
            }
        }
        if !batch.is_empty() {
            let _ = rows.send(Ok(batch)).await;
        }
        return Ok(());
    }

    // Everything in SQL: the total (and which sort columns hold numbers),
    // then the window's rows.
    let filtered = !query.filters.is_empty();
    let (total, numeric) = if !filtered && query.sort.is_empty() {
        (head.rows, Vec::new())
    } else {
        let mut sql = String::from("SELECT count(*)");
        for key in &query.sort {
            let _ = write!(
                sql,
                ", coalesce(bool_or(nums[{}] IS NOT NULL), false)",
                key.column + 1
            );
        }
        let _ = write!(sql, " FROM csvd_rows WHERE tab = $1{}", plan.condition);
        tracing::debug!(table, %sql, "count");
        let row = tx.query_one(&sql, &params).await.map_err(db)?;
        let count: i64 = row.try_get(0).map_err(db)?;
        let numeric = (0..query.sort.len())
            .map(|k| row.try_get(k + 1).map_err(db))
            .collect::<Result<Vec<bool>>>()?;
        (usize::try_from(count).unwrap_or(0), numeric)
    };
    let range = query.window.range(total);
    let query_sorted = query.sort.len();
    let (computed, order) = order_by(&query.sort, &numeric);
    if !open(opening, query, total) || range.is_empty() {
        return Ok(());
    }
    let mut sql = format!(
        "SELECT cells FROM (SELECT cells, seq{computed} FROM csvd_rows WHERE tab = $1{}) AS r \
         ORDER BY {order}",
        plan.condition
    );
    if range.end < total {
        let _ = write!(sql, " LIMIT {}", range.len());
    }
    if range.start > 0 {
        let _ = write!(sql, " OFFSET {}", range.start);
    }
    let mut batch = Vec::with_capacity(BATCH);
    if !filtered && query_sorted == 0 {
        // Rows in table order, maybe a window of them: `COPY`, PostgreSQL's
        // fastest way out. Its query takes no parameters; everything in it
        // is a number csvd made (the table's key, the window).
        let copy = format!(
            "COPY ({}) TO STDOUT (FORMAT binary)",
            sql.replacen("$1", &key.to_string(), 1)
        );
        tracing::debug!(table, sql = %copy, "rows");
        let out = tx.copy_out(&copy).await.map_err(db)?;
        let found = BinaryCopyOutStream::new(out, &[Type::TEXT_ARRAY]);
        futures_util::pin_mut!(found);
        while let Some(row) = found.next().await {
            let cells: Cells = row.map_err(db)?.try_get(0).map_err(db)?;
            batch.push(cells.0);
            if batch.len() == BATCH && rows.send(Ok(std::mem::take(&mut batch))).await.is_err() {
                return Ok(());
            }
        }
    } else {
        tracing::debug!(table, %sql, "rows");
        let found = tx
            .query_raw(&sql, params.iter().copied())
            .await
            .map_err(db)?;
        futures_util::pin_mut!(found);
        while let Some(row) = found.next().await {
            let row = row.map_err(db)?;
            batch.push(row_of(&row, 0)?);
            if batch.len() == BATCH && rows.send(Ok(std::mem::take(&mut batch))).await.is_err() {
                return Ok(());
            }
        }
    }
    if !batch.is_empty() {
        let _ = rows.send(Ok(batch)).await;
    }
    Ok(())
}
