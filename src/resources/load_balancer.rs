pub const KIND: &str = "elbv2:load-balancer";
