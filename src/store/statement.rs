//! One SQL statement with its values, run by the writer inside a transaction or read from
//! the pool: the shape every simple write and lookup of the store shares.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::Any;

use super::{QueryContext, Store, StoreError, StoreTx};

/// A value bound to a statement's `$n`, owned so the statement can travel to the writer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Int(i64),
    Text(String),
    MaybeInt(Option<i64>),
    MaybeText(Option<String>),
}

impl From<i64> for Arg {
    fn from(value: i64) -> Self {
        Arg::Int(value)
    }
}

impl From<bool> for Arg {
    fn from(value: bool) -> Self {
        Arg::Int(value.into())
    }
}

impl From<String> for Arg {
    fn from(value: String) -> Self {
        Arg::Text(value)
    }
}

impl From<&String> for Arg {
    fn from(value: &String) -> Self {
        Arg::Text(value.clone())
    }
}

impl From<&str> for Arg {
    fn from(value: &str) -> Self {
        Arg::Text(value.to_string())
    }
}

impl From<Option<i64>> for Arg {
    fn from(value: Option<i64>) -> Self {
        Arg::MaybeInt(value)
    }
}

impl From<Option<String>> for Arg {
    fn from(value: Option<String>) -> Self {
        Arg::MaybeText(value)
    }
}

impl From<Option<&str>> for Arg {
    fn from(value: Option<&str>) -> Self {
        Arg::MaybeText(value.map(str::to_string))
    }
}

/// The values of a statement, in `$n` order: `args![id, ts]`.
macro_rules! args {
    ($($value:expr),* $(,)?) => {
        vec![$($crate::store::statement::Arg::from($value)),*]
    };
}
pub(crate) use args;

/// A statement with its values bound in order.
pub(crate) fn bound(sql: &str, args: Vec<Arg>) -> Query<'_, Any, AnyArguments<'_>> {
    args.into_iter()
        .fold(sqlx::query(sql), |query, arg| match arg {
            Arg::Int(v) => query.bind(v),
            Arg::Text(v) => query.bind(v),
            Arg::MaybeInt(v) => query.bind(v),
            Arg::MaybeText(v) => query.bind(v),
        })
}

impl StoreTx<'_> {
    /// Runs one statement in this transaction; answers how many rows it changed.
    pub(crate) async fn execute(
        &mut self,
        context: &'static str,
        sql: impl Into<String>,
        args: Vec<Arg>,
    ) -> Result<u64, StoreError> {
        let sql = sql.into();
        self.run(move |c| {
            Box::pin(async move {
                let done = bound(&sql, args).execute(c.conn()).await.context(context)?;
                Ok(done.rows_affected())
            })
        })
        .await
    }

    /// [`Self::execute`], when how many rows it changed does not matter.
    pub(crate) async fn write(
        &mut self,
        context: &'static str,
        sql: impl Into<String>,
        args: Vec<Arg>,
    ) -> Result<(), StoreError> {
        self.execute(context, sql, args).await.map(drop)
    }

    /// The rows one query answers inside this transaction (what it sees, its own writes
    /// included), each read by `read`.
    pub(crate) async fn fetch<T: Send + 'static>(
        &mut self,
        context: &'static str,
        sql: impl Into<String>,
        args: Vec<Arg>,
        read: fn(&AnyRow) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let sql = sql.into();
        self.run(move |c| {
            Box::pin(async move {
                let rows = bound(&sql, args)
                    .fetch_all(c.conn())
                    .await
                    .context(context)?;
                rows.iter().map(read).collect()
            })
        })
        .await
    }
}

impl Store {
    /// Runs one statement in a transaction of its own; answers how many rows it changed.
    pub(crate) async fn execute(
        &self,
        context: &'static str,
        sql: impl Into<String>,
        args: Vec<Arg>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let changed = tx.execute(context, sql, args).await?;
        tx.commit().await?;
        Ok(changed)
    }

    /// [`Self::execute`], when how many rows it changed does not matter.
    pub(crate) async fn write(
        &self,
        context: &'static str,
        sql: impl Into<String>,
        args: Vec<Arg>,
    ) -> Result<(), StoreError> {
        self.execute(context, sql, args).await.map(drop)
    }

    /// The rows one query answers from the pool, each read by `read`.
    pub(crate) async fn fetch<T>(
        &self,
        context: &'static str,
        sql: &str,
        args: Vec<Arg>,
        read: impl Fn(&AnyRow) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let rows = bound(sql, args)
            .fetch_all(self.pool())
            .await
            .context(context)?;
        rows.iter().map(read).collect()
    }
}

/// The `VALUES` list of a multi-row insert of `rows` rows of `columns` values each. SQLite
/// gets nameless `?`: it finds a named parameter (`$n`) by scanning the list of names, once
/// per parameter at every execution, which grew with the square of a grouped insert's size.
pub(crate) fn value_rows(conn: &sqlx::AnyConnection, rows: usize, columns: usize) -> String {
    let sqlite = conn.backend_name() == "SQLite";
    let mut sql = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            if sqlite {
                sql.push('?');
            } else {
                sql.push_str(&format!("${}", row * columns + column + 1));
            }
        }
        sql.push(')');
    }
    sql
}
