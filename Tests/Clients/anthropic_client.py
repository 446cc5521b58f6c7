"""Drives Switchboard's /v1/messages with the official anthropic package, as Claude Code would.

Usage: anthropic_client.py BASE_URL... Prints one JSON object per base URL (a list) with what
the client saw: a whole message, a streamed one (the SDK's own event accumulation), and an
error raised by the SDK.
"""
import json
import sys

from anthropic import Anthropic, APIStatusError

out = []
for base in sys.argv[1:]:
    client = Anthropic(base_url=base, api_key="client-key", max_retries=0)
    seen = {}
    message = client.messages.create(
        model="claude-sonnet",
        max_tokens=100,
        system="Be brief.",
        messages=[{"role": "user", "content": "What is 1+1?"}],
    )
    seen["whole"] = {
        "text": "".join(b.text for b in message.content if b.type == "text"),
        "stop_reason": message.stop_reason,
        "output_tokens": message.usage.output_tokens,
    }
    with client.messages.stream(
        model="claude-sonnet", max_tokens=100, messages=[{"role": "user", "content": "What is 1+1?"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    seen["stream"] = {
        "text": text,
        "stop_reason": final.stop_reason,
        "output_tokens": final.usage.output_tokens,
    }
    try:
        client.messages.create(model="refuse-me", max_tokens=10, messages=[{"role": "user", "content": "x"}])
        seen["error"] = "no error"
    except APIStatusError as error:
        seen["error"] = {"status": error.status_code, "type": error.body["error"]["type"]}
    out.append(seen)

print(json.dumps(out))
