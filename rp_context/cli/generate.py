"""`rp-context generate`: one headless turn through the whole pipeline, streamed to stdout.

Cards, persona, chat file, preset bundle, budget and backend, as the app uses them. With
`--chat FILE` the user's message and the reply are appended to that chat atomically (a new
file starts from the card's greeting).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..session import ChatSession


def register(sub: Any) -> None:
    gen = sub.add_parser("generate", help="run one turn headless and stream the reply to stdout")
    gen.add_argument("--card", action="append", default=[], help="character card (repeat for a group; default: the sample card)")
    gen.add_argument("--roster", help="group roster file")
    gen.add_argument("--persona", help="persona file")
    gen.add_argument("--chat", help="chat file (SillyTavern JSONL) to continue and append to; "
                     "'latest': the cast's latest chat in the app's chat folder (a new one there if none)")
    gen.add_argument("--message", "-m", help="what you say (omit to let the character go on)")
    gen.add_argument("--speaker", help="who replies (default: the roster's pick or the card)")
    gen.add_argument("--preset", help="bundle name, family name, preset file, FILE.jinja or gguf:MODEL (gguf: alone: --model's own template; default: default)")
    gen.add_argument("--budget", help="budget policy preset (default: the bundle's)")
    gen.add_argument(
        "--sampler",
        help="sampler preset name or file, YAML or SillyTavern JSON (default: the bundle's)",
    )
    gen.add_argument(
        "--ban",
        action="append",
        default=[],
        metavar="PHRASE",
        help="a phrase the reply must never contain (repeatable; adds to the preset's)",
    )
    gen.add_argument("--model", help="GGUF model (default: $RP_CONTEXT_MODEL or SmolLM2-135M)")
    gen.add_argument("--server", help="OpenAI-compatible server URL instead of the in-process model")
    gen.add_argument("--summary-server", metavar="URL",
                     help="OpenAI-compatible server URL that writes the memory's summaries "
                          "(default: the chat's own model)")
    gen.add_argument("--context", type=int, default=4096, help="context window in tokens")
    gen.add_argument("--reserve", type=int, default=None, help="tokens kept for the reply (default: max tokens)")
    gen.add_argument("--max-tokens", type=int, default=None, help="reply length limit (default: the sampler preset's)")
    gen.add_argument("--temperature", type=float, default=None)
    gen.add_argument("--seed", type=int, default=None, help="sampling seed for repeatable replies")
    gen.add_argument("--n-gpu-layers", type=int, default=0, help="layers to offload (-1: all)")
    gen.add_argument("--user", default=None, help="your name when there is no persona (default: User)")
    gen.add_argument(
        "--think",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="thinking on (--think) or off (--no-think) for this chat, kept in the chat file "
        "(default: the chat's setting, else the preset's)",
    )
    gen.add_argument("--show-reasoning", action="store_true",
                     help="stream the model's reasoning to stderr as it thinks (stdout has the reply)")
    gen.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object with the reply, the turn's metrics and the budget report",
    )
    gen.add_argument(
        "--kv-state",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="restore the chat's saved KV cache and save it after the reply, so the next run "
        "reads only what is new (default: on; beside the chat in .kvstate/, or the server's slot file)",
    )
    gen.add_argument("--kv-state-limit", type=int, default=None, metavar="MB",
                     help="size limit of the .kvstate folder; oldest states go first (default: 4096)")
    gen.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show prompt-reading progress on stderr (default: when stderr is a terminal)",
    )
    gen.set_defaults(func=_generate)


def _generate(args: argparse.Namespace) -> int:
    from ..paths import default_card_path
    from ..session import ChatSession
    from ._options import chat_arg, session_options

    cards = args.card or ([] if args.roster else [str(default_card_path())])
    chat = chat_arg(args.chat, cards, args.roster, must_exist=False)
    session = ChatSession.open(cards=cards, roster=args.roster, persona=args.persona,
                               chat_path=chat, options=session_options(args))
    for w in session.warnings:
        print(f"warning: {w}", file=sys.stderr)
    shown_warnings = len(session.warnings)
    if args.progress if args.progress is not None else sys.stderr.isatty():
        session.on_progress = _ProgressLine(sys.stderr)
    if args.user and session.cast.persona is None and session.chat.header is not None:
        session.chat.header.user_name = args.user
    _tune_sampler(args, session)
    if args.message:  # fitted before it is saved: a refusal writes nothing
        session.send(args.message, check=True, speaker=args.speaker)
    try:
        return _stream(args, session, shown_warnings)
    except (Exception, KeyboardInterrupt):
        if args.message and session.chat_path is not None:
            print(f"note: your message is saved in {session.chat_path}; the reply failed", file=sys.stderr)
        raise


def _tune_sampler(args: argparse.Namespace, session: ChatSession) -> None:
    """This run's own sampler changes (not options of the chat): banned phrases added to the
    preset's, temperature and seed."""
    sampler = session.setup.sampler
    if args.ban:
        sampler = sampler.model_copy(update={"banned_strings": [*sampler.banned_strings, *args.ban]})
    overrides = {"temperature": args.temperature, "seed": args.seed}
    session.setup.sampler = sampler.model_copy(
        update={k: v for k, v in overrides.items() if v is not None})


def _stream(args: argparse.Namespace, session: ChatSession, shown_warnings: int = 0) -> int:
    import warnings

    with warnings.catch_warnings():
        # a sampler setting the server cannot apply: one `warning:` line each, printed after
        warnings.filterwarnings("ignore", message=".*does not apply the sampler setting")
        code = _stream_turn(args, session)
    for w in getattr(session.backend, "warnings", None) or []:
        print(f"warning: {w}", file=sys.stderr)
    for w in session.warnings[shown_warnings:]:  # e.g. the KV state could not be saved
        print(f"warning: {w}", file=sys.stderr)
    return code


class _ProgressLine:
    """`reading prompt N/M tokens` on stderr while the backend reads a prompt: one line updated
    in place on a terminal, a line per update otherwise."""

    def __init__(self, err: Any) -> None:
        self.err = err
        self.tty = err.isatty()

    def __call__(self, processed: int, total: int) -> None:
        if total <= 0:
            return
        line = f"reading prompt {processed:,}/{total:,} tokens ({100 * processed // total}%)"
        if self.tty:
            end = "\r\033[K" if processed >= total else ""
            self.err.write(f"\r\033[K{line}{end}")
        else:
            self.err.write(line + "\n")
        self.err.flush()


def _stream_turn(args: argparse.Namespace, session: ChatSession) -> int:
    if args.think is not None:
        session.set_thinking(args.think)
    turn = session.reply(args.speaker)
    out = sys.stdout
    if args.json:
        for _ in turn:
            pass
        report = turn.fitted.report
        payload = {
            "speaker": turn.speaker,
            "text": turn.text,
            "reasoning": turn.reasoning.strip(),
            "reasoning_duration": turn.reasoning_duration,
            "metrics": turn.metrics.model_dump() if turn.metrics is not None else None,
            "prompt": {
                "tokens": report.tokens,
                "tokenizer": report.tokenizer,
                "sections": report.sections,
                "reductions": report.reductions,
                "dropped": report.dropped,
                "reused_prefix": report.reused_prefix,
            },
            "chat": str(session.chat_path) if session.chat_path else None,
            "kv_state": {"restored_tokens": session.restored_tokens,
                         "restore_s": round(session.restore_s, 4)},
        }
        out.write(json.dumps(payload, ensure_ascii=False) + "\n")
        return 0
    for delta in turn.deltas():
        if delta.reasoning and args.show_reasoning:
            sys.stderr.write(delta.reasoning)
            sys.stderr.flush()
        if delta.text:
            if args.show_reasoning and turn.reasoning and turn.text == delta.text:
                sys.stderr.write("\n")  # the reasoning ended
            out.write(delta.text)
            out.flush()
    out.write("\n")
    return 0
