//! Declared columns in the database: a table's CSV on the Web table
//! description is a row of `csvd_schemas`, keyed by the table's key (a
//! table deleted and made again starts undeclared). Declaring, removing
//! and recording JSON columns each lock the table's row first, as writes
//! do, so a declaration is checked against the rows with no write between.
//!
//! There is no file here: a declared dialect is kept in the document, and
//! means nothing to this backend.

use std::sync::{Arc, PoisonError};

use deadpool_postgres::Transaction;
use serde_json::Value;

use super::writes::{begin, lock};
use super::{db, row_of, Meta, Shared, META_COLUMNS};
use crate::store::schema::{Schema, Types};
use crate::store::{Error, Expect, Result, SchemaView};

/// The declared description of the table with this key, if any.
pub(super) async fn declared(tx: &Transaction<'_>, key: i64) -> Result<Option<Schema>> {
    let statement = tx
        .prepare_cached("SELECT doc FROM csvd_schemas WHERE tab = $1")
        .await
        .map_err(db)?;
    let Some(row) = tx.query_opt(&statement, &[&key]).await.map_err(db)? else {
        return Ok(None);
    };
    let text: String = row.try_get(0).map_err(db)?;
    parse(&text).map(Some)
}

fn parse(text: &str) -> Result<Schema> {
    let doc: Value = serde_json::from_str(text).map_err(|err| {
        Error::Io(std::io::Error::other(format!(
            "csvd_schemas holds a description that is not JSON ({err}): it was changed by hand"
        )))
    })?;
    Schema::parse(doc).map_err(|err| {
        Error::Io(std::io::Error::other(format!(
            "csvd_schemas holds a description csvd cannot use ({err}): it was changed by hand"
        )))
    })
}

/// Locks a table's row for a change of its declaration, once the
/// declaration it has is what `expect` asks for.
async fn locked_as_expected(tx: &Transaction<'_>, table: &str, expect: &Expect) -> Result<Meta> {
    let (meta, _) = lock(tx, table, None)
        .await?
        .ok_or_else(|| Error::NoTable(table.to_string()))?;
    let current = declared(tx, meta.key).await?;
    expect.check(current.as_ref().map(Schema::version))?;
    Ok(meta)
}

async fn save(tx: &Transaction<'_>, key: i64, schema: &Schema) -> Result<()> {
    let statement = tx
        .prepare_cached(
            "INSERT INTO csvd_schemas (tab, doc) VALUES ($1, $2) \
             ON CONFLICT (tab) DO UPDATE SET doc = EXCLUDED.doc",
        )
        .await
        .map_err(db)?;
    let text = schema.doc.to_string();
    tx.execute(&statement, &[&key, &text]).await.map_err(db)?;
    Ok(())
}

impl Shared {
    fn remember(&self, table: &str, schema: Option<&Schema>) -> Types {
        let types = schema.map(Schema::types).unwrap_or_default();
        self.types
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(table.to_string(), types.clone());
        types
    }

    /// The table's declared datatypes, as the database has them now.
    pub(super) async fn types_of(&self, table: &str) -> Result<Types> {
        let client = self.reader().await?;
        let statement = client
            .prepare_cached(
                "SELECT s.doc FROM csvd_schemas s JOIN csvd_tables t ON t.key = s.tab \
                 WHERE t.name = $1",
            )
            .await
            .map_err(db)?;
        let found = client.query_opt(&statement, &[&table]).await.map_err(db)?;
        let schema = match found {
            Some(row) => Some(parse(&row.try_get::<_, String>(0).map_err(db)?)?),
            None => None,
        };
        Ok(self.remember(table, schema.as_ref()))
    }

    /// The datatypes last read for the table (none when never read).
    pub(super) fn types_known(&self, table: &str) -> Types {
        self.types
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(table)
            .cloned()
            .unwrap_or_default()
    }

    pub(super) async fn view(&self, table: &str) -> Result<SchemaView> {
        let mut client = self.client().await?;
        // One snapshot for the table's row and its declaration; no lock.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        let select = format!("SELECT {META_COLUMNS} FROM csvd_tables WHERE name = $1");
        let statement = tx.prepare_cached(&select).await.map_err(db)?;
        let row = tx
            .query_opt(&statement, &[&table])
            .await
            .map_err(db)?
            .ok_or_else(|| Error::NoTable(table.to_string()))?;
        let meta = Meta::from_row(&row)?;
        let schema = declared(&tx, meta.key).await?;
        tx.commit().await.map_err(db)?;
        Ok(SchemaView::plain(
            table,
            schema.map(Arc::new),
            meta.columns,
            Some(meta.id_col),
        ))
    }

    /// Declares a table's columns, checked against every row.
    pub(super) async fn declare(
        &self,
        table: &str,
        doc: Value,
        expect: &Expect,
    ) -> Result<SchemaView> {
        let schema = Schema::parse(doc)
            .map_err(|err| Error::Declared(format!("the table description is invalid: {err}")))?;
        schema
            .primary_key_ok(&self.id_column)
            .map_err(|err| Error::Declared(format!("the table description {err}")))?;
        let mut client = self.client().await?;
        let tx = begin(&mut client).await.map_err(db)?;
        let meta = locked_as_expected(&tx, table, expect).await?;
        let statement = tx
            .prepare_cached("SELECT cells FROM csvd_rows WHERE tab = $1 ORDER BY seq")
            .await
            .map_err(db)?;
        let rows = tx.query(&statement, &[&meta.key]).await.map_err(db)?;
        let rows = rows
            .iter()
            .map(|row| row_of(row, 0))
            .collect::<Result<Vec<_>>>()?;
        schema
            .check_rows(
                table,
                &meta.columns,
                Some(meta.id_col),
                rows.iter(),
                &self.id_column,
            )
            .map_err(Error::Declared)?;
        save(&tx, meta.key, &schema).await?;
        tx.commit().await.map_err(super::commit_failed)?;
        self.remember(table, Some(&schema));
        Ok(SchemaView::plain(
            table,
            Some(Arc::new(schema)),
            meta.columns,
            Some(meta.id_col),
        ))
    }

    pub(super) async fn undeclare(&self, table: &str, expect: &Expect) -> Result<()> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await.map_err(db)?;
        let meta = locked_as_expected(&tx, table, expect).await?;
        let statement = tx
            .prepare_cached("DELETE FROM csvd_schemas WHERE tab = $1")
            .await
            .map_err(db)?;
        tx.execute(&statement, &[&meta.key]).await.map_err(db)?;
        tx.commit().await.map_err(super::commit_failed)?;
        self.remember(table, None);
        Ok(())
    }

    /// Records columns written JSON objects or arrays as `json`.
    pub(super) async fn note_json(&self, table: &str, columns: &[String]) -> Result<()> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await.map_err(db)?;
        let Some((meta, _)) = lock(&tx, table, None).await? else {
            return Ok(());
        };
        let current = declared(&tx, meta.key)
            .await?
            .unwrap_or_else(|| Schema::empty(&format!("{table}.csv")));
        let new: Vec<&str> = columns
            .iter()
            .map(String::as_str)
            .filter(|c| current.column(c).is_none_or(|c| c.datatype.is_none()))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let schema = current.with_json(&new);
        save(&tx, meta.key, &schema).await?;
        tx.commit().await.map_err(super::commit_failed)?;
        self.remember(table, Some(&schema));
        Ok(())
    }
}
