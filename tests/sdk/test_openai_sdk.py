"""OpenAI's official Python SDK through Sluice to the mock backend (issue 3):
chat completions and Responses, non-streamed and streamed; the tokens Sluice
counts equal the usage the client receives; a streaming client that did not
ask for `include_usage` sees no usage chunk while Sluice still counts; a
refusal surfaces as `openai.RateLimitError` with `errorFormat: openai`; the
SDK authenticates with the Sluice key (`Authorization: Bearer`) and the
backend sees the endpoint's own key instead.
"""

import openai
import pytest

from conftest import mock_prompt_tokens

OWNER_KEY = "sk-owner-openai-5e8d2c7b9a1f"
PROMPT = "Say hello to Sluice."


@pytest.fixture()
def api(sluice, mock_backend):
    """An OpenAI API whose endpoint carries the owner's key."""
    return sluice.publish_ai_api(
        "OpenAI", mock_backend, credential=("Authorization", f"Bearer {OWNER_KEY}")
    )


def client_for(sluice, api, **options):
    return openai.OpenAI(
        api_key=sluice.subscribe(api),
        base_url=sluice.gateway + api["route"],
        max_retries=0,
        timeout=20,
        **options,
    )


def as_counts(prompt, completion, total):
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}


def test_a_chat_completion_is_counted_as_the_usage_the_client_receives(sluice, api):
    client = client_for(sluice, api)

    completion = client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": PROMPT}], max_tokens=5
    )

    usage = completion.usage
    assert completion.choices[0].message.content == "tok " * 5
    assert usage.completion_tokens == 5
    expected = as_counts(
        usage.prompt_tokens, usage.completion_tokens, usage.total_tokens
    )
    assert sluice.counted(api, expect=expected) == expected
    assert sluice.counted(api, "estimated") == as_counts(0, 0, 0)


def test_a_stream_that_asked_for_usage_ends_with_the_usage_sluice_counted(sluice, api):
    client = client_for(sluice, api)

    chunks = list(
        client.chat.completions.create(
            model="gpt-test",
            messages=[{"role": "user", "content": PROMPT}],
            max_tokens=7,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    usage = chunks[-1].usage
    assert chunks[-1].choices == []
    assert usage.completion_tokens == 7
    expected = as_counts(
        usage.prompt_tokens, usage.completion_tokens, usage.total_tokens
    )
    assert sluice.counted(api, expect=expected) == expected


def test_a_stream_that_did_not_ask_for_usage_sees_no_usage_chunk_and_is_counted(sluice, api):
    client = client_for(sluice, api)

    chunks = list(
        client.chat.completions.create(
            model="gpt-test",
            messages=[{"role": "user", "content": PROMPT}],
            max_tokens=6,
            stream=True,
        )
    )

    assert all(chunk.usage is None for chunk in chunks)
    assert all(chunk.choices for chunk in chunks), "an event without choices reached the client"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert text == "tok " * 6
    prompt = mock_prompt_tokens(PROMPT)
    expected = as_counts(prompt, 6, prompt + 6)
    assert sluice.counted(api, expect=expected) == expected


def test_a_response_is_counted_as_the_usage_the_client_receives(sluice, api):
    client = client_for(sluice, api)

    response = client.responses.create(model="gpt-test", input=PROMPT, max_output_tokens=9)

    usage = response.usage
    assert response.output_text == "tok " * 9
    assert usage.output_tokens == 9
    expected = as_counts(
        usage.input_tokens, usage.output_tokens, usage.total_tokens
    )
    assert sluice.counted(api, expect=expected) == expected


def test_a_streamed_response_is_counted_from_its_completed_event(sluice, api):
    client = client_for(sluice, api)

    events = list(
        client.responses.create(model="gpt-test", input=PROMPT, max_output_tokens=4, stream=True)
    )

    completed = [event for event in events if event.type == "response.completed"]
    assert len(completed) == 1
    usage = completed[0].response.usage
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "tok " * 4
    expected = as_counts(
        usage.input_tokens, usage.output_tokens, usage.total_tokens
    )
    assert sluice.counted(api, expect=expected) == expected


def test_the_backend_sees_the_owners_key_and_none_of_the_clients_credentials(sluice, api):
    client = client_for(sluice, api, organization="org-client", project="proj-client")

    raw = client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=[{"role": "user", "content": PROMPT}], max_tokens=1
    )

    assert raw.headers["x-mock-saw-authorization"] == f"Bearer {OWNER_KEY}"
    for header in ("x-api-key", "api-key", "openai-organization", "openai-project"):
        assert f"x-mock-saw-{header}" not in raw.headers, header
    assert raw.parse().usage.completion_tokens == 1


def test_a_refusal_is_the_sdks_rate_limit_error_with_the_openai_error_format(
    sluice, mock_backend
):
    # 300 total tokens per HOUR: two requests of about 100 tokens fit.
    api = sluice.publish_ai_api(
        "OpenAI",
        mock_backend,
        options={"errorFormat": "openai"},
        max_tps={
            "productionTimeUnit": "HOUR",
            "tokenBasedThrottlingConfiguration": {
                "isTokenBasedThrottlingEnabled": True,
                "productionMaxTotalTokenCount": 300,
            },
        },
    )
    client = client_for(sluice, api)
    request = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}

    with pytest.raises(openai.RateLimitError) as refused:
        for _ in range(10):
            client.chat.completions.create(max_tokens=90, **request)
    with pytest.raises(openai.BadRequestError) as never_admissible:
        client.chat.completions.create(max_tokens=1_000, **request)

    error = refused.value
    assert error.status_code == 429
    assert error.code == "rate_limit_exceeded"
    assert error.response.headers["x-sluice-limit-dimension"] == "total_tokens"
    assert int(error.response.headers["retry-after"]) >= 1
    assert never_admissible.value.status_code == 400
    assert never_admissible.value.response.headers["x-should-retry"] == "false"
