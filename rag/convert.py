"""llama.cpp's own converters, run as they ship: a Hugging Face model folder to a GGUF file, and a
peft LoRA adapter to a GGUF LoRA file that llama.cpp applies over the base GGUF.

The scripts come from the llama-cpp-python source that `make setup` builds llama.cpp from (its
`vendor/llama.cpp`, extracted into `.venv/share/kbchat/llama.cpp` with the matching `gguf-py`), so
the GGUF they write is the format the installed llama.cpp reads.

    >>> hf_to_gguf(Path("smollm2-folder"), Path("smollm2-f16.gguf"))    # doctest: +SKIP
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kb.errors import KbchatError, ModelMissing

TOOLS_ENV = "KBCHAT_LLAMA_TOOLS"  # a folder holding convert_hf_to_gguf.py, convert_lora_to_gguf.py, gguf-py/


def tools_dir() -> Path:
    folder = Path(os.environ.get(TOOLS_ENV) or Path(sys.prefix) / "share" / "kbchat" / "llama.cpp")
    if not (folder / "convert_hf_to_gguf.py").is_file():
        raise ModelMissing(f"llama.cpp's model converters are not installed (looked in {folder}). Run `make setup`, "
                           f"or set {TOOLS_ENV} to the vendor/llama.cpp folder of the llama-cpp-python source.")
    return folder


def hf_to_gguf(folder: Path, out: Path, outtype: str = "f16") -> Path:
    """`out`, converted from the model folder once (later calls return it at once)."""
    if not out.exists():
        _run("convert_hf_to_gguf.py", [str(folder), "--outtype", outtype], out)
    return out


def lora_to_gguf(adapter: Path, base_folder: Path, out: Path) -> Path:
    """A peft adapter folder as a GGUF LoRA (float32, as trained) for the base model in `base_folder`."""
    if not out.exists():
        _run("convert_lora_to_gguf.py", [str(adapter), "--base", str(base_folder), "--outtype", "f32"], out)
    return out


def _run(script: str, args: list[str], out: Path) -> None:
    """Run a converter into a temporary file and rename it into place: a crash or a kill never
    leaves a half-written model that looks finished."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("NO_LOCAL_GGUF", None)  # the script must use its own gguf-py, the one it was written for
    try:
        done = subprocess.run([sys.executable, str(tools_dir() / script), *args, "--outfile", str(tmp)],
                              capture_output=True, text=True, env=env)
        if done.returncode != 0 or not tmp.is_file():
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
            raise KbchatError(f"llama.cpp's {script} could not convert {args[0]} to GGUF:\n{tail}")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
