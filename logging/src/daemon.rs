//! What a daemon's `main` does around its work, the same for orchestratord and pool-managerd:
//! the root logger from the environment with the story index's tap, a logging configuration
//! that cannot be used reported and exit code 2, "Exiting with code N" as the last record, and
//! every record written out before the process ends.

use crate::story::StoryIndex;
use crate::{keys, LogConfig, LogGuard, LoggerBuilder};
use slog::{info, Logger};
use std::process::ExitCode;

/// Runs `work` with the daemon's root logger, its guard and its story index; its answer is the
/// exit code, told last.
pub fn daemon_main(
    bin: &'static str,
    version: &'static str,
    work: impl FnOnce(&Logger, &LogGuard, StoryIndex) -> u8,
) -> ExitCode {
    let story = StoryIndex::default();
    let built = LogConfig::from_env().and_then(|config| {
        LoggerBuilder::new(bin, version, config)
            .tap_boxed(story.tap())
            .build()
    });
    let (root, guard) = match built {
        Ok(built) => built,
        Err(error) => {
            crate::report_startup_error(bin, version, &error);
            return ExitCode::from(2);
        }
    };
    let code = work(&root, &guard, story);
    info!(crate::component(&root, bin), "Exiting with code {}", code; keys::ACTION => "exit");
    drop(root);
    drop(guard);
    ExitCode::from(code)
}
