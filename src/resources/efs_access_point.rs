pub const KIND: &str = "efs:access-point";
