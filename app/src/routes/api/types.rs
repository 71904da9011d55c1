//! The JSON the API answers with and reads, as the OpenAPI document
//! describes it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::body::Loose;
use crate::db::books::Book;
use crate::db::purchases::Purchase;
use crate::db::tokens::TokenRow;
use crate::domain::{money, PurchaseStatus, Scope};

#[derive(Serialize, ToSchema)]
pub struct BookJson {
    pub id: i64,
    pub title: String,
    pub author: String,
    pub description: String,
    /// The price as shown, `12.50`.
    #[schema(example = "12.50")]
    pub price: String,
    pub price_cents: i64,
    pub stock: i64,
    pub seller_id: i64,
    /// Where the cover is served, if the book has one.
    pub cover_url: Option<String>,
}

impl From<&Book> for BookJson {
    fn from(b: &Book) -> Self {
        BookJson {
            id: b.id,
            title: b.title.clone(),
            author: b.author.clone(),
            description: b.description.clone(),
            price: money(b.price_cents),
            price_cents: b.price_cents,
            stock: b.stock,
            seller_id: b.seller_id,
            cover_url: b.cover.as_ref().map(|c| format!("/covers/{c}")),
        }
    }
}

/// One page of the catalog (20 books).
#[derive(Serialize, ToSchema)]
pub struct PageJson {
    pub page: i64,
    pub per_page: i64,
    /// Matching books, counted up to 1000.
    pub total: i64,
    /// Whether `total` is exact (false: more than 1000).
    pub total_exact: bool,
    pub has_next: bool,
    pub books: Vec<BookJson>,
}

#[derive(Serialize, ToSchema)]
pub struct BooksJson {
    pub books: Vec<BookJson>,
}

/// Where a purchase is: unpaid (holding its copies until
/// `reserved_until`), paid, shipping, or ended unpaid (expired when its
/// time ran out, cancelled by its buyer), its copies back on sale.
#[derive(Serialize, ToSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseStatusJson {
    PendingPayment,
    Paid,
    Shipping,
    Expired,
    Cancelled,
}

impl From<PurchaseStatus> for PurchaseStatusJson {
    fn from(s: PurchaseStatus) -> Self {
        match s {
            PurchaseStatus::PendingPayment => PurchaseStatusJson::PendingPayment,
            PurchaseStatus::Paid => PurchaseStatusJson::Paid,
            PurchaseStatus::Shipping => PurchaseStatusJson::Shipping,
            PurchaseStatus::Expired => PurchaseStatusJson::Expired,
            PurchaseStatus::Cancelled => PurchaseStatusJson::Cancelled,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PurchaseJson {
    pub id: i64,
    pub book_title: String,
    pub quantity: i64,
    #[schema(example = "25.00")]
    pub total_price: String,
    pub total_cents: i64,
    pub status: PurchaseStatusJson,
    /// While unpaid: until when (Unix seconds) it holds its copies; it
    /// must be paid before then, or it expires. `null` otherwise.
    pub reserved_until: Option<i64>,
    /// The delivery provider, once chosen.
    pub delivery_provider: Option<String>,
}

impl From<&Purchase> for PurchaseJson {
    fn from(p: &Purchase) -> Self {
        PurchaseJson {
            id: p.id,
            book_title: p.book_title.clone(),
            quantity: p.quantity,
            total_price: money(p.total_cents),
            total_cents: p.total_cents,
            status: p.status.into(),
            reserved_until: p
                .reserved_until
                .filter(|_| p.status == PurchaseStatus::PendingPayment),
            delivery_provider: p.provider.clone(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PurchasesJson {
    pub purchases: Vec<PurchaseJson>,
}

#[derive(Serialize, ToSchema)]
pub struct ProviderJson {
    pub id: i64,
    pub name: String,
    pub coverage_area: String,
    #[schema(example = "15.00")]
    pub cost: String,
    pub cost_cents: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ProvidersJson {
    pub providers: Vec<ProviderJson>,
}

#[derive(Serialize, ToSchema)]
pub struct UserJson {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub is_admin: bool,
}

#[derive(Serialize, ToSchema)]
pub struct UsersJson {
    pub users: Vec<UserJson>,
}

/// The caller, and what the credentials used may do.
#[derive(Serialize, ToSchema)]
pub struct MeJson {
    pub user: UserJson,
    pub scopes: Vec<String>,
    /// The session's CSRF token, for writes authenticated by the cookie
    /// (`X-CSRF-Token`); absent with an API token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenJson {
    pub id: i64,
    pub name: String,
    /// The token's first characters, to tell it apart.
    #[schema(example = "bks_1a2b3c4d")]
    pub prefix: String,
    pub scopes: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
    pub expired: bool,
}

impl From<&TokenRow> for TokenJson {
    fn from(t: &TokenRow) -> Self {
        TokenJson {
            id: t.id,
            name: t.name.clone(),
            prefix: t.prefix.clone(),
            scopes: t.scopes.list().iter().map(|s| s.to_string()).collect(),
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
            expired: t.expires_at <= crate::db::now(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TokensJson {
    pub tokens: Vec<TokenJson>,
}

/// A token just made: `token` is shown this once and never again.
#[derive(Serialize, ToSchema)]
pub struct NewTokenJson {
    #[schema(example = "bks_1a2b3c4d...")]
    pub token: String,
    #[serde(flatten)]
    pub info: TokenJson,
}

// Requests. Numbers may be sent as numbers or strings: the site's own
// checks read them, with its messages.

/// A new account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Ada", "email": "ada@example.com", "password": "a long passphrase"}))]
pub struct RegisterJson {
    #[schema(required = true, min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: Option<String>,
    #[schema(required = true, max_length = 254, format = Email)]
    pub email: Option<String>,
    #[schema(required = true, min_length = 8, max_length = 128)]
    pub password: Option<String>,
}

/// A token asked for with the account's email and password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ada@example.com", "password": "a long passphrase",
    "name": "stock import", "scopes": ["read", "sell"], "expires_in_days": 30}))]
pub struct TokenRequestJson {
    #[schema(required = true, format = Email)]
    pub email: Option<String>,
    #[schema(required = true)]
    pub password: Option<String>,
    /// What the token is for.
    #[schema(required = true, min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: Option<String>,
    /// Among `read`, `buy`, `sell`, `admin` (admin: administrators only).
    #[schema(required = true, min_items = 1)]
    pub scopes: Option<Vec<Scope>>,
    /// 1 to 365; 30 when absent.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 365)]
    pub expires_in_days: Option<Loose>,
}

/// A book as a seller describes it (all fields, as the form has them).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"title": "Dune", "author": "Frank Herbert", "description": "Spice.",
    "price": "12.50", "stock": 3}))]
pub struct BookInputJson {
    #[schema(required = true, min_length = 1, max_length = 200, pattern = r"\S")]
    pub title: Option<String>,
    #[schema(required = true, min_length = 1, max_length = 200, pattern = r"\S")]
    pub author: Option<String>,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// `12`, `12.5` or `12.50`; at most 1000000.
    #[schema(value_type = String, required = true, pattern = r"^[0-9]{1,6}(\.[0-9]{1,2})?$")]
    pub price: Option<Loose>,
    /// 0 to 1000000.
    #[schema(value_type = i64, required = true, minimum = 0, maximum = 1000000)]
    pub stock: Option<Loose>,
    /// On an edit: the stock the client last saw. The change
    /// (`stock - stock_shown`) is applied to the stock as it is now, so
    /// copies sold meanwhile stay sold. Without it, `stock` is set.
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 1000000)]
    pub stock_shown: Option<Loose>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"book_id": 1, "quantity": 2}))]
pub struct BuyJson {
    #[schema(value_type = i64, required = true, minimum = 1)]
    pub book_id: Option<Loose>,
    /// 1 to 100; 1 when absent.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub quantity: Option<Loose>,
}

#[derive(Deserialize, ToSchema, Clone, Copy, Default)]
#[serde(rename_all = "lowercase")]
pub enum PaymentMethod {
    #[default]
    Card,
    Transfer,
    Cash,
}

impl PaymentMethod {
    /// As the payment form sends it.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::Card => "card",
            PaymentMethod::Transfer => "transfer",
            PaymentMethod::Cash => "cash",
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"payment_method": "card"}))]
pub struct PayJson {
    /// `card` when absent.
    pub payment_method: Option<PaymentMethod>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"provider_id": 1}))]
pub struct DeliveryJson {
    #[schema(value_type = i64, required = true, minimum = 1)]
    pub provider_id: Option<Loose>,
}

/// An image's bytes, as a cover is sent.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct ImageBytes(pub Vec<u8>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_is_answered_by_its_code() {
        use PurchaseStatus::*;
        for s in [PendingPayment, Paid, Shipping, Expired, Cancelled] {
            let json = serde_json::to_value(PurchaseStatusJson::from(s)).unwrap();
            assert_eq!(json, serde_json::Value::from(s.code()), "{s:?}");
        }
    }
}
