"""The unified schema of a suite: what every loader, validator and policy relies on.

A suite is three tables (see data/README.md for the data dictionary):
- queries: one row per query (what a router may read: text and metadata, never a score);
- outcomes: one row per (query, model): score, cost and, when known, the response and tokens;
- models: one row per model of the pool (family, and optionally a litellm id and prices).
An optional fourth table, judgments, keeps recorded judge verdicts (MT-Bench's GPT-4 ratings).
"""
from __future__ import annotations

from dataclasses import dataclass

ANSWER_FORMATS = ("multiple_choice", "number", "math", "literal", "code", "free_text")
COST_SOURCES = ("recorded", "estimated")
# A call that failed is data too (never a score of 0 passed off as an answer): its row carries one of these
# kinds and an empty score. execution.ErrorKind holds the same values.
ERROR_KINDS = ("provider_error", "bad_reply", "budget", "replay_miss", "deadline", "failed")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "str", "float", "int", "bool"
    required: bool = True
    doc: str = ""


QUERY_COLUMNS = (
    Column("query_id", "str", doc="unique id of the query within the suite"),
    Column("benchmark", "str", doc="benchmark the query comes from (used for stratified splits)"),
    Column("prompt", "str", doc="the full text sent to the models, few-shot exemplars included"),
    Column("question", "str", required=False,
           doc="the query without few-shot exemplars: what routers embed (defaults to prompt)"),
    Column("category", "str", required=False, doc="finer source label (MMLU subject, MT-Bench category)"),
    Column("answer_format", "str", required=False, doc="one of " + ", ".join(ANSWER_FORMATS)),
    Column("n_shot", "int", required=False, doc="number of solved exemplars in the prompt"),
    Column("contaminated", "bool", required=False,
           doc="on a published contamination list: never placed in calibrate or test"),
)

OUTCOME_COLUMNS = (
    Column("query_id", "str"),
    Column("model", "str", doc="a model named in the models table"),
    Column("score", "float", doc="quality in [0, 1]: 0/1 correctness or a rescaled judge rating; empty only "
           "where error_kind is set"),
    Column("cost_usd", "float", doc="USD of this call, >= 0"),
    Column("error_kind", "str", required=False, doc="set when the call failed (" + ", ".join(ERROR_KINDS)
           + "): the row is a paid-for failure, its score empty"),
    Column("cost_source", "str", required=False, doc="recorded (by the source) or estimated (by us)"),
    Column("response", "str", required=False, doc="the model's answer text, when the source has it"),
    Column("input_tokens", "int", required=False),
    Column("output_tokens", "int", required=False),
)

MODEL_COLUMNS = (
    Column("model", "str", doc="name used in the outcomes table"),
    Column("family", "str", doc="provider family (judges come from different families)"),
    Column("litellm_model", "str", required=False, doc="litellm model id for live calls"),
    Column("input_usd_per_mtok", "float", required=False),
    Column("output_usd_per_mtok", "float", required=False),
    Column("gpt4_class", "bool", required=False,
           doc="true for the one model the paper's 'GPT-4' claims compare against (read by the claims code)"),
    Column("hidden_reasoning", "bool", required=False,
           doc="bills reasoning tokens its reply does not show (o1): its estimated cost is a lower bound"),
)

JUDGMENT_COLUMNS = (
    Column("query_id", "str"),
    Column("model", "str", doc="the model whose answer was judged"),
    Column("judge", "str", doc="the judge model and template"),
    Column("turn", "int"),
    Column("judge_prompt", "str", doc="the full prompt the judge saw"),
    Column("judgment", "str", doc="the judge's reply"),
    Column("rating", "float", doc="the judge's rating as parsed from its reply"),
)

TABLES = {
    "queries": QUERY_COLUMNS,
    "outcomes": OUTCOME_COLUMNS,
    "models": MODEL_COLUMNS,
    "judgments": JUDGMENT_COLUMNS,
}
