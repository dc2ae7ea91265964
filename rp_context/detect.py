"""Which template a model speaks, from its GGUF metadata (chat template, architecture, name).

A family is chosen only when it renders the model's own Jinja template byte for byte on the probe
conversations (`templates.induce.PROBES`); otherwise the model's own template is used, read into
an instruct template and checked the same way. Only a model without a usable template gets a
guess, and a guess always comes with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["FamilyGuess", "detect_family", "llamacpp_detect", "FALLBACK_FAMILY", "LLAMACPP_FAMILY"]

FALLBACK_FAMILY = "chatml"
"""Used when nothing in the metadata names a family; always reported with a warning."""

LLAMACPP_FAMILY: dict[str, str] = {"llama2-sys": "llama2", "llama2": "llama2-nosys"}
"""llama.cpp builtin names whose rp-context family has another name (all others are the same)."""


@dataclass(frozen=True)
class FamilyGuess:
    """The template to use, where the choice came from, why, and a warning when it is a guess.

    `source`: "chat_template" (a family that renders the model's template exactly),
    "model_template" (the model's own template, `family` is "jinja"), "architecture" or
    "fallback" (guesses). `template` is the instruct template to render with.
    """

    family: str
    source: str
    warning: str | None = None
    reason: str = ""
    template: Any = None
    llamacpp: str | None = None
    nearest: str | None = None
    """The family llama.cpp's own detection points to (for callers that need an instruct
    template when the model's template is only renderable as Jinja)."""


def _has(t: str, *needles: str) -> bool:
    return all(n in t for n in needles)


def _llamacpp_mistral(t: str) -> str:
    if "[SYSTEM_PROMPT]" in t:
        return "mistral-v7"
    if "' [INST] ' + system_message" in t or "[AVAILABLE_TOOLS]" in t:
        if " [INST]" in t:
            return "mistral-v1"
        return "mistral-v3-tekken" if '"[INST]"' in t else "mistral-v3"
    if "content.strip()" in t:
        return "llama2-sys-strip"
    if "bos_token + '[INST]" in t:
        return "llama2-sys-bos"
    return "llama2-sys" if "<<SYS>>" in t else "llama2"


# llama.cpp's llm_chat_detect_template after the ChatML and [INST] cases, in its order.
_LLAMACPP_MARKERS: list[tuple[tuple[str, ...], str]] = [
    (("<|assistant|>", "<|end|>"), "phi3"),
    (("[gMASK]<sop>",), "chatglm4"),
    (("<|assistant|>", "<|user|>", "<|tool_declare|>"), "exaone-moe"),
    (("<|assistant|>", "<|user|>", "</s>"), "falcon3"),
    (("<|assistant|>", "<|user|>"), "glmedge"),
    (("<|{{ item['role'] }}|>", "<|begin_of_image|>"), "glmedge"),
    (("<|user|>", "<|endoftext|>"), "zephyr"),
    (("bos_token + message['role']",), "monarch"),
    (("<start_of_turn>",), "gemma"),
    (("'\\n\\nAssistant: ' + eos_token",), "orion"),
    (("GPT4 Correct ",), "openchat"),
    (("USER: ", "ASSISTANT: ", "SYSTEM: "), "vicuna-orca"),
    (("USER: ", "ASSISTANT: "), "vicuna"),
    (("### Instruction:", "<|EOT|>"), "deepseek"),
    (("<|START_OF_TURN_TOKEN|>", "<|USER_TOKEN|>"), "command-r"),
    (("<|start_header_id|>", "<|end_header_id|>"), "llama3"),
    (("[gMASK]sop",), "chatglm3"),
    (("<用户>",), "minicpm"),
    (("'Assistant: ' + message['content'] + eos_token",), "deepseek2"),
    (("<｜Assistant｜>", "<｜User｜>", "<｜end▁of▁sentence｜>"), "deepseek3"),
    (("[|system|]", "[|assistant|]", "[|endofturn|]", "[|tool|]"), "exaone4"),
    (("[|system|]", "[|assistant|]", "[|endofturn|]"), "exaone3"),
    (("rwkv-world",), "rwkv-world"),
    (("{{- 'User: ' + message['content']|trim + '\\n\\n' -}}",), "rwkv-world"),
    (("<|start_of_role|>", "<tool_call>", "g4_default_system_message"), "granite-4.0"),
    (("<|start_of_role|>", "<tools>", "g4_default_system_message"), "granite-4.0"),
    (("<|start_of_role|>", "<tool_call>"), "granite-4.1"),
    (("<|start_of_role|>", "<tools>"), "granite-4.1"),
    (("<|start_of_role|>",), "granite"),
    (("message['role'] + additional_special_tokens[0] + message['content'] + additional_special_tokens[1]",), "gigachat"),
    (("<|role_start|>",), "megrez"),
    ((" Ассистент:",), "yandex"),
    (("<role>ASSISTANT</role>", "'HUMAN'"), "bailing"),
    (("<role>ASSISTANT</role>", '"HUMAN"', "<think>"), "bailing-think"),
    (("<role>ASSISTANT</role>", "<role>HUMAN</role>", "<|role_end|>"), "bailing2"),
    (("<|header_start|>", "<|header_end|>"), "llama4"),
    (("<|endofuserprompt|>",), "dots1"),
    (("<|extra_0|>", "<|extra_4|>"), "hunyuan-moe"),
    (("<|start|>", "<|channel|>"), "gpt-oss"),
    (("<｜hy_Assistant｜>", "<｜hy_begin▁of▁sentence｜>"), "hunyuan-vl"),
    (("<｜hy_Assistant｜>", "<｜hy_place▁holder▁no▁3｜>"), "hunyuan-dense"),
    (("<|im_assistant|>assistant<|im_middle|>",), "kimi-k2"),
    (("<seed:bos>",), "seed_oss"),
    (("'Assistant: '  + message['content'] + '<|separator|>",), "grok-2"),
    (("[unused9]系统：[unused10]",), "pangu-embedded"),
    (("<|begin|>", "<|end|>", "<|content|>"), "solar-open"),
]


def llamacpp_detect(chat_template: str) -> str | None:
    """The builtin template llama.cpp's own detection (`llm_chat_detect_template`) picks for this
    Jinja source, by the same substring rules in the same order; None when it knows none."""
    t = chat_template
    if "<|im_start|>" in t:
        if "<|im_sep|>" in t:
            return "phi4"
        return "smolvlm" if "<end_of_utterance>" in t else "chatml"
    if t.startswith("mistral") or "[INST]" in t:
        return _llamacpp_mistral(t)
    for needles, name in _LLAMACPP_MARKERS:
        if _has(t, *needles):
            return name
    return None


def _family_of(llamacpp: str | None) -> str | None:
    if llamacpp is None:
        return None
    return LLAMACPP_FAMILY.get(llamacpp, llamacpp)


def detect_family(
    chat_template: str | None,
    architecture: str | None = None,
    name: str | None = None,
    *,
    bos_token: str | None = None,
    eos_token: str | None = None,
    template_name: str = "the model's chat template",
) -> FamilyGuess:
    """The template a model's metadata calls for: an exact family, the model's own template, or
    (without a usable template) a guess with a warning."""
    if chat_template:
        return _from_template(chat_template, bos_token, eos_token, template_name)
    return _from_architecture(architecture, name)


def _candidates(first: str | None) -> list[str]:
    from .presets.families import list_families

    names = list_families()
    return ([first] if first in names else []) + [n for n in names if n != first and n != "plain"]


def _from_template(source: str, bos: str | None, eos: str | None, label: str) -> FamilyGuess:
    from .errors import TemplateError
    from .templates.induce import compare_render, induce_instruct, probe_renders
    from .templates.jinja import JinjaTemplate

    lc = llamacpp_detect(source)
    marker = _family_of(lc)
    known = _candidates(None)
    nearest = marker if marker in known else None
    jinja = JinjaTemplate(source, bos_token=bos, eos_token=eos, name=label)
    try:
        jinja.check_syntax()
    except TemplateError as exc:
        fallback = nearest or FALLBACK_FAMILY
        warning = f"{exc}; using {fallback!r} (a guess); pass --template to choose"
        return FamilyGuess(fallback, "fallback", warning, str(exc), _family(fallback), lc, fallback)
    renders = probe_renders(jinja)
    closest = ""
    for fam in _candidates(marker):
        check = compare_render(_family(fam), jinja, renders)
        if check.equal:
            reason = f"renders {label} byte for byte ({check.compared} probe renders)"
            return FamilyGuess(fam, "chat_template", None, reason, _family(fam), lc, fam)
        if fam == marker:
            closest = f"{fam} differs {check.difference}"
    why = "no family renders it exactly" + (f" ({closest})" if closest else "")
    try:
        own = induce_instruct(jinja, renders)
    except TemplateError as exc:
        reason = f"{why}, and its turns are not plain role markers ({exc}); rendering {label} itself"
        return FamilyGuess("jinja", "model_template", None, reason, jinja, lc, nearest)
    reason = f"{why}; using the role markers read from {label}, which render it exactly"
    return FamilyGuess("jinja", "model_template", None, reason, own, lc, nearest)


@lru_cache(maxsize=128)
def _family_cached(name: str) -> Any:
    from .presets.families import get_family

    return get_family(name)


def _family(name: str) -> Any:
    return _family_cached(name)


def _from_architecture(architecture: str | None, name: str | None) -> FamilyGuess:
    from .presets.families import get_family

    arch = (architecture or "").lower()
    lname = (name or "").lower()
    family = _ARCH_FAMILIES.get(arch)
    if family is None and ("llama-3" in lname or "llama3" in lname):
        family = "llama3"
    if family is None and "mistral" in lname:
        family = "mistral-v1"
    if family is not None:
        warning = (
            f"the model has no chat template; guessed {family!r} from its architecture/name "
            f"({architecture or '?'}, {name or '?'}); pass --template to choose"
        )
        return FamilyGuess(family, "architecture", warning, "guessed from the architecture",
                           get_family(family), None, family)
    warning = (
        f"the model has no chat template; falling back to {FALLBACK_FAMILY!r}; "
        "pass --template to choose"
    )
    return FamilyGuess(FALLBACK_FAMILY, "fallback", warning, "no chat template, no known architecture",
                       get_family(FALLBACK_FAMILY), None, FALLBACK_FAMILY)


_ARCH_FAMILIES: dict[str, str] = {
    "gemma": "gemma",
    "gemma2": "gemma",
    "gemma3": "gemma",
    "phi3": "phi3",
    "command-r": "command-r",
    "cohere2": "command-r",
    "qwen2": "chatml",
    "qwen3": "chatml",
    "llama4": "llama4",
    "deepseek2": "deepseek3",
    "exaone": "exaone3",
    "exaone4": "exaone4",
    "granite": "granite",
    "granitemoe": "granite",
    "gpt-oss": "gpt-oss",
    "glm4": "chatglm4",
    "chatglm": "chatglm4",
    "rwkv6": "rwkv-world",
    "rwkv7": "rwkv-world",
}
