//! `llama-orch story`: a task's (or a pool's, or a replica's) narration from the daemon, as a
//! timeline of offsets from its first record, rendered like the live pretty sink.

use crate::args::StoryArgs;
use crate::client::{segment, Client};
use crate::console;
use crate::error::CliError;
use llorch_api_types::PoolHealth;
use logging::replay::{Line, Renderer, ReplayOptions};

pub async fn run(client: &Client, args: &StoryArgs) -> Result<(), CliError> {
    let path = match (&args.id, &args.pool, &args.replica) {
        (Some(id), _, _) => format!("/v1/tasks/{}/story", segment(id)),
        (None, Some(pool), None) => format!("/v1/pools/{}/story", segment(pool)),
        (None, pool, Some(replica)) => {
            let pool = match pool {
                Some(pool) => pool.clone(),
                None => pool_of(client, replica).await?,
            };
            format!(
                "/v1/pools/{}/replicas/{}/story",
                segment(&pool),
                segment(replica)
            )
        }
        (None, None, None) => {
            return Err(CliError::Usage(
                "give a task id, --pool or --replica".into(),
            ))
        }
    };
    let records: Vec<serde_json::Value> = client.get(&path).await?;
    if records.is_empty() {
        console::say("nothing narrated yet");
        return Ok(());
    }
    console::print(&render(records, console::colour_on_stdout(), args.full))
}

/// The records in order, each neutralised for the terminal by the renderer.
pub fn render(records: Vec<serde_json::Value>, colour: bool, full: bool) -> String {
    let mut renderer = Renderer::new(ReplayOptions {
        colour,
        full,
        offsets: true,
    });
    records
        .into_iter()
        .map(|record| renderer.render(&Line::from_value(record)))
        .collect()
}

/// The pool that has a replica of this id.
async fn pool_of(client: &Client, replica: &str) -> Result<String, CliError> {
    let pools: Vec<PoolHealth> = client.get("/v1/pools").await?;
    pools
        .into_iter()
        .find(|p| p.replicas.iter().any(|r| r.replica_id == replica))
        .map(|p| p.pool_id)
        .ok_or_else(|| {
            CliError::NotFound(format!(
                "no pool has a replica '{}' (see `llama-orch status`)",
                logging::escape_for_terminal(replica)
            ))
        })
}
