"""Anthropic's official Python SDK through Sluice to the mock backend
(issue 3): messages, non-streamed and streamed; the tokens Sluice counts equal
the usage the client receives (prompt from `message_start`, completion from
the last cumulative `message_delta`); a refusal surfaces as
`anthropic.RateLimitError` with `errorFormat: anthropic`; the SDK
authenticates with the Sluice key in `x-api-key` and the backend sees the
endpoint's own key instead.
"""

import anthropic
import pytest

OWNER_KEY = "sk-ant-owner-9b4e1d6c3a7f"
MESSAGES = [{"role": "user", "content": "Say hello to Sluice."}]


@pytest.fixture()
def api(sluice, mock_backend):
    """An Anthropic API whose endpoint carries the owner's key."""
    return sluice.publish_ai_api("Anthropic", mock_backend, credential=("x-api-key", OWNER_KEY))


def client_for(sluice, api):
    # The SDK adds `/v1/messages` to its base URL; the API's route ends in /v1.
    return anthropic.Anthropic(
        api_key=sluice.subscribe(api),
        base_url=sluice.gateway + api["route"].removesuffix("/v1"),
        max_retries=0,
        timeout=20,
    )


def counts_of(usage):
    prompt = (
        usage.input_tokens
        + (usage.cache_creation_input_tokens or 0)
        + (usage.cache_read_input_tokens or 0)
    )
    return {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
    }


def test_a_message_is_counted_as_the_usage_the_client_receives(sluice, api):
    client = client_for(sluice, api)

    message = client.messages.create(model="claude-test", max_tokens=5, messages=MESSAGES)

    assert message.content[0].text == "tok " * 5
    assert message.usage.output_tokens == 5
    expected = counts_of(message.usage)
    assert sluice.counted(api, expect=expected) == expected
    assert sluice.counted(api, "estimated") == {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
    }


def test_a_streamed_message_is_counted_from_its_last_cumulative_delta(sluice, api):
    client = client_for(sluice, api)

    # 20 tokens: the mock also sends cumulative counts at 8 and 16.
    with client.messages.stream(model="claude-test", max_tokens=20, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        message = stream.get_final_message()

    assert text == "tok " * 20
    assert message.usage.output_tokens == 20
    expected = counts_of(message.usage)
    assert sluice.counted(api, expect=expected) == expected


def test_a_raw_event_stream_is_counted_like_the_message_it_builds(sluice, api):
    client = client_for(sluice, api)

    events = list(
        client.messages.create(model="claude-test", max_tokens=3, messages=MESSAGES, stream=True)
    )

    start = next(event for event in events if event.type == "message_start")
    deltas = [event for event in events if event.type == "message_delta"]
    prompt = start.message.usage.input_tokens
    assert deltas[-1].usage.output_tokens == 3
    expected = {
        "prompt_tokens": prompt,
        "completion_tokens": 3,
        "total_tokens": prompt + 3,
    }
    assert sluice.counted(api, expect=expected) == expected


def test_the_backend_sees_the_owners_key_instead_of_the_sluice_key(sluice, api):
    client = client_for(sluice, api)

    raw = client.messages.with_raw_response.create(
        model="claude-test", max_tokens=1, messages=MESSAGES
    )

    assert raw.headers["x-mock-saw-x-api-key"] == OWNER_KEY
    assert "x-mock-saw-authorization" not in raw.headers
    assert raw.parse().usage.output_tokens == 1


def test_a_refusal_is_the_sdks_rate_limit_error_with_the_anthropic_error_format(
    sluice, mock_backend
):
    # 100 output tokens per HOUR: three requests of 40 do not fit.
    api = sluice.publish_ai_api(
        "Anthropic",
        mock_backend,
        options={"errorFormat": "anthropic"},
        max_tps={
            "productionTimeUnit": "HOUR",
            "tokenBasedThrottlingConfiguration": {
                "isTokenBasedThrottlingEnabled": True,
                "productionMaxCompletionTokenCount": 100,
            },
        },
    )
    client = client_for(sluice, api)

    with pytest.raises(anthropic.RateLimitError) as refused:
        for _ in range(10):
            client.messages.create(model="claude-test", max_tokens=40, messages=MESSAGES)

    error = refused.value
    assert error.status_code == 429
    assert error.body["error"]["type"] == "rate_limit_error"
    assert error.response.headers["x-sluice-limit-dimension"] == "completion_tokens"
    assert sluice.counted(api)["completion_tokens"] == 80
