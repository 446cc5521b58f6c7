"""Drives a Switchboard route with the official openai package, as an application would.

Usage: openai_client.py BASE_URL BROKEN_BASE_URL. Prints one JSON object with what the client saw.
"""
import json
import sys

from openai import APIError, OpenAI

base, broken_base = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=base, api_key="client-key", max_retries=0)
messages = [{"role": "user", "content": "What is 1+1?"}]
out = {}

r = client.chat.completions.create(model="gpt-4o", messages=messages)
out["chat"] = {
    "model": r.model,
    "content": r.choices[0].message.content,
    "total_tokens": r.usage.total_tokens,
}

text, usage = "", None
for chunk in client.chat.completions.create(model="gpt-4o", messages=messages, stream=True):
    if chunk.choices and chunk.choices[0].delta.content:
        text += chunk.choices[0].delta.content
    if chunk.usage:
        usage = chunk.usage.total_tokens
out["stream"] = {"text": text, "usage": usage}

usage = None
for chunk in client.chat.completions.create(
    model="gpt-4o", messages=messages, stream=True, stream_options={"include_usage": True}
):
    if chunk.usage:
        usage = chunk.usage.total_tokens
out["stream_with_usage"] = usage

e = client.embeddings.create(model="text-embedding-3-small", input="hello world")
out["embedding_length"] = len(e.data[0].embedding)

broken = OpenAI(base_url=broken_base, api_key="client-key", max_retries=0)
try:
    text = ""
    for chunk in broken.chat.completions.create(model="gpt-4o", messages=messages, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    out["broken"] = "completed: " + text
except APIError as error:
    out["broken"] = "APIError: " + str(error.message)

print(json.dumps(out))
