//! The configuration file of one pool of the tiny model, as the real-engine tests of
//! orchestratord, pool-managerd, xtask and the CLI write it: `[server]` on an ephemeral loopback
//! port and one `[[pools]]` table, either at engines that already run (`urls`) or running its
//! own llama-servers (`[pools.spawn]` with the cached binary). The limits default to the tiny
//! model's context of 512 tokens; each setter changes one thing, so a test shows only what it
//! needs.

use std::fmt::Write as _;
use std::path::Path;

/// The TOML text of a configuration with one pool; see [`PoolToml::toml`].
#[derive(Debug, Clone)]
pub struct PoolToml {
    id: String,
    engine: String,
    model_ref: String,
    /// `urls = [...]` or `replicas = N`: where the replicas come from.
    source: String,
    ctx_max: u32,
    max_tokens_out: u32,
    queue_capacity: u32,
    slots_per_replica: u32,
    pool_lines: Vec<String>,
    /// `Some` for a pool that runs its own engines: the lines of `[pools.spawn]`.
    spawn_lines: Option<Vec<String>>,
    after: String,
}

impl PoolToml {
    fn new(model_ref: String, source: String, spawn_lines: Option<Vec<String>>) -> PoolToml {
        PoolToml {
            id: "tiny".into(),
            engine: "llamacpp".into(),
            model_ref,
            source,
            ctx_max: 512,
            max_tokens_out: 256,
            queue_capacity: 16,
            slots_per_replica: 1,
            pool_lines: Vec::new(),
            spawn_lines,
            after: String::new(),
        }
    }

    /// Pool `tiny` (engine `llamacpp`, model `gguf:tiny`) at engines that already run at `urls`.
    pub fn at<S: AsRef<str>>(urls: &[S]) -> PoolToml {
        let urls: Vec<&str> = urls.iter().map(AsRef::as_ref).collect();
        PoolToml::new("gguf:tiny".into(), format!("urls = {urls:?}"), None)
    }

    /// Pool `tiny` running `replicas` llama-servers of its own (the cached binary, CPU only) on
    /// the model file `model`.
    pub fn spawning(model: &Path, replicas: u32) -> PoolToml {
        let binary = crate::llama_server_binary();
        let spawn = vec![
            format!("binary = {binary:?}"),
            "allow_cpu_only = true".into(),
        ];
        PoolToml::new(
            model.display().to_string(),
            format!("replicas = {replicas}"),
            Some(spawn),
        )
    }

    pub fn id(mut self, id: &str) -> PoolToml {
        self.id = id.into();
        self
    }

    pub fn engine(mut self, engine: &str) -> PoolToml {
        self.engine = engine.into();
        self
    }

    pub fn model_ref(mut self, model_ref: &str) -> PoolToml {
        self.model_ref = model_ref.into();
        self
    }

    /// `ctx_max` and `max_tokens_out`.
    pub fn limits(mut self, ctx_max: u32, max_tokens_out: u32) -> PoolToml {
        self.ctx_max = ctx_max;
        self.max_tokens_out = max_tokens_out;
        self
    }

    pub fn queue_capacity(mut self, capacity: u32) -> PoolToml {
        self.queue_capacity = capacity;
        self
    }

    pub fn slots_per_replica(mut self, slots: u32) -> PoolToml {
        self.slots_per_replica = slots;
        self
    }

    /// One more line of TOML (`key = value`) in the `[[pools]]` table.
    pub fn pool_line(mut self, line: &str) -> PoolToml {
        self.pool_lines.push(line.into());
        self
    }

    /// One more line of TOML in `[pools.spawn]`. Panics on a pool at URLs (test set-up).
    pub fn spawn_line(mut self, line: &str) -> PoolToml {
        self.spawn_lines
            .as_mut()
            .expect("spawn settings on a pool that runs its own engines")
            .push(line.into());
        self
    }

    /// The engines' extra command-line flags (`[pools.spawn] flags`).
    pub fn flags(self, flags: &[&str]) -> PoolToml {
        self.spawn_line(&format!("flags = {flags:?}"))
    }

    /// TOML that follows the pool (more `[[pools]]` tables).
    pub fn then(mut self, toml: &str) -> PoolToml {
        self.after.push_str(toml);
        self
    }

    /// The configuration file's text.
    pub fn toml(&self) -> String {
        let mut text = String::from("[server]\naddr = \"127.0.0.1:0\"\n\n[[pools]]\n");
        let lines = [
            format!("id = {:?}", self.id),
            format!("engine = {:?}", self.engine),
            format!("model_ref = {:?}", self.model_ref),
            self.source.clone(),
            format!("ctx_max = {}", self.ctx_max),
            format!("max_tokens_out = {}", self.max_tokens_out),
            format!("queue_capacity = {}", self.queue_capacity),
            "full_policy = \"reject\"".into(),
            format!("slots_per_replica = {}", self.slots_per_replica),
        ];
        for line in lines.iter().chain(&self.pool_lines) {
            let _ = writeln!(text, "{line}");
        }
        if let Some(spawn) = &self.spawn_lines {
            text.push_str("\n[pools.spawn]\n");
            for line in spawn {
                let _ = writeln!(text, "{line}");
            }
        }
        text.push_str(&self.after);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_at_urls_lists_them_and_the_defaults() {
        let text = PoolToml::at(&["http://127.0.0.1:1", "http://127.0.0.1:2"])
            .engine("vllm")
            .limits(4096, 1024)
            .pool_line("served_model = \"tiny\"")
            .toml();
        assert_eq!(
            text,
            "[server]\naddr = \"127.0.0.1:0\"\n\n[[pools]]\nid = \"tiny\"\nengine = \"vllm\"\n\
             model_ref = \"gguf:tiny\"\nurls = [\"http://127.0.0.1:1\", \"http://127.0.0.1:2\"]\n\
             ctx_max = 4096\nmax_tokens_out = 1024\nqueue_capacity = 16\n\
             full_policy = \"reject\"\nslots_per_replica = 1\nserved_model = \"tiny\"\n"
        );
    }

    #[test]
    #[should_panic(expected = "spawn settings on a pool that runs its own engines")]
    fn spawn_settings_on_a_pool_at_urls_are_a_set_up_error() {
        let _ = PoolToml::at(&["http://127.0.0.1:1"]).spawn_line("restart_backoff_ms = 5");
    }
}
