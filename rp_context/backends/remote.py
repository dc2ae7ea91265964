"""A backend for an OpenAI-compatible completions server: llama.cpp's server, llama-cpp-python's, vLLM.

The fitted raw prompt goes to `/v1/completions` with streaming, stop strings and sampler
settings. Extras are used where the server has them: llama.cpp's server gets token ids,
`cache_prompt`, `n_keep` (the pinned prefix), `n_cache_reuse`, `id_slot` and
`return_progress`, reports its cache use in `timings`, and saves and restores slots to its disk
(`slots.SlotPool`: each chat keeps a slot; a chat that loses it is saved and comes back restored).
`/tokenize` (llama.cpp, vLLM) or `/extras/tokenize` (llama-cpp-python) gives exact counts.
Servers without these extras still work: counts are then the server's own or None.
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections.abc import Generator, Iterator, Sequence
from typing import Any, Literal

import httpx

from ..errors import BackendError
from ..sampling import SamplerSettings
from ..tokens import TokenCounter
from .base import (
    ContextSizeExceeded,
    GenerationResult,
    ProgressCallback,
    PromptInput,
    ReplyStream,
    StopReason,
    TurnMetrics,
    as_prompt,
    sampler_with,
)
from .samplers import request_params
from .stops import StopScanner

__all__ = ["ServerKind", "RemoteBackend", "SamplerSupportWarning"]

ServerKind = Literal["llama.cpp", "llama-cpp-python", "vllm", "openai"]


class SamplerSupportWarning(UserWarning):
    """A sampler setting the server cannot apply (reported once per backend and setting)."""


class RemoteBackend:
    """Streams completions from a server at `base_url` (e.g. `http://gpu-box:8080`).

    `kind=None` detects the server on first use; `slot` pins a llama.cpp server slot so its
    cache stays with this chat. `chat` names the chat this backend speaks for (a file-safe
    name): on llama.cpp's server it then gets a slot from the server's `SlotPool` (shared by
    every backend on that URL in this process), saved to the server's disk when another chat
    needs the slot and restored when it returns. `cache_reuse` is sent as `n_cache_reuse` (reuse
    cached chunks of at least that many tokens after an evicted span; None: the server's own).
    """

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        kind: ServerKind | None = None,
        slot: int | None = None,
        chat: str | None = None,
        cache_reuse: int | None = None,
        timeout: float = 600.0,
        client: httpx.Client | None = None,
    ) -> None:
        url = base_url.rstrip("/")
        if url.endswith("/v1"):
            url = url[:-3]
        self.base_url = url
        self.model = model
        self.slot = slot
        self.chat = chat
        self.cache_reuse = cache_reuse
        self.send_ids = True  # False when the prompt's ids may not be the server model's own
        self._kind = kind
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = client or httpx.Client(
            base_url=url, headers=headers, timeout=httpx.Timeout(timeout, connect=10.0)
        )
        self.last_result: GenerationResult | None = None
        self.warnings: list[str] = []
        """Sampler settings this server cannot apply, each reported once."""
        self._reported: set[str] = set()
        self._n_ctx: int | None = None
        self._props: dict[str, Any] | None = None
        self._pool: Any = None
        self._restored = 0

    @property
    def name(self) -> str:
        return f"remote:{self.kind}"

    # -- discovery ------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return self._client.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise BackendError(f"{self.base_url}{path}: server not reachable ({exc})") from exc

    @property
    def kind(self) -> ServerKind:
        """Which server this is, probed once: llama.cpp has /props, llama-cpp-python /extras."""
        if self._kind is None:
            self._kind = self._detect()
        return self._kind

    def _detect(self) -> ServerKind:
        r = self._request("GET", "/props")
        if r.status_code == 200 and _json(r).get("default_generation_settings") is not None:
            return "llama.cpp"
        r = self._request("POST", "/extras/tokenize", json={"input": "a"})
        if r.status_code == 200 and isinstance(_json(r).get("tokens"), list):
            return "llama-cpp-python"
        r = self._request("GET", "/version")
        if r.status_code == 200 and "version" in _json(r):
            return "vllm"
        return "openai"

    def model_name(self) -> str | None:
        """The model id to send: the one given, else the server's first listed model."""
        if self.model is None:
            r = self._request("GET", "/v1/models")
            data = _json(r).get("data") if r.status_code == 200 else None
            if isinstance(data, list) and data and isinstance(data[0], dict):
                self.model = str(data[0].get("id"))
        return self.model

    def tokenize(self, text: str) -> list[int] | None:
        """The server's own token ids for `text` (special tokens parsed), or None if it cannot say."""
        kind = self.kind
        if kind == "llama.cpp":
            r = self._request(
                "POST", "/tokenize", json={"content": text, "add_special": False, "parse_special": True}
            )
        elif kind == "llama-cpp-python":
            r = self._request("POST", "/extras/tokenize", json={"input": text})
        elif kind == "vllm":
            body: dict[str, Any] = {"prompt": text, "add_special_tokens": False}
            if self.model_name():
                body["model"] = self.model
            r = self._request("POST", "/tokenize", json=body)
        else:
            return None
        tokens = _json(r).get("tokens") if r.status_code == 200 else None
        return [int(t) for t in tokens] if isinstance(tokens, list) else None

    def speaks_ids_of(self, counter: TokenCounter) -> bool:
        """Whether the server's tokenizer gives `counter`'s ids on a probe of text and markers.

        Token ids are sent only to a server that agrees; otherwise the prompt goes as text
        (`send_ids` is set to match), so a server running another model never gets foreign ids.
        """
        probe = "Hello, Wren! <|im_start|>user\n[INST] <start_of_turn>  ünïcode 1234\n"
        try:
            theirs = self.tokenize(probe)
        except BackendError:
            theirs = None
        self.send_ids = theirs is not None and theirs == list(counter.tokenize(probe, special=True))
        return self.send_ids

    # -- generation -----------------------------------------------------------------------

    def stream(
        self,
        prompt: PromptInput | str | Sequence[int],
        *,
        sampler: SamplerSettings | None = None,
        stop: Sequence[str] = (),
        cancel: threading.Event | None = None,
        exact_counts: bool = False,
        on_progress: ProgressCallback | None = None,
        **overrides: Any,
    ) -> ReplyStream:
        """Start a reply; iterate for text, then read `.result`.

        Token ids are sent when the server takes them (llama.cpp, vLLM), else the text.
        `exact_counts=True` asks /tokenize for the prompt size when the server would not report it.
        `on_progress(processed, total)` follows llama.cpp's `prompt_progress` while the prompt is
        read. A prompt over the server's (slot's) context raises ContextSizeExceeded.
        """
        settings = sampler_with(sampler, overrides)
        p = as_prompt(prompt)
        body = self._body(p, settings, list(stop))
        holder: list[GenerationResult] = []

        def make(ev: threading.Event) -> Generator[str, None, None]:
            return self._turn(p, body, tuple(stop), ev, exact_counts, holder, on_progress)

        return ReplyStream(make, lambda: holder[0] if holder else None, cancel)

    def _body(self, p: PromptInput, s: SamplerSettings, stop: list[str]) -> dict[str, Any]:
        kind = self.kind
        if p.ids is not None and kind in ("llama.cpp", "vllm") and (self.send_ids or p.text is None):
            prompt: Any = list(p.ids)
        elif p.text is not None:
            prompt = p.text
        else:
            raise BackendError(
                f"{self.base_url}: this {kind} server takes prompt text, and the prompt has only token ids"
            )
        body: dict[str, Any] = {"prompt": prompt, "stream": True}
        body.update(self._sampling(s))
        if stop:
            body["stop"] = stop
        if kind == "llama.cpp":
            body.update(cache_prompt=True, n_keep=p.n_keep, timings_per_token=False,
                        return_progress=True)
            if self.cache_reuse is not None:
                body["n_cache_reuse"] = self.cache_reuse
            if self.slot is not None:
                body["id_slot"] = self.slot
        if self.model_name():
            body["model"] = self.model
        return body

    def _sampling(self, s: SamplerSettings) -> dict[str, Any]:
        """The sampler fields this server takes; settings it cannot apply are reported once
        each (`warnings` and a SamplerSupportWarning), never dropped silently."""
        kind = self.kind
        n_ctx = self._server_n_ctx() if kind == "llama.cpp" else None
        tok = self.tokenize if kind == "vllm" else None
        params, unsupported = request_params(s, kind, n_ctx=n_ctx, tokenize=tok)
        for name in unsupported:
            if name in self._reported:
                continue
            self._reported.add(name)
            msg = f"{self.base_url}: this {kind} server does not apply the sampler setting {name!r}"
            if name == "banned_strings":
                msg += " (banned strings work in process only)"
            self.warnings.append(msg)
            warnings.warn(msg, SamplerSupportWarning, stacklevel=4)
        return params

    def _server_n_ctx(self) -> int | None:
        """The server's context size (for "-1: the whole context" ranges), from /props."""
        if self._n_ctx is None:
            r = self._request("GET", "/props")
            data = _json(r) if r.status_code == 200 else {}
            gen = data.get("default_generation_settings")
            n = (_int(gen.get("n_ctx")) if isinstance(gen, dict) else None) or _int(data.get("n_ctx"))
            self._n_ctx = n or 0
        return self._n_ctx or None

    def _turn(
        self,
        p: PromptInput,
        body: dict[str, Any],
        stops: tuple[str, ...],
        cancel: threading.Event,
        exact_counts: bool,
        holder: list[GenerationResult],
        on_progress: ProgressCallback | None = None,
    ) -> Generator[str, None, None]:
        with self._slot_for(body) as restored:
            yield from self._run(p, body, stops, cancel, exact_counts, holder, on_progress,
                                 restored)

    def _run(
        self,
        p: PromptInput,
        body: dict[str, Any],
        stops: tuple[str, ...],
        cancel: threading.Event,
        exact_counts: bool,
        holder: list[GenerationResult],
        on_progress: ProgressCallback | None,
        restored: int,
    ) -> Generator[str, None, None]:
        t0 = time.perf_counter()
        t_first: float | None = None
        chunks = 0
        shown: list[str] = []
        reason: StopReason = "cancelled"
        scanner = StopScanner(stops)
        usage: dict[str, Any] = {}
        timings: dict[str, Any] = {}
        finish: str | None = None
        try:
            if cancel.is_set():
                return
            with self._client.stream("POST", "/v1/completions", json=body) as resp:
                if resp.status_code != 200:
                    resp.read()
                    raise self._http_error(resp)
                for event in _sse(resp.iter_lines()):
                    if cancel.is_set():
                        break
                    if on_progress is not None and isinstance(event.get("prompt_progress"), dict):
                        _progress(on_progress, event["prompt_progress"])
                    usage = event.get("usage") or usage
                    timings = event.get("timings") or timings
                    choices = event.get("choices") or []
                    if not choices:
                        continue
                    choice = choices[0]
                    text = choice.get("text") or ""
                    if text:
                        chunks += 1
                        if t_first is None:
                            t_first = time.perf_counter()
                    finish = choice.get("finish_reason") or finish
                    piece = scanner.feed(text)
                    if piece:
                        shown.append(piece)
                        yield piece
                    if scanner.stopped is not None:
                        break
            if scanner.stopped is not None:
                reason = "stop_string"
            elif cancel.is_set():
                reason = "cancelled"
            else:
                tail = scanner.flush()
                if tail:
                    shown.append(tail)
                    yield tail
                reason = "max_tokens" if finish == "length" else "eog"
        except GeneratorExit:
            reason = "cancelled"
            raise
        except httpx.HTTPError as exc:
            reason = "error"
            raise BackendError(f"{self.base_url}/v1/completions: {exc}") from exc
        finally:
            t_end = time.perf_counter()
            res = self._result(p, shown, chunks, reason, usage, timings, t0, t_first, t_end,
                               exact_counts and reason != "error")
            restored, self._restored = restored or self._restored, 0
            if restored:
                res.metrics.restored_tokens = restored
            holder.append(res)
            self.last_result = holder[0]

    def _result(
        self,
        p: PromptInput,
        shown: list[str],
        chunks: int,
        reason: StopReason,
        usage: dict[str, Any],
        timings: dict[str, Any],
        t0: float,
        t_first: float | None,
        t_end: float,
        exact_counts: bool,
    ) -> GenerationResult:
        reused = _int(timings.get("cache_n"))
        evaluated = _int(timings.get("prompt_n"))
        prompt_tokens: int | None
        if reused is not None and evaluated is not None:
            prompt_tokens = reused + evaluated
        elif p.ids is not None and self.kind in ("llama.cpp", "vllm"):
            prompt_tokens = len(p.ids)
        else:
            prompt_tokens = _int(usage.get("prompt_tokens"))
            if prompt_tokens is None and exact_counts and p.text is not None:
                try:
                    ids = self.tokenize(p.text)
                except BackendError:
                    ids = None
                prompt_tokens = len(ids) if ids is not None else None
        generated = _int(timings.get("predicted_n")) or _int(usage.get("completion_tokens"))
        counted = generated is not None
        gen_s = t_end - t_first if t_first is not None else 0.0
        n_gen = generated if generated is not None else chunks
        metrics = TurnMetrics(
            backend=self.name,
            prompt_tokens=prompt_tokens,
            reused_tokens=reused,
            evaluated_tokens=evaluated,
            generated_tokens=n_gen,
            time_to_first_token_s=(t_first - t0) if t_first is not None else None,
            prompt_eval_s=(timings["prompt_ms"] / 1000.0) if isinstance(timings.get("prompt_ms"), int | float) else None,
            generation_s=gen_s,
            tokens_per_second=(n_gen - 1) / gen_s if n_gen > 1 and gen_s > 0 else None,
            stop_reason=reason,
            counts_exact=counted and prompt_tokens is not None,
        )
        return GenerationResult(text="".join(shown), metrics=metrics)

    def _http_error(self, resp: httpx.Response) -> BackendError:
        """A failed request as a BackendError; an over-long prompt as ContextSizeExceeded."""
        err = _json(resp).get("error")
        if isinstance(err, dict) and err.get("type") == "exceed_context_size_error":
            n_prompt, n_ctx = _int(err.get("n_prompt_tokens")), _int(err.get("n_ctx"))
            if n_prompt is not None and n_ctx is not None:
                return ContextSizeExceeded(n_prompt, n_ctx, f"{self.base_url} (per slot)")
        return BackendError(f"{self.base_url}/v1/completions: HTTP {resp.status_code}: {resp.text[:200]}")

    # -- llama.cpp server slots -------------------------------------------------------------

    def props(self) -> dict[str, Any]:
        """llama.cpp's `/props` (cached); empty for other servers."""
        if self._props is None:
            self._props = {}
            if self.kind == "llama.cpp":
                r = self._request("GET", "/props")
                self._props = _json(r) if r.status_code == 200 else {}
        return self._props

    @property
    def total_slots(self) -> int:
        """How many slots (parallel sequences) the server has; 1 when it does not say."""
        return max(1, _int(self.props().get("total_slots")) or 1)

    def slot_action(self, slot: int, action: Literal["save", "restore", "erase"],
                    filename: str | None = None) -> dict[str, Any]:
        """POST `/slots/{slot}?action=...`; the server's answer, or BackendError naming why not."""
        body = {"filename": filename} if filename is not None else None
        r = self._request("POST", f"/slots/{slot}", params={"action": action}, json=body)
        data = _json(r)
        if r.status_code != 200:
            err = data.get("error")
            msg = err.get("message") if isinstance(err, dict) else r.text[:200]
            raise BackendError(f"{self.base_url}: slot {slot} {action} failed (HTTP {r.status_code}: {msg})")
        return data

    @property
    def pool(self) -> Any:
        """The server's SlotPool (one per URL in this process), or None for other servers."""
        if self._pool is None and self.kind == "llama.cpp":
            from .slots import pool_for

            self._pool = pool_for(self)
        return self._pool

    def for_chat(self, chat: str) -> RemoteBackend:
        """A backend for another chat on the same server: same connection, same slot pool."""
        twin = object.__new__(RemoteBackend)
        twin.__dict__.update(self.__dict__)
        twin.chat, twin.last_result, twin.warnings = chat, None, []
        twin._reported, twin._restored = set(), 0
        return twin

    def _slot_for(self, body: dict[str, Any]) -> Any:
        """A context holding this chat's pool slot for one request (sets `id_slot`)."""
        import contextlib

        if self.chat is None or self.slot is not None or self.pool is None:
            return contextlib.nullcontext(0)
        return self.pool.lease(self.chat, body)

    def save_chat_state(self) -> int:
        """Save this chat's slot to the server's disk now (after a reply); tokens saved, 0 if none."""
        if self.chat is None or self.kind != "llama.cpp" or self.pool is None:
            return 0
        return self.pool.save(self.chat)

    def restore_chat_state(self) -> int:
        """Load this chat's saved slot file into a slot, if the server has one; tokens restored."""
        if self.chat is None or self.kind != "llama.cpp" or self.pool is None:
            return 0
        self._restored = self.pool.prefetch(self.chat)
        return self._restored

    def close(self) -> None:
        self._client.close()


def _json(r: httpx.Response) -> dict[str, Any]:
    try:
        data = r.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _progress(callback: ProgressCallback, pp: dict[str, Any]) -> None:
    """llama.cpp's `prompt_progress` (processed and total include the cached part) as
    `(processed, total)` of what this turn reads."""
    total, cache, done = _int(pp.get("total")), _int(pp.get("cache")) or 0, _int(pp.get("processed"))
    if total is not None and done is not None:
        callback(max(0, done - cache), max(0, total - cache))


def _sse(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Server-sent events' JSON payloads, up to `[DONE]`."""
    for line in lines:
        line = line.strip()
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        try:
            event = json.loads(payload)
        except ValueError:
            continue
        if isinstance(event, dict):
            if "error" in event and "choices" not in event:
                err = event["error"]
                if isinstance(err, dict) and err.get("type") == "exceed_context_size_error":
                    n_prompt, n_ctx = _int(err.get("n_prompt_tokens")), _int(err.get("n_ctx"))
                    if n_prompt is not None and n_ctx is not None:
                        raise ContextSizeExceeded(n_prompt, n_ctx, "server (per slot)")
                raise BackendError(f"server error while streaming: {str(err)[:200]}")
            yield event
