pub const KIND: &str = "rds:db-subnet-group";
