"""The one place that imports llama_cpp; everything else calls in here lazily."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import warnings
import weakref
from pathlib import Path
from typing import Any

from .errors import BackendError, ModelFileError
from .models import check_gguf

__all__ = ["load_llama", "import_llama_cpp"]


LOG_ENV_VAR = "RP_CONTEXT_LLAMA_LOG"
"""Set to 1 to see llama.cpp's own log on stderr (it is silenced otherwise)."""

_log_callback: Any = None  # kept alive: llama.cpp holds a pointer to it


def import_llama_cpp() -> Any:
    """Import llama_cpp, turning a missing or broken install into a BackendError.

    llama.cpp's log is silenced (it prints warnings even with verbose=False), so the command
    line's stderr carries only our own messages; set $RP_CONTEXT_LLAMA_LOG=1 to see it.
    """
    global _log_callback
    try:
        import llama_cpp
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise BackendError(
            f"llama-cpp-python is not installed or failed to load ({exc}); pip install llama-cpp-python"
        ) from exc
    if _log_callback is None and not os.environ.get(LOG_ENV_VAR):

        @llama_cpp.llama_log_callback
        def _quiet(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            return None

        _log_callback = _quiet
        llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))
    _guard_chat_templates(llama_cpp)
    _no_amx_weights(llama_cpp)
    return llama_cpp


EXTRA_BUFTS_ENV_VAR = "RP_CONTEXT_LLAMA_EXTRA_BUFTS"
"""Set to 1 to let llama.cpp put weights in its extra CPU buffers (AMX, repack) on AMX CPUs."""


def _no_amx_weights(llama_cpp: Any) -> None:
    """On a CPU that reports AMX, load weights without llama.cpp's extra buffer types.

    A `-march=native` build on such a CPU runs matrix products with AMX tiles, which die with
    SIGILL where the hypervisor does not keep tile state (measured: SmolLM2's first eval in a
    Firecracker VM). Without the extra buffers llama.cpp uses its plain CPU kernels.
    """
    if os.environ.get(EXTRA_BUFTS_ENV_VAR) == "1" or getattr(llama_cpp, "_rp_no_amx", False):
        return
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            amx = " amx_tile" in f.read()
    except OSError:
        return
    low = getattr(llama_cpp, "llama_cpp", llama_cpp)
    default = getattr(low, "llama_model_default_params", None)
    if not amx or default is None or not hasattr(default(), "use_extra_bufts"):
        return

    def params() -> Any:
        p = default()
        p.use_extra_bufts = False
        return p

    low.llama_model_default_params = params
    llama_cpp.llama_model_default_params = params
    llama_cpp._rp_no_amx = True


_FALLBACK_TEMPLATE = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"


def _guard_chat_templates(llama_cpp: Any) -> None:
    """llama-cpp-python compiles every chat template in a GGUF while it loads the model, so a
    template with a syntax error, or `9**(9**10)` that Jinja folds at compile time, would crash
    or hang every load. rp-context checks each one under its own limits first; a bad one is
    replaced by a plain template for llama-cpp-python (rp-context renders prompts itself and
    falls back to a built-in family), with a warning."""
    formats = getattr(llama_cpp, "llama_chat_format", None)
    original = getattr(formats, "Jinja2ChatFormatter", None)
    if original is None or getattr(original, "_rp_guarded", False):
        return

    class GuardedFormatter(original):  # type: ignore[misc, valid-type]
        _rp_guarded = True

        def __init__(self, template: str, *args: Any, **kwargs: Any) -> None:
            from .templates.jinja import template_problem

            problem = template_problem(template)
            if problem is not None:
                warnings.warn(f"the model's chat template is unusable ({problem}); "
                              "rp-context uses a built-in template family", stacklevel=2)
                template = _FALLBACK_TEMPLATE
            super().__init__(template, *args, **kwargs)

    formats.Jinja2ChatFormatter = GuardedFormatter


def load_llama(path: str | Path, **kwargs: Any) -> Any:
    """Load a GGUF with llama.cpp quietly; a file it cannot load raises ModelFileError."""
    p = check_gguf(path)
    llama_cpp = import_llama_cpp()
    kwargs.setdefault("verbose", False)
    try:
        llm = llama_cpp.Llama(model_path=str(p), **kwargs)
    except (ValueError, RuntimeError, OSError) as exc:
        raise ModelFileError(p, f"llama.cpp could not load this model ({exc})") from exc
    _LOADED.add(llm)
    return llm


_LOADED: weakref.WeakSet[Any] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Free models before interpreter shutdown, when llama_cpp's own __del__ would fail noisily."""
    for llm in list(_LOADED):
        with contextlib.suppress(Exception):
            llm.close()
