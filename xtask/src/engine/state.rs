//! The record of the engines `up` started for a configuration: `state.json` in the
//! configuration's state folder, rewritten whole (temporary file and rename) after every engine
//! started, so an `up` interrupted half-way still leaves what `down` needs.

use super::config::state_dir;
use super::error::EngineError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const VERSION: u32 = 1;
const FILE_NAME: &str = "state.json";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    /// The configuration these engines were started from.
    pub config: PathBuf,
    /// Seconds since the Unix epoch.
    pub started_at: u64,
    pub replicas: Vec<ReplicaRecord>,
}

/// One started engine. `pid` is also its process group and session (it was started with
/// `setsid`); `start_time` (clock ticks after boot, from `/proc/<pid>/stat`) tells it apart from
/// a later process that got the same pid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaRecord {
    pub pool_id: String,
    pub replica_id: String,
    pub pid: u32,
    pub start_time: u64,
    pub port: u16,
    pub url: String,
    /// The model ref, without credentials or query.
    pub model_ref: String,
    pub model: PathBuf,
    pub binary: PathBuf,
    pub engine_version: String,
    pub log: PathBuf,
}

impl State {
    pub fn new(config: &Path) -> State {
        let started_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        State {
            version: VERSION,
            config: config.to_path_buf(),
            started_at,
            replicas: Vec::new(),
        }
    }
}

/// The state file of `config` and what it records; `None`, after saying so on stdout, when
/// nothing is recorded (`status` and `down` have nothing to do).
pub fn recorded(config: &Path) -> Result<Option<(StateFile, State)>, EngineError> {
    let file = StateFile::in_dir(state_dir(config));
    let Some(state) = file.load()? else {
        println!(
            "Nothing running for {}: no engine of it is recorded.",
            config.display()
        );
        return Ok(None);
    };
    Ok(Some((file, state)))
}

/// Where one configuration's state lives.
pub struct StateFile {
    dir: PathBuf,
}

impl StateFile {
    pub fn in_dir(dir: PathBuf) -> StateFile {
        StateFile { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// The engines' log files.
    pub fn logs_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }

    /// The recorded state; `None` when nothing was started (or it was stopped).
    pub fn load(&self) -> Result<Option<State>, EngineError> {
        let path = self.path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(EngineError::Io {
                    action: "read",
                    path,
                    error,
                })
            }
        };
        let bad = |reason: String| EngineError::BadState {
            path: path.clone(),
            reason,
        };
        let state: State = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if state.version != VERSION {
            return Err(bad(format!(
                "version {}, this xtask reads version {VERSION}",
                state.version
            )));
        }
        Ok(Some(state))
    }

    pub fn save(&self, state: &State) -> Result<(), EngineError> {
        let path = self.path();
        let io = |action, path: &Path| {
            let path = path.to_path_buf();
            move |error| EngineError::Io {
                action,
                path,
                error,
            }
        };
        std::fs::create_dir_all(&self.dir).map_err(io("create", &self.dir))?;
        let mut text = serde_json::to_string_pretty(state).map_err(|e| EngineError::BadState {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        text.push('\n');
        let temp = self
            .dir
            .join(format!("{FILE_NAME}.tmp-{}", std::process::id()));
        std::fs::write(&temp, text).map_err(io("write", &temp))?;
        std::fs::rename(&temp, &path).map_err(|error| {
            let _ = std::fs::remove_file(&temp);
            EngineError::Io {
                action: "replace",
                path,
                error,
            }
        })
    }

    /// Forgets the state; the logs stay. Nothing to remove is fine.
    pub fn remove(&self) -> Result<(), EngineError> {
        let path = self.path();
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(EngineError::Io {
                action: "remove",
                path,
                error,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_state_loads_back_and_removing_twice_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::in_dir(dir.path().join("engines/abc"));
        assert_eq!(file.load().unwrap(), None);
        let mut state = State::new(Path::new("/etc/pools.toml"));
        state.replicas.push(ReplicaRecord {
            pool_id: "tiny".into(),
            replica_id: "tiny-r0".into(),
            pid: 42,
            start_time: 7,
            port: 8081,
            url: "http://127.0.0.1:8081".into(),
            model_ref: "/m/tiny.gguf".into(),
            model: "/m/tiny.gguf".into(),
            binary: "/bin/llama-server".into(),
            engine_version: "b1".into(),
            log: "/tmp/tiny-r0.log".into(),
        });
        file.save(&state).unwrap();
        assert_eq!(file.load().unwrap(), Some(state));
        file.remove().unwrap();
        file.remove().unwrap();
        assert_eq!(file.load().unwrap(), None);
    }

    #[test]
    fn a_state_of_another_version_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::in_dir(dir.path().to_path_buf());
        std::fs::write(
            file.path(),
            r#"{"version":9,"config":"/x","started_at":0,"replicas":[]}"#,
        )
        .unwrap();
        let e = file.load().unwrap_err().to_string();
        assert!(e.contains("version 9") && e.contains("state.json"), "{e}");
    }
}
