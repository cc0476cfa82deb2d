//! Narration timelines of jobs, pools and replicas: the story store lives in `logging` (shared
//! with pool-managerd's daemon).

pub use logging::story::StoryIndex;
