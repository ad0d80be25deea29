//! The JWT secret: `HELPDESK_JWT_SECRET`, else the one `helpdesk up` generated.

use std::path::Path;

use anyhow::Context;

const FILE: &str = "jwt-secret";

/// Reads the configured secret.
pub fn load(data_dir: &Path) -> anyhow::Result<String> {
    if let Ok(s) = std::env::var("HELPDESK_JWT_SECRET")
        && !s.is_empty()
    {
        return Ok(s);
    }
    let path = data_dir.join(FILE);
    let s = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no HELPDESK_JWT_SECRET and no {} (run `helpdesk up` first)",
            path.display()
        )
    })?;
    Ok(s.trim().to_string())
}

/// Reads the secret, generating and storing one in the data folder on first use.
pub fn load_or_create(data_dir: &Path) -> anyhow::Result<String> {
    if let Ok(s) = load(data_dir) {
        return Ok(s);
    }
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let path = data_dir.join(FILE);
    std::fs::write(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(secret)
}
