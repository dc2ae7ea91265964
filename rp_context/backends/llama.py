"""In-process inference through llama-cpp-python: one owner of one model, fed token ids.

Each turn keeps the longest common prefix of the previous turn's tokens in llama.cpp's KV cache
and evaluates only the rest, and reports exactly how many tokens it reused and evaluated.
Opt-in context shift (approximate, see `shift.py`) also keeps the text after an evicted middle
span, and after new text in the middle (a changed memory summary): the new tokens are evaluated
at their own positions in a spare sequence, so the cached text after them is moved, not re-read.
A chat's KV state can be saved to disk and restored by a later process. Models whose cache
cannot be cut partially (recurrent and hybrid ones) keep state checkpoints at turn boundaries
and roll back to the newest one that is a prefix of the new prompt.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .._llama import import_llama_cpp, load_llama
from ..errors import BackendError
from ..models import resolve_model
from ..sampling import SamplerSettings
from ..tokens import common_prefix
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
from .kvstate import KVStateHeader, KVStateMismatch, model_fingerprint, read_state, write_state
from .phrasebans import PhraseGuard
from .samplers import SamplerChain, banned_phrases, build_chain
from .shift import MIN_CHUNK, ReusePlan, plan_reuse
from .stops import StopScanner

__all__ = ["KVCacheType", "LlamaLoadOptions", "LlamaBackend"]

KVCacheType = Literal["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1"]

_SMALL_EVAL = 64
"""Prompt deltas up to this many tokens run with the generation thread count, not the batch one.

A warm-cache turn evaluates a few dozen tokens. With llama.cpp's batch threads (all cores by
default) spinning at every op's barrier, a machine whose cores are busy with other work makes
such a short eval many times slower (measured: 37 tokens in 5.5 s with 2 batch threads, 1.1 s
with 1, on a loaded 2-core machine); a short eval gains little from extra threads anyway."""
# While a user may be waiting to stop it, the prompt is read in steps of at most this many
# tokens, so a cancel (Esc) lands within one short step (~0.5 s on 2 CPU cores), not one n_batch.
_CANCEL_STEP = 128
_SPARE_SEQ = 1
"""The sequence new text in the middle of the prompt is evaluated in (see `_eval_between`)."""
_PARAMS_LOCK = threading.Lock()


@contextlib.contextmanager
def _spare_sequence(lc: Any) -> Iterator[None]:
    """Load contexts with two sequences sharing one unified KV cache (of the same size).

    llama.cpp evaluates a batch only at positions after a sequence's last cached one, so text
    inserted in the middle is evaluated in sequence 1 (holding a copy of the prefix), then
    handed to sequence 0. llama-cpp-python has no argument for it: its defaults are wrapped
    while it loads.
    """
    low = getattr(lc, "llama_cpp", lc)
    with _PARAMS_LOCK:
        original = low.llama_context_default_params

        def params() -> Any:
            p = original()
            p.n_seq_max = max(int(p.n_seq_max), 2)
            p.kv_unified = True
            return p

        low.llama_context_default_params = params
        try:
            yield
        finally:
            low.llama_context_default_params = original


class LlamaLoadOptions(BaseModel):
    """How the model is loaded. `n_gpu_layers=-1` offloads every layer on a Metal or CUDA build.

    A quantized `kv_cache_type` (q8_0, q4_0...) saves memory; llama.cpp needs `flash_attn` for a
    quantized V cache.
    """

    model_config = ConfigDict(extra="forbid")

    n_ctx: int = Field(4096, ge=16)
    n_threads: int | None = Field(None, ge=1)
    n_threads_batch: int | None = Field(None, ge=1)
    n_gpu_layers: int = Field(0, ge=-1)
    n_batch: int = Field(512, ge=1)
    flash_attn: bool = False
    kv_cache_type: KVCacheType = "f16"
    use_mmap: bool = True
    seed: int = 0xC0FFEE


class LlamaBackend:
    """Owns one `llama_cpp.Llama`; turns are serialised, prompts are token ids (no re-tokenizing).

    `context_shift=True` makes every turn try a context shift (approximate); it can also be set
    per call; `shift_min_kept` is the shortest cached run a shift moves. `checkpoints=None`
    keeps turn-boundary state checkpoints only for models whose cache cannot be cut partially;
    True forces them (and rolls back through them) on any model.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        options: LlamaLoadOptions | None = None,
        *,
        context_shift: bool = False,
        shift_min_kept: int = MIN_CHUNK,
        checkpoints: bool | None = None,
        max_checkpoints: int = 4,
        **option_overrides: Any,
    ) -> None:
        self.path = resolve_model(model_path)
        known = set(LlamaLoadOptions.model_fields)
        extra = {k: v for k, v in option_overrides.items() if k not in known}
        opts = (options or LlamaLoadOptions()).model_dump()
        opts.update({k: v for k, v in option_overrides.items() if k in known})
        self.options = LlamaLoadOptions.model_validate(opts)
        self.context_shift = context_shift
        self.shift_min_kept = shift_min_kept
        lc = import_llama_cpp()
        kv_type = int(getattr(lc, f"GGML_TYPE_{self.options.kv_cache_type.upper()}"))
        self._kv_type = kv_type
        o = self.options
        with _spare_sequence(lc):
            self._llm: Any = load_llama(
                self.path,
                n_ctx=o.n_ctx,
                n_threads=o.n_threads,
                n_threads_batch=o.n_threads_batch,
                n_gpu_layers=o.n_gpu_layers,
                n_batch=o.n_batch,
                n_ubatch=o.n_batch,
                flash_attn=o.flash_attn,
                type_k=kv_type,
                type_v=kv_type,
                use_mmap=o.use_mmap,
                seed=o.seed,
                **extra,
            )
        self._lc = lc
        self._vocab = lc.llama_model_get_vocab(self._llm.model)
        self._bos = int(self._llm.token_bos())
        self._lock = threading.Lock()
        self._fingerprint: str | None = None
        self._restored = 0
        self.force_checkpoints = bool(checkpoints)
        self.max_checkpoints = max_checkpoints
        self._use_ckpts = bool(checkpoints) or (checkpoints is None and self._cannot_cut())
        self._ckpts: list[tuple[list[int], bytes]] = []
        self._can_insert = int(lc.llama_n_seq_max(self._llm.ctx)) > _SPARE_SEQ
        self._gap_batch: Any = None
        self.last_result: GenerationResult | None = None
        """The most recent turn's result, for callers that only iterate the stream."""

    # -- properties -----------------------------------------------------------------------

    name = "llama.cpp"

    @property
    def llama(self) -> Any:
        """The underlying `llama_cpp.Llama`."""
        return self._llm

    @property
    def n_ctx(self) -> int:
        return int(self._llm.n_ctx())

    @property
    def cached_ids(self) -> list[int]:
        """Token ids whose KV entries the cache holds now, in position order."""
        return self._llm.input_ids[: self._llm.n_tokens].tolist()

    @property
    def can_shift(self) -> bool:
        """Whether this model's KV cache supports shifting positions (RoPE models do)."""
        mem = self._llm._ctx.memory
        return bool(mem is not None and self._lc.llama_memory_can_shift(mem))

    def _cannot_cut(self) -> bool:
        """Recurrent and hybrid models keep a state that cannot drop a suffix of tokens."""
        model = self._llm.model
        for fn in ("llama_model_is_recurrent", "llama_model_is_hybrid"):
            check = getattr(self._lc, fn, None)
            if check is not None and bool(check(model)):
                return True
        return False

    @property
    def uses_checkpoints(self) -> bool:
        """Whether turns keep state checkpoints (forced, or the model cannot cut its cache)."""
        return self._use_ckpts

    # -- generation -----------------------------------------------------------------------

    def stream(
        self,
        prompt: PromptInput | str | Sequence[int],
        *,
        sampler: SamplerSettings | None = None,
        stop: Sequence[str] = (),
        cancel: threading.Event | None = None,
        context_shift: bool | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        min_p: float | None = None,
        top_k: int | None = None,
        repeat_penalty: float | None = None,
        seed: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> ReplyStream:
        """Start a reply; iterate for text pieces, then read `.result` for the text and metrics.

        Stops on the model's end-of-generation tokens and on `stop` strings (never shown, even
        when split across tokens). Keyword sampler values override `sampler`. A str prompt is
        tokenized with special-token parsing; pass token ids to keep content literal.
        `on_progress(processed, total)` is called between batches while the prompt is read.
        """
        settings = sampler_with(
            sampler,
            {
                "max_tokens": max_tokens,
                "temperature": temperature,
                "top_p": top_p,
                "min_p": min_p,
                "top_k": top_k,
                "repeat_penalty": repeat_penalty,
                "seed": seed,
            },
        )
        ids = self._prompt_ids(as_prompt(prompt))
        if len(ids) + 1 > self.n_ctx:
            raise ContextSizeExceeded(len(ids), self.n_ctx)
        shift = self.context_shift if context_shift is None else context_shift
        holder: list[GenerationResult] = []

        def make(ev: threading.Event) -> Generator[str, None, None]:
            return self._turn(ids, settings, tuple(stop), ev, shift, holder, on_progress)

        return ReplyStream(make, lambda: holder[0] if holder else None, cancel)

    def _prompt_ids(self, p: PromptInput) -> list[int]:
        if p.ids is not None:
            ids = list(p.ids)
        elif p.text is not None:
            ids = list(self._llm.tokenize(p.text.encode("utf-8"), add_bos=False, special=True))
        else:
            ids = []
        if not ids:
            raise BackendError("the prompt is empty")
        if len(ids) >= 2 and self._bos >= 0 and ids[0] == ids[1] == self._bos:
            ids = ids[1:]  # a template BOS plus a tokenizer BOS: keep one
        return ids

    def _turn(
        self,
        ids: list[int],
        s: SamplerSettings,
        stops: tuple[str, ...],
        cancel: threading.Event,
        shift: bool,
        holder: list[GenerationResult],
        on_progress: ProgressCallback | None = None,
    ) -> Generator[str, None, None]:
        t0 = time.perf_counter()
        llm = self._llm
        reused = shifted = evaluated = ckpt = 0
        eval_s: float | None = None
        t_first: float | None = None
        out_ids: list[int] = []
        shown: list[str] = []
        reason: StopReason = "cancelled"
        scanner = StopScanner(stops)
        with self._lock:
            try:
                if cancel.is_set():
                    return
                t_eval = time.perf_counter()
                gap_kept = gap_done = 0
                if shift:
                    shifted, gap_kept, gap_done = self._shift(ids, cancel, on_progress)
                keep, ckpt = self._keep_prefix(ids)
                reused = keep - gap_kept  # the new text between moved runs was evaluated
                read = self._read_prompt(ids, keep, cancel, on_progress, already=gap_done)
                evaluated = gap_done + read
                eval_s = time.perf_counter() - t_eval
                if read < len(ids) - keep:
                    reason = "cancelled"  # stopped while reading the prompt; what was read stays cached
                    return
                sampler = self._sampler(s, ids)
                guard = PhraseGuard(banned_phrases(s), sampler)  # decodes; holds banned phrases
                while True:
                    if cancel.is_set():
                        reason = "cancelled"
                        break
                    tok = guard.sample(llm._ctx)
                    if t_first is None:
                        t_first = time.perf_counter()
                    out_ids.append(tok)
                    if self._lc.llama_vocab_is_eog(self._vocab, tok):
                        reason = "eog"
                        break
                    text, rewind = guard.push(tok, self._piece(tok))
                    if rewind is not None:  # a banned phrase completed: back up to its start
                        del out_ids[rewind:]
                        self._rewind(len(ids) + rewind)
                        continue
                    if guard.exhausted:
                        reason = "banned_phrase"
                        break
                    piece = scanner.feed(text)
                    if piece:
                        shown.append(piece)
                        yield piece
                    if scanner.stopped is not None:
                        reason = "stop_string"
                        break
                    if len(out_ids) >= s.max_tokens:
                        reason = "max_tokens"
                        break
                    if llm.n_tokens + 1 >= self.n_ctx:
                        reason = "context_full"
                        break
                    if cancel.is_set():
                        reason = "cancelled"
                        break
                    llm.eval([tok])
                if reason not in ("stop_string", "cancelled", "banned_phrase"):
                    tail = scanner.feed(guard.flush()) + scanner.flush()
                    if tail:
                        shown.append(tail)
                        yield tail
                if self._use_ckpts:
                    self._checkpoint()  # the reply's end: the next turn's prompt may start so
            except GeneratorExit:
                reason = "cancelled"
                raise
            except (RuntimeError, ValueError, OSError) as exc:
                reason = "error"
                raise BackendError(f"llama.cpp failed while generating ({exc})") from exc
            finally:
                t_end = time.perf_counter()
                n_gen = len(out_ids)
                gen_s = t_end - t_first if t_first is not None else 0.0
                metrics = TurnMetrics(
                    backend=self.name,
                    prompt_tokens=len(ids),
                    reused_tokens=reused,
                    evaluated_tokens=evaluated,
                    shifted_tokens=shifted,
                    generated_tokens=n_gen,
                    time_to_first_token_s=(t_first - t0) if t_first is not None else None,
                    prompt_eval_s=eval_s,
                    generation_s=gen_s,
                    tokens_per_second=(n_gen - 1) / gen_s if n_gen > 1 and gen_s > 0 else None,
                    stop_reason=reason,
                    checkpoint_tokens=ckpt,
                    restored_tokens=self._restored,
                )
                self._restored = 0
                result = GenerationResult(text="".join(shown), token_ids=out_ids, metrics=metrics)
                holder.append(result)
                self.last_result = result

    def _read_prompt(self, ids: list[int], reused: int, cancel: threading.Event,
                     on_progress: ProgressCallback | None, *, already: int = 0) -> int:
        """Evaluate `ids[reused:]`; with checkpoints, stop one token short, checkpoint there
        (a prefix of the next turn's prompt and of a swipe's), then read the last token.
        `already`: tokens this turn evaluated before (progress counts them)."""
        todo = len(ids) - reused
        total = todo + already
        if not self._use_ckpts or todo < 2:
            return self._eval_prompt(ids[reused:], cancel, on_progress, offset=already, total=total)
        done = self._eval_prompt(ids[reused:-1], cancel, on_progress, offset=already, total=total)
        if done < todo - 1:
            return done
        self._checkpoint()
        return done + self._eval_prompt(ids[-1:], cancel, on_progress, offset=already + done,
                                        total=total)

    def _eval_prompt(self, ids: list[int], cancel: threading.Event | None = None,
                     on_progress: ProgressCallback | None = None, *, offset: int = 0,
                     total: int | None = None) -> int:
        """Evaluate the uncached part of the prompt, one batch at a time (at most `_CANCEL_STEP`
        tokens when it can be cancelled) so a cancel stops it between batches; a short one runs
        with the generation threads. Returns tokens evaluated."""
        total = len(ids) if total is None else total
        if on_progress is not None and offset == 0:
            on_progress(0, total)
        llm = self._llm
        n_gen, n_batch = int(llm.n_threads), int(llm.n_threads_batch)
        step = max(1, int(llm.n_batch))
        if cancel is not None:
            step = min(step, _CANCEL_STEP)
        small = len(ids) <= _SMALL_EVAL and n_gen != n_batch
        if small:
            self._lc.llama_set_n_threads(llm.ctx, n_gen, n_gen)
        done = 0
        try:
            while done < len(ids):
                if cancel is not None and cancel.is_set():
                    break
                chunk = ids[done : done + step]
                llm.eval(chunk)
                done += len(chunk)
                if on_progress is not None:
                    on_progress(offset + done, total)
        finally:
            if small:
                self._lc.llama_set_n_threads(llm.ctx, n_gen, n_batch)
        return done

    def _keep_prefix(self, ids: list[int]) -> tuple[int, int]:
        """Trim the cache to its common prefix with `ids` (leaving at least one token to evaluate).

        Returns (tokens kept, of which restored from a checkpoint). When the cache cannot be cut
        there (or checkpoints are forced), roll back to the newest checkpoint that is a prefix.
        """
        llm = self._llm
        keep = min(common_prefix(llm.input_ids[: llm.n_tokens], ids), len(ids) - 1)
        if keep >= llm.n_tokens:
            return keep, 0
        if not self.force_checkpoints and llm._ctx.kv_cache_seq_rm(-1, keep, -1):
            llm.n_tokens = keep
            return keep, 0
        if not self._use_ckpts:
            self._use_ckpts = True  # this model cannot cut its cache: checkpoint from now on
        llm._ctx.kv_cache_clear()
        llm.n_tokens = 0
        for tokens, data in reversed(self._ckpts):
            n = len(tokens)
            if n <= keep and tokens == ids[:n] and self._set_seq_state(data):
                llm.input_ids[:n] = tokens
                llm.n_tokens = n
                return n, n
        return 0, 0

    def _checkpoint(self) -> None:
        """Keep the cache's state as a checkpoint (the newest `max_checkpoints` are kept)."""
        llm = self._llm
        tokens = llm.input_ids[: llm.n_tokens].tolist()
        if not tokens or (self._ckpts and self._ckpts[-1][0] == tokens):
            return
        data = self._seq_state()
        if data is None:
            return
        self._ckpts = [c for c in self._ckpts if c[0] != tokens][-(self.max_checkpoints - 1):]
        self._ckpts.append((tokens, data))

    def _seq_state(self) -> bytes | None:
        """The KV state of sequence 0 as bytes (None if llama.cpp cannot copy it)."""
        lc, llm = self._lc, self._llm
        size = int(lc.llama_state_seq_get_size(llm.ctx, 0))
        buf = (ctypes.c_uint8 * size)()
        got = int(lc.llama_state_seq_get_data(llm.ctx, buf, size, 0))
        return bytes(buf)[:got] if 0 < got <= size else None

    def _set_seq_state(self, data: bytes) -> bool:
        """Load `data` into sequence 0 of an empty cache; False (cache emptied) on failure."""
        buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if int(self._lc.llama_state_seq_set_data(self._llm.ctx, buf, len(data), 0)) == 0:
            self._llm._ctx.kv_cache_clear()
            return False
        return True

    def _shift(self, ids: list[int], cancel: threading.Event | None = None,
               on_progress: ProgressCallback | None = None) -> tuple[int, int, int]:
        """Context shift (approximate): keep the cached runs the prompt repeats after its common
        prefix, moved to their new positions; evaluate the new text between them in place.

        The kept entries were computed with other text before them, so the result differs
        slightly from a full re-evaluation (`bench_shift_fidelity.py` measures it). Returns
        (cached tokens cut, new tokens evaluated and kept, new tokens evaluated).
        """
        llm = self._llm
        if not self.can_shift:
            return 0, 0, 0
        plan = plan_reuse(llm.input_ids[: llm.n_tokens], ids, min_chunk=self.shift_min_kept,
                          insert=self._can_insert)
        if not plan.chunks:
            return 0, 0, 0
        self._move_runs(plan)
        llm.input_ids[: plan.end] = ids[: plan.end]
        llm.n_tokens = plan.end
        total = plan.evaluated(len(ids))
        kept = done = 0
        for a, b in plan.gaps:
            n = self._eval_between(ids[a:b], a, cancel, on_progress, done, total)
            done += n
            if n < b - a:  # cancelled or failed: keep only what precedes this gap
                llm._ctx.kv_cache_seq_rm(0, a, -1)
                llm.n_tokens = a
                break
            kept += n
        return plan.cut, kept, done

    def _move_runs(self, plan: ReusePlan) -> None:
        """Drop every cached cell but the prefix and the plan's runs, then move the runs (those
        moving back in order, then those moving on in reverse, so no two ever overlap)."""
        ctx = self._llm._ctx
        at = plan.prefix
        for c in plan.chunks:
            if c.src > at:
                ctx.kv_cache_seq_rm(0, at, c.src)
            at = c.src + c.length
        ctx.kv_cache_seq_rm(0, at, -1)
        back = [c for c in plan.chunks if c.dst < c.src]
        on = [c for c in reversed(plan.chunks) if c.dst > c.src]
        for c in [*back, *on]:
            ctx.kv_cache_seq_shift(0, c.src, c.src + c.length, c.dst - c.src)

    def _eval_between(self, tokens: list[int], pos: int, cancel: threading.Event | None,
                      on_progress: ProgressCallback | None, offset: int, total: int) -> int:
        """Evaluate `tokens` at positions `pos`.. in front of cached later ones: in the spare
        sequence holding a copy of the prefix (llama.cpp only appends to a sequence), then
        given to sequence 0. Returns tokens evaluated; fewer than all: cancelled or failed, and
        none of them is kept."""
        lc, llm = self._lc, self._llm
        mem = llm._ctx.memory
        step = max(1, int(llm.n_batch) if cancel is None else min(int(llm.n_batch), _CANCEL_STEP))
        if self._gap_batch is None:
            self._gap_batch = lc.llama_batch_init(int(llm.n_batch), 0, 1)
        batch = self._gap_batch
        lc.llama_memory_seq_cp(mem, 0, _SPARE_SEQ, 0, pos)
        done = 0
        try:
            while done < len(tokens):
                if cancel is not None and cancel.is_set():
                    return done
                chunk = tokens[done : done + step]
                for i, tok in enumerate(chunk):
                    batch.token[i], batch.pos[i] = tok, pos + done + i
                    batch.n_seq_id[i], batch.seq_id[i][0], batch.logits[i] = 1, _SPARE_SEQ, False
                batch.n_tokens = len(chunk)
                if lc.llama_decode(llm.ctx, batch) != 0:
                    return done
                done += len(chunk)
                if on_progress is not None:
                    on_progress(offset + done, total)
            lc.llama_memory_seq_cp(mem, _SPARE_SEQ, 0, pos, pos + done)
            return done
        finally:
            lc.llama_memory_seq_rm(mem, _SPARE_SEQ, -1, -1)

    def _sampler(self, s: SamplerSettings, ids: list[int]) -> SamplerChain:
        """llama.cpp's sampler chain for `s`, in its configured order, primed with the prompt."""
        llm = self._llm

        def tokenize(text: str) -> list[int]:
            return list(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

        return build_chain(self._lc, llm._model, s, n_ctx=self.n_ctx, tokenize=tokenize, history=ids)

    def _rewind(self, n: int) -> None:
        """Keep the first `n` cached tokens and re-evaluate the last of them, so the next token
        is sampled again at position n (a banned phrase backs up to where it began)."""
        llm = self._llm
        last = int(llm.input_ids[n - 1])
        llm.n_tokens = n - 1
        llm.eval([last])

    def _piece(self, tok: int) -> bytes:
        """The bytes of one token; control tokens render as their text so stop strings see them."""
        size = 64
        buf = ctypes.create_string_buffer(size)
        n = self._lc.llama_token_to_piece(self._vocab, tok, buf, size, 0, True)
        if n < 0:
            size = -n
            buf = ctypes.create_string_buffer(size)
            n = self._lc.llama_token_to_piece(self._vocab, tok, buf, size, 0, True)
        return buf.raw[: max(n, 0)]

    # -- KV state on disk -----------------------------------------------------------------

    def _expect(self) -> dict[str, Any]:
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.path)
        return {"model": self._fingerprint, "type_k": self._kv_type, "type_v": self._kv_type,
                "flash_attn": self.options.flash_attn}

    def save_state(self, path: str | Path) -> Path:
        """Write the cache (its tokens and KV entries) to `path` atomically."""
        with self._lock:
            llm = self._llm
            tokens = llm.input_ids[: llm.n_tokens].tolist()
            data = self._seq_state() if tokens else b""
            if data is None:
                raise BackendError("llama.cpp could not copy the KV state")
        header = KVStateHeader(n_ctx=self.n_ctx, tokens=tokens, **self._expect())
        return write_state(path, header, data)

    def load_state(self, path: str | Path, prompt: PromptInput | Sequence[int] | None = None) -> int:
        """Restore a saved cache; returns how many tokens it holds, 0 when it fell back.

        Falls back silently (empty cache, normal run next turn) when the file is missing,
        corrupt, from another model or cache type, too long for this context, or shares no
        prefix with `prompt`; `restore_state` says why.
        """
        return self.restore_state(path, prompt)[0]

    def restore_state(self, path: str | Path, prompt: PromptInput | Sequence[int] | None = None
                      ) -> tuple[int, str | None]:
        """Restore a saved cache: (tokens it holds, None), or (0, why it was not restored)."""
        if not Path(path).exists():
            return 0, None  # nothing saved yet: not worth a warning
        try:
            header, data = read_state(path, self._expect())
        except KVStateMismatch as exc:
            return 0, f"KV state not restored: {exc}"
        tokens = header.tokens
        if not tokens:
            return 0, None
        if len(tokens) >= self.n_ctx:
            return 0, (f"KV state not restored: {path}: holds {len(tokens)} tokens, more than "
                       f"this {self.n_ctx}-token context")
        if prompt is not None:
            ids = list(as_prompt(prompt).ids or ())
            if common_prefix(tokens, ids) == 0:
                return 0, f"KV state not restored: {path}: shares nothing with the prompt"
        with self._lock:
            llm = self._llm
            llm._ctx.kv_cache_clear()
            llm.n_tokens = 0
            if not self._set_seq_state(data):
                return 0, f"KV state not restored: {path}: llama.cpp refused its data"
            llm.input_ids[: len(tokens)] = tokens
            llm.n_tokens = len(tokens)
            self._restored = len(tokens)
            self._ckpts = []
        return len(tokens), None

    def reset(self) -> None:
        """Empty the KV cache; the next turn evaluates its whole prompt."""
        with self._lock:
            self._llm._ctx.kv_cache_clear()
            self._llm.n_tokens = 0
            self._ckpts = []

    def close(self) -> None:
        """Free the model and context."""
        with self._lock:
            if self._gap_batch is not None:
                self._lc.llama_batch_free(self._gap_batch)
                self._gap_batch = None
            self._llm.close()
