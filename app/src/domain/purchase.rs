//! Where a purchase is in its life.

/// Stored as the original application's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurchaseStatus {
    PendingPayment,
    Paid,
    Shipping,
}

impl PurchaseStatus {
    pub fn parse(stored: &str) -> PurchaseStatus {
        match stored {
            "Pending Payment" => PurchaseStatus::PendingPayment,
            "Paid" => PurchaseStatus::Paid,
            _ => PurchaseStatus::Shipping,
        }
    }

    /// As stored, and as shown.
    pub fn as_str(self) -> &'static str {
        match self {
            PurchaseStatus::PendingPayment => "Pending Payment",
            PurchaseStatus::Paid => "Paid",
            PurchaseStatus::Shipping => "Shipping",
        }
    }

    /// As the JSON API names it.
    pub fn code(self) -> &'static str {
        match self {
            PurchaseStatus::PendingPayment => "pending_payment",
            PurchaseStatus::Paid => "paid",
            PurchaseStatus::Shipping => "shipping",
        }
    }
}
