"""The same model as the local embedder, served by Triton and reached over gRPC.

Sequences are tokenised here, with RiNALMo's alphabet, sorted into batches of similar length and
padded to a few bucket lengths (Triton's dynamic batcher only merges requests of one shape);
several batches are in flight at once so the server can batch them with other clients'.
UNAVAILABLE answers (server restarting, connection refused) are retried with exponential
back-off; past the retries, or after ``timeout_s`` on one request, an
:class:`~rinalmo_search.errors.InferenceError` names the URL and the model.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
from tqdm import tqdm

from rinalmo_search.errors import ConfigError, InferenceError

from ..alphabet import batch_encode, bucket_length, length_batches
from ..base import Embedder, ModelInfo
from .repository import INFO_KEYS

log = logging.getLogger(__name__)

T = TypeVar("T")

#: gRPC status codes worth retrying: the server is (re)starting or momentarily overloaded.
RETRYABLE = ("StatusCode.UNAVAILABLE", "StatusCode.RESOURCE_EXHAUSTED")


class TritonEmbedder(Embedder):
    """Embed sequences with a model served by Triton (``model_repository/``) over gRPC.

    Arguments:
        url: gRPC endpoint ``host:port`` (e.g. ``127.0.0.1:8001``).
        model: Triton model name.
        timeout_s: deadline of each request (and of each health check).
        batch_size: most sequences per request (capped by the model's ``max_batch_size``).
        max_tokens: most padded tokens per request (``rows × length``).
        max_in_flight: requests sent concurrently by one :meth:`embed` call.
        retries: how many times a request that found the server UNAVAILABLE is retried.
        backoff_s: first retry delay; doubled at each retry, up to ``max_backoff_s``.
        max_backoff_s: longest delay between two retries.
        bucket_step: padded lengths are multiples of this many tokens.
        progress: show a progress bar over sequences (None: only on a terminal).

    Raises:
        InferenceError: the server is unreachable, not ready, or does not serve ``model``.
        ConfigError: the served model's configuration lacks the embedding parameters.
    """

    def __init__(
        self,
        url: str,
        *,
        model: str = "rinalmo_search",
        timeout_s: float = 30.0,
        batch_size: int = 32,
        max_tokens: int = 32 * 1024,
        max_in_flight: int = 4,
        retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        bucket_step: int = 32,
        progress: bool | None = None,
    ) -> None:
        import tritonclient.grpc as grpcclient

        for label, value in (
            ("timeout_s", timeout_s),
            ("batch_size", batch_size),
            ("max_tokens", max_tokens),
            ("max_in_flight", max_in_flight),
            ("bucket_step", bucket_step),
        ):
            if value <= 0:
                raise ConfigError(f"Invalid {label!r} value: {value} (expected a positive number)")
        if retries < 0 or backoff_s < 0 or max_backoff_s < backoff_s:
            raise ConfigError(
                f"Invalid retry settings: retries={retries}, backoff_s={backoff_s}, "
                f"max_backoff_s={max_backoff_s} (expected non-negative values, "
                "max_backoff_s >= backoff_s)"
            )
        self.url = url
        self.model = model
        self.timeout_s = float(timeout_s)
        self.max_tokens = max_tokens
        self.max_in_flight = max_in_flight
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.bucket_step = bucket_step
        self.progress = progress
        self._grpc = grpcclient
        try:
            self._client = grpcclient.InferenceServerClient(url)
        except Exception as error:  # noqa: BLE001 - tritonclient raises plain exceptions here
            raise InferenceError(
                f"Invalid Triton URL {url!r} (expected HOST:PORT): {error}"
            ) from None
        self._closed = False
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        try:
            self.check_ready()
            config = self._call(
                "read the model configuration",
                lambda: self._client.get_model_config(
                    model, as_json=True, client_timeout=self.timeout_s
                ),
            )
            self._config: dict[str, Any] = config.get("config", config)
            self._info, self.max_length = _info_from_config(self._config, url, model)
        except BaseException:
            self.close()
            raise
        served_batch = int(self._config.get("max_batch_size", 0) or 0)
        self.batch_size = min(batch_size, served_batch) if served_batch > 0 else batch_size
        log.info(
            "Triton model %r at %s: %s, dim %d, batches of <= %d",
            model, url, self._info.tag, self._info.dim, self.batch_size,
        )  # fmt: skip

    @property
    def info(self) -> ModelInfo:
        return self._info

    # ----------------------------------------------------------------------------- health

    def check_ready(self) -> None:
        """Check that the server is live and ready and that it serves the model.

        A server that is still starting, or a model that is still loading, is checked again
        with the same back-off as UNAVAILABLE answers.

        Raises:
            InferenceError: which of those is not true, with the URL.
        """
        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            ready = self._call(
                "check server readiness",
                lambda: self._client.is_server_ready(client_timeout=self.timeout_s),
            )
            if ready:
                model_ready = self._call(
                    f"check that model {self.model!r} is ready",
                    lambda: self._client.is_model_ready(self.model, client_timeout=self.timeout_s),
                )
                if model_ready:
                    return
                models = self._model_states()
                state, reason = models.get(self.model, ("", ""))
                if state != "LOADING":
                    ready_models = sorted(m for m, (s, _) in models.items() if s == "READY")
                    detail = f": {state} {reason}".rstrip() if state else ""
                    raise InferenceError(
                        f"Triton server at {self.url} has no ready model {self.model!r}{detail} "
                        f"(ready models: {', '.join(ready_models) or 'none'})"
                    )
                problem = f"model {self.model!r} is still loading"
            else:
                problem = "the server is up but not ready"
            if attempt < self.retries:
                log.warning("Triton at %s: %s; checking again in %.1f s", self.url, problem, delay)
                time.sleep(delay)
                delay = min(2 * delay, self.max_backoff_s)
        raise InferenceError(
            f"Triton server at {self.url}: {problem} (checked {attempt + 1} times)"
        )

    def _model_states(self) -> dict[str, tuple[str, str]]:
        """Model name → (state, reason) from the server's repository index (empty on error)."""
        try:
            index = self._client.get_model_repository_index(
                as_json=True, client_timeout=self.timeout_s
            )
        except Exception:  # noqa: BLE001 - only used to enrich an error message
            return {}
        return {
            m["name"]: (str(m.get("state", "")), str(m.get("reason", "")))
            for m in index.get("models", [])
        }

    # ---------------------------------------------------------------------------- inference

    def embed(self, sequences: Sequence[str]) -> np.ndarray:
        if self._closed:
            raise InferenceError(f"TritonEmbedder for {self.url} is closed")
        dim = self._info.dim
        if len(sequences) == 0:
            return np.zeros((0, dim), dtype=np.float32)
        lengths = [len(seq) for seq in sequences]
        too_long = sum(length + 2 > self.max_length for length in lengths)
        if too_long:
            # the local embedder embeds any length (rotary positions); so does this one
            log.warning(
                "%d sequence(s) longer than the %d nt the model %s was exported for (longest "
                "%d nt); embedding them anyway, each in a batch of its own",
                too_long, self.max_length - 2, self._info.tag, max(lengths),
            )  # fmt: skip
        # a sequence longer than max_tokens gets a batch of its own
        max_tokens = min(self.max_tokens, self.max_length * self.batch_size)
        batches = list(length_batches(lengths, batch_size=self.batch_size, max_tokens=max_tokens))
        out = np.empty((len(sequences), dim), dtype=np.float32)
        bar = tqdm(
            total=len(sequences),
            unit="seq",
            desc="embedding (Triton)",
            disable=None if self.progress is None else not self.progress,
            leave=False,
        )

        def run(batch: list[int]) -> None:
            members = [sequences[i] for i in batch]
            tokens = max(lengths[i] for i in batch) + 2
            width = bucket_length(tokens, step=self.bucket_step)
            if tokens <= self.max_length:
                width = min(width, self.max_length)
            input_ids, attention_mask = batch_encode(members, pad_to=width)
            out[batch] = self._infer(input_ids, attention_mask)
            bar.update(len(batch))

        with bar:
            if len(batches) == 1 or self.max_in_flight == 1:
                for batch in batches:
                    run(batch)
            else:
                futures = [self._executor().submit(run, batch) for batch in batches]
                try:
                    for future in futures:
                        future.result()
                finally:
                    for future in futures:
                        future.cancel()
        return out

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self.max_in_flight, thread_name_prefix="triton-embed"
                )
            return self._pool

    def _infer(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        grpc = self._grpc
        inputs = []
        for name, array in (("input_ids", input_ids), ("attention_mask", attention_mask)):
            tensor = grpc.InferInput(name, list(array.shape), "INT64")
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        outputs = [grpc.InferRequestedOutput("embedding")]
        result = self._call(
            f"embed a batch of {len(input_ids)}x{input_ids.shape[1]} tokens",
            lambda: self._client.infer(
                self.model, inputs, outputs=outputs, client_timeout=self.timeout_s
            ),
        )
        vectors = result.as_numpy("embedding")
        expected = (len(input_ids), self._info.dim)
        if vectors is None or vectors.shape != expected:
            found = None if vectors is None else vectors.shape
            raise InferenceError(
                f"Triton model {self.model!r} at {self.url} returned embeddings of shape {found} "
                f"(expected {expected})"
            )
        return np.asarray(vectors, dtype=np.float32)

    def _call(self, what: str, function: Callable[[], T]) -> T:
        """Run one gRPC call, retrying UNAVAILABLE with back-off; errors become InferenceError."""
        from tritonclient.utils import InferenceServerException

        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            try:
                return function()
            except InferenceServerException as error:
                status = str(error.status() or "")
                if status in RETRYABLE and attempt < self.retries:
                    log.warning(
                        "Triton at %s: %s (%s); retry %d/%d in %.1f s",
                        self.url, status, what, attempt + 1, self.retries, delay,
                    )  # fmt: skip
                    time.sleep(delay)
                    delay = min(2 * delay, self.max_backoff_s)
                    continue
                raise InferenceError(
                    _describe(error, status, what, self.url, self.model, self.timeout_s, attempt)
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        try:
            self._client.close()
        except Exception:  # noqa: BLE001 - closing a broken channel must not raise
            pass


def _describe(
    error: Exception, status: str, what: str, url: str, model: str, timeout_s: float, attempt: int
) -> str:
    message = getattr(error, "message", lambda: str(error))() or str(error)
    message = " ".join(str(message).split())
    if status == "StatusCode.UNAVAILABLE":
        tries = f" after {attempt + 1} attempts" if attempt else ""
        return f"Triton server at {url} is unavailable{tries} (could not {what}): {message}"
    if status == "StatusCode.DEADLINE_EXCEEDED":
        return f"Triton server at {url} did not answer within {timeout_s:g} s (could not {what})"
    return (
        f"Triton server at {url}, model {model!r}: could not {what}: {status or 'error'} {message}"
    )


def _info_from_config(config: dict[str, Any], url: str, model: str) -> tuple[ModelInfo, int]:
    """The served model's :class:`ModelInfo` and max length, from its config ``parameters``."""
    parameters = config.get("parameters", {})
    values = {
        key: parameters.get(key, {}).get("string_value")
        for key in INFO_KEYS
    }
    missing = [key for key, value in values.items() if not value]
    if missing:
        raise ConfigError(
            f"Triton model {model!r} at {url} does not record {', '.join(missing)} in its config "
            "parameters (expected a repository written by 'rinalmo-search export')"
        )
    try:
        dim = int(values["embedding_dim"])  # type: ignore[arg-type]
        max_length = int(values["max_length"])  # type: ignore[arg-type]
    except ValueError:
        raise ConfigError(
            f"Triton model {model!r} at {url}: invalid embedding_dim/max_length parameters "
            f"{values['embedding_dim']!r}/{values['max_length']!r} (expected integers)"
        ) from None
    dims = [
        d
        for o in config.get("output", [])
        if o.get("name") == "embedding"
        for d in o.get("dims", [])
    ]
    if dims and int(dims[-1]) != dim:
        raise ConfigError(
            f"Triton model {model!r} at {url}: output 'embedding' has {dims[-1]} dimensions but "
            f"the parameters say {dim}"
        )
    info = ModelInfo(name=str(values["model_name"]), version=str(values["model_version"]), dim=dim)
    return info, max_length
