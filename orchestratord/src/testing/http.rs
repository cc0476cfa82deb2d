//! The test's requests to its daemon: the task API (submit, stream, cancel) and plain JSON
//! `GET`/`POST`; a failed request (the daemon gone) fails the test.

use super::sse::{read_events, Sse};
use super::TestServer;
use serde_json::Value;

impl TestServer {
    /// `POST /v1/tasks` with `body`.
    pub async fn submit(&self, body: &Value) -> reqwest::Response {
        self.post_json("/v1/tasks", body).await
    }

    /// Submits `body`, checks it is admitted (202) and returns its `task_id`.
    pub async fn admit(&self, body: &Value) -> String {
        let response = self.submit(body).await;
        assert_eq!(response.status(), 202, "{:?}", response.text().await);
        body["task_id"]
            .as_str()
            .expect("the task has a task_id")
            .to_string()
    }

    /// `GET /v1/tasks/{id}/stream`, not read yet.
    pub async fn open_stream(&self, task_id: &str) -> reqwest::Response {
        self.client
            .get(format!("{}/v1/tasks/{task_id}/stream", self.url))
            .send()
            .await
            .expect("the daemon answers")
    }

    /// `POST /v1/tasks/{id}/cancel`; its status.
    pub async fn cancel(&self, task_id: &str) -> reqwest::StatusCode {
        self.client
            .post(format!("{}/v1/tasks/{task_id}/cancel", self.url))
            .send()
            .await
            .expect("the daemon answers")
            .status()
    }

    /// Every event of a task's stream, until it ends.
    pub async fn events(&self, task_id: &str) -> Vec<Sse> {
        let response = self.open_stream(task_id).await;
        assert_eq!(response.status(), 200);
        read_events(response, usize::MAX).await
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .expect("the daemon answers")
            .text()
            .await
            .expect("the metrics are text")
    }

    /// `GET path` answered 200 with JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("the daemon answers");
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("the answer is JSON")
    }

    /// `GET /v1/pools/{id}/health` as JSON.
    pub async fn pool_health(&self, pool_id: &str) -> Value {
        self.get_json(&format!("/v1/pools/{pool_id}/health")).await
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.post_json_with(path, body, &[]).await
    }

    /// `POST path` with a JSON body and `headers`.
    pub async fn post_json_with(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.client.post(format!("{}{path}", self.url)).json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("the daemon answers")
    }
}
