"""A minimal client for OpenAI-compatible chat-completions endpoints that must answer in JSON.

Standard library only (``urllib``): a user's own endpoint (vLLM, llama.cpp server, Ollama, a hosted
API) is the only network synpara ever talks to, and only when a command is given ``--llm-url``.
The API key, if the endpoint needs one, comes from an environment variable (never a flag, so it
stays out of shell history and manifests). Answers are cached under ``cache_dir`` by a hash of the
request, so a rerun costs nothing and gives the same data; only valid answers are cached.

>>> chat_json("http://127.0.0.1:8000/v1", "qwen2.5-7b-instruct",
...           [{"role": "user", "content": 'Reply {"ok": true}'}], timeout=30, cache_dir=None)
{'ok': True}
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from synpara.errors import SynparaError
from synpara.manifest import write_text_atomic

#: Environment variable holding the endpoint's API key (sent as ``Authorization: Bearer``).
API_KEY_ENV = "SYNPARA_LLM_API_KEY"
_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$", re.IGNORECASE)


class LLMError(SynparaError):
    """The endpoint did not give a usable JSON answer (timeout, HTTP error, malformed JSON)."""


def completions_url(url: str) -> str:
    """``http://host/v1`` -> ``http://host/v1/chat/completions`` (a full URL is kept)."""
    url = url.rstrip("/")
    return url if url.endswith("/chat/completions") else f"{url}/chat/completions"


def request_hash(url: str, model: str, messages: list[dict[str, str]], temperature: float) -> str:
    """What identifies a request in the cache (not the key, not the timeout)."""
    payload = {
        "url": completions_url(url),
        "model": model,
        "messages": messages,
        "temperature": temperature,
    }
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_json_answer(content: str) -> dict[str, Any]:
    """The JSON object in a model's reply (a ```json fence around it is allowed)."""
    text = _FENCE.sub("", content.strip())
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise LLMError(f"answer is not valid JSON ({error.msg} at {error.pos})") from None
    if not isinstance(value, dict):
        raise LLMError(f"answer is JSON but not an object ({type(value).__name__})")
    return value


def chat_text(
    url: str,
    model: str,
    messages: list[dict[str, str]],
    timeout: float = 60.0,
    cache_dir: str | Path | None = None,
    temperature: float = 0.0,
    key_env: str = API_KEY_ENV,
) -> str:
    """Send ``messages`` and return the reply's text (insert's tag placer reads plain text).

    Raises :class:`LLMError` for a timeout, a connection or HTTP error, or a reply that is not a
    chat completion. Every answer is cached, valid or not: the caller validates it, and a rerun
    must make the same decision without asking again.
    """
    key = request_hash(url, model, messages, temperature)
    cached = Path(cache_dir) / f"{key}.text.json" if cache_dir is not None else None
    if cached is not None and cached.is_file():
        return str(json.loads(cached.read_text(encoding="utf-8"))["answer"])
    payload = {"model": model, "messages": messages, "temperature": temperature}
    content = _content(_post(url, payload, timeout, key_env))
    if cached is not None:
        write_text_atomic(cached, json.dumps({"answer": content}, ensure_ascii=False))
    return content


def chat_json(
    url: str,
    model: str,
    messages: list[dict[str, str]],
    timeout: float = 60.0,
    cache_dir: str | Path | None = None,
    temperature: float = 0.0,
    key_env: str = API_KEY_ENV,
) -> dict[str, Any]:
    """Send ``messages`` and return the reply parsed as a JSON object.

    Raises :class:`LLMError` for a timeout, a connection or HTTP error, or a reply that is not a
    JSON object; a cached answer is returned without a request (only valid answers are cached).
    """
    key = request_hash(url, model, messages, temperature)
    cached = Path(cache_dir) / f"{key}.json" if cache_dir is not None else None
    if cached is not None and cached.is_file():
        return json.loads(cached.read_text(encoding="utf-8"))
    payload: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "temperature": temperature,
        "response_format": {"type": "json_object"},
    }
    try:
        raw = _post(url, payload, timeout, key_env)
    except LLMError as error:
        # Some servers (older llama.cpp, some proxies) refuse response_format: ask once without
        # it; the answer is validated as JSON either way.
        if not error.reason.startswith("HTTP 400"):
            raise
        del payload["response_format"]
        raw = _post(url, payload, timeout, key_env)
    answer = parse_json_answer(_content(raw))
    if cached is not None:
        write_text_atomic(cached, json.dumps(answer, ensure_ascii=False))
    return answer


def _content(raw: bytes) -> str:
    try:
        content = json.loads(raw)["choices"][0]["message"]["content"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, IndexError, TypeError):
        raise LLMError("response is malformed: not a chat completion") from None
    if not isinstance(content, str):
        raise LLMError("response is malformed: the completion holds no text")
    return content


def _post(url: str, payload: dict[str, Any], timeout: float, key_env: str = API_KEY_ENV) -> bytes:
    headers = {"Content-Type": "application/json"}
    api_key = os.environ.get(key_env)
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    data = json.dumps(payload).encode("utf-8")
    request = urllib.request.Request(
        completions_url(url), data=data, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as error:
        raise LLMError(f"HTTP {error.code} from {url}") from None
    except TimeoutError:
        raise LLMError(f"LLM request failed: timed out after {timeout:g} s ({url})") from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError):
            raise LLMError(f"LLM request failed: timed out after {timeout:g} s ({url})") from None
        raise LLMError(f"LLM request failed: cannot reach {url} ({error.reason})") from None
