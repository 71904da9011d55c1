//! The `books` table: one function per query.

use std::sync::LazyLock;

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{now, Db};

/// A book as stored.
#[derive(Debug, Clone)]
pub struct Book {
    pub id: i64,
    pub title: String,
    pub author: String,
    pub description: String,
    pub price_cents: i64,
    pub stock: i64,
    pub seller_id: i64,
    /// The cover's file name under `covers/`.
    pub cover: Option<String>,
    /// The cover file's size, for the seller's upload quota.
    pub cover_bytes: i64,
}

/// The columns of [`Book`], in the order `from_row` reads them.
const COLS: &str =
    "id, title, author, description, price_cents, stock, seller_id, cover, cover_bytes";
/// The index of the first column after [`COLS`].
const AFTER_COLS: usize = 9;

impl<'r> sqlx::FromRow<'r, AnyRow> for Book {
    fn from_row(r: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Book {
            id: r.try_get(0)?,
            title: r.try_get(1)?,
            author: r.try_get(2)?,
            description: r.try_get(3)?,
            price_cents: r.try_get(4)?,
            stock: r.try_get(5)?,
            seller_id: r.try_get(6)?,
            cover: r.try_get(7)?,
            cover_bytes: r.try_get(8)?,
        })
    }
}

/// What a seller's form says about a book.
pub use crate::domain::input::BookInput;

/// A stored cover: its file name and size.
pub struct StoredCover<'a> {
    pub name: &'a str,
    pub bytes: i64,
}

/// Totals are counted up to this many books: beyond it a page says "more
/// than", so no page ever counts the whole table.
pub const COUNT_CAP: i64 = 1000;

/// Books on a catalog page.
pub const PAGE_SIZE: i64 = 20;
/// The last page served: an offset stays at most 10,000 rows, whatever the
/// page number asked for.
pub const MAX_PAGE: i64 = 500;

/// One page of the catalog or of a search.
pub struct CatalogPage {
    pub page: i64,
    /// The search text as used (trimmed, cut to 100 characters).
    pub text: String,
    pub books: Vec<Book>,
    /// Matching books, exact when `total_exact`, else `COUNT_CAP`.
    pub total: i64,
    pub total_exact: bool,
    pub has_next: bool,
}

/// How many books match `cond`, counting no further than `COUNT_CAP + 1`:
/// the count runs only when a probe finds no `COUNT_CAP + 1`th match.
/// `cond`'s parameters are bound twice.
fn capped_count(cond: &str) -> String {
    format!(
        "(CASE WHEN (SELECT 1 FROM books WHERE {cond} LIMIT 1 OFFSET {COUNT_CAP}) IS NULL \
         THEN (SELECT COUNT(*) FROM books WHERE {cond}) ELSE {} END)",
        COUNT_CAP + 1
    )
}

const BY_TITLE: &str = "title LIKE ? ESCAPE '!'";
const BY_AUTHOR: &str = "author LIKE ? ESCAPE '!' AND NOT (title LIKE ? ESCAPE '!')";

// The catalog's statements, built once.
static NEWEST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLS}, {} FROM books ORDER BY id DESC LIMIT ? OFFSET ?",
        capped_count("1 = 1")
    )
});
static COUNT_ALL: LazyLock<String> = LazyLock::new(|| format!("SELECT {}", capped_count("1 = 1")));
static SEARCH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLS} FROM (\
         SELECT * FROM (SELECT {COLS}, 0 AS rank_, title AS key_ FROM books \
         WHERE {BY_TITLE} ORDER BY title, id LIMIT ?) t \
         UNION ALL \
         SELECT * FROM (SELECT {COLS}, 1 AS rank_, author AS key_ FROM books \
         WHERE {BY_AUTHOR} ORDER BY author, id LIMIT ?) a\
         ) m ORDER BY rank_, key_, id LIMIT ? OFFSET ?"
    )
});
static COUNT_SEARCH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {}, {}",
        capped_count(BY_TITLE),
        capped_count(BY_AUTHOR)
    )
});
static BY_ID: LazyLock<String> = LazyLock::new(|| format!("SELECT {COLS} FROM books WHERE id = ?"));
static BY_SELLER: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {COLS} FROM books WHERE seller_id = ? ORDER BY id DESC"));

/// The newest books: `want` of them after `offset`, and how many books
/// there are (capped at `COUNT_CAP + 1`). One round trip when the page is
/// not empty.
pub async fn newest(db: &Db, want: i64, offset: i64) -> Result<(Vec<Book>, i64), sqlx::Error> {
    let pool = db.pool();
    let rows = sqlx::query(&NEWEST)
        .bind(want)
        .bind(offset)
        .fetch_all(&pool)
        .await?;
    let counted: i64 = match rows.first() {
        Some(r) => r.try_get(AFTER_COLS)?,
        None => sqlx::query(&COUNT_ALL).fetch_one(&pool).await?.try_get(0)?,
    };
    let books = rows
        .iter()
        .map(sqlx::FromRow::from_row)
        .collect::<Result<_, _>>()?;
    Ok((books, counted))
}

/// The books whose title starts with `like`'s prefix (by title), then
/// those whose author does (by author): `want` of them after `offset`, and
/// how many match (capped). `like` is a `LIKE` pattern escaped with `!`.
pub async fn search(
    db: &Db,
    like: &str,
    want: i64,
    offset: i64,
) -> Result<(Vec<Book>, i64), sqlx::Error> {
    let pool = db.pool();
    // The first `offset + want` of each kind of match, each read in its
    // index's order, then merged: title matches first.
    let books: Vec<Book> = sqlx::query_as(&SEARCH)
        .bind(like)
        .bind(offset + want)
        .bind(like)
        .bind(like)
        .bind(offset + want)
        .bind(want)
        .bind(offset)
        .fetch_all(&pool)
        .await?;
    let counts = sqlx::query(&COUNT_SEARCH)
        .bind(like)
        .bind(like)
        .bind(like)
        .bind(like)
        .bind(like)
        .bind(like)
        .fetch_one(&pool)
        .await?;
    let counted = counts.try_get::<i64, _>(0)? + counts.try_get::<i64, _>(1)?;
    Ok((books, counted))
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Book>, sqlx::Error> {
    sqlx::query_as(&BY_ID)
        .bind(id)
        .fetch_optional(&db.pool())
        .await
}

/// A seller's books, newest first.
pub async fn by_seller(db: &Db, seller_id: i64) -> Result<Vec<Book>, sqlx::Error> {
    sqlx::query_as(&BY_SELLER)
        .bind(seller_id)
        .fetch_all(&db.pool())
        .await
}

/// The bytes of all of a seller's covers.
pub async fn cover_bytes_of(db: &Db, seller_id: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(COVER_BYTES)
        .bind(seller_id)
        .fetch_one(&db.pool())
        .await
}

// `SUM` is a DECIMAL on MySQL: cast to a whole number on both.
const COVER_BYTES: &str =
    "SELECT CAST(COALESCE(SUM(cover_bytes), 0) AS SIGNED) FROM books WHERE seller_id = ?";

/// Starts a transaction in which the seller's covers cannot change: the
/// seller's row is written (unchanged), which holds its lock on MySQL and
/// the database's write lock on SQLite until the end. Returns the bytes of
/// the seller's covers as they are now.
pub async fn lock_seller(
    db: &Db,
    seller_id: i64,
) -> Result<(Transaction<'static, Any>, i64), sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    sqlx::query("UPDATE users SET is_admin = is_admin WHERE id = ?")
        .bind(seller_id)
        .execute(&mut *tx)
        .await?;
    let used = sqlx::query_scalar(COVER_BYTES)
        .bind(seller_id)
        .fetch_one(&mut *tx)
        .await?;
    Ok((tx, used))
}

/// Adds a book.
pub async fn insert<'c>(
    ex: impl sqlx::Executor<'c, Database = Any>,
    seller_id: i64,
    b: &BookInput,
    cover: Option<StoredCover<'_>>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO books (title, author, description, price_cents, stock, seller_id, cover, cover_bytes, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&b.title)
    .bind(&b.author)
    .bind(&b.description)
    .bind(b.price_cents)
    .bind(b.stock)
    .bind(seller_id)
    .bind(cover.as_ref().map(|c| c.name))
    .bind(cover.as_ref().map_or(0, |c| c.bytes))
    .bind(now())
    .execute(ex)
    .await?;
    Ok(())
}

/// The cover a seller's book has now and its size, read in `tx`; `None`
/// when the book is gone.
pub async fn cover_in(
    tx: &mut Transaction<'static, Any>,
    id: i64,
    seller_id: i64,
) -> Result<Option<(Option<String>, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT cover, cover_bytes FROM books WHERE id = ? AND seller_id = ?")
        .bind(id)
        .bind(seller_id)
        .fetch_optional(&mut **tx)
        .await
}

/// Gives a seller's book a new cover, in `tx` (see [`lock_seller`]); the
/// number of books changed.
pub async fn set_cover(
    tx: &mut Transaction<'static, Any>,
    id: i64,
    seller_id: i64,
    cover: StoredCover<'_>,
) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("UPDATE books SET cover = ?, cover_bytes = ? WHERE id = ? AND seller_id = ?")
            .bind(cover.name)
            .bind(cover.bytes)
            .bind(id)
            .bind(seller_id)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
    )
}

/// How an edit sets the stock.
#[derive(Clone, Copy)]
pub enum StockChange {
    /// To this number.
    Set(i64),
    /// By this much, from the stock as it is now (copies sold while the
    /// form was open stay sold), never below 0.
    By(i64),
}

/// Changes a seller's book; a new cover replaces the old one. The number
/// of books changed (0 when it is gone, or not the seller's).
pub async fn update<'c>(
    ex: impl sqlx::Executor<'c, Database = Any>,
    id: i64,
    seller_id: i64,
    b: &BookInput,
    stock: StockChange,
    cover: Option<StoredCover<'_>>,
) -> Result<u64, sqlx::Error> {
    let sql = match (stock, cover.is_some()) {
        (StockChange::Set(_), false) => {
            "UPDATE books SET title = ?, author = ?, description = ?, price_cents = ?, stock = ? \
             WHERE id = ? AND seller_id = ?"
        }
        (StockChange::By(_), false) => {
            "UPDATE books SET title = ?, author = ?, description = ?, price_cents = ?, \
             stock = CASE WHEN stock + ? < 0 THEN 0 ELSE stock + ? END \
             WHERE id = ? AND seller_id = ?"
        }
        (StockChange::Set(_), true) => {
            "UPDATE books SET title = ?, author = ?, description = ?, price_cents = ?, stock = ?, \
             cover = ?, cover_bytes = ? WHERE id = ? AND seller_id = ?"
        }
        (StockChange::By(_), true) => {
            "UPDATE books SET title = ?, author = ?, description = ?, price_cents = ?, \
             stock = CASE WHEN stock + ? < 0 THEN 0 ELSE stock + ? END, \
             cover = ?, cover_bytes = ? WHERE id = ? AND seller_id = ?"
        }
    };
    let mut q = sqlx::query(sql)
        .bind(&b.title)
        .bind(&b.author)
        .bind(&b.description)
        .bind(b.price_cents);
    q = match stock {
        StockChange::Set(n) => q.bind(n),
        StockChange::By(d) => q.bind(d).bind(d),
    };
    if let Some(c) = &cover {
        q = q.bind(c.name).bind(c.bytes);
    }
    let n = q
        .bind(id)
        .bind(seller_id)
        .execute(ex)
        .await?
        .rows_affected();
    Ok(n)
}

/// Deletes a seller's book unless it has purchases that count (unpaid,
/// paid or shipping): the number deleted. Expired and cancelled
/// purchases, which hold nothing and were never paid, go with it; when the
/// book stays, they stay too. A purchase committed meanwhile may still
/// make the database refuse it (a foreign-key violation).
pub async fn delete_unsold(db: &Db, id: i64, seller_id: i64) -> Result<u64, sqlx::Error> {
    use crate::domain::PurchaseStatus;
    let mut tx = db.pool().begin().await?;
    sqlx::query(
        "DELETE FROM purchases WHERE book_id = ? AND status IN (?, ?) \
         AND book_id IN (SELECT id FROM books WHERE id = ? AND seller_id = ?)",
    )
    .bind(id)
    .bind(PurchaseStatus::Expired.as_str())
    .bind(PurchaseStatus::Cancelled.as_str())
    .bind(id)
    .bind(seller_id)
    .execute(&mut *tx)
    .await?;
    let n = sqlx::query(
        "DELETE FROM books WHERE id = ? AND seller_id = ? \
         AND NOT EXISTS (SELECT 1 FROM purchases WHERE book_id = ?)",
    )
    .bind(id)
    .bind(seller_id)
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(n)
}

/// Whether a book exists.
pub async fn exists(db: &Db, id: i64) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("SELECT 1 FROM books WHERE id = ?")
        .bind(id)
        .fetch_optional(&db.pool())
        .await?;
    Ok(r.is_some())
}
