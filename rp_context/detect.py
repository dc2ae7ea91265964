"""Which template family a model speaks, from its GGUF metadata (chat template, architecture, name)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FamilyGuess", "detect_family", "FALLBACK_FAMILY"]

FALLBACK_FAMILY = "chatml"
"""Used when nothing in the metadata names a family; always reported with a warning."""


@dataclass(frozen=True)
class FamilyGuess:
    """A detected family, where the guess came from, and a warning when it is only a fallback."""

    family: str
    source: str  # "chat_template", "architecture" or "fallback"
    warning: str | None = None


# Ordered: the first marker found in the template wins (most specific first).
_TEMPLATE_MARKERS: list[tuple[tuple[str, ...], str]] = [
    (("<|im_start|>",), "chatml"),
    (("<|start_header_id|>",), "llama3"),
    (("<start_of_turn>",), "gemma"),
    (("<|START_OF_TURN_TOKEN|>",), "command-r"),
    (("[SYSTEM_PROMPT]", "[INST] "), "mistral-v7"),
    (("[SYSTEM_PROMPT]",), "mistral-v7-tekken"),
    (("<<SYS>>",), "llama2"),
    (("[INST]", "[/INST]", "eos_token"), "mistral-v3"),
    (("[INST]",), "mistral-v1"),
    (("<|assistant|>", "<|end|>"), "phi3"),
    (("<|user|>", "<|assistant|>"), "zephyr"),
    (("USER:", "ASSISTANT:"), "vicuna"),
    (("### Instruction",), "alpaca"),
]

_ARCH_FAMILIES: dict[str, str] = {
    "gemma": "gemma",
    "gemma2": "gemma",
    "gemma3": "gemma",
    "phi3": "phi3",
    "command-r": "command-r",
    "cohere2": "command-r",
    "qwen2": "chatml",
    "qwen3": "chatml",
}


def detect_family(
    chat_template: str | None, architecture: str | None = None, name: str | None = None
) -> FamilyGuess:
    """Map a GGUF's chat template (or, without one, its architecture) to a built-in family."""
    if chat_template:
        for markers, family in _TEMPLATE_MARKERS:
            if all(m in chat_template for m in markers):
                return FamilyGuess(family, "chat_template")
        return FamilyGuess(
            FALLBACK_FAMILY,
            "fallback",
            f"the model's chat template matches no known family; using {FALLBACK_FAMILY!r}",
        )
    arch = (architecture or "").lower()
    lname = (name or "").lower()
    family = _ARCH_FAMILIES.get(arch)
    if family is None and ("llama-3" in lname or "llama3" in lname):
        family = "llama3"
    if family is None and "mistral" in lname:
        family = "mistral-v1"
    if family is not None:
        return FamilyGuess(
            family,
            "architecture",
            f"the model has no chat template; guessed {family!r} from its architecture/name "
            f"({architecture or '?'}, {name or '?'}); pass --template to choose",
        )
    return FamilyGuess(
        FALLBACK_FAMILY,
        "fallback",
        f"the model has no chat template; falling back to {FALLBACK_FAMILY!r}; "
        "pass --template to choose",
    )
