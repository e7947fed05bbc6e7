"""Fine-tuned models on a shared model server: one base model, every business's adapter, one
picked per request. The tuned paths use it when the `model_server_url` setting is set.

- llama.cpp's `llama-server`, started with one `--lora-scaled FILE:0` per adapter (the GGUF LoRA
  that `kbchat tune` writes, off unless asked for), lists them at GET /lora-adapters as
  `[{"id": 0, "path": FILE, "scale": 0.0}, ...]`; a request applies the ones it names, as
  `"lora": [{"id": 0, "scale": 1.0}, {"id": 1, "scale": 0.0}]`. The ids follow the server's command
  line, which may change when it restarts, so kbchat looks its adapter up on every request.
- vLLM, started with `--enable-lora --lora-modules NAME=FOLDER`, lists each adapter as a model (id
  NAME, root FOLDER); a request picks one by sending NAME as its model.

`kbchat model-server --kb A --kb B` starts llama-server with the adapters of A and B (`plan`).

    >>> engine = served_engine(adapters.get(kb_dir), settings)        # doctest: +SKIP
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from kb.errors import BadInput, ModelMissing, NotFound
from kb.location import describe
from rag.remote import KEY_ENV, ModelServerError, ServerEngine
from tuning import adapters


def kb_of(info: adapters.AdapterInfo) -> Path:
    """The knowledge base folder an adapter belongs to (it lives in KB/adapters/ID)."""
    return Path(info.path).parents[1]


def served_name(info: adapters.AdapterInfo) -> str:
    """The name to register an adapter under on a server that names adapters (vLLM): its knowledge
    base folder and version, like 'pottery-v2-20261123-140212'."""
    return f"{kb_of(info).resolve().name}-{info.id}"


def _same_path(listed: str, mine: Path, tail: int) -> bool:
    """Whether a path a server lists is `mine`: the same file here or, for a server that sees the
    knowledge base elsewhere (another machine, a container), the same last `tail` parts."""
    listed_path = Path(listed)
    if listed_path.is_absolute() and listed_path.exists():
        return listed_path.resolve() == mine.resolve()
    return listed_path.parts[-tail:] == mine.parts[-tail:]


def named_model(models: list[dict], info: adapters.AdapterInfo) -> str | None:
    """The model name under which a server that names adapters (vLLM) lists this one: registered as
    served_name(info), or with the adapter's folder as its root."""
    for m in models:
        if m.get("id") == served_name(info) or (m.get("root") and _same_path(str(m["root"]), Path(info.path), 1)):
            return str(m["id"])
    return None


def lora_id(loras: list[dict], info: adapters.AdapterInfo) -> int | None:
    """The id llama-server gives this adapter's GGUF file in its GET /lora-adapters list."""
    for lora in loras:
        if _same_path(str(lora.get("path", "")), Path(info.path) / adapters.GGUF, 2):
            return lora["id"]
    return None


class _Server:
    """The few GET requests kbchat makes to a model server besides chat completions."""

    def __init__(self, url: str, timeout_s: float):
        self.url = url.rstrip("/")
        self.base = self.url.removesuffix("/v1")  # llama-server's own endpoints sit beside /v1
        self.timeout_s = timeout_s
        key = os.environ.get(KEY_ENV)
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}

    def models(self) -> list[dict]:
        listed = self._get(self.url + "/models")
        return listed.get("data", []) if isinstance(listed, dict) else []

    def loras(self) -> list[dict]:
        """llama-server's LoRA adapters; none for a server without that endpoint."""
        listed = self._get(self.base + "/lora-adapters")
        return listed if isinstance(listed, list) else []

    def _get(self, url: str):
        """The JSON at `url`, or None when the server has no such endpoint."""
        import httpx

        try:
            r = httpx.get(url, headers=self.headers, timeout=self.timeout_s)
        except httpx.TransportError:
            raise ModelServerError(f"kbchat cannot reach the model server at {self.url}. Check that the server runs "
                                   "and that the 'model_server_url' setting is its address (usually ending in /v1).") from None
        if r.status_code in (401, 403):
            raise ModelServerError(f"The model server at {self.url} refused kbchat's key. Set the right key in ${KEY_ENV}.")
        if r.status_code != 200:
            return None
        try:
            return r.json()
        except ValueError:
            return None


def not_served(info: adapters.AdapterInfo, url: str) -> ModelServerError:
    kb = kb_of(info)
    return ModelServerError(
        f"The model server at {url} does not have {describe(kb)}'s fine-tuned model ({info.id}). Start the server with every "
        f"business's adapter: kbchat model-server --kb {shlex.quote(str(kb))} (one --kb per business). By hand: "
        f"llama-server --lora-scaled {shlex.quote(str(Path(info.path) / adapters.GGUF) + ':0')} --lora-init-without-apply, or vLLM "
        f"--enable-lora --lora-modules {served_name(info)}={shlex.quote(info.path)}.")


class AdapterServerEngine(ServerEngine):
    """A ServerEngine that asks llama-server for one of its LoRA adapters, found again on every
    request (its id may change when the server restarts with other adapters)."""

    def __init__(self, server: _Server, info: adapters.AdapterInfo, model: str, name: str):
        super().__init__(server.url, model, timeout_s=server.timeout_s, name=name)
        self.server, self.info = server, info

    def request_extra(self) -> dict:
        loras = self.server.loras()
        mine = lora_id(loras, self.info)
        if mine is None:
            raise not_served(self.info, self.url)
        # every adapter named, the others at 0: a server started with plain --lora FILE applies them all
        return {"lora": [{"id": a["id"], "scale": 1.0 if a["id"] == mine else 0.0} for a in loras]}


def served_engine(info: adapters.AdapterInfo, settings) -> ServerEngine:
    """The engine that answers with this adapter on the settings' model server; a plain message
    saying how to start the server with it when the server does not have it."""
    server = _Server(settings.models.model_server_url, settings.models.model_server_timeout_s)
    name = named_model(server.models(), info)
    if name is not None:
        return ServerEngine(server.url, name, timeout_s=server.timeout_s, name=f"{name} (adapter {info.id})")
    if lora_id(server.loras(), info) is not None:
        return AdapterServerEngine(server, info, settings.models.model_server_model,
                                   f"{settings.models.model_server_model} + adapter {info.id}")
    raise not_served(info, server.url)


# -- starting llama-server with every business's adapter --------------------------------------------
def llama_server() -> Path:
    """llama.cpp's server binary: the one `make setup` builds into the environment, else on PATH."""
    here = Path(sys.executable).parent / "llama-server"
    found = here if here.is_file() else shutil.which("llama-server")
    if not found:
        raise ModelMissing("llama.cpp's llama-server is not installed. Build it with: make llama (once, about 7 "
                           "minutes on 2 cores; it is kept in ~/.cache/kbchat/wheels, so a new .venv takes seconds).")
    return Path(found)


@dataclass
class Plan:
    command: list[str]
    served: list[tuple[Path, str]]  # (knowledge base, adapter id)
    url: str  # what goes in each knowledge base's model_server_url
    model: str  # ... and its model_server_model
    local_url: str  # where this machine reaches it (its readiness is checked there)

    def shell(self) -> str:
        return shlex.join(self.command)


def plan(kb_dirs: list[Path], port: int = 8080, host: str = "127.0.0.1") -> Plan:
    """The llama-server command line that serves each knowledge base's active adapter over their
    shared base model, on `host` (loopback by default). Writes any adapter's GGUF file still missing."""
    from kb.models import generator_path
    from kb.settings import Settings
    from rag.generate import llama_file

    if not kb_dirs:
        raise BadInput("Name at least one knowledge base: kbchat model-server --kb DIR [--kb DIR]...")
    base, loras, served, context = None, [], [], 0
    for kb in kb_dirs:
        if not Path(kb).is_dir():
            raise BadInput(f"There is no knowledge base at {describe(kb)}.")
        settings = Settings.load(kb)
        try:
            info = adapters.get(kb)
        except NotFound:
            raise NotFound(f"{describe(kb)} has no fine-tuned model yet: train one first with: kbchat --kb "
                                    f"{shlex.quote(str(kb))} tune") from None
        source = generator_path(settings.models.generator)
        if source.suffix != ".gguf":
            raise BadInput(f"{describe(kb)} writes answers with {source}, a model folder; llama-server runs .gguf models. "
                           "Set 'generator_path' to a .gguf file, or serve it with vLLM (see the README).")
        adapters.check_trained_on(info, source)
        if base is not None and source != base:
            raise BadInput(f"One server runs one base model, but {describe(kb)} uses {source.name} and {describe(served[0][0])} uses "
                           f"{base.name}. Start one server per model (or switch the model_profile setting).")
        base = source
        lora = adapters.gguf_lora(info, source).resolve()
        if "," in str(lora) or ":" in str(lora):  # llama-server splits its --lora-scaled list at both
            raise BadInput(f"llama-server cannot load an adapter from a path with ',' or ':' in it: {lora}. "
                           "Move or rename the knowledge base folder.")
        loras.append(lora)
        served.append((Path(kb), info.id))
        context = max(context, settings.models.context_tokens)
    model = base.stem.split(".")[0].lower()
    # Each adapter at scale 0, so a request that names none (the rag and base paths) gets the plain
    # model: llama-server 0.5.0-dev (the version kbchat builds) leaves adapters given by --lora at 1.0
    # even with --lora-init-without-apply, and then applies all of them to such requests
    # (ggml-org/llama.cpp#28674). The tuned paths name every adapter's scale on each request.
    command = [str(llama_server()), "--model", str(llama_file(base).resolve()), "--alias", model,
               *(arg for lora in loras for arg in ("--lora-scaled", f"{lora}:0")), "--lora-init-without-apply",
               "--host", host, "--port", str(port), "--ctx-size", str(context)]
    everywhere = host in ("0.0.0.0", "::")
    shown = socket.gethostname() if everywhere else f"[{host}]" if ":" in host else host
    local = "127.0.0.1" if everywhere else shown
    return Plan(command, served, f"http://{shown}:{port}/v1", model, f"http://{local}:{port}/v1")
