//! deploy/Dockerfile, read as far as the test needs: its stages, and in each the names of the
//! `ENV` variables, the `EXPOSE`d ports, the `USER`, the `ENTRYPOINT` and `CMD`.

#[derive(Debug, Default)]
pub struct Stage {
    pub name: String,
    pub env: Vec<String>,
    pub expose: Vec<u16>,
    pub user: Option<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
}

/// Instructions with their `\` continuations joined, comments left out.
fn instructions(text: &str) -> Vec<String> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    joined
}

/// An exec-form argument list (`["a", "b"]`).
fn exec_form(rest: &str) -> Vec<String> {
    serde_json::from_str(rest).unwrap_or_else(|e| panic!("not an exec-form list: {rest}: {e}"))
}

pub fn stages(text: &str) -> Vec<Stage> {
    let mut stages: Vec<Stage> = Vec::new();
    for instruction in instructions(text) {
        let (word, rest) = instruction
            .split_once(char::is_whitespace)
            .unwrap_or((instruction.as_str(), ""));
        let rest = rest.trim();
        if word.eq_ignore_ascii_case("FROM") {
            let name = rest.rsplit_once(" AS ").map(|(_, n)| n.trim().to_string());
            stages.push(Stage {
                name: name.unwrap_or_default(),
                ..Stage::default()
            });
            continue;
        }
        let Some(stage) = stages.last_mut() else {
            continue;
        };
        match word.to_ascii_uppercase().as_str() {
            "ENV" => stage.env.extend(
                rest.split_whitespace()
                    .filter_map(|pair| Some(pair.split_once('=')?.0.to_string())),
            ),
            "EXPOSE" => stage.expose.extend(
                rest.split_whitespace()
                    .map(|p| p.trim_end_matches("/tcp").parse::<u16>().expect("a port")),
            ),
            "USER" => stage.user = Some(rest.to_string()),
            "ENTRYPOINT" => stage.entrypoint = exec_form(rest),
            "CMD" => stage.cmd = exec_form(rest),
            _ => {}
        }
    }
    stages
}
