"""Check, before any shard runs, that a model a run names can be loaded, without downloading weights.

A local folder must hold a ``config.json``. A Hub id must be well formed and either be in the local
cache (enough with ``HF_HUB_OFFLINE=1``) or answer for its ``config.json`` (a few hundred bytes;
the weights are fetched later by the worker that loads the model). A name that cannot resolve,
because the folder is missing, the repo does not exist, or the Hub cannot be reached, is one error
in the driver instead of the same failure in every shard after its other work.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

OFFLINE_HINT = ("work offline with a local model folder, or set HF_HUB_OFFLINE=1 to use the models already "
                "in the Hugging Face cache")


class ModelUnavailableError(ValueError):
    """A model named by a run cannot be loaded (the message says why and what to do)."""


def looks_like_path(name: str) -> bool:
    """A folder the user meant (``./m``, ``/abs/m``, ``~/m``, ``a/b/c``), not an ``org/name`` Hub id."""
    return (name.startswith((".", "/", "~")) or os.sep != "/" and os.sep in name
            or name.count("/") > 1 or Path(name).exists())


def resolve_model(name: str, what: str, revision: str | None = None) -> str:
    """``"local"`` or ``"cached"`` or ``"hub"``: where ``name`` will be loaded from; raises
    :class:`ModelUnavailableError` when it cannot be."""
    if not isinstance(name, str) or not name:
        raise ModelUnavailableError(f"{what}: expected a Hub id or a local folder, got {name!r}")
    if looks_like_path(name):
        folder = Path(name).expanduser()
        if not folder.is_dir():
            raise ModelUnavailableError(f"{what}: {name} is not a folder (a model is a Hub id such as "
                                        "google/siglip2-base-patch16-256, or a folder saved by save_pretrained)")
        if not (folder / "config.json").is_file():
            raise ModelUnavailableError(f"{what}: {name} has no config.json (not a folder saved by save_pretrained)")
        return "local"
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError as e:
        raise ModelUnavailableError(f"{what}: {name!r} is neither a folder nor a Hub id ({e})") from None
    cached = try_to_load_from_cache(name, "config.json", revision=revision)
    if isinstance(cached, str):
        return "cached"
    if constants.HF_HUB_OFFLINE:
        raise ModelUnavailableError(f"{what}: {name} is neither a folder here nor in the Hugging Face cache, and "
                                    "HF_HUB_OFFLINE is set (download it once online, or give a local folder)")
    host = urlsplit(constants.ENDPOINT).hostname or ""
    try:  # huggingface_hub retries a name-resolution failure for half a minute: find out at once
        socket.getaddrinfo(host, 443)
    except socket.gaierror as e:
        raise ModelUnavailableError(f"{what}: {name} is not a folder here, and {host} does not resolve to look it "
                                    f"up on the Hub ({e.strerror}); {OFFLINE_HINT}") from None
    try:
        hf_hub_download(name, "config.json", revision=revision, etag_timeout=10)
    except LocalEntryNotFoundError as e:  # no connection (refused, timeout): before its parent EntryNotFound
        raise ModelUnavailableError(f"{what}: cannot reach the Hub to resolve {name} "
                                    f"({type(e).__name__}); {OFFLINE_HINT}") from None
    except GatedRepoError as e:
        raise ModelUnavailableError(f"{what}: {name} is gated: accept its terms on the Hub and log in "
                                    f"(hf auth login) ({type(e).__name__})") from None
    except RepositoryNotFoundError:
        raise ModelUnavailableError(f"{what}: {name} is neither a folder here nor a model on the Hub "
                                    "(or it is private: log in)") from None
    except RevisionNotFoundError:
        raise ModelUnavailableError(f"{what}: {name} has no revision {revision!r}") from None
    except EntryNotFoundError:
        raise ModelUnavailableError(f"{what}: {name} has no config.json (not a transformers model)") from None
    except OSError as e:
        raise ModelUnavailableError(f"{what}: cannot reach the Hub to resolve {name} "
                                    f"({type(e).__name__}); {OFFLINE_HINT}") from None
    return "hub"
