"""qa: template answers against a corpus whose events are placed exactly; the LLM path against a
real HTTP server on 127.0.0.1 (good, malformed, contradicting, too slow); bad input."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from synpara.cli import main
from synpara.errors import SynparaError
from synpara.llm import LLMError, chat_json, parse_json_answer
from synpara.manifest import write_cuts
from synpara.qa import EVENT_WORDS, export_qa
from synpara.qa_llm import contradiction
from synpara.stage import RecordContext
from synpara.stages.describe import Describe
from tests.paracorpus import make_corpus
from tests.synth import have_espeak

needs_espeak = pytest.mark.skipif(not have_espeak(), reason="espeak-ng not installed")
_NOUN_TO_LABEL = {
    noun[0].upper() + noun[1:] + ".": label for label, (noun, _, _) in EVENT_WORDS.items()
}


@pytest.fixture(scope="module")
def described(tmp_path_factory):
    """A described manifest of 6 cuts (4 with one spliced laugh or cough) and its truth."""
    tmp = tmp_path_factory.mktemp("qa")
    cuts, truths = make_corpus(tmp, 6, np.random.default_rng(11))
    stage = Describe()
    stage.setup()
    done = [stage.process(c, RecordContext(c.id, 0, tmp)) for c in cuts]
    manifest = tmp / "described.jsonl.gz"
    write_cuts(manifest, done)
    return manifest, {str(Path(c.recording.sources[0].source)): t for c, t in zip(cuts, truths)}


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@needs_espeak
def test_every_template_answer_about_an_event_agrees_with_the_manifest(described, tmp_path):
    manifest, truths = described
    out = tmp_path / "qa"
    summary = export_qa(manifest, out, "jsonl", seed=3)
    rows = _rows(out / "qa.jsonl")
    assert summary["utterances"] == 6 and summary["pairs"] == len(rows)
    checked: dict[str, int] = {}
    for row in rows:
        truth = truths[row["audio"]]
        placed = truth.sentence.events[0] if truth.sentence.events else None
        texts = [w.text for w in truth.sentence.words]
        before = " ".join(texts[max(0, (truth.after_word or 0) - 2) : (truth.after_word or 0) + 1])
        after = " ".join(texts[(truth.after_word or 0) + 1 : (truth.after_word or 0) + 4])
        kind, answer = row["type"], row["answer"]
        if kind == "identity":
            assert _NOUN_TO_LABEL[answer] == placed.text
            assert f"'{before}'" in row["question"]
        elif kind == "timing":
            (seconds,) = [float(x) for x in re.findall(r"about (\d+\.\d) seconds in", answer)]
            assert seconds == pytest.approx(placed.start, abs=0.1)
            assert f"right after '{before}'" in answer.lower()
        elif kind == "content":
            assert answer in (f"'{before}'.", f"'{after}'.")
            assert (answer == f"'{before}'.") == ("before" in row["question"])
        elif kind == "presence":
            asked = row["evidence"]["label"]
            assert answer.startswith("Yes") == (placed is not None and asked == placed.text)
        elif kind == "counting":
            expected = (
                "Once."
                if "times" in row["question"] or "often" in row["question"]
                else (f"One ({EVENT_WORDS[placed.text][0]}).")
            )
            assert answer == expected
        else:
            continue
        checked[kind] = checked.get(kind, 0) + 1
    assert set(checked) == {"identity", "timing", "content", "presence", "counting"}
    # speaker questions only where the guess is confident; prosody answers follow the bins
    for row in rows:
        if row["type"] == "speaker":
            assert row["evidence"]["confidence"] >= 0.9
        if row["type"] == "prosody" and "rate" in row["evidence"]:
            word = {"slow": "Slowly", "normal": "At a moderate pace", "fast": "Quickly"}
            assert row["answer"].startswith(word[row["evidence"]["rate"]])


@needs_espeak
def test_phrasings_vary_and_are_seeded(described, tmp_path):
    manifest, _ = described
    first = _rows(Path(export_qa(manifest, tmp_path / "a", seed=1) and tmp_path / "a/qa.jsonl"))
    again = _rows(Path(export_qa(manifest, tmp_path / "b", seed=1) and tmp_path / "b/qa.jsonl"))
    other = _rows(Path(export_qa(manifest, tmp_path / "c", seed=2) and tmp_path / "c/qa.jsonl"))
    assert first == again and first != other
    timing = {r["question"].split(" does")[0] for r in first if r["type"] == "timing"}
    assert len(timing) > 1  # more than one phrasing in use


# --------------------------------------------------------------------------- LLM path


class _Handler(BaseHTTPRequestHandler):
    """Behaves by model name: good, malformed, contradict, slow."""

    requests: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body["model"])
        if body["model"] == "strict" and "response_format" in body:
            self.send_response(400)
            self.end_headers()
            return
        facts = json.loads(body["messages"][1]["content"])
        first = " ".join(facts["transcript"].split()[:3])
        content = {
            "good": json.dumps(
                {
                    "pairs": [
                        {
                            "question": "What is the speaker talking about?",
                            "answer": f"It starts with '{first}'.",
                            "type": "contextual",
                        },
                        {
                            "question": "How would you reply?",
                            "answer": "I would listen and nod.",
                            "type": "empathetic",
                        },
                    ]
                }
            ),
            "malformed": "Sure! Here are pairs: {question: oops",
            "strict": '```json\n{"pairs": []}\n```',
            "contradict": json.dumps(
                {
                    "pairs": [
                        {
                            "question": "What happens at the end?",
                            "answer": "The speaker sneezes.",
                            "type": "contextual",
                        },
                        {
                            "question": "Who is speaking?",
                            "answer": "A young girl.",
                            "type": "contextual",
                        },
                    ]
                }
            ),
        }.get(body["model"])
        if body["model"] == "slow":
            time.sleep(1.5)
            content = json.dumps({"pairs": []})
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        try:
            self.wfile.write(payload.encode())
        except BrokenPipeError:  # the client gave up (timeout test)
            pass

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    _Handler.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


@needs_espeak
def test_llm_good_malformed_contradicting_and_timeout(described, tmp_path, server, capsys):
    manifest, _ = described
    results = {}
    for model in ("good", "malformed", "contradict", "slow"):
        out = tmp_path / model
        main(
            [
                "qa",
                "-i",
                str(manifest),
                "-o",
                str(out),
                "--llm-url",
                server,
                "--llm-model",
                model,
                "--llm-timeout",
                "0.5",
            ]
        )
        results[model] = (_rows(out / "qa.jsonl"), _rows(out / "qa_dropped.jsonl"))
    good_rows, good_dropped = results["good"]
    llm = [r for r in good_rows if r["source"] == "llm"]
    assert len(llm) == 12 and not good_dropped
    assert {r["type"] for r in llm} == {"contextual", "empathetic"}
    _, malformed = results["malformed"]
    assert len(malformed) == 6 and all("not valid JSON" in d["reason"] for d in malformed)
    rows, contradicting = results["contradict"]
    assert not [r for r in rows if r["source"] == "llm"]
    reasons = {d["reason"] for d in contradicting}
    assert "names event 'sneeze', absent from the manifest" in reasons
    assert any(r.startswith("says female") for r in reasons)
    _, slow = results["slow"]
    assert len(slow) == 6 and all("timed out" in d["reason"] for d in slow)
    # template pairs survive every LLM failure
    assert all(any(r["source"] == "template" for r in results[m][0]) for m in results)
    # a rerun answers from the cache: no new request reaches the server
    count = _Handler.requests.count("good")
    main(
        [
            "qa",
            "-i",
            str(manifest),
            "-o",
            str(tmp_path / "good"),
            "--llm-url",
            server,
            "--llm-model",
            "good",
        ]
    )
    assert _Handler.requests.count("good") == count
    assert _rows(tmp_path / "good" / "qa.jsonl") == good_rows


def test_a_server_refusing_response_format_is_asked_again_without(server, tmp_path):
    messages = [
        {"role": "system", "content": "reply in JSON"},
        {"role": "user", "content": json.dumps({"transcript": "hello there"})},
    ]
    assert chat_json(server, "strict", messages, timeout=5, cache_dir=tmp_path) == {"pairs": []}
    assert _Handler.requests == ["strict", "strict"]
    assert len(list(tmp_path.glob("*.json"))) == 1  # the valid answer is cached


def test_contradiction_rules():
    info = {
        "events": [{"label": "laughter"}],
        "bins": {"rate": "slow", "pitch": "low"},
        "gender": {"label": "male", "confidence": 0.95},
    }
    assert contradiction("He giggles and laughs.", info) is None  # a giggle is a laugh
    assert "rate" in contradiction("The man talks fast.", info)
    assert "pitch" in contradiction("A high-pitched voice.", info)
    assert contradiction("A man speaks slowly in a low voice.", info) is None
    unsure = {**info, "gender": {"label": "male", "confidence": 0.7}}
    assert "not confident" in contradiction("A man speaks.", unsure)
    assert parse_json_answer('```json\n{"a": 1}\n```') == {"a": 1}
    with pytest.raises(LLMError, match="not an object"):
        parse_json_answer("[1, 2]")


def test_llm_connection_refused_is_an_llm_error():
    with pytest.raises(LLMError, match="cannot reach"):
        chat_json("http://127.0.0.1:9/v1", "m", [{"role": "user", "content": "x"}], timeout=2)


def test_bad_input(tmp_path, capsys):
    for args in (
        ["-i", str(tmp_path / "missing.jsonl.gz")],
        ["-i", str(tmp_path / "missing.jsonl.gz"), "--llm-url", "http://x"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(["qa", *args, "-o", str(tmp_path / "out")])
        assert exit_info.value.code != 0
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and error[0].startswith("synpara: error:"), error
    undescribed = tmp_path / "plain.jsonl"
    undescribed.write_text(json.dumps({"id": "a", "duration": 1.0, "supervisions": []}) + "\n")
    with pytest.raises(SynparaError, match="run describe first"):
        export_qa(undescribed, tmp_path / "out")
    with pytest.raises(SynparaError, match="--format"):
        export_qa(undescribed, tmp_path / "out", fmt="csv")
    assert not (tmp_path / "out").exists()


@needs_espeak
def test_a_cut_inside_its_recording_gets_a_clip_and_cut_time(described, tmp_path):
    import soundfile

    from synpara.manifest import iter_cuts

    manifest, truths = described
    cut = next(iter_cuts(manifest))  # utt00: a laugh after a word
    truth = truths[str(cut.recording.sources[0].source)]
    placed = truth.sentence.events[0]
    part = cut.truncate(offset=0.5, duration=cut.duration - 0.5)
    partial = tmp_path / "partial.jsonl.gz"
    write_cuts(partial, [part])
    export_qa(partial, tmp_path / "qa")
    rows = _rows(tmp_path / "qa" / "qa.jsonl")
    clip = Path(rows[0]["audio"])
    assert clip.parent == tmp_path / "qa" / "audio" and clip.suffix == ".flac"
    assert soundfile.info(str(clip)).duration == pytest.approx(part.duration, abs=1e-3)
    (timing,) = [r for r in rows if r["type"] == "timing"]
    (seconds,) = [float(x) for x in re.findall(r"about (\d+\.\d) seconds in", timing["answer"])]
    assert seconds == pytest.approx(placed.start - 0.5, abs=0.1)  # seconds into the clip
