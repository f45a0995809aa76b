//! `csvd serve`: reads the command line, opens the store it names and
//! hands both to the server, which knows neither.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::cli::{ServeArgs, Source, SyncMode};
use crate::feed::Retention;
use crate::server::{Access, Config, Server, TlsFiles};
use crate::store::{DirStore, Options, PgOptions, PgStore, Store};

/// Runs the server until SIGINT or SIGTERM, then finishes the requests in
/// flight, brings the files up to date and returns.
pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging(&args.log_level)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(args))?;
    Ok(ExitCode::SUCCESS)
}

fn init_logging(level: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(level).with_context(|| {
        format!("invalid --log-level {level:?}: use error, warn, info, debug or trace")
    })?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    Ok(())
}

async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let server = Server::new(config(&args)?)?;
    let options = Options {
        sync: args.sync == SyncMode::Always,
        settle: Duration::from_secs(args.checkpoint_after),
        file_check: Duration::from_millis(args.file_check),
        salvage: args.salvage,
        read_only: args.read_only,
        changes: retention(&args),
        ..Options::default()
    };
    let pg = PgOptions {
        connections: args.db_connections as usize,
        deadline: Duration::from_secs(args.db_timeout),
        read_only: args.read_only,
        changes: retention(&args),
        ..PgOptions::default()
    };
    let source = args.source();
    if args.write_json && !matches!(source, Source::Json(_)) {
        anyhow::bail!("--write-json writes back a db.json: serve a .json file to use it");
    }
    let (store, json) = match &source {
        Source::Json(path) => {
            let (store, dir) = open_json(path, &args.id_column, options).await?;
            (store, Some((path.clone(), dir)))
        }
        other => (open_store(other, &args.id_column, options, pg).await?, None),
    };
    let kept = store.clone();
    server.run(store).await?;
    if let (true, Some((path, dir))) = (args.write_json, json) {
        let value = crate::jsondb::export(kept.as_ref())
            .await
            .with_context(|| format!("cannot write {} back", path.display()))?;
        crate::jsondb::write_file(&path, &value)?;
        crate::jsondb::record_synced(&dir, &path)?;
        tracing::info!(file = %path.display(), "wrote the data back (--write-json)");
    }
    Ok(())
}

/// `csvd serve db.json`: the data directory beside the file (`db.csvd/`),
/// filled from the file the first time, served as it is afterwards while
/// the file has not changed (refused, saying what to do, when it has).
async fn open_json(
    path: &std::path::Path,
    id_column: &str,
    options: Options,
) -> anyhow::Result<(Arc<dyn Store>, std::path::PathBuf)> {
    use crate::jsondb::{self, Start};
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let dir = jsondb::data_dir_of(path);
    let start = jsondb::start_of(path, &dir, &bytes)?;
    let entries = match start {
        Start::Import => {
            if options.read_only {
                anyhow::bail!(
                    "{} has no data directory yet ({}), and a read-only server creates none",
                    path.display(),
                    dir.display()
                );
            }
            let text = std::str::from_utf8(&bytes)
                .with_context(|| format!("{} is not UTF-8 text", path.display()))?;
            Some(jsondb::parse(text, path)?)
        }
        Start::Serve => None,
    };
    let store = open_store(
        &Source::Dir(dir.clone()),
        id_column,
        options,
        PgOptions::default(),
    )
    .await?;
    if let Some(entries) = entries {
        let (tables, rows) = jsondb::import(store.as_ref(), &entries, id_column)
            .await
            .with_context(|| format!("cannot read {} into {}", path.display(), dir.display()))?;
        // Each write was durable once answered: the file can say so now.
        jsondb::record_synced(&dir, path)?;
        tracing::info!(
            file = %path.display(),
            data_dir = %dir.display(),
            "read {tables} tables ({rows} rows) into the data directory"
        );
    } else {
        tracing::info!(
            file = %path.display(),
            data_dir = %dir.display(),
            "serving the data directory made from the file (unchanged since)"
        );
    }
    Ok((store, dir))
}

fn retention(args: &ServeArgs) -> Retention {
    Retention {
        keep: args.changes_keep.max(1),
        memory: args.changes_memory.saturating_mul(1 << 20),
    }
}

/// Opens the store a source names: a data directory, or a database.
pub async fn open_store(
    source: &Source,
    id_column: &str,
    options: Options,
    pg: PgOptions,
) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match source {
        Source::Dir(data_dir) => {
            let id_column = id_column.to_string();
            let dir = data_dir.clone();
            tokio::task::spawn_blocking(move || DirStore::open(&dir, &id_column, options))
                .await?
                .with_context(|| format!("cannot open the data directory {}", data_dir.display()))?
        }
        Source::Postgres(url) => PgStore::open(url, id_column, pg).await?,
        Source::Json(path) => anyhow::bail!(
            "{} is a JSON file, not a store to open directly",
            path.display()
        ),
    })
}

/// The server's settings from the command line.
fn config(args: &ServeArgs) -> anyhow::Result<Config> {
    Ok(Config {
        bind: args.bind,
        source: match args.source() {
            Source::Dir(dir) => dir.display().to_string(),
            Source::Postgres(url) => crate::store::pg_redacted(&url),
            Source::Json(path) => format!(
                "{} (data in {})",
                path.display(),
                crate::jsondb::data_dir_of(&path).display()
            ),
        },
        id_column: args.id_column.clone(),
        access: access(args)?,
        cors: args.cors.clone(),
        tls: match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        },
        max_body: args.max_body,
        max_bulk_bytes: args.max_bulk_bytes,
        bulk_wait: Duration::from_secs(args.bulk_wait),
        max_uri: args.max_uri,
        max_header_bytes: args.max_header_bytes,
        max_headers: args.max_headers,
        max_connections: args.max_connections,
        max_subscribers: args.max_subscribers,
        header_timeout: Duration::from_secs(args.header_timeout),
        idle_timeout: Duration::from_secs(args.idle_timeout),
        body_timeout: Duration::from_secs(args.body_timeout),
        request_timeout: Duration::from_secs(args.request_timeout),
        shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
        csv_safe: args.csv_safe,
        json_server: crate::server::JsonServer::of(args)?,
        csv_bom: args.csv_bom,
        greeting: args.greeting.clone(),
        dump: args.dump,
    })
}

/// The access rules, the token read from `--token`/`CSVD_TOKEN` or from a
/// file.
fn access(args: &ServeArgs) -> anyhow::Result<Access> {
    let token = match (&args.token, &args.token_file) {
        (Some(token), _) => Some(token.trim().to_string()),
        (None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read --token-file {}: {e}", path.display()))?
                .trim()
                .to_string(),
        ),
        (None, None) => None,
    };
    if token.as_deref() == Some("") {
        anyhow::bail!("the token is empty");
    }
    if args.private && token.is_none() {
        anyhow::bail!("--private needs a token (--token, CSVD_TOKEN or --token-file)");
    }
    Ok(Access {
        read_only: args.read_only,
        token,
        private: args.private,
    })
}
