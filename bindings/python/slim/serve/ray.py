"""slim on Ray Serve: one slim.Engine per replica behind an OpenAI-compatible
HTTP route (``pip install 'slim[ray]'``).

    import ray
    from ray import serve
    from slim.serve.ray import deployment

    ray.init()
    serve.start(http_options={"host": "0.0.0.0", "port": 8000})
    serve.run(deployment("models/gemma-3-270m-q4_k_m.gguf", num_replicas=2,
                         num_cpus=4, engine_params={"n_threads": 4}))

or from the command line: ``serve run slim.serve.ray:app_builder
model=models/gemma-3-270m-q4_k_m.gguf num_replicas=2``.

Routes: ``POST /v1/completions``, ``POST /v1/chat/completions`` (the bodies
of OpenAI's API; ``stream: true`` answers with server-sent events) and
``GET /v1/models``.  Every response names the replica that served it in the
``x-slim-replica`` header.  Serve's proxy spreads requests over the replicas
(power of two choices on their queue lengths); each replica batches what it
gets in its engine.  Errors are OpenAI's error object with status 400 (a bad
request: slim's message) or 500."""

import asyncio
import concurrent.futures
import json
import os
from typing import Any, Callable, Dict, Iterator, Optional

try:
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, StreamingResponse
    from ray import serve
    from starlette.requests import Request as HTTPRequest
except ImportError as e:  # pragma: no cover - depends on the extra
    raise ImportError(
        "slim.serve.ray needs Ray Serve: pip install 'slim[ray]' (or 'ray[serve]')"
    ) from e

import slim

# No `from __future__ import annotations` here: FastAPI reads the route
# methods' annotations (an HTTPRequest parameter) at run time.

__all__ = ["SlimServer", "deployment", "app_builder"]

app = FastAPI(title="slim")

# OpenAI request fields that need no counterpart here (one choice only).
_IGNORED = {"user", "stream_options", "service_tier", "store", "metadata", "parallel_tool_calls"}


def _replica_name() -> str:
    try:
        ctx = serve.get_replica_context()
        rid = getattr(ctx, "replica_id", None)
        return str(getattr(rid, "unique_id", None) or getattr(ctx, "replica_tag", None) or rid)
    except Exception:  # outside a replica (tests calling the class directly)
        return f"pid-{os.getpid()}"


def _error(status: int, message: str, code: Any = None) -> JSONResponse:
    kind = "invalid_request_error" if status == 400 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status)


def _sse(chunks: Iterator[Dict[str, Any]]) -> Iterator[str]:
    """Server-sent events as OpenAI streams them (run on Starlette's threads).
    Defined before the class: in the replica, a module global defined after
    the class was not found (NameError, Ray 2.60)."""
    try:
        for c in chunks:
            yield f"data: {json.dumps(c)}\n\n"
    except slim.SlimError as e:
        yield f"data: {json.dumps({'error': {'message': str(e), 'code': e.status}})}\n\n"
    yield "data: [DONE]\n\n"


@serve.deployment
@serve.ingress(app)
class SlimServer:
    """One replica: a slim.Engine over ``model`` (a GGUF file or Hugging Face
    directory every node can read), ``engine_params`` for slim.Engine
    (n_threads, kv_tokens, n_ctx, ...), ``model_params`` for slim.Model
    (weight_type, backend, use_mmap).  Blocking helper calls run on a thread
    pool of ``max_concurrency`` threads; the engine batches them."""

    def __init__(
        self,
        model: str,
        engine_params: Optional[Dict[str, Any]] = None,
        model_params: Optional[Dict[str, Any]] = None,
        model_name: Optional[str] = None,
        max_concurrency: int = 256,
    ) -> None:
        m = slim.Model(model, n_ctx=32, n_threads=1, **(model_params or {}))
        self.engine = slim.Engine(m, **(engine_params or {}))
        self.model_name = model_name or os.path.basename(os.path.normpath(model))
        self.replica = _replica_name()
        self.pool = concurrent.futures.ThreadPoolExecutor(max_concurrency, "slim-serve")

    def _headers(self) -> Dict[str, str]:
        return {"x-slim-replica": self.replica}

    async def _answer(self, request: HTTPRequest, fn: Callable[..., Any]) -> Any:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the body is not JSON")
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object")
        for k in _IGNORED:
            body.pop(k, None)
        if body.pop("n", 1) not in (1, None):
            return _error(400, "n: only one choice per request is supported")
        if "max_completion_tokens" in body:
            body["max_tokens"] = body.pop("max_completion_tokens")
        body["model"] = body.get("model") or self.model_name
        stream = bool(body.get("stream"))
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self.pool, lambda: fn(**body))
        except slim.SlimError as e:
            return _error(400, str(e), e.status)
        except (TypeError, ValueError) as e:
            return _error(400, str(e))
        except Exception as e:  # an internal failure: the client gets a message
            return _error(500, f"{type(e).__name__}: {e}")
        if not stream:
            return JSONResponse(result, headers=self._headers())
        return StreamingResponse(_sse(result), media_type="text/event-stream", headers=self._headers())

    @app.post("/v1/completions")
    async def completions(self, request: HTTPRequest) -> Any:
        """OpenAI's completions: slim.Engine.create_completion."""
        return await self._answer(request, self.engine.create_completion)

    @app.post("/v1/chat/completions")
    async def chat_completions(self, request: HTTPRequest) -> Any:
        """OpenAI's chat completions: slim.Engine.create_chat_completion."""
        return await self._answer(request, self.engine.create_chat_completion)

    @app.get("/v1/models")
    async def models(self) -> Any:
        """The one model this deployment serves."""
        data = [{"id": self.model_name, "object": "model", "created": 0, "owned_by": "slim"}]
        return JSONResponse({"object": "list", "data": data}, headers=self._headers())


def deployment(
    model: str,
    *,
    num_replicas: int = 1,
    num_cpus: float = 1,
    num_gpus: float = 0,
    engine_params: Optional[Dict[str, Any]] = None,
    model_params: Optional[Dict[str, Any]] = None,
    model_name: Optional[str] = None,
    name: str = "slim",
    max_ongoing_requests: int = 256,
) -> Any:
    """A Serve application: ``num_replicas`` replicas of SlimServer, each an
    actor reserving ``num_cpus`` / ``num_gpus`` (give the engine as many
    threads: engine_params={"n_threads": ...}).  Pass it to serve.run()."""
    return SlimServer.options(  # type: ignore[attr-defined]
        name=name,
        num_replicas=num_replicas,
        ray_actor_options={"num_cpus": num_cpus, "num_gpus": num_gpus},
        max_ongoing_requests=max_ongoing_requests,
    ).bind(model, engine_params, model_params, model_name)


def app_builder(args: Dict[str, str]) -> Any:
    """For ``serve run slim.serve.ray:app_builder model=PATH [num_replicas=N]
    [num_cpus=C] [n_threads=T] [kv_tokens=K]``: deployment() from strings."""
    a = dict(args)
    model = a.pop("model")
    engine: Dict[str, Any] = {k: int(a.pop(k)) for k in ("n_threads", "kv_tokens", "n_ctx") if k in a}
    kw: Dict[str, Any] = {}
    if "num_replicas" in a:
        kw["num_replicas"] = int(a.pop("num_replicas"))
    for k in ("num_cpus", "num_gpus"):
        if k in a:
            kw[k] = float(a.pop(k))
    if a:
        raise ValueError(f"unknown arguments {sorted(a)}")
    return deployment(model, engine_params=engine, **kw)
