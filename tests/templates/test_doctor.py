"""`rp-context template check`: one template written for each bug of the catalogue, its finding
asserted; the two shipped models; the exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rp_context.cli import main
from rp_context.doctor import TemplateReport, check_template
from rp_context.templates import JinjaTemplate

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _status(report: TemplateReport, check: str) -> tuple[str, str]:
    (f,) = [f for f in report.findings if f.check == check]
    return f.status, f.message


def _check(source: str, tok: object = None, **kw: str) -> TemplateReport:
    kw.setdefault("eos_token", "<|im_end|>")
    return check_template(JinjaTemplate(source, name="t.jinja", **kw), tok)


def test_clean_chatml_template() -> None:
    report = _check(CHATML)
    assert report.uses == "family chatml" and not report.problems
    for check in ("generation-prompt", "system-role", "prefix-stable", "content-kept", "thinking", "date"):
        assert _status(report, check)[0] == "ok", check


def test_no_generation_prompt() -> None:
    status, message = _status(_check(CHATML.replace("{% if add_generation_prompt %}", "{% if false %}")),
                              "generation-prompt")
    assert status == "problem" and "has to open its own turn" in message


def test_system_role_refused_and_dropped() -> None:
    refuses = ("{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}"
               "{% endif %}" + CHATML)
    assert _status(_check(refuses), "system-role")[0] == "note"
    drops = CHATML.replace("{% for m in messages %}", "{% for m in messages if m.role != 'system' %}")
    report = _check(drops)
    assert _status(report, "system-role")[0] == "problem"
    status, message = _status(report, "content-kept")
    assert status == "problem" and "drops message 0 (system" in message


def test_system_merged_into_the_user_turn(templates_ref: Path) -> None:
    report = check_template(JinjaTemplate.from_file(templates_ref / "gemma-3-it.jinja", bos_token="<bos>",
                                                    eos_token="<eos>"))
    assert _status(report, "system-role")[0] == "note" and report.uses == "family gemma3"


def test_system_prompt_in_the_last_user_turn_is_not_prefix_stable(templates_ref: Path) -> None:
    nemo = JinjaTemplate.from_file(templates_ref / "mistral-v3-tekken-nemo-2407.jinja", bos_token="<s>",
                                   eos_token="</s>")
    report = check_template(nemo)
    status, message = _status(report, "prefix-stable")
    assert status == "problem" and "re-evaluates" in message
    assert report.uses == "the model's own template, rendered as Jinja"


def test_content_dropped() -> None:
    drops = CHATML.replace("{{ m.content }}", "{% if m.role != 'assistant' %}{{ m.content }}{% endif %}")
    status, message = _status(_check(drops), "content-kept")
    assert status == "problem" and "drops message 2 (assistant" in message


def test_thinking_on_by_default() -> None:
    think = CHATML.replace("<|im_start|>assistant\n{% endif %}", "<|im_start|>assistant\n<think>\n{% endif %}")
    status, message = _status(_check(think), "thinking")
    assert status == "note" and "on by default" in message


def test_date_in_the_template() -> None:
    dated = "<|im_start|>system\nToday: {{ strftime_now('%d %b %Y') }}<|im_end|>\n" + CHATML
    assert _status(_check(dated), "date")[0] == "note"


def test_cli_exit_codes_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.jinja"
    good.write_text(CHATML, encoding="utf-8")
    bad = tmp_path / "bad.jinja"
    bad.write_text(CHATML.replace("{{ m.content }}", "{% if m.role != 'assistant' %}{{ m.content }}{% endif %}"),
                   encoding="utf-8")
    assert main(["template", "check", str(good)]) == 0
    assert "clean" in capsys.readouterr().out
    assert main(["template", "check", str(bad), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["problems"] >= 1 and any(f["check"] == "content-kept" and f["status"] == "problem"
                                         for f in data["findings"])
    assert main(["template", "check", str(tmp_path / "missing.jinja")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.jinja" in err


# --- with the models' vocabularies ----------------------------------------------------------


@pytest.mark.model
def test_default_model_is_clean(smollm_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["template", "check"]) == 0
    out = capsys.readouterr().out
    assert "clean" in out and "problem" not in out
    assert "role markers read from" in out  # ChatML plus SmolLM2's default system prompt
    for check in ("double-bos", "end-of-turn", "special-tokens", "generation-prompt", "prefix-stable"):
        assert f"ok        {check}:" in out, check


@pytest.mark.model
def test_base_model_without_template(gemma_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["template", "check", str(gemma_path), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["uses"] == "a guess: gemma"
    assert data["findings"][0]["check"] == "template" and "no chat template" in data["findings"][0]["message"]


@pytest.mark.model
def test_double_bos(gemma_tokenizer) -> None:
    tmpl = "{{ bos_token }}{% for m in messages %}<start_of_turn>user\n{{ m.content }}<end_of_turn>\n{% endfor %}"
    report = check_template(JinjaTemplate(tmpl, bos_token="<bos>", eos_token="<eos>"), gemma_tokenizer)
    status, message = _status(report, "double-bos")
    assert status == "problem" and "'<bos>'" in message
    no_bos = check_template(JinjaTemplate(tmpl.replace("{{ bos_token }}", ""), bos_token="<bos>"), gemma_tokenizer)
    assert _status(no_bos, "double-bos")[0] == "ok"


@pytest.mark.model
def test_end_of_turn_missing_or_wrong(smollm_tokenizer) -> None:
    assert _status(_check(CHATML, smollm_tokenizer), "end-of-turn")[0] == "ok"
    missing = CHATML.replace("<|im_end|>\n{% endfor %}", "\n{% endfor %}")
    assert _status(_check(missing, smollm_tokenizer), "end-of-turn")[0] == "problem"
    wrong = CHATML.replace("<|im_end|>\n{% endfor %}", "</s>\n{% endfor %}")
    status, message = _status(_check(wrong, smollm_tokenizer), "end-of-turn")
    assert status == "problem" and "</s>" in message and "run on" in message


@pytest.mark.model
def test_special_tokens_the_vocabulary_lacks(smollm_tokenizer) -> None:
    llama3ish = CHATML.replace("<|im_end|>", "<|eot_id|>")
    status, message = _status(_check(llama3ish, smollm_tokenizer), "special-tokens")
    assert status == "problem" and "<|eot_id|>" in message and "<|im_start|>" not in message
    assert _status(_check(CHATML, smollm_tokenizer), "special-tokens")[0] == "ok"
