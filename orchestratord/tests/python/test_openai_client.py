"""The official `openai` Python package against orchestratord's OpenAI-compatible routes.

Run by orchestratord/tests/openai_python.rs with the daemon's base URL and token:
    python test_openai_client.py <base_url> <token> <request_id>
Checks with plain asserts; prints `id <request_id> <completion id>` for the Rust side, which
then reads that request's story.
"""

import sys

import openai


def main() -> None:
    base_url, token, request_id = sys.argv[1], sys.argv[2], sys.argv[3]
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=token, timeout=30, max_retries=0)

    models = client.models.list()
    ids = [model.id for model in models.data]
    assert ids == ["default"], ids

    completion = client.completions.create(model="default", prompt="A llama", max_tokens=4, seed=0)
    assert completion.object == "text_completion", completion
    assert completion.choices[0].text == "the llama walks across", completion
    assert completion.choices[0].finish_reason == "length", completion
    assert completion.usage.completion_tokens == 4, completion.usage

    stream = client.chat.completions.create(
        model="default",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        max_tokens=3,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage, ids = "", None, None, set()
    for chunk in stream:
        ids.add(chunk.id)
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage is not None:
            usage = chunk.usage
    assert text == "the llama walks", text
    assert finish == "length", finish
    assert usage is not None and usage.completion_tokens == 3, usage
    assert len(ids) == 1, ids

    try:
        client.completions.create(model="no-such-model", prompt="x", max_tokens=1)
        raise AssertionError("an unknown model was served")
    except openai.NotFoundError as error:
        assert error.status_code == 404
        assert error.code == "model_not_found", error.body
        assert error.param == "model", error.body

    try:
        client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "x"}], n=2
        )
        raise AssertionError("n=2 was served")
    except openai.BadRequestError as error:
        assert error.param == "n", error.body

    raw = client.chat.completions.with_raw_response.create(
        model="default",
        messages=[{"role": "user", "content": "Who goes there?"}],
        max_tokens=2,
        extra_headers={"X-Request-Id": request_id},
    )
    assert raw.headers["x-request-id"] == request_id, dict(raw.headers)
    assert raw.request_id == request_id, raw.request_id
    chat = raw.parse()
    assert chat.choices[0].message.role == "assistant", chat
    assert chat.choices[0].message.content == "the llama", chat

    bad = openai.OpenAI(base_url=f"{base_url}/v1", api_key="wrong", max_retries=0)
    try:
        bad.models.list()
        raise AssertionError("a wrong token was accepted")
    except openai.AuthenticationError as error:
        assert error.status_code == 401

    print(f"id {request_id} {chat.id}")


if __name__ == "__main__":
    main()
