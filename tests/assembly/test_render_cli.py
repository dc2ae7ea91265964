"""`rp-context render`: the DESIGN contract of its output, and bad input as one line with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rp_context.chat import save_chat
from rp_context.synth import synthetic_chat


def rp(repo_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rp_context", *args], capture_output=True, text=True,
                          timeout=300, cwd=repo_dir)


def test_render_json_contract_with_the_models_tokenizer(repo_dir: Path, tmp_path: Path, smollm_tokenizer) -> None:
    chat = tmp_path / "long.jsonl"
    save_chat(synthetic_chat(200, characters=("Wren Halloway",), user="Tess", seed=4), chat)
    proc = rp(repo_dir, "render", "--card", "cards/wren-halloway.json", "--chat", str(chat),
              "--preset", "chatml", "--context", "2048", "--reserve", "256", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {"text", "tokens", "tokenizer", "sections", "dropped", "stripped", "segments"} <= set(out)
    assert out["tokenizer"] == "exact"
    assert out["tokens"] == len(smollm_tokenizer.tokenize(out["text"], special=True)) <= 2048 - 256
    assert sum(out["sections"].values()) == out["tokens"]
    assert out["dropped"] and out["dropped"][0] == "0"  # the oldest went first
    rows = out["segments"]
    assert {"id", "kind", "role", "name", "tokens", "status"} <= set(rows[0])
    by_status = {r["status"] for r in rows}
    assert "kept" in by_status and "evicted" in by_status
    kept_text = "".join(r["id"] for r in rows if r["status"] == "kept")
    assert "msg:199" in kept_text and "msg:0" not in {r["id"] for r in rows if r["status"] == "kept"}
    # the plain output is exactly the prompt text
    plain = rp(repo_dir, "render", "--card", "cards/wren-halloway.json", "--chat", str(chat),
               "--preset", "chatml", "--context", "2048", "--reserve", "256")
    assert plain.stdout == out["text"]


def test_estimate_is_labelled(repo_dir: Path, tmp_path: Path) -> None:
    chat = tmp_path / "c.jsonl"
    save_chat(synthetic_chat(6, seed=1), chat)
    out = json.loads(rp(repo_dir, "render", "--card", "cards/wren-halloway.json", "--chat", str(chat),
                        "--estimate", "--json").stdout)
    assert out["tokenizer"] == "estimate"


def test_bad_preset_is_one_line_and_exit_2(repo_dir: Path, tmp_path: Path) -> None:
    chat = tmp_path / "c.jsonl"
    save_chat(synthetic_chat(4, seed=1), chat)
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: bundle\nversion: 1\nname: x\ninstruct: chatml\ncontext: default\n"
                   "sysprompt: roleplay\nsampler: balanced\nbudgte: cache-stable\n", encoding="utf-8")
    proc = rp(repo_dir, "render", "--card", "cards/wren-halloway.json", "--chat", str(chat), "--preset", str(bad))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "budgte" in lines[0] and "line 8" in lines[0]
    assert "Traceback" not in proc.stderr


def test_pinned_overflow_is_a_clear_error(repo_dir: Path, tmp_path: Path) -> None:
    chat = tmp_path / "c.jsonl"
    save_chat(synthetic_chat(4, seed=1), chat)
    proc = rp(repo_dir, "render", "--card", "cards/wren-halloway.json", "--chat", str(chat),
              "--context", "256", "--reserve", "64", "--estimate")
    assert proc.returncode == 2
    assert "only 192 fit" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_chat_latest_is_the_chat_the_app_resumes(repo_dir: Path, tmp_path: Path) -> None:
    """`--chat latest` reads the cast's newest chat in the app's chat folder (one rule with the
    app), and says so in one line with exit 2 when the cast has none."""
    import os
    import time

    from rp_context.chatfolder import cast_chat_path

    env = {**os.environ, "RP_CONTEXT_HOME": str(tmp_path)}
    args = ["render", "--card", "cards/wren-halloway.json", "--chat", "latest", "--estimate", "--json"]
    none = subprocess.run([sys.executable, "-m", "rp_context", *args], capture_output=True,
                          text=True, timeout=300, cwd=repo_dir, env=env)
    assert none.returncode == 2 and none.stderr.count("\n") == 1 and "latest" in none.stderr
    card = repo_dir / "cards/wren-halloway.json"
    older = cast_chat_path([card], latest=False, root=tmp_path / "chats")
    older.parent.mkdir(parents=True)
    save_chat(synthetic_chat(4, characters=("Wren Halloway",), seed=1), older)
    newer = older.with_name("Wren Halloway - newer.jsonl")
    save_chat(synthetic_chat(8, characters=("Wren Halloway",), seed=2), newer)
    os.utime(older, (time.time() - 60, time.time() - 60))
    proc = subprocess.run([sys.executable, "-m", "rp_context", *args], capture_output=True,
                          text=True, timeout=300, cwd=repo_dir, env=env)
    assert proc.returncode == 0, proc.stderr
    ids = {r["id"] for r in json.loads(proc.stdout)["segments"]}
    assert "msg:7" in ids  # the 8-message chat, not the older 4-message one
