"""insert --placer llm against a real HTTP server on 127.0.0.1 started here: a good answer is
used (and cached), a malformed answer and a timeout fall back to the rules with the reason."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from synpara.cli import main
from synpara.errors import SynparaError
from synpara.llm_placer import parse_tagged
from synpara.manifest import items, iter_cuts
from tests.stages.test_insert import bank, hosts  # noqa: F401  (module fixtures)


class _Handler(BaseHTTPRequestHandler):
    mode = "good"
    requests = 0
    keys: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests += 1
        type(self).keys.append(self.headers.get("Authorization", ""))
        words = request["messages"][-1]["content"].split()
        if self.mode == "timeout":
            time.sleep(2.0)
        if self.mode == "good":
            content = " ".join(words[:3] + ["[laughter]"] + words[3:])
        elif self.mode == "changed":
            content = " ".join(["[laughter]"] + words[:-1] + ["banana"])
        else:
            content = "ok"
        body = (b"{not json" if self.mode == "garbage" else
                json.dumps({"choices": [{"message": {"content": content}}]}).encode())
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except BrokenPipeError:
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Handler.requests, _Handler.keys = 0, []
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def _run(hosts: Path, bank: Path, out: Path, url: str, *extra: str) -> list:  # noqa: F811
    main(["insert", "-i", str(hosts), "-o", str(out), "--bank", str(bank), "--gate", "none",
          "--workers", "1", "--placer", "llm", "--llm-url", url, "--llm-model", "tiny",
          "--categories", "laughter", "--categories", "cough", *extra])
    return list(iter_cuts(out / "cuts.jsonl.gz"))


def test_parse_tagged_validation() -> None:
    words = ["so", "that", "was", "funny"]
    assert parse_tagged("[cough] So, that was funny [laughter]", words, {"cough", "laughter"}) == [
        (-1, "cough"), (3, "laughter")]
    for bad, why in [("so that was fun[laughter]ny", "inside a word"),
                     ("so that is funny [laughter]", "words changed"),
                     ("so that was funny [applause]", "unknown tag"),
                     ("so that [sigh] was funny", "not among"),
                     ("so [laughter] [cough] that was funny", "two tags"),
                     ("so that was", "words missing")]:
        with pytest.raises(SynparaError, match=why):
            parse_tagged(bad, words, {"cough", "laughter"})


def test_llm_good_answer_is_used_and_cached(hosts: Path, bank: Path, tmp_path: Path,  # noqa: F811
                                            server: str, monkeypatch) -> None:
    monkeypatch.setenv("SYNPARA_LLM_API_KEY", "sk-test")
    _Handler.mode = "good"
    cache = tmp_path / "cache"
    cuts = _run(hosts, bank, tmp_path / "a", server, "--llm-cache", str(cache))
    assert _Handler.requests == 3 and _Handler.keys[0] == "Bearer sk-test"
    for cut in cuts:
        assert cut.custom["synpara"]["insert"]["placer"]["placer"] == "llm"
        words, (event,) = items(cut, "word"), items(cut, "event")
        assert event.symbol == "laughter" and words[2].end < event.start < words[3].start
        assert cut.supervisions[0].custom["tagged_text"].split()[3] == "[laughter]"
    again = _run(hosts, bank, tmp_path / "b", server, "--llm-cache", str(cache))
    assert _Handler.requests == 3  # every answer came from the cache
    assert [c.to_dict()["supervisions"] for c in again] == [
        c.to_dict()["supervisions"] for c in cuts]


@pytest.mark.parametrize(("mode", "reason"), [("changed", "words changed"),
                                              ("garbage", "malformed"),
                                              ("timeout", "LLM request failed")])
def test_llm_bad_answers_fall_back_to_rules(hosts: Path, bank: Path, tmp_path: Path,  # noqa: F811
                                            server: str, mode: str, reason: str) -> None:
    _Handler.mode = mode
    cuts = _run(hosts, bank, tmp_path / mode, server, "--llm-timeout", "0.5")
    assert len(cuts) == 3
    for cut in cuts:
        placer = cut.custom["synpara"]["insert"]["placer"]
        assert placer["placer"] == "rules" and reason in placer["fallback_reason"]
        assert len(items(cut, "event")) == 1
