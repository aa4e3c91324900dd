"""Build the shipped suites in data/ from the read-only sources in ../shared/data.

This script is the record of how data/ was made; the package itself only ever reads data/.
Run it with `make data`. Every cleaning step is counted in data/build_report.json and described in
data/SOURCE.md.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import lzma
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from emafusion_core.data.io import save_suite
from emafusion_core.data.prices import PriceTable, count_tokens, with_hidden_reasoning
from emafusion_core.data.suite import Suite
from emafusion_core.judges import extract

RB_MODELS = {  # RouterBench name -> (family, litellm id for live use)
    "WizardLM/WizardLM-13B-V1.2": ("wizardlm", "together_ai/WizardLM/WizardLM-13B-V1.2"),
    "claude-instant-v1": ("anthropic", "anthropic/claude-instant-1.2"),
    "claude-v1": ("anthropic", "anthropic/claude-1"),
    "claude-v2": ("anthropic", "anthropic/claude-2"),
    "gpt-3.5-turbo-1106": ("openai", "openai/gpt-3.5-turbo-1106"),
    "gpt-4-1106-preview": ("openai", "openai/gpt-4-1106-preview"),
    "meta/code-llama-instruct-34b-chat": ("meta", "together_ai/codellama/CodeLlama-34b-Instruct-hf"),
    "meta/llama-2-70b-chat": ("meta", "together_ai/meta-llama/Llama-2-70b-chat-hf"),
    "mistralai/mistral-7b-chat": ("mistral", "together_ai/mistralai/Mistral-7B-Instruct-v0.1"),
    "mistralai/mixtral-8x7b-chat": ("mistral", "together_ai/mistralai/Mixtral-8x7B-Instruct-v0.1"),
    "zero-one-ai/Yi-34B-Chat": ("01-ai", "together_ai/zero-one-ai/Yi-34B-Chat"),
}
RL_GPT4, RL_MIXTRAL = "gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"
RL_MODELS = {RL_GPT4: ("openai", "openai/gpt-4-1106-preview"),
             RL_MIXTRAL: ("mistral", "together_ai/mistralai/Mixtral-8x7B-Instruct-v0.1")}
RB_BENCHMARKS = {"arc-challenge": "multiple_choice", "winogrande": "multiple_choice", "mbpp": "code"}
# Each solved exemplar in RouterBench's 5-shot prompts ends with "Answer:" and its letter.
EXEMPLAR_END = re.compile(r"Answer:\s*\n?\s*[A-E]\s*\n\n")
MMLU_DEFECT_SUBJECT = "high_school_mathematics"
MMLU_OUTPUT_TOKENS = 1  # assumption: the source keeps no MMLU responses; the answer is one letter


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def literal_list(text) -> list:
    if isinstance(text, float) and np.isnan(text):
        return []
    value = ast.literal_eval(text)
    return list(value) if isinstance(value, (list, tuple)) else [value]


def models_table(spec: dict, prices: PriceTable, gpt4_class: str) -> pd.DataFrame:
    """One row per model; `gpt4_class` names the suite's GPT-4-class model (read by the claims code)."""
    rows = []
    for model, (family, litellm_id) in spec.items():
        p_in, p_out = prices.price(model)
        rows.append(dict(model=model, family=family, litellm_model=litellm_id,
                         input_usd_per_mtok=p_in, output_usd_per_mtok=p_out, gpt4_class=model == gpt4_class))
    if sum(r["gpt4_class"] for r in rows) != 1:
        raise SystemExit(f"GPT-4-class model {gpt4_class!r} is not in the pool")
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- RouterBench
def build_routerbench(src: Path, prices: PriceTable, report: dict) -> Suite:
    files = sorted(src.glob("*.csv"))
    raw = pd.concat([pd.read_csv(f).assign(_file=f.name) for f in files], ignore_index=True)
    report["inputs"].update({f"routerbench-subset/{f.name}": sha256(f) for f in files})
    models = list(RB_MODELS)
    raw["_prompt_list"] = raw["prompt"].map(literal_list)
    raw["_n_prompt"] = raw["_prompt_list"].map(len)
    r = {"rows_read": len(raw), "distinct_ids": int(raw["sample_id"].nunique())}

    # Merge the questions split across two rows: row A (one-element prompt list) has the prompt, the
    # costs and 10 scores; row B (the prompt twice) has only GPT-3.5's score. Scores from whichever
    # row has them; prompt, costs and responses from row A.
    merged_rows, n_pairs = [], 0
    for sample_id, group in raw.groupby("sample_id", sort=False):
        if len(group) == 1:
            merged_rows.append(group.iloc[0])
            continue
        n_pairs += 1
        row_a = group.loc[group["_n_prompt"] == 1]
        if len(group) != 2 or len(row_a) != 1:
            raise SystemExit(f"unexpected duplicate layout for {sample_id}")
        row = row_a.iloc[0].copy()
        for model in models:
            values = group[model].dropna().unique()
            if len(values) > 1:
                raise SystemExit(f"conflicting scores for {sample_id} / {model}")
            row[model] = values[0] if len(values) else np.nan
        merged_rows.append(row)
    rb = pd.DataFrame(merged_rows).reset_index(drop=True)
    r["split_pairs_merged"] = n_pairs
    r["missing_scores_after_merge"] = int(rb[models].isna().sum().sum())
    rb = rb.dropna(subset=models, how="all")

    # Oracle recomputed from the scores (cheapest model among those with the best score).
    costs = rb[[f"{m}|total_cost" for m in models]].to_numpy(float)
    scores = rb[models].to_numpy(float)
    best = scores == scores.max(axis=1, keepdims=True)
    oracle = np.where(scores.max(axis=1) > 0,
                      np.array(models)[np.argmin(np.where(best, costs, np.inf), axis=1)], "no_model_correct")
    r["oracle_column_disagreements"] = int((oracle != rb["oracle_model_to_route_to"].to_numpy()).sum())

    queries, outcomes = [], []
    n_multi_response = 0
    for _, row in rb.iterrows():
        prompt = row["_prompt_list"][0]
        benchmark = row["eval_name"]
        pieces = EXEMPLAR_END.split(prompt) if benchmark != "mbpp" else [prompt]
        queries.append(dict(query_id=row["sample_id"], benchmark=benchmark, prompt=prompt,
                            question=pieces[-1].strip(), category="",
                            answer_format=RB_BENCHMARKS[benchmark], n_shot=len(pieces) - 1,
                            contaminated=False))
        in_tokens = count_tokens(prompt)
        for model in models:
            responses = literal_list(row[f"{model}|model_response"])
            n_multi_response += len(responses) > 1
            response = responses[0] if responses else None
            outcomes.append(dict(query_id=row["sample_id"], model=model, score=float(row[model]),
                                 cost_usd=float(row[f"{model}|total_cost"]), cost_source="recorded",
                                 response=response, input_tokens=in_tokens,
                                 output_tokens=count_tokens(response)))
    q, o = pd.DataFrame(queries), pd.DataFrame(outcomes)
    r["responses_with_more_than_one_element"] = n_multi_response
    r["n_shot_by_benchmark"] = q.groupby("benchmark")["n_shot"].agg(lambda s: sorted(set(s))).to_dict()
    r["queries"] = len(q)
    r["queries_by_benchmark"] = q["benchmark"].value_counts().sort_index().to_dict()
    report["routerbench"] = r

    # How well does our estimator (cl100k tokens x list price) reproduce the recorded costs?
    check = {}
    for model in (RL_GPT4, "mistralai/mixtral-8x7b-chat"):
        sub = o[o["model"] == model]
        est = prices.cost(model, sub["input_tokens"].to_numpy(), sub["output_tokens"].to_numpy())
        rec = sub["cost_usd"].to_numpy()
        ratio = est / np.where(rec > 0, rec, np.nan)
        check[model] = dict(queries=len(sub), estimated_total_usd=round(float(est.sum()), 6),
                            recorded_total_usd=round(float(rec.sum()), 6),
                            ratio_of_totals=round(float(est.sum() / rec.sum()), 4),
                            median_query_ratio=round(float(np.nanmedian(ratio)), 4),
                            share_within_5pct=round(float(np.nanmean(np.abs(ratio - 1) <= 0.05)), 4))
    report["cost_estimate_check_on_routerbench"] = check
    return Suite.from_tables("routerbench", q, o, models_table(RB_MODELS, prices, RL_GPT4))


# --------------------------------------------------------------------------- RouteLLM
def _contaminated(path: Path, report: dict) -> set[str]:
    report["inputs"][f"routellm-evals/{path.parent.name}/{path.name}"] = sha256(path)
    return {json.loads(line)["eval_prompt"].strip() for line in path.read_text().splitlines() if line.strip()}


def _estimated(query_id, model, score, in_tokens, out_tokens, prices, response=None):
    return dict(query_id=query_id, model=model, score=float(score),
                cost_usd=float(prices.cost(model, in_tokens, out_tokens)), cost_source="estimated",
                response=response, input_tokens=int(in_tokens), output_tokens=int(out_tokens))


def build_mmlu(src: Path, prices: PriceTable, report: dict, queries: list, outcomes: list) -> None:
    contaminated = _contaminated(src / "contaminated_prompts.jsonl", report)
    r = {"files": 0, "rows_read": 0, "excluded_subject": MMLU_DEFECT_SUBJECT}
    hits = 0
    for path in sorted(src.glob("mmlu_*.csv")):
        report["inputs"][f"routellm-evals/mmlu_responses/{path.name}"] = sha256(path)
        subject = path.stem.removeprefix("mmlu_")
        df = pd.read_csv(path)
        r["files"] += 1
        r["rows_read"] += len(df)
        if subject == MMLU_DEFECT_SUBJECT:
            r["excluded_rows"] = len(df)
            r["excluded_gpt4_accuracy"] = round(float(df[RL_GPT4].astype(float).mean()), 4)
            r["excluded_mixtral_accuracy"] = round(float(df[RL_MIXTRAL].astype(float).mean()), 4)
            continue
        for i, row in df.iterrows():
            qid = f"mmlu.{subject}.{i}"
            is_cont = row["prompt"].strip() in contaminated
            hits += is_cont
            queries.append(dict(query_id=qid, benchmark="mmlu", prompt=row["prompt"], question=row["prompt"],
                                category=subject, answer_format="multiple_choice", n_shot=0,
                                contaminated=is_cont))
            n_in = count_tokens(row["prompt"])
            for model in (RL_GPT4, RL_MIXTRAL):
                outcomes.append(_estimated(qid, model, bool(row[model]), n_in, MMLU_OUTPUT_TOKENS, prices))
    r["contaminated_listed"], r["contaminated_matched"] = len(contaminated), hits
    r["duplicate_prompts"] = int(pd.Series([q["prompt"] for q in queries if q["benchmark"] == "mmlu"]).duplicated().sum())
    report["routellm"]["mmlu"] = r


def build_gsm8k(src: Path, prices: PriceTable, report: dict, queries: list, outcomes: list) -> None:
    contaminated = _contaminated(src / "contaminated_prompts.jsonl", report)
    for name in ("gsm8k_responses.csv", "test.jsonl"):
        report["inputs"][f"routellm-evals/gsm8k/{name}"] = sha256(src / name)
    test = [json.loads(line) for line in (src / "test.jsonl").read_text().splitlines() if line.strip()]
    index = {item["question"].strip(): i for i, item in enumerate(test)}
    df = pd.read_csv(src / "gsm8k_responses.csv")
    r = {"rows_read": len(df), "matched_to_test_jsonl": 0}
    hits = 0
    for i, row in df.iterrows():
        text = row["prompt"].strip()
        source_index = index.get(text)
        r["matched_to_test_jsonl"] += source_index is not None
        qid = f"gsm8k.test.{source_index if source_index is not None else f'row{i}'}"
        is_cont = text in contaminated
        hits += is_cont
        queries.append(dict(query_id=qid, benchmark="gsm8k", prompt=row["prompt"], question=row["prompt"],
                            category="", answer_format="number", n_shot=0, contaminated=is_cont))
        n_in = count_tokens(row["prompt"])
        for model in (RL_GPT4, RL_MIXTRAL):
            response = row[f"{model}_response"]
            response = None if pd.isna(response) else str(response)
            outcomes.append(_estimated(qid, model, bool(row[model]), n_in, count_tokens(response), prices,
                                       response))
    r["contaminated_listed"], r["contaminated_matched"] = len(contaminated), hits
    report["routellm"]["gsm8k"] = r


_CONVERSATION = re.compile(
    r"### User:\n(?P<q1>.*?)\n\n### Assistant A:\n(?P<a1>.*?)\n\n### User:\n(?P<q2>.*?)\n\n"
    r"### Assistant A:\n(?P<a2>.*?)\n\n<\|The End of Assistant A's Conversation with User\|>", re.S)


def build_mt_bench(src: Path, prices: PriceTable, report: dict, queries: list, outcomes: list) -> pd.DataFrame:
    contaminated = _contaminated(src / "contaminated_prompts.jsonl", report)
    for name in ("question.jsonl", "judgements.jsonl"):
        report["inputs"][f"routellm-evals/mt_bench/{name}"] = sha256(src / name)
    questions = [json.loads(line) for line in (src / "question.jsonl").read_text().splitlines() if line.strip()]
    judgments = [json.loads(line) for line in (src / "judgements.jsonl").read_text().splitlines() if line.strip()]
    by_key = {}
    for j in judgments:
        by_key[(j["question_id"], j["model"], j["turn"])] = j
    r = {"questions": len(questions), "judgments": len(judgments)}
    judgment_rows, hits = [], 0
    for q in questions:
        qid = f"mt-bench.{q['question_id']}"
        turn1, turn2 = q["turns"][0], q["turns"][1]
        is_cont = turn1.strip() in contaminated
        hits += is_cont
        queries.append(dict(query_id=qid, benchmark="mt-bench", prompt=f"{turn1}\n\n[Follow-up turn]\n{turn2}",
                            question=turn1, category=q["category"], answer_format="free_text", n_shot=0,
                            contaminated=is_cont))
        for model in (RL_GPT4, RL_MIXTRAL):
            j1, j2 = by_key[(q["question_id"], model, 1)], by_key[(q["question_id"], model, 2)]
            conv = _CONVERSATION.search(j2["user_prompt"].split("<|The Start of Assistant A's Conversation with User|>")[-1])
            if conv is None:
                raise SystemExit(f"cannot extract the answers of {model} on {qid}")
            a1, a2 = conv["a1"], conv["a2"]
            # Two calls: turn 1 (question), then turn 2 (question, answer, follow-up).
            n_in = count_tokens(turn1) * 2 + count_tokens(a1) + count_tokens(turn2)
            n_out = count_tokens(a1) + count_tokens(a2)
            score = (float(j1["score"]) + float(j2["score"])) / 2 / 10  # GPT-4 rating 1-10 -> [0.1, 1]
            outcomes.append(_estimated(qid, model, score, n_in, n_out, prices,
                                       f"{a1}\n\n[Follow-up turn]\n{a2}"))
            for turn, j in ((1, j1), (2, j2)):
                judgment_rows.append(dict(query_id=qid, model=model, judge="/".join(j["judge"]), turn=turn,
                                          judge_prompt=j["user_prompt"], judgment=j["judgment"],
                                          rating=float(j["score"])))
    r["contaminated_listed"], r["contaminated_matched"] = len(contaminated), hits
    report["routellm"]["mt_bench"] = r
    return pd.DataFrame(judgment_rows)


def build_routellm(src: Path, prices: PriceTable, report: dict) -> Suite:
    report["routellm"] = {}
    queries, outcomes = [], []
    build_mmlu(src / "mmlu_responses", prices, report, queries, outcomes)
    build_gsm8k(src / "gsm8k", prices, report, queries, outcomes)
    judgments = build_mt_bench(src / "mt_bench", prices, report, queries, outcomes)
    q, o = pd.DataFrame(queries), pd.DataFrame(outcomes)
    report["routellm"]["queries"] = len(q)
    report["routellm"]["queries_by_benchmark"] = q["benchmark"].value_counts().sort_index().to_dict()
    report["routellm"]["contaminated_total"] = int(q["contaminated"].sum())
    return Suite.from_tables("routellm", q, o, models_table(RL_MODELS, prices, RL_GPT4), judgments)


# --------------------------------------------------------------------------- RouterBench extra
def build_extra(src: Path, report: dict) -> pd.DataFrame:
    """Scores and costs only (no prompts): for the models table and sanity checks, never for routing."""
    folder = src / "phi_router_umass"
    files = [folder / "11models_actual_response_0shot.csv", folder / "11models_log_probs_random_1000_samples_0shot.csv"]
    report["inputs"].update({f"routerbench-extra/phi_router_umass/{f.name}": sha256(f) for f in files})
    df = pd.concat([pd.read_csv(f) for f in files]).drop_duplicates("sample_id").reset_index(drop=True)
    df["benchmark"] = df["sample_id"].str.extract(r"^(.*?)\.(?:dev|val|test)\.")[0]
    df["benchmark"] = df["benchmark"].str.replace(r"^mmlu-.*", "mmlu", regex=True)
    df["benchmark"] = df["benchmark"].str.replace(r"^mtbench.*", "mt-bench", regex=True)
    df["benchmark"] = df["benchmark"].replace({"grade-school-math": "gsm8k"})
    rows = []
    for model in RB_MODELS:
        rows.append(pd.DataFrame({"sample_id": df["sample_id"], "benchmark": df["benchmark"], "model": model,
                                  "score": df[f"{model}_correctness"].astype(float),
                                  "cost_usd": df[f"{model}_cost"].astype(float)}))
    out = pd.concat(rows, ignore_index=True)
    report["routerbench_extra"] = {"distinct_ids": int(df["sample_id"].nunique()),
                                   "by_benchmark": df["benchmark"].value_counts().sort_index().to_dict()}
    return out


def compare_with_extra(routellm: Suite, extra: pd.DataFrame, report: dict) -> None:
    """Our estimated RouteLLM costs beside RouterBench's recorded 0-shot costs on the same benchmarks.

    Different prompts (RouterBench adds instructions), so this checks the order of magnitude only."""
    rows = {}
    for bench in ("mmlu", "gsm8k"):
        ours = routellm.outcomes.merge(routellm.queries[["query_id", "benchmark"]], on="query_id")
        ours = ours[ours["benchmark"] == bench].groupby("model")["cost_usd"].mean()
        theirs = extra[extra["benchmark"] == bench].groupby("model")["cost_usd"].mean()
        for ours_name, theirs_name in ((RL_GPT4, RL_GPT4), (RL_MIXTRAL, "mistralai/mixtral-8x7b-chat")):
            rows[f"{bench}/{ours_name}"] = dict(estimated_mean_usd=float(f"{ours[ours_name]:.4g}"),
                                                routerbench_recorded_mean_usd=float(f"{theirs[theirs_name]:.4g}"),
                                                ratio=round(float(ours[ours_name] / theirs[theirs_name]), 3))
    report["cost_estimate_vs_routerbench_0shot_means"] = rows


# --------------------------------------------------------------------------- prices (zeroeval, mmlupro)
LITELLM_VERSION = "1.106.2"


def litellm_price_rows(keys: dict) -> pd.DataFrame:
    """Price rows for models that litellm's bundled cost map has at their late-2024 list price.

    `keys` maps our model name -> (litellm cost-map key, date the price took effect). Read offline
    (LITELLM_LOCAL_MODEL_COST_MAP=True): the map shipped inside the pinned litellm release."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    rows = []
    for model, (key, date) in keys.items():
        entry = litellm.model_cost.get(key)
        if entry is None:
            raise SystemExit(f"litellm's bundled cost map has no {key!r}")
        rows.append(dict(model=model, input_usd_per_mtok=round(entry["input_cost_per_token"] * 1e6, 6),
                         output_usd_per_mtok=round(entry["output_cost_per_token"] * 1e6, 6),
                         source=f"litellm {LITELLM_VERSION} bundled cost map, key {key}", date=date,
                         status="verified"))
    return pd.DataFrame(rows)


def suite_prices(table: pd.DataFrame, litellm_keys: dict, models: list[str], source: str) -> PriceTable:
    """Our dated rows (prices.csv) plus litellm's rows, for one pool; every model must have exactly one."""
    lite = litellm_price_rows({m: litellm_keys[m] for m in models if m in litellm_keys})
    ours = table[table["model"].isin([m for m in models if m not in litellm_keys])]
    combined = pd.concat([ours, lite], ignore_index=True)
    missing = sorted(set(models) - set(combined["model"]))
    if missing:
        raise SystemExit(f"no price for {missing} (add dated rows to prices.csv)")
    return PriceTable(combined, source)


def price_provenance(prices: PriceTable, models: list[str]) -> dict:
    out = {}
    for m in models:
        row = prices.table.loc[m]
        out[m] = dict(input_usd_per_mtok=float(row["input_usd_per_mtok"]),
                      output_usd_per_mtok=float(row["output_usd_per_mtok"]), source=str(row["source"]),
                      date=str(row["date"]), status=str(row.get("status", "verified")))
    return out


def pool_models_table(spec: dict, prices: PriceTable, gpt4_class: str, hidden_reasoning=()) -> pd.DataFrame:
    table = models_table({m: v[:2] for m, v in spec.items()}, prices, gpt4_class)
    table["hidden_reasoning"] = table["model"].isin(list(hidden_reasoning))
    return table


def per_model_accuracy(queries: pd.DataFrame, outcomes: pd.DataFrame, by: str = "benchmark") -> dict:
    merged = outcomes.merge(queries[["query_id", by]], on="query_id")
    acc = merged.groupby([by, "model"])["score"].mean().unstack(by)
    return {m: {b: round(float(v), 4) for b, v in row.items()} for m, row in acc.iterrows()}


def winners(queries: pd.DataFrame, outcomes: pd.DataFrame, by: str) -> dict:
    """Best model per benchmark / subject (accuracy, mean USD per query) and the per-query oracle."""
    merged = outcomes.merge(queries[["query_id", by]], on="query_id")
    out = {}
    for group, sub in merged.groupby(by):
        stats = sub.groupby("model").agg(accuracy=("score", "mean"), usd=("cost_usd", "mean"))
        best = stats.sort_values(["accuracy", "usd"], ascending=[False, True]).index[0]
        oracle = sub.groupby("query_id")["score"].max().mean()
        out[group] = dict(best_model=best, accuracy=round(float(stats.loc[best, "accuracy"]), 4),
                          usd_per_query=float(f"{stats.loc[best, 'usd']:.4g}"), oracle=round(float(oracle), 4))
    stats = outcomes.groupby("model").agg(accuracy=("score", "mean"), usd=("cost_usd", "mean"))
    best = stats.sort_values(["accuracy", "usd"], ascending=[False, True]).index[0]
    out["all"] = dict(best_model=best, accuracy=round(float(stats.loc[best, "accuracy"]), 4),
                      usd_per_query=float(f"{stats.loc[best, 'usd']:.4g}"),
                      oracle=round(float(outcomes.groupby("query_id")["score"].max().mean()), 4))
    return out


# --------------------------------------------------------------------------- ZeroEval
ZE_TASKS = {  # task folder -> (our benchmark name, answer format, id prefix, question key)
    "gsm": ("gsm8k", "math", "gsm8k.test", "question"),
    "math-l5": ("math-l5", "math", "math-l5", "problem"),
    "crux": ("cruxeval", "literal", "cruxeval.test", "question"),
}
# The pool: one current version per product line, complete on all three tasks, each with a late-2024 list
# price we can source (see data/SOURCE.md for the models left out and why). name -> (family, litellm id).
ZE_MODELS = {
    "gemma-2-9b-it": ("google", "gemini/gemini-gemma-2-9b-it"),
    "Meta-Llama-3.1-8B-Instruct": ("meta", "together_ai/meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo"),
    "gemini-1.5-flash": ("google", "gemini/gemini-1.5-flash-002"),
    "deepseek-v2.5-0908": ("deepseek", "deepseek/deepseek-chat"),
    "gpt-4o-mini-2024-07-18": ("openai", "openai/gpt-4o-mini-2024-07-18"),
    "claude-3-haiku-20240307": ("anthropic", "anthropic/claude-3-haiku-20240307"),
    "gpt-3.5-turbo-0125": ("openai", "openai/gpt-3.5-turbo-0125"),
    "Meta-Llama-3.1-70B-Instruct": ("meta", "together_ai/meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo"),
    "Qwen2-72B-Instruct": ("qwen", "together_ai/Qwen/Qwen2-72B-Instruct"),
    "claude-3-5-haiku-20241022": ("anthropic", "anthropic/claude-3-5-haiku-20241022"),
    "gemini-1.5-pro": ("google", "gemini/gemini-1.5-pro-002"),
    "Mistral-Large-2": ("mistral", "mistral/mistral-large-2407"),
    "Llama-3.1-405B-Inst@sambanova": ("meta", "together_ai/meta-llama/Llama-3.1-405B-Instruct"),
    "gpt-4o-2024-08-06": ("openai", "openai/gpt-4o-2024-08-06"),
    "o1-mini-2024-09-12": ("openai", "openai/o1-mini-2024-09-12"),
    "claude-3-5-sonnet-20241022": ("anthropic", "anthropic/claude-3-5-sonnet-20241022"),
    "claude-3-opus-20240229": ("anthropic", "anthropic/claude-3-opus-20240229"),
}
ZE_GPT4 = "gpt-4o-2024-08-06"
ZE_HIDDEN_REASONING = ("o1-mini-2024-09-12",)
# Models whose late-2024 list price litellm's bundled map has (key, date the price took effect).
LITELLM_PRICES = {
    "gpt-4o-2024-08-06": ("gpt-4o-2024-08-06", "2024-08-06"),
    "gpt-4o-mini-2024-07-18": ("gpt-4o-mini-2024-07-18", "2024-07-18"),
    "gpt-3.5-turbo-0125": ("gpt-3.5-turbo-0125", "2024-01-25"),
    "Meta-Llama-3.1-8B-Instruct": ("together_ai/meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo", "2024-07-23"),
    "Meta-Llama-3.1-70B-Instruct": ("together_ai/meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo", "2024-07-23"),
    "Meta-Llama-3_1-8B-Instruct": ("together_ai/meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo", "2024-07-23"),
    "Meta-Llama-3_1-70B-Instruct": ("together_ai/meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo", "2024-07-23"),
    "jamba-1.5-large": ("jamba-1.5-large", "2024-08-22"),
    "Qwen2-72B-Instruct": ("together_ai/Qwen/Qwen2-72B-Instruct", "2024-06-07"),
    "Llama-3.1-405B-Inst@sambanova": ("together_ai/meta-llama/Llama-3.1-405B-Instruct", "2024-07-23"),
    "Mistral-Large-2": ("mistral.mistral-large-2407-v1:0", "2024-09-17"),  # Bedrock, = Mistral's own 2/6
    "gemma-2-9b-it": ("gemini/gemini-gemma-2-9b-it", "2024-06-27"),  # as served by Google's Gemini API
    # Claude: litellm has the Vertex AI / Bedrock entries, at Anthropic's own list prices
    "claude-3-opus-20240229": ("vertex_ai/claude-3-opus@20240229", "2024-03-04"),
    "claude-3-5-sonnet-20241022": ("anthropic.claude-3-5-sonnet-20241022-v2:0", "2024-10-22"),
    "claude-3-5-haiku-20241022": ("vertex_ai/claude-3-5-haiku@20241022", "2024-11-04"),  # launch price 1/5
    "claude-3-haiku-20240307": ("vertex_ai/claude-3-haiku@20240307", "2024-03-13"),
    "Mixtral-8x7B-Instruct-v0.1": ("together_ai/mistralai/Mixtral-8x7B-Instruct-v0.1", "2023-12-11"),
    "Mistral-7B-Instruct-v0.2": ("replicate/mistralai/mistral-7b-instruct-v0.2", "2024-01-01"),
    "gemma-7b": ("fireworks_ai/accounts/fireworks/models/gemma-7b", "2024-02-21"),
    "Phi-3-mini-4k-instruct": ("azure_ai/Phi-3-mini-4k-instruct", "2024-08-01"),
}


def _xz_json(path: Path):
    with lzma.open(path) as handle:
        return json.load(handle)


def zeroeval_string_rule(reply: str, reference: str, answer_format: str, model: str) -> float:
    """ZeroEval's own comparison, reimplemented for the scorer check only (never used for scores): the
    same answer-field parse, then numbers compared as floats (math) or answers compared as strings with
    their quotes stripped (CRUXEval). Its boxed fallback is Llama-3.1-only in ZeroEval and reads only
    \\boxed{} contents made of word characters."""
    field = extract.extract_answer_field(reply)
    if field is None and "Llama-3.1" in model and "boxed" in reply[-30:]:  # ZeroEval's model-specific fallback
        match = re.search(r"\\boxed{([\w\d]+)}", reply)
        field = match.group(1) if match else None
    if answer_format == "literal":
        if field is None:
            return 0.0
        ours = str(field).strip("'\"").replace("\n", "\\n")
        return float(ours == str(reference).strip("'\""))
    if field is None:
        return 0.0
    a, b = extract.number_in_answer(str(field)), extract.reference_number(reference)
    return float(a is not None and b is not None and float(a) == float(b))


def build_zeroeval(src: Path, prices_csv: pd.DataFrame, report: dict) -> Suite:
    root = src / "result_dirs"
    r: dict = {"pool": list(ZE_MODELS)}
    for f in sorted(root.glob("*.summary.json")):
        report["inputs"][f"zeroeval/result_dirs/{f.name}"] = sha256(f)
    summaries = {t: {row["Model"]: float(row["Acc"]) for row in json.loads((root / f"{t}.summary.json").read_text())}
                 for t in ZE_TASKS}
    # Which models are complete on all three tasks (for the record of the pool choice).
    files = {t: {p.name.removesuffix(".json.xz") for p in (root / t).glob("*.json.xz")} for t in ZE_TASKS}
    all_three = sorted(set.intersection(*files.values()))
    r["models_with_all_three_tasks"] = len(all_three)
    prices = suite_prices(prices_csv, LITELLM_PRICES, list(ZE_MODELS), "prices.csv + litellm (zeroeval)")
    r["prices"] = price_provenance(prices, list(ZE_MODELS))

    queries: dict[str, dict] = {}
    outcomes, check, rows_read = [], {}, {}
    for task, (bench, fmt, prefix, qkey) in ZE_TASKS.items():
        reference_ids = None
        for model in ZE_MODELS:
            path = root / task / f"{model}.json.xz"
            report["inputs"][f"zeroeval/result_dirs/{task}/{path.name}"] = sha256(path)
            items = _xz_json(path)
            rows_read[f"{task}/{model}"] = len(items)
            ids = [str(item["id"]).split("#")[-1] for item in items]
            if len(set(ids)) != len(ids):
                raise SystemExit(f"duplicate ids in {path}")
            if reference_ids is None:
                reference_ids = sorted(ids, key=int)
            elif sorted(ids, key=int) != reference_ids:
                raise SystemExit(f"{path}: not the same questions as the other models")
            ours = published_rule = 0.0
            for item, num in zip(items, ids):
                qid = f"{prefix}.{num}"
                prompt = item["chat_history"][0]
                q = queries.get(qid)
                if q is None:
                    queries[qid] = dict(query_id=qid, benchmark=bench, prompt=prompt, question=item[qkey],
                                        category="", answer_format=fmt, n_shot=0, contaminated=False,
                                        _reference=str(item["answer"]))
                elif q["prompt"] != prompt or q["_reference"] != str(item["answer"]):
                    raise SystemExit(f"{qid}: prompt or reference differs between models")
                reply = item["output"][0]
                score = extract.score_answer(fmt, reply, str(item["answer"]))
                ours += score
                published_rule += zeroeval_string_rule(reply, str(item["answer"]), fmt, model)
                n_in, n_out = count_tokens(prompt), count_tokens(reply)
                outcomes.append(dict(query_id=qid, model=model, score=score,
                                     cost_usd=float(prices.cost(model, n_in, n_out)), cost_source="estimated",
                                     response=reply, input_tokens=n_in, output_tokens=n_out))
            n = len(items)
            pub = summaries[task].get(model)
            entry = dict(questions=n, ours=round(ours / n * 100, 2), published=pub,
                         deviation_pt=None if pub is None else round(ours / n * 100 - pub, 2),
                         zeroeval_string_rule=round(published_rule / n * 100, 2),
                         string_rule_deviation_pt=None if pub is None else round(published_rule / n * 100 - pub, 2))
            check.setdefault(model, {})[bench] = entry
    q = pd.DataFrame(list(queries.values())).drop(columns=["_reference"])
    o = pd.DataFrame(outcomes)
    r["rows_read"] = rows_read
    r["queries"] = len(q)
    r["queries_by_benchmark"] = q["benchmark"].value_counts().sort_index().to_dict()
    r["scorer_check"] = check
    worst = max(((abs(e["deviation_pt"]), m, b) for m, v in check.items() for b, e in v.items()), default=None)
    r["scorer_check_worst_deviation_pt"] = dict(deviation=worst[0], model=worst[1], benchmark=worst[2])
    r["scorer_check_outside_0.3pt"] = sorted(f"{m}/{b}: {e['deviation_pt']:+.2f}"
                                             for m, v in check.items() for b, e in v.items()
                                             if abs(e["deviation_pt"]) > 0.3)
    r["string_rule_check_outside_0.3pt"] = sorted(f"{m}/{b}: {e['string_rule_deviation_pt']:+.2f}"
                                                  for m, v in check.items() for b, e in v.items()
                                                  if abs(e["string_rule_deviation_pt"]) > 0.3)
    r["accuracy"] = per_model_accuracy(q, o)
    r["mean_usd_per_query"] = {m: float(f"{v:.4g}") for m, v in o.groupby("model")["cost_usd"].mean().items()}
    r["winners"] = winners(q, o, "benchmark")
    models = pool_models_table(ZE_MODELS, prices, ZE_GPT4, ZE_HIDDEN_REASONING)
    suite = Suite.from_tables("zeroeval", q, o, models)
    x4 = with_hidden_reasoning(suite, 4.0)
    r["o1_mini_output_x4"] = {"mean_usd_per_query_visible": r["mean_usd_per_query"]["o1-mini-2024-09-12"],
                              "mean_usd_per_query_x4": float(f"{x4.costs['o1-mini-2024-09-12'].mean():.4g}")}
    report["zeroeval"] = r
    return suite


# --------------------------------------------------------------------------- MMLU-Pro
MP_MODELS = {  # file name part -> (family, litellm id); DeepSeek-Coder-V2 is left out (see SOURCE.md)
    "gemini-1.5-flash-002": ("google", "gemini/gemini-1.5-flash-002"),
    "Meta-Llama-3_1-8B-Instruct": ("meta", "together_ai/meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo"),
    "Phi-3-mini-4k-instruct": ("microsoft", "azure_ai/Phi-3-mini-4k-instruct"),
    "Mistral-7B-Instruct-v0.2": ("mistral", "replicate/mistralai/mistral-7b-instruct-v0.2"),
    "Qwen1.5-7B-Chat": ("qwen", "together_ai/Qwen/Qwen1.5-7B-Chat"),
    "Yi-6b-Chat": ("01-ai", "together_ai/zero-one-ai/Yi-6B-Chat"),
    "gemma-7b": ("google", "fireworks_ai/accounts/fireworks/models/gemma-7b"),
    "mathstral-7B": ("mistral", "mistral/mathstral-7b"),
    "c4ai-command-r-v01": ("cohere", "cohere/command-r"),
    "Mixtral-8x7B-Instruct-v0.1": ("mistral", "together_ai/mistralai/Mixtral-8x7B-Instruct-v0.1"),
    "Meta-Llama-3_1-70B-Instruct": ("meta", "together_ai/meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo"),
    "Qwen1.5-72B-Chat": ("qwen", "together_ai/Qwen/Qwen1.5-72B-Chat"),
    "gemini-1.5-pro-002": ("google", "gemini/gemini-1.5-pro-002"),
    "jamba-1.5-large": ("ai21", "ai21/jamba-1.5-large"),
}
MP_DROPPED = "DeepSeek-Coder-V2"
MP_GPT4 = "gemini-1.5-pro-002"
MP_SHOTS = 5
LETTERS = "ABCDEFGHIJ"


def mmlu_pro_question(item: dict) -> str:
    """What routers embed: the question and its lettered options (the source keeps no more)."""
    options = "\n".join(f"{LETTERS[i]}. {opt}" for i, opt in enumerate(item["options"]))
    return f"Question: {item['question']}\nOptions:\n{options}"


def mmlu_pro_prompt(item: dict) -> str:
    """The question block as the 5-shot chain-of-thought prompt ends with; the five solved exemplars that
    preceded it are not in the source (their tokens are added to the cost as a per-subject overhead)."""
    return (f"The following are multiple choice questions (with answers) about {item['category']}. Think step "
            f"by step and then finish your answer with \"the answer is (X)\" where X is the correct letter "
            f"choice.\n\n{mmlu_pro_question(item)}\nAnswer: Let's think step by step.")


def build_mmlupro(src: Path, prices_csv: pd.DataFrame, report: dict) -> Suite:
    folder = src / "model_outputs"
    r: dict = {"pool": list(MP_MODELS), "dropped_model": MP_DROPPED}
    data, non_objects = {}, {}
    for name in [*MP_MODELS, MP_DROPPED]:
        path = folder / f"model_outputs_{name}_{MP_SHOTS}shots.json.xz"
        report["inputs"][f"mmlu-pro/model_outputs/{path.name}"] = sha256(path)
        items = _xz_json(path)
        non_objects[name] = sum(not isinstance(x, dict) for x in items)
        items = [x for x in items if isinstance(x, dict)]
        by_id = {int(x["question_id"]): x for x in items}
        if len(by_id) != len(items):
            raise SystemExit(f"duplicate question ids in {path}")
        data[name] = by_id
    r["rows_read"] = {m: len(v) + non_objects[m] for m, v in data.items()}
    r["non_object_entries_dropped"] = {m: n for m, n in non_objects.items() if n}
    union = set.union(*map(set, data.values()))
    common14 = set.intersection(*(set(data[m]) for m in MP_MODELS))
    common15 = common14 & set(data[MP_DROPPED])
    ref = {qid: next(data[m][qid] for m in data if qid in data[m]) for qid in union}
    subject = lambda ids: pd.Series([ref[i]["category"] for i in ids]).value_counts().sort_index().to_dict()  # noqa: E731
    r["questions_in_any_file"] = len(union)
    r["questions_answered_by_the_14_kept_models"] = len(common14)
    r["questions_answered_by_all_15"] = len(common15)
    r["missing_per_model"] = {m: len(union - set(v)) for m, v in data.items() if len(union - set(v))}
    r["dropped_model_missing_by_subject"] = subject(union - set(data[MP_DROPPED]))
    r["questions_dropped_as_unanswered_by_a_kept_model"] = subject(union - common14)
    # The trade-off, on the 15-model common set, for the record.
    acc15 = {m: round(float(np.mean([data[m][i]["pred"] == data[m][i]["answer"] for i in common15])), 4)
             for m in data}
    r["accuracy_on_the_15_model_common_set"] = dict(sorted(acc15.items(), key=lambda kv: -kv[1]))

    prices = suite_prices(prices_csv, LITELLM_PRICES, list(MP_MODELS), "prices.csv + litellm (mmlupro)")
    r["prices"] = price_provenance(prices, list(MP_MODELS))
    # Files come from two versions of the dataset: a question whose text, options or answer key differs
    # between the kept models' files was not the same question for all of them, so it is dropped.
    revised = {qid for qid in common14
               if len({(data[m][qid]["question"], tuple(data[m][qid]["options"]), data[m][qid]["answer"])
                       for m in MP_MODELS}) > 1}
    r["questions_dropped_as_revised_between_files"] = dict(
        total=len(revised), answer_key=sum(len({data[m][q]["answer"] for m in MP_MODELS}) > 1 for q in revised),
        options=sum(len({tuple(data[m][q]["options"]) for m in MP_MODELS}) > 1 for q in revised),
        question_text=sum(len({data[m][q]["question"] for m in MP_MODELS}) > 1 for q in revised),
        by_subject=subject(revised))
    ids = sorted(common14 - revised)
    queries, replies = [], {}
    for qid in ids:
        item = data[MP_GPT4][qid]
        queries.append(dict(query_id=f"mmlu-pro.{qid}", benchmark="mmlu-pro", prompt=mmlu_pro_prompt(item),
                            question=mmlu_pro_question(item), category=item["category"],
                            answer_format="multiple_choice", n_shot=MP_SHOTS, contaminated=False,
                            _src=item["src"]))
    q = pd.DataFrame(queries)
    q_tokens = q["question"].map(count_tokens)
    prompt_tokens = q["prompt"].map(count_tokens)
    out_tokens = {}
    for m in MP_MODELS:
        texts = [data[m][i].get("model_outputs", data[m][i].get("generated_text")) for i in ids]
        replies[m] = texts
        out_tokens[m] = np.array([count_tokens(t) for t in texts])
    # Few-shot overhead per subject: five exemplars, each about a median question block of that subject
    # plus a median chain of thought (median reply of the kept models on that subject).
    all_out = pd.DataFrame(out_tokens).assign(category=q["category"].to_numpy())
    med_reply = all_out.groupby("category").median().median(axis=1)
    med_question = q_tokens.groupby(q["category"]).median()
    overhead = (MP_SHOTS * (med_question + med_reply)).round().astype(int)
    r["few_shot_overhead_tokens_by_subject"] = overhead.to_dict()
    n_in = (prompt_tokens + q["category"].map(overhead)).to_numpy()
    outcomes = []
    pred_agreement, pred_without_letter = {}, {}
    for m in MP_MODELS:
        agree = n_pred = no_letter = no_letter_correct = 0
        for k, qid in enumerate(ids):
            row = data[m][qid]
            score = float(row["pred"] is not None and row["pred"] == row["answer"])
            mine = extract.extract_choice(replies[m][k])
            if row["pred"] is not None:
                n_pred += 1
                agree += mine == row["pred"]
                if mine is None:  # a letter in `pred` that the reply does not state (MMLU-Pro's random fill-in)
                    no_letter += 1
                    no_letter_correct += score
            outcomes.append(dict(query_id=f"mmlu-pro.{qid}", model=m, score=score,
                                 cost_usd=float(prices.cost(m, n_in[k], out_tokens[m][k])),
                                 cost_source="estimated", response=replies[m][k], input_tokens=int(n_in[k]),
                                 output_tokens=int(out_tokens[m][k])))
        pred_agreement[m] = round(agree / max(n_pred, 1), 4)
        pred_without_letter[m] = dict(rows=no_letter, correct=int(no_letter_correct))
    r["extract_choice_agrees_with_source_pred"] = pred_agreement
    r["pred_set_but_no_letter_in_reply"] = pred_without_letter
    r["pred_none"] = {m: sum(data[m][i]["pred"] is None for i in ids) for m in MP_MODELS}
    q = q.drop(columns=["_src"])
    o = pd.DataFrame(outcomes)
    r["queries"] = len(q)
    r["queries_by_subject"] = q["category"].value_counts().sort_index().to_dict()
    r["accuracy"] = {m: round(float(v), 4) for m, v in o.groupby("model")["score"].mean().items()}
    r["mean_usd_per_query"] = {m: float(f"{v:.4g}") for m, v in o.groupby("model")["cost_usd"].mean().items()}
    r["winners"] = winners(q, o, "category")
    report["mmlupro"] = r
    return Suite.from_tables("mmlupro", q, o, pool_models_table(MP_MODELS, prices, MP_GPT4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("data"))
    args = parser.parse_args()
    prices_csv = pd.read_csv(args.out / "prices.csv")
    prices = PriceTable(prices_csv, str(args.out / "prices.csv"))
    report: dict = {"inputs": {}}
    rb = build_routerbench(args.shared / "routerbench-subset", prices, report)
    rl = build_routellm(args.shared / "routellm-evals", prices, report)
    extra = build_extra(args.shared / "routerbench-extra", report)
    compare_with_extra(rl, extra, report)
    ze = build_zeroeval(args.shared / "zeroeval", prices_csv, report)
    mp = build_mmlupro(args.shared / "mmlu-pro", prices_csv, report)
    report["tokenizer"] = "tiktoken cl100k_base (the copy bundled in litellm) for every model and every text"
    save_suite(rb, args.out / "routerbench")
    save_suite(rl, args.out / "routellm")
    save_suite(ze, args.out / "zeroeval")
    save_suite(mp, args.out / "mmlupro")
    (args.out / "routerbench_extra").mkdir(exist_ok=True)
    extra.to_parquet(args.out / "routerbench_extra" / "scores.parquet", index=False, compression="zstd")
    report["inputs"] = dict(sorted(report["inputs"].items()))
    (args.out / "build_report.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "inputs"}, indent=1, default=str)[:20000])


if __name__ == "__main__":
    main()
