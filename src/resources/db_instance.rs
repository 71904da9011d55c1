pub const KIND: &str = "rds:db-instance";
