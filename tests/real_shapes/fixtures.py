"""Read the real-format fact files of this folder (each names its source URL and retrieval date)."""

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load_facts(name: str) -> dict:
    facts = json.loads((HERE / name).read_text(encoding="utf-8"))
    assert facts.get("source") or all(m.get("source") for m in facts.get("models", {}).values()), name
    assert facts.get("retrieved"), name
    return facts
