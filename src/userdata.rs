//! Placeholder: the boot script renderer.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDataVars {
    pub stack: String,
    pub region: String,
    pub bucket: String,
    pub key: String,
    pub sha256: String,
    pub file_system_id: String,
    pub access_point_id: String,
    pub data_dir: String,
    pub port: u16,
    pub db_host: String,
    pub db_port: u16,
    pub db_name: String,
    pub db_user: String,
    pub db_secret_arn: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UserDataError(String);

pub fn render(v: &UserDataVars) -> Result<String, UserDataError> {
    Ok(format!(
        "#!/bin/bash\n# bookstore-infra user-data v1 template={} vars={}\n",
        template_digest(),
        serde_json::to_string(v).unwrap()
    ))
}

pub fn read_back(script: &str) -> Option<(String, UserDataVars)> {
    let line = script.lines().nth(1)?;
    let rest = line.strip_prefix("# bookstore-infra user-data v1 template=")?;
    let (d, vars) = rest.split_once(" vars=")?;
    Some((d.to_string(), serde_json::from_str(vars).ok()?))
}

pub fn template_digest() -> String {
    "0".repeat(64)
}
