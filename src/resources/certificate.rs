pub const KIND: &str = "acm:certificate";
