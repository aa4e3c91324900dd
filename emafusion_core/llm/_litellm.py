"""The one place that imports litellm (about 2 s), only when a call or a price lookup needs it."""
from __future__ import annotations

import os
import warnings

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # else import downloads the price map
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import litellm  # noqa: E402

litellm.suppress_debug_info = True
# pydantic's complaint about a litellm TypedDict: noise in every notebook that makes a first call
warnings.filterwarnings("ignore", message=r"Item '\w+' on TypedDict class '\w+' is using the `ReadOnly`",
                        category=UserWarning)
litellm.telemetry = False

__all__ = ["litellm"]
