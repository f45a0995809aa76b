//! `csvd copy FROM TO`: every table of one store written into another, a
//! data directory or a PostgreSQL database on either side.
//!
//! Each table is read as one consistent version (one snapshot of the file
//! store, one transaction of the database) and written in batches as its
//! rows arrive, so a table never needs to fit in memory twice: the first
//! batch replaces the table at the destination, the next ones add to it,
//! with ids, columns and row order as they were.
//!
//! A `.json` file (json-server's db.json) on either side is read or
//! written whole ([`jsondb`]).

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{source_of, CopyArgs, Source};
use crate::compose::open_store;
use crate::jsondb;
use crate::store::{Error, Expect, Options, PgOptions, Records, Store};

pub fn run(args: CopyArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(copy(args))
}

async fn copy(args: CopyArgs) -> anyhow::Result<ExitCode> {
    let (from, to) = (source_of(&args.from), source_of(&args.to));
    if from == to {
        anyhow::bail!("FROM and TO are the same store: nothing to copy");
    }
    match (&from, &to) {
        (Source::Json(_), Source::Json(_)) => {
            anyhow::bail!("FROM and TO are both JSON files: copy one into a data directory")
        }
        (Source::Json(file), _) => return from_json(&args, file, &to).await,
        (_, Source::Json(file)) => return to_json(&args, &from, file).await,
        _ => {}
    }
    let reading = Options {
        read_only: true,
        ..Options::default()
    };
    let source = open_store(
        &from,
        &args.id_column,
        reading,
        PgOptions {
            read_only: true,
            ..PgOptions::default()
        },
    )
    .await
    .with_context(|| format!("cannot read {}", args.from))?;
    if let Source::Dir(dir) = &to {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    }
    let target = open_store(
        &to,
        &args.id_column,
        Options::default(),
        PgOptions::default(),
    )
    .await
    .with_context(|| format!("cannot write {}", args.to))?;

    let mut tables = source.tables().await?;
    if !args.tables.is_empty() {
        for wanted in &args.tables {
            if !tables.iter().any(|t| &t.name == wanted) {
                anyhow::bail!("{} has no table {wanted:?}", args.from);
            }
        }
        tables.retain(|t| args.tables.contains(&t.name));
    }
    let show = !args.quiet && std::io::stderr().is_terminal();
    let started = Instant::now();
    let (mut copied, mut rows, mut failed) = (0usize, 0usize, Vec::new());
    for info in &tables {
        if let Some(error) = &info.error {
            eprintln!("csvd copy: skipped {}: {error}", info.name);
            failed.push(info.name.clone());
            continue;
        }
        // A singular resource stays one (and a table of rows stays one).
        let marked = match source.singular(&info.name).await {
            Ok(mark) => target.set_singular(&info.name, mark).await,
            Err(err) => Err(err),
        };
        if let Err(err) = marked {
            eprintln!("csvd copy: {} was not copied: {err:#}", info.name);
            failed.push(info.name.clone());
            continue;
        }
        let bar = progress(show, &info.name, info.rows);
        match copy_table(
            source.as_ref(),
            target.as_ref(),
            &info.name,
            args.batch,
            &bar,
        )
        .await
        {
            Ok(n) => {
                bar.finish_and_clear();
                copied += 1;
                rows += n;
            }
            Err(err) => {
                bar.abandon();
                eprintln!("csvd copy: {} was not copied: {err:#}", info.name);
                failed.push(info.name.clone());
            }
        }
    }
    target
        .flush()
        .await
        .with_context(|| format!("cannot bring {} up to date", args.to))?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "csvd copy: {copied} table{} ({rows} row{}) from {} to {} in {seconds:.1}s",
        if copied == 1 { "" } else { "s" },
        if rows == 1 { "" } else { "s" },
        shown(&from),
        shown(&to),
    );
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("csvd copy: not copied: {}", failed.join(", "));
        Ok(ExitCode::FAILURE)
    }
}

/// Copies one table; returns its rows.
async fn copy_table(
    source: &dyn Store,
    target: &dyn Store,
    name: &str,
    batch: u32,
    bar: &ProgressBar,
) -> anyhow::Result<usize> {
    // The destination's own declaration goes first: the rows are checked
    // against what the source declares, not against it.
    match target.delete_schema(name, &Expect::none()).await {
        Ok(()) | Err(Error::NoTable(_) | Error::Unsupported(_)) => {}
        Err(err) => return Err(err.into()),
    }
    let declared = source.schema(name).await?.declared;
    let selected = source.select(name, "").await?;
    let columns = selected.head.columns.to_vec();
    let mut stream = selected.rows;
    let batch = batch as usize;
    let mut pending: Vec<crate::store::Row> = Vec::with_capacity(batch.min(65_536));
    let mut first = true;
    let mut total = 0;
    loop {
        let next = stream.next().await.transpose()?;
        let ended = next.is_none();
        if let Some(row) = next {
            pending.push(row);
        }
        if pending.len() < batch && !ended {
            continue;
        }
        let records = Records {
            columns: columns.clone(),
            rows: std::mem::take(&mut pending),
            numbered: false,
        };
        let n = records.len();
        if first {
            target.replace_table(name, records, &Expect::none()).await?;
            first = false;
        } else if n > 0 {
            target.insert(name, records, &Expect::none()).await?;
        }
        total += n;
        bar.inc(n as u64);
        if ended {
            if let Some(schema) = declared {
                declare(target, name, &schema.doc).await?;
            }
            return Ok(total);
        }
    }
}

/// Declares at the destination the columns the source declares; its
/// dialect stays the source's own (the destination writes files its way).
async fn declare(target: &dyn Store, name: &str, doc: &serde_json::Value) -> anyhow::Result<()> {
    let mut doc = doc.clone();
    if let Some(top) = doc.as_object_mut() {
        top.remove("dialect");
    }
    match target.put_schema(name, doc, &Expect::none()).await {
        Ok(_) => Ok(()),
        Err(Error::Unsupported(why)) => {
            eprintln!("csvd copy: the declared columns of {name} were not copied: {why}");
            Ok(())
        }
        Err(err) => Err(err.into()),
    }
}

fn progress(show: bool, name: &str, rows: usize) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(rows as u64), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>16} [{bar:30}] {human_pos}/{human_len} rows {per_sec}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(name.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn shown(source: &Source) -> String {
    match source {
        Source::Dir(dir) | Source::Json(dir) => dir.display().to_string(),
        Source::Postgres(url) => crate::store::pg_redacted(url),
    }
}

/// The store `csvd copy` writes into, a directory created if absent.
async fn target_store(args: &CopyArgs, to: &Source) -> anyhow::Result<Arc<dyn Store>> {
    if let Source::Dir(dir) = to {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    }
    open_store(
        to,
        &args.id_column,
        Options::default(),
        PgOptions::default(),
    )
    .await
    .with_context(|| format!("cannot write {}", args.to))
}

/// `csvd copy db.json TO`: each key of the file replaces the table of its
/// name (an object becomes a singular resource).
async fn from_json(args: &CopyArgs, file: &Path, to: &Source) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut entries = jsondb::parse(&text, file)?;
    if !args.tables.is_empty() {
        for wanted in &args.tables {
            if !entries.iter().any(|(name, _)| name == wanted) {
                anyhow::bail!("{} has no table {wanted:?}", args.from);
            }
        }
        entries.retain(|(name, _)| args.tables.contains(name));
    }
    let target = target_store(args, to).await?;
    let (tables, rows) = jsondb::import(target.as_ref(), &entries, &args.id_column).await?;
    target
        .flush()
        .await
        .with_context(|| format!("cannot bring {} up to date", args.to))?;
    report(tables, rows, &args.from, &shown(to), started);
    Ok(ExitCode::SUCCESS)
}

/// `csvd copy FROM db.json`: the whole store written as one JSON file
/// (replaced whole, atomically), as json-server keeps it.
async fn to_json(args: &CopyArgs, from: &Source, file: &Path) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let source = open_store(
        from,
        &args.id_column,
        Options {
            read_only: true,
            ..Options::default()
        },
        PgOptions {
            read_only: true,
            ..PgOptions::default()
        },
    )
    .await
    .with_context(|| format!("cannot read {}", args.from))?;
    let mut value = jsondb::export(source.as_ref()).await?;
    if let Some(tables) = value.as_object_mut() {
        if !args.tables.is_empty() {
            for wanted in &args.tables {
                if !tables.contains_key(wanted) {
                    anyhow::bail!("{} has no table {wanted:?}", args.from);
                }
            }
            tables.retain(|name, _| args.tables.contains(name));
        }
    }
    let (tables, rows) = value.as_object().map_or((0, 0), |tables| {
        let rows = tables
            .values()
            .map(|v| v.as_array().map_or(1, Vec::len))
            .sum();
        (tables.len(), rows)
    });
    jsondb::write_file(file, &value)?;
    if let Source::Dir(dir) = from {
        if args.tables.is_empty() {
            jsondb::resynced_if_source(dir, file)?;
        }
    }
    report(tables, rows, &shown(from), &args.to, started);
    Ok(ExitCode::SUCCESS)
}

fn report(tables: usize, rows: usize, from: &str, to: &str, started: Instant) {
    eprintln!(
        "csvd copy: {tables} table{} ({rows} row{}) from {from} to {to} in {:.1}s",
        if tables == 1 { "" } else { "s" },
        if rows == 1 { "" } else { "s" },
        started.elapsed().as_secs_f64(),
    );
}
