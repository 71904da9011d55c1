pub const KIND: &str = "elbv2:listener";
