pub const KIND: &str = "route53:alias";
