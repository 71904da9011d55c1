pub const KIND: &str = "elbv2:target-group";
