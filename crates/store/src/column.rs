//! The bridge between domain values and rusqlite: a domain type implements
//! [`ToColumn`]/[`FromColumn`] (in `codec.rs`), and rusqlite sees it through
//! [`Sql`] and [`RowExt::col`].

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::Row;

/// A domain value as a column: what it is written as and read back from.
///
/// rusqlite's `ToSql`/`FromSql` cannot be implemented for domain types in
/// this crate (the orphan rule: both are foreign here), and `entrada-domain`
/// must not know rusqlite. So a domain value crosses into SQL wrapped in
/// [`Sql`] (`params![Sql(orq), Sql(&code)]`) and comes out through
/// [`RowExt::col`] (`row.col("orq")?`). The impls for each domain type are in
/// `codec.rs`.
pub trait ToColumn {
    fn to_column(&self) -> ToSqlOutput<'_>;
}

/// The read half of [`ToColumn`].
pub trait FromColumn: Sized {
    fn from_column(value: ValueRef<'_>) -> FromSqlResult<Self>;
}

/// A domain value (or a reference to one, or an `Option` of one) as a SQL
/// parameter or column value.
pub struct Sql<T>(pub T);

impl<T: ToColumn> ToSql for Sql<T> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.0.to_column())
    }
}

impl<T: FromColumn> FromSql for Sql<T> {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        T::from_column(value).map(Sql)
    }
}

impl<T: ToColumn + ?Sized> ToColumn for &T {
    fn to_column(&self) -> ToSqlOutput<'_> {
        (**self).to_column()
    }
}

impl<T: ToColumn> ToColumn for Option<T> {
    fn to_column(&self) -> ToSqlOutput<'_> {
        match self {
            Some(v) => v.to_column(),
            None => ToSqlOutput::from(rusqlite::types::Null),
        }
    }
}

impl<T: FromColumn> FromColumn for Option<T> {
    fn from_column(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value {
            ValueRef::Null => Ok(None),
            v => T::from_column(v).map(Some),
        }
    }
}

/// `row.col("orq")`: `Row::get` for domain values.
pub trait RowExt {
    fn col<I: rusqlite::RowIndex, T: FromColumn>(&self, idx: I) -> rusqlite::Result<T>;
}

impl RowExt for Row<'_> {
    fn col<I: rusqlite::RowIndex, T: FromColumn>(&self, idx: I) -> rusqlite::Result<T> {
        self.get::<I, Sql<T>>(idx).map(|Sql(v)| v)
    }
}
