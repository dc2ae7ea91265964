"""Sampler settings on llama.cpp's own server (the xllamacpp wheel) on 127.0.0.1: every field we
send is one it reads back, an imported SillyTavern preset drives it, and DRY acts there too."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rp_context.backends.base import PromptInput
from rp_context.backends.remote import RemoteBackend
from rp_context.backends.samplers import request_params
from rp_context.presets import import_sillytavern_file
from rp_context.sampling import SamplerSettings

pytestmark = pytest.mark.model

N_CTX = 1024


@pytest.fixture(scope="module")
def server(smollm_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from rp_context.backends.llamaserver import LlamaServer

    log = tmp_path_factory.mktemp("server") / "server.log"
    with LlamaServer(model=smollm_path, n_ctx=N_CTX, n_threads=1, log=log) as srv:
        yield srv.url


SENT = SamplerSettings(
    temperature=0.7, dynatemp_range=0.2, dynatemp_exponent=1.5, top_k=30, top_p=0.9, min_p=0.04,
    typical_p=0.95, top_n_sigma=2.0, min_keep=2, repeat_penalty=1.05, repeat_last_n=-1,
    frequency_penalty=0.1, presence_penalty=0.2, dry_multiplier=0.8, dry_base=1.5,
    dry_allowed_length=3, dry_penalty_last_n=-1, dry_sequence_breakers=["\n", "*"],
    xtc_probability=0.3, xtc_threshold=0.2, sampler_order=["dry", "top_k", "min_p", "xtc", "temperature"],
    logit_bias=[{"text": "[42]", "value": 2.5}], banned_tokens=["[7]"], seed=5, max_tokens=2,
)


def test_every_field_we_send_is_one_the_server_reads(server: str) -> None:
    params, unsupported = request_params(SENT, "llama.cpp", n_ctx=N_CTX)
    assert unsupported == []
    r = httpx.post(f"{server}/completion", json={"prompt": "Hello", **params}, timeout=120)
    assert r.status_code == 200, r.text
    got = r.json()["generation_settings"]
    for key, value in params.items():
        if key in ("max_tokens", "logit_bias"):
            continue
        assert key in got, key
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-5), key
        else:
            assert got[key] == value, key
    assert got["n_predict"] == 2
    bias = {(b["token"] if isinstance(b, dict) else b[0]): (b["bias"] if isinstance(b, dict) else b[1])
            for b in got["logit_bias"]}
    assert bias[42] == pytest.approx(2.5)
    assert bias[7] is None or bias[7] is False or bias[7] < -1e30  # -inf: a ban


def test_a_sillytavern_preset_drives_the_server(server: str, reference_dir: Path) -> None:
    preset = import_sillytavern_file(reference_dir / "sillytavern" / "textgen" / "Universal-Light.json")
    s = SamplerSettings.model_validate(preset.model_dump(exclude={"name", "description"}))
    s = s.model_copy(update={"seed": 3, "max_tokens": 12, "banned_strings": ["lighthouse"]})
    remote = RemoteBackend(server)
    assert remote.kind == "llama.cpp"
    with pytest.warns(UserWarning, match="banned_strings"):
        first = remote.stream("<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n", sampler=s).collect()
    again = remote.stream("<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n", sampler=s).collect()
    assert first.text.strip() and first.text == again.text  # seeded: the same reply
    assert len(remote.warnings) == 1  # reported once, not per request
    body = remote._body(PromptInput(text="x"), s, [])
    assert body["samplers"] == s.chain_order() and body["min_p"] == 0.1 and body["temperature"] == 1.25


def _repeated_word_4grams(text: str) -> int:
    words = re.findall(r"\w+", text.lower())
    grams = Counter(tuple(words[i : i + 4]) for i in range(len(words) - 3))
    return sum(n - 1 for n in grams.values())


def test_dry_acts_on_the_server(server: str) -> None:
    remote = RemoteBackend(server)
    loop = "The cat sat on the mat. " * 6
    base = SamplerSettings(temperature=0.0, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0,
                           max_tokens=64, seed=1)
    plain = remote.stream(loop, sampler=base).collect().text
    dry = remote.stream(loop, sampler=base.model_copy(update={"dry_multiplier": 0.8})).collect().text
    r0, r1 = _repeated_word_4grams(plain), _repeated_word_4grams(dry)
    assert r0 >= 20, plain
    assert r1 < r0 / 2, (plain, dry)
    print(json.dumps({"server_repeated_4grams": {"without_dry": r0, "with_dry": r1}}))
