"""What a GGUF model is: architecture, context length, BOS/EOS, its chat template and family."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from .detect import detect_family
from .models import resolve_model
from .tokens import LlamaTokenizer

__all__ = ["ModelInfo", "model_info"]


class ModelInfo(BaseModel):
    """Facts about a GGUF model read through llama.cpp's vocabulary-only load."""

    path: Path
    name: str | None
    architecture: str | None
    context_length: int | None
    bos_token: str | None
    bos_id: int | None
    eos_token: str | None
    eos_id: int | None
    add_bos: bool
    has_chat_template: bool
    chat_template: str | None
    family: str
    """The family rp-context renders with, or "jinja" for the model's own template."""
    family_source: str
    """chat_template (a family that renders the model's template exactly), model_template (the
    model's own template), architecture or fallback (guesses, with a warning)."""
    template_reason: str = ""
    """Why that template: which family matched, or why none did."""
    llamacpp_template: str | None = None
    """The builtin llama.cpp's own detection picks for this template (what its server would use
    without --jinja)."""
    warnings: list[str]


def model_info(path: str | Path | None = None, tokenizer: LlamaTokenizer | None = None) -> ModelInfo:
    """Read the facts of the model at `path` (default: the resolved default model)."""
    tok = tokenizer or LlamaTokenizer(resolve_model(path))
    meta = tok.metadata()
    arch = meta.get("general.architecture")
    ctx_raw = meta.get(f"{arch}.context_length") if arch else None
    template = meta.get("tokenizer.chat_template") or None
    bos = tok.token_text(tok.bos_id) if tok.bos_id is not None else None
    eos = tok.token_text(tok.eos_id) if tok.eos_id is not None else None
    guess = detect_family(template, arch, meta.get("general.name"), bos_token=bos, eos_token=eos,
                          template_name=f"gguf:{tok.path.name}")
    warnings = [guess.warning] if guess.warning else []
    return ModelInfo(
        path=tok.path,
        name=meta.get("general.name"),
        architecture=arch,
        context_length=int(ctx_raw) if ctx_raw and ctx_raw.isdigit() else None,
        bos_token=bos,
        bos_id=tok.bos_id,
        eos_token=eos,
        eos_id=tok.eos_id,
        add_bos=tok.add_bos,
        has_chat_template=template is not None,
        chat_template=template,
        family=guess.family,
        family_source=guess.source,
        template_reason=guess.reason,
        llamacpp_template=guess.llamacpp,
        warnings=warnings,
    )
