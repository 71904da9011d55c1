pub const KIND: &str = "efs:file-system";
