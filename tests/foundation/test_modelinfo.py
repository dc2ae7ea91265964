"""`model_info`: facts read from the GGUF through llama.cpp, and the family they map to."""

from __future__ import annotations

import json

from rp_context.detect import detect_family
from rp_context.modelinfo import model_info


def test_default_model_is_chatml(smollm_path) -> None:
    info = model_info(smollm_path)
    assert info.architecture == "llama"
    assert info.context_length == 8192
    assert (info.bos_token, info.bos_id) == ("<|im_start|>", 1)
    assert (info.eos_token, info.eos_id) == ("<|im_end|>", 2)
    assert info.add_bos is False
    assert info.has_chat_template and "<|im_start|>" in (info.chat_template or "")
    # SmolLM2's own template adds its default system prompt when there is none: no family does,
    # so its own template is used (read as ChatML role markers plus that prompt)
    assert info.family == "jinja" and info.family_source == "model_template"
    assert info.llamacpp_template == "chatml" and "no family renders it exactly" in info.template_reason
    assert info.warnings == []


def test_gemma_base_model_has_no_template_and_warns(gemma_path) -> None:
    info = model_info(gemma_path)
    assert info.architecture == "gemma3"
    assert info.context_length == 32768
    assert info.add_bos is True
    assert info.has_chat_template is False and info.chat_template is None
    assert info.family == "gemma" and info.family_source == "architecture"
    assert info.warnings and "no chat template" in info.warnings[0]


def test_detection_from_template_markers(reference_dir) -> None:
    tdir = reference_dir / "templates"
    # (exact family or "jinja" for the model's own template, llama.cpp's nearest builtin family)
    expected = {
        "chatml.jinja": ("chatml", "chatml"),
        "smollm2-instruct.jinja": ("jinja", "chatml"),
        "llama-3-instruct.jinja": ("llama3", "llama3"),
        "gemma-2-it.jinja": ("gemma", "gemma"),
        "phi-3.5-mini-instruct.jinja": ("jinja", "phi3"),
        "llama-2-chat.jinja": ("jinja", "llama2-sys-strip"),
        "mistral-v7-large-2411.jinja": ("mistral-v7", "mistral-v7"),
        "vicuna-1.1.jinja": ("vicuna", "vicuna"),
    }
    golden = json.loads((tdir / "golden" / "hf_jinja_vs_llamacpp_autodetect.json").read_text())
    for name, (family, nearest) in expected.items():
        tokens = golden[name.removesuffix(".jinja")]
        guess = detect_family((tdir / name).read_text(), "llama", None, bos_token=tokens["bos_token"],
                              eos_token=tokens["eos_token"])
        assert (guess.family, guess.nearest) == (family, nearest), name
        assert guess.warning is None


def test_unknown_everything_falls_back_loudly() -> None:
    guess = detect_family(None, "mamba", "Something 1B")
    assert guess.source == "fallback" and guess.warning
