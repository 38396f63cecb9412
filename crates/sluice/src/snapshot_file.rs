//! The last definitions a node served, kept on its local disk so that it can
//! start and serve while the shared store (PostgreSQL) is unreachable.
//!
//! Written after every reload that served a new revision: APIs (definition
//! JSON, endpoint secrets sealed with the node's secrets key), API keys (their
//! digests, never a key) and subscriptions. Applications and admin users are
//! not needed to serve traffic and are left out. The write is atomic (a
//! temporary file in the same directory, synced, then renamed over the old
//! one) and the file is readable by its owner only (0600), so a crash leaves
//! the previous snapshot or the new one, never half of one.

use crate::reload::ServedDefinitions;
use anyhow::{Context, bail};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_store::{ApiKeyRecord, SecretSealer, StoredApi, Subscription};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// File name of the snapshot inside the data directory.
pub(crate) const SNAPSHOT_FILE: &str = "definitions-snapshot.json";
/// Version of the file's layout; a file of another version is not read.
const FORMAT: u32 = 1;

/// Where a node keeps its snapshot, and the key its secrets are sealed with.
pub(crate) struct SnapshotFile {
    path: PathBuf,
    sealer: SecretSealer,
    /// Revision of the last snapshot written by this process.
    written: Mutex<Option<u64>>,
}

impl SnapshotFile {
    /// The snapshot file of `data_dir`.
    pub(crate) fn in_dir(data_dir: &Path, sealer: SecretSealer) -> Self {
        Self {
            path: data_dir.join(SNAPSHOT_FILE),
            sealer,
            written: Mutex::new(None),
        }
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Save `definitions`, read at `revision`, unless this revision is the
    /// one saved last.
    pub(crate) fn write(
        &self,
        revision: u64,
        definitions: &ServedDefinitions,
    ) -> anyhow::Result<()> {
        let mut written = self.written.lock();
        if *written == Some(revision) {
            return Ok(());
        }
        let document = SnapshotDocument {
            format: FORMAT,
            revision,
            apis: definitions
                .apis
                .iter()
                .map(|api| ApiRecord::from(self.sealer.seal_api(api)))
                .collect(),
            keys: definitions.keys.iter().map(KeyRecord::from).collect(),
            subscriptions: definitions
                .subscriptions
                .iter()
                .map(SubscriptionRecord::from)
                .collect(),
        };
        let bytes = serde_json::to_vec(&document).context("cannot encode the snapshot")?;
        write_atomically(&self.path, &bytes)?;
        *written = Some(revision);
        Ok(())
    }

    /// The saved snapshot and its revision, with endpoint secrets opened;
    /// `None` when there is none.
    pub(crate) fn read(&self) -> anyhow::Result<Option<(u64, ServedDefinitions)>> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", self.path.display()));
            }
        };
        let document: SnapshotDocument = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a definitions snapshot", self.path.display()))?;
        if document.format != FORMAT {
            bail!(
                "{} has snapshot format {}, this Sluice reads format {FORMAT}",
                self.path.display(),
                document.format
            );
        }
        let apis = document
            .apis
            .into_iter()
            .map(|record| self.sealer.open_api(record.into()))
            .collect::<Result<_, _>>()
            .with_context(|| {
                format!(
                    "{}: cannot open the endpoint secrets (is this node's secrets key the one that wrote it?)",
                    self.path.display()
                )
            })?;
        let keys = document
            .keys
            .into_iter()
            .map(ApiKeyRecord::try_from)
            .collect::<anyhow::Result<_>>()
            .with_context(|| format!("{}: unreadable API key", self.path.display()))?;
        let subscriptions = document.subscriptions.into_iter().map(Into::into).collect();
        Ok(Some((
            document.revision,
            ServedDefinitions {
                apis,
                keys,
                subscriptions,
            },
        )))
    }
}

/// Write `bytes` to `path` through a synced temporary file and a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, path)?;
        // The rename is durable once the directory is.
        File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written.with_context(|| format!("cannot write {}", path.display()))
}

#[derive(Serialize, Deserialize)]
struct SnapshotDocument {
    format: u32,
    revision: u64,
    apis: Vec<ApiRecord>,
    keys: Vec<KeyRecord>,
    subscriptions: Vec<SubscriptionRecord>,
}

#[derive(Serialize, Deserialize)]
struct ApiRecord {
    id: String,
    context: String,
    version: String,
    created_at: i64,
    updated_at: i64,
    definition: Value,
}

impl From<StoredApi> for ApiRecord {
    fn from(api: StoredApi) -> Self {
        Self {
            id: api.id,
            context: api.context,
            version: api.version,
            created_at: api.created_at,
            updated_at: api.updated_at,
            definition: api.definition,
        }
    }
}

impl From<ApiRecord> for StoredApi {
    fn from(record: ApiRecord) -> Self {
        Self {
            id: record.id,
            context: record.context,
            version: record.version,
            definition: record.definition,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct KeyRecord {
    key_id: String,
    application_id: String,
    key_type: String,
    /// Hex of the HMAC digest.
    digest: String,
    created_at: i64,
    expires_at: Option<i64>,
    revoked: bool,
}

impl From<&ApiKeyRecord> for KeyRecord {
    fn from(key: &ApiKeyRecord) -> Self {
        Self {
            key_id: key.key_id.clone(),
            application_id: key.application_id.clone(),
            key_type: key.key_type.key_type_str().to_owned(),
            digest: hex::encode(key.digest),
            created_at: key.created_at,
            expires_at: key.expires_at,
            revoked: key.revoked,
        }
    }
}

impl TryFrom<KeyRecord> for ApiKeyRecord {
    type Error = anyhow::Error;

    fn try_from(record: KeyRecord) -> anyhow::Result<Self> {
        let digest = hex::decode(&record.digest)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .with_context(|| format!("key {}: the digest is not 32 bytes of hex", record.key_id))?;
        Ok(Self {
            key_type: record
                .key_type
                .parse()
                .map_err(|e: String| anyhow::anyhow!("key {}: {e}", record.key_id))?,
            key_id: record.key_id,
            application_id: record.application_id,
            digest,
            created_at: record.created_at,
            expires_at: record.expires_at,
            revoked: record.revoked,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct SubscriptionRecord {
    id: String,
    api_id: String,
    application_id: String,
    throttling_policy: String,
    created_at: i64,
}

impl From<&Subscription> for SubscriptionRecord {
    fn from(subscription: &Subscription) -> Self {
        Self {
            id: subscription.id.clone(),
            api_id: subscription.api_id.clone(),
            application_id: subscription.application_id.clone(),
            throttling_policy: subscription.throttling_policy.clone(),
            created_at: subscription.created_at,
        }
    }
}

impl From<SubscriptionRecord> for Subscription {
    fn from(record: SubscriptionRecord) -> Self {
        Self {
            id: record.id,
            api_id: record.api_id,
            application_id: record.application_id,
            throttling_policy: record.throttling_policy,
            created_at: record.created_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sluice_core::KeyType;
    use std::os::unix::fs::PermissionsExt;

    fn definitions() -> ServedDefinitions {
        ServedDefinitions {
            apis: vec![StoredApi {
                id: "api-1".into(),
                context: "/chat".into(),
                version: "v1".into(),
                definition: json!({"id": "api-1", "zeta": 1, "alpha": 2,
                    "endpointConfig": {"endpoint_security": {"production": {
                        "enabled": true, "type": "apikey", "apiKeyIdentifier": "Authorization",
                        "apiKeyValue": "Bearer sk-live-42"}}}}),
                created_at: 1,
                updated_at: 2,
            }],
            keys: vec![ApiKeyRecord {
                key_id: "0123456789abcdef".into(),
                application_id: "app-1".into(),
                key_type: KeyType::Sandbox,
                digest: [7; 32],
                created_at: 3,
                expires_at: Some(4),
                revoked: true,
            }],
            subscriptions: vec![Subscription {
                id: "sub-1".into(),
                api_id: "api-1".into(),
                application_id: "app-1".into(),
                throttling_policy: "Unlimited".into(),
                created_at: 5,
            }],
        }
    }

    #[test]
    fn a_snapshot_reads_back_what_was_written_with_its_revision() {
        let dir = tempfile::tempdir().unwrap();
        let file = SnapshotFile::in_dir(dir.path(), SecretSealer::new(&[1; 32]));

        file.write(12, &definitions()).unwrap();

        assert_eq!(file.read().unwrap(), Some((12, definitions())));
    }

    #[test]
    fn the_file_is_private_and_holds_endpoint_secrets_only_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let file = SnapshotFile::in_dir(dir.path(), SecretSealer::new(&[1; 32]));

        file.write(1, &definitions()).unwrap();

        let text = fs::read_to_string(file.path()).unwrap();
        assert!(!text.contains("sk-live-42"), "{text}");
        assert!(text.contains("sealed:v1:"), "{text}");
        let mode = fs::metadata(file.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "only the snapshot: {leftovers:?}");
    }

    #[test]
    fn a_newer_revision_replaces_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let file = SnapshotFile::in_dir(dir.path(), SecretSealer::new(&[1; 32]));
        file.write(1, &definitions()).unwrap();
        let mut changed = definitions();
        changed.keys.clear();

        file.write(2, &changed).unwrap();

        assert_eq!(file.read().unwrap(), Some((2, changed)));
    }

    #[test]
    fn no_file_is_no_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let file = SnapshotFile::in_dir(dir.path(), SecretSealer::new(&[1; 32]));

        assert_eq!(file.read().unwrap(), None);
    }

    #[test]
    fn a_snapshot_sealed_with_another_key_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        SnapshotFile::in_dir(dir.path(), SecretSealer::new(&[1; 32]))
            .write(1, &definitions())
            .unwrap();

        let error = SnapshotFile::in_dir(dir.path(), SecretSealer::new(&[2; 32]))
            .read()
            .unwrap_err();

        assert!(format!("{error:#}").contains("secrets key"), "{error:#}");
    }

    #[test]
    fn a_damaged_file_is_an_error_not_an_empty_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let file = SnapshotFile::in_dir(dir.path(), SecretSealer::new(&[1; 32]));
        fs::write(file.path(), b"{\"format\": 1, \"revis").unwrap();

        assert!(file.read().is_err());
    }
}
