//! Where a purchase is in its life.

/// Stored as the original application's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurchaseStatus {
    PendingPayment,
    Paid,
    Shipping,
    /// Not paid in time: its copies went back on sale.
    Expired,
    /// Cancelled by its buyer before paying: its copies went back on sale.
    Cancelled,
}

impl PurchaseStatus {
    pub fn parse(stored: &str) -> PurchaseStatus {
        match stored {
            "Pending Payment" => PurchaseStatus::PendingPayment,
            "Paid" => PurchaseStatus::Paid,
            "Expired" => PurchaseStatus::Expired,
            "Cancelled" => PurchaseStatus::Cancelled,
            _ => PurchaseStatus::Shipping,
        }
    }

    /// As stored, and as shown.
    pub fn as_str(self) -> &'static str {
        match self {
            PurchaseStatus::PendingPayment => "Pending Payment",
            PurchaseStatus::Paid => "Paid",
            PurchaseStatus::Shipping => "Shipping",
            PurchaseStatus::Expired => "Expired",
            PurchaseStatus::Cancelled => "Cancelled",
        }
    }

    /// As the JSON API names it.
    pub fn code(self) -> &'static str {
        match self {
            PurchaseStatus::PendingPayment => "pending_payment",
            PurchaseStatus::Paid => "paid",
            PurchaseStatus::Shipping => "shipping",
            PurchaseStatus::Expired => "expired",
            PurchaseStatus::Cancelled => "cancelled",
        }
    }
}

/// How long an unpaid purchase holds its copies, and how many of them
/// one user may hold at once.
#[derive(Debug, Clone, Copy)]
pub struct Reservations {
    pub hold: std::time::Duration,
    /// Unpaid purchases per user.
    pub max_purchases: i64,
    /// Copies in a user's unpaid purchases, together.
    pub max_copies: i64,
}

impl Default for Reservations {
    fn default() -> Self {
        Reservations {
            hold: std::time::Duration::from_secs(15 * 60),
            max_purchases: 5,
            max_copies: 20,
        }
    }
}
